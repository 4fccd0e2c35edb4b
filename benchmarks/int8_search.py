"""Which MatMuls must stay in fp32 for int8 to keep quality? NNCF's accuracy-aware quantisation, on validation ids.

    python benchmarks/int8_search.py --model .cache/me5 [--smooth-quant] [--out benchmarks/results/int8-search/search.json]

NNCF quantises every MatMul of our exported graph (the calibration of ``backend="openvino-int8"``), ranks the
quantised operations by how far reverting each one brings the outputs back to fp32, and reverts them one at a time,
best first, until the validation metric is back within ``--max-drop``. Nothing of that is written here: this script
only supplies the metric.

The metric is measured on MLQA-R's held-out validation ids (the protocol's ``--holdout 0.1``), never on XQuAD-R,
which stays the test: the largest of issue 32's five quality bounds, each as a fraction of its bound, against the
fp32 graph on the same ids. Mo., Cr. and Mul. mAP within 0.003, rank distance within 2%, no language cell losing
more than 0.01. The metric is 1 minus the largest fraction, so the fp32 graph scores 1 and an absolute drop of
``--max-drop`` is that fraction of a bound (1: on it).

SmoothQuant is off unless ``--smooth-quant``: NNCF reverts an operation by restoring its original weights while
SmoothQuant's scaling of its input stays in the graph (with it on, reverting layer 11's feed-forward output alone
dropped validation Mo. from 0.626 to 0.459).

Each validation is printed as a JSON line as it ends (a stopped search keeps its trace in the log); at the end the
reverted MatMuls go to ``--out``. A list found this way belongs in ``INT8_FP32_NODES``
(``pyterrier_hybrid/model/encoder.py``), with the same SmoothQuant setting, and is then checked on the full XQuAD-R
protocol with ``benchmarks/backend_quality.py``. Results so far: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Set

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from backend_quality import LANG_BOUND, MAP_BOUND, RD_BOUND, compare  # noqa: E402

from pyterrier_hybrid import BiEncoder  # noqa: E402
from pyterrier_hybrid.atomic import atomic_write_text  # noqa: E402
from pyterrier_hybrid.evaluation.protocol import run_protocol  # noqa: E402
from pyterrier_hybrid.evaluation.splits import load_split  # noqa: E402
from pyterrier_hybrid.model.compiled import default_calibration  # noqa: E402

HOLDOUT = 0.1


def bound_fraction(report: dict, reference: dict) -> Dict[str, float]:
    """Each of the five quality measures' change against the reference, as a fraction of its bound."""
    deltas, rd, (cell, worst), _ = compare(report, reference)
    found = {k: abs(v) / MAP_BOUND for k, v in deltas.items()}
    found.update(rank_distance=abs(rd) / RD_BOUND, worst_cell=max(0.0, -worst) / LANG_BOUND)
    return found


def validation_texts() -> Dict[str, List[str]]:
    """The validation ids' queries and their answer sentences: NNCF's ranking data."""
    split = load_split("mlqa-r", holdout=HOLDOUT)
    held = {i for q in split.queries.values() for i in q["parallel_id"]}  # every candidate stays; only these answer
    return {"query": [t for q in split.queries.values() for t in q["query"]],
            "doc": [split.texts[i] for a in split.answers.values() for pid, i in a.items() if pid in held]}


def int8_matmuls(model) -> Set[str]:
    """The MatMuls that read a FakeQuantize output, through reshapes, transposes and converts."""
    passthrough = {"Reshape", "Transpose", "Convert", "Squeeze", "Unsqueeze"}

    def quantized(node) -> bool:
        while node.get_type_name() in passthrough:
            node = node.input_value(0).get_node()
        return node.get_type_name() == "FakeQuantize"

    return {op.get_friendly_name() for op in model.get_ops() if op.get_type_name() == "MatMul"
            and any(quantized(i.get_node()) for i in op.input_values())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--max-drop", type=float, default=1.0,
                   help="the largest accepted fraction of a bound on validation (1: on the bound)")
    p.add_argument("--smooth-quant", action="store_true",
                   help="keep the preset's SmoothQuant on (shows the revert problem described above)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks/results/int8-search/search.json")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO)
    import nncf
    import openvino as ov

    start = time.perf_counter()
    encoder = BiEncoder(args.model, backend="openvino", dtype="float32", verbose=False)
    reference = run_protocol(encoder, "mlqa-r", holdout=HOLDOUT, verbose=False)
    calibration = encoder.token_batches(default_calibration())
    items = encoder.token_batches(validation_texts())
    calls: List[dict] = []

    def validate(compiled, data) -> tuple:
        # NNCF first calls this with one item to choose its ranking mode; refusing it makes NNCF rank the quantised
        # operations by their outputs, instead of running the whole protocol once per item
        if sum(1 for _ in data) < len(items):
            raise ValueError("the metric needs the whole validation set")
        encoder.compiled.compiled = compiled
        report = run_protocol(encoder, "mlqa-r", holdout=HOLDOUT, verbose=False)
        fractions = bound_fraction(report, reference)
        calls.append({"seconds": round(time.perf_counter() - start, 1), "metric": 1 - max(fractions.values()),
                      "bound_fractions": fractions, "mAP": report["mAP"],
                      "rank_distance": report["rank_distance"]["macro"]})
        print(json.dumps(calls[-1]), flush=True)
        return 1 - max(fractions.values()), None

    model = ov.Core().read_model(str(encoder.compiled.path))
    restorer = nncf.AdvancedAccuracyRestorerParameters(num_ranking_workers=1)
    common = dict(model_type=nncf.ModelType.TRANSFORMER, subset_size=len(calibration))
    advanced = None if args.smooth_quant else nncf.AdvancedQuantizationParameters(
        smooth_quant_alphas=nncf.AdvancedSmoothQuantParameters(matmul=-1, convolution=-1))
    quantized = nncf.quantize_with_accuracy_control(
        model, nncf.Dataset(calibration), nncf.Dataset(items), validate, max_drop=args.max_drop,
        drop_type=nncf.DropType.ABSOLUTE, advanced_accuracy_restorer_parameters=restorer,
        advanced_quantization_parameters=advanced, **common)
    plain = nncf.quantize(ov.Core().read_model(str(encoder.compiled.path)), nncf.Dataset(calibration),
                          advanced_parameters=advanced, **common)
    kept = sorted(int8_matmuls(plain) - int8_matmuls(quantized))
    result = {"model": args.model, "validation": f"mlqa-r holdout {HOLDOUT}", "max_drop": args.max_drop,
              "reference": {"mAP": reference["mAP"], "rank_distance": reference["rank_distance"]["macro"]},
              "smooth_quant": args.smooth_quant, "fp32_matmuls": kept, "validations": calls,
              "seconds": round(time.perf_counter() - start, 1), "threads": len(os.sched_getaffinity(0)),
              "nncf": nncf.__version__, "openvino": ov.__version__}
    atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    print(f"{len(kept)} MatMuls kept in fp32: {kept}\nwrote {args.out}")


if __name__ == "__main__":
    main()
