"""Peak memory of indexing: FaissIndex against pyterrier-dr's FlexIndex, each in a fresh process.

    python benchmarks/index_memory.py [--docs 13014] [--dim 384]

Documents (random unit vectors with docno and lang) are generated lazily, so the stream itself holds
nothing; the peak RSS above the process's baseline after imports is what indexing cost.
"""
import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, tempfile
import numpy as np
import pyterrier_hybrid as ph
from pyterrier_dr import FlexIndex
kind, n, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def docs():
    rng = np.random.default_rng(0)
    for i in range(n):
        v = rng.normal(size=dim).astype(np.float32)
        yield {"docno": f"en:{i}", "lang": "en", "doc_vec": v / np.linalg.norm(v)}
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
path = tempfile.mkdtemp() + "/idx"
index = ph.FaissIndex(path) if kind == "faiss" else FlexIndex(path, verbose=False)
index.index(docs())
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"base_mb": base / 1024, "peak_mb": peak / 1024}))
"""


def measure(kind, n, dim):
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(n), str(dim)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--docs", type=int, default=13014)
    p.add_argument("--dim", type=int, default=384)
    args = p.parse_args()
    raw_mb = args.docs * args.dim * 4 / 2**20
    print(f"{args.docs} docs x dim {args.dim} ({raw_mb:.1f} MB of float32 vectors)")
    got = {}
    for kind, name in [("flex", "pyterrier-dr FlexIndex"), ("faiss", "pyterrier-hybrid FaissIndex")]:
        m = measure(kind, args.docs, args.dim)
        got[kind] = m["peak_mb"] - m["base_mb"]
        print(f"{name:28s} peak RSS {m['peak_mb']:7.1f} MB, {got[kind]:6.1f} MB above baseline "
              f"({got[kind] / raw_mb:.2f}x the vectors)")
    if got["flex"] >= 1.0:
        print(f"ratio of indexing memory (ours / FlexIndex): {got['faiss'] / got['flex']:.2f}")
    else:
        print("ratio: n/a, FlexIndex stays within its baseline (it streams vectors to a file on disk)")


if __name__ == "__main__":
    main()
