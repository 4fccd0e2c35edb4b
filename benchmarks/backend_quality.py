"""Does a backend keep quality? Full-protocol reports of encoder variants against a reference, with issue 32's bounds.

    python benchmarks/backend_quality.py [--reference benchmarks/results/precision/xquad-r-float32.json] \
        benchmarks/results/backends/*.json

Each report comes from ``pyterrier-hybrid evaluate --dataset xquad-r --model .cache/me5 --backend B --dtype D
--out DIR`` (its ``report.json``). A variant keeps quality when, against the reference (torch fp32), Mo., Cr. and
Mul. mAP each move by at most 0.003, rank distance by at most 2%, and no language loses more than 0.01 mAP in any
setting (each query-language x passage-language cell, and each language's multilingual pool). A variant that moves
any of the three mAP by more than 0.01 either way is a different model: reported, never picked by ``auto``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List, Tuple

REPO = Path(__file__).resolve().parents[1]
MAP_BOUND, RD_BOUND, LANG_BOUND, OTHER_MODEL = 0.003, 0.02, 0.01, 0.01
KEYS = (("mono", "Mo."), ("cross", "Cr."), ("multi", "Mul."))


def cells(report: dict) -> Dict[str, float]:
    """Every per-language number: ``x-y`` cells of the matrix and ``multi-x`` pools."""
    found = {f"{x}-{y}": v for x, row in report["matrix"].items() for y, v in row.items()}
    found.update({f"multi-{x}": v for x, v in report["multi_by_lang"].items()})
    return found


def compare(report: dict, reference: dict) -> Tuple[Dict[str, float], float, Tuple[str, float], str]:
    """The mAP changes, the relative rank-distance change, the worst per-language cell, and the verdict."""
    deltas = {k: report["mAP"][k] - reference["mAP"][k] for k, _ in KEYS}
    rd = report["rank_distance"]["macro"] / reference["rank_distance"]["macro"] - 1
    base = cells(reference)
    worst = min(((c, v - base[c]) for c, v in cells(report).items()), key=lambda cv: cv[1])
    if any(abs(d) > OTHER_MODEL for d in deltas.values()):
        verdict = "a different model"
    elif all(abs(d) <= MAP_BOUND for d in deltas.values()) and abs(rd) <= RD_BOUND and worst[1] >= -LANG_BOUND:
        verdict = "keeps quality"
    else:
        verdict = "outside the bounds"
    return deltas, rd, worst, verdict


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reports", nargs="+", type=Path)
    p.add_argument("--reference", type=Path, default=REPO / "benchmarks/results/precision/xquad-r-float32.json")
    args = p.parse_args()
    reference = json.loads(args.reference.read_text())
    rows: List[str] = ["| variant | backend, dtype | Mo. | Cr. | Mul. | rank distance | worst language cell | verdict |",
                       "|---|---|---|---|---|---|---|---|"]
    for path in args.reports:
        report = json.loads(path.read_text())
        deltas, rd, (cell, worst), verdict = compare(report, reference)
        name = path.parent.name if path.name == "report.json" else path.stem
        rows.append(f"| {name} | {report.get('backend')}, {report.get('dtype')} | "
                    + " | ".join(f"{report['mAP'][k]:.4f} ({deltas[k]:+.4f})" for k, _ in KEYS)
                    + f" | {report['rank_distance']['macro']:.1f} ({100 * rd:+.1f}%) | {cell} {worst:+.4f} | {verdict} |")
    print(f"reference: {args.reference.relative_to(REPO) if args.reference.is_relative_to(REPO) else args.reference} "
          f"(Mo. {reference['mAP']['mono']:.4f}, Cr. {reference['mAP']['cross']:.4f}, Mul. "
          f"{reference['mAP']['multi']:.4f}, rank distance {reference['rank_distance']['macro']:.1f})\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
