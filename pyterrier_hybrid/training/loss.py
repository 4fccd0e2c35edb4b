"""The losses: InfoNCE with in-batch and hard negatives, its multi-positive form, and the translation-ranking
alignment term."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

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


def multi_positive_nce(queries: torch.Tensor, docs: torch.Tensor, positives_mask: torch.Tensor,
                       temperature: float = 0.05, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Multi-positive InfoNCE: each positive of a query competes only with the query's non-answers, never with its
    other positives (supervised contrastive learning's "L_out" form), averaged over positives, then queries.

    For query i and positive p: ``-log(exp(s_ip/t) / (exp(s_ip/t) + sum_n exp(s_in/t)))``, n over the non-answers.
    The other form (one softmax over all positives, "L_in") lets a query satisfy the loss with the answer it already
    ranks first; here every language's answer must beat every non-answer on its own, which is what a multilingual
    pool asks. With one positive per query it is :func:`info_nce`.

    Args:
        queries: ``[B, dim]`` query vectors.
        docs: ``[D, dim]`` document vectors.
        positives_mask: ``[B, D]`` True where a document is one of the query's answers (at least one per row).
        temperature: the softmax temperature.
        mask: ``[B, D]`` True where a non-answer must not count as a negative (missing slots, copies of an answer).
    """
    logits = queries @ docs.T / temperature
    negatives = ~positives_mask if mask is None else ~positives_mask & ~mask
    negative_lse = torch.logsumexp(logits.masked_fill(~negatives, float("-inf")), dim=1, keepdim=True)
    # log(exp(s_ip) + sum_n exp(s_in)) for every pair at once; a row without negatives gives 0 loss, as info_nce
    per_pair = torch.logaddexp(logits, negative_lse) - logits
    per_query = torch.where(positives_mask, per_pair, 0.0).sum(1) / positives_mask.sum(1)
    return per_query.mean()


def multi_positive_mask(positives: Sequence[Sequence[str]], docs: Sequence[Optional[str]]) -> Tuple[torch.Tensor, torch.Tensor]:
    """The masks of :func:`multi_positive_nce` for queries whose answers are consecutive documents.

    Args:
        positives: per query, its answer texts; query i's are documents ``i*K .. i*K + K - 1`` (K = their number).
        docs: every document (answers first, then hard negatives; None for a missing one).

    Returns:
        ``(positives_mask, mask)``: which documents are each query's answers, and which other documents are not
        negatives (missing ones, and copies of one of the query's answers: false negatives).
    """
    k = len(positives[0])
    pos = torch.zeros(len(positives), len(docs), dtype=torch.bool)
    mask = torch.zeros_like(pos)
    for i, answers in enumerate(positives):
        pos[i, i * k:(i + 1) * k] = True
        texts = set(answers)
        for j, d in enumerate(docs):
            if d is None or (not pos[i, j] and d in texts):
                mask[i, j] = True
    return pos, mask


def translation_ranking(views: Sequence[torch.Tensor], temperature: float = 0.05,
                        masks: Optional[Sequence[Optional[torch.Tensor]]] = None) -> torch.Tensor:
    """LaBSE's bitext objective (bidirectional in-batch softmax), without its additive margin: row i of every view
    is one parallel id in another language, and each row must pick its own id's row among another view's rows.

    With two views ``x, y``: ``(info_nce(x, y) + info_nce(y, x)) / 2``; with more, the mean of that over every pair.

    Args:
        views: two or more ``[B, dim]`` tensors, row i of each the same id.
        temperature: the softmax temperature.
        masks: per view, ``[B, B]`` True where row j of that view must not count as a negative for row i (a copy of
            row i's own text under another id).
    """
    if len(views) < 2:
        raise ValueError(f"translation ranking needs two views or more, got {len(views)}")
    masks = list(masks) if masks is not None else [None] * len(views)
    pairs = [(a, b) for a in range(len(views)) for b in range(a + 1, len(views))]
    return torch.stack([(info_nce(views[a], views[b], temperature, masks[b])
                         + info_nce(views[b], views[a], temperature, masks[a])) / 2 for a, b in pairs]).mean()
