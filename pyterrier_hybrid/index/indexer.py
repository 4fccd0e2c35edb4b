"""FaissIndexer: every option of building a FaissIndex, the checks on what arrives, and the writing.

Reached as ``FaissIndex(path).indexer(...)`` (as pyterrier-dr's ``FlexIndex.indexer``); ``FaissIndex(path,
index_type=...).index(docs)`` and ``encoder.doc_encoder() >> FaissIndex(path)`` build through one too. The
directory is built under a temporary name and renamed into place when complete, so an interrupted or refused
build never leaves a directory that loads.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import faiss
import numpy as np
import pyterrier as pt
from tqdm.auto import tqdm

from ..atomic import atomic_directory, refuse_existing
from . import storage
from .encoder_identity import encoder_identity
from .language_identity import METHODS as REMOVAL_METHODS, LanguageIdentity
from .search import factory_string, min_training, new_faiss

if TYPE_CHECKING:
    from ..model import BiEncoder
    from .faiss_index import FaissIndex

#: documents per chunk while indexing
CHUNK = 4096

Chunk = Tuple[Sequence[str], np.ndarray, Sequence[Optional[str]]]  # docnos, vectors, languages


class FaissIndexer(pt.Indexer):
    """Builds a :class:`~pyterrier_hybrid.FaissIndex` from ``doc_vec`` vectors, streamed to disk as they arrive.

    Args:
        index: the index to build (its path).
        index_type: ``"flat"`` (exact, the default), ``"hnsw"`` (``"HNSW{hnsw_m},Flat"``), ``"ivf"``
            (``"IVF{ivf_nlist},Flat"``), or any faiss factory string such as ``"IVF4096,PQ48"`` or ``"HNSW32"``.
        hnsw_m: neighbours per node for ``"hnsw"``.
        ivf_nlist: number of cells for ``"ivf"``.
        train_size: vectors a trained type (IVF, PQ) learns from, spread evenly over the corpus
            (default: 64 per IVF cell, at least 10,000).
        keep_vectors: an approximate type also keeps the exact vectors on disk (never in memory), so that
            ``search(refine=R)`` can re-score its top R candidates exactly.
        overwrite: replace an existing index at the path.
        verbose: show progress bars.
        language_removal: ``"center"`` or ``"lir"``: remove each document's language identity before it is stored,
            estimated from the indexed documents (every document needs a ``lang``), and from each query at search
            time (see :mod:`~pyterrier_hybrid.index.language_identity`).
        lir_k: directions ``"lir"`` projects out (default: languages - 1).
        language_stats: statistics estimated elsewhere (:meth:`LanguageIdentity.fit` on another corpus) to use
            instead of estimating them from the indexed documents.
        encoder: the :class:`~pyterrier_hybrid.BiEncoder` that encodes the documents; the index records its identity,
            and :meth:`FaissIndex.retriever` refuses another model's queries. In a pipeline,
            ``encoder.doc_encoder() >> index.encoded_by(encoder)`` gives it.
    """

    def __init__(self, index: FaissIndex, *, index_type: str = "flat", hnsw_m: int = 32, ivf_nlist: int = 256,
                 train_size: Optional[int] = None, keep_vectors: bool = False, overwrite: bool = False,
                 verbose: bool = False, language_removal: Optional[str] = None, lir_k: Optional[int] = None,
                 language_stats: Optional[LanguageIdentity] = None, encoder: Optional[BiEncoder] = None):
        if not isinstance(index_type, str) or not index_type.strip():
            raise ValueError(f"index_type={index_type!r}: give 'flat', 'hnsw', 'ivf' or a faiss factory string")
        check_removal(language_removal, lir_k, language_stats)
        self.index_ref = index
        self.index_type, self.hnsw_m, self.ivf_nlist, self.train_size = index_type, hnsw_m, ivf_nlist, train_size
        self.keep_vectors, self.overwrite, self.verbose = keep_vectors, overwrite, verbose
        self.language_removal, self.lir_k, self.language_stats = language_removal, lir_k, language_stats
        self.encoder = encoder

    @property
    def options(self) -> Dict[str, Any]:
        """The build options, as the constructor takes them."""
        return {"index_type": self.index_type, "hnsw_m": self.hnsw_m, "ivf_nlist": self.ivf_nlist,
                "train_size": self.train_size, "keep_vectors": self.keep_vectors, "overwrite": self.overwrite,
                "verbose": self.verbose, "language_removal": self.language_removal, "lir_k": self.lir_k,
                "language_stats": self.language_stats, "encoder": self.encoder}

    def encoded_by(self, encoder: BiEncoder) -> "FaissIndexer":
        """This indexer with ``encoder`` recorded as the model of the documents.

        Args:
            encoder: the model encoding the documents.
        """
        return FaissIndexer(self.index_ref, **{**self.options, "encoder": encoder})

    def index(self, inp: Iterable[Dict]) -> FaissIndex:
        """Index an iterable of dicts with ``docno``, ``doc_vec`` and optionally ``lang``; returns the index.

        Vectors are written to disk in chunks as they arrive; memory does not grow with the corpus (but for 8 bytes
        a document, to find duplicate docnos).

        Args:
            inp: the documents, e.g. ``encoder.doc_encoder()`` output over a corpus iterator.
        """
        def chunks() -> Iterator[Chunk]:
            n = 0
            for chunk in chunked(tqdm(inp, desc="indexing", unit="doc", disable=not self.verbose), CHUNK):
                yield _split_chunk(chunk, n)
                n += len(chunk)
        return self.index_chunks(chunks())

    def index_chunks(self, chunks: Iterable[Chunk], start: int = 0) -> FaissIndex:
        """Index ``(docnos, vectors, languages)`` chunks, in order; returns the index.

        Args:
            chunks: the documents, a chunk at a time (:meth:`FaissIndex.chunks` gives them from another index).
            start: where the first document stands in a larger corpus (a shard's first document), for messages.
        """
        if self.index_ref.path is pt.Artifact.NO_PATH:
            raise ValueError("an in-memory FaissIndex (from_vectors) has no directory to index into; "
                             "use FaissIndex(path).index(docs)")
        final = Path(self.index_ref.path)
        refuse_existing(final, self.overwrite)
        atomic_directory(final, lambda tmp: self._write(tmp, chunks, start))
        self.index_ref.refresh()
        return self.index_ref

    def _write(self, root: Path, chunks: Iterable[Chunk], start: int) -> None:
        writer = storage.StoreWriter(root)
        factory = factory_string(self.index_type, self.hnsw_m, self.ivf_nlist)
        identity = None if self.encoder is None else encoder_identity(self.encoder)
        for docnos, vecs, langs in chunks:
            offset = start + writer.n
            check_docnos(docnos, offset)
            vecs = check_vectors(vecs, offset, writer.dim)
            if writer.dim is None and factory is not None:
                new_faiss(factory, vecs.shape[1])  # a factory string faiss rejects fails before the corpus is encoded
            if self.language_stats is not None:  # given statistics apply as the vectors arrive
                vecs = np.ascontiguousarray(self.language_stats.transform(vecs, langs))
            writer.add(docnos, vecs, langs)
        language = self.language_stats
        if self.language_removal and writer.n:
            language = writer.fit_language(self.language_removal, self.lir_k)
        files = writer.close()
        if writer.n == 0:
            raise ValueError("nothing to index: the input had no documents")
        check_unique(writer.duplicate(), start)
        if self.language_removal:  # estimated from the stored vectors, removed in place
            codes = np.fromfile(root / storage.LANGS, dtype=np.int16)
            files[storage.VECTORS] = storage.transform_in_place(root / storage.VECTORS, writer.dim, language, codes,
                                                                writer.lang_names)
        if factory is not None:
            self._build_faiss(root, factory, writer.n, writer.dim)
            files[storage.FAISS] = storage.file_entry(root / storage.FAISS)
            if not self.keep_vectors:
                del files[storage.VECTORS]
                (root / storage.VECTORS).unlink()
        storage.IndexMeta(writer.n, writer.dim, self.index_type, factory, writer.lang_names, language, identity,
                          files).write(root)

    def _build_faiss(self, root: Path, factory: str, n: int, dim: int) -> None:
        """Train a factory index on vectors spread over the stored stream, add them all, write it."""
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

    def __repr__(self) -> str:
        return f"FaissIndexer({str(self.index_ref.path)!r}, index_type={self.index_type!r})"


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


def check_removal(method: Optional[str], k: Optional[int], stats: Optional[LanguageIdentity]) -> None:
    """The language-removal options make sense together, or a ValueError saying which to give."""
    if method is not None and stats is not None:
        raise ValueError("give language_removal (estimate from the indexed documents) or language_stats (estimated "
                         "elsewhere), not both")
    if method is not None and method not in REMOVAL_METHODS:
        raise ValueError(f"language_removal={method!r} is not supported; use one of {REMOVAL_METHODS}")
    if k is not None and method != "lir":
        raise ValueError("lir_k applies to language_removal='lir' only")


def chunked(it: Iterable, size: int) -> Iterator[List]:
    """Lists of ``size`` items (the last one shorter)."""
    chunk: List = []
    for item in it:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _split_chunk(chunk: List[Dict], offset: int) -> Chunk:
    """One chunk of document dicts as ``(docnos, vectors, languages)``, or an error naming the documents."""
    first = chunk[0]
    for col in ("docno", "doc_vec"):
        if col not in first:
            raise KeyError(f"FaissIndex.index needs '{col}' in every document, but document {offset} has "
                           f"{sorted(first)}; index with encoder.doc_encoder() >> FaissIndex(path)")
    try:
        vecs = np.stack([d["doc_vec"] for d in chunk])
    except (KeyError, ValueError) as e:
        raise ValueError(f"documents {offset}..{offset + len(chunk) - 1} have missing or ragged doc_vec ({e})") \
            from None
    return [d.get("docno") for d in chunk], vecs, [d.get("lang") for d in chunk]


def check_docnos(docnos: Sequence, offset: int) -> None:
    """Every docno is a non-empty one-line string, or a ValueError naming the document."""
    for i, docno in enumerate(docnos):
        if not isinstance(docno, str) or not docno or "\n" in docno or "\r" in docno:
            raise ValueError(f"document {offset + i} has docno {docno!r}; docnos must be non-empty one-line strings "
                             "(no line breaks: \\n or \\r)")


def check_unique(duplicate: Optional[Tuple[str, int, int]], start: int = 0) -> None:
    """A ValueError naming a docno given twice and both its positions (from :meth:`StoreWriter.duplicate`)."""
    if duplicate is not None:
        docno, first, second = duplicate
        raise ValueError(f"documents {start + first} and {start + second} both have docno {docno!r}; docnos must be "
                         "unique (a search would return the docno twice): remove or rename the duplicates")


def check_vectors(vecs: np.ndarray, offset: int, dim: Optional[int]) -> np.ndarray:
    """``vecs`` as contiguous float32 ``[n, dim]``, or a ValueError naming the documents from ``offset``."""
    vecs = np.ascontiguousarray(vecs, dtype=np.float32)
    if vecs.ndim != 2 or (dim is not None and vecs.shape[1] != dim):
        raise ValueError(f"documents from {offset} have doc_vec of shape {vecs.shape[1:]}, "
                         + ("each must be one vector" if dim is None else f"the index has dimension {dim}"))
    if not np.isfinite(vecs).all():
        raise ValueError(f"documents {offset}..{offset + len(vecs) - 1} have NaN or infinite doc_vec values")
    return vecs


__all__ = ["CHUNK", "Chunk", "FaissIndexer", "check_docnos", "check_removal", "check_unique", "check_vectors",
           "chunked"]
