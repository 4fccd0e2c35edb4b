"""from_irds against a registered fixture with mmarco/v2/<lang>/train's API (ids shared across languages)."""
import ir_datasets
from ir_datasets.formats import BaseDocPairs, BaseDocs, BaseQrels, BaseQueries, GenericDoc, GenericDocPair, GenericQrel, GenericQuery
from ir_datasets.indices import Docstore


from pyterrier_hybrid.training import HybridBatchSampler, ParallelItem, ParallelSource, from_irds, load_source, split_validation

TEXT = {
    "en": {"q": ["what colour is the lighthouse", "who kept the diary"], "d": ["The lighthouse is red.", "Ada kept the diary.", "Ships pass at night."]},
    "de": {"q": ["welche Farbe hat der Leuchtturm", "wer führte das Tagebuch"], "d": ["Der Leuchtturm ist rot.", "Ada führte das Tagebuch.", "Nachts fahren Schiffe vorbei."]},
}


class _Store(Docstore):
    def __init__(self, docs):
        super().__init__(GenericDoc)
        self.docs = {d.doc_id: d for d in docs}

    def get_many_iter(self, ids):
        return (self.docs[i] for i in ids if i in self.docs)


class _Docs(BaseDocs):
    def __init__(self, lang):
        self.list = [GenericDoc(f"d{i}", t) for i, t in enumerate(TEXT[lang]["d"])]

    def docs_iter(self):
        return iter(self.list)

    def docs_store(self):
        return _Store(self.list)

    def docs_cls(self):
        return GenericDoc


class _Queries(BaseQueries):
    def __init__(self, lang):
        self.lang = lang

    def queries_iter(self):
        return (GenericQuery(f"q{i}", t) for i, t in enumerate(TEXT[self.lang]["q"]))


class _Qrels(BaseQrels):
    def qrels_iter(self):
        return iter([GenericQrel("q0", "d0", 1), GenericQrel("q1", "d1", 1), GenericQrel("q1", "d2", 0)])


class _Pairs(BaseDocPairs):
    def docpairs_iter(self):
        return iter([GenericDocPair("q0", "d0", "d2"), GenericDocPair("q1", "d1", "d0")])


for _lang in TEXT:
    if f"fake-mmarco/{_lang}/train" not in ir_datasets.registry:
        ir_datasets.registry.register(f"fake-mmarco/{_lang}/train",
                                      ir_datasets.Dataset(_Docs(_lang), _Queries(_lang), _Qrels(), _Pairs()))


def test_irds_items_are_parallel_with_hard_negatives():
    src = from_irds("fake-mmarco/{lang}/train", ["en", "de"])
    assert [src.parallel_id(i) for i in range(len(src))] == ["q0", "q1"] and src.item_langs(0) == ["de", "en"]
    assert src.entry(0, "en").query == "what colour is the lighthouse"
    assert src.entry(0, "de").positive == "Der Leuchtturm ist rot."
    assert tuple(src.entry(0, "de").negatives) == ("Nachts fahren Schiffe vorbei.",)
    assert tuple(src.entry(1, "en").negatives) == ("The lighthouse is red.",)
    assert load_source("fake-mmarco/{lang}/train", ["de"]).langs == ["de"]
    assert src.describe()["docpairs_scanned"] == {"en": 2, "de": 2}


def test_docpairs_scan_is_bounded():
    src = from_irds("fake-mmarco/{lang}/train", ["en"], max_docpairs=1)
    assert src.describe()["docpairs_scanned"] == {"en": 1}
    assert tuple(src.entry(0, "en").negatives) == ("Ships pass at night.",) and len(src.entry(1, "en").negatives) == 0


def eager(src):
    """The same items with every text fetched: what from_irds held in memory before."""
    return ParallelSource(src.name, [ParallelItem(src.parallel_id(i), {lang: src.entry(i, lang).resolve()
                                                                         for lang in src.item_langs(i)})
                                     for i in range(len(src))])


def test_lazy_source_draws_the_batches_of_the_eager_one_and_resumes_exactly():
    lazy = from_irds(BIG, ["en", "de", "fr"])
    assert len(lazy) == 60 and len(lazy.multi_index()) == 50  # q50..q59 are in en only
    ref = eager(lazy)
    a, b = HybridBatchSampler(lazy, 8, alpha=0.5, seed=3), HybridBatchSampler(ref, 8, alpha=0.5, seed=3)
    first = [next(iter(a)) for _ in range(6)]
    assert first == [next(iter(b)) for _ in range(6)]
    assert {t.negative for batch in first for t in batch.triplets} - {None}  # negatives are drawn and fetched
    state = a.state_dict()
    more = [next(iter(a)) for _ in range(4)]
    again = HybridBatchSampler(lazy, 8, alpha=0.5, seed=3)
    again.load_state_dict(state)
    assert [next(iter(again)) for _ in range(4)] == more
    train, val = split_validation(lazy, 0.3)
    etrain, eval_ = split_validation(ref, 0.3)
    assert [train.parallel_id(i) for i in range(len(train))] == [i.parallel_id for i in etrain.items]
    assert len(val) == len(eval_.items) > 0


BIG = "fake-mmarco-60/{lang}/train"
_WORDS = {"en": "harbour", "de": "Hafen", "fr": "port"}


def _big(lang):
    n = 60 if lang == "en" else 50
    docs = [GenericDoc(f"d{i}", f"{_WORDS[lang]} passage {i}") for i in range(n + 5)]
    queries = [GenericQuery(f"q{i}", f"{_WORDS[lang]} question {i}") for i in range(n)]
    qrels = [GenericQrel(f"q{i}", f"d{i}", 1) for i in range(n)]
    pairs = [GenericDocPair(f"q{i}", f"d{i}", f"d{(i * 7 + j) % (n + 5)}") for i in range(n) for j in range(1, 5)]

    class Docs(_Docs):
        def __init__(self):
            self.list = docs

    class Queries(BaseQueries):
        def queries_iter(self):
            return iter(queries)

    class Qrels(BaseQrels):
        def qrels_iter(self):
            return iter(qrels)

    class Pairs(BaseDocPairs):
        def docpairs_iter(self):
            return iter(pairs)
    return ir_datasets.Dataset(Docs(), Queries(), Qrels(), Pairs())


for _lang in _WORDS:
    if BIG.format(lang=_lang) not in ir_datasets.registry:
        ir_datasets.registry.register(BIG.format(lang=_lang), _big(_lang))


def test_an_irds_source_is_a_training_source():
    from pyterrier_hybrid.training import TrainingSource
    src = from_irds("fake-mmarco/{lang}/train", ["en", "de"])
    assert isinstance(src, TrainingSource)
    entry = src.entry(0, "de")  # what the samplers read of an entry
    assert (entry.query, entry.positive, list(entry.negatives)) == (
        "welche Farbe hat der Leuchtturm", "Der Leuchtturm ist rot.", ["Nachts fahren Schiffe vorbei."])
