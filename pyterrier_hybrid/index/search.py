"""Searching a FaissIndex: its loaded contents, exact inner products block by block, and faiss factory indexes.

:class:`Contents` is what an index searches, read from its directory or built in memory; every search,
score, language filter and exact re-scoring is a method of it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import faiss
import numpy as np

from . import storage
from .storage import CorruptIndexError, DocnoArray, IndexMeta

#: queries per BLAS product in exact search (BLAS rounds differently for other block sizes: keep it fixed)
QUERY_BLOCK = 256
#: a flat index on disk up to this size is read into memory once; a larger one is read block by block per search
IN_MEMORY_BYTES = 1 << 30
#: the named types; any other index_type is a faiss factory string, e.g. "IVF4096,PQ48" or "HNSW32"
INDEX_TYPES = ("flat", "hnsw", "ivf")


def factory_string(index_type: str, hnsw_m: int, ivf_nlist: int) -> Optional[str]:
    """The faiss factory string of an index type; None for ``"flat"``, which is searched exactly from its vectors."""
    if index_type == "flat":
        return None
    if index_type == "hnsw":
        return f"HNSW{hnsw_m},Flat"
    if index_type == "ivf":
        return f"IVF{ivf_nlist},Flat"
    return index_type


def new_faiss(factory: str, dim: int) -> faiss.Index:
    """An empty inner-product index from a factory string, or a ValueError that says what faiss objected to."""
    try:
        return faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as e:
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else "unknown"
        raise ValueError(f"index_type={factory!r} is neither one of {INDEX_TYPES} nor a faiss factory string faiss "
                         f"accepts for {dim}-d vectors ({reason}); e.g. 'IVF4096,PQ48' or 'HNSW32'") from None


def min_training(index: faiss.Index) -> int:
    """How many vectors to train an index on: 64 per IVF cell (at least 10,000 for PQ codebooks)."""
    if index.is_trained:
        return 0
    ivf = faiss.try_extract_index_ivf(index)
    return max(10_000, 64 * ivf.nlist) if ivf is not None else 10_000


def search_params(index: faiss.Index, sel: Optional[faiss.IDSelector], nprobe: int,
                  ef_search: int, k: int) -> Optional[faiss.SearchParameters]:
    """Search parameters for the index's kind: IVF cells, HNSW breadth, and an id filter."""
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexPreTransform) else index
    if faiss.try_extract_index_ivf(inner) is not None:
        params = faiss.SearchParametersIVF(sel=sel, nprobe=nprobe)
    elif isinstance(inner, faiss.IndexHNSW):
        params = faiss.SearchParametersHNSW(sel=sel, efSearch=max(ef_search, k))
    elif sel is not None:
        params = faiss.SearchParameters(sel=sel)
    else:
        params = None
    if isinstance(index, faiss.IndexPreTransform) and params is not None:
        return faiss.SearchParametersPreTransform(index_params=params)
    return params


def exact_search(q: np.ndarray, blocks: Iterable[Tuple[np.ndarray, np.ndarray]], k: int,
                 block: int = QUERY_BLOCK) -> Tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product over ``(doc ids, vectors)`` blocks: a BLAS product and a (partial) sort per
    block of queries, the running top-k merged block by block, so only one block of vectors is in memory.

    For the full ranking of a large pool (what AP needs) this is 2.7x faster than faiss's heap-based flat
    search on the same vectors, and 1.2x on a one-language subset (benchmarks/retrieve.py, docs/benchmarks.md).
    """
    best_s = np.zeros((len(q), 0), np.float32)
    best_i = np.zeros((len(q), 0), np.int64)
    for ids, vecs in blocks:
        s, i = _top(q, vecs, min(k, len(vecs)), block)
        if best_s.shape[1] == 0:
            best_s, best_i = s, ids[i]
            continue
        s, i = np.concatenate([best_s, s], axis=1), np.concatenate([best_i, ids[i]], axis=1)
        order = np.argsort(s, axis=1, kind="stable")[:, ::-1][:, :k]
        best_s, best_i = np.take_along_axis(s, order, axis=1), np.take_along_axis(i, order, axis=1)
    return best_s, best_i


def _top(q: np.ndarray, vecs: np.ndarray, k: int, block: int) -> Tuple[np.ndarray, np.ndarray]:
    scores = np.empty((len(q), k), dtype=np.float32)
    pos = np.empty((len(q), k), dtype=np.int64)
    for start in range(0, len(q), block):
        s = q[start:start + block] @ vecs.T
        if k < s.shape[1]:
            top = np.argpartition(s, s.shape[1] - k, axis=1)[:, -k:]
            order = np.take_along_axis(top, np.argsort(np.take_along_axis(s, top, axis=1), axis=1)[:, ::-1], axis=1)
        else:
            order = np.argsort(s, axis=1)[:, ::-1]  # descending, without negating a copy of the scores
        scores[start:start + len(s)] = np.take_along_axis(s, order, axis=1)
        pos[start:start + len(s)] = order
    return scores, pos


def rescore(q: np.ndarray, found: np.ndarray, path: Path, n: int, dim: int, k: int,
            block: int = 256) -> Tuple[np.ndarray, np.ndarray]:
    """Exact inner products of each query's candidates, read from the vectors file (only those rows), top ``k``."""
    vectors = np.memmap(path, dtype=np.float32, mode="r", shape=(n, dim))
    scores = np.full((len(q), k), -np.inf, dtype=np.float32)
    ids = np.full((len(q), k), -1, dtype=np.int64)
    for start in range(0, len(q), block):
        cand = found[start:start + block]
        rows = np.unique(cand[cand >= 0])
        at = np.searchsorted(rows, np.maximum(cand, 0))
        exact = np.einsum("qd,qcd->qc", q[start:start + block], np.asarray(vectors[rows])[at])
        exact[cand < 0] = -np.inf
        order = np.argsort(-exact, axis=1, kind="stable")[:, :k]
        scores[start:start + len(cand)] = np.take_along_axis(exact, order, axis=1)
        ids[start:start + len(cand)] = np.where(np.isfinite(scores[start:start + len(cand)]),
                                                np.take_along_axis(cand, order, axis=1), -1)
    return scores, ids


@dataclass
class Contents:
    """What a FaissIndex searches: its metadata and vectors, read from its directory or built in memory.

    Args:
        meta: the index's facts.
        docnos: the docno of each position.
        lang_codes: int16 per document: its position in ``meta.langs``, -1 = unknown.
        where: the index's name in messages.
        vectors: a flat index's vectors, in memory.
        vectors_path: the vectors on disk: a flat index too large for memory, or those kept for ``refine``.
        faiss_index: any other type's faiss index.
    """
    meta: IndexMeta
    docnos: Union[np.ndarray, DocnoArray]
    lang_codes: np.ndarray
    where: str
    vectors: Optional[np.ndarray] = None
    vectors_path: Optional[Path] = None
    faiss_index: Optional[faiss.Index] = None
    _subsets: Dict[tuple, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, root: Path, meta: IndexMeta) -> "Contents":
        """Open a checked index directory: docnos and languages as memory maps, vectors or the faiss index."""
        n, dim = meta.doc_count, meta.dim
        codes = np.memmap(root / storage.LANGS, dtype=np.int16, mode="r", shape=(n,)) if n else np.zeros(0, np.int16)
        contents = cls(meta, DocnoArray(root / storage.DOCNOS, root / storage.OFFSETS, n), codes, str(root))
        if storage.VECTORS in meta.files:
            if meta.factory is None and 4 * n * dim <= IN_MEMORY_BYTES:
                contents.vectors = np.fromfile(root / storage.VECTORS, dtype=np.float32).reshape(n, dim)
            else:  # searched block by block, or read row by row to re-score candidates exactly
                contents.vectors_path = root / storage.VECTORS
        if meta.factory is not None:
            contents.faiss_index = faiss.read_index(str(root / storage.FAISS))
            if contents.faiss_index.ntotal != n:
                raise CorruptIndexError(f"{root} is inconsistent: {contents.faiss_index.ntotal} vectors in "
                                        f"{storage.FAISS}, doc_count {n}; rebuild it")
        return contents

    def prepare_queries(self, query_vecs: np.ndarray, query_langs: Optional[Sequence[str]] = None) -> np.ndarray:
        """Query vectors as this index compares them: float32, checked, language identity removed when stored."""
        q = np.ascontiguousarray(query_vecs, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.meta.dim:
            raise ValueError(f"query vectors have shape {q.shape}, but {self.where} holds {self.meta.dim}-dimensional "
                             "vectors; encode queries with the model that built the index")
        language = self.meta.language
        return q if language is None else language.transform(q, query_langs)

    def wanted(self, langs: Optional[Sequence[str]]) -> Optional[List[int]]:
        """The codes of ``langs``, or a ValueError naming the languages the index has."""
        if langs is None:
            return None
        unknown = [lang for lang in langs if lang not in self.meta.langs]
        if unknown:
            raise ValueError(f"unknown language filter {unknown}; this index has {self.meta.langs}")
        return [self.meta.langs.index(lang) for lang in langs]

    def lang_positions(self, langs: Optional[Sequence[str]]) -> Optional[np.ndarray]:
        """Positions of the documents in ``langs``; None when that is every document."""
        wanted = self.wanted(langs)
        if wanted is None:
            return None
        ids = np.flatnonzero(np.isin(self.lang_codes, wanted)).astype(np.int64)
        return None if len(ids) == self.meta.doc_count else ids

    def check_refine(self, refine: Optional[int]) -> None:
        if refine is not None and (self.faiss_index is None or self.vectors_path is None):
            raise ValueError(f"refine= re-scores an approximate index's candidates from its kept vectors; "
                             f"{self.where} is " + ("exact already" if self.faiss_index is None else
                                                   "built without keep_vectors=True: rebuild it with it"))

    def search(self, q: np.ndarray, k: Optional[int], langs: Optional[Sequence[str]], nprobe: int, ef_search: int,
               refine: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
        """Top-``k`` of prepared queries (see :meth:`FaissIndex.search`)."""
        ids = self.lang_positions(langs)
        allowed = self.meta.doc_count if ids is None else len(ids)
        k = allowed if k is None else min(k, allowed)
        if k == 0 or len(q) == 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        if self.faiss_index is None:
            return exact_search(q, self.blocks(langs), k)
        sel = None if ids is None else faiss.IDSelectorBatch(ids)
        wide = k if refine is None else min(max(refine, k), allowed)
        scores, found = self.faiss_index.search(q, wide, params=search_params(self.faiss_index, sel, nprobe, ef_search,
                                                                               wide))
        if refine is None:
            return scores, found
        return rescore(q, found, self.vectors_path, self.meta.doc_count, self.meta.dim, k)

    def scores(self, query_vecs: np.ndarray, langs: Optional[Sequence[str]],
               query_langs: Optional[Sequence[str]]) -> Tuple[np.ndarray, np.ndarray]:
        """Exact scores of every allowed document, unsorted (see :meth:`FaissIndex.scores`). Queries are prepared and
        multiplied ``QUERY_BLOCK`` at a time, as :func:`exact_search` multiplies them, so a query's scores do not
        depend on how many queries one call gives (BLAS rounds differently for other block sizes)."""
        if self.faiss_index is not None:
            raise ValueError(f"scores() needs exact vectors; {self.where} is a {self.meta.index_type} index")
        starts = range(0, len(query_vecs), QUERY_BLOCK)
        qs = [self.prepare_queries(query_vecs[i:i + QUERY_BLOCK],
                                   None if query_langs is None else query_langs[i:i + QUERY_BLOCK]) for i in starts]
        parts = [(np.concatenate([q @ vecs.T for q in qs]) if qs else np.zeros((0, len(ids)), np.float32), ids)
                 for ids, vecs in self.blocks(langs)]
        return np.concatenate([s for s, _ in parts], axis=1), np.concatenate([i for _, i in parts])

    def blocks(self, langs: Optional[Sequence[str]]) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """A flat index's ``(positions, vectors)`` of the allowed documents: one block when the vectors are in
        memory (a cached copy per language subset), else block by block from disk."""
        ids = self.lang_positions(langs)
        if self.vectors is not None:
            if ids is None:
                yield np.arange(self.meta.doc_count), self.vectors
                return
            key = (len(ids), int(ids[0]), int(ids[-1]), hash(ids.tobytes()))
            if key not in self._subsets:
                self._subsets[key] = np.ascontiguousarray(self.vectors[ids])
            yield ids, self._subsets[key]
            return
        wanted = self.wanted(langs) if ids is not None else None
        with open(self.vectors_path, "rb") as f:
            for start, vecs in storage.iter_blocks(f, self.meta.doc_count, self.meta.dim):
                positions = np.arange(start, start + len(vecs))
                if wanted is not None:
                    keep = np.isin(self.lang_codes[start:start + len(vecs)], wanted)
                    if not keep.any():
                        continue
                    positions, vecs = positions[keep], np.ascontiguousarray(vecs[keep])
                yield positions, vecs

    def rows(self, size: int) -> Iterator[Tuple[int, np.ndarray]]:
        """``(first position, vectors)`` of every stored vector in order, ``size`` rows at a time."""
        if self.vectors is not None:
            for start in range(0, self.meta.doc_count, size):
                yield start, self.vectors[start:start + size]
            return
        with open(self.vectors_path, "rb") as f:
            yield from storage.iter_blocks(f, self.meta.doc_count, self.meta.dim, block=size)
