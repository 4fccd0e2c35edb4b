import collections
import json

import pytest

from pyterrier_hybrid import CrossLingualBatchSampler, HybridBatchSampler, MonolingualBatchSampler
from pyterrier_hybrid.training import Entry, ParallelItem, ParallelSource, from_jsonl, from_lareqa, load_source


def synthetic(name="s", n=60, langs=("en", "de", "fr", "es"), missing_every=3):
    """Items q0..q{n-1}; every third item lacks its last language (like MLQA-R's partial coverage)."""
    items = []
    for i in range(n):
        have = langs[:-1] if i % missing_every == 0 else langs
        items.append(ParallelItem(f"{name}{i}", {l: Entry(f"Q {l} {i}", f"P {l} {i}", (f"N {l} {i}",)) for l in have}))
    return ParallelSource(name, items)


def check_batch(batch, source):
    pids = [t.parallel_id for t in batch.triplets]
    assert len(pids) == len(set(pids)), "a parallel id twice in one batch"
    for t in batch.triplets:
        i = t.parallel_id[len(source.name):]
        assert t.query == f"Q {t.query_lang} {i}" and t.positive == f"P {t.doc_lang} {i}" and t.negative == f"N {t.doc_lang} {i}"
        if batch.kind == "xx":
            assert t.query_lang == t.doc_lang == batch.triplets[0].query_lang
        else:
            assert t.query_lang != t.doc_lang


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_hybrid_share_and_rules(alpha):
    src = synthetic()
    sampler = HybridBatchSampler(src, batch_size=16, alpha=alpha, seed=1)
    batches = [b for b, _ in zip(sampler, range(1500))]
    share = sum(b.kind == "xx" for b in batches) / len(batches)
    assert abs(share - alpha) < 0.04
    for b in batches[:300]:
        check_batch(b, src)


def test_monolingual_languages_uniform():
    src = synthetic()
    counts = collections.Counter(b.triplets[0].query_lang for b, _ in zip(MonolingualBatchSampler(src, 16, seed=2), range(2000)))
    assert set(counts) == {"en", "de", "fr", "es"}
    assert all(abs(c / 2000 - 0.25) < 0.04 for c in counts.values())


def test_cross_lingual_covers_pairs_and_missing_languages():
    src = synthetic()
    pairs = collections.Counter()
    for b, _ in zip(CrossLingualBatchSampler(src, 16, seed=3), range(500)):
        check_batch(b, src)
        pairs.update((t.query_lang, t.doc_lang) for t in b.triplets)
    assert len(pairs) == 12  # every ordered pair of 4 languages
    # "es" is missing from a third of the items, so it is drawn less often than "en"
    assert sum(v for (x, _), v in pairs.items() if x == "es") < sum(v for (x, _), v in pairs.items() if x == "en")


def test_sources_drawn_in_proportion_to_size():
    big, small = synthetic("a", n=90), synthetic("b", n=30)
    names = collections.Counter(b.source for b, _ in zip(HybridBatchSampler([big, small], 8, seed=4), range(2000)))
    assert abs(names["a"] / 2000 - 0.75) < 0.04


def test_state_dict_resumes_the_same_batches():
    src = synthetic()
    a = HybridBatchSampler(src, 8, seed=5)
    it = iter(a)
    [next(it) for _ in range(7)]
    state = json.loads(json.dumps(a.state_dict()))  # must survive serialisation
    expected = [next(it) for _ in range(5)]
    b = HybridBatchSampler(src, 8, seed=99)
    b.load_state_dict(state)
    assert [next(iter(b)) for _ in range(5)] == expected


def test_seed_reproducible():
    src = synthetic()
    first = [b for b, _ in zip(HybridBatchSampler(src, 8, seed=6), range(10))]
    again = [b for b, _ in zip(HybridBatchSampler(src, 8, seed=6), range(10))]
    assert first == again


def test_bad_inputs():
    src = synthetic()
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got 1.5"):
        HybridBatchSampler(src, 8, alpha=1.5)
    with pytest.raises(ValueError, match="has no items"):
        ParallelSource("empty", [])
    mono_only = ParallelSource("mono", [ParallelItem(f"p{i}", {"en": Entry("q", "p")}) for i in range(20)])
    with pytest.raises(ValueError, match="X-Y needs every query to have a partner language"):
        CrossLingualBatchSampler(mono_only, 8)
    MonolingualBatchSampler(mono_only, 8)  # fine for X-X-mono
    with pytest.raises(ValueError, match=r"has no language \['it'\]"):
        src.restrict(["en", "it"])
    with pytest.raises(ValueError, match="no language with 100 items"):
        MonolingualBatchSampler(src, 100)
    with pytest.raises(ValueError, match="parallel id 'p1' twice"):
        ParallelSource("dup", [ParallelItem("p1", {"en": Entry("q", "p")}), ParallelItem("p1", {"de": Entry("q", "p")})])


def test_lareqa_source_uses_paragraph_negatives():
    src = from_lareqa("lareqa-demo")
    assert len(src) == 5 and src.langs == ["en", "de", "fr"]
    q5 = next(i for i in src.items if i.parallel_id == "q5")
    assert set(q5.langs) == {"en", "de"}
    assert q5.langs["en"].positive == "Today the harbour hosts a summer regatta."
    assert set(q5.langs["en"].negatives) == {"Tin was mined in the valley until the river flooded.",
                                             "After the flood, the miners turned to fishing.",
                                             "A small harbour grew near the old mine."}


def test_jsonl_source(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(
        json.dumps({"id": 1, "langs": {"en": {"query": "Where?", "positive": "Here.", "negatives": ["There."]},
                                       "de": {"query": "Wo?", "positive": "Hier."}}}) + "\n\n" +
        json.dumps({"id": 2, "langs": {"en": {"query": "Who?", "positive": "Ada."}}}) + "\n", encoding="utf-8")
    src = load_source(str(path))
    assert [i.parallel_id for i in src.items] == ["1", "2"]
    assert src.items[0].langs["de"] == Entry("Wo?", "Hier.", ())
    assert src.items[0].langs["en"].negatives == ("There.",)
    path.write_text('{"id": 3, "langs": {"en": {"query": "x"}}}\n')
    with pytest.raises(ValueError, match=r"train.jsonl:1 is not a training item .*'positive'"):
        from_jsonl(path)


def test_both_sources_satisfy_the_training_source_protocol():
    import inspect

    from pyterrier_hybrid.training import IrdsSource, TrainingSource
    from pyterrier_hybrid.training.source import TrainingSource as Declared
    assert TrainingSource is Declared
    members = [m for m in vars(TrainingSource) if not m.startswith("_") or m == "__len__"]
    assert {"lang_index", "multi_index", "parallel_id", "item_langs", "entry", "subset", "describe", "langs"} <= set(members)
    for cls in (ParallelSource, IrdsSource):
        for name in members:
            if name in ("langs", "name", "__annotations__"):
                continue
            declared, defined = getattr(TrainingSource, name), getattr(cls, name, None)
            assert callable(defined), f"{cls.__name__} lacks {name}"
            assert list(inspect.signature(defined).parameters) == list(inspect.signature(declared).parameters), name
        assert isinstance(getattr(cls, "langs"), property)
    assert isinstance(synthetic(), TrainingSource)
    assert not isinstance([synthetic()], TrainingSource)  # a list of sources is not a source


def test_sampling_names_and_labels_come_from_the_samplers():
    from pyterrier_hybrid.training.samplers import (SAMPLINGS, MixedBatchSampler, MultiPositiveBatchSampler, make_sampler,
                                                    sampling_label)
    src = synthetic()
    assert SAMPLINGS == ("xx", "xy", "hybrid", "multi", "mix")
    made = [make_sampler(name, src, 4, alpha=0.25, positive_langs=3, mix={"xx": 0.5, "multi": 0.5} if name == "mix" else None)
            for name in SAMPLINGS]
    assert [type(s) for s in made] == [MonolingualBatchSampler, CrossLingualBatchSampler, HybridBatchSampler,
                                       MultiPositiveBatchSampler, MixedBatchSampler]
    assert [s.describe()["sampling"] for s in made] == list(SAMPLINGS) and made[2].alpha == 0.25
    # the older samplers describe themselves as before (committed runs keep their config); the new keys only when used
    assert [list(s.describe()) for s in made[:3]] == [["sampling", "alpha", "batch_size", "seed", "sources"]] * 3
    assert made[3].describe()["positive_langs"] == 3 and made[4].describe()["mix"] == {"xx": 0.5, "multi": 0.5}
    assert [sampling_label(name, 0.25, 3, {"xx": 0.5, "multi": 0.5}) for name in SAMPLINGS] == [
        "X-X-mono", "X-Y", "hybrid (α = 0.25)", "multi-positive (K = 3)", "mixed (xx 0.5, multi 0.5, K = 3)"]
    with pytest.raises(ValueError, match="unknown sampling 'xz'; use one of xx, xy, hybrid, multi, mix"):
        make_sampler("xz", src, 4)
