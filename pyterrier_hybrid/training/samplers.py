"""Batch samplers for hybrid-batch training (arXiv 2408.10536).

- :class:`MonolingualBatchSampler` (X-X-mono): every triplet of a batch is in one language, drawn
  uniformly per batch among the languages that can fill a batch.
- :class:`CrossLingualBatchSampler` (X-Y): in every triplet the query language differs from the
  passage language (both drawn uniformly among the item's languages).
- :class:`HybridBatchSampler`: each batch is X-X-mono with probability ``alpha``, otherwise X-Y.
- :class:`MultiPositiveBatchSampler` (multi): every query comes with its answer in K languages, its own among them.
- :class:`MixedBatchSampler`: each batch's kind (xx, xy, multi) drawn by probability.

With ``align=True`` every sampler also draws, per item, another language's passage (and with ``align_queries``,
query) of the same parallel id, for the trainer's translation-ranking term; without it no extra random number is drawn.

They draw from any :class:`~pyterrier_hybrid.training.source.TrainingSource`: a
:class:`~pyterrier_hybrid.training.data.ParallelSource` (items in memory) or an
:class:`~pyterrier_hybrid.training.irds.IrdsSource` (ids in memory, texts fetched when drawn). With several
sources, each batch comes from one source, drawn in proportion to its size. A batch never holds two items with the
same parallel id, so translations are never each other's negatives. Samplers are endless, seedable iterables;
``state_dict()`` / ``load_state_dict()`` resume them exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .source import TrainingSource

#: the batch kinds, also the --sampling names of the samplers that draw one kind only
XX, XY, MULTI = "xx", "xy", "multi"


@dataclass(frozen=True)
class Triplet:
    parallel_id: str
    query_lang: str
    doc_lang: str
    query: str
    positive: str
    negative: Optional[str]


@dataclass(frozen=True)
class Translation:
    """Another language's passage and query of a batch item, for the alignment term (None where not drawn, or where
    the item has no other language)."""
    passage_lang: Optional[str] = None
    passage: Optional[str] = None
    query_lang: Optional[str] = None
    query: Optional[str] = None


@dataclass(frozen=True)
class Batch:
    """One training batch and its composition (kind :data:`XX`, :data:`XY` or :data:`MULTI`).

    A multi batch holds ``positive_langs`` (K) triplets per item, consecutive, sharing the item's query: the first in
    the query's language, then K - 1 other languages of the same parallel id. ``translations`` (one per item) is
    filled only by a sampler that aligns.
    """
    kind: str
    source: str
    triplets: Tuple[Triplet, ...]
    positive_langs: int = 1
    translations: Tuple[Translation, ...] = ()

    @property
    def items(self) -> Tuple[Triplet, ...]:
        """One triplet per item (per query): the query-language one of a multi batch."""
        return self.triplets[::self.positive_langs]

    @property
    def passages(self) -> int:
        """The passages a training step encodes for this batch (its cost): positives, hard negatives and
        translations, missing ones not counted."""
        return (len(self.triplets) + sum(t.negative is not None for t in self.triplets)
                + sum(t.passage is not None for t in self.translations))

    @property
    def langs(self) -> List[str]:
        """The language pairs in the batch, as ``"x-y"``, sorted and distinct."""
        return sorted({f"{t.query_lang}-{t.doc_lang}" for t in self.triplets})


class BatchSampler:
    """The base of the batch samplers: draws batches of triplets from training sources, seedable and resumable.

    Args:
        sources: one :class:`~pyterrier_hybrid.training.source.TrainingSource` or several.
        batch_size: items (queries) per batch.
        seed: random seed.
        align: also draw each item's passage in another language (:class:`Translation`) for the alignment term.
        align_queries: with ``align``, also draw each item's query in another language.
    """

    kinds: Tuple[str, ...] = ()
    sampling = ""  # the CLI's --sampling name
    label = ""     # what the model card calls it
    alpha = 0.0    # the probability of an X-X-mono batch
    positive_langs = 1  # K: passages per query in a multi batch

    def __init__(self, sources: Sequence[TrainingSource] | TrainingSource, batch_size: int, seed: int = 0, *,
                 align: bool = False, align_queries: bool = False):
        self.sources = [sources] if isinstance(sources, TrainingSource) else list(sources)
        if not self.sources:
            raise ValueError("no training sources given")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if align_queries and not align:
            raise ValueError("align_queries needs align=True (--align-queries needs --align-weight above 0)")
        self.batch_size, self.seed = batch_size, seed
        self.align, self.align_queries = align, align_queries
        self.rng = np.random.default_rng(seed)
        self.batches_drawn = 0
        # per source: items by language (for X-X) and items with at least two languages (for X-Y)
        self._by_lang: List[Dict[str, np.ndarray]] = [s.lang_index() for s in self.sources]
        self._multi: List[np.ndarray] = [s.multi_index() for s in self.sources]
        self._wide: List[np.ndarray] = []  # items with at least K languages (for multi)
        if MULTI in self.kinds:
            if self.positive_langs < 1:
                raise ValueError(f"positive_langs (--positive-langs) must be at least 1, got {self.positive_langs}")
            for by_lang, s in zip(self._by_lang, self.sources):
                counts = np.bincount(np.concatenate(list(by_lang.values())), minlength=len(s))
                self._wide.append(np.flatnonzero(counts >= self.positive_langs))
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
        for s, wide, by_lang in zip(self.sources, self._wide, self._by_lang):
            if len(wide) < self.batch_size:
                counts = np.bincount(np.concatenate(list(by_lang.values())), minlength=len(s))
                have = {int(k): int(n) for k, n in enumerate(np.bincount(counts)) if n}
                raise ValueError(f"source {s.name!r} has {len(wide)} items in {self.positive_langs} or more languages, "
                                 f"too few for a multi batch of {self.batch_size} (items by number of languages: "
                                 f"{have}); lower --positive-langs or the batch size")

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
        return self._aligned(Batch(XX, s.name, tuple(triplets)), s, chosen)

    def _xy(self, src: int) -> Batch:
        s = self.sources[src]
        chosen = self.rng.choice(self._multi[src], size=self.batch_size, replace=False)
        triplets = []
        for i in chosen:
            langs = s.item_langs(i)
            x, y = (langs[j] for j in self.rng.choice(len(langs), size=2, replace=False))
            q, d = s.entry(i, x), s.entry(i, y)
            triplets.append(Triplet(s.parallel_id(i), x, y, q.query, d.positive, self._negative(d.negatives)))
        return self._aligned(Batch(XY, s.name, tuple(triplets)), s, chosen)

    def _multi_batch(self, src: int) -> Batch:
        s, k = self.sources[src], self.positive_langs
        chosen = self.rng.choice(self._wide[src], size=self.batch_size, replace=False)
        triplets = []
        for i in chosen:
            langs = s.item_langs(i)
            x = langs[int(self.rng.integers(len(langs)))]
            others = [lang for lang in langs if lang != x]
            q = s.entry(i, x).query
            for y in [x] + [others[j] for j in self.rng.choice(len(others), size=k - 1, replace=False)]:
                d = s.entry(i, y)
                triplets.append(Triplet(s.parallel_id(i), x, y, q, d.positive, self._negative(d.negatives)))
        return self._aligned(Batch(MULTI, s.name, tuple(triplets), positive_langs=k), s, chosen)

    def _aligned(self, batch: Batch, s: TrainingSource, chosen: np.ndarray) -> Batch:
        """The batch with each item's :class:`Translation` drawn; unchanged (no random number drawn) without align."""
        if not self.align:
            return batch
        translations = []
        for i, t in zip(chosen, batch.items):
            langs = s.item_langs(i)
            passage_lang = passage = query_lang = query = None
            if batch.positive_langs < 2:  # a multi batch of K >= 2 holds its passages' translations already
                others = [lang for lang in langs if lang != t.doc_lang]
                if others:
                    passage_lang = others[int(self.rng.integers(len(others)))]
                    passage = s.entry(i, passage_lang).positive
            if self.align_queries:
                others = [lang for lang in langs if lang != t.query_lang]
                if others:
                    query_lang = others[int(self.rng.integers(len(others)))]
                    query = s.entry(i, query_lang).query
            translations.append(Translation(passage_lang, passage, query_lang, query))
        return replace(batch, translations=tuple(translations))

    def _draw(self) -> Batch:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Batch]:
        while True:
            batch = self._draw()
            self.batches_drawn += 1
            yield batch

    def describe(self) -> dict:
        """What the sampler draws from and how: recorded in a run's config and model card. Keys of the newer options
        appear only when used, so the runs made before they existed keep their config (and resume, and reproduce)."""
        more = {"positive_langs": self.positive_langs} if MULTI in self.kinds else {}
        if self.align:
            more["align"] = {"passages": True, "queries": self.align_queries}
        return {"sampling": self.sampling, "alpha": self.alpha, "batch_size": self.batch_size, "seed": self.seed,
                **more, "sources": [s.describe() for s in self.sources]}

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
                 seed: int = 0, **align):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.alpha = alpha
        self.kinds = tuple(k for k, p in ((XX, alpha), (XY, 1 - alpha)) if p > 0)
        super().__init__(sources, batch_size, seed, **align)

    def _draw(self) -> Batch:
        src = self._source()
        return self._xx(src) if self.rng.random() < self.alpha else self._xy(src)


class MultiPositiveBatchSampler(BatchSampler):
    """Multi-positive batches: each item is one parallel id, its query in one language (drawn uniformly among the
    id's) and its answer passage in ``positive_langs`` (K) languages, each with a hard negative of its own language.

    The query's own language is always among the K: a multilingual pool always holds the query-language answer, and
    that is the one a start model ranks too high (language bias); the other K - 1 are drawn uniformly from the id's
    other languages. Ids with fewer than K languages are never drawn (as X-Y skips one-language ids); a source with
    fewer than ``batch_size`` ids in K languages is refused.

    Args:
        sources: one or more :class:`~pyterrier_hybrid.training.source.TrainingSource`.
        batch_size: items (queries) per batch; a batch encodes K passages and K hard negatives per item.
        positive_langs: K, at least 1.
        seed: random seed.
    """
    kinds = (MULTI,)
    sampling, label, alpha = MULTI, "multi-positive", 0.0

    def __init__(self, sources: Sequence[TrainingSource] | TrainingSource, batch_size: int, positive_langs: int = 2,
                 seed: int = 0, **align):
        self.positive_langs = positive_langs
        super().__init__(sources, batch_size, seed, **align)

    def _draw(self) -> Batch:
        return self._multi_batch(self._source())


#: the kinds --mix may weigh, in the order a batch's kind is drawn (so the spelling of --mix does not matter)
MIX_KINDS = (XX, XY, MULTI)


def parse_mix(spec: str) -> Dict[str, float]:
    """``xx=0.35,xy=0.35,multi=0.3`` as ``{"xx": 0.35, "xy": 0.35, "multi": 0.3}``, checked.

    Args:
        spec: comma-separated ``kind=probability`` pairs; kinds among :data:`MIX_KINDS`, probabilities summing to 1.
    """
    mix: Dict[str, float] = {}
    for part in (p.strip() for p in spec.split(",")):
        kind, eq, value = part.partition("=")
        kind = kind.strip()
        try:
            weight = float(value) if eq else None
        except ValueError:
            weight = None
        if weight is None:
            raise ValueError(f"--mix {spec!r}: {part!r} is not kind=probability; write e.g. xx=0.35,xy=0.35,multi=0.3")
        if kind not in MIX_KINDS:
            raise ValueError(f"--mix {spec!r}: unknown batch kind {kind!r}; use {', '.join(MIX_KINDS)}")
        if kind in mix:
            raise ValueError(f"--mix {spec!r}: {kind} is given twice; give each kind once")
        mix[kind] = weight
    return mix


class MixedBatchSampler(BatchSampler):
    """Each batch's kind drawn by probability among X-X-mono, X-Y and multi-positive (one uniform number per batch,
    after the source, kinds in the order of :data:`MIX_KINDS`: ``{"xx": a, "xy": 1 - a}`` draws exactly the batches
    of ``HybridBatchSampler(alpha=a)``, which stays the way to train hybrid).

    Args:
        sources: one or more :class:`~pyterrier_hybrid.training.source.TrainingSource`, which must allow every kind
            with a positive probability.
        batch_size: items (queries) per batch.
        mix: probability per kind (``xx``, ``xy``, ``multi``): none negative, summing to 1 (see :func:`parse_mix`).
        positive_langs: K of the multi batches.
        seed: random seed.
    """
    sampling, label = "mix", "mixed"

    def __init__(self, sources: Sequence[TrainingSource] | TrainingSource, batch_size: int, mix: Dict[str, float],
                 positive_langs: int = 2, seed: int = 0, **align):
        unknown = sorted(set(mix) - set(MIX_KINDS))
        if unknown:
            raise ValueError(f"mix: unknown batch kind {unknown}; use {', '.join(MIX_KINDS)}")
        negative = {k: p for k, p in mix.items() if p < 0}
        if negative:
            raise ValueError(f"mix: negative probabilities {negative}; every probability must be in [0, 1]")
        if abs(sum(mix.values()) - 1.0) > 1e-6:
            raise ValueError(f"mix: the probabilities {mix} sum to {sum(mix.values()):g}; make them sum to 1")
        self.mix = {k: float(mix.get(k, 0.0)) for k in MIX_KINDS}
        self.alpha = self.mix[XX]
        self.positive_langs = positive_langs
        self.kinds = tuple(k for k, p in self.mix.items() if p > 0)
        self._bounds = np.cumsum([self.mix[k] for k in MIX_KINDS])
        super().__init__(sources, batch_size, seed, **align)

    def _draw(self) -> Batch:
        src = self._source()
        u = self.rng.random()
        kind = next((k for k, b in zip(MIX_KINDS, self._bounds) if u < b and self.mix[k] > 0), self.kinds[-1])
        return {XX: self._xx, XY: self._xy, MULTI: self._multi_batch}[kind](src)

    def describe(self) -> dict:
        return {**super().describe(), "mix": {k: p for k, p in self.mix.items() if p > 0}}


#: the samplers by their --sampling name
SAMPLERS = {cls.sampling: cls for cls in (MonolingualBatchSampler, CrossLingualBatchSampler, HybridBatchSampler,
                                          MultiPositiveBatchSampler, MixedBatchSampler)}
#: the CLI's --sampling choices
SAMPLINGS = tuple(SAMPLERS)


def make_sampler(sampling: str, sources: Sequence[TrainingSource] | TrainingSource, batch_size: int,
                 alpha: float = 0.5, seed: int = 0, *, positive_langs: int = 2, mix: Optional[Dict[str, float]] = None,
                 align: bool = False, align_queries: bool = False) -> BatchSampler:
    """The sampler for a CLI ``--sampling`` value (one of :data:`SAMPLINGS`).

    Args:
        sampling: ``xx``, ``xy``, ``hybrid``, ``multi`` or ``mix``.
        sources: one or more :class:`~pyterrier_hybrid.training.source.TrainingSource`.
        batch_size: items (queries) per batch.
        alpha: hybrid only: the probability of an X-X-mono batch.
        seed: random seed.
        positive_langs: multi (and mix with multi): K, the passages per query.
        mix: mix only: the probability per batch kind (see :func:`parse_mix`).
        align: draw each item's translation for the alignment term (``--align-weight`` above 0).
        align_queries: also each item's query in another language (``--align-queries``).
    """
    if sampling not in SAMPLERS:
        raise ValueError(f"unknown sampling {sampling!r}; use one of {', '.join(SAMPLINGS)}")
    if (mix is not None) != (sampling == "mix"):
        raise ValueError("a mix of batch kinds (--mix) goes with sampling 'mix' and only with it")
    kw = {"align": align, "align_queries": align_queries}
    if sampling == "mix":
        return MixedBatchSampler(sources, batch_size, mix, positive_langs, seed, **kw)
    if sampling == MULTI:
        return MultiPositiveBatchSampler(sources, batch_size, positive_langs, seed, **kw)
    if SAMPLERS[sampling] is HybridBatchSampler:
        return HybridBatchSampler(sources, batch_size, alpha, seed, **kw)
    return SAMPLERS[sampling](sources, batch_size, seed, **kw)


def sampling_label(sampling: str, alpha: float, positive_langs: Optional[int] = None,
                   mix: Optional[Dict[str, float]] = None) -> str:
    """What a model card calls a run's sampling, e.g. ``X-Y``, ``hybrid (α = 0.5)`` or ``multi-positive (K = 3)``.

    Args:
        sampling: the run's ``--sampling`` name.
        alpha: its α (shown for hybrid sampling only).
        positive_langs: its K (shown for multi and mix sampling).
        mix: its probabilities per kind (shown for mix sampling).
    """
    label = SAMPLERS[sampling].label
    if SAMPLERS[sampling] is HybridBatchSampler:
        return f"{label} (α = {alpha})"
    if sampling == MULTI:
        return f"{label} (K = {positive_langs})"
    if sampling == "mix":
        k = f", K = {positive_langs}" if (mix or {}).get(MULTI) else ""
        return f"{label} ({', '.join(f'{kind} {p:g}' for kind, p in (mix or {}).items())}{k})"
    return label
