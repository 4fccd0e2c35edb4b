"""The real multilingual-e5-small on real XQuAD-R: our pipeline against an independent numpy computation."""
import ir_datasets
import numpy as np
import pyterrier as pt
import pytest
from ir_measures import AP

import pyterrier_hybrid as ph

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def setup(me5_dir, tmp_path_factory):
    from conftest import SHARED_DATA
    if not (SHARED_DATA / "xquad-r" / "en.json").is_file():
        pytest.skip(f"real XQuAD-R not found at {SHARED_DATA}")
    with pytest.MonkeyPatch.context() as patch:  # for this module's tests only
        patch.setenv("PYTERRIER_HYBRID_DATA", str(SHARED_DATA))
        enc = ph.BiEncoder(me5_dir, batch_size=64, dtype="float32")
        index = ph.FaissIndex(tmp_path_factory.mktemp("idx") / "en")
        docs = pt.get_dataset("irds:xquad-r/en/en").get_corpus_iter(verbose=False)
        (enc.doc_encoder() >> index).index(docs)
        yield enc, index


def numpy_ap(enc, index, x):
    """Plain AP over the full ranking, from vectors taken out of faiss and encoded queries."""
    ds = ir_datasets.load(f"xquad-r/{x}/en")
    dvecs = index._contents().vectors
    docnos = index.docnos
    queries = list(ds.queries_iter())
    qvecs = enc.encode_queries([q.text for q in queries])
    rel = {r.query_id: r.doc_id for r in ds.qrels_iter()}
    aps = []
    for q, qv in zip(queries, qvecs):
        order = np.argsort(-(dvecs @ qv), kind="stable")
        rank = int(np.flatnonzero(docnos[order] == rel[q.query_id])[0]) + 1
        aps.append(1.0 / rank)  # one relevant sentence per question in x/en
    return float(np.mean(aps))


@pytest.mark.parametrize("x", ["en", "de"])
def test_ap_matches_numpy(setup, x):
    enc, index = setup
    ds = pt.get_dataset(f"irds:xquad-r/{x}/en")
    res = pt.Experiment([index.retriever(enc, num_results=None)], ds.get_topics(), ds.get_qrels(),
                        eval_metrics=[AP], names=[f"me5 {x}->en"])
    ours = float(res["AP"][0])
    print(f"xquad-r/{x}/en AP = {ours:.4f}")
    assert ours == pytest.approx(numpy_ap(enc, index, x), abs=1e-6)
    if x == "en":
        assert ours == pytest.approx(0.844, abs=0.01)  # the evaluator's sanity anchor (docs/references.md)


def test_flexindex_interop(setup, tmp_path):
    """Our doc_encoder() output indexes in pyterrier-dr's FlexIndex and ranks the same."""
    from pyterrier_dr import FlexIndex
    enc, index = setup
    flex = FlexIndex(str(tmp_path / "flex"), verbose=False)
    (enc.doc_encoder() >> flex).index(pt.get_dataset("irds:xquad-r/en/en").get_corpus_iter(verbose=False))
    topics = pt.get_dataset("irds:xquad-r/es/en").get_topics().head(50)
    qenc = enc.query_encoder()
    ours = (qenc >> index.retriever(num_results=10))(topics)
    theirs = (qenc >> flex.np_retriever(num_results=10))(topics)
    for qid in topics.qid:
        a, b = ours[ours.qid == qid], theirs[theirs.qid == qid]
        assert list(a.docno) == list(b.docno)
        np.testing.assert_allclose(a.score, b.score, atol=1e-5)
