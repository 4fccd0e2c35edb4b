"""InfoNCE with in-batch and hard negatives."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F


def info_nce(queries: torch.Tensor, docs: torch.Tensor, temperature: float = 0.05,
             mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean cross-entropy of each query against every document in the batch.

    Args:
        queries: ``[B, dim]`` query vectors (normalised, for cosine similarity).
        docs: ``[D, dim]`` document vectors, D >= B; row i is query i's positive, the rest are its negatives
            (the other positives and any hard negatives).
        temperature: the softmax temperature.
        mask: ``[B, D]`` True where a document must not count as a negative for that query.
    """
    logits = queries @ docs.T / temperature
    if mask is not None:
        logits = logits.masked_fill(mask, float("-inf"))
    return F.cross_entropy(logits, torch.arange(len(queries), device=queries.device))


def negative_mask(positives: Sequence[str], docs: Sequence[Optional[str]]) -> torch.Tensor:
    """Mask for :func:`info_nce`: missing documents (None), and copies of a query's own positive text
    outside its own column, are not negatives (they would be false negatives)."""
    b = len(positives)
    mask = torch.zeros(b, len(docs), dtype=torch.bool)
    for j, d in enumerate(docs):
        if d is None:
            mask[:, j] = True
            continue
        for i, p in enumerate(positives):
            if j != i and d == p:
                mask[i, j] = True
    return mask
