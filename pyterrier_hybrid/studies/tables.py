"""What the results page's sections share: the headline measures of a run, and how they are printed."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

#: the mAP settings, with their labels
KEYS = [("mono", "Mo."), ("cross", "Cr."), ("multi", "Mul.")]
#: the paired tests: measure key, label, what is paired, and +1 where higher is better
TESTS = [("mono", "Mo. mAP", "languages", 1), ("cross", "Cr. mAP", "language pairs", 1),
         ("multi", "Mul. mAP", "query languages", 1), ("rd", "rank distance", "query languages", -1)]
#: decimals each measure is printed with
DIGITS = {"mono": 3, "cross": 3, "multi": 3, "rd": 1}


def headline(run: dict) -> Dict[str, float]:
    """Macro Mo., Cr. and Mul. mAP and rank distance (``rd``) of a run's report.

    Args:
        run: a run with its protocol report under ``"report"``.
    """
    r = run["report"]
    return {**{k: r["mAP"][k] for k, _ in KEYS}, "rd": r["rank_distance"]["macro"]}


def cell_means(runs: List[dict]) -> Dict[str, np.ndarray]:
    """Per setting, averaged over seeds: the Mo. and Cr. cells; Mul. mAP and rank distance per query language.

    Args:
        runs: the seeds of one system, each with its report under ``"report"``.
    """
    langs = runs[0]["report"]["langs"]
    reports = [r["report"] for r in runs]
    return {"mono": np.mean([[r["matrix"][x][x] for x in langs] for r in reports], axis=0),
            "cross": np.mean([[r["matrix"][x][y] for x in langs for y in langs if x != y] for r in reports], axis=0),
            "multi": np.mean([[r["multi_by_lang"][x] for x in langs] for r in reports], axis=0),
            "rd": np.mean([[r["rank_distance"][x] for x in langs] for r in reports], axis=0)}


def mean_std(values: Sequence[float], digits: int = 3) -> str:
    """``mean ± sample std`` (just the mean for one seed).

    Args:
        values: one value per seed.
        digits: decimals.
    """
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.{digits}f}" if len(v) < 2 else f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


def signed(value: float, digits: int) -> str:
    """``+0.012`` / ``-0.012``; a difference that rounds to zero reads ``+0.000``, never ``-0.000``.

    Args:
        value: the difference.
        digits: decimals.
    """
    text = f"{value:+.{digits}f}"
    return "+" + text[1:] if float(text) == 0 else text


def reading_lines(folder: Path, heading: str) -> List[str]:
    """A study's hand-written reading (``folder/reading.md``) under ``heading``, as it is; nothing when absent."""
    reading = folder / "reading.md"
    return [heading, "", reading.read_text(encoding="utf-8").strip(), ""] if reading.is_file() else []
