"""Language-identity removal on hand-made vectors whose answer is known, in FaissIndex, the retriever and the runner."""
import json
import subprocess
import sys

import ir_measures
import numpy as np
import pandas as pd
import pyterrier as pt
import pytest
from ir_measures import AP

import pyterrier_hybrid as ph
from pyterrier_hybrid.index.language_identity import LanguageIdentity
from pyterrier_hybrid.evaluation.protocol import run_protocol
from pyterrier_hybrid.evaluation.rankers import DenseRanker

E = np.eye(4, dtype=np.float32)  # e0, e1: topics A and B; e2, e3: the English and the German offset


def unit(v):
    return (v / np.linalg.norm(v)).astype(np.float32)


# each document is its topic plus a large offset for its language
DOCS = {"en:A": unit(E[0] + 2 * E[2]), "en:B": unit(E[1] + 2 * E[2]), "de:A": unit(E[0] + 2 * E[3]),
        "de:B": unit(E[1] + 2 * E[3])}
QUERY_EN_A = unit(E[0] + 2 * E[2])


def docs():
    return [{"docno": d, "doc_vec": v, "lang": d[:2]} for d, v in DOCS.items()]


def ranking(index, **kw):
    pipeline = ph.lang_from_qid() >> index.retriever(num_results=None, **kw)  # "en:q" is an English query
    res = pipeline(pd.DataFrame({"qid": ["en:q"], "query_vec": [QUERY_EN_A]}))
    return dict(zip(res.docno, np.round(res.score.astype(float), 5)))


def test_the_offset_decides_until_it_is_removed(tmp_path):
    plain = ph.FaissIndex(tmp_path / "plain")
    plain.index(docs())
    # as encoded, the English query prefers the English passage on the wrong topic (0.8) to the German answer (0.2)
    assert ranking(plain) == {"en:A": 1.0, "en:B": 0.8, "de:A": 0.2, "de:B": 0.0}
    assert plain.language_identity is None
    centred = ph.FaissIndex(tmp_path / "center", language_removal="center")
    centred.index(docs())
    # minus its language's mean, every A passage is (e0 - e1)/sqrt(2) and every B passage the opposite
    assert ranking(centred) == {"en:A": 1.0, "de:A": 1.0, "en:B": -1.0, "de:B": -1.0}
    lir = ph.FaissIndex(tmp_path / "lir", language_removal="lir")
    lir.index(docs())
    # the language means differ along e2 - e3 only; without it A is (e0 + e2 + e3)/sqrt(3) in both languages
    assert ranking(lir) == {"en:A": 1.0, "de:A": 1.0, "en:B": 0.66667, "de:B": 0.66667}
    np.testing.assert_allclose(np.abs(lir.language_identity.basis), [[0, 0, 2 ** -0.5, 2 ** -0.5]], atol=1e-6)


def test_statistics_travel_with_the_index(tmp_path):
    ph.FaissIndex(tmp_path / "i", language_removal="center").index(docs())
    loaded = pt.Artifact.load(str(tmp_path / "i"))
    assert ranking(loaded) == {"en:A": 1.0, "de:A": 1.0, "en:B": -1.0, "de:B": -1.0}
    assert (loaded.language_removal, loaded.index_type, ph.FaissIndex(tmp_path / "i").language_removal) == \
        ("center", "flat", "center")  # what is on disk, not the constructor's default
    meta = json.loads((tmp_path / "i" / "pt_meta.json").read_text())
    assert meta["language_removal"] == {"method": "center", "k": None, "langs": ["de", "en"], "counts": [2, 2]}
    assert "language_identity.npz" in meta["files"]
    np.testing.assert_allclose(loaded.language_identity.means[1], (DOCS["en:A"] + DOCS["en:B"]) / 2, atol=1e-7)
    stats = tmp_path / "i" / "language_identity.npz"
    stats.write_bytes(stats.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ph.CorruptIndexError, match="language_identity.npz does not match the md5"):
        ph.FaissIndex(tmp_path / "i").docnos


def test_the_query_language_comes_from_the_argument_or_a_column_and_the_qid_only_when_asked(tmp_path):
    index = ph.FaissIndex.from_vectors(np.stack(list(DOCS.values())), list(DOCS), [d[:2] for d in DOCS],
                                       language_removal="center")
    assert index.language_identity.needs_query_lang
    frame = pd.DataFrame({"qid": ["q1"], "query_vec": [QUERY_EN_A]})
    missing = r"needs each query's language: give retriever\(query_lang=...\) or a 'lang' column .*lang_from_qid\(\)"
    with pytest.raises(ValueError, match=missing):
        index.retriever(num_results=None)(frame)
    by_arg = index.retriever(num_results=None, query_lang="en")(frame)
    by_col = index.retriever(num_results=None)(frame.assign(lang="en"))
    assert list(by_arg.docno[:2]) == list(by_col.docno[:2]) and by_arg.score.tolist() == by_col.score.tolist()
    # a German reading of the same vector is centred on the German mean: another, honest answer
    as_de = index.retriever(num_results=None, query_lang="de")(frame)
    assert as_de.score.tolist() != by_arg.score.tolist()
    # a '<lang>:' qid says nothing unless lang_from_qid() is asked to read it
    prefixed = frame.assign(qid="en:q1")
    with pytest.raises(ValueError, match=missing):
        index.retriever(num_results=None)(prefixed)
    by_qid = (ph.lang_from_qid() >> index.retriever(num_results=None))(prefixed)
    assert list(by_qid.lang) == ["en"] * 4 and by_qid.score.tolist() == by_arg.score.tolist()
    by_scheme = (ph.lang_from_qid(lang_of=lambda q: q.split("_")[-1]) >> index.retriever(num_results=None))(
        frame.assign(qid="q1_de"))
    assert by_scheme.score.tolist() == as_de.score.tolist()
    with pytest.raises(ValueError, match=r"qid 'q1' has none; give lang_from_qid\(lang_of=...\)"):
        ph.lang_from_qid()(frame)
    with pytest.raises(ValueError, match=r"no language statistics for \['fr'\].*'lir', which needs no query language"):
        index.retriever(num_results=None, query_lang="fr")
    with pytest.raises(ValueError, match=r"no language statistics for \['fr'\]"):
        (ph.lang_from_qid() >> index.retriever(num_results=None))(frame.assign(qid="fr:q"))
    lir = ph.FaissIndex.from_vectors(np.stack(list(DOCS.values())), list(DOCS), [d[:2] for d in DOCS],
                                     language_removal="lir")
    assert not lir.language_identity.needs_query_lang
    assert len(lir.retriever(num_results=None)(frame)) == 4  # no language needed


def test_bad_requests_are_refused(tmp_path):
    vecs, names, langs = np.stack(list(DOCS.values())), list(DOCS), [d[:2] for d in DOCS]
    with pytest.raises(ValueError, match=r"lir k=2 must be between 1 and languages - 1 = 1"):
        LanguageIdentity.fit(vecs, langs, "lir", k=2)
    with pytest.raises(ValueError, match="1 documents have no 'lang'"):
        ph.FaissIndex.from_vectors(vecs, names, langs[:3] + [None], language_removal="center")
    with pytest.raises(ValueError, match="'pca' is not supported"):
        ph.FaissIndex(tmp_path / "x", language_removal="pca")
    # statistics estimated elsewhere serve any index type, chunk by chunk
    stats = LanguageIdentity.fit(vecs, langs, "center")
    hnsw = ph.FaissIndex(tmp_path / "h", index_type="hnsw", language_stats=stats)
    hnsw.index(docs())
    assert ranking(hnsw) == {"en:A": 1.0, "de:A": 1.0, "en:B": -1.0, "de:B": -1.0}
    # estimated from the indexed documents for an approximate type too: the stream is stored first, then built
    estimated = ph.FaissIndex(tmp_path / "e", index_type="HNSW8", language_removal="center").index(docs())
    assert ranking(estimated) == {"en:A": 1.0, "de:A": 1.0, "en:B": -1.0, "de:B": -1.0}
    assert not (tmp_path / "e" / "vectors.f32").exists()


@pytest.fixture(scope="module")
def enc(tiny_model_dir):
    return ph.BiEncoder(tiny_model_dir, batch_size=8)


def test_the_runner_removes_it_as_a_pipeline_would(enc):
    report = run_protocol(DenseRanker(enc, language_removal="center"), "lareqa-demo", verbose=False)
    assert report["language_removal"]["method"] == "center" and report["language_removal"]["langs"] == ["de", "en", "fr"]
    assert "language_removal" not in run_protocol(DenseRanker(enc), "lareqa-demo", verbose=False)
    # independently: centre by hand, rank with numpy, score with ir_measures
    import ir_datasets
    corpus = list(ir_datasets.load("lareqa-demo").docs_iter())
    dvecs = enc.encode_docs([d.text for d in corpus])
    langs = np.array([d.lang for d in corpus])
    means = {lang: dvecs[langs == lang].mean(axis=0) for lang in set(langs)}
    centred = np.stack([unit(v - means[lang]) for v, lang in zip(dvecs, langs)])
    for x in ["en", "de"]:
        ds = ir_datasets.load(f"lareqa-demo/{x}")
        queries = list(ds.queries_iter())
        qvecs = np.stack([unit(v - means[x]) for v in enc.encode_queries([q.text for q in queries])])
        run = pd.DataFrame([{"query_id": q.query_id, "doc_id": d.doc_id, "score": float(s)}
                            for q, row in zip(queries, qvecs @ centred.T) for d, s in zip(corpus, row)])
        expected = ir_measures.calc_aggregate([AP], pd.DataFrame(ds.qrels_iter()), run)[AP]
        assert report["multi_by_lang"][x] == pytest.approx(expected, abs=1e-5)


def test_cli_index_and_evaluate_with_removal(tiny_model_dir, tmp_path):
    cli = [sys.executable, "-m", "pyterrier_hybrid.cli"]
    done = subprocess.run(cli + ["index", "--dataset", "lareqa-demo", "--model", str(tiny_model_dir), "--out",
                                 str(tmp_path / "ix"), "--language-removal", "lir"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1])["language_removal"]["k"] == 2  # three languages
    done = subprocess.run(cli + ["evaluate", "--dataset", "lareqa-demo", "--model", str(tiny_model_dir), "--out",
                                 str(tmp_path / "r"), "--language-removal", "center"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / "r" / "report.json").read_text())["language_removal"]["method"] == "center"
