"""Full-ranking retrieval speed: FaissIndex against pyterrier-dr's FlexIndex numpy retriever.

    python benchmarks/retrieve.py [--docs 13014] [--queries 1190] [--dim 384]

The same unit vectors (the XQuAD-R pool size and multilingual-e5-small's dimension by default) go into
both indexes; each retriever ranks every document for every query. Prints queries/s and the ratio.
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--docs", type=int, default=13014)
    p.add_argument("--queries", type=int, default=1190)
    p.add_argument("--dim", type=int, default=384)
    args = p.parse_args()

    from pyterrier_dr import FlexIndex

    import pyterrier_hybrid as ph

    rng = np.random.default_rng(0)
    dvecs = rng.normal(size=(args.docs, args.dim)).astype(np.float32)
    dvecs /= np.linalg.norm(dvecs, axis=1, keepdims=True)
    qvecs = rng.normal(size=(args.queries, args.dim)).astype(np.float32)
    docs = [{"docno": f"en:{i}", "lang": "en", "doc_vec": v} for i, v in enumerate(dvecs)]
    topics = pd.DataFrame({"qid": [str(i) for i in range(args.queries)], "query": "x", "query_vec": list(qvecs)})

    work = Path(tempfile.mkdtemp())
    ours = ph.FaissIndex(work / "faiss")
    ours.index(iter(docs))
    flex = FlexIndex(str(work / "flex"), verbose=False)
    flex.index(iter(docs))
    systems = {
        "pyterrier-dr FlexIndex.np_retriever": flex.np_retriever(num_results=args.docs),
        "pyterrier-hybrid FaissIndex.retriever": ours.retriever(num_results=None),
    }
    rates, results = {}, {}
    print(f"{args.queries} queries x {args.docs} docs, dim {args.dim}, full ranking")
    for name, retr in systems.items():
        retr(topics.head(8))  # warm up (loads the index)
        start = time.perf_counter()
        results[name] = retr(topics)
        rates[name] = args.queries / (time.perf_counter() - start)
        print(f"{name:40s} {rates[name]:8.1f} queries/s  ({len(results[name])} rows)")
    a, b = results.values()
    same = (a.sort_values(["qid", "rank"]).docno.values[: 10 * args.docs] == b.sort_values(["qid", "rank"]).docno.values[: 10 * args.docs]).mean()
    print(f"identical docno at each rank (first 10 queries): {same:.4f}")
    print(f"ratio (ours / FlexIndex): {rates['pyterrier-hybrid FaissIndex.retriever'] / rates['pyterrier-dr FlexIndex.np_retriever']:.2f}")


if __name__ == "__main__":
    main()
