"""FaissIndex at scale: indexing memory and speed against pyterrier-dr's FlexIndex, flat search of a large index,
compressed types against flat on real vectors, and sharded encoding over 1 and 2 processes.

    python benchmarks/scale.py indexing [--sizes 100000,1000000,4000000]   # synthetic 384-d vectors
    python benchmarks/scale.py search [--docs 4000000] [--queries 1000]     # flat, top-100, from disk
    python benchmarks/scale.py compressed --model .cache/me5 [--cache-dir runs/combine/cache] [--language-removal center]
    python benchmarks/scale.py sharded --model .cache/me5                   # torchrun 1 vs 2 processes

Each measurement runs in a fresh process; peak RSS is taken above that process's baseline after imports.
Results are merged into benchmarks/results/scale.json (one key per section).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

RESULTS = Path(__file__).parent / "results" / "scale.json"
DIM = 384

INDEX_CHILD = r"""
import json, resource, sys, time
import numpy as np
kind, n, dim, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
import pyterrier_hybrid as ph
from pyterrier_dr import FlexIndex
def docs():  # unit vectors made 4096 at a time, so the stream itself holds nothing
    rng = np.random.default_rng(0)
    for start in range(0, n, 4096):
        v = rng.normal(size=(min(4096, n - start), dim)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        for i, row in enumerate(v):
            yield {"docno": f"d{start + i}", "lang": ("en", "de", "fr")[(start + i) % 3], "doc_vec": row}
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
index = ph.FaissIndex(path) if kind == "faiss" else FlexIndex(path, verbose=False)
index.index(docs())
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"base_mb": base / 1024, "peak_mb": peak / 1024, "seconds": seconds}))
"""

SEARCH_CHILD = r"""
import json, resource, sys, time
import numpy as np
import pyterrier_hybrid as ph
path, n_queries = sys.argv[1], int(sys.argv[2])
index = ph.FaissIndex(path)
q = np.random.default_rng(1).normal(size=(n_queries, index.dim)).astype(np.float32)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
scores, ids = index.search(q, 100)
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"base_mb": base / 1024, "peak_mb": peak / 1024, "seconds": seconds, "docs": len(index),
                  "in_memory": index._contents().vectors is not None, "top_ids_ok": bool((ids >= 0).all())}))
"""


def child(code: str, *args) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def save(section: str, value) -> None:
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results[section] = value
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


def indexing(sizes) -> list:
    rows = []
    for n in sizes:
        row = {"docs": n, "vectors_mb": n * DIM * 4 / 2 ** 20}
        with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
            for kind in ("flex", "faiss"):
                m = child(INDEX_CHILD, kind, n, DIM, Path(tmp) / kind)
                row[kind] = {"peak_above_baseline_mb": round(m["peak_mb"] - m["base_mb"], 1),
                             "docs_per_s": round(n / m["seconds"])}
        flex, ours = row["flex"]["peak_above_baseline_mb"], row["faiss"]["peak_above_baseline_mb"]
        row["memory_ratio_ours_over_flex"] = round(ours / flex, 2) if flex >= 1 else None
        row["speed_ratio_ours_over_flex"] = round(row["faiss"]["docs_per_s"] / row["flex"]["docs_per_s"], 2)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def search(docs: int, queries: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="scale-search-") as tmp:
        path = Path(tmp) / "faiss"
        child(INDEX_CHILD, "faiss", docs, DIM, path)
        m = child(SEARCH_CHILD, path, queries)
    out = {"docs": docs, "queries": queries, "k": 100, "seconds": round(m["seconds"], 1),
           "queries_per_s": round(queries / m["seconds"], 1), "peak_above_baseline_mb": round(m["peak_mb"] - m["base_mb"], 1),
           "vectors_mb": round(docs * DIM * 4 / 2 ** 20), "read_from_disk_in_blocks": not m["in_memory"]}
    print(json.dumps(out), flush=True)
    return out


def real_vectors(model: str, cache_dir: str):
    """The encoded XQuAD-R and MLQA-R candidates and questions (bf16, as the protocol encodes them), each one's
    language, and each question's relevant candidates in the pool of both: its answer sentence in every language of
    its dataset."""
    import numpy as np

    from pyterrier_hybrid import BiEncoder, DenseRanker, load_split

    encoder = BiEncoder(model, batch_size=64, query_max_length=64, doc_max_length=512)
    docs, queries, docnos, relevant, doc_langs, query_langs = [], [], [], [], [], []
    for dataset in ("xquad-r", "mlqa-r"):
        ranker = DenseRanker(encoder, cache_dir=cache_dir)
        split = load_split(dataset)
        ranker.prepare(split)
        offset = len(docnos)
        docs.append(ranker.index._contents().vectors)
        for lang in split.langs:
            queries.append(ranker.query_vecs[lang])
            query_langs += [lang] * len(ranker.query_vecs[lang])
            relevant += [[offset + split.answers[y][p] for y in split.langs if p in split.answers[y]]
                         for p in split.queries[lang]["parallel_id"]]
        docnos += list(split.docnos)
        doc_langs += split.doc_lang_names
    return np.concatenate(docs), np.concatenate(queries), docnos, relevant, doc_langs, query_langs, encoder.dtype


def answer_recall(ids, relevant) -> float:
    """Mean share of each question's relevant candidates in its top 100 (R@100 against the qrels)."""
    import numpy as np

    return float(np.mean([len(set(r) & set(row.tolist())) / len(r) for row, r in zip(ids, relevant)]))


def compressed(model: str, cache_dir: str, types, nprobes, refine: int, removal: Optional[str] = None) -> dict:
    """Recall and speed of compressed types against flat; ``refine`` re-scores that many candidates exactly from
    the vectors kept on disk (memory counts what search holds in RAM: the faiss index, not the file). With
    ``removal``, flat and every type index the vectors with that language removal (statistics from the pool)."""
    import numpy as np

    import pyterrier_hybrid as ph

    docs, queries, docnos, relevant, doc_langs, query_langs, dtype = real_vectors(model, cache_dir)
    print(f"{len(docs)} candidates, {len(queries)} queries ({dtype}), language removal {removal}", flush=True)
    flat = ph.FaissIndex.from_vectors(docs, docnos, doc_langs, language_removal=removal)
    t = time.perf_counter()
    _, exact = flat.search(queries, 100, query_langs=query_langs)
    flat_qps = len(queries) / (time.perf_counter() - t)
    flat_recall = answer_recall(exact, relevant)
    rows = [{"index_type": "flat", "bytes_per_doc": DIM * 4, "memory_vs_flat": 1.0, "R@100": round(flat_recall, 4),
             "R@100_vs_flat": 1.0, "top100_overlap_with_flat": 1.0, "queries_per_s": round(flat_qps)}]
    print(json.dumps(rows[-1]), flush=True)
    with tempfile.TemporaryDirectory(prefix="scale-pq-") as tmp:
        for kind in types:
            path = Path(tmp) / kind.replace(",", "_")
            index = ph.FaissIndex(path, index_type=kind, keep_vectors=True, language_removal=removal).index(
                {"docno": d, "doc_vec": v, "lang": lang} for d, v, lang in zip(docnos, docs, doc_langs))
            size = json.loads((path / "pt_meta.json").read_text())["files"]["index.faiss"]["size"]
            settings = [(p, r) for p in (nprobes if "IVF" in kind else [None]) for r in (None, refine)]
            for nprobe, rerank in settings:
                t = time.perf_counter()
                _, ids = index.search(queries, 100, query_langs=query_langs, nprobe=nprobe or 16, refine=rerank)
                qps = len(queries) / (time.perf_counter() - t)
                overlap = float(np.mean([len(np.intersect1d(a, b)) / 100 for a, b in zip(ids, exact)]))
                recall = answer_recall(ids, relevant)
                rows.append({"index_type": kind, "nprobe": nprobe, "refine": rerank,
                             "bytes_per_doc": round(size / len(docs), 1),
                             "memory_vs_flat": round(size / (len(docs) * DIM * 4), 3), "R@100": round(recall, 4),
                             "R@100_vs_flat": round(recall / flat_recall, 4),
                             "top100_overlap_with_flat": round(overlap, 4), "queries_per_s": round(qps)})
                print(json.dumps(rows[-1]), flush=True)
    return {"docs": len(docs), "queries": len(queries), "dtype": dtype, "language_removal": removal, "rows": rows}


def sharded(model: str, dataset: str) -> dict:
    import numpy as np

    import pyterrier_hybrid as ph

    out = {"dataset": dataset, "model": model, "dtype": "float32"}
    with tempfile.TemporaryDirectory(prefix="scale-shard-") as tmp:
        indexes = {}
        for nproc in (1, 2):
            path = Path(tmp) / f"n{nproc}"
            cmd = ["-m", "pyterrier_hybrid.cli", "index", "--dataset", dataset, "--model", model, "--out", str(path),
                   "--dtype", "float32", "--shard-size", "256"]
            if nproc > 1:
                cmd = ["-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_addr", "127.0.0.1",
                       "--master_port", "29731"] + cmd
            env = {**os.environ, "OMP_NUM_THREADS": str(os.cpu_count() // nproc)}
            t = time.perf_counter()
            subprocess.run([sys.executable, *cmd], check=True, env=env, capture_output=True)
            out[f"{nproc}_process_s"] = round(time.perf_counter() - t, 1)
            indexes[nproc] = ph.FaissIndex(path)
        one, two = indexes[1], indexes[2]
        out["docs"] = len(one)
        out["same_docnos_in_order"] = list(one.docnos) == list(two.docnos)
        out["max_abs_vector_diff"] = float(np.abs(one._contents().vectors - two._contents().vectors).max())
    out["speed_ratio_2_over_1"] = round(out["1_process_s"] / out["2_process_s"], 2)
    out["cores"] = os.cpu_count()
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("section", choices=["indexing", "search", "compressed", "sharded"])
    p.add_argument("--sizes", default="100000,1000000,4000000")
    p.add_argument("--docs", type=int, default=4_000_000)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--model", help="compressed / sharded: the encoder (multilingual-e5-small)")
    p.add_argument("--cache-dir", default="runs/combine/cache", help="compressed: encoded vectors are cached here")
    p.add_argument("--types", default="IVF256,PQ96;IVF256,PQ48;OPQ96,IVF256,PQ96;HNSW32",
                   help="compressed: ';'-separated faiss factory strings")
    p.add_argument("--nprobe", default="16,64,256")
    p.add_argument("--refine", type=int, default=1000, help="compressed: candidates re-scored exactly from disk")
    p.add_argument("--dataset", default="xquad-r/de/de", help="sharded: the corpus to index")
    p.add_argument("--language-removal", choices=["center", "lir"],
                   help="compressed: index every type with this removal (results under compressed-<method>)")
    args = p.parse_args()
    command = "python benchmarks/scale.py " + " ".join(sys.argv[1:])
    if args.section == "indexing":
        value = {"command": command, "dim": DIM, "rows": indexing([int(s) for s in args.sizes.split(",")])}
    elif args.section == "search":
        value = {"command": command, **search(args.docs, args.queries)}
    elif args.section == "compressed":
        if not args.model:
            p.error("compressed needs --model")
        value = {"command": command, **compressed(args.model, args.cache_dir, args.types.split(";"),
                                                  [int(x) for x in args.nprobe.split(",")], args.refine,
                                                  args.language_removal)}
    else:
        if not args.model:
            p.error("sharded needs --model")
        value = {"command": command, **sharded(args.model, args.dataset)}
    save(args.section + (f"-{args.language_removal}" if args.language_removal else ""), value)


if __name__ == "__main__":
    main()
