"""Gradient caching (GradCache, arXiv 2101.06983): the memory of a big contrastive batch, a chunk at a time.

Embed everything without a graph, take the loss gradient with respect to the embeddings, then embed again
chunk by chunk with a graph and push those gradients through. Dropout masks are replayed from the saved
random state, so the result equals backpropagation through the whole batch.
"""
from __future__ import annotations

from typing import Callable, List, Sequence, Tuple

import torch


class RngFork:
    """The random state at one moment, to replay the same dropout masks in the second forward pass."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


def grad_cache_backward(
    groups: Sequence[Tuple[List[str], str]],
    embed: Callable[[List[str], str], torch.Tensor],
    loss_of: Callable[[List[torch.Tensor]], torch.Tensor],
    backward: Callable[[torch.Tensor], None],
    chunk: int,
    gather: Callable[[torch.Tensor], torch.Tensor],
    share: Callable[[int], slice],
    device: torch.device,
) -> torch.Tensor:
    """Accumulate this process's gradient of the global loss into the model; return the loss.

    Args:
        groups: this process's texts and their kind (``"query"`` / ``"doc"``): queries, positives, negatives.
        embed: ``embed(texts, kind)``, the encoder's forward pass.
        loss_of: the loss of the global embeddings, one tensor per group.
        backward: runs ``loss.backward()`` (with loss scaling where used).
        chunk: texts per forward pass with a graph.
        gather: this process's embeddings -> everyone's (identity on one process).
        share: this process's rows of a gathered tensor of n rows (``share(n)``).
        device: where the random state for dropout lives.
    """
    forks, local_reps = [], []
    with torch.no_grad():
        for texts, kind in groups:
            parts = []
            for i in range(0, len(texts), chunk):
                forks.append(RngFork(device))
                parts.append(embed(texts[i:i + chunk], kind))
            local_reps.append(torch.cat(parts))
    global_reps = [gather(r).requires_grad_() for r in local_reps]
    loss = loss_of(global_reps)
    backward(loss)
    fork = iter(forks)
    for (texts, kind), rep in zip(groups, global_reps):
        grad = rep.grad[share(len(rep))]
        for i in range(0, len(texts), chunk):
            next(fork).restore()
            embed(texts[i:i + chunk], kind).backward(grad[i:i + chunk])
    return loss.detach()
