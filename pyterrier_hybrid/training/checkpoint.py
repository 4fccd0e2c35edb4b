"""Checkpoints and resume: where they lie, safe loading, the run-config check, and the log cut back to the checkpoint."""
from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any, List

import torch

from ..atomic import atomic_write, atomic_write_text
from ..model.model_dir import CHECKPOINT

#: run-config keys that may change on --resume: they do not change what is trained
RESUMABLE = {"train.checkpoint_every"}


def state_path(run_dir: str | Path) -> Path:
    """Where a run keeps its resume state (weights, AdamW, sampler and RNG states): ``RUN/checkpoint/state.pt``.

    Args:
        run_dir: the run's output directory.
    """
    return Path(run_dir) / CHECKPOINT / "state.pt"


def best_path(run_dir: str | Path) -> Path:
    """Where a validating run keeps the best weights so far: ``RUN/checkpoint/best.pt``.

    Args:
        run_dir: the run's output directory.
    """
    return Path(run_dir) / CHECKPOINT / "best.pt"


def save(obj: Any, path: Path) -> None:
    """``torch.save`` atomically."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load(path: Path, device: torch.device) -> Any:
    """``torch.load`` of tensors and plain data only: a checkpoint from elsewhere must not run code."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path} holds more than tensors and plain data, so it was not loaded (it could run "
                         f"code). Use a checkpoint written by pyterrier-hybrid. Detail: {str(e)[:300]}") from None


def check_same_run(saved: dict, now: dict, path: Path) -> None:
    """Refuse to resume a checkpoint written under another run config, naming every difference."""
    found = differences(saved, now)
    if found:
        raise ValueError(f"--resume: {path} was written by a run with another configuration; resume it with "
                         "the same settings, or start afresh in another directory. Differences "
                         "(checkpoint -> now): " + "; ".join(found))


def differences(saved: dict, now: dict, prefix: str = "") -> List[str]:
    """``key: old -> new`` for every leaf that differs between two run configs (resumable keys aside)."""
    out = []
    for key in sorted(set(saved) | set(now), key=str):
        name = f"{prefix}{key}"
        a, b = (dict(enumerate(v)) if isinstance(v, list) and len(saved.get(key) or ()) == len(now.get(key) or ())
                else v for v in (saved.get(key), now.get(key)))
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, name + ".")
        elif a != b and name not in RESUMABLE:
            out.append(f"{name}: {a!r} -> {b!r}")
    return out


def trim_log(log: Path, step: int) -> None:
    """Drop log lines after ``step``: the run was killed after its last checkpoint, and those steps rerun."""
    if log.is_file():
        lines = [ln for ln in log.read_text().splitlines() if ln and json.loads(ln)["step"] <= step]
        atomic_write_text(log, "".join(ln + "\n" for ln in lines))
