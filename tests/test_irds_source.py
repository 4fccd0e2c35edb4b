"""from_irds against a registered fixture with mmarco/v2/<lang>/train's API (ids shared across languages)."""
import ir_datasets
from ir_datasets.formats import BaseDocPairs, BaseDocs, BaseQrels, BaseQueries, GenericDoc, GenericDocPair, GenericQrel, GenericQuery
from ir_datasets.indices import Docstore

from pyterrier_hybrid.training import from_irds, load_source

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
    assert [i.parallel_id for i in src.items] == ["q0", "q1"]
    q0 = src.items[0].langs
    assert q0["en"].query == "what colour is the lighthouse" and q0["de"].positive == "Der Leuchtturm ist rot."
    assert q0["de"].negatives == ("Nachts fahren Schiffe vorbei.",)
    assert src.items[1].langs["en"].negatives == ("The lighthouse is red.",)
    assert load_source("fake-mmarco/{lang}/train", ["de"]).langs == ["de"]
