"""FaissIndex: a dense index that knows each document's language, written as a stream and searched in blocks.

The on-disk format is described in :mod:`~pyterrier_hybrid.index.storage`. The directory is built under a
temporary name and renamed into place when complete, so an interrupted build never leaves a directory that
loads. :meth:`FaissIndex.from_vectors` builds an exact index in memory instead, with no directory at all.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import faiss
import numpy as np
import pyterrier as pt
from tqdm.auto import tqdm

from ..atomic import atomic_directory, refuse_existing
from .language_identity import METHODS as REMOVAL_METHODS, LanguageIdentity
from . import storage
from .search import exact_search, factory_string, min_training, new_faiss, search_params
from .storage import CorruptIndexError, DocnoArray

#: a flat index on disk up to this size is read into memory once; a larger one is read block by block per search
IN_MEMORY_BYTES = 1 << 30
#: documents per chunk while indexing
CHUNK = 4096

Chunk = Tuple[Sequence[str], np.ndarray, Sequence[Optional[str]]]  # docnos, vectors, languages


@dataclass
class _Contents:
    """What a FaissIndex searches: read from its directory, or built in memory."""
    index_type: str                          # "flat", "hnsw", "ivf" or a faiss factory string
    n: int
    dim: int
    docnos: Union[np.ndarray, DocnoArray]    # docno of each position
    lang_names: List[str]                    # the languages, in order of first appearance
    lang_codes: np.ndarray                   # int16 per document: position in lang_names, -1 = unknown
    language: Optional[LanguageIdentity]     # removed from the stored vectors; applied to queries at search
    vectors: Optional[np.ndarray] = None     # flat, in memory
    vectors_path: Optional[Path] = None      # flat, too large for memory: read in blocks
    faiss_index: Optional[faiss.Index] = None  # any other type


class FaissIndex(pt.Artifact, pt.Indexer):
    """A dense index over ``doc_vec`` vectors with per-document languages; scores are inner products.

    Index with ``encoder.doc_encoder() >> FaissIndex(path)`` and ``.index(corpus_iter)`` (or
    :func:`~pyterrier_hybrid.index_corpus`, sharded over processes); search with :meth:`retriever`.
    ``pt.Artifact.load(path)`` returns a ``FaissIndex``. :meth:`from_vectors` builds one in memory.

    Vectors stream to disk as they arrive, so indexing memory does not grow with the corpus; a large flat
    index is searched block by block from disk.

    Args:
        path: the index directory.
        index_type: ``"flat"`` (exact, the default), ``"hnsw"`` (``"HNSW{hnsw_m},Flat"``), ``"ivf"``
            (``"IVF{ivf_nlist},Flat"``), or any faiss factory string such as ``"IVF4096,PQ48"`` or ``"HNSW32"``.
        hnsw_m: neighbours per node for ``"hnsw"``.
        ivf_nlist: number of cells for ``"ivf"``.
        train_size: vectors a trained type (IVF, PQ) learns from, spread evenly over the corpus
            (default: 64 per IVF cell, at least 10,000).
        keep_vectors: an approximate type also keeps the exact vectors on disk (never in memory), so that
            ``search(refine=R)`` can re-score its top R candidates exactly.
        overwrite: replace an existing index at ``path`` when indexing.
        verbose: show progress bars.
        language_removal: ``"center"`` or ``"lir"``: remove each document's language identity before it is stored,
            estimated from the indexed documents (every document needs a ``lang``), and from each query at search
            time (see :mod:`~pyterrier_hybrid.index.language_identity`). The statistics are stored in the index and
            apply by themselves when it is loaded.
        lir_k: directions ``"lir"`` projects out (default: languages - 1).
        language_stats: statistics estimated elsewhere (:meth:`LanguageIdentity.fit` on another corpus) to use
            instead of estimating them from the indexed documents.
    """

    ARTIFACT_TYPE = storage.ARTIFACT_TYPE
    ARTIFACT_FORMAT = storage.ARTIFACT_FORMAT

    def __init__(self, path: str | Path, *, index_type: str = "flat", hnsw_m: int = 32, ivf_nlist: int = 256,
                 train_size: Optional[int] = None, keep_vectors: bool = False, overwrite: bool = False,
                 verbose: bool = False,
                 language_removal: Optional[str] = None, lir_k: Optional[int] = None,
                 language_stats: Optional[LanguageIdentity] = None):
        super().__init__(path)
        if not isinstance(index_type, str) or not index_type.strip():
            raise ValueError(f"index_type={index_type!r}: give 'flat', 'hnsw', 'ivf' or a faiss factory string")
        _check_removal(language_removal, lir_k, language_stats)
        self.language_removal, self.lir_k, self.language_stats = language_removal, lir_k, language_stats
        self.index_type, self.hnsw_m, self.ivf_nlist, self.train_size = index_type, hnsw_m, ivf_nlist, train_size
        self.keep_vectors = keep_vectors
        self.overwrite, self.verbose = overwrite, verbose
        self._loaded: Optional[_Contents] = None
        self._subsets: Dict[tuple, np.ndarray] = {}

    @classmethod
    def from_vectors(cls, doc_vecs: np.ndarray, docnos: Sequence[str], langs: Optional[Sequence[Optional[str]]] = None,
                     *, language_removal: Optional[str] = None, lir_k: Optional[int] = None,
                     language_stats: Optional[LanguageIdentity] = None) -> "FaissIndex":
        """An exact (flat) index held in memory only, over vectors already at hand.

        It searches exactly as the same vectors indexed on disk would; having no directory, it cannot be
        indexed into or loaded back.

        Args:
            doc_vecs: ``[n_docs, dim]`` document vectors; row i is document i.
            docnos: the documents' docnos, in the same order.
            langs: each document's language (``None`` where unknown); leave out when no document has one.
            language_removal, lir_k, language_stats: as for :class:`FaissIndex`.
        """
        vecs = np.asarray(doc_vecs)
        if vecs.ndim != 2:
            raise ValueError(f"doc_vecs must be a [n_docs, dim] matrix, got shape {vecs.shape}")
        vecs = _check_vectors(vecs, 0, None)
        if len(docnos) != len(vecs) or (langs is not None and len(langs) != len(vecs)):
            raise ValueError(f"{len(vecs)} vectors but {len(docnos)} docnos"
                             + ("" if langs is None else f" and {len(langs)} langs") + "; give one per document")
        if len(vecs) == 0:
            raise ValueError("nothing to index: doc_vecs has no rows")
        _check_docnos(docnos, 0)
        _check_removal(language_removal, lir_k, language_stats)
        lang_names: List[str] = []
        codes = _lang_codes([None] * len(vecs) if langs is None else langs, lang_names)
        language = language_stats
        if language_removal and language is None:
            if (codes < 0).any():
                raise storage.missing_langs(int((codes < 0).sum()))
            language = LanguageIdentity.fit(vecs, _names(codes, lang_names), language_removal, lir_k)
        if language is not None:
            vecs = np.ascontiguousarray(language.transform(vecs, _names(codes, lang_names)), dtype=np.float32)
        index = cls(pt.Artifact.NO_PATH)
        index._loaded = _Contents("flat", len(vecs), vecs.shape[1], np.array(docnos, dtype=object), lang_names, codes,
                                  language, vectors=vecs)
        return index

    # ---- reading ----------------------------------------------------------------------------
    def _contents(self) -> _Contents:
        if self._loaded is None:
            self._loaded = self._read(Path(self.path))
        return self._loaded

    def _read(self, root: Path) -> _Contents:
        """Load and check an index directory: its type and format version, every file's size (and md5)."""
        meta = storage.read_meta(root)
        storage.check_files(root, meta)
        n, dim = int(meta["doc_count"]), int(meta["dim"])
        for name, size in [(storage.OFFSETS, 8 * (n + 1)), (storage.LANGS, 2 * n)] + (
                [(storage.VECTORS, 4 * n * dim)] if storage.VECTORS in meta["files"] else []):
            if meta["files"][name]["size"] != size:
                raise CorruptIndexError(f"{root / name} does not hold {n} documents; the index is corrupt, rebuild it")
        codes = np.memmap(root / storage.LANGS, dtype=np.int16, mode="r", shape=(n,)) if n else np.zeros(0, np.int16)
        docnos = DocnoArray(root / storage.DOCNOS, root / storage.OFFSETS, n)
        language = (LanguageIdentity.from_bytes((root / storage.LANGUAGE).read_bytes())
                    if meta.get("language_removal") else None)
        contents = _Contents(meta["index_type"], n, dim, docnos, list(meta["langs"]), codes, language)
        if meta["factory"] is None:
            if 4 * n * dim <= IN_MEMORY_BYTES:
                contents.vectors = np.fromfile(root / storage.VECTORS, dtype=np.float32).reshape(n, dim)
            else:
                contents.vectors_path = root / storage.VECTORS
        else:
            contents.faiss_index = faiss.read_index(str(root / storage.FAISS))
            if storage.VECTORS in meta["files"]:  # kept for exact re-scoring, read from disk row by row
                contents.vectors_path = root / storage.VECTORS
            if contents.faiss_index.ntotal != n:
                raise CorruptIndexError(f"{root} is inconsistent: {contents.faiss_index.ntotal} vectors in "
                                        f"{storage.FAISS}, doc_count {n}; rebuild it")
        return contents

    def verify(self) -> None:
        """Check every file's md5 (done at load for indexes up to 1 GB); a CorruptIndexError when one differs."""
        storage.verify_md5(Path(self.path), storage.read_meta(Path(self.path)))

    def _where(self) -> str:
        """The index's name in messages."""
        return "this in-memory index" if self.path is pt.Artifact.NO_PATH else str(self.path)

    def __len__(self) -> int:
        return self._contents().n

    @property
    def dim(self) -> int:
        """The vector size."""
        return self._contents().dim

    @property
    def langs(self) -> List[str]:
        """The document languages present in the index."""
        return list(self._contents().lang_names)

    @property
    def language_identity(self) -> Optional[LanguageIdentity]:
        """The language statistics removed from the stored vectors (and from queries at search), or None."""
        return self._contents().language

    @property
    def docnos(self) -> Union[np.ndarray, DocnoArray]:
        """Every docno in index order: document position i, as in ``docid``, is ``docnos[i]``; index it with an
        array of positions for an object array of docnos (an index on disk reads them on demand)."""
        return self._contents().docnos

    def prepare_queries(self, query_vecs: np.ndarray, query_langs: Optional[Sequence[str]] = None) -> np.ndarray:
        """Query vectors as this index compares them: float32, checked, and with the language identity removed
        when the index removes it (``"center"`` needs ``query_langs``).

        Args:
            query_vecs: ``[n_queries, dim]`` query vectors.
            query_langs: each query's language.
        """
        q = np.ascontiguousarray(query_vecs, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"query vectors have shape {q.shape}, but {self._where()} holds {self.dim}-dimensional "
                             "vectors; encode queries with the model that built the index")
        language = self._contents().language
        return q if language is None else language.transform(q, query_langs)

    def _wanted(self, langs: Optional[Sequence[str]]) -> Optional[List[int]]:
        if langs is None:
            return None
        c = self._contents()
        unknown = [lang for lang in langs if lang not in c.lang_names]
        if unknown:
            raise ValueError(f"unknown language filter {unknown}; this index has {c.lang_names}")
        return [c.lang_names.index(lang) for lang in langs]

    def lang_ids(self, langs: Optional[Sequence[str]]) -> Optional[np.ndarray]:
        """Positions of the documents in ``langs``; ``None`` when that is every document (no filter needed).

        Args:
            langs: languages to keep, or ``None`` for every document.
        """
        wanted = self._wanted(langs)
        if wanted is None:
            return None
        c = self._contents()
        ids = np.flatnonzero(np.isin(c.lang_codes, wanted)).astype(np.int64)
        return None if len(ids) == c.n else ids

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
        self._check_refine(refine)
        q = self.prepare_queries(query_vecs, query_langs)
        ids = self.lang_ids(langs)
        allowed = c.n if ids is None else len(ids)
        k = allowed if k is None else min(k, allowed)
        if k == 0 or len(q) == 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        if c.faiss_index is None:
            return exact_search(q, self._blocks(langs), k)
        sel = None if ids is None else faiss.IDSelectorBatch(ids)
        wide = k if refine is None else min(max(refine, k), allowed)
        scores, found = c.faiss_index.search(q, wide, params=search_params(c.faiss_index, sel, nprobe, ef_search, wide))
        return (scores, found) if refine is None else _rescore(q, found, c.vectors_path, c.n, c.dim, k)

    def scores(self, query_vecs: np.ndarray, langs: Optional[Sequence[str]] = None, *,
               query_langs: Optional[Sequence[str]] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Exact scores of every allowed document, unsorted (a flat index only).

        Args:
            query_vecs: ``[n_queries, dim]`` query vectors.
            langs: only score documents in these languages.
            query_langs: each query's language, for an index that removes language identity by centring.

        Returns:
            ``(scores, ids)``: ``[n_queries, n_allowed]`` inner products and the documents' positions.
        """
        c = self._contents()
        if c.faiss_index is not None:
            raise ValueError(f"scores() needs exact vectors; {self._where()} is a {c.index_type} index")
        q = self.prepare_queries(query_vecs, query_langs)
        parts = [(q @ vecs.T, ids) for ids, vecs in self._blocks(langs)]
        return np.concatenate([s for s, _ in parts], axis=1), np.concatenate([i for _, i in parts])

    def _blocks(self, langs: Optional[Sequence[str]]) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """A flat index's ``(positions, vectors)`` of the allowed documents: one block when the vectors are in
        memory (a cached copy per language subset), else block by block from disk."""
        c = self._contents()
        ids = self.lang_ids(langs)
        if c.vectors is not None:
            if ids is None:
                yield np.arange(c.n), c.vectors
                return
            key = (len(ids), int(ids[0]), int(ids[-1]), hash(ids.tobytes()))
            if key not in self._subsets:
                self._subsets[key] = np.ascontiguousarray(c.vectors[ids])
            yield ids, self._subsets[key]
            return
        wanted = self._wanted(langs) if ids is not None else None
        with open(c.vectors_path, "rb") as f:
            for start, vecs in storage.iter_blocks(f, c.n, c.dim):
                positions = np.arange(start, start + len(vecs))
                if wanted is not None:
                    keep = np.isin(c.lang_codes[start:start + len(vecs)], wanted)
                    if not keep.any():
                        continue
                    positions, vecs = positions[keep], np.ascontiguousarray(vecs[keep])
                yield positions, vecs

    def _check_refine(self, refine: Optional[int]) -> None:
        c = self._contents()
        if refine is not None and (c.faiss_index is None or c.vectors_path is None):
            raise ValueError(f"refine= re-scores an approximate index's candidates from its kept vectors; "
                             f"{self._where()} is " + ("exact already" if c.faiss_index is None else
                                                       "built without keep_vectors=True: rebuild it with it"))

    def retriever(self, encoder=None, *, num_results: Optional[int] = 1000, langs: Optional[Sequence[str]] = None,
                  query_lang: Optional[str] = None, nprobe: int = 16, ef_search: int = 128,
                  refine: Optional[int] = None) -> pt.Transformer:
        """A transformer from queries to a ranking of this index.

        Args:
            encoder: a :class:`BiEncoder`; when given, the transformer encodes the ``query`` column
                itself, otherwise it expects a ``query_vec`` column.
            num_results: results per query; ``None`` returns the full ranking (needed for AP and rank distance).
            langs: only return documents in these languages (e.g. ``["de"]`` for a de corpus).
            query_lang: the queries' language, for an index that removes language identity by centring; without
                it, a ``lang`` column, else each qid's ``"<lang>:"`` prefix, says it.
            nprobe: IVF cells to visit.
            ef_search: HNSW search breadth.
            refine: re-score this many approximate candidates exactly (see :meth:`search`).
        """
        from .retriever import FaissRetriever

        self.lang_ids(langs)  # fail now on an unknown language
        language = self._contents().language
        if query_lang is not None and language is not None and language.method == "center":
            language.codes([query_lang])  # fail now on a language the index has no statistics for
        self._check_refine(refine)
        retr = FaissRetriever(self, num_results=num_results, langs=langs, query_lang=query_lang, nprobe=nprobe,
                              ef_search=ef_search, refine=refine)
        return retr if encoder is None else encoder.query_encoder() >> retr

    # ---- writing ----------------------------------------------------------------------------
    def index(self, inp: Iterable[Dict]) -> "FaissIndex":
        """Index an iterable of dicts with ``docno``, ``doc_vec`` and optionally ``lang``.

        Vectors are written to disk in chunks as they arrive; memory does not grow with the corpus.

        Args:
            inp: the documents, e.g. ``encoder.doc_encoder()`` output over a corpus iterator.
        """
        def chunks() -> Iterator[Chunk]:
            n = 0
            for chunk in _chunks(tqdm(inp, desc="indexing", unit="doc", disable=not self.verbose), CHUNK):
                yield _check_chunk(chunk, n)
                n += len(chunk)
        return self.index_chunks(chunks())

    def index_chunks(self, chunks: Iterable[Chunk]) -> "FaissIndex":
        """Index ``(docnos, vectors, languages)`` chunks, in order (what :meth:`index` and sharded indexing feed)."""
        if self.path is pt.Artifact.NO_PATH:
            raise ValueError("an in-memory FaissIndex (from_vectors) has no directory to index into; "
                             "use FaissIndex(path).index(docs)")
        final = Path(self.path)
        refuse_existing(final, self.overwrite)
        atomic_directory(final, lambda tmp: self._write(tmp, chunks))
        self._loaded, self._subsets = None, {}
        return self

    def _write(self, root: Path, chunks: Iterable[Chunk]) -> None:
        writer = storage.StoreWriter(root)
        factory = factory_string(self.index_type, self.hnsw_m, self.ivf_nlist)
        for docnos, vecs, langs in chunks:
            offset = writer.n
            _check_docnos(docnos, offset)
            vecs = _check_vectors(vecs, offset, writer.dim)
            if writer.dim is None and factory is not None:
                new_faiss(factory, vecs.shape[1])  # a factory string faiss rejects fails before the corpus is encoded
            codes = _lang_codes(langs, writer.lang_names)
            if self.language_stats is not None:  # given statistics apply as the vectors arrive
                vecs = np.ascontiguousarray(self.language_stats.transform(vecs, _names(codes, writer.lang_names)))
            writer.add(docnos, vecs, codes)
        language = self.language_stats
        if self.language_removal and writer.n:
            language = writer.fit_language(self.language_removal, self.lir_k)
        files = writer.close()
        if writer.n == 0:
            raise ValueError("nothing to index: the input had no documents")
        codes = np.fromfile(root / storage.LANGS, dtype=np.int16)
        if self.language_removal:  # estimated from the stored vectors, removed in place
            files[storage.VECTORS] = storage.transform_in_place(root / storage.VECTORS, writer.dim, language, codes,
                                                                writer.lang_names)
        if factory is not None:
            files[storage.FAISS] = self._build_faiss(root, factory, writer.n, writer.dim)
            if not self.keep_vectors:
                del files[storage.VECTORS]
                (root / storage.VECTORS).unlink()
        if language is not None:
            (root / storage.LANGUAGE).write_bytes(language.to_bytes())
            files[storage.LANGUAGE] = {"size": (root / storage.LANGUAGE).stat().st_size,
                                       "md5": storage.md5_file(root / storage.LANGUAGE)}
        storage.write_meta(root, {
            "type": self.ARTIFACT_TYPE, "format": self.ARTIFACT_FORMAT, "format_version": storage.FORMAT_VERSION,
            "package_hint": "pyterrier-hybrid", "doc_count": writer.n, "dim": writer.dim,
            "index_type": self.index_type, "factory": factory, "langs": writer.lang_names,
            "language_removal": None if language is None else language.describe(), "files": files})

    def _build_faiss(self, root: Path, factory: str, n: int, dim: int) -> Dict[str, object]:
        """Train a factory index on vectors spread over the stored stream, add them all, write it; its size and md5."""
        index = new_faiss(factory, dim)
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None and n < ivf.nlist:
            raise ValueError(f"index_type={self.index_type!r} has {ivf.nlist} IVF cells and needs at least that many "
                             f"documents, got {n}; use fewer cells or index_type='flat'")
        with open(root / storage.VECTORS, "rb") as f:
            if not index.is_trained:
                size = min(n, self.train_size or min_training(index))
                try:
                    index.train(_sample(f, n, dim, size))
                except RuntimeError as e:
                    raise ValueError(f"faiss could not train index_type={self.index_type!r} on {size} vectors "
                                     f"({str(e).strip().splitlines()[-1]}); give more documents or train_size, "
                                     "or a smaller type") from None
            blocks = storage.iter_blocks(f, n, dim)
            for _, vecs in tqdm(blocks, desc=f"adding to {factory}", total=-(-n // storage.READ_BLOCK),
                                disable=not self.verbose):
                index.add(vecs)
        faiss.write_index(index, str(root / storage.FAISS))
        return {"size": (root / storage.FAISS).stat().st_size, "md5": storage.md5_file(root / storage.FAISS)}


def _rescore(q: np.ndarray, found: np.ndarray, path: Path, n: int, dim: int, k: int,
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


def _sample(f, n: int, dim: int, size: int, parts: int = 16) -> np.ndarray:
    """``size`` rows spread over the file: ``parts`` contiguous runs at even offsets (reads, not a memory map)."""
    if size >= n:
        return np.concatenate([v for _, v in storage.iter_blocks(f, n, dim)])
    per = -(-size // parts)
    starts = np.linspace(0, n - per, parts).astype(np.int64)
    out = []
    for start in starts:
        f.seek(int(start) * dim * 4)
        out.append(np.fromfile(f, dtype=np.float32, count=per * dim).reshape(per, dim))
    return np.concatenate(out)[:size]


def _check_removal(method: Optional[str], k: Optional[int], stats: Optional[LanguageIdentity]) -> None:
    if method is not None and stats is not None:
        raise ValueError("give language_removal (estimate from the indexed documents) or language_stats (estimated "
                         "elsewhere), not both")
    if method is not None and method not in REMOVAL_METHODS:
        raise ValueError(f"language_removal={method!r} is not supported; use one of {REMOVAL_METHODS}")
    if k is not None and method != "lir":
        raise ValueError("lir_k applies to language_removal='lir' only")


def _names(codes: np.ndarray, lang_names: List[str]) -> List[Optional[str]]:
    return [lang_names[c] if c >= 0 else None for c in codes]


def _chunks(it: Iterable[Dict], size: int) -> Iterator[List[Dict]]:
    chunk: List[Dict] = []
    for item in it:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _check_chunk(chunk: List[Dict], offset: int) -> Chunk:
    """One chunk of document dicts as ``(docnos, vectors, languages)``, or an error naming the documents."""
    first = chunk[0]
    for col in ("docno", "doc_vec"):
        if col not in first:
            raise KeyError(f"FaissIndex.index needs '{col}' in every document, but document {offset} has "
                           f"{sorted(first)}; index with encoder.doc_encoder() >> FaissIndex(path)")
    try:
        vecs = np.stack([d["doc_vec"] for d in chunk])
    except (KeyError, ValueError) as e:
        raise ValueError(f"documents {offset}..{offset + len(chunk) - 1} have missing or ragged doc_vec ({e})") from None
    return [d.get("docno") for d in chunk], vecs, [d.get("lang") for d in chunk]


def _check_docnos(docnos: Sequence, offset: int) -> None:
    for i, docno in enumerate(docnos):
        if not isinstance(docno, str) or not docno or "\n" in docno or "\r" in docno:
            raise ValueError(f"document {offset + i} has docno {docno!r}; docnos must be non-empty one-line strings "
                             "(no line breaks: \\n or \\r)")


def _lang_codes(langs: Sequence[Optional[str]], lang_names: List[str]) -> np.ndarray:
    """Each language's position in ``lang_names`` (-1 for ``None``), adding new languages as they come."""
    codes = np.empty(len(langs), dtype=np.int16)
    position = {lang: i for i, lang in enumerate(lang_names)}
    for i, lang in enumerate(langs):
        if lang is None:
            codes[i] = -1
            continue
        if lang not in position:
            position[lang] = len(lang_names)
            lang_names.append(lang)
        codes[i] = position[lang]
    return codes


def _check_vectors(vecs: np.ndarray, offset: int, dim: Optional[int]) -> np.ndarray:
    """``vecs`` as contiguous float32 ``[n, dim]``, or a ValueError naming the documents from ``offset``."""
    vecs = np.ascontiguousarray(vecs, dtype=np.float32)
    if vecs.ndim != 2 or (dim is not None and vecs.shape[1] != dim):
        raise ValueError(f"documents from {offset} have doc_vec of shape {vecs.shape[1:]}, "
                         + ("each must be one vector" if dim is None else f"the index has dimension {dim}"))
    if not np.isfinite(vecs).all():
        raise ValueError(f"documents {offset}..{offset + len(vecs) - 1} have NaN or infinite doc_vec values")
    return vecs


__all__ = ["CorruptIndexError", "FaissIndex"]
