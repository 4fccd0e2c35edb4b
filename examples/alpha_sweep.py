"""The α study: hybrid batches with α ∈ {0, 0.25, 0.5, 0.75, 1} × seeds {0, 1, 2}, selected on MLQA-R only.

α = 1 is X-X-mono and α = 0 is X-Y, so the baselines come with seeds too. Every run starts from
multilingual-e5-small, trains on MLQA-R (a fixed 10% of parallel ids held out; the checkpoint with the lowest
validation loss is kept) with the budget of docs/results.md, and is evaluated on the full XQuAD-R protocol.
Runs go seed by seed, so a study cut short still covers every α. Finished runs keep their artifacts in
docs/results/<study>/ and are skipped; ``--commit`` commits each one as it finishes.

    python examples/alpha_sweep.py --model .cache/me5 --commit                  # the sweep (15 runs)
    python examples/alpha_sweep.py --model .cache/me5 --study budget --commit   # α ∈ {0, 0.5, 1} × seeds at 4× the steps,
                                                                                # also evaluated at the final step
    python examples/alpha_sweep.py --model .cache/me5 --study reverse --commit  # train on XQuAD-R, test on MLQA-R
    python examples/alpha_sweep.py --model .cache/me5 --reproduce alpha0-seed0  # retrain one run, compare
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).parent))
from studies import REPO, RESULTS, Recipe, Run, evaluate_last_step, git_commit, reproduce, run_study  # noqa: E402

#: the training recipe examples/recipe.py settled on (docs/training.md, "Precision on the CPU")
RECIPE_FLAGS = ("--amp", "bf16", "--freeze-embeddings")
XQUAD_LANGS = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")


def runs(alphas: List[float], seeds: List[int]) -> List[Run]:
    return [Run(f"alpha{a:g}-seed{s}", "hybrid", a, s, RECIPE_FLAGS) for s in seeds for a in alphas]


def study(name: str, model: str) -> Tuple[Recipe, List[Run]]:
    """The recipe and runs of a study: the sweep, the 4× budget, or the reverse direction."""
    if name == "alpha":
        return Recipe(model=model), runs([0, 0.25, 0.5, 0.75, 1], [0, 1, 2])
    if name == "budget":
        # seed 0 answers the question; seeds 1 and 2 (run after it) measure how far one seed can be trusted
        return (Recipe(model=model, steps=4 * Recipe.steps, eval_every=4 * Recipe.eval_every, keep_checkpoint=True),
                runs([0, 0.5, 1], [0, 1, 2]))
    if name == "reverse":
        data = str(REPO.parent / "shared" / "data" / "xquad-r")
        return Recipe(model=model, data=data, langs=XQUAD_LANGS, eval_dataset="mlqa-r"), runs([0, 0.5, 1], [0])
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
    args = p.parse_args()
    recipe, todo = study(args.study, args.model)
    if args.reproduce:
        run = next((r for r in todo if r.name == args.reproduce), None)
        if run is None:
            p.error(f"--reproduce: no run {args.reproduce!r} in study {args.study}; its runs: "
                    + ", ".join(r.name for r in todo))
        command = f"python examples/alpha_sweep.py --model {args.model} --study {args.study} --reproduce {run.name}"
        check = reproduce(recipe, run, RESULTS / args.study, Path(args.work) / "reproduce" / args.study, command)
        print(json.dumps(check, indent=2))
        if args.commit:
            git_commit(RESULTS / args.study / "reproduction.json", f"docs/results/{args.study}: {run.name} reproduced")
        return
    done: Dict[str, Path] = {}
    for run in todo:
        done.update(run_study(recipe, [run], RESULTS / args.study, Path(args.work) / args.study, args.commit))
        if args.study == "budget":  # the question is what longer training does, so the final step is evaluated too
            evaluate_last_step(recipe, run, RESULTS / args.study, Path(args.work) / args.study, args.commit)
    print(f"{len(done)} runs in {RESULTS / args.study}; tables and figures: python examples/results.py")


if __name__ == "__main__":
    main()
