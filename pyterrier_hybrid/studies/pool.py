"""Training for the multilingual pool: multi-positive batches and parallel alignment, screened on MLQA-R validation.

Every recipe starts from the α study's (multilingual-e5-small, bf16 with frozen word embeddings, 120 steps of 32
MLQA-R items, 10% of parallel ids held out) and changes only the batches or the loss:

* ``hybrid-align{β}``: hybrid α = 0.5 plus β × translation ranking between parallel passages (β ∈ {0.25, 0.5, 1});
* ``multi-k3`` / ``multi-k4``: multi-positive batches, each query's answer in K languages, its own among them
  (K = 4 is the most MLQA-R allows: its parallel ids have 2 to 4 of the 7 languages, none all 7);
* ``hybrid-multi``: each batch X-X-mono, X-Y or multi (K = 3) with probabilities 0.35 / 0.35 / 0.3;
* ``both``: ``hybrid-multi`` plus the alignment term at the β that screened best;
* ``hybrid-4x`` (not screened; XQuAD-R, seed 0): hybrid α = 0.5 at 4× the steps, multi K = 4's encoded passages.

Each trained model is also merged with the start at λ = 0.75 (the trained model's share), and each of the two is
evaluated as encoded (``none``) and with LIR (``lir``): four pipelines per recipe, at the merging study's length
(64 query / 512 passage tokens).

Screening and selection (:data:`RULE`) use seed 0 and MLQA-R's held-out validation ids only. The choice is written
to ``docs/results/pool/selection.json`` and committed before any new pipeline meets XQuAD-R. Then the selected
recipes (at most two) train seeds 1 and 2, every seed's four pipelines meet XQuAD-R, a selected recipe that encodes
more passages per step than hybrid is also trained twice at hybrid's encoded passages (fewer steps; a smaller batch
at the same steps), and the other recipes' seed-0 pipelines meet XQuAD-R for the Pareto figure, the compute control
``hybrid-4x`` first.
``--direction reverse`` trains the selected recipes on XQuAD-R (seed 0) and tests on MLQA-R.

Precision: the study trains under bf16 autocast and encodes in bf16, fast only on a CPU with AVX512-BF16 or AMX, or
on CUDA. ``--precision fp32`` (what ``auto`` picks on any other host) writes to ``docs/results/pool-fp32/`` instead:
no screening (the committed bf16 selection stands). Seed 0 of the selected recipes beside their own fp32 baseline,
hybrid α = 0.5 (trained and merged with the start), then the compute control and the other recipes on seed 0, then
seeds 1 and 2 of the selected recipes and the baseline: the bf16 study already has those seeds, so an fp32 host spends
its hours first on what bf16 has not run. Either precision skips a seed-0-only recipe the other has already
tested. No table or test compares across the two precisions.

Finished artifacts (``docs/results/pool/``) are skipped, so the study resumes in any later sitting.

    python -m pyterrier_hybrid.studies.pool --model .cache/me5 --commit
    python -m pyterrier_hybrid.studies.pool --model .cache/me5 --commit --direction reverse
    python -m pyterrier_hybrid.studies.pool --model .cache/me5 --commit --precision fp32
"""
from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..model.model_dir import CARD, TRAINING_CONFIG
from ..training.checkpoint import state_path
from .alpha_sweep import BUDGET, PRECISIONS, resolve_precision, study
from .combine import OUT as COMBINE, evaluate_pipelines
from .runs import REPO, RESULTS, Recipe, Run, cli, git_commit, train_args, use_shared_data, write_json
from .tables import KEYS, headline

OUT = RESULTS / "pool"
LAMBDA = 0.75                      # the trained model's share in the merge with the start
REMOVALS = ("none", "lir")
MIX = "xx=0.35,xy=0.35,multi=0.3"
BETAS = (0.5, 1.0, 0.25)           # screened in this order: the probe's β first
SEEDS = (0, 1, 2)
SELECT_AT_MOST = 2
#: (sampling, extra train flags) of each screened recipe, in screening order; ``both`` is derived after them
SCREEN: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    **{f"hybrid-align{b:g}": ("hybrid", ("--align-weight", str(b))) for b in BETAS},
    "hybrid-multi": ("mix", ("--mix", MIX, "--positive-langs", "3")),
    "multi-k3": ("multi", ("--positive-langs", "3")),
    "multi-k4": ("multi", ("--positive-langs", "4")),  # MLQA-R ids have at most 4 languages
}
#: the fp32 baseline's training recipe (bf16 has the merging study's runs instead)
HYBRID = "hybrid"
#: the compute control: hybrid α = 0.5 at 4× the steps (the budget study's 480) encodes about the passages multi K = 4
#: encodes in 120 (4.0× a hybrid step), so what multi K = 4 gains over it is the batches', not the compute's
CONTROL, CONTROLLED, CONTROL_STEPS = "hybrid-4x", "multi-k4", BUDGET
#: today's selected pipeline (the merging study's: hybrid α = 0.5 ⊕ start at λ = 0.75, as encoded), and its model
BASELINE, BASELINE_MODEL = "merge-hybrid0.75-start+none", "merge-hybrid0.75-start"
#: a costlier selected recipe's points at hybrid's encoded passages, by name suffix: the Recipe field scaled down.
#: Fewer steps also means fewer updates, so the smaller batch at equal steps is the second control.
EQUAL_PASSAGES = {"-eqp": "steps", "-eqb": "batch_size"}
FLOOR = 0.005
RULE = (f"score = mean of four relative changes against today's selected pipeline ({BASELINE}) on MLQA-R's held-out "
        "validation ids (--holdout 0.1), seed 0: Mo., Cr. and Mul. mAP (x / baseline - 1) and rank distance "
        "(baseline / x - 1, so a smaller distance counts as a gain). A pipeline is eligible when its score is above 0 "
        f"and none of its three mAP is more than {FLOOR} below the baseline's. The {SELECT_AT_MOST} best eligible "
        "pipelines of different training recipes are selected; the best of them is the study's selected pipeline.")
#: why the rule is a fair proxy, as the page states it
WHY = ("The target is all four measures at once, so the rule scores all four, on one scale (relative change), with "
       "equal weight, and the floor keeps a pipeline from buying rank distance with mAP. The validation ids are "
       "MLQA-R questions no run trains on, in the 7 training languages, and no selection step reads XQuAD-R.")


def study_root(precision: str) -> Path:
    """The study's artifact folder in one precision: ``docs/results/pool`` or ``docs/results/pool-fp32``."""
    return OUT.parent / (OUT.name + PRECISIONS[precision][2])


def merged(recipe: str) -> str:
    """The recipe name of a model merged with the start."""
    return f"{recipe}-merged"


def equal_point(recipe: str) -> Optional[Tuple[str, str]]:
    """``(training recipe, scaled Recipe field)`` of an equal-passages point, None for any other recipe."""
    for suffix, field in EQUAL_PASSAGES.items():
        if recipe.endswith(suffix):
            return recipe[:-len(suffix)], field
    return None


def base_name(model_recipe: str) -> str:
    """The training recipe of a model recipe (``x-merged`` -> ``x``)."""
    return model_recipe[:-len("-merged")] if model_recipe.endswith("-merged") else model_recipe


def score(report: Dict[str, dict], base: Dict[str, dict]) -> Tuple[float, bool]:
    """The rule's score of one pipeline against the baseline, and whether it is eligible (:data:`RULE`).

    Args:
        report: the pipeline's validation report.
        base: the baseline's validation report.
    """
    changes = [report["mAP"][k] / base["mAP"][k] - 1 for k, _ in KEYS]
    changes.append(base["rank_distance"]["macro"] / report["rank_distance"]["macro"] - 1)
    value = float(np.mean(changes))
    floor_kept = all(report["mAP"][k] >= base["mAP"][k] - FLOOR for k, _ in KEYS)
    return value, bool(value > 0 and floor_kept)


def select(scores: Dict[str, Tuple[float, bool]]) -> List[str]:
    """The selected pipelines (``model recipe+removal``): the best eligible one per training recipe, best first."""
    chosen: List[str] = []
    for pipeline, (_, eligible) in sorted(scores.items(), key=lambda kv: -kv[1][0]):
        if eligible and base_name(pipeline.split("+")[0]) not in {base_name(c.split("+")[0]) for c in chosen}:
            chosen.append(pipeline)
    return chosen[:SELECT_AT_MOST]


class PoolStudy:
    """One direction's recipes, models and reports.

    Args:
        model: the starting checkpoint.
        work: models and vector caches (not committed).
        commit: git-commit each artifact folder as it is written.
        direction: ``"forward"`` (train on MLQA-R, test on XQuAD-R) or ``"reverse"``.
        precision: ``"bf16"`` (the study) or ``"fp32"`` (the selected recipes against fp32 baselines, elsewhere).
    """

    def __init__(self, model: str, work: Path, commit: bool, direction: str = "forward", precision: str = "bf16"):
        self.reverse = direction == "reverse"
        self.fp32 = precision == "fp32"
        self.recipe: Recipe = study("reverse" if self.reverse else "alpha", model, precision)[0]
        self.flags = PRECISIONS[precision][0]
        self.test = "mlqa-r" if self.reverse else "xquad-r"
        root = study_root(precision)
        self.out = root / "reverse" if self.reverse else root
        work = work.parent / (work.name + PRECISIONS[precision][2])
        self.work = work / direction if self.reverse else work
        self.start = Path(model)
        self.commit = commit

    # recipes ----------------------------------------------------------------------------------------------------
    def recipes(self) -> Dict[str, Tuple[str, Tuple[str, ...]]]:
        """Every training recipe known so far: the screened ones, ``both`` once its β is known, and the
        equal-passages points of the selected ones (in fp32: the baseline instead of those points)."""
        found = {HYBRID: ("hybrid", ()), **SCREEN} if self.fp32 else dict(SCREEN)
        found[CONTROL] = ("hybrid", ())
        beta = best_beta()
        if beta is not None:
            found["both"] = ("mix", ("--mix", MIX, "--positive-langs", "3", "--align-weight", f"{beta:g}"))
        for recipe in [] if self.fp32 else equal_passage_points():
            found.update({recipe + suffix: found[recipe] for suffix in EQUAL_PASSAGES})
        return found

    def run(self, recipe: str, seed: int) -> Tuple[Recipe, Run]:
        """The study recipe and run of one training recipe and seed (an equal-passages point scales its steps or
        its batch size down)."""
        sampling, flags = self.recipes()[recipe]
        settings = self.recipe
        if recipe == CONTROL:
            settings = replace(settings, steps=CONTROL_STEPS * settings.steps,
                               eval_every=CONTROL_STEPS * settings.eval_every)
        point = equal_point(recipe)
        if point is not None:
            trained, field = point
            value = max(1, round(getattr(settings, field) * passage_ratio(trained, settings)))
            settings = replace(settings, **{field: value})
            settings = replace(settings, eval_every=min(settings.eval_every, settings.steps))
        return settings, Run(f"{recipe}-seed{seed}", sampling, 0.5, seed, tuple(self.flags) + flags)

    # models -----------------------------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        return self.work / "models" / name

    def train(self, recipe: str, seed: int) -> Path:
        """Train one recipe and seed (resuming a killed run) and keep its small artifacts in ``trained/<name>``."""
        settings, run = self.run(recipe, seed)
        out = self.path(run.name)
        kept = self.out / "trained" / run.name  # not "runs": .gitignore ignores every runs/
        if not (out / TRAINING_CONFIG).is_file():
            cli(*train_args(settings, run, out), *(["--resume"] if state_path(out).is_file() else []))
        if not (kept / TRAINING_CONFIG).is_file():
            kept.mkdir(parents=True, exist_ok=True)
            for f in ("train_log.jsonl", CARD, TRAINING_CONFIG):  # the config last: it marks the folder complete
                shutil.copyfile(out / f, kept / f)
            if self.commit:
                git_commit(kept, f"{kept.relative_to(REPO)}: training artifacts")
        return out

    def build(self, name: str) -> Path:
        """A model's weights (``<recipe>-seed<s>`` or ``<recipe>-merged-seed<s>``), trained or merged on demand."""
        recipe, seed = name.rsplit("-seed", 1)
        if recipe.endswith("-merged"):
            out = self.path(name)
            if not (out / "config.json").is_file():
                cli("merge", str(self.train(base_name(recipe), int(seed))), str(self.start), "--weight", str(LAMBDA),
                    "--out", str(out), "--overwrite")
            return out
        return self.train(recipe, int(seed))

    def evaluate(self, name: str, dataset: str, holdout: Optional[float], folder: Path) -> Dict[str, dict]:
        """One model's reports (none, lir) in ``folder/<name>``, committed once written."""
        target = folder / name
        reports, wrote = evaluate_pipelines(lambda: self.build(name), name, dataset, holdout, target,
                                            self.recipe.eval_dtype, self.work / "cache", removals=REMOVALS)
        if wrote and self.commit:
            git_commit(target, f"{target.relative_to(REPO)}: {dataset} reports")
        return reports

    def pipelines(self, recipe: str, seed: int, dataset: str, holdout: Optional[float], folder: Path) -> Dict[str, dict]:
        """The four pipelines of one recipe and seed, by ``model recipe+removal`` (the merged model's first: both
        selected pipelines are merged ones, so a sitting cut short keeps those)."""
        found = {}
        for model in (merged(recipe), recipe):
            for removal, report in self.evaluate(f"{model}-seed{seed}", dataset, holdout, folder).items():
                found[f"{model}+{removal}"] = report
        return found

    # the study --------------------------------------------------------------------------------------------------
    def screen(self) -> dict:
        """Seed 0 of every recipe on the validation ids, then the selection (written and committed once)."""
        path = OUT / "selection.json"
        if path.is_file():
            return json.loads(path.read_text())
        base = json.loads((COMBINE / "validation" / f"{BASELINE_MODEL}-seed0" / "none.json").read_text())
        validation = {}
        for recipe in list(SCREEN) + ["both"]:  # ``both`` is known once the β recipes are screened
            validation.update(self.pipelines(recipe, 0, "mlqa-r", Recipe.val_fraction, OUT / "validation"))
        scores = {p: score(r, base) for p, r in validation.items()}
        chosen = select(scores)
        choice = {"rule": RULE, "why": WHY, "baseline": {"pipeline": BASELINE, **headline({"report": base})},
                  "selected": chosen, "beta_of_both": best_beta(),
                  "scores": {p: {"score": s, "eligible": e, **headline({"report": validation[p]})}
                             for p, (s, e) in sorted(scores.items(), key=lambda kv: -kv[1][0])},
                  "xquad_r_seen": False}
        write_json(path, choice, self.commit, "pipelines chosen on MLQA-R validation ids, before any new pipeline "
                                              "meets XQuAD-R")
        return choice

    def forward(self) -> None:
        """Screen, select, then the test protocol: selected recipes on every seed, then the rest on seed 0, the
        compute control first (in fp32: seed 0 of the selected recipes and their baseline, the rest on seed 0, then
        seeds 1 and 2)."""
        if self.fp32:
            compared = self.compared()
            for recipe in compared + self.seed0_only(compared):
                self.pipelines(recipe, 0, self.test, None, self.out / self.test)
            for seed in SEEDS[1:]:
                for recipe in compared:
                    self.pipelines(recipe, seed, self.test, None, self.out / self.test)
            return
        selected = [base_name(p.split("+")[0]) for p in self.screen()["selected"]]
        print(f"selected: {selected or 'none'}", flush=True)
        for recipe in selected:
            for seed in SEEDS:
                self.pipelines(recipe, seed, self.test, None, self.out / self.test)
        for recipe in equal_passage_points():
            for point in (recipe + suffix for suffix in EQUAL_PASSAGES):
                self.pipelines(point, 0, "mlqa-r", Recipe.val_fraction, OUT / "validation")
                self.pipelines(point, 0, self.test, None, self.out / self.test)
        for recipe in self.seed0_only(selected):
            self.pipelines(recipe, 0, self.test, None, self.out / self.test)

    def seed0_only(self, selected: List[str]) -> List[str]:
        """The recipes that meet XQuAD-R on seed 0 only: the compute control, then the unselected ones in screening
        order (the cheaper alignment recipes first), less those the other precision's study already has there."""
        recipes = [CONTROL] + [r for r in self.recipes()
                               if r not in (*selected, CONTROL, HYBRID) and equal_point(r) is None]
        return [r for r in recipes if not self.tested_in_other_precision(r)]

    def tested_in_other_precision(self, recipe: str) -> bool:
        """Whether the other precision's study holds all four seed-0 pipelines of a recipe on the test set: one
        point per recipe is what the Pareto figure needs, and each is compared only within its own precision."""
        other = study_root("bf16" if self.fp32 else "fp32")
        return all((other / self.test / f"{model}-seed0" / f"{removal}.json").is_file()
                   for model in (merged(recipe), recipe) for removal in REMOVALS)

    def compared(self) -> List[str]:
        """The selected training recipes, from the committed bf16 selection. In fp32, where a step costs several
        times bf16's, the baseline comes first, then the recipes whose steps encode the fewest passages, so that a
        sitting cut short still lands whole comparisons."""
        selection = OUT / "selection.json"
        if not selection.is_file():
            raise SystemExit("the reverse direction and fp32 test the recipes selected on MLQA-R validation ids: run "
                             "the forward direction's screening in bf16 first (it writes docs/results/pool/selection.json)")
        selected = json.loads(selection.read_text())["selected"]
        chosen = list(dict.fromkeys(base_name(p.split("+")[0]) for p in selected))
        if not self.fp32:
            return chosen
        return [HYBRID] + sorted(chosen, key=lambda r: -passage_ratio(r, Recipe(model="")))

    def backward(self) -> None:
        """The reverse direction: the selected recipes trained on XQuAD-R, seed 0, tested on MLQA-R."""
        for recipe in self.compared():
            self.pipelines(recipe, 0, self.test, None, self.out / self.test)


def validation_scores() -> Dict[str, float]:
    """The rule's scores of the committed seed-0 validation reports, by ``model recipe+removal``."""
    base_path = COMBINE / "validation" / f"{BASELINE_MODEL}-seed0" / "none.json"
    folder = OUT / "validation"
    if not base_path.is_file() or not folder.is_dir():
        return {}
    base = json.loads(base_path.read_text())
    return {f"{d.name.rsplit('-seed', 1)[0]}+{f.stem}": score(json.loads(f.read_text()), base)[0]
            for d in folder.iterdir() if d.name.endswith("-seed0") for f in d.glob("*.json")}


def best_beta() -> Optional[float]:
    """The β whose alignment recipe scored best on validation, once each β's four pipelines are there."""
    scores = validation_scores()
    by_beta = {b: [s for p, s in scores.items() if base_name(p.split("+")[0]) == f"hybrid-align{b:g}"] for b in BETAS}
    if any(len(found) < 2 * len(REMOVALS) for found in by_beta.values()):
        return None
    return max(by_beta, key=lambda b: max(by_beta[b]))


def passages_per_step(log: List[dict]) -> float:
    """The passages a run encoded per step, from its training log."""
    return float(np.mean([r["passages"] for r in log if "loss" in r]))


@lru_cache(maxsize=None)
def hybrid_passages_per_step(settings: Recipe) -> float:
    """What hybrid α = 0.5 encodes per step (positives and MLQA-R's hard negatives): its seed-0 batches, drawn again
    without a model (the α study's logs predate the ``passages`` field)."""
    from ..training import load_source, make_sampler, split_validation

    train = split_validation(load_source(settings.data, list(settings.langs)), settings.val_fraction)[0]
    batches = iter(make_sampler("hybrid", [train], settings.batch_size, 0.5, 0))
    return float(np.mean([next(batches).passages for _ in range(settings.steps)]))


def equal_passage_points() -> List[str]:
    """The selected recipes that encode over 10% more passages per step than hybrid: each gets the points at equal
    encoded passages."""
    selection = OUT / "selection.json"
    if not selection.is_file():
        return []
    chosen = dict.fromkeys(base_name(p.split("+")[0]) for p in json.loads(selection.read_text())["selected"])
    return [r for r in chosen if passage_ratio(r, Recipe(model="")) < 0.9]


def passage_ratio(recipe: str, settings: Recipe) -> float:
    """Hybrid's passages per step over ``recipe``'s (seed 0, as committed): the share of steps, or of the batch, at
    which it encodes as many passages as hybrid."""
    log = [json.loads(line) for line in (OUT / "trained" / f"{recipe}-seed0" / "train_log.jsonl").read_text().splitlines()]
    return hybrid_passages_per_step(settings) / passages_per_step(log)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="the starting checkpoint (multilingual-e5-small), as the α study's")
    p.add_argument("--work", default="runs/pool", help="models and vector caches (not committed)")
    p.add_argument("--direction", choices=["forward", "reverse"], default="forward",
                   help="forward: screen on MLQA-R validation, test on XQuAD-R; reverse: the selected recipes trained "
                        "on XQuAD-R, tested on MLQA-R (seed 0)")
    p.add_argument("--screen-only", action="store_true", help="stop after the selection is committed")
    p.add_argument("--commit", action="store_true", help="git-commit each artifact folder as it is written")
    p.add_argument("--precision", choices=["auto", *PRECISIONS], default="auto",
                   help="bf16 (the study; needs AVX512-BF16/AMX or CUDA) or fp32 (any CPU: the selected recipes "
                        "against fp32 baselines, in docs/results/pool-fp32); auto: bf16 where it is fast, else fp32")
    args = p.parse_args()
    precision = resolve_precision(args.precision)
    if args.screen_only and precision == "fp32":
        p.error("--screen-only: the screening runs in bf16 only (fp32 tests the committed selection); "
                "use --precision bf16 on a host with native bf16")
    print(f"precision: {precision}", flush=True)
    use_shared_data()
    pool = PoolStudy(args.model, Path(args.work), args.commit, args.direction, precision)
    if args.direction == "reverse":
        pool.backward()
    elif args.screen_only:
        print(json.dumps(pool.screen()["selected"]))
    else:
        pool.forward()
    print("tables and figures: python -m pyterrier_hybrid.studies.results")


if __name__ == "__main__":
    main()
