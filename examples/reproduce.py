"""Reproduce the paper's comparison: X-X-mono vs X-Y vs hybrid batches, evaluated zero-shot on XQuAD-R.

Three models start from the same checkpoint and train with the same budget and seed on MLQA-R
(ar de en es hi vi zh); el, ru, th and tr are never trained on ("unseen"). They are evaluated with the
full LAReQA protocol on XQuAD-R, next to the zero-shot starting model and BM25, and the summary reports
seen and unseen languages separately, with paired tests between hybrid and the other two.

    python examples/reproduce.py --model .cache/me5 --out runs/reproduce              # CPU defaults
    python examples/reproduce.py --model M --out R --steps 2000 --batch-size 100 --doc-max-length 256   # a GPU

Every stage is resumable: a finished model or report is reused, a killed training run resumes from its
checkpoint. Outputs: R/models/<sampling>/, R/eval/<system>/report.{json,md} and matrix.png, R/summary.md
and R/summary.json.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List, Sequence

from ir_datasets_ext import MLQA_R
from pyterrier_hybrid.evaluation.reference import PAPER
from pyterrier_hybrid.evaluation.report import seen_unseen, seen_unseen_rows
from pyterrier_hybrid.model.model_dir import TRAINING_CONFIG
from pyterrier_hybrid.studies.runs import REPO, cli, use_shared_data
from pyterrier_hybrid.studies.stats import paired_test
from pyterrier_hybrid.training.checkpoint import state_path


def train(args, sampling: str, alpha: float, out: Path) -> Path:
    """Train one model unless it is finished; resume it when a checkpoint exists."""
    if _finished(out, args.steps):
        return out
    cmd = ["train", "--sampling", sampling, "--alpha", str(alpha), "--model", args.model, "--data", args.train_data,
           "--langs", args.train_langs, "--out", str(out), "--steps", str(args.steps), "--batch-size",
           str(args.batch_size), "--seed", str(args.seed), "--lr", str(args.lr), "--doc-max-length", str(args.doc_max_length),
           "--checkpoint-every", str(max(1, args.steps // 10))]
    if args.grad_cache_chunk:
        cmd += ["--grad-cache-chunk", str(args.grad_cache_chunk)]
    if state_path(out).is_file():
        cmd.append("--resume")
    cli(*cmd)
    return out


def _finished(out: Path, steps: int) -> bool:
    """The trainer writes training_config.json with the model, at the end of a run (early-stopped or not)."""
    config = out / TRAINING_CONFIG
    return config.is_file() and json.loads(config.read_text())["train"]["steps"] == steps


def evaluate(args, name: str, model: str | None, out: Path) -> dict:
    """Run the protocol for one system unless its report exists."""
    report = out / "report.json"
    if not report.is_file():
        cmd = ["evaluate", "--dataset", args.eval_dataset, "--out", str(out), "--batch-size", "64"]
        cmd += ["--bm25"] if model is None else ["--model", model, "--cache-dir", str(Path(args.out) / "vectors")]
        if args.max_queries:
            cmd += ["--max-queries", str(args.max_queries)]
        cli(*cmd)
    rep = json.loads(report.read_text())
    rep["name"] = name
    return rep


def direction(a: Sequence[float], b: Sequence[float], name: str = "hybrid") -> str:
    """In how many pairs ``a`` is above or below ``b``: "hybrid higher in all 11", "hybrid higher in 7, lower in 4 of 11"."""
    higher = sum(x > y for x, y in zip(a, b))
    lower = sum(x < y for x, y in zip(a, b))
    if higher == len(a) or lower == len(a):
        return f"{name} {'higher' if higher else 'lower'} in all {len(a)}"
    return f"{name} higher in {higher}, lower in {lower} of {len(a)}"


def paired_tests(a: dict, b: dict) -> Dict[str, object]:
    """Wilcoxon signed-rank p-values between two systems, paired over settings (Mo.+Cr. cells; Mul. languages),
    and, for the per-language measures, in how many languages ``a`` is higher or lower."""
    cells = [(x, y) for x in a["matrix"] for y in a["matrix"][x]]
    langs = list(a["multi_by_lang"])
    out: Dict[str, object] = {
        "matrix_p": paired_test([a["matrix"][x][y] for x, y in cells], [b["matrix"][x][y] for x, y in cells])[2]}
    for name, key in (("multi", "multi_by_lang"), ("rank_distance", "rank_distance")):
        va, vb = [a[key][x] for x in langs], [b[key][x] for x in langs]
        out[f"{name}_p"] = paired_test(va, vb)[2]
        out[f"{name}_direction"] = direction(va, vb)
    return out


def summarize(reports: List[dict], out: Path, seen: Sequence[str]) -> str:
    rows = ["| system | Mo. | Cr. | Mul. | rank distance | QL share@10 | rank corr. |", "|---|---|---|---|---|---|---|"]
    for r in reports:
        m = r["mAP"]
        rows.append(f"| {r['name']} | {m['mono']:.3f} | {m['cross']:.3f} | {m['multi']:.3f} | "
                    f"{r['rank_distance']['macro']:.1f} | {r['query_language_share@10']['macro']:.3f} | "
                    f"{r['rank_correlation']['macro']:.3f} |")
    parts = {r["name"]: seen_unseen(r, seen) for r in reports}
    rows += ["", "Seen (training) and unseen languages; a Cr. setting counts as unseen when either language is unseen.", "",
             *seen_unseen_rows(parts)]
    by_name = {r["name"]: r for r in reports}
    tests = {}
    if "hybrid" in by_name:
        h = by_name["hybrid"]
        n_cells, n_langs = sum(map(len, h["matrix"].values())), len(h["multi_by_lang"])
        rows += ["", f"Wilcoxon signed-rank p-values, hybrid against each (paired over the {n_cells} Mo./Cr. settings; over "
                 f"the {n_langs} languages for Mul. mAP and rank distance, with the languages where hybrid is higher or "
                 "lower).", "", "| hybrid vs | Mo.+Cr. mAP | Mul. mAP | rank distance |", "|---|---|---|---|"]
        for other in ["X-X-mono", "X-Y"]:
            if other in by_name:
                tests[other] = paired_tests(h, by_name[other])
                t = tests[other]
                rows.append(f"| {other} | p = {t['matrix_p']:.2g} | p = {t['multi_p']:.2g} ({t['multi_direction']}) | "
                            f"p = {t['rank_distance_p']:.2g} ({t['rank_distance_direction']}) |")
    rows += ["", "Paper (XQuAD-R, arXiv 2408.10536; docs/references.md):", "", "| model | Mo. | Cr. | Mul. | rank distance |", "|---|---|---|---|---|"]
    rows += [f"| {k} | {a:.3f} | {b:.3f} | {c:.3f} | {d:.1f} |" for k, (a, b, c, d) in PAPER["xquad-r"].items()]
    text = "\n".join(rows) + "\n"
    (out / "summary.md").write_text(text)
    (out / "summary.json").write_text(json.dumps({"reports": {r["name"]: {k: r[k] for k in ("mAP", "rank_distance")}
                                                              for r in reports}, "parts": parts, "tests": tests}, indent=2))
    return text


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="starting checkpoint: directory or Hugging Face name")
    p.add_argument("--out", required=True)
    p.add_argument("--train-data", default=str(REPO.parent / "shared" / "data" / "mlqa-r"),
                   help="training data for pyterrier-hybrid train --data (default: ../shared/data/mlqa-r)")
    p.add_argument("--train-langs", default=",".join(MLQA_R.langs), help="the seen languages (default: MLQA-R's seven)")
    p.add_argument("--eval-dataset", default="xquad-r")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--doc-max-length", type=int, default=96)
    p.add_argument("--grad-cache-chunk", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-queries", type=int, help="evaluate on the first N questions only (quick runs)")
    return p


def main() -> None:
    args = parser().parse_args()
    use_shared_data()
    out = Path(args.out)
    models = {name: train(args, sampling, 0.5, out / "models" / sampling)
              for name, sampling in [("X-X-mono", "xx"), ("X-Y", "xy"), ("hybrid", "hybrid")]}
    reports = [evaluate(args, "zero-shot", args.model, out / "eval" / "zero-shot"),
               evaluate(args, "BM25", None, out / "eval" / "bm25")]
    reports += [evaluate(args, name, str(path), out / "eval" / name) for name, path in models.items()]
    print(summarize(reports, out, args.train_langs.split(",")))


if __name__ == "__main__":
    main()
