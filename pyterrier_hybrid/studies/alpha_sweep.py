"""The α study: hybrid batches with α ∈ {0, 0.25, 0.5, 0.75, 1} × seeds {0, 1, 2}, selected on MLQA-R only.

α = 1 is X-X-mono and α = 0 is X-Y, so the baselines come with seeds too. Every run starts from
multilingual-e5-small, trains on MLQA-R (a fixed 10% of parallel ids held out; the checkpoint with the lowest
validation loss is kept) with the budget of docs/results.md, and is evaluated on the full XQuAD-R protocol.
Runs go seed by seed, so a study cut short still covers every α. Finished runs keep their artifacts in
docs/results/<study>/ and are skipped; ``--commit`` commits each one as it finishes.

    # the sweep (15 runs)
    python -m pyterrier_hybrid.studies.alpha_sweep --model .cache/me5 --commit
    # α ∈ {0, 0.5, 1} × seeds at 4× the steps, also evaluated at the final step
    python -m pyterrier_hybrid.studies.alpha_sweep --model .cache/me5 --study budget --commit
    # train on XQuAD-R, test on MLQA-R
    python -m pyterrier_hybrid.studies.alpha_sweep --model .cache/me5 --study reverse --commit
    # retrain one run, compare
    python -m pyterrier_hybrid.studies.alpha_sweep --model .cache/me5 --reproduce alpha0-seed0

Precision: the committed studies train under bf16 autocast and encode in bf16, which is fast only on a CPU with
AVX512-BF16 or AMX, or on CUDA. ``--precision fp32`` (what ``auto`` picks on any other host) runs a study in fp32
instead, into ``docs/results/<study>-fp32/``, never beside the bf16 runs; its α study is the comparison's own
baselines (α ∈ {0, 0.5, 1}, the same seeds), so no table or test mixes the two precisions.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Tuple

from ir_datasets_ext import XQUAD_R

from .runs import REPO, RESULTS, Recipe, Run, bf16_host, evaluate_last_step, git_commit, reproduce, run_study

#: the training recipe the recipe study settled on (docs/training.md, "Precision on the CPU")
RECIPE_FLAGS = ("--amp", "bf16", "--freeze-embeddings")
#: precision -> (training flags, evaluation dtype, suffix of the study folders)
PRECISIONS = {"bf16": (RECIPE_FLAGS, "bfloat16", ""), "fp32": (("--freeze-embeddings",), "float32", "-fp32")}


def resolve_precision(precision: str) -> str:
    """``auto``: bf16 where it runs at full speed (:func:`bf16_host`), else fp32; the others as given."""
    if precision == "auto":
        return "bf16" if bf16_host() else "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use auto, {' or '.join(PRECISIONS)}")
    return precision


def folder(name: str, precision: str = "bf16") -> Path:
    """Where a study's artifacts live: ``docs/results/<study>`` in bf16, ``docs/results/<study>-fp32`` in fp32."""
    return RESULTS / (name + PRECISIONS[precision][2])


#: the budget study's steps, as a multiple of the sweep's
BUDGET = 4


def runs(alphas: List[float], seeds: List[int], precision: str = "bf16") -> List[Run]:
    """Hybrid runs with the recipe's flags, seed by seed, every α within a seed."""
    flags = PRECISIONS[precision][0]
    return [Run(f"alpha{a:g}-seed{s}", "hybrid", a, s, flags) for s in seeds for a in alphas]


def study(name: str, model: str, precision: str = "bf16") -> Tuple[Recipe, List[Run]]:
    """The recipe and runs of a study: the sweep, the 4× budget, or the reverse direction, in one precision.

    In fp32 the sweep is its comparisons' baselines only (α ∈ {0, 0.5, 1}): what the budget and reverse studies
    are measured against, retrained in the same precision on the same seeds.
    """
    base = Recipe(model=model, eval_dtype=PRECISIONS[precision][1])
    if name == "alpha":
        return base, runs([0, 0.25, 0.5, 0.75, 1] if precision == "bf16" else [0, 0.5, 1], [0, 1, 2], precision)
    if name == "budget":
        # seed 0 answers the question; seeds 1 and 2 (run after it) measure how far one seed can be trusted
        return (replace(base, steps=BUDGET * Recipe.steps, eval_every=BUDGET * Recipe.eval_every, keep_checkpoint=True),
                runs([0, 0.5, 1], [0, 1, 2], precision))
    if name == "reverse":
        data = str(REPO.parent / "shared" / "data" / "xquad-r")
        return replace(base, data=data, langs=XQUAD_R.langs, eval_dataset="mlqa-r"), runs([0, 0.5, 1], [0], precision)
    raise ValueError(f"unknown study {name!r}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="the starting checkpoint (multilingual-e5-small)")
    p.add_argument("--study", choices=["alpha", "budget", "reverse"], default="alpha")
    p.add_argument("--work", default="runs", help="where models and evaluations are written (not committed)")
    p.add_argument("--commit", action="store_true", help="git-commit each run's artifacts as it finishes")
    p.add_argument("--reproduce", metavar="RUN",
                   help="train and evaluate one committed run again (in WORK/reproduce) and write "
                        "docs/results/<study>/reproduction.json: identical config, largest difference in log and report")
    p.add_argument("--precision", choices=["auto", *PRECISIONS], default="auto",
                   help="bf16 (the committed studies; needs AVX512-BF16/AMX or CUDA) or fp32 (any CPU, into "
                        "docs/results/<study>-fp32 with its own baselines); auto: bf16 where it is fast, else fp32")
    args = p.parse_args()
    precision = resolve_precision(args.precision)
    print(f"precision: {precision}" + (" (auto: this host has no fast bf16)" if args.precision == "auto" and
                                       precision == "fp32" else ""))
    recipe, todo = study(args.study, args.model, precision)
    results, work = folder(args.study, precision), Path(args.work) / (args.study + PRECISIONS[precision][2])
    if args.reproduce:
        run = next((r for r in todo if r.name == args.reproduce), None)
        if run is None:
            p.error(f"--reproduce: no run {args.reproduce!r} in study {args.study}; its runs: "
                    + ", ".join(r.name for r in todo))
        command = (f"python -m pyterrier_hybrid.studies.alpha_sweep --model {args.model} --study {args.study} "
                   + ("--precision fp32 " if precision == "fp32" else "") + f"--reproduce {run.name}")
        check = reproduce(recipe, run, results, Path(args.work) / "reproduce" / results.name, command)
        print(json.dumps(check, indent=2))
        if args.commit:
            git_commit(results / "reproduction.json", f"{results.relative_to(REPO)}: {run.name} reproduced")
        return
    done: Dict[str, Path] = {}
    for run in todo:
        done.update(run_study(recipe, [run], results, work, args.commit))
        if args.study == "budget":  # the question is what longer training does, so the final step is evaluated too
            evaluate_last_step(recipe, run, results, work, args.commit)
    print(f"{len(done)} runs in {results}; tables and figures: python -m pyterrier_hybrid.studies.results")


if __name__ == "__main__":
    main()
