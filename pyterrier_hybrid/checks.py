"""Input checks shared by the transformers: clear errors instead of tracebacks from deep inside."""
from __future__ import annotations

from typing import Iterable, List, Sequence

import pandas as pd


def require_columns(frame: pd.DataFrame, columns: Iterable[str], who: str, hint: str = "") -> None:
    """Raise a KeyError naming the missing columns of ``frame``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"{who} needs column(s) {missing}, but the input has {list(frame.columns)}. {hint}".strip())


def require_texts(values: Sequence, column: str) -> List[str]:
    """The values as a list of non-empty strings, or a ValueError naming the first bad row."""
    texts = list(values)
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise ValueError(f"column {column!r} row {i} is {t!r}; every {column} must be non-empty text")
    return texts
