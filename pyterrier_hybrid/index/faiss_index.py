"""FaissIndex: a read-only dense index that knows each document's language, as a PyTerrier Artifact.

Every fact about it (type, factory string, size, languages, language statistics, the encoder's identity, format
version) comes from its :class:`~pyterrier_hybrid.index.storage.IndexMeta`; search runs over its loaded
:class:`~pyterrier_hybrid.index.search.Contents`; building is the job of its
:class:`~pyterrier_hybrid.index.indexer.FaissIndexer`. :meth:`FaissIndex.from_vectors` builds an exact index in
memory instead, with no directory at all.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import pyterrier as pt

from . import storage
from .encoder_identity import check_encoder
from .indexer import Chunk, FaissIndexer, check_docnos, check_removal, check_unique, check_vectors
from .language_identity import LanguageIdentity
from .search import Contents
from .storage import CorruptIndexError, DocnoArray, IndexMeta

if TYPE_CHECKING:
    from ..model import BiEncoder

logger = logging.getLogger(__name__)


class FaissIndex(pt.Artifact, pt.Indexer):
    """A dense index over ``doc_vec`` vectors with per-document languages; scores are inner products.

    Index with ``encoder.doc_encoder() >> FaissIndex(path)`` and ``.index(corpus_iter)`` (or
    :func:`~pyterrier_hybrid.index_corpus`, sharded over processes); search with :meth:`retriever`.
    ``pt.Artifact.load(path)`` returns a ``FaissIndex``, which reports what is on disk (:attr:`index_type`,
    :attr:`language_removal`, :attr:`encoder` ...). :meth:`from_vectors` builds one in memory.

    Vectors stream to disk as they arrive, so indexing memory does not grow with the corpus; a large flat
    index is searched block by block from disk.

    Args:
        path: the index directory.
        build_options: :class:`~pyterrier_hybrid.index.indexer.FaissIndexer`'s (``index_type``, ``hnsw_m``,
            ``ivf_nlist``, ``train_size``, ``keep_vectors``, ``overwrite``, ``verbose``, ``language_removal``,
            ``lir_k``, ``language_stats``), used by :meth:`index` and the defaults of :meth:`indexer`; they say how
            to build the index, never what an index on disk is.
    """

    ARTIFACT_TYPE = storage.ARTIFACT_TYPE
    ARTIFACT_FORMAT = storage.ARTIFACT_FORMAT

    def __init__(self, path: str | Path, **build_options):
        super().__init__(path)
        self._indexer = FaissIndexer(self, **build_options)  # checks the options now, before any corpus is read
        self._meta: Optional[IndexMeta] = None
        self._loaded: Optional[Contents] = None

    @classmethod
    def from_vectors(cls, doc_vecs: np.ndarray, docnos: Sequence[str], langs: Optional[Sequence[Optional[str]]] = None,
                     *, language_removal: Optional[str] = None, lir_k: Optional[int] = None,
                     language_stats: Optional[LanguageIdentity] = None) -> "FaissIndex":
        """An exact (flat) index held in memory only, over vectors already at hand.

        It searches exactly as the same vectors indexed on disk would; having no directory, it cannot be
        indexed into or loaded back, and it records no encoder (:meth:`retriever` cannot check one).

        Args:
            doc_vecs: ``[n_docs, dim]`` document vectors; row i is document i.
            docnos: the documents' docnos (unique), in the same order.
            langs: each document's language (``None`` where unknown); leave out when no document has one.
            language_removal, lir_k, language_stats: as for :class:`~pyterrier_hybrid.index.indexer.FaissIndexer`.
        """
        vecs = np.asarray(doc_vecs)
        if vecs.ndim != 2:
            raise ValueError(f"doc_vecs must be a [n_docs, dim] matrix, got shape {vecs.shape}")
        vecs = check_vectors(vecs, 0, None)
        if len(docnos) != len(vecs) or (langs is not None and len(langs) != len(vecs)):
            raise ValueError(f"{len(vecs)} vectors but {len(docnos)} docnos"
                             + ("" if langs is None else f" and {len(langs)} langs") + "; give one per document")
        if len(vecs) == 0:
            raise ValueError("nothing to index: doc_vecs has no rows")
        check_docnos(docnos, 0)
        check_unique(storage.first_duplicate(np.fromiter((hash(d) for d in docnos), np.int64, len(docnos)), docnos))
        check_removal(language_removal, lir_k, language_stats)
        langs = [None] * len(vecs) if langs is None else list(langs)
        lang_names = list(dict.fromkeys(lang for lang in langs if lang is not None))
        codes = np.array([-1 if lang is None else lang_names.index(lang) for lang in langs], dtype=np.int16)
        language = language_stats
        if language_removal and language is None:
            if (codes < 0).any():
                raise storage.missing_langs(int((codes < 0).sum()))
            language = LanguageIdentity.fit(vecs, langs, language_removal, lir_k)
        if language is not None:
            vecs = np.ascontiguousarray(language.transform(vecs, langs), dtype=np.float32)
        index = cls(pt.Artifact.NO_PATH)
        index._meta = IndexMeta(len(vecs), vecs.shape[1], "flat", None, lang_names, language)
        index._loaded = Contents(index._meta, np.array(docnos, dtype=object), codes, "this in-memory index",
                                 vectors=vecs)
        return index

    # ---- building -----------------------------------------------------------------------------
    def indexer(self, **options) -> FaissIndexer:
        """A :class:`~pyterrier_hybrid.index.indexer.FaissIndexer` that builds this index; ``options`` override the
        build options given to the constructor.

        Args:
            options: ``index_type``, ``language_removal``, ``keep_vectors``, ``overwrite``, ``encoder``, ...
        """
        return FaissIndexer(self, **{**self._indexer.options, **options})

    def encoded_by(self, encoder: BiEncoder) -> FaissIndexer:
        """The indexer that records ``encoder`` as the model of the documents, for a pipeline:
        ``(encoder.doc_encoder() >> index.encoded_by(encoder)).index(docs)``.

        Args:
            encoder: the model encoding the documents.
        """
        return self._indexer.encoded_by(encoder)

    def index(self, inp: Iterable[Dict]) -> "FaissIndex":
        """Index an iterable of dicts with ``docno``, ``doc_vec`` and optionally ``lang``, with the constructor's
        build options (see :meth:`FaissIndexer.index`).

        Args:
            inp: the documents, e.g. ``encoder.doc_encoder()`` output over a corpus iterator.
        """
        return self._indexer.index(inp)

    def refresh(self) -> None:
        """Forget what was read from the directory, so the next use reads it again (after it was rebuilt)."""
        if self.path is not pt.Artifact.NO_PATH:
            self._meta, self._loaded = None, None

    # ---- facts --------------------------------------------------------------------------------
    @property
    def meta(self) -> IndexMeta:
        """Everything the index's ``pt_meta.json`` records, read (and its files checked) on first use."""
        if self._meta is None:
            self._meta = IndexMeta.read(Path(self.path))
        return self._meta

    def _contents(self) -> Contents:
        if self._loaded is None:
            self._loaded = Contents.load(Path(self.path), self.meta)
        return self._loaded

    def verify(self) -> None:
        """Check every file's md5 (done at load for indexes up to 1 GB); a CorruptIndexError when one differs."""
        self.meta.verify(Path(self.path))

    def _where(self) -> str:
        """The index's name in messages."""
        return "this in-memory index" if self.path is pt.Artifact.NO_PATH else str(self.path)

    def __len__(self) -> int:
        return self.meta.doc_count

    @property
    def dim(self) -> int:
        """The vector size."""
        return self.meta.dim

    @property
    def index_type(self) -> str:
        """The type it was built as: ``"flat"``, ``"hnsw"``, ``"ivf"`` or a faiss factory string."""
        return self.meta.index_type

    @property
    def factory(self) -> Optional[str]:
        """The faiss factory string it was built from (``"HNSW32,Flat"`` for ``"hnsw"``); None for flat."""
        return self.meta.factory

    @property
    def language_removal(self) -> Optional[str]:
        """The language removal applied to its vectors (``"center"`` or ``"lir"``), or None."""
        return self.meta.language_removal

    @property
    def language_identity(self) -> Optional[LanguageIdentity]:
        """The language statistics removed from the stored vectors (and from queries at search), or None."""
        return self.meta.language

    @property
    def encoder(self) -> Optional[dict]:
        """The identity of the model that encoded the documents (see
        :mod:`~pyterrier_hybrid.index.encoder_identity`), or None when the index does not record one."""
        return self.meta.encoder

    @property
    def format_version(self) -> int:
        """The on-disk format version it was written in."""
        return self.meta.format_version

    @property
    def langs(self) -> List[str]:
        """The document languages present in the index."""
        return list(self.meta.langs)

    @property
    def docnos(self) -> Union[np.ndarray, DocnoArray]:
        """Every docno in index order: document position i, as in ``docid``, is ``docnos[i]``; index it with an
        array of positions for an object array of docnos (an index on disk reads them on demand)."""
        return self._contents().docnos

    # ---- search -------------------------------------------------------------------------------
    def prepare_queries(self, query_vecs: np.ndarray, query_langs: Optional[Sequence[str]] = None) -> np.ndarray:
        """Query vectors as this index compares them: float32, checked, and with the language identity removed
        when the index removes it (``"center"`` needs ``query_langs``).

        Args:
            query_vecs: ``[n_queries, dim]`` query vectors.
            query_langs: each query's language.
        """
        return self._contents().prepare_queries(query_vecs, query_langs)

    def lang_positions(self, langs: Optional[Sequence[str]]) -> Optional[np.ndarray]:
        """Positions of the documents in ``langs``; ``None`` when that is every document (no filter needed).

        Args:
            langs: languages to keep, or ``None`` for every document.
        """
        return self._contents().lang_positions(langs)

    def search(self, query_vecs: np.ndarray, k: Optional[int], langs: Optional[Sequence[str]] = None,
               *, query_langs: Optional[Sequence[str]] = None, nprobe: int = 16,
               ef_search: int = 128, refine: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Top-``k`` inner-product search.

        Args:
            query_vecs: ``[n_queries, dim]`` query vectors.
            k: results per query; ``None`` for every (allowed) document.
            langs: only search documents in these languages.
            query_langs: each query's language, for an index that removes language identity by centring.
            nprobe: IVF cells to visit.
            ef_search: HNSW search breadth.
            refine: an approximate index built with ``keep_vectors=True``: take its top ``refine`` (≥ k)
                candidates and re-score them exactly from the vectors on disk.

        Returns:
            ``(scores, ids)``, each ``[n_queries, k]``; ``ids`` are document positions, ``-1`` where an
            approximate index found fewer than ``k``.
        """
        c = self._contents()
        c.check_refine(refine)
        return c.search(c.prepare_queries(query_vecs, query_langs), k, langs, nprobe, ef_search, refine)

    def scores(self, query_vecs: np.ndarray, langs: Optional[Sequence[str]] = None, *,
               query_langs: Optional[Sequence[str]] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Exact scores of every allowed document, unsorted (a flat index only). Queries go through in fixed blocks,
        as :meth:`search` multiplies them, so a query's scores are the same bits however many are given at once.

        Args:
            query_vecs: ``[n_queries, dim]`` query vectors.
            langs: only score documents in these languages.
            query_langs: each query's language, for an index that removes language identity by centring.

        Returns:
            ``(scores, ids)``: ``[n_queries, n_allowed]`` inner products and the documents' positions.
        """
        return self._contents().scores(query_vecs, langs, query_langs)

    def chunks(self, size: int = 4096) -> Iterator[Chunk]:
        """Every document in index order as ``(docnos, vectors, languages)``, ``size`` at a time, read block by block:
        what :meth:`FaissIndexer.index_chunks` takes, e.g. to build another type from a flat index. The vectors are
        the stored ones (language identity removed when the index removes it).

        Args:
            size: documents per chunk.
        """
        c = self._contents()
        if c.vectors is None and c.vectors_path is None:
            raise ValueError(f"{self._where()} is a {self.index_type} index without its exact vectors; chunks() reads "
                             "a flat index or one built with keep_vectors=True")
        names = self.meta.langs
        for start, vecs in c.rows(size):
            stop = start + len(vecs)
            yield (list(c.docnos[np.arange(start, stop)]), vecs,
                   [names[code] if code >= 0 else None for code in c.lang_codes[start:stop]])

    def retriever(self, encoder: Optional[BiEncoder] = None, *, num_results: Optional[int] = 1000,
                  langs: Optional[Sequence[str]] = None, query_lang: Optional[str] = None, nprobe: int = 16,
                  ef_search: int = 128, refine: Optional[int] = None,
                  allow_other_encoder: bool = False) -> pt.Transformer:
        """A transformer from queries to a ranking of this index.

        Args:
            encoder: a :class:`BiEncoder`; when given, the transformer encodes the ``query`` column
                itself, otherwise it expects a ``query_vec`` column. It must be the model that encoded the documents
                when the index records one (a ValueError names both otherwise).
            num_results: results per query; ``None`` returns the full ranking (needed for AP and rank distance).
            langs: only return documents in these languages (e.g. ``["de"]`` for a de corpus).
            query_lang: the queries' language, for an index that removes language identity by centring; without
                it, a ``lang`` column says it (:func:`~pyterrier_hybrid.lang_from_qid` adds one from the qids).
            nprobe: IVF cells to visit.
            ef_search: HNSW search breadth.
            refine: re-score this many approximate candidates exactly (see :meth:`search`).
            allow_other_encoder: search with ``encoder`` even though another model encoded the documents.
        """
        from .retriever import FaissRetriever

        c = self._contents()
        c.lang_positions(langs)  # fail now on an unknown language
        language = self.meta.language
        if query_lang is not None and language is not None and language.needs_query_lang:
            language.codes([query_lang])  # fail now on a language the index has no statistics for
        c.check_refine(refine)
        if encoder is not None:
            if self.meta.format_version < 3:  # written before indexes recorded their model
                logger.warning("%s is in format %d, which records no model: that %s encoded its documents cannot be "
                               "checked; rebuild it to have it checked", self._where(), self.meta.format_version,
                               encoder.name)
            check_encoder(self.meta.encoder, encoder, self._where(), allow_other_encoder)
        retr = FaissRetriever(self, num_results=num_results, langs=langs, query_lang=query_lang, nprobe=nprobe,
                              ef_search=ef_search, refine=refine)
        return retr if encoder is None else encoder.query_encoder() >> retr


__all__ = ["CorruptIndexError", "FaissIndex"]
