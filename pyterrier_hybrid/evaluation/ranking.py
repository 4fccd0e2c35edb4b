"""Ranking arithmetic over candidate positions: trec_eval's tie order, rank matrices and rank look-ups.

The protocol's measures (:mod:`~pyterrier_hybrid.evaluation.measures`, vectorised) read ranks made here.
Positions are a :class:`~pyterrier_hybrid.evaluation.splits.Split`'s candidate positions; -1 is padding.
"""
from __future__ import annotations

import numpy as np


def break_ties(scores: np.ndarray, ids: np.ndarray, docno_order: np.ndarray) -> np.ndarray:
    """Reorder runs of equal scores by docno, descending (trec_eval's rule); only the tied runs are touched.

    Args:
        scores: ``[queries, k]`` scores, descending in each row.
        ids: ``[queries, k]`` candidate positions, -1 = padding; reordered in place (a contiguous copy first, when
            it is a strided view) and returned.
        docno_order: per position, the docno's place in sorted order (:attr:`Split.docno_order`).
    """
    ids = np.ascontiguousarray(ids)  # reshape(-1) below must be a view, not a copy
    if ids.shape[1] < 2:
        return ids
    k = ids.shape[1]
    eq = scores[:, 1:] == scores[:, :-1]
    if ids.min() < 0:
        eq &= ids[:, 1:] >= 0
    pair = np.flatnonzero(eq)  # (row, j) pairs whose j+1-th score equals the j-th, as flat [queries, k - 1] indices
    if not len(pair):
        return ids
    second = pair + pair // (k - 1) + 1  # the j+1-th as a flat [queries, k] index, ascending
    opens = np.r_[True, np.diff(second) != 1]  # a run's first pair: its predecessor ties with nothing before it
    run = np.cumsum(opens)
    pos, run = np.concatenate([second[opens] - 1, second]), np.concatenate([run[opens], run])  # every tied position
    order = np.lexsort((pos, run))
    pos, run = pos[order], run[order]  # by run, then position
    flat = ids.reshape(-1)  # a view: writing to it reorders ids in place
    members = flat[pos]
    flat[pos] = members[np.lexsort((-docno_order[members], run))]
    return ids


def rank_matrix(ids: np.ndarray, offset: int, n: int) -> np.ndarray:
    """``[queries, n]``: the 1-based rank of each of the ``n`` candidates from position ``offset``; 0 = unranked.

    Args:
        ids: ``[queries, k]`` rankings (candidate positions, -1 = padding).
        offset: the first candidate position of the corpus.
        n: the corpus size.
    """
    ranks = np.arange(1, ids.shape[1] + 1, dtype=np.int32)[None, :]
    if ids.shape[1] == n and (n == 0 or ids.min() >= 0):  # a full ranking (a permutation): no padding to absorb,
        inv = np.empty((len(ids), n), dtype=np.int32)     # and 10x faster without the temporaries below
        np.put_along_axis(inv, ids - offset if offset else ids, ranks, axis=1)
        return inv
    inv = np.zeros((len(ids), n + 1), dtype=np.int32)  # the extra column absorbs the -1 padding
    np.put_along_axis(inv, np.where(ids >= 0, ids - offset, n), ranks, axis=1)
    return inv[:, :n]


def ranks_of(inv: np.ndarray, docs: np.ndarray, offset: int) -> np.ndarray:
    """Look candidates up in a rank matrix; padding stays -1.

    Args:
        inv: a :func:`rank_matrix`.
        docs: ``[queries, w]`` candidate positions, -1 = padding.
        offset: the rank matrix's first candidate position.
    """
    return np.where(docs >= 0, np.take_along_axis(inv, np.maximum(docs - offset, 0), axis=1), -1)
