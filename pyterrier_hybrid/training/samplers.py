"""Batch samplers for hybrid-batch training (arXiv 2408.10536).

- :class:`MonolingualBatchSampler` (X-X-mono): every triplet of a batch is in one language, drawn
  uniformly per batch among the languages that can fill a batch.
- :class:`CrossLingualBatchSampler` (X-Y): in every triplet the query language differs from the
  passage language (both drawn uniformly among the item's languages).
- :class:`HybridBatchSampler`: each batch is X-X-mono with probability ``alpha``, otherwise X-Y.

They draw from any :class:`~pyterrier_hybrid.training.source.TrainingSource`: a
:class:`~pyterrier_hybrid.training.data.ParallelSource` (items in memory) or an
:class:`~pyterrier_hybrid.training.irds.IrdsSource` (ids in memory, texts fetched when drawn). With several
sources, each batch comes from one source, drawn in proportion to its size. A batch never holds two items with the
same parallel id, so translations are never each other's negatives. Samplers are endless, seedable iterables;
``state_dict()`` / ``load_state_dict()`` resume them exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .source import TrainingSource

#: the two batch kinds, also the --sampling names of the samplers that draw one kind only
XX, XY = "xx", "xy"


@dataclass(frozen=True)
class Triplet:
    parallel_id: str
    query_lang: str
    doc_lang: str
    query: str
    positive: str
    negative: Optional[str]


@dataclass(frozen=True)
class Batch:
    """One training batch and its composition (kind :data:`XX` or :data:`XY`)."""
    kind: str
    source: str
    triplets: Tuple[Triplet, ...]

    @property
    def langs(self) -> List[str]:
        """The language pairs in the batch, as ``"x-y"``, sorted and distinct."""
        return sorted({f"{t.query_lang}-{t.doc_lang}" for t in self.triplets})


class BatchSampler:
    """The base of the batch samplers: draws batches of triplets from training sources, seedable and resumable.

    Args:
        sources: one :class:`~pyterrier_hybrid.training.source.TrainingSource` or several.
        batch_size: triplets per batch.
        seed: random seed.
    """

    kinds: Tuple[str, ...] = ()
    sampling = ""  # the CLI's --sampling name
    label = ""     # what the model card calls it
    alpha = 0.0    # the probability of an X-X-mono batch

    def __init__(self, sources: Sequence[TrainingSource] | TrainingSource, batch_size: int, seed: int = 0):
        self.sources = [sources] if isinstance(sources, TrainingSource) else list(sources)
        if not self.sources:
            raise ValueError("no training sources given")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.batch_size, self.seed = batch_size, seed
        self.rng = np.random.default_rng(seed)
        self.batches_drawn = 0
        # per source: items by language (for X-X) and items with at least two languages (for X-Y)
        self._by_lang: List[Dict[str, np.ndarray]] = [s.lang_index() for s in self.sources]
        self._multi: List[np.ndarray] = [s.multi_index() for s in self.sources]
        self._check()

    def _check(self) -> None:
        for kind in self.kinds:
            for s, by_lang, multi in zip(self.sources, self._by_lang, self._multi):
                if kind == XX and not any(len(v) >= self.batch_size for v in by_lang.values()):
                    sizes = {k: len(v) for k, v in by_lang.items()}
                    raise ValueError(f"source {s.name!r} has no language with {self.batch_size} items for an X-X-mono "
                                     f"batch (items per language: {sizes}); lower the batch size")
                if kind == XY and len(multi) < self.batch_size:
                    raise ValueError(f"source {s.name!r} has {len(multi)} items in two or more languages, too few for an "
                                     f"X-Y batch of {self.batch_size}: X-Y needs every query to have a partner language")

    def _source(self) -> int:
        sizes = np.array([len(s) for s in self.sources], dtype=np.float64)
        return int(self.rng.choice(len(self.sources), p=sizes / sizes.sum())) if len(sizes) > 1 else 0

    def _negative(self, negatives: Sequence[str]) -> Optional[str]:
        return negatives[int(self.rng.integers(len(negatives)))] if negatives else None

    def _xx(self, src: int) -> Batch:
        s, by_lang = self.sources[src], self._by_lang[src]
        langs = sorted(k for k, v in by_lang.items() if len(v) >= self.batch_size)
        lang = langs[int(self.rng.integers(len(langs)))]
        chosen = self.rng.choice(by_lang[lang], size=self.batch_size, replace=False)
        triplets = []
        for i in chosen:
            e = s.entry(i, lang)
            triplets.append(Triplet(s.parallel_id(i), lang, lang, e.query, e.positive, self._negative(e.negatives)))
        return Batch(XX, s.name, tuple(triplets))

    def _xy(self, src: int) -> Batch:
        s = self.sources[src]
        chosen = self.rng.choice(self._multi[src], size=self.batch_size, replace=False)
        triplets = []
        for i in chosen:
            langs = s.item_langs(i)
            x, y = (langs[j] for j in self.rng.choice(len(langs), size=2, replace=False))
            q, d = s.entry(i, x), s.entry(i, y)
            triplets.append(Triplet(s.parallel_id(i), x, y, q.query, d.positive, self._negative(d.negatives)))
        return Batch(XY, s.name, tuple(triplets))

    def _draw(self) -> Batch:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Batch]:
        while True:
            batch = self._draw()
            self.batches_drawn += 1
            yield batch

    def describe(self) -> dict:
        """What the sampler draws from and how: recorded in a run's config and model card."""
        return {"sampling": self.sampling, "alpha": self.alpha, "batch_size": self.batch_size, "seed": self.seed,
                "sources": [s.describe() for s in self.sources]}

    def state_dict(self) -> dict:
        """Everything needed to continue with exactly the same next batches."""
        return {"rng": self.rng.bit_generator.state, "batches_drawn": self.batches_drawn, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.batches_drawn = state["batches_drawn"]


class MonolingualBatchSampler(BatchSampler):
    """X-X-mono batches: one language per batch, drawn uniformly among languages that can fill a batch.

    Args:
        sources: one or more :class:`~pyterrier_hybrid.training.source.TrainingSource`, each with a language that
            has ``batch_size`` items.
        batch_size: triplets per batch.
        seed: random seed.
    """
    kinds = (XX,)
    sampling, label, alpha = XX, "X-X-mono", 1.0

    def _draw(self) -> Batch:
        return self._xx(self._source())


class CrossLingualBatchSampler(BatchSampler):
    """X-Y batches: every query is paired with its positive (and negative) in another language.

    Args:
        sources: one or more :class:`~pyterrier_hybrid.training.source.TrainingSource`, each with ``batch_size``
            items in two or more languages.
        batch_size: triplets per batch.
        seed: random seed.
    """
    kinds = (XY,)
    sampling, label, alpha = XY, "X-Y", 0.0

    def _draw(self) -> Batch:
        return self._xy(self._source())


class HybridBatchSampler(BatchSampler):
    """Hybrid batches: X-X-mono with probability ``alpha``, otherwise X-Y (the paper's best: 0.5).

    Args:
        sources: one or more :class:`~pyterrier_hybrid.training.source.TrainingSource`, which must allow the
            batch kinds that ``alpha`` draws (see the other two samplers).
        batch_size: triplets per batch.
        alpha: probability of an X-X-mono batch, in [0, 1].
        seed: random seed.
    """
    sampling, label = "hybrid", "hybrid"

    def __init__(self, sources: Sequence[TrainingSource] | TrainingSource, batch_size: int, alpha: float = 0.5,
                 seed: int = 0):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.alpha = alpha
        self.kinds = tuple(k for k, p in ((XX, alpha), (XY, 1 - alpha)) if p > 0)
        super().__init__(sources, batch_size, seed)

    def _draw(self) -> Batch:
        src = self._source()
        return self._xx(src) if self.rng.random() < self.alpha else self._xy(src)


#: the samplers by their --sampling name
SAMPLERS = {cls.sampling: cls for cls in (MonolingualBatchSampler, CrossLingualBatchSampler, HybridBatchSampler)}
#: the CLI's --sampling choices
SAMPLINGS = tuple(SAMPLERS)


def make_sampler(sampling: str, sources: Sequence[TrainingSource] | TrainingSource, batch_size: int,
                 alpha: float = 0.5, seed: int = 0) -> BatchSampler:
    """The sampler for a CLI ``--sampling`` value (one of :data:`SAMPLINGS`).

    Args:
        sampling: ``xx``, ``xy`` or ``hybrid``.
        sources: one or more :class:`~pyterrier_hybrid.training.source.TrainingSource`.
        batch_size: triplets per batch.
        alpha: hybrid only: the probability of an X-X-mono batch.
        seed: random seed.
    """
    if sampling not in SAMPLERS:
        raise ValueError(f"unknown sampling {sampling!r}; use one of {', '.join(SAMPLINGS)}")
    if SAMPLERS[sampling] is HybridBatchSampler:
        return HybridBatchSampler(sources, batch_size, alpha, seed)
    return SAMPLERS[sampling](sources, batch_size, seed)


def sampling_label(sampling: str, alpha: float) -> str:
    """What a model card calls a run's sampling, e.g. ``X-Y`` or ``hybrid (α = 0.5)``.

    Args:
        sampling: the run's ``--sampling`` name.
        alpha: its α (shown for hybrid sampling only).
    """
    label = SAMPLERS[sampling].label
    return f"{label} (α = {alpha})" if SAMPLERS[sampling] is HybridBatchSampler else label
