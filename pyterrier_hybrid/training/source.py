"""What a training source is to the samplers: the :class:`TrainingSource` protocol, and the :class:`Entry` it yields.

:class:`~pyterrier_hybrid.training.data.ParallelSource` (items in memory) and
:class:`~pyterrier_hybrid.training.irds.IrdsSource` (ids in memory, texts fetched when drawn) both satisfy it; so
does any class with these members, without subclassing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Protocol, Sequence, Tuple, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Entry:
    """One language's version of a training item."""
    query: str
    positive: str
    negatives: Tuple[str, ...] = ()


class TrainingEntry(Protocol):
    """What :meth:`TrainingSource.entry` returns: an :class:`Entry`, or one whose passages are read when used."""

    @property
    def query(self) -> str: ...

    @property
    def positive(self) -> str: ...

    @property
    def negatives(self) -> Sequence[str]: ...


@runtime_checkable
class TrainingSource(Protocol):
    """Parallel training items, by position: item ``i`` is one parallel id in one or more languages.

    Parallel ids are unique within a source, so a batch drawn by position never holds a translation twice.
    """
    name: str

    def __len__(self) -> int:
        """The number of items."""

    @property
    def langs(self) -> List[str]:
        """Every language of the source."""

    def lang_index(self) -> Dict[str, np.ndarray]:
        """Per language, the positions of the items that have it, in item order (X-X-mono batches draw from these)."""

    def multi_index(self) -> np.ndarray:
        """The positions of the items in two or more languages (X-Y batches draw from these)."""

    def parallel_id(self, i: int) -> str:
        """Item ``i``'s parallel id."""

    def item_langs(self, i: int) -> List[str]:
        """Item ``i``'s languages, sorted."""

    def entry(self, i: int, lang: str) -> TrainingEntry:
        """Item ``i`` in ``lang``: its query, positive and hard negatives."""

    def subset(self, keep: Sequence[bool], name: str) -> "TrainingSource":
        """The items where ``keep`` is true, as a source called ``name`` (validation splits)."""

    def describe(self) -> dict:
        """Name, size, languages and a content fingerprint: what a run config records of its data."""
