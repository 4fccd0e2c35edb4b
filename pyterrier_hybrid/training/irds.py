"""Training items from ir_datasets at mMARCO scale: ids in compact arrays, texts fetched when a batch is drawn.

:func:`from_irds` reads each language's queries, qrels and (bounded) docpairs once. It keeps the query texts
and the doc ids packed in byte buffers (no Python object per string) and fetches passage texts from the
language's ir_datasets docstore only for the triplets a batch draws. Batches, seeds and resume are those
of an in-memory :class:`~pyterrier_hybrid.training.data.ParallelSource` with the same items.
"""
from __future__ import annotations

import hashlib
from array import array
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence

import ir_datasets
import numpy as np

from .source import Entry

#: hard negatives kept per query and language
NEGATIVES = 3


class PackedStrings:
    """Strings in one UTF-8 buffer with end offsets: a list of str without a Python object per string."""

    def __init__(self, strings: Iterable[str] = ()):
        buf, ends = bytearray(), array("q")
        for text in strings:
            buf += text.encode("utf-8")
            ends.append(len(buf))
        self._buf = bytes(buf)
        self._ends = np.frombuffer(ends, dtype=np.int64) if len(ends) else np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, i: int) -> str:
        start = int(self._ends[i - 1]) if i > 0 else 0
        return self._buf[start:int(self._ends[i])].decode("utf-8")

    @property
    def nbytes(self) -> int:
        return len(self._buf) + self._ends.nbytes


@dataclass
class _Language:
    """One language's items: row r has a query, a positive doc id and up to NEGATIVES negative doc ids."""
    dataset: str
    store: object                # the ir_datasets docstore
    queries: PackedStrings
    positives: PackedStrings
    negatives: PackedStrings     # every row's negatives, concatenated
    neg_ends: np.ndarray         # int64 per row: end of its negatives in ``negatives``
    docpairs_scanned: int

    def text(self, doc_id: str) -> str:
        doc = self.store.get(doc_id)
        return doc.default_text() if hasattr(doc, "default_text") else doc.text

    def negative_ids(self, row: int) -> List[str]:
        start = int(self.neg_ends[row - 1]) if row > 0 else 0
        return [self.negatives[j] for j in range(start, int(self.neg_ends[row]))]


class _Fetched(Sequence[str]):
    """Doc texts fetched from a docstore when read (the sampler reads one negative of several)."""

    def __init__(self, language: _Language, ids: List[str]):
        self.language, self.ids = language, ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, j):
        return self.language.text(self.ids[j])


class _LazyEntry:
    """An :class:`Entry` whose passages are fetched when read."""

    def __init__(self, language: _Language, row: int):
        self.language, self.row = language, row
        self.query = language.queries[row]

    @property
    def positive(self) -> str:
        return self.language.text(self.language.positives[self.row])

    @property
    def negatives(self) -> _Fetched:
        return _Fetched(self.language, self.language.negative_ids(self.row))

    def resolve(self) -> Entry:
        """The entry with every text fetched."""
        return Entry(self.query, self.positive, tuple(self.negatives))


class IrdsSource:
    """Parallel items from ir_datasets collections, kept as ids (see :func:`from_irds`); a
    :class:`~pyterrier_hybrid.training.source.TrainingSource`.

    Item i is a query id shared across languages; ``rows[lang][i]`` is its row in that language (-1 if absent).
    """

    def __init__(self, name: str, parallel_ids: PackedStrings, item_ids: np.ndarray,
                 languages: Dict[str, _Language], rows: Dict[str, np.ndarray]):
        self.name, self._pids, self._items = name, parallel_ids, item_ids
        self.languages, self.rows = languages, rows
        self._description: Optional[dict] = None  # the source never changes: fingerprinted once
        if len(item_ids) == 0:
            raise ValueError(f"training source {name!r} has no items")

    def __len__(self) -> int:
        return len(self._items)

    @property
    def langs(self) -> List[str]:
        return list(self.languages)

    def lang_index(self) -> Dict[str, np.ndarray]:
        return {lang: np.flatnonzero(r >= 0) for lang, r in self.rows.items() if (r >= 0).any()}

    def multi_index(self) -> np.ndarray:
        return np.flatnonzero(sum((r >= 0).astype(np.int64) for r in self.rows.values()) >= 2).astype(np.int64)

    def parallel_id(self, i: int) -> str:
        return self._pids[int(self._items[i])]

    def item_langs(self, i: int) -> List[str]:
        return sorted(lang for lang, r in self.rows.items() if r[i] >= 0)

    def entry(self, i: int, lang: str) -> _LazyEntry:
        row = int(self.rows[lang][i])
        if row < 0:
            raise KeyError(f"item {self.parallel_id(i)!r} has no {lang!r} version")
        return _LazyEntry(self.languages[lang], row)

    def subset(self, keep: Sequence[bool], name: str) -> "IrdsSource":
        keep = np.asarray(keep, dtype=bool)
        return IrdsSource(name, self._pids, self._items[keep], self.languages,
                          {lang: r[keep] for lang, r in self.rows.items()})

    def describe(self) -> dict:
        """Name, size, languages, the datasets and a fingerprint of every item's ids and query texts.

        Computed once (every checkpoint records it, and it reads every item)."""
        if self._description is not None:
            return self._description
        h = hashlib.sha1()
        for i in range(len(self)):
            for lang in self.item_langs(i):
                language, row = self.languages[lang], int(self.rows[lang][i])
                h.update("\0".join((self.parallel_id(i), lang, language.queries[row], language.positives[row],
                                    *language.negative_ids(row))).encode("utf-8"))
        self._description = {"name": self.name, "items": len(self), "langs": self.langs, "sha1": h.hexdigest(),
                             "datasets": {lang: x.dataset for lang, x in self.languages.items()},
                             "docpairs_scanned": {lang: x.docpairs_scanned for lang, x in self.languages.items()}}
        return self._description


def from_irds(pattern: str, langs: Sequence[str], max_items: Optional[int] = None,
              max_docpairs: Optional[int] = None) -> IrdsSource:
    """Training items from ir_datasets collections that share query and doc ids across languages.

    Each query with a judged-relevant document is an item in its language; items of one query id in several
    languages are parallel. Hard negatives (up to 3) come from the dataset's ``docpairs`` when it has them.

    Args:
        pattern: a dataset name with ``{lang}``, e.g. ``"mmarco/v2/{lang}/train"``.
        langs: the languages to combine.
        max_items: keep at most this many queries per language (in dataset order).
        max_docpairs: read at most this many docpairs per language (default: 30 per kept query); reading
            stops sooner once every query has its negatives.
    """
    if "{lang}" not in pattern:
        raise ValueError(f"pattern {pattern!r} needs a {{lang}} field, e.g. 'mmarco/v2/{{lang}}/train'")
    items: Dict[str, int] = {}          # parallel id -> item position (only while loading)
    per_lang_items: Dict[str, np.ndarray] = {}
    languages: Dict[str, _Language] = {}
    for lang in langs:
        name = pattern.format(lang=lang)
        ds = ir_datasets.load(name)
        row_of: Dict[str, int] = {}
        qids: List[str] = []
        texts: List[str] = []
        for q in ds.queries_iter():
            if max_items is not None and len(qids) >= max_items:
                break
            row_of[q.query_id] = len(qids)
            qids.append(q.query_id)
            texts.append(q.default_text() if hasattr(q, "default_text") else q.text)
        positive: List[Optional[str]] = [None] * len(qids)
        for r in ds.qrels_iter():
            row = row_of.get(r.query_id)
            if row is not None and r.relevance > 0 and positive[row] is None:
                positive[row] = r.doc_id
        negatives: Dict[int, List[str]] = {}
        scanned = 0
        if ds.has_docpairs():
            limit = 30 * len(qids) if max_docpairs is None else max_docpairs
            wanting = sum(p is not None for p in positive)
            for p in ds.docpairs_iter():
                if scanned >= limit or wanting == 0:
                    break
                scanned += 1
                row = row_of.get(p.query_id)
                if row is None or positive[row] is None:
                    continue
                got = negatives.setdefault(row, [])
                if len(got) < NEGATIVES and p.doc_id_b != positive[row]:
                    got.append(p.doc_id_b)
                    wanting -= len(got) == NEGATIVES
        kept = [row for row, p in enumerate(positive) if p is not None and texts[row].strip()]
        neg_lists = [negatives.get(row, []) for row in kept]
        languages[lang] = _Language(
            name, ds.docs_store(), PackedStrings(texts[row] for row in kept),
            PackedStrings(positive[row] for row in kept),
            PackedStrings(d for negs in neg_lists for d in negs),
            np.cumsum([len(n) for n in neg_lists], dtype=np.int64), scanned)
        positions = np.empty(len(kept), dtype=np.int64)
        for j, row in enumerate(kept):
            positions[j] = items.setdefault(qids[row], len(items))
        per_lang_items[lang] = positions
        del row_of, qids, texts, positive, negatives
    rows = {}
    for lang, positions in per_lang_items.items():
        r = np.full(len(items), -1, dtype=np.int64)
        r[positions] = np.arange(len(positions))
        rows[lang] = r
    pids = PackedStrings(items)  # dicts keep insertion order: item positions
    return IrdsSource(pattern.replace("{lang}", "*"), pids, np.arange(len(items)), languages, rows)
