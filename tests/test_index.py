import json
from pathlib import Path

import ir_datasets
import numpy as np
import pandas as pd
import pyterrier as pt
import pytest

import pyterrier_hybrid as ph
from pyterrier_hybrid import CorruptIndexError, FaissIndex

LANGS = ["en", "de", "fr"]


def random_docs(n=300, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return [{"docno": f"{LANGS[i % 3]}:{i}", "lang": LANGS[i % 3], "doc_vec": vecs[i]} for i in range(n)], vecs


def query_frame(qvecs):
    return pd.DataFrame({"qid": [f"q{i}" for i in range(len(qvecs))], "query": ["x"] * len(qvecs), "query_vec": list(qvecs)})


def brute_force(qvec, vecs, docnos, allowed=None):
    scores = vecs @ qvec
    order = [i for i in np.argsort(-scores, kind="stable") if allowed is None or docnos[i].split(":")[0] in allowed]
    return [docnos[i] for i in order], scores[order]


@pytest.fixture
def built(tmp_path):
    docs, vecs = random_docs()
    index = FaissIndex(tmp_path / "idx").index(iter(docs))
    return index, docs, vecs


def test_full_ranking_equals_numpy(built):
    index, docs, vecs = built
    qvecs = np.random.default_rng(1).normal(size=(4, 16)).astype(np.float32)
    res = index.retriever(num_results=None)(query_frame(qvecs))
    assert len(res) == 4 * 300
    docnos = [d["docno"] for d in docs]
    for i, (qid, group) in enumerate(res.groupby("qid", sort=True)):
        expect_ids, expect_scores = brute_force(qvecs[i], vecs, docnos)
        assert list(group.sort_values("rank").docno) == expect_ids
        np.testing.assert_allclose(group.sort_values("rank").score, expect_scores, rtol=1e-5, atol=1e-6)
        assert list(group.sort_values("rank")["rank"]) == list(range(300))


def test_num_results_and_language_filter(built):
    index, docs, vecs = built
    qvecs = np.random.default_rng(2).normal(size=(3, 16)).astype(np.float32)
    res = index.retriever(num_results=5, langs=["de", "fr"])(query_frame(qvecs))
    assert len(res) == 15
    assert set(d.split(":")[0] for d in res.docno) == {"de", "fr"}
    docnos = [d["docno"] for d in docs]
    for i in range(3):
        assert list(res[res.qid == f"q{i}"].docno) == brute_force(qvecs[i], vecs, docnos, {"de", "fr"})[0][:5]
    full_de = index.retriever(num_results=None, langs=["de"])(query_frame(qvecs[:1]))
    assert len(full_de) == 100 and set(full_de.docno.str[:2]) == {"de"}


def test_artifact_load_round_trip(built):
    index, _, _ = built
    loaded = pt.Artifact.load(index.path)
    assert isinstance(loaded, FaissIndex)
    assert len(loaded) == 300 and loaded.dim == 16 and loaded.langs == LANGS
    meta = json.loads((Path(index.path) / "pt_meta.json").read_text())
    assert meta["type"] == "dense_index" and meta["format"] == "hybrid_faiss"
    q = query_frame(np.random.default_rng(3).normal(size=(2, 16)).astype(np.float32))
    pd.testing.assert_frame_equal(loaded.retriever(num_results=10)(q), index.retriever(num_results=10)(q))


@pytest.mark.parametrize("kind,kwargs", [("hnsw", {"hnsw_m": 16}), ("ivf", {"ivf_nlist": 8})])
def test_approximate_indexes_agree_with_exact(tmp_path, kind, kwargs):
    docs, vecs = random_docs(n=2000, dim=16, seed=5)
    index = FaissIndex(tmp_path / kind, index_type=kind, **kwargs).index(iter(docs))
    qvecs = vecs[:50] + 0.05 * np.random.default_rng(6).normal(size=(50, 16)).astype(np.float32)
    res = index.retriever(num_results=1, nprobe=8)(query_frame(qvecs))
    exact = [docs[i]["docno"] for i in np.argmax(qvecs @ vecs.T, axis=1)]
    assert np.mean(np.array(res.docno) == np.array(exact)) >= 0.9
    de = index.retriever(num_results=3, langs=["de"], nprobe=8)(query_frame(qvecs[:5]))
    assert set(de.docno.str[:2]) == {"de"}


def test_query_dimension_mismatch(built):
    index, _, _ = built
    with pytest.raises(ValueError, match=r"shape \(1, 8\), but .* holds 16-dimensional vectors"):
        index.retriever()(query_frame(np.ones((1, 8), np.float32)))


def test_unknown_language_filter(built):
    index, _, _ = built
    with pytest.raises(ValueError, match=r"unknown language filter \['xx'\]; this index has \['en', 'de', 'fr'\]"):
        index.retriever(langs=["xx"])


def test_missing_query_vec_column(built):
    index, _, _ = built
    with pytest.raises(KeyError, match=r"needs column\(s\) \['query_vec'\].*query_encoder"):
        index.retriever()(pd.DataFrame({"qid": ["a"], "query": ["x"]}))


def test_non_index_directory(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(FileNotFoundError, match="is not a FaissIndex"):
        len(FaissIndex(tmp_path / "x"))
    (tmp_path / "x" / "pt_meta.json").write_text('{"type": "sparse_index", "format": "pisa"}')
    with pytest.raises(ValueError, match="holds a sparse_index.pisa artifact"):
        len(FaissIndex(tmp_path / "x"))


def test_corrupt_index_is_detected(built):
    index, _, _ = built

    path = Path(index.path) / "langs.i16"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptIndexError, match="langs.i16 does not match the md5"):
        len(FaissIndex(index.path))
    path.unlink()
    with pytest.raises(CorruptIndexError, match="missing langs.i16"):
        len(FaissIndex(index.path))


def test_bad_documents(tmp_path):
    with pytest.raises(KeyError, match="needs 'doc_vec' in every document"):
        FaissIndex(tmp_path / "a").index([{"docno": "d1", "text": "x"}])
    with pytest.raises(ValueError, match="shape"):
        FaissIndex(tmp_path / "b").index([{"docno": "d1", "doc_vec": np.ones(4)}, {"docno": "d2", "doc_vec": np.ones(5)}])
    with pytest.raises(ValueError, match="NaN or infinite"):
        FaissIndex(tmp_path / "c").index([{"docno": "d1", "doc_vec": np.array([np.nan, 1.0])}])
    with pytest.raises(ValueError, match="nothing to index"):
        FaissIndex(tmp_path / "d").index([])
    for bad in ["de:1\r2", "de:1\n2"]:  # either would split into two docnos when docnos.txt is read back
        with pytest.raises(ValueError, match=r"document 1 has docno .*no line breaks"):
            FaissIndex(tmp_path / "e").index([{"docno": "ok", "doc_vec": np.ones(2)}, {"docno": bad, "doc_vec": np.ones(2)}])
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no half-written directories


def test_existing_index_needs_overwrite(built):
    index, docs, _ = built
    with pytest.raises(FileExistsError, match="overwrite=True"):
        FaissIndex(index.path).index(iter(docs))
    FaissIndex(index.path, overwrite=True).index(iter(docs[:10]))
    assert len(FaissIndex(index.path)) == 10


def test_crash_while_indexing_leaves_nothing(tmp_path):
    docs, _ = random_docs(n=5000)

    def dying():
        yield from docs[:4500]
        raise RuntimeError("killed")
    with pytest.raises(RuntimeError, match="killed"):
        FaissIndex(tmp_path / "idx").index(dying())
    assert list(tmp_path.iterdir()) == []


def average_precision(ranked, relevant):
    hits, total = 0, 0.0
    for i, d in enumerate(ranked, 1):
        if d in relevant:
            hits += 1
            total += hits / i
    return total / len(relevant)


def test_pipeline_in_experiment(tiny_model_dir, tmp_path):
    from ir_measures import AP
    enc = ph.BiEncoder(tiny_model_dir)
    ds = pt.get_dataset("irds:lareqa-demo/de")
    index = FaissIndex(tmp_path / "idx")
    (enc.doc_encoder() >> index).index(ds.get_corpus_iter(verbose=False))
    assert index.langs == ["en", "de", "fr"] and len(index) == 24
    topics, qrels = pt.get_dataset("irds:lareqa-demo/de/fr").get_topics(), pt.get_dataset("irds:lareqa-demo/de/fr").get_qrels()
    pipe = index.retriever(enc, num_results=None, langs=["fr"])
    res = pt.Experiment([pipe], topics, qrels, eval_metrics=[AP], names=["dense"])
    # independent: numpy scores over the 7 French docs
    fr = list(ir_datasets.load("lareqa-demo/fr/fr").docs_iter())
    dvec = enc.encode_docs([d.text for d in fr])
    aps = []
    for q in ir_datasets.load("lareqa-demo/de/fr").queries_iter():
        ranked = [fr[i].doc_id for i in np.argsort(-(dvec @ enc.encode_queries([q.text])[0]), kind="stable")]
        rel = {r.doc_id for r in ir_datasets.load("lareqa-demo/de/fr").qrels_iter() if r.query_id == q.query_id}
        if rel:
            aps.append(average_precision(ranked, rel))
    assert len(aps) == 4
    assert res["AP"][0] == pytest.approx(np.mean(aps), abs=1e-6)


def test_in_memory_index_searches_as_the_same_vectors_on_disk(built):
    index, docs, vecs = built
    mem = FaissIndex.from_vectors(vecs, [d["docno"] for d in docs], [d["lang"] for d in docs])
    assert mem.path is pt.Artifact.NO_PATH and len(mem) == 300 and mem.dim == 16 and mem.langs == LANGS
    assert list(mem.docnos) == list(index.docnos) == [d["docno"] for d in docs]
    qvecs = np.random.default_rng(7).normal(size=(5, 16)).astype(np.float32)
    for langs in [None, ["de"], ["de", "fr"]]:
        for got, want in zip(mem.search(qvecs, None, langs), index.search(qvecs, None, langs)):
            np.testing.assert_array_equal(got, want)
        for got, want in zip(mem.scores(qvecs, langs), index.scores(qvecs, langs)):
            np.testing.assert_array_equal(got, want)
    q = query_frame(qvecs)
    pd.testing.assert_frame_equal(mem.retriever(num_results=10, langs=["en"])(q), index.retriever(num_results=10, langs=["en"])(q))
    assert FaissIndex.from_vectors(vecs[:2], ["a", "b"]).lang_positions(None) is None


def test_in_memory_index_bad_input(tmp_path):
    vecs = np.ones((2, 4), np.float32)
    with pytest.raises(ValueError, match=r"2 vectors but 3 docnos; give one per document"):
        FaissIndex.from_vectors(vecs, ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"2 vectors but 2 docnos and 1 langs"):
        FaissIndex.from_vectors(vecs, ["a", "b"], ["en"])
    with pytest.raises(ValueError, match=r"must be a \[n_docs, dim\] matrix, got shape \(4,\)"):
        FaissIndex.from_vectors(np.ones(4), ["a"])
    with pytest.raises(ValueError, match="NaN or infinite"):
        FaissIndex.from_vectors(np.array([[1.0, np.inf]]), ["a"])
    with pytest.raises(ValueError, match="nothing to index"):
        FaissIndex.from_vectors(np.ones((0, 4)), [])
    with pytest.raises(ValueError, match=r"document 1 has docno .*no line breaks"):
        FaissIndex.from_vectors(vecs, ["a", "b\nc"])
    mem = FaissIndex.from_vectors(vecs, ["a", "b"])
    with pytest.raises(ValueError, match=r"shape \(1, 3\), but this in-memory index holds 4-dimensional"):
        mem.search(np.ones((1, 3)), 1)
    with pytest.raises(ValueError, match=r"in-memory FaissIndex \(from_vectors\) has no directory to index into"):
        mem.index([{"docno": "a", "doc_vec": np.ones(4)}])


def test_blocked_search_from_disk_equals_in_memory(tmp_path, monkeypatch):
    """A flat index too large for memory is read block by block: same rankings, filters and scores."""
    from pyterrier_hybrid.index import search, storage
    docs, vecs = random_docs(n=1000, dim=16, seed=7)
    FaissIndex(tmp_path / "idx").index(iter(docs))
    memory = FaissIndex.from_vectors(vecs, [d["docno"] for d in docs], [d["lang"] for d in docs])
    monkeypatch.setattr(search, "IN_MEMORY_BYTES", 0)
    monkeypatch.setattr(storage, "READ_BLOCK", 96)  # 11 blocks, the last one short
    disk = FaissIndex(tmp_path / "idx")
    assert disk._contents().vectors is None and disk._contents().vectors_path is not None
    q = np.random.default_rng(8).normal(size=(7, 16)).astype(np.float32)
    for k, langs in [(10, None), (None, None), (5, ["de"]), (None, ["fr", "en"])]:
        s_disk, i_disk = disk.search(q, k, langs)
        s_mem, i_mem = memory.search(q, k, langs)
        np.testing.assert_array_equal(i_disk, i_mem)
        np.testing.assert_allclose(s_disk, s_mem, rtol=1e-6)
    s, ids = disk.scores(q, ["de"])
    np.testing.assert_allclose(s, q @ vecs[ids].T, rtol=1e-5, atol=1e-6)
    assert [docs[i]["lang"] for i in ids] == ["de"] * len(ids) and len(ids) == 333


@pytest.mark.parametrize("cached", [True, False], ids=["decoded-once", "on-demand"])
def test_docnos_are_read_on_demand(built, monkeypatch, cached):
    from pyterrier_hybrid.index import storage
    if not cached:  # an index over the cache size decodes only the docnos asked for
        monkeypatch.setattr(storage, "DOCNO_CACHE", 0)
    index, docs, _ = built
    docnos = FaissIndex(index.path).docnos
    assert len(docnos) == 300 and docnos[0] == "en:0" and docnos[-1] == docs[-1]["docno"]
    np.testing.assert_array_equal(docnos[np.array([5, 0, 299])], np.array(["fr:5", "en:0", docs[299]["docno"]], object))
    assert list(docnos) == [d["docno"] for d in docs]
    np.testing.assert_array_equal(docnos[np.array([7, 7, 2])], np.array([docs[7]["docno"]] * 2 + [docs[2]["docno"]], object))
    assert (docnos._all is not None) == cached


def test_factory_string_index_is_compressed_and_close_to_exact(tmp_path):
    docs, vecs = random_docs(n=3000, dim=16, seed=9)
    index = FaissIndex(tmp_path / "pq", index_type="IVF16,PQ8", train_size=2000).index(iter(docs))
    meta = json.loads((tmp_path / "pq" / "pt_meta.json").read_text())
    assert meta["factory"] == "IVF16,PQ8" and set(meta["files"]) == {"index.faiss", "docnos.txt", "docnos.offsets",
                                                                     "langs.i16"}
    assert meta["files"]["index.faiss"]["size"] < 3000 * 16 * 4 / 2  # 8 bytes a vector, not 64
    qvecs = vecs[:100] + 0.02 * np.random.default_rng(10).normal(size=(100, 16)).astype(np.float32)
    _, ids = index.search(qvecs, 10, nprobe=16)
    exact = np.argsort(-(qvecs @ vecs.T), axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact)])
    assert recall > 0.5
    assert (ids[:, 0] == np.arange(100)).mean() > 0.9  # each query's own document comes first
    _, de = index.search(qvecs[:3], 4, ["de"], nprobe=16)
    assert all(docs[i]["lang"] == "de" for i in de.ravel())


def test_bad_factory_strings_fail_before_the_corpus_is_read(tmp_path):
    docs, _ = random_docs(n=50, dim=16)
    seen = []

    def tracked():
        for d in docs:
            seen.append(d)
            yield d
    with pytest.raises(ValueError, match=r"index_type='IVF16,PQ7' is neither .* nor a faiss factory string"):
        FaissIndex(tmp_path / "bad", index_type="IVF16,PQ7").index(tracked())  # 16 is not a multiple of 7
    assert len(seen) <= 4096 and not (tmp_path / "bad").exists()
    with pytest.raises(ValueError, match="has 64 IVF cells and needs at least that many documents, got 50"):
        FaissIndex(tmp_path / "small", index_type="IVF64,Flat").index(iter(docs))


def test_format_version_and_sizes_are_checked(built, monkeypatch):
    from pyterrier_hybrid.index import storage
    index, _, _ = built
    root = Path(index.path)
    meta = json.loads((root / "pt_meta.json").read_text())
    assert meta["format_version"] == 3
    with open(root / "vectors.f32", "ab") as f:
        f.write(b"\0" * 4)
    with pytest.raises(CorruptIndexError, match=r"vectors.f32 has 19204 bytes, pt_meta.json says 19200"):
        len(FaissIndex(root))
    with open(root / "vectors.f32", "r+b") as f:
        f.truncate(19200)
        f.seek(100)
        f.write(b"\1")
    monkeypatch.setattr(storage, "VERIFY_BYTES", 0)  # a large index: md5s are left to verify()
    large = FaissIndex(root)
    assert len(large) == 300
    with pytest.raises(CorruptIndexError, match="vectors.f32 does not match the md5"):
        large.verify()
    del meta["format_version"]  # what the first release wrote
    (root / "pt_meta.json").write_text(json.dumps(meta))
    with pytest.raises(CorruptIndexError, match=r"format 1, and this pyterrier-hybrid reads formats \[2, 3\]; rebuild"):
        len(FaissIndex(root))


def test_refine_rescores_compressed_candidates_exactly_from_disk(tmp_path):
    docs, vecs = random_docs(n=3000, dim=16, seed=11)
    index = FaissIndex(tmp_path / "pq", index_type="IVF16,PQ4", train_size=3000, keep_vectors=True).index(iter(docs))
    assert set(json.loads((tmp_path / "pq" / "pt_meta.json").read_text())["files"]) >= {"index.faiss", "vectors.f32"}
    q = np.random.default_rng(12).normal(size=(40, 16)).astype(np.float32)
    exact = np.argsort(-(q @ vecs.T), axis=1)[:, :10]
    _, coarse = index.search(q, 10, nprobe=16)
    scores, refined = index.search(q, 10, nprobe=16, refine=300)
    overlap = lambda ids: np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact)])  # noqa: E731
    assert overlap(refined) > overlap(coarse) and overlap(refined) > 0.95
    np.testing.assert_allclose(scores, np.take_along_axis(q @ vecs.T, refined, axis=1), rtol=1e-5)  # exact scores
    assert (np.diff(scores, axis=1) <= 0).all()
    res = FaissIndex(tmp_path / "pq").retriever(num_results=10, nprobe=16, refine=300)(query_frame(q[:2]))
    assert list(res[res.qid == "q0"].docno) == [docs[i]["docno"] for i in refined[0]]
    lean = FaissIndex(tmp_path / "lean", index_type="IVF16,PQ4", train_size=3000).index(iter(docs))
    with pytest.raises(ValueError, match="built without keep_vectors=True: rebuild it with it"):
        lean.retriever(refine=100)
    with pytest.raises(ValueError, match="is exact already"):
        FaissIndex.from_vectors(vecs, [d["docno"] for d in docs]).search(q, 5, refine=50)


def test_a_loaded_index_reports_what_is_on_disk(tmp_path):
    """Type, factory string and removal come from pt_meta.json, not from the constructor's defaults."""
    docs, _ = random_docs(n=3000, dim=16, seed=13)
    FaissIndex(tmp_path / "pq", index_type="IVF16,PQ8", train_size=2000).index(iter(docs))
    FaissIndex(tmp_path / "hnsw", index_type="hnsw", hnsw_m=8, language_removal="lir").index(iter(docs))
    for loaded in (pt.Artifact.load(str(tmp_path / "pq")), FaissIndex(tmp_path / "pq")):
        assert (loaded.index_type, loaded.factory, loaded.language_removal) == ("IVF16,PQ8", "IVF16,PQ8", None)
        assert loaded.format_version == 3 and loaded.encoder is None and len(loaded) == 3000 and loaded.dim == 16
    hnsw = pt.Artifact.load(str(tmp_path / "hnsw"))
    assert (hnsw.index_type, hnsw.factory, hnsw.language_removal) == ("hnsw", "HNSW8,Flat", "lir")
    assert hnsw.language_identity.k == 2 and hnsw.language_identity.langs == ("de", "en", "fr")
    # build options never describe an index already on disk
    assert FaissIndex(tmp_path / "pq", index_type="flat").index_type == "IVF16,PQ8"


def test_duplicate_docnos_are_refused_with_both_positions(tmp_path):
    docs, vecs = random_docs(n=5000, dim=8)
    twice = docs[:4500] + [{**docs[4500], "docno": docs[7]["docno"]}] + docs[4501:]  # across chunks of 4096
    twice[4800] = {**twice[4800], "docno": docs[4700]["docno"]}  # a later repeat: the first one is named
    with pytest.raises(ValueError, match=r"documents 7 and 4500 both have docno 'de:7'; docnos must be unique"):
        FaissIndex(tmp_path / "idx").index(iter(twice))
    assert list(tmp_path.iterdir()) == []  # refused before the directory is moved into place
    with pytest.raises(ValueError, match=r"documents 0 and 2 both have docno 'a'"):
        FaissIndex.from_vectors(np.ones((3, 2), np.float32), ["a", "b", "a"])
    assert len(FaissIndex(tmp_path / "ok").index(iter(docs))) == 5000  # unique docnos pass


def test_first_duplicate_compares_docnos_not_only_hashes():
    from pyterrier_hybrid.index.storage import first_duplicate
    docnos = ["a", "b", "c", "b", "a"]
    assert first_duplicate(np.array([1, 2, 3, 2, 1], np.int64), docnos) == ("b", 1, 3)
    # colliding hashes of different docnos are no duplicate
    assert first_duplicate(np.array([5, 5, 5], np.int64), ["x", "y", "z"]) is None
    assert first_duplicate(np.array([5, 5, 5], np.int64), ["x", "y", "x"]) == ("x", 0, 2)


def test_chunks_rebuild_the_same_index_as_another_type(built, tmp_path):
    index, docs, vecs = built
    chunks = list(index.chunks(128))
    assert [len(c[0]) for c in chunks] == [128, 128, 44]
    assert sum((c[0] for c in chunks), []) == [d["docno"] for d in docs]
    assert sum((c[2] for c in chunks), []) == [d["lang"] for d in docs]
    np.testing.assert_array_equal(np.concatenate([c[1] for c in chunks]), vecs)
    hnsw = index.indexer(index_type="HNSW8", overwrite=True).index_chunks(index.chunks())  # in place, another type
    assert hnsw is index and index.index_type == "HNSW8" and len(index) == 300  # read again after the rebuild
    with pytest.raises(ValueError, match="without its exact vectors"):
        next(index.chunks())
