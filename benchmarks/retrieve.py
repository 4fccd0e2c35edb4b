"""Full-ranking retrieval speed: FaissIndex against pyterrier-dr's FlexIndex, and our exact search against faiss's.

    python benchmarks/retrieve.py [--docs 13014] [--queries 1190] [--dim 384] [--langs 11]

The same unit vectors (the XQuAD-R pool size, its 11 languages and multilingual-e5-small's dimension by
default) go into every index. Two comparisons, each printing rates and a ratio:

1. PyTerrier transformers: each retriever ranks every document for every query.
2. Exact (flat) search alone, arrays in and out: ``FaissIndex.search`` (a BLAS product and a sort) against
   faiss's own ``IndexFlatIP.search`` on the same vectors, for the whole pool and for one language's documents
   (faiss with an ``IDSelectorBatch``). Best of 3 calls each, after a warm-up call.
"""
import argparse
import tempfile
import time
from pathlib import Path
from typing import Callable, Tuple

import numpy as np
import pandas as pd

LANGS = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]


def timed(fn: Callable[[], Tuple[np.ndarray, np.ndarray]], repeats: int = 3) -> Tuple[float, np.ndarray]:
    """Best of ``repeats`` calls in seconds (this machine is shared), and the ids the call returned."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        _, ids = fn()
        best = min(best, time.perf_counter() - start)
    return best, ids


def compare_transformers(ours, flex, topics: pd.DataFrame, n_docs: int) -> None:
    systems = {
        "pyterrier-dr FlexIndex.np_retriever": flex.np_retriever(num_results=n_docs),
        "pyterrier-hybrid FaissIndex.retriever": ours.retriever(num_results=None),
    }
    rates, results = {}, {}
    for name, retr in systems.items():
        retr(topics.head(8))  # warm up (loads the index)
        start = time.perf_counter()
        results[name] = retr(topics)
        rates[name] = len(topics) / (time.perf_counter() - start)
        print(f"{name:40s} {rates[name]:8.1f} queries/s  ({len(results[name])} rows)")
    a, b = results.values()
    same = (a.sort_values(["qid", "rank"]).docno.values[: 10 * n_docs] == b.sort_values(["qid", "rank"]).docno.values[: 10 * n_docs]).mean()
    print(f"identical docno at each rank (first 10 queries): {same:.4f}")
    print(f"ratio (ours / FlexIndex): {rates['pyterrier-hybrid FaissIndex.retriever'] / rates['pyterrier-dr FlexIndex.np_retriever']:.2f}")


def compare_exact(ours, dvecs: np.ndarray, qvecs: np.ndarray, lang: str) -> None:
    import faiss

    flat = faiss.IndexFlatIP(dvecs.shape[1])
    flat.add(dvecs)
    ids = ours.lang_positions([lang])
    subset = faiss.SearchParameters(sel=faiss.IDSelectorBatch(ids))
    ours.search(qvecs[:8], None, langs=[lang])  # warm up (loads the index, copies the subset's vectors once)
    for what, k, theirs, mine in [
        ("whole pool", len(dvecs), lambda: flat.search(qvecs, len(dvecs)), lambda: ours.search(qvecs, None)),
        (f"{lang} only", len(ids), lambda: flat.search(qvecs, len(ids), params=subset), lambda: ours.search(qvecs, None, langs=[lang])),
    ]:
        t_faiss, ids_faiss = timed(theirs)
        t_ours, ids_ours = timed(mine)
        same = (ids_faiss[:10] == ids_ours[:10]).mean()
        print(f"{what:11s} k={k:6d}  faiss IndexFlatIP.search {t_faiss:6.2f} s   FaissIndex.search {t_ours:6.2f} s   "
              f"ratio (faiss / ours) {t_faiss / t_ours:.2f}   identical ids (first 10 queries) {same:.4f}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--docs", type=int, default=13014)
    p.add_argument("--queries", type=int, default=1190)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--langs", type=int, default=11, help="documents are spread over this many languages")
    args = p.parse_args()

    from pyterrier_dr import FlexIndex

    import pyterrier_hybrid as ph

    rng = np.random.default_rng(0)
    dvecs = rng.normal(size=(args.docs, args.dim)).astype(np.float32)
    dvecs /= np.linalg.norm(dvecs, axis=1, keepdims=True)
    qvecs = rng.normal(size=(args.queries, args.dim)).astype(np.float32)
    langs = LANGS[: args.langs]
    docs = [{"docno": f"{langs[i % len(langs)]}:{i}", "lang": langs[i % len(langs)], "doc_vec": v} for i, v in enumerate(dvecs)]
    topics = pd.DataFrame({"qid": [str(i) for i in range(args.queries)], "query": "x", "query_vec": list(qvecs)})

    work = Path(tempfile.mkdtemp())
    ours = ph.FaissIndex(work / "faiss")
    ours.index(iter(docs))
    flex = FlexIndex(str(work / "flex"), verbose=False)
    flex.index(iter(docs))
    print(f"{args.queries} queries x {args.docs} docs in {len(langs)} languages, dim {args.dim}, full ranking")
    compare_transformers(ours, flex, topics, args.docs)
    print("\nexact search, arrays only:")
    compare_exact(ours, dvecs, qvecs, langs[1 % len(langs)])


if __name__ == "__main__":
    main()
