"""Which recipe the α study trains with: fp32, or bf16 with frozen word embeddings (the cheap one).

Trains hybrid (α = 0.5, seed 0) twice on MLQA-R with the budget of docs/results.md, once per recipe,
evaluates each on the full XQuAD-R protocol, and writes docs/results/recipe/summary.md: seconds per step,
the MLQA-R validation loss (the decision is made on it, not on XQuAD-R), and XQuAD-R mAP and rank distance
for seen and unseen languages. Runs whose artifacts are committed are skipped.

    python -m pyterrier_hybrid.studies.recipe --model .cache/me5 [--commit]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..evaluation.report import seen_unseen, seen_unseen_rows
from .runs import RESULTS, SEEN, UNSEEN, Recipe, Run, load_run, run_study

# bf16 alone (embeddings trained) is timed in benchmarks/train.py; here the question is the cheap recipe's quality
RUNS = [Run("fp32", "hybrid", 0.5, 0), Run("bf16-frozen", "hybrid", 0.5, 0, ("--amp", "bf16", "--freeze-embeddings"))]


def summarize(folders: dict) -> str:
    """The summary page of the two recipes' runs (folders by recipe name)."""
    runs = {name: load_run(folder) for name, folder in folders.items()}
    base = runs["fp32"]
    rows = ["| recipe | s/step | ratio to fp32 | val loss at the end | best val loss | vs fp32 | Mo. | Cr. | Mul. | "
            "rank distance |", "|---|---|---|---|---|---|---|---|---|---|"]
    step_s = {n: float(np.mean([r["seconds"] for r in run["log"]])) for n, run in runs.items()}
    for name, run in runs.items():
        vals = [r["val_loss"] for r in run["log"] if "val_loss" in r]
        best = min(vals)
        base_best = min(r["val_loss"] for r in base["log"] if "val_loss" in r)
        m, rd = run["report"]["mAP"], run["report"]["rank_distance"]["macro"]
        rows.append(f"| {name} | {step_s[name]:.2f} | {step_s['fp32'] / step_s[name]:.2f}× | {vals[-1]:.4f} | "
                    f"{best:.4f} | {100 * (best - base_best) / base_best:+.1f}% | {m['mono']:.3f} | {m['cross']:.3f} | "
                    f"{m['multi']:.3f} | {rd:.1f} |")
    rows += ["", f"XQuAD-R by part (unseen: {', '.join(UNSEEN)}; a Cr. setting is unseen when either language is).", "",
             *seen_unseen_rows({name: seen_unseen(run["report"], SEEN) for name, run in runs.items()}, "recipe")]
    dtype = {run["report"].get("dtype") for run in runs.values()}
    rows += ["", f"Evaluation encoder dtype: {', '.join(sorted(map(str, dtype)))}. Validation losses are computed "
             "in fp32 for every recipe, on the same held-out 10% of MLQA-R parallel ids."]
    return "\n".join(rows) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="the starting checkpoint (multilingual-e5-small)")
    p.add_argument("--work", default="runs", help="where models and evaluations are written (not committed)")
    p.add_argument("--commit", action="store_true", help="git-commit each run's artifacts as it finishes")
    args = p.parse_args()
    folders = run_study(Recipe(model=args.model), RUNS, RESULTS / "recipe", Path(args.work) / "recipe", commit=args.commit)
    text = summarize(folders)
    (RESULTS / "recipe" / "summary.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
