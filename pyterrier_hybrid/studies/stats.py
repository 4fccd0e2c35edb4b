"""The paired tests of the studies: Wilcoxon signed-rank over paired settings, and Holm's adjustment."""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np


def paired_test(a: Sequence[float], b: Sequence[float], better: int = 1) -> Tuple[int, int, float]:
    """Wilcoxon signed-rank (scipy, two-sided) of ``a`` against ``b``, paired by position.

    Args:
        a: one system's values, a setting each.
        b: the other's, for the same settings.
        better: +1 where higher is better, -1 where lower is (rank distance).

    Returns:
        How many settings favour ``a``, how many favour ``b``, and the p-value (1.0 when every setting ties, where
        the test is undefined).
    """
    from scipy.stats import wilcoxon

    d = better * (np.asarray(a, dtype=float) - np.asarray(b, dtype=float))
    p = float(wilcoxon(a, b).pvalue) if np.any(d != 0) else 1.0
    return int((d > 0).sum()), int((d < 0).sum()), p


def holm(pvalues: Sequence[float]) -> List[float]:
    """Holm–Bonferroni adjusted p-values (family-wise error over all the tests given).

    Args:
        pvalues: one p-value per test of the family.
    """
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p)
    adjusted = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    out = np.empty_like(p)
    out[order] = np.minimum(adjusted, 1.0)
    return out.tolist()
