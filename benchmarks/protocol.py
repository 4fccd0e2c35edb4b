"""Protocol wall time: run_protocol (encode once, filter one in-memory index) against one pt.Experiment per setting.

    python benchmarks/protocol.py --model .cache/me5 [--langs en,de,zh] [--max-queries 200] [--full] [--full-only]

Both sides do the same settings (all x->y pairs plus x->pooled for the chosen languages) with the same
model and batch size, in one process, and must agree on mAP. The naive side re-encodes the corpus and
the queries inside every pt.Experiment, which is what a pipeline per setting does. --full also times
run_protocol alone on every language and question (the naive side would take over an hour here); --full-only
does only that, and also times the non-encoding part again from cached vectors (encoding skipped).
"""
import argparse
import os
import tempfile
import time
from pathlib import Path


def naive(encoder, dataset, langs, max_queries):
    import pyterrier as pt
    from ir_measures import AP

    import pyterrier_hybrid as ph
    from pyterrier_hybrid.evaluation.splits import load_split

    split = load_split(dataset, langs, max_queries)
    work = Path(tempfile.mkdtemp())
    matrix, multi = {}, {}
    for x in langs:
        topics = split.queries[x][["qid", "query"]]
        for corpus in langs + ["pooled"]:
            docs = [d for y in (langs if corpus == "pooled" else [corpus])
                    for d in pt.get_dataset(f"irds:{dataset}/{x}/{y}").get_corpus_iter(verbose=False)]
            qrels = pd_concat([pt.get_dataset(f"irds:{dataset}/{x}/{y}").get_qrels()
                               for y in (langs if corpus == "pooled" else [corpus])])
            qrels = qrels[qrels.qid.isin(topics.qid)]
            index = ph.FaissIndex(work / f"{x}-{corpus}")
            (encoder.doc_encoder() >> index).index(docs)
            res = pt.Experiment([index.retriever(encoder, num_results=None)], topics[topics.qid.isin(qrels.qid)],
                                qrels, eval_metrics=[AP])
            if corpus == "pooled":
                multi[x] = float(res["AP"][0])
            else:
                matrix[(x, corpus)] = float(res["AP"][0])
    return matrix, multi


def pd_concat(frames):
    import pandas as pd
    return pd.concat(frames, ignore_index=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--dataset", default="xquad-r")
    p.add_argument("--langs", default="en,de,zh")
    p.add_argument("--max-queries", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--full", action="store_true")
    p.add_argument("--full-only", action="store_true")
    args = p.parse_args()
    args.full = args.full or args.full_only
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    os.environ.setdefault("PYTERRIER_HYBRID_DATA", str(shared))

    import pyterrier_hybrid as ph
    from pyterrier_hybrid.evaluation.protocol import run_protocol
    from pyterrier_hybrid.evaluation.rankers import DenseRanker

    encoder = ph.BiEncoder(args.model, batch_size=args.batch_size)
    langs = args.langs.split(",")
    if args.full:
        cache = tempfile.mkdtemp()
        rep = run_protocol(DenseRanker(encoder, cache_dir=cache), args.dataset, verbose=False)
        t = rep["timing"]
        print(f"full {args.dataset} protocol ({len(rep['langs'])**2} + {len(rep['langs'])} settings), {encoder.dtype}: "
              f"{t['total_s']:.1f} s, encoding {t['encode_s']:.1f} s, everything else {t['total_s'] - t['encode_s']:.1f} s "
              f"({100 * (1 - t['encode_s'] / t['total_s']):.1f}% of the total)")
        again = run_protocol(DenseRanker(encoder, cache_dir=cache), args.dataset, verbose=False)
        print(f"again from the cached vectors: {again['timing']['total_s']:.1f} s (encoding "
              f"{again['timing']['encode_s']:.1f} s)")
        if args.full_only:
            return

    start = time.perf_counter()
    rep = run_protocol(DenseRanker(encoder), args.dataset, langs=langs, max_queries=args.max_queries, verbose=False)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    matrix, multi = naive(encoder, args.dataset, langs, args.max_queries)
    theirs = time.perf_counter() - start
    diff = max([abs(rep["matrix"][x][y] - v) for (x, y), v in matrix.items()] +
               [abs(rep["multi_by_lang"][x] - v) for x, v in multi.items()])
    n = len(langs) ** 2 + len(langs)
    print(f"{n} settings ({args.langs}, {args.max_queries} questions): run_protocol {ours:.1f} s "
          f"(encoding {rep['timing']['encode_s']:.1f} s), one pt.Experiment per setting {theirs:.1f} s")
    print(f"largest mAP difference between the two: {diff:.2e}")
    print(f"ratio (naive time / run_protocol time): {theirs / ours:.2f}")


if __name__ == "__main__":
    main()
