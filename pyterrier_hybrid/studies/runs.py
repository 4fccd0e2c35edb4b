"""Training studies whose results live in the repository: train, evaluate, keep the small artifacts.

A study is a list of runs that share one recipe (data, budget, validation split) and differ in a few
training flags. Each finished run leaves ``docs/results/<study>/<run>/`` with ``report.json``,
``train_log.jsonl``, ``training_config.json`` and the model card ``README.md`` (never weights); a run whose
folder is complete is skipped, so a study can take several sittings on several machines. With ``commit``,
each run's folder is committed as soon as it is written (only that folder).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ir_datasets_ext import MLQA_R, XQUAD_R

from ..atomic import atomic_write_text
from ..model.model_dir import CARD, TRAINING_CONFIG
from ..training.checkpoint import state_path

#: the checkout this package sits in (pyterrier_hybrid/studies/ -> the repository root)
REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "docs" / "results"
SEEN = list(MLQA_R.langs)                                        # what the models train on
UNSEEN = [lang for lang in XQUAD_R.langs if lang not in SEEN]    # XQuAD-R languages never trained on
LOW_RESOURCE = ["hi", "th", "el"]                                 # the lower-resource XQuAD-R languages
ARTIFACTS = ("report.json", "train_log.jsonl", TRAINING_CONFIG, CARD)
#: the report of a run's final-step weights, when validation kept an earlier step (see :func:`evaluate_last_step`)
LAST_STEP = "report-last-step.json"


@dataclass(frozen=True)
class Recipe:
    """What every run of a study shares (the budget of docs/results.md: 120 steps of 32 on MLQA-R).

    Args:
        model: the starting checkpoint.
        data: training data for ``pyterrier-hybrid train --data``.
        steps: optimisation steps.
        batch_size: triplets per batch.
        doc_max_length: passage token limit in training.
        val_fraction: share of MLQA-R parallel ids held out (the same ids in every run) for the validation loss.
        eval_every: validation loss every N steps; the checkpoint with the lowest one is kept.
        eval_dataset: the protocol the models are evaluated on.
        eval_dtype: encoder dtype for evaluation: bf16, the committed reports' precision, on every host.
        langs: the training languages (the "seen" ones).
        keep_checkpoint: keep each run's resume state after it finishes (:func:`evaluate_last_step` needs it).
    """
    model: str
    data: str = str(REPO.parent / "shared" / "data" / "mlqa-r")
    steps: int = 120
    batch_size: int = 32
    doc_max_length: int = 96
    val_fraction: float = 0.1
    eval_every: int = 20
    eval_dataset: str = "xquad-r"
    eval_dtype: str = "bfloat16"
    langs: Sequence[str] = tuple(SEEN)
    keep_checkpoint: bool = False


@dataclass(frozen=True)
class Run:
    """One training run of a study: its name and the flags that set it apart."""
    name: str
    sampling: str
    alpha: float
    seed: int
    flags: Sequence[str] = field(default=())


def bf16_host() -> bool:
    """Whether bf16 runs at full speed here: a CUDA GPU, or a CPU with AVX512-BF16 or AMX."""
    import torch

    from pyterrier_hybrid.model.precision import native_bf16

    return torch.cuda.is_available() or native_bf16()


def check_precision(*args: str) -> None:
    """Stop before bf16 work (``--amp bf16``, ``--dtype bfloat16``) on a host that would emulate it.

    The studies train under bf16 autocast and encode in bf16, as their committed reports record. Emulated bf16
    is correct but many times slower: a study would take days, so it does not start.
    """
    if ("bf16" in args or "bfloat16" in args) and not bf16_host():
        raise SystemExit("this CPU has no native bf16 (neither AVX512-BF16 nor AMX; `lscpu` lists avx512_bf16 or "
                         "amx_tile where it has) and there is no CUDA GPU: the studies train under bf16 autocast "
                         "and encode in bf16, which here would be emulated, many times slower. Run the study on a "
                         "CPU with AVX512-BF16 or AMX, or on a CUDA GPU; committed artifacts are skipped wherever "
                         "it runs.")


def cli(*args: str) -> None:
    """``pyterrier-hybrid ARGS`` in a fresh process (bf16 work only where bf16 is native).

    Args:
        *args: the command line after ``pyterrier-hybrid``.
    """
    check_precision(*args)
    subprocess.run([sys.executable, "-m", "pyterrier_hybrid.cli", *args], check=True)


def train_args(recipe: Recipe, run: Run, out: Path) -> List[str]:
    """The ``pyterrier-hybrid train`` arguments of a run (patience above the evaluations: selection, no stop).

    Args:
        recipe: what the study's runs share.
        run: the run.
        out: the model directory to write.
    """
    return ["train", "--sampling", run.sampling, "--alpha", str(run.alpha), "--model", recipe.model,
            "--data", recipe.data, "--langs", ",".join(recipe.langs), "--out", str(out), "--steps", str(recipe.steps),
            "--batch-size", str(recipe.batch_size), "--seed", str(run.seed), "--doc-max-length",
            str(recipe.doc_max_length), "--val-fraction", str(recipe.val_fraction), "--eval-every",
            str(recipe.eval_every), "--patience", str(recipe.steps), "--checkpoint-every",
            str(recipe.eval_every), *(["--keep-checkpoint"] if recipe.keep_checkpoint else []), *run.flags]


def run_one(recipe: Recipe, run: Run, results: Path, work: Path, commit: bool) -> Path:
    """Train and evaluate one run unless its artifacts are in ``results``; return their folder.

    Args:
        recipe: what the study's runs share.
        run: the run.
        results: the study's artifact folder (``results/<run>``).
        work: models and evaluations (``work/<run>``), not committed.
        commit: git-commit the run's artifacts once written.
    """
    done = results / run.name
    if all((done / f).is_file() for f in ARTIFACTS):
        print(f"{done}: artifacts present, skipped")
        return done
    model, evaluation = work / run.name / "model", work / run.name / "eval"
    if not (model / TRAINING_CONFIG).is_file():  # written with the model, at the end of training
        resume = ["--resume"] if state_path(model).is_file() else []
        cli(*train_args(recipe, run, model), *resume)
    if not (evaluation / "report.json").is_file():
        cli("evaluate", "--dataset", recipe.eval_dataset, "--model", str(model), "--out", str(evaluation),
            "--dtype", recipe.eval_dtype, "--update-card")
    done.mkdir(parents=True, exist_ok=True)
    for name in ARTIFACTS:
        shutil.copyfile((evaluation if name == "report.json" else model) / name, done / name)
    if commit:
        git_commit(done, f"{done.relative_to(REPO)}: run artifacts")
    return done


def evaluate_last_step(recipe: Recipe, run: Run, results: Path, work: Path, commit: bool) -> Optional[Path]:
    """Evaluate a finished run's final-step weights as well, into ``results/<run>/report-last-step.json``.

    The kept model is the step with the lowest validation loss; this report shows what the later steps did on the
    test protocol. It is a diagnostic, never a selection. The weights come from the resume checkpoint in
    ``work/<run>/model/checkpoint/state.pt`` (ignored by git), so a run trained on another machine is skipped with
    a message. Returns the report's path, or None when it cannot be made.

    Args:
        recipe: what the study's runs share (``keep_checkpoint`` must have been set).
        run: the finished run.
        results: the study's artifact folder.
        work: where the run was trained.
        commit: git-commit the report once written.
    """
    target = results / run.name / LAST_STEP
    if target.is_file():
        return target
    model = work / run.name / "model"
    state = state_path(model)
    if not (results / run.name / "train_log.jsonl").is_file() or not state.is_file():
        print(f"{target}: no finished run with its resume checkpoint in {model}; last step not evaluated")
        return None
    import torch

    from pyterrier_hybrid.training import checkpoint, export_checkpoint

    step = checkpoint.load(state, torch.device("cpu"))["step"]  # the safe loader: tensors and plain data only
    if step != recipe.steps:
        raise SystemExit(f"{state} is at step {step}, not the last ({recipe.steps}); finish the run first")
    last, evaluation = work / run.name / "last-step-model", work / run.name / "eval-last-step"
    if not (last / "config.json").is_file():
        export_checkpoint(model, last, overwrite=True)
    if not (evaluation / "report.json").is_file():
        cli("evaluate", "--dataset", recipe.eval_dataset, "--model", str(last), "--out", str(evaluation),
            "--dtype", recipe.eval_dtype)
    shutil.copyfile(evaluation / "report.json", target)
    if commit:
        git_commit(target, f"{target.relative_to(REPO)}: the final step's weights, evaluated")
    return target


def git_commit(path: Path, message: str, tries: int = 30) -> None:
    """Commit ``path`` alone (other staged changes stay staged).

    A study runs for hours beside other work in the same checkout, where a commit of that work can hold git's
    index lock for a moment, so a failed attempt is retried for ``tries`` seconds instead of ending the study.

    Args:
        path: the file or folder to commit.
        message: the commit message.
        tries: attempts, a second apart.
    """
    for _ in range(tries):
        for args in (["add", str(path)], ["commit", "-q", "-m", message, "--", str(path)]):
            done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
            if done.returncode != 0:
                break
        else:
            return
        time.sleep(1)
    raise SystemExit(f"git commit of {path} failed ({done.stderr.strip()}); commit it by hand")


def write_json(path: Path, value: dict, commit: bool, message: str) -> None:
    """Write ``value`` to ``path`` atomically, and commit it alone when ``commit`` (a study's choices and checks).

    Args:
        path: the JSON file.
        value: what it holds.
        commit: git-commit it once written.
        message: the commit message, after the file's path.
    """
    atomic_write_text(path, json.dumps(value, indent=2) + "\n")
    if commit:
        git_commit(path, f"{path.relative_to(REPO)}: {message}")


def max_difference(a, b, skip: Sequence[str] = ("name", "timing", "seconds", "passages")) -> float:
    """The largest absolute difference between the numbers of two JSON values of one shape; inf if shapes differ.

    Args:
        a: one JSON value.
        b: the other.
        skip: keys left out (paths, wall-clock times, and the passages a step encoded, which logs record only
            since 2026-12 and which follow from the batches); strings and other leaves must be equal.
    """
    if isinstance(a, dict) and isinstance(b, dict):
        keys = set(a) - set(skip)
        if keys != set(b) - set(skip):
            return float("inf")
        return max((max_difference(a[k], b[k], skip) for k in keys), default=0.0)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return float("inf")
        return max((max_difference(x, y, skip) for x, y in zip(a, b)), default=0.0)
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return abs(float(a) - float(b))
    return 0.0 if a == b else float("inf")


def same_run(a: dict, b: dict) -> bool:
    """Whether two training configs describe the same run; ``sittings`` (where it ran) are left out, and
    configs committed before they were recorded have none.

    Args:
        a: one ``training_config.json``, read.
        b: the other.
    """
    return {k: v for k, v in a.items() if k != "sittings"} == {k: v for k, v in b.items() if k != "sittings"}


def reproduce(recipe: Recipe, run: Run, results: Path, work: Path, command: str) -> dict:
    """Train and evaluate ``run`` again in ``work`` and compare with its committed artifacts in ``results``.

    Writes ``results/reproduction.json``: whether the training config is identical, and the largest absolute
    difference in the training log (losses, learning rates) and in the report (every measure; paths and
    timings left out). A killed check resumes like any run.

    Args:
        recipe: what the study's runs share.
        run: the committed run to train again.
        results: the study's artifact folder, where ``run`` is committed.
        work: where the rerun is trained and evaluated.
        command: the command line, recorded in ``reproduction.json``.
    """
    committed = results / run.name
    if not all((committed / f).is_file() for f in ARTIFACTS):
        raise SystemExit(f"{committed} has no complete artifacts to reproduce; run the study first")
    use_shared_data()
    again = run_one(recipe, run, work / "artifacts", work, commit=False)
    old, new = load_run(committed), load_run(again)
    check = {"run": run.name, "command": command,
             "config_identical": same_run(old["config"], new["config"]),
             "log_max_abs_diff": max_difference(old["log"], new["log"]),
             "report_max_abs_diff": max_difference(old["report"], new["report"])}
    check["identical"] = check["config_identical"] and check["log_max_abs_diff"] == check["report_max_abs_diff"] == 0
    atomic_write_text(results / "reproduction.json", json.dumps(check, indent=2) + "\n")
    return check


def use_shared_data() -> None:
    """Read the datasets from ../shared/data when it is there and $PYTERRIER_HYBRID_DATA names nothing else."""
    if not os.environ.get("PYTERRIER_HYBRID_DATA") and (REPO.parent / "shared" / "data").is_dir():
        os.environ["PYTERRIER_HYBRID_DATA"] = str(REPO.parent / "shared" / "data")


def run_study(recipe: Recipe, runs: Sequence[Run], results: Path, work: Path, commit: bool = False) -> Dict[str, Path]:
    """Every run of a study, in order (see :func:`run_one`): artifacts in ``results/<run>``, models in ``work/<run>``.

    Args:
        recipe: what the runs share.
        runs: the runs.
        results: the study's artifact folder.
        work: models and evaluations, not committed.
        commit: git-commit each run's artifacts once written.
    """
    use_shared_data()
    return {run.name: run_one(recipe, run, results, work, commit) for run in runs}


def host(sitting: dict) -> str:
    """Where a sitting ran: the CUDA device, or ``cpu (<model>)`` where the CPU's model was recorded."""
    return f"{sitting['device']} ({sitting['cpu']})" if sitting["device"] == "cpu" and sitting.get("cpu") else sitting["device"]


def bf16_said(sitting: dict) -> str:
    """Whether a sitting's host had native bf16, as the pages say it (an fp32 run's host is named the same way)."""
    return f"{'' if sitting['native_bf16'] else 'no '}native bf16"


def training_seconds(log: List[dict]) -> Optional[float]:
    """A run's training time from its log: per batch kind, its steps × their median seconds (None if untimed).

    Medians, so a step that straddles a pause (a study stopped for a quiet benchmark) is not cost; per kind, because
    a mix's kinds cost differently (a multi batch encodes K passages a query) and one median would hide that.
    """
    by_kind: Dict[str, List[float]] = {}
    for r in log:
        if "loss" in r and "seconds" in r:
            by_kind.setdefault(r.get("kind", ""), []).append(r["seconds"])
    return sum(len(s) * float(np.median(s)) for s in by_kind.values()) if by_kind else None


def load_run(folder: Path) -> dict:
    """A finished run's report, config and log (and its final step's report, if made), read back from its artifacts.

    Args:
        folder: the run's artifact folder.
    """
    log = [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]
    last = folder / LAST_STEP
    return {"report": json.loads((folder / "report.json").read_text()),
            "config": json.loads((folder / TRAINING_CONFIG).read_text()), "log": log,
            "last_step": json.loads(last.read_text()) if last.is_file() else None}
