"""Best of both beyond batch mixing: weight merging and language-identity removal on the α study's runs.

A pipeline is a model plus a removal variant.

* Models: the zero-shot start; X-X-mono (α = 1), X-Y (α = 0) and hybrid (α = 0.5), retrained from the α
  study's committed configs (same recipe, MLQA-R data and seeds); merges X-X ⊕ X-Y of one seed at
  λ ∈ {0.25, 0.5, 0.75} (λ is X-X-mono's share) and hybrid ⊕ start at λ ∈ {0.5, 0.75} (λ is hybrid's share).
* Removal (estimated from the indexed documents only): none; ``center`` (each language's mean document vector
  subtracted); ``lir`` (the language means' directions projected out, k = languages − 1); ``lir3`` (k = 3).

Selection is fixed before any merged or language-neutral pipeline meets XQuAD-R: every seed-0 pipeline is
evaluated on MLQA-R's held-out validation ids (the 10% of parallel ids training never sees, ``--holdout 0.1``),
and the one with the highest mean of Mo., Cr. and Mul. mAP there is selected for every seed. The choice is
written to ``docs/results/combine/selection.json`` and committed before the XQuAD-R evaluations start.

Every model is evaluated at one stated length: 64 query and 512 passage tokens, the start's limits (the α
study's committed reports encode trained models at their training length, 96). Each retrained run is also
checked against the α study: identical config and log, and its report at 96 tokens against the committed one
(``docs/results/combine/retrain/<run>.json``).

The reverse direction (``--direction reverse``) does the same with the α study's reverse runs: trained on XQuAD-R,
tested on the full MLQA-R protocol (seed 0). It selects nothing: it evaluates every pipeline, and the page judges
the pipeline already selected on MLQA-R validation ids, so it needs ``selection.json`` first.

Finished artifacts are skipped, so the study resumes; a model is trained or merged only when one of its reports or
checks is still missing. ``--commit`` commits each model's artifacts as they are written.

    python -m pyterrier_hybrid.studies.combine --model .cache/me5 --commit [--seeds 0,1,2]
    python -m pyterrier_hybrid.studies.combine --model .cache/me5 --commit --direction reverse --seeds 0
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..atomic import atomic_write_text
from ..model.model_dir import TRAINING_CONFIG
from ..training.checkpoint import state_path
from .alpha_sweep import RECIPE_FLAGS, study
from .runs import (REPO, RESULTS, Recipe, Run, check_precision, cli, git_commit, load_run, max_difference, same_run,
                   train_args, use_shared_data, write_json)

OUT = RESULTS / "combine"
QUERY_LENGTH, DOC_LENGTH = 64, 512   # the start's limits: the stated evaluation length
TRAINING_LENGTH = Recipe.doc_max_length
REMOVALS: Dict[str, Tuple[Optional[str], Optional[int]]] = {
    "none": (None, None), "center": ("center", None), "lir": ("lir", None), "lir3": ("lir", 3)}
PURE = {"xx": 1.0, "xy": 0.0, "hybrid": 0.5}      # strategy -> the α study's α
MERGES = [("xx", "xy", 0.25), ("xx", "xy", 0.5), ("xx", "xy", 0.75), ("hybrid", "start", 0.5),
          ("hybrid", "start", 0.75)]
HOLDOUT = Recipe.val_fraction
SELECTION_SEED = 0
#: direction -> (the α study whose committed runs are retrained, the test protocol, where the artifacts go)
DIRECTIONS = {"forward": ("alpha", "xquad-r", OUT), "reverse": ("reverse", "mlqa-r", OUT / "reverse")}
RULE = ("highest mean of Mo., Cr. and Mul. mAP on MLQA-R's held-out validation ids (--holdout 0.1), seed 0; "
        "the selected pipeline (model recipe + removal variant) is then used for every seed")


def pure_run(strategy: str, seed: int) -> Run:
    """The α study's run of a pure strategy (its committed artifacts are docs/results/alpha/<name>)."""
    return Run(f"alpha{PURE[strategy]:g}-seed{seed}", "hybrid", PURE[strategy], seed, RECIPE_FLAGS)


def merge_name(a: str, b: str, weight: float) -> str:
    """A merge's recipe name, as its artifacts are named: ``merge-xx0.25-xy``."""
    return f"merge-{a}{weight:g}-{b}"


MERGE_OF = {merge_name(*m): m for m in MERGES}   # recipe name -> (model, other parent, λ)


def model_names(seed: int) -> List[str]:
    """Every model of one seed, as named in the artifacts (the start has no seed)."""
    return ["start"] + [f"{s}-seed{seed}" for s in PURE] + [f"{merge_name(*m)}-seed{seed}" for m in MERGES]


class Study:
    """One direction's models and reports.

    Args:
        model: the starting checkpoint.
        work: models, merges and vector caches (not committed).
        commit: git-commit each model's artifacts as they are written.
        direction: ``"forward"`` (train on MLQA-R, test on XQuAD-R) or ``"reverse"``.
    """

    def __init__(self, model: str, work: Path, commit: bool, direction: str = "forward"):
        self.alpha_study, self.test, self.out = DIRECTIONS[direction]
        self.recipe = study(self.alpha_study, model)[0]
        self.work = work if direction == "forward" else work / direction
        self.commit = commit

    def path(self, name: str) -> Path:
        """Where a model's weights are (the start is the given checkpoint)."""
        return Path(self.recipe.model) if name == "start" else self.work / "models" / name

    def train(self, strategy: str, seed: int) -> Path:
        """Retrain one pure strategy from its committed config (resumes a killed run)."""
        out = self.path(f"{strategy}-seed{seed}")
        if not (out / TRAINING_CONFIG).is_file():
            resume = ["--resume"] if state_path(out).is_file() else []
            cli(*train_args(self.recipe, pure_run(strategy, seed), out), *resume)
        return out

    def merge(self, a: str, b: str, weight: float, seed: int) -> Path:
        """Merge two models of one seed (retraining a parent that is not on disk)."""
        out = self.path(f"{merge_name(a, b, weight)}-seed{seed}")
        if not (out / "config.json").is_file():
            parent = "start" if b == "start" else f"{b}-seed{seed}"
            cli("merge", str(self.build(f"{a}-seed{seed}")), str(self.build(parent)), "--weight", str(weight),
                "--out", str(out), "--overwrite")
        return out

    def build(self, name: str) -> Path:
        """A model's weights, trained or merged only when a report still needs them."""
        if name == "start":
            return self.path(name)
        recipe, seed = recipe_of(name), int(name.rsplit("-seed", 1)[1])
        if recipe in PURE:
            return self.train(recipe, seed)
        return self.merge(*MERGE_OF[recipe], seed)

    def evaluate(self, name: str, dataset: str, holdout: Optional[float], folder: Path,
                 doc_length: int = DOC_LENGTH, removals: Sequence[str] = tuple(REMOVALS)) -> Dict[str, dict]:
        """Reports of one model under each removal variant, as ``folder/<model>/<removal>.json`` (committed)."""
        target = folder / name
        reports, wrote = evaluate_pipelines(lambda: self.build(name), name, dataset, holdout, target,
                                            self.recipe.eval_dtype, self.work / "cache", doc_length, removals)
        if wrote and self.commit and OUT in target.resolve().parents:  # the 96-token checks stay in work, uncommitted
            git_commit(target, f"{target.relative_to(REPO)}: {dataset} reports")
        return reports

    def select(self) -> dict:
        """Choose the pipeline on MLQA-R validation ids, seed 0, and commit the choice (once)."""
        path = OUT / "selection.json"
        if path.is_file():
            return json.loads(path.read_text())
        scores = {}
        for name in model_names(SELECTION_SEED):
            for removal, report in self.evaluate(name, "mlqa-r", HOLDOUT, OUT / "validation").items():
                m = report["mAP"]
                scores[f"{recipe_of(name)}+{removal}"] = (m["mono"] + m["cross"] + m["multi"]) / 3
        selected = max(scores, key=scores.get)
        choice = {"rule": RULE, "selected": selected, "scores": dict(sorted(scores.items(), key=lambda kv: -kv[1])),
                  "xquad_r_seen": False}
        write_json(path, choice, self.commit, "the pipeline chosen on MLQA-R validation ids, before any merged or "
                                              "language-neutral pipeline is evaluated on XQuAD-R")
        return choice

    def check_retrain(self, strategy: str, seed: int) -> dict:
        """Config, log and report at the training length (96) against the α study's committed artifacts."""
        run = pure_run(strategy, seed)
        path = self.out / "retrain" / f"{run.name}.json"
        if path.is_file():
            return json.loads(path.read_text())
        model = self.train(strategy, seed)
        committed = load_run(RESULTS / self.alpha_study / run.name)
        config = json.loads((model / TRAINING_CONFIG).read_text())
        log = [json.loads(line) for line in (model / "train_log.jsonl").read_text().splitlines()]
        report = self.evaluate(f"{strategy}-seed{seed}", self.test, None, self.work / "at-training-length",
                               doc_length=TRAINING_LENGTH, removals=("none",))["none"]
        check = {"run": run.name, "config_identical": same_run(config, committed["config"]),
                 "log_max_abs_diff": max_difference(committed["log"], log),
                 "report_max_abs_diff": max_difference(committed["report"], report,
                                                       skip=("name", "timing", "seconds", "max_length")),
                 "doc_max_length": TRAINING_LENGTH}
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, check, self.commit, "retrained run checked against the α study")
        return check

    def run_seed(self, seed: int) -> None:
        """Evaluate one seed's models, selection first when this is the selecting seed (forward only).

        Models are trained and merged on demand, so a seed whose reports are committed trains nothing.
        """
        if self.test == "xquad-r" and seed == SELECTION_SEED:
            print(f"selected: {self.select()['selected']}", flush=True)
        selection = OUT / "selection.json"
        chosen = json.loads(selection.read_text())["selected"].split("+")[0] if selection.is_file() else None
        # the selected recipe first: a sitting cut short still has the target's numbers for this seed
        for name in sorted(model_names(seed), key=lambda n: recipe_of(n) != chosen):
            self.evaluate(name, self.test, None, self.out / self.test)
        for strategy in PURE:  # while this seed's weights are on disk: a later sitting would retrain them
            print(json.dumps(self.check_retrain(strategy, seed)), flush=True)


def evaluate_pipelines(build: Callable[[], Path], name: str, dataset: str, holdout: Optional[float], target: Path,
                       dtype: str, cache: Path, doc_length: int = DOC_LENGTH,
                       removals: Sequence[str] = tuple(REMOVALS)) -> Tuple[Dict[str, dict], bool]:
    """One model's protocol reports under each removal variant, as ``target/<removal>.json``; those present are read.

    Args:
        build: returns the model's directory; called (training or merging it) only when a report is missing.
        name: the model's name in its reports.
        dataset: the protocol (``xquad-r``, ``mlqa-r``).
        holdout: evaluate on this share of held-out parallel ids only (MLQA-R validation), or None for all.
        target: the model's report folder.
        dtype: the encoder's dtype.
        cache: the vector cache shared by the removal variants.
        doc_length: the passage token limit (queries: :data:`QUERY_LENGTH`).
        removals: the variants, keys of :data:`REMOVALS`.

    Returns:
        The reports by variant, and whether any was written now.
    """
    from ..evaluation import DenseRanker, run_protocol
    from ..model import BiEncoder

    todo = [r for r in removals if not (target / f"{r}.json").is_file()]
    if todo:
        check_precision(dtype)
        encoder = BiEncoder(str(build()), dtype=dtype, verbose=False, batch_size=64, query_max_length=QUERY_LENGTH,
                            doc_max_length=doc_length)
        for removal in todo:
            method, k = REMOVALS[removal]
            ranker = DenseRanker(encoder, cache_dir=cache, language_removal=method, lir_k=k)
            report = run_protocol(ranker, dataset, holdout=holdout, verbose=False, name=name)
            target.mkdir(parents=True, exist_ok=True)
            atomic_write_text(target / f"{removal}.json", json.dumps(report, indent=2) + "\n")
            print(f"{target / removal}: Mo. {report['mAP']['mono']:.4f} Cr. {report['mAP']['cross']:.4f} "
                  f"Mul. {report['mAP']['multi']:.4f} rank distance {report['rank_distance']['macro']:.1f}", flush=True)
    return {r: json.loads((target / f"{r}.json").read_text()) for r in removals}, bool(todo)


def recipe_of(name: str) -> str:
    """A model's recipe without its seed: the unit that selection picks."""
    return name.rsplit("-seed", 1)[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="the starting checkpoint (multilingual-e5-small), as the α study's")
    p.add_argument("--work", default="runs/combine", help="models, merges and vector caches (not committed)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--direction", choices=list(DIRECTIONS), default="forward",
                   help="forward: train on MLQA-R, test on XQuAD-R (selects); reverse: train on XQuAD-R, test on MLQA-R")
    p.add_argument("--commit", action="store_true", help="git-commit each model's artifacts as they are written")
    args = p.parse_args()
    use_shared_data()
    if args.direction == "reverse" and not (OUT / "selection.json").is_file():
        p.error("--direction reverse judges the pipeline selected on MLQA-R validation ids: "
                "run the forward direction's seed 0 first (it writes docs/results/combine/selection.json)")
    combine = Study(args.model, Path(args.work), args.commit, args.direction)
    for seed in [int(s) for s in args.seeds.split(",")]:
        combine.run_seed(seed)
    print("tables and figures: python -m pyterrier_hybrid.studies.results")


if __name__ == "__main__":
    main()
