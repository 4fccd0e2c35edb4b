"""Which runtime runs our exported graph: ONNX Runtime against OpenVINO, on the same graph and texts, one run.

    pip install onnxruntime   # beside '.[fast]'; the package itself no longer uses it
    PYTERRIER_HYBRID_DATA=../shared/data python benchmarks/runtime_choice.py --model .cache/me5

Texts: XQuAD-R in all 11 languages, every 25th passage and the first 20 questions of each (about 740 texts), with
the E5 prefixes, through ``BiEncoder``'s own tokenisation, batching and pooling; only the graph's runner changes.
Variants: torch fp32 and bf16 (autocast); ONNX Runtime fp32 and dynamic int8 (per-channel MatMul weights, its
quantiser); OpenVINO at f32 and bf16 inference precision, and NNCF's static int8 of the same graph (transformer preset,
calibrated on MLQA-R like ``backend="openvino-int8"``). Reported: texts/s (best of two rounds, every variant once per
round), the ratio to torch fp32, and min / mean cosine to the ONNX fp32 vectors. bf16 variants need native bf16.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    args = p.parse_args()

    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from pyterrier_hybrid import BiEncoder
    from pyterrier_hybrid.evaluation.splits import load_split
    from pyterrier_hybrid.model.compiled import CompiledBody, cpu_threads
    from pyterrier_hybrid.model.precision import native_bf16

    enc = BiEncoder(args.model, backend="openvino", dtype="float32", batch_size=32)
    int8 = BiEncoder(args.model, backend="openvino-int8", dtype="float32", batch_size=32)
    graph = enc.compiled.path
    split = load_split("xquad-r", max_queries=20)
    passages = split.texts[::25]
    queries = [q for x in split.langs for q in split.queries[x]["query"]]

    class OrtBody:
        def __init__(self, path: Path):
            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = cpu_threads(), 1
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            self.names = [i.name for i in self.session.get_inputs()]

        def __call__(self, toks):
            return self.session.run(None, {n: toks[n].astype(np.int64) for n in self.names})[0]

    work = Path(tempfile.mkdtemp())
    quantize_dynamic(str(graph), str(work / "int8.onnx"), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"])
    runners: Dict[str, Callable] = {"onnxruntime fp32": OrtBody(graph), "onnxruntime dynamic int8": OrtBody(work / "int8.onnx"),
                                    "openvino f32": CompiledBody(graph, "float32"),
                                    "openvino int8 (NNCF static)": CompiledBody(int8.compiled.path, "float32")}
    torch_encoders = {"torch fp32": BiEncoder(args.model, dtype="float32", device="cpu", batch_size=32)}
    if native_bf16():
        runners["openvino bf16"] = CompiledBody(graph, "bfloat16")
        torch_encoders["torch bf16"] = BiEncoder(args.model, dtype="bfloat16", device="cpu", batch_size=32)

    def encode_with(body) -> np.ndarray:
        enc.compiled = body
        return np.concatenate([enc.encode_docs(passages), enc.encode_queries(queries)])

    def encode_torch(e) -> np.ndarray:
        return np.concatenate([e.encode_docs(passages), e.encode_queries(queries)])

    reference = encode_with(runners["onnxruntime fp32"])
    best: Dict[str, float] = {}
    vectors: Dict[str, np.ndarray] = {}
    for _ in range(2):
        for name, body in runners.items():
            start = time.perf_counter()
            vectors[name] = encode_with(body)
            best[name] = min(best.get(name, np.inf), time.perf_counter() - start)
        for name, e in torch_encoders.items():
            start = time.perf_counter()
            vectors[name] = encode_torch(e)
            best[name] = min(best.get(name, np.inf), time.perf_counter() - start)
    n = len(passages) + len(queries)
    print(f"{len(passages)} passages + {len(queries)} queries, {cpu_threads()} threads\n")
    print("| variant | texts/s | x torch fp32 | min cosine | mean cosine |\n|---|---|---|---|---|")
    for name in sorted(best, key=best.get, reverse=True):
        cos = (vectors[name] * reference).sum(1)
        print(f"| {name} | {n / best[name]:.1f} | {best['torch fp32'] / best[name]:.2f} | {cos.min():.5f} | "
              f"{cos.mean():.5f} |")


if __name__ == "__main__":
    main()
