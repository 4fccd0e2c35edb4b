"""evaluate on any ir_datasets collection: a two-language collection registered here, checked against pt.Experiment."""
import json
import os
import re
import subprocess
import sys

import ir_datasets
import pyterrier as pt
import pytest
from ir_datasets.formats import BaseDocs, BaseQrels, BaseQueries, GenericDoc, GenericQrel, GenericQuery
from ir_measures import R, RR, nDCG

import pyterrier_hybrid as ph
from pyterrier_hybrid.evaluation.collection_eval import default_measures, evaluate_collection, parse_measures
from pyterrier_hybrid.testing import make_tiny_model

TEXTS = {
    "sw": (["mto mrefu unaopita mjini", "soko la samaki asubuhi", "mlima wenye theluji", "shule ya watoto kijijini",
            "mvua kubwa usiku", "daraja jipya la mto"],
           ["mto gani unapita mjini", "soko la samaki lini", "daraja la mto"], [(0, 0), (1, 1), (2, 5), (2, 0)]),
    "fi": (["pitkä joki virtaa kaupungin läpi", "kalatori aamulla", "lumihuippuinen vuori", "kyläkoulu lapsille",
            "rankkasade yöllä", "uusi siltä joen yli", "metsän polku"],
           ["mikä joki virtaa kaupungissa", "milloin kalatori", "silta joen yli", "vuoren lumi"],
           [(0, 0), (1, 1), (2, 5), (3, 2)]),
}


def _dataset(lang):
    docs, queries, qrels = TEXTS[lang]

    class Docs(BaseDocs):
        def docs_iter(self):
            return iter([GenericDoc(f"{lang}-d{i}", t) for i, t in enumerate(docs)])

        def docs_count(self):
            return len(docs)

        def docs_cls(self):
            return GenericDoc

    class Queries(BaseQueries):
        def queries_iter(self):
            return iter([GenericQuery(f"{lang}-q{i}", t) for i, t in enumerate(queries)])

        def queries_cls(self):
            return GenericQuery

    class Qrels(BaseQrels):
        def qrels_iter(self):
            return iter([GenericQrel(f"{lang}-q{q}", f"{lang}-d{d}", 1) for q, d in qrels])

        def qrels_defs(self):
            return {1: "relevant"}
    return ir_datasets.Dataset(Docs(), Queries(), Qrels())


for _lang in TEXTS:
    if f"fake-miracl/{_lang}/dev" not in ir_datasets.registry:
        ir_datasets.registry.register(f"fake-miracl/{_lang}/dev", _dataset(_lang))

MEASURES = [nDCG @ 10, R @ 5, RR @ 100]


@pytest.fixture(scope="module")
def enc(tiny_model_dir):
    return ph.BiEncoder(tiny_model_dir, dtype="float32")


def experiment(enc, lang, tmp_path):
    """What a user writes: index the corpus, retrieve, pt.Experiment."""
    dataset = pt.get_dataset(f"irds:fake-miracl/{lang}/dev")
    index = ph.FaissIndex(tmp_path / f"user-{lang}")
    (enc.doc_encoder() >> index).index(dataset.get_corpus_iter(verbose=False))
    return pt.Experiment([index.retriever(enc, num_results=1000)], dataset.get_topics(), dataset.get_qrels(),
                         eval_metrics=MEASURES, names=["dense"]).iloc[0]


def test_each_language_equals_pt_experiment(enc, tmp_path):
    report = evaluate_collection("irds:fake-miracl/{lang}/dev", ["sw", "fi"], encoder=enc, measures=MEASURES,
                                 out_dir=tmp_path / "out", verbose=False)
    mine = report["systems"][enc.name]
    for lang in ("sw", "fi"):
        expected = experiment(enc, lang, tmp_path)
        for m in MEASURES:
            assert mine[lang][str(m)] == pytest.approx(expected[str(m)], abs=1e-9)
    assert mine["macro"]["nDCG@10"] == pytest.approx((mine["sw"]["nDCG@10"] + mine["fi"]["nDCG@10"]) / 2, abs=1e-12)
    assert report["n_queries"] == {"sw": 3, "fi": 4} and report["n_docs"] == {"sw": 6, "fi": 7}
    written = json.loads((tmp_path / "out" / "report.json").read_text())
    assert written["systems"] == report["systems"]
    table = (tmp_path / "out" / "report.md").read_text()
    assert "| sw | " in table and "| **macro** | " in table


def test_an_index_dir_is_reused_only_by_its_own_model(enc, tmp_path):
    other = ph.BiEncoder(make_tiny_model(tmp_path / "other", seed=1), dtype="float32")  # same size, other weights
    args = dict(measures=MEASURES, index_dir=tmp_path / "ix", verbose=False)
    first = evaluate_collection("irds:fake-miracl/{lang}/dev", ["sw"], encoder=enc, **args)
    index = ph.FaissIndex(tmp_path / "ix" / "sw")
    stamp = (tmp_path / "ix" / "sw" / "pt_meta.json").stat().st_mtime_ns
    again = evaluate_collection("irds:fake-miracl/{lang}/dev", ["sw"], encoder=enc, **args)
    assert again["systems"] == first["systems"]
    assert (tmp_path / "ix" / "sw" / "pt_meta.json").stat().st_mtime_ns == stamp  # reused, not rebuilt
    refused = (rf"{re.escape(str(tmp_path / 'ix' / 'sw'))} holds documents encoded by model '{re.escape(enc.name)}', "
               rf"but the queries would be encoded by '{re.escape(other.name)}'.*give another --index-dir")
    with pytest.raises(ValueError, match=refused):
        evaluate_collection("irds:fake-miracl/{lang}/dev", ["sw"], encoder=other, **args)
    mixed = evaluate_collection("irds:fake-miracl/{lang}/dev", ["sw"], encoder=other, allow_other_encoder=True, **args)
    # asked for: the other model's queries against the first model's documents, as a user's pipeline scores them
    dataset = pt.get_dataset("irds:fake-miracl/sw/dev")
    docs = list(dataset.get_corpus_iter(verbose=False))
    by_hand = ph.FaissIndex.from_vectors(enc.encode_docs([d["text"] for d in docs]), [d["docno"] for d in docs])
    expected = pt.Experiment([other.query_encoder() >> by_hand.retriever(num_results=1000)], dataset.get_topics(),
                             dataset.get_qrels(), eval_metrics=MEASURES).iloc[0]
    for m in MEASURES:
        assert mixed["systems"][other.name]["sw"][str(m)] == pytest.approx(expected[str(m)], abs=1e-6)
    assert len(index) == 6 and index.encoder["model"] == enc.name


def test_cli_with_bm25_beside_the_model(tiny_model_dir, tmp_path, enc):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    code = ("import sys, runpy; sys.path.insert(0, 'tests'); import test_collection_eval; "
            "sys.argv = ['pyterrier-hybrid'] + sys.argv[1:]; runpy.run_module('pyterrier_hybrid.cli', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code, "evaluate-collection", "--dataset", "irds:fake-miracl/{lang}/dev",
                           "--langs", "sw,fi", "--model", str(tiny_model_dir), "--dtype", "float32", "--with-bm25",
                           "--out", str(tmp_path / "cli")], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "cli" / "report.json").read_text())
    assert set(report["systems"]) == {str(tiny_model_dir), "BM25 (pisa)"}
    assert report["measures"] == ["nDCG@10", "R@100"]  # no benchmark we know: the default pair
    from pyterrier_pisa import PisaIndex
    for lang in ("sw", "fi"):
        ds = pt.get_dataset(f"irds:fake-miracl/{lang}/dev")
        pisa = PisaIndex(str(tmp_path / f"pisa-{lang}"), stemmer="none", text_field="text")
        pisa.index(ds.get_corpus_iter(verbose=False))
        expected = pt.Experiment([pisa.bm25(num_results=1000)], ds.get_topics(), ds.get_qrels(),
                                 eval_metrics=[nDCG @ 10, R @ 100]).iloc[0]
        for m in ("nDCG@10", "R@100"):
            assert report["systems"]["BM25 (pisa)"][lang][m] == pytest.approx(expected[m], abs=1e-9)
    assert report["systems"]["BM25 (pisa)"]["sw"]["nDCG@10"] > 0.5  # the sw queries share words with their answers
    mine = evaluate_collection("irds:fake-miracl/{lang}/dev", ["sw", "fi"], encoder=enc, verbose=False)
    for lang in ("sw", "fi"):
        assert report["systems"][str(tiny_model_dir)][lang] == pytest.approx(mine["systems"][enc.name][lang], abs=1e-9)


def test_benchmark_defaults_and_bad_measures():
    assert default_measures("irds:miracl/sw/dev") == [nDCG @ 10, R @ 100]
    assert default_measures("mr-tydi/te/test") == [RR @ 100, R @ 100]
    assert default_measures("neuclir/1/fa/trec-2022") == [nDCG @ 20, R @ 1000]
    assert parse_measures("nDCG@10, AP@100") == [nDCG @ 10, parse_measures("AP@100")[0]]
    with pytest.raises(ValueError, match=r"'nDCG@ten' is not an ir_measures measure"):
        parse_measures("nDCG@10,nDCG@ten")
    with pytest.raises(ValueError, match=r"has a \{lang\} field: give the languages"):
        evaluate_collection("irds:fake-miracl/{lang}/dev", None, bm25=True)
