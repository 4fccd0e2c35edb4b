"""Our encoder's backends on the CPU, side by side on the same texts: speed and closeness to torch fp32.

    PYTERRIER_HYBRID_DATA=../shared/data python benchmarks/encode_backends.py --model .cache/me5 \
        [--langs en,de,zh] [--max-queries 100] [--repeats 1] [--backends torch-fp32,torch-bf16,openvino-fp32,...]

Needs ``pip install -e '.[fast]'``. Work: the XQuAD-R passages of --langs and the first --max-queries questions of
each, encoded by ``BiEncoder(model, backend=..., dtype=...)`` with the model's own prefixes and limits. Each backend
is warmed up on a few texts (and exported on first use, outside the timing); then the repeats go round all backends
in turn, so machine noise hits everyone alike. Reported: texts/s (passages + queries, the best repeat), its ratio to
torch fp32, and the min / mean cosine of each backend's vectors to torch fp32's, with the CPU's flags. The bf16
variants run only where the CPU does bf16 natively (emulated bf16 is many times slower and says nothing). The int8
graphs are calibrated on MLQA-R (the default), outside the timing. Quality on the full protocol is
benchmarks/encode.py's and benchmarks/protocol.py's job, not this script's.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Dict, List

import numpy as np

BACKENDS = {  # name -> BiEncoder options
    "torch-fp32": {"dtype": "float32"},
    "torch-bf16": {"dtype": "bfloat16"},
    "openvino-fp32": {"backend": "openvino", "dtype": "float32"},
    "openvino-bf16": {"backend": "openvino", "dtype": "bfloat16"},
    "openvino-int8": {"backend": "openvino-int8", "dtype": "float32"},
    "openvino-int8-bf16": {"backend": "openvino-int8", "dtype": "bfloat16"},
}
#: the CPU flags that decide which kernels run
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
WARMUP_TEXTS = 16


def encode(enc, passages: List[str], queries: List[str]) -> np.ndarray:
    """Passage and query vectors, stacked."""
    return np.concatenate([enc.encode_docs(passages), enc.encode_queries(queries)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--langs", default="en,de,zh")
    parser.add_argument("--max-queries", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    args = parser.parse_args()

    import torch

    from pyterrier_hybrid import BiEncoder
    from pyterrier_hybrid.evaluation.splits import load_split
    from pyterrier_hybrid.model.precision import native_bf16

    names = [b.strip() for b in args.backends.split(",")]
    unknown = set(names) - set(BACKENDS)
    if unknown:
        raise SystemExit(f"unknown backends {sorted(unknown)}; choose from {list(BACKENDS)}")
    for name in [n for n in names if "bf16" in n]:
        if not native_bf16():
            print(f"{name}: skipped, this CPU has no native bf16 (AVX512-BF16 / AMX)")
            names.remove(name)
    flags = set(open("/proc/cpuinfo").read().split()) if os.path.exists("/proc/cpuinfo") else set()
    split = load_split("xquad-r", args.langs.split(","), args.max_queries)
    passages = split.texts
    queries = [q for x in split.langs for q in split.queries[x]["query"]]
    n = len(passages) + len(queries)
    print(f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores, torch threads "
          f"{torch.get_num_threads()}; CPU flags: {' '.join(f for f in FLAGS if f in flags) or 'unknown'}; "
          f"{len(passages)} passages + {len(queries)} queries ({args.langs}, first "
          f"{args.max_queries} questions), batch {args.batch_size}")

    encoders = {}
    for name in names:
        encoders[name] = BiEncoder(args.model, batch_size=args.batch_size, device="cpu", **BACKENDS[name])
        encode(encoders[name], passages[:WARMUP_TEXTS], queries[:WARMUP_TEXTS])
    best: Dict[str, float] = {name: float("inf") for name in names}
    vecs: Dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name in names:
            start = time.perf_counter()
            vecs[name] = encode(encoders[name], passages, queries)
            best[name] = min(best[name], time.perf_counter() - start)

    base = "torch-fp32" if "torch-fp32" in names else names[0]
    print(f"\n| backend | texts/s | x {base} | min cosine to {base} | mean cosine |\n|---|---|---|---|---|")
    for name in names:
        norms = np.linalg.norm(vecs[name], axis=1) * np.linalg.norm(vecs[base], axis=1)
        cos = (vecs[name] * vecs[base]).sum(1) / norms
        print(f"| {name} | {n / best[name]:.1f} | {best[base] / best[name]:.2f} | {cos.min():.5f} | {cos.mean():.5f} |")


if __name__ == "__main__":
    main()
