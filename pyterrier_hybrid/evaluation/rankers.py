"""Rankers for the protocol runner: the :class:`Ranker` protocol, :class:`DenseRanker` (a BiEncoder over an
in-memory FaissIndex), :class:`RetrieverRanker` (any PyTerrier retriever, e.g. BM25).

Positions are a :class:`~pyterrier_hybrid.evaluation.splits.Split`'s candidate positions. Every ranking orders candidates
by score, descending, and ties by docno, descending, as trec_eval does.
"""
from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Optional, Protocol, Sequence, Tuple, runtime_checkable

import numpy as np
import pyterrier as pt

from ..atomic import atomic_write
from ..model.encoder import BiEncoder
from ..index import FaissIndex
from .ranking import break_ties, rank_matrix, ranks_of
from .splits import Split

#: rows of the pooled score matrix sorted per thread
SORT_ROWS = 256


@runtime_checkable
class Ranker(Protocol):
    """What :func:`~pyterrier_hybrid.evaluation.protocol.run_protocol` needs from a system under evaluation."""

    encode_s: float          # seconds spent encoding so far, for the report's timing
    dtype: Optional[str]     # the precision the model ran in, for the report; None for a system with no model

    def prepare(self, split: Split) -> None:
        """Get ready to rank ``split``'s queries against its candidates (encode, index)."""
        ...

    def ranking(self, x: str, doc_langs: Sequence[str]) -> np.ndarray:
        """``[queries of x, k]``: candidate positions in rank order among the candidates in ``doc_langs``;
        -1 pads a query that ranked fewer than k."""
        ...

    def relevant_ranks(self, x: str, y: str, rows: Sequence[int], docs: np.ndarray) -> np.ndarray:
        """1-based ranks of ``docs`` (``[len(rows), w]`` positions, -1 = padding) for the queries ``rows`` of
        language x in the corpus of language y; padding stays -1, and 0 marks a candidate left unranked."""
        ...


class DenseRanker:
    """Encodes every language once (optionally cached on disk) and ranks through one in-memory FaissIndex.

    Args:
        encoder: the model.
        cache_dir: where to keep encoded vectors between runs (keyed by the texts and everything in
            :meth:`BiEncoder.identity`: weights, settings, dtype, device, batching).
        language_removal: ``"center"`` or ``"lir"``: remove language identity, estimated from the split's
            candidates (see :mod:`~pyterrier_hybrid.index.language_identity`); the report records it.
        lir_k: directions ``"lir"`` projects out (default: languages - 1).
    """

    def __init__(self, encoder: BiEncoder, cache_dir: Optional[str | Path] = None, *,
                 language_removal: Optional[str] = None, lir_k: Optional[int] = None):
        self.encoder = encoder
        self.language_removal_method, self.lir_k = language_removal, lir_k
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.encode_s = 0.0
        self.query_vecs: Dict[str, np.ndarray] = {}  # lang -> [queries, dim], filled by prepare
        self.index: Optional[FaissIndex] = None       # every candidate of the split, built by prepare
        self._split: Optional[Split] = None
        self._pooled: Optional[Tuple[str, np.ndarray]] = None  # (x, scores of x's queries against every candidate)

    @property
    def dtype(self) -> str:
        """The encoder's precision."""
        return self.encoder.dtype

    @property
    def max_length(self) -> dict:
        """The token limits the vectors were encoded with: evaluation states its length, never inherits it silently."""
        return {"query": self.encoder.settings.query_max_length, "doc": self.encoder.settings.doc_max_length}

    @property
    def language_removal(self) -> Optional[dict]:
        """What was removed (method, k, languages, document counts), once prepared; None without removal."""
        language = self.index.language_identity if self.index is not None else None
        return None if language is None else language.describe()

    def _key(self, kind: str, texts: Sequence[str]) -> str:
        h = hashlib.sha1(repr((self.encoder.identity(), kind)).encode())
        for t in texts:
            h.update(t.encode("utf-8"))
            h.update(b"\0")
        return h.hexdigest()

    def _cached(self, kind: str, texts: List[str], encode: Callable[[], np.ndarray]) -> np.ndarray:
        path = self.cache_dir / f"{self._key(kind, texts)}.npy" if self.cache_dir else None
        if path is not None and path.is_file():
            vecs = np.load(path)
            if vecs.shape == (len(texts), self.encoder.dim):
                return vecs
        start = time.perf_counter()
        vecs = encode()
        self.encode_s += time.perf_counter() - start
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda tmp: _save_npy(tmp, vecs))
        return vecs

    def prepare(self, split: Split) -> None:
        """Encode (or load from the cache) every language's candidates and queries, and index the candidates.

        Args:
            split: the queries and candidates to rank.
        """
        enc = self.encoder
        doc_vecs = []
        for sl in split.lang_slices.values():
            texts, ctx = split.texts[sl], split.contexts[sl]
            doc_vecs.append(self._cached("docs", texts + (ctx if enc.doc_text != "sentence" else []),
                                         lambda: enc.encode_docs(texts, ctx)))
        self.query_vecs = {lang: self._cached("queries", list(q["query"]), lambda q=q: enc.encode_queries(q["query"]))
                           for lang, q in split.queries.items()}
        self.index = FaissIndex.from_vectors(np.concatenate(doc_vecs), split.docnos,
                                             split.doc_lang_names,
                                             language_removal=self.language_removal_method, lir_k=self.lir_k)
        self._split, self._pooled = split, None

    def _ready(self) -> Tuple[FaissIndex, Split]:
        if self.index is None or self._split is None:
            raise RuntimeError("DenseRanker: call prepare(split) before ranking")
        return self.index, self._split

    def ranking(self, x: str, doc_langs: Sequence[str]) -> np.ndarray:
        """Every query of language x's full ranking of the candidates in ``doc_langs`` (see :class:`Ranker`).

        Args:
            x: the query language.
            doc_langs: the candidates' languages.
        """
        index, split = self._ready()
        if set(doc_langs) != set(split.langs):
            scores, ids = index.search(self.query_vecs[x], None, doc_langs, query_langs=[x] * len(self.query_vecs[x]))
            return break_ties(scores, ids, split.docno_order)
        pooled = self._pooled_scores(x)
        ids = np.empty(pooled.shape, dtype=np.int64)
        ranked = np.empty_like(pooled)

        def sort(rows: slice) -> None:  # descending; ties in any order until break_ties
            ids[rows] = np.argsort(-pooled[rows], axis=1)
            ranked[rows] = np.take_along_axis(pooled[rows], ids[rows], axis=1)

        # numpy sorts on one core and releases the GIL: a block of rows per core sorts the pool about 1.9x faster
        blocks = [slice(i, i + SORT_ROWS) for i in range(0, len(pooled), SORT_ROWS)]
        with ThreadPoolExecutor(min(len(blocks), _cores())) as pool:
            list(pool.map(sort, blocks))
        return break_ties(ranked, ids, split.docno_order)

    def _pooled_scores(self, x: str) -> np.ndarray:
        """``[queries of x, candidates]``: every score of x's queries, computed once per query language and shared
        by its pooled ranking and its per-language settings (the protocol runs x's settings together)."""
        if self._pooled is None or self._pooled[0] != x:
            index, _ = self._ready()
            self._pooled = None  # free the previous language's matrix first
            q = self.query_vecs[x]  # scores() multiplies in search()'s fixed query blocks itself
            self._pooled = (x, index.scores(q, query_langs=[x] * len(q))[0])
        return self._pooled[1]

    def relevant_ranks(self, x: str, y: str, rows: Sequence[int], docs: np.ndarray) -> np.ndarray:
        """Ranks of ``docs`` in the corpus of language y (see :class:`Ranker`), found by counting the candidates
        scored above each one: no full sort is needed.

        Args:
            x: the query language.
            y: the corpus language.
            rows: which of x's queries.
            docs: ``[len(rows), w]`` candidate positions, -1 = padding.
        """
        _, split = self._ready()
        docno_order = split.docno_order
        sl = split.lang_slices[y]
        scores, ids = self._pooled_scores(x)[rows, sl], np.arange(sl.start, sl.stop)
        col = np.where(docs >= 0, docs - sl.start, 0)
        target = np.take_along_axis(scores, col, axis=1)
        ranks = np.ones(docs.shape, dtype=np.int64)
        corpus_order = docno_order[ids][None, :]
        for j in range(docs.shape[1]):
            t = target[:, j:j + 1]
            ahead_on_tie = corpus_order > docno_order[np.maximum(docs[:, j], 0)][:, None]  # trec_eval: docno desc
            ranks[:, j] += (scores > t).sum(axis=1) + ((scores == t) & ahead_on_tie).sum(axis=1)
        return np.where(docs >= 0, ranks, -1)


class RetrieverRanker:
    """Ranks with any PyTerrier retriever, built once per corpus by ``build``.

    Args:
        build: ``build(docs, name)`` gets the corpus as a list of dicts (``docno``, ``text``, ``context``,
            ``lang``) and a short name for it (``"de"`` or ``"pooled"``), and returns a retriever that maps
            a topics frame (``qid``, ``query``) to a result frame (``qid``, ``docno``, ``score``).
    """

    def __init__(self, build: Callable[[List[dict], str], pt.Transformer]):
        self.build = build
        self.encode_s = 0.0  # a retriever that encodes does so inside its ranking; it is timed with the rest
        self.dtype: Optional[str] = None
        self._split: Optional[Split] = None
        self._position: Dict[str, int] = {}  # docno -> candidate position
        self._retrievers: Dict[Tuple[str, ...], pt.Transformer] = {}

    def prepare(self, split: Split) -> None:
        """Build one retriever per language's corpus and one for the pooled corpus.

        Args:
            split: the queries and candidates to rank.
        """
        self._split = split
        self._position = {d: i for i, d in enumerate(split.docnos)}
        self._retrievers = {}
        slices = split.lang_slices
        for key in [(lang,) for lang in split.langs] + [tuple(split.langs)]:
            docs = [{"docno": split.docnos[i], "text": split.texts[i], "context": split.contexts[i],
                     "lang": split.langs[split.doc_lang_codes[i]]}
                    for lang in key for i in range(slices[lang].start, slices[lang].stop)]
            self._retrievers[key] = self.build(docs, key[0] if len(key) == 1 else "pooled")

    def _ready(self) -> Split:
        if self._split is None:
            raise RuntimeError("RetrieverRanker: call prepare(split) before ranking")
        return self._split

    def ranking(self, x: str, doc_langs: Sequence[str]) -> np.ndarray:
        """Every query of language x's ranking of the candidates in ``doc_langs``, as far as the retriever
        ranks them (see :class:`Ranker`).

        Args:
            x: the query language.
            doc_langs: one language, or every language of the split (the pooled corpus).
        """
        split = self._ready()
        topics = split.queries[x][["qid", "query"]]
        res = self._retrievers[tuple(doc_langs)](topics)
        row = {q: i for i, q in enumerate(topics["qid"])}
        res = res.sort_values(["qid", "score"], ascending=[True, False], kind="mergesort")
        counts = res.groupby("qid").size().reindex(topics["qid"]).fillna(0).astype(int).to_numpy()
        k = int(counts.max()) if len(counts) else 0
        ids = np.full((len(topics), k), -1, dtype=np.int64)
        scores = np.full((len(topics), k), -np.inf, dtype=np.float32)
        if len(res) == 0:
            return ids
        rows = res["qid"].map(row).to_numpy(dtype=np.int64)
        cols = res.groupby("qid", sort=False).cumcount().to_numpy()
        ids[rows, cols] = res["docno"].map(self._position).to_numpy()
        scores[rows, cols] = res["score"].to_numpy()
        return break_ties(scores, ids, split.docno_order)

    def relevant_ranks(self, x: str, y: str, rows: Sequence[int], docs: np.ndarray) -> np.ndarray:
        """Ranks of ``docs`` in y's ranking (see :class:`Ranker`); 0 where the retriever did not rank them.

        Args:
            x: the query language.
            y: the corpus language.
            rows: which of x's queries.
            docs: ``[len(rows), w]`` candidate positions, -1 = padding.
        """
        sl = self._ready().lang_slices[y]
        ids = self.ranking(x, [y])[rows]
        return ranks_of(rank_matrix(ids, sl.start, sl.stop - sl.start), docs, sl.start)


def _cores() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would add ".npy" to a temporary name
        np.save(f, array, allow_pickle=False)
