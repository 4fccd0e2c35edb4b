import json
import subprocess
import sys

import ir_datasets
import ir_measures
import numpy as np
import pandas as pd
import pyterrier as pt
import pytest
from ir_measures import AP

import pyterrier_hybrid as ph
from pyterrier_hybrid.evaluation.measures import QueryLanguageShare, RankCorrelation, RankDistance
from pyterrier_hybrid.evaluation.protocol import run_protocol
from pyterrier_hybrid.evaluation.rankers import DenseRanker, RetrieverRanker
from pyterrier_hybrid.evaluation.ranking import break_ties, rank_matrix
from pyterrier_hybrid.evaluation.splits import load_split


@pytest.fixture(scope="module")
def enc(tiny_model_dir):
    # explicit: a module fixture is built before conftest's per-test patch that makes dtype='auto' fp32
    return ph.BiEncoder(tiny_model_dir, dtype="float32")


@pytest.fixture(scope="module")
def report(enc, tmp_path_factory):
    return run_protocol(enc, "lareqa-demo", out_dir=tmp_path_factory.mktemp("rep"), verbose=False, name="tiny")


def runs_from_pipeline(enc, tmp_path, x, corpus):
    """An independent run through the PyTerrier pipeline (query_encoder >> retriever), as an ir_measures frame."""
    index = ph.FaissIndex(tmp_path / f"idx-{x}-{corpus}")
    docs = list(ir_datasets.load(f"lareqa-demo/{x}" if corpus == "pooled" else f"lareqa-demo/{x}/{corpus}").docs_iter())
    (enc.doc_encoder() >> index).index({"docno": d.doc_id, "text": d.text, "lang": d.lang} for d in docs)
    name = f"lareqa-demo/{x}" if corpus == "pooled" else f"lareqa-demo/{x}/{corpus}"
    topics = pd.DataFrame([{"qid": q.query_id, "query": q.text} for q in ir_datasets.load(name).queries_iter()])
    res = index.retriever(enc, num_results=None)(topics)
    run = res.rename(columns={"qid": "query_id", "docno": "doc_id"})[["query_id", "doc_id", "score"]]
    return run, pd.DataFrame(ir_datasets.load(name).qrels_iter())


def test_every_setting_matches_ir_measures(enc, report, tmp_path):
    for x in ["en", "de", "fr"]:
        for y in ["en", "de", "fr"]:
            run, qrels = runs_from_pipeline(enc, tmp_path, x, y)
            assert report["matrix"][x][y] == pytest.approx(ir_measures.calc_aggregate([AP], qrels, run)[AP], abs=1e-6)
        run, qrels = runs_from_pipeline(enc, tmp_path, x, "pooled")
        agg = ir_measures.calc_aggregate([AP, RankDistance, QueryLanguageShare @ 10], qrels, run)
        assert report["multi_by_lang"][x] == pytest.approx(agg[AP], abs=1e-6)
        assert report["rank_distance"][x] == pytest.approx(agg[RankDistance], abs=1e-9)
        assert report["query_language_share@10"][x] == pytest.approx(agg[QueryLanguageShare @ 10], abs=1e-9)


def test_rank_correlation_matches_the_measure(enc, report, tmp_path):
    runs, qrels = zip(*(runs_from_pipeline(enc, tmp_path, x, "pooled") for x in ["en", "de", "fr"]))
    values = {m.query_id: m.value for m in ir_measures.iter_calc([RankCorrelation], pd.concat(qrels), pd.concat(runs))}
    for x in ["en", "de", "fr"]:
        assert report["rank_correlation"][x] == pytest.approx(np.mean([v for q, v in values.items() if q.startswith(x)]), abs=1e-9)


def test_full_rankings_have_no_partial_section(report):
    assert "partial_rankings" not in report  # a dense ranker ranks every candidate


def test_macro_averages(report):
    m = report["matrix"]
    assert report["mAP"]["mono"] == pytest.approx(np.mean([m[x][x] for x in m]))
    assert report["mAP"]["cross"] == pytest.approx(np.mean([m[x][y] for x in m for y in m if x != y]))
    assert report["mAP"]["multi"] == pytest.approx(np.mean(list(report["multi_by_lang"].values())))
    assert report["rank_distance"]["macro"] == pytest.approx(np.mean([report["rank_distance"][x] for x in m]))


def test_report_files(report, tmp_path):
    from pyterrier_hybrid.evaluation.report import write_report
    write_report(report, tmp_path)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert set(saved["mAP"]) == {"mono", "cross", "multi"} and set(saved["matrix"]) == {"en", "de", "fr"}
    assert set(saved["timing"]) == {"encode_s", "total_s"} and saved["timing"]["total_s"] >= saved["timing"]["encode_s"]
    assert "| **de** |" in (tmp_path / "report.md").read_text()
    png = (tmp_path / "matrix.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["matrix.png", "report.json", "report.md"]


def test_subsets():
    split = load_split("lareqa-demo", langs=["fr", "de"], max_queries=2)
    assert split.langs == ["fr", "de"]
    assert {x: list(q.qid) for x, q in split.queries.items()} == {"fr": ["fr:q1", "fr:q2"], "de": ["de:q1", "de:q2"]}
    assert list(split.queries["de"].columns) == ["qid", "query", "parallel_id"]
    assert list(split.queries["de"].parallel_id) == ["q1", "q2"]
    assert len(split.docnos) == 7 + 8 and set(split.docnos[:7]) == {f"fr:{p}" for p in ["0-0", "0-1", "0-2", "1-0", "1-1", "2-0", "2-1"]}
    with pytest.raises(ValueError, match="no language 'it'"):
        load_split("lareqa-demo", langs=["it"])
    with pytest.raises(ValueError, match="unknown LAReQA family 'squad'; use one of"):
        load_split("squad")


def test_cache_skips_encoding(enc, tmp_path):
    first = DenseRanker(enc, cache_dir=tmp_path)
    a = run_protocol(first, "lareqa-demo", langs=["en", "de"], verbose=False)
    second = DenseRanker(enc, cache_dir=tmp_path)
    b = run_protocol(second, "lareqa-demo", langs=["en", "de"], verbose=False)
    assert first.encode_s > 0 and second.encode_s == 0
    assert a["matrix"] == b["matrix"] and len(list(tmp_path.glob("*.npy"))) == 4
    assert second.index.path is pt.Artifact.NO_PATH  # searched in memory: no index written and read back


def test_rankers_need_prepare_and_the_runner_needs_a_ranker(enc):
    with pytest.raises(RuntimeError, match=r"call prepare\(split\) before ranking"):
        DenseRanker(enc).ranking("en", ["en"])
    with pytest.raises(RuntimeError, match=r"call prepare\(split\) before ranking"):
        RetrieverRanker(lambda docs, name: None).relevant_ranks("en", "en", [0], np.zeros((1, 1), np.int64))
    with pytest.raises(TypeError, match="needs a BiEncoder or a Ranker .* got str"):
        run_protocol("me5", "lareqa-demo", verbose=False)


@pytest.mark.parametrize("change", [{"batch_size": 3}, {"doc_max_length": 9}, {"doc_prefix": "p: "},
                                    {"doc_text": "sentence+context"}, {"dtype": "bfloat16"}], ids=lambda c: next(iter(c)))
def test_cache_misses_when_anything_that_changes_vectors_changes(enc, tiny_model_dir, tmp_path, change):
    run_protocol(DenseRanker(enc, cache_dir=tmp_path), "lareqa-demo", langs=["en"], verbose=False)
    other = DenseRanker(ph.BiEncoder(tiny_model_dir, **{"batch_size": enc.batch_size, **change}), cache_dir=tmp_path)
    run_protocol(other, "lareqa-demo", langs=["en"], verbose=False)
    assert other.encode_s > 0 and len(list(tmp_path.glob("*.npy"))) == 4  # new query and doc vectors


def test_break_ties_orders_tied_runs_by_docno_descending():
    scores = np.array([[3, 2, 2, 2, 1, 1], [5, 4, 3, 2, 1, 0]], dtype=np.float32)
    ids = np.array([[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0]])
    docno_order = np.array([0, 1, 2, 3, 4, 5])  # doc i is the i-th docno in sorted order
    out = break_ties(scores, ids.copy(), docno_order)
    assert out.tolist() == [[0, 3, 2, 1, 5, 4], [5, 4, 3, 2, 1, 0]]
    # a strided array (as argsort(...)[:, ::-1] gives) is reordered too: reshape(-1) of it is a copy
    assert break_ties(scores, np.asfortranarray(ids), docno_order).tolist() == out.tolist()
    assert break_ties(scores, ids[:, ::-1].copy()[:, ::-1], docno_order).tolist() == out.tolist()
    # runs that meet a row's end, runs of two, and padding (-1, scores -inf) left alone
    scores = np.array([[2, 2, 1, 1], [4, 4, -np.inf, -np.inf]], dtype=np.float32)
    ids = np.array([[1, 2, 0, 3], [0, 5, -1, -1]])
    assert break_ties(scores, ids, docno_order).tolist() == [[2, 1, 3, 0], [5, 0, -1, -1]]


def test_rank_matrix_of_full_and_padded_rankings():
    rng = np.random.default_rng(0)
    ids = np.stack([rng.permutation(6) for _ in range(3)]) + 10  # full rankings of candidates 10..15
    inv = rank_matrix(ids, 10, 6)
    for q in range(3):
        assert [int(inv[q, d - 10]) for d in ids[q]] == [1, 2, 3, 4, 5, 6]
    padded = np.array([[12, 10, -1], [15, -1, -1]])
    assert rank_matrix(padded, 10, 6).tolist() == [[2, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 1]]


def test_bm25_through_the_same_interface(tmp_path):
    report = run_protocol(RetrieverRanker(ph.bm25_builder(tmp_path)), "lareqa-demo", verbose=False)
    # BM25 finds the German answers to German questions: check one setting against pt.Experiment
    from pyterrier_pisa import PisaIndex
    ds = pt.get_dataset("irds:lareqa-demo/de/de")
    idx = PisaIndex(str(tmp_path / "check"), stemmer="none", text_field="text")
    idx.index(ds.get_corpus_iter(verbose=False))
    res = pt.Experiment([idx.bm25(num_results=100)], ds.get_topics(), ds.get_qrels(), eval_metrics=[AP])
    assert report["matrix"]["de"]["de"] == pytest.approx(res["AP"][0], abs=1e-6)
    assert report["matrix"]["de"]["de"] > 0.5
    # BM25 ranks only documents sharing a term with the query: the report says how many, per query language
    pooled = PisaIndex(str(tmp_path / "pooled"), stemmer="none", text_field="text")
    pooled.index(pt.get_dataset("irds:lareqa-demo").get_corpus_iter(verbose=False))
    partial = report["partial_rankings"]
    assert partial["pool"] == 24
    for x in ["en", "de", "fr"]:
        res = pooled.bm25(num_results=100)(pt.get_dataset(f"irds:lareqa-demo/{x}").get_topics())
        counts = res.groupby("qid").size().reindex(pt.get_dataset(f"irds:lareqa-demo/{x}").get_topics().qid).fillna(0)
        assert partial["mean_ranked"][x] == pytest.approx(counts.mean())
    assert 0 < partial["unranked_relevant_share"]["macro"] < 1


def test_report_leaves_the_plotting_backend_alone(report, tmp_path):
    (tmp_path / "r.json").write_text(json.dumps(report))
    code = ("import json, sys, matplotlib; matplotlib.use('svg'); from pyterrier_hybrid.evaluation.report import write_report; "
            "write_report(json.load(open(sys.argv[1])), sys.argv[2]); print(matplotlib.get_backend())")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "r.json"), str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "svg" and (tmp_path / "out" / "matrix.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_evaluate_updates_the_model_card(tiny_model_dir, tmp_path):
    from pyterrier_hybrid import HybridBatchSampler, TrainConfig, Trainer
    from pyterrier_hybrid.training import from_lareqa
    model = Trainer(str(tiny_model_dir), HybridBatchSampler(from_lareqa("lareqa-demo"), 4), tmp_path / "m",
                    TrainConfig(steps=1), verbose=False).train()
    args = [sys.executable, "-m", "pyterrier_hybrid.cli", "evaluate", "--dataset", "lareqa-demo", "--model", str(model),
            "--langs", "en,de", "--update-card"]
    for out in ["r1", "r2"]:  # the second run replaces the first one's section
        done = subprocess.run(args + ["--out", str(tmp_path / out)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    card = (model / "README.md").read_text()
    rep = json.loads((tmp_path / "r2" / "report.json").read_text())
    assert card.count("## Evaluation: lareqa-demo (2 languages") == 1 and card.startswith("---\n")
    m = rep["mAP"]
    assert f"| {m['mono']:.3f} | {m['cross']:.3f} | {m['multi']:.3f} | {rep['rank_distance']['macro']:.1f} |" in card
    assert "--out " + str(tmp_path / "r2") in card
    bad = subprocess.run(args[:6] + ["--model", str(tiny_model_dir), "--out", str(tmp_path / "r3"), "--update-card"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "README.md does not exist" in bad.stderr
    # a card we did not write (a base model's provenance note, a Hub card) is refused before the evaluation
    import shutil
    foreign = shutil.copytree(tiny_model_dir, tmp_path / "base")
    note = "---\nlicense: mit\n---\n# A base model\n\nRebuilt by hand.\n"
    (foreign / "README.md").write_text(note)
    bad = subprocess.run(args[:6] + ["--model", str(foreign), "--out", str(tmp_path / "r4"), "--update-card"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "was not written by pyterrier-hybrid train" in bad.stderr
    assert (foreign / "README.md").read_text() == note and not (tmp_path / "r4").exists()


def test_cli_evaluate(tiny_model_dir, tmp_path):
    out = subprocess.run([sys.executable, "-m", "pyterrier_hybrid.cli", "evaluate", "--dataset", "lareqa-demo",
                          "--model", str(tiny_model_dir), "--out", str(tmp_path / "r"), "--langs", "en,fr",
                          "--max-queries", "3"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    rep = json.loads((tmp_path / "r" / "report.json").read_text())
    assert rep["langs"] == ["en", "fr"] and rep["n_queries"] == {"en": 3, "fr": 3}
    bad = subprocess.run([sys.executable, "-m", "pyterrier_hybrid.cli", "evaluate", "--dataset", "lareqa-demo",
                          "--model", str(tiny_model_dir), "--out", str(tmp_path / "r2"), "--langs", "en,xx"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "no language 'xx'; valid languages: en, de, fr" in bad.stderr
