"""FaissIndex: a faiss-backed dense index that knows each document's language, and its retriever.

On-disk layout (a directory)::

    pt_meta.json   type/format for pt.Artifact.load, doc_count, dim, index_type, langs, md5 of each file
    index.faiss    the serialised faiss index; vector i is document i
    docnos.txt     one docno per line, in index order
    langs.npy      int16 per document: its position in pt_meta.json's "langs" (-1 = unknown)
    language_identity.npz   only with language removal: the per-language document statistics (see
                   :mod:`~pyterrier_hybrid.language_identity`); index.faiss then holds the vectors with it removed

The directory is built under a temporary name and renamed into place when complete,
so an interrupted build never leaves a directory that loads. :meth:`FaissIndex.from_vectors`
builds an exact index in memory instead, with no directory at all.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import faiss
import numpy as np
import pandas as pd
import pyterrier as pt
from tqdm.auto import tqdm

from ir_datasets_ext import id_lang

from ._atomic import atomic_directory
from ._checks import require_columns
from .language_identity import METHODS as REMOVAL_METHODS, LanguageIdentity

INDEX_TYPES = ("flat", "hnsw", "ivf")
#: queries per BLAS product in exact search (BLAS rounds differently for other block sizes: keep it fixed)
QUERY_BLOCK = 256
_FILES = ("index.faiss", "docnos.txt", "langs.npy")
_LANGUAGE_FILE = "language_identity.npz"


class CorruptIndexError(ValueError):
    """An index directory is incomplete or does not match its checksums."""


@dataclass(frozen=True)
class _Contents:
    """What a FaissIndex searches: read from its directory, or built in memory."""
    faiss_index: faiss.Index     # vector i is document i
    index_type: str              # one of INDEX_TYPES
    docnos: np.ndarray           # object array of str, in index order
    lang_names: List[str]        # the languages, in order of first appearance
    lang_codes: np.ndarray       # int16 per document: position in lang_names, -1 = unknown
    language: Optional[LanguageIdentity] = None  # removed from the stored vectors; applied to queries at search


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _new_faiss(index_type: str, dim: int, hnsw_m: int, ivf_nlist: int) -> faiss.Index:
    if index_type == "flat":
        return faiss.IndexFlatIP(dim)
    if index_type == "hnsw":
        return faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
    return faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, ivf_nlist, faiss.METRIC_INNER_PRODUCT)


class FaissIndex(pt.Artifact, pt.Indexer):
    """A dense index over ``doc_vec`` vectors with per-document languages; scores are inner products.

    Index with ``encoder.doc_encoder() >> FaissIndex(path)`` and ``.index(corpus_iter)``;
    search with :meth:`retriever`. ``pt.Artifact.load(path)`` returns a ``FaissIndex``.
    :meth:`from_vectors` builds one in memory from vectors already at hand.

    Args:
        path: the index directory.
        index_type: ``"flat"`` (exact, the default), ``"hnsw"`` or ``"ivf"`` (approximate).
        hnsw_m: neighbours per node for HNSW.
        ivf_nlist: number of IVF cells; IVF trains on the first ``40 * ivf_nlist`` documents.
        overwrite: replace an existing index at ``path`` when indexing.
        verbose: show progress bars.
        language_removal: ``"center"`` or ``"lir"``: remove each document's language identity before it is stored,
            estimated from the indexed documents (a flat index; every document needs a ``lang``), and from each
            query at search time (see :mod:`~pyterrier_hybrid.language_identity`). The statistics are stored in
            the index and apply by themselves when it is loaded.
        lir_k: directions ``"lir"`` projects out (default: languages - 1).
        language_stats: statistics estimated elsewhere (:meth:`LanguageIdentity.fit` on another corpus) to use
            instead of estimating them from the indexed documents; any index type.
    """

    ARTIFACT_TYPE = "dense_index"
    ARTIFACT_FORMAT = "hybrid_faiss"

    def __init__(self, path: str | Path, *, index_type: str = "flat", hnsw_m: int = 32, ivf_nlist: int = 256,
                 overwrite: bool = False, verbose: bool = False, language_removal: Optional[str] = None,
                 lir_k: Optional[int] = None, language_stats: Optional[LanguageIdentity] = None):
        super().__init__(path)
        if index_type not in INDEX_TYPES:
            raise ValueError(f"index_type={index_type!r} is not supported; use one of {INDEX_TYPES}")
        _check_removal(language_removal, lir_k, language_stats, index_type)
        self.language_removal, self.lir_k, self.language_stats = language_removal, lir_k, language_stats
        self.index_type, self.hnsw_m, self.ivf_nlist = index_type, hnsw_m, ivf_nlist
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
        _check_removal(language_removal, lir_k, language_stats, "flat")
        lang_names: List[str] = []
        codes = _lang_codes([None] * len(vecs) if langs is None else langs, lang_names)
        language = language_stats
        if language_removal and language is None:
            language = _fit_language(vecs, codes, lang_names, language_removal, lir_k)
        if language is not None:
            vecs = language.transform(vecs, _names(codes, lang_names))
        flat = faiss.IndexFlatIP(vecs.shape[1])
        flat.add(vecs)
        index = cls(pt.Artifact.NO_PATH)
        index._loaded = _Contents(flat, "flat", np.array(docnos, dtype=object), lang_names, codes, language)
        return index

    # ---- reading ----------------------------------------------------------------------------
    def _contents(self) -> _Contents:
        if self._loaded is None:
            self._loaded = self._read(Path(self.path))
        return self._loaded

    def _read(self, root: Path) -> _Contents:
        """Load and check an index directory: its type, every file's md5 and the counts."""
        meta_path = root / "pt_meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{root} is not a FaissIndex (no pt_meta.json); "
                                    "build one with (encoder.doc_encoder() >> FaissIndex(path)).index(docs)")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as e:
            raise CorruptIndexError(f"{meta_path} is not valid json ({e}); the index is corrupt, rebuild it") from None
        if (meta.get("type"), meta.get("format")) != (self.ARTIFACT_TYPE, self.ARTIFACT_FORMAT):
            raise ValueError(f"{root} holds a {meta.get('type')}.{meta.get('format')} artifact, "
                             f"not a {self.ARTIFACT_TYPE}.{self.ARTIFACT_FORMAT} FaissIndex; load it with pt.Artifact.load")
        removal = meta.get("language_removal")
        for name in _FILES + ((_LANGUAGE_FILE,) if removal else ()):
            if not (root / name).is_file():
                raise CorruptIndexError(f"{root} is missing {name}; the index is incomplete, rebuild it")
            if _md5(root / name) != meta["md5"][name]:
                raise CorruptIndexError(f"{root / name} does not match the md5 in pt_meta.json; "
                                        "the index is corrupt, rebuild it")
        index = faiss.read_index(str(root / "index.faiss"))
        docnos = np.array((root / "docnos.txt").read_text(encoding="utf-8").split("\n")[:-1], dtype=object)
        codes = np.load(root / "langs.npy")
        if not (index.ntotal == len(docnos) == len(codes) == meta["doc_count"]):
            raise CorruptIndexError(f"{root} is inconsistent: {index.ntotal} vectors, {len(docnos)} docnos, "
                                    f"{len(codes)} langs, doc_count {meta['doc_count']}; rebuild it")
        language = LanguageIdentity.from_bytes((root / _LANGUAGE_FILE).read_bytes()) if removal else None
        return _Contents(index, meta["index_type"], docnos, list(meta["langs"]), codes, language)

    def _where(self) -> str:
        """The index's name in messages."""
        return "this in-memory index" if self.path is pt.Artifact.NO_PATH else str(self.path)

    def __len__(self) -> int:
        return len(self._contents().docnos)

    @property
    def dim(self) -> int:
        """The vector size."""
        return self._contents().faiss_index.d

    @property
    def langs(self) -> List[str]:
        """The document languages present in the index."""
        return list(self._contents().lang_names)

    @property
    def language_identity(self) -> Optional[LanguageIdentity]:
        """The language statistics removed from the stored vectors (and from queries at search), or None."""
        return self._contents().language

    def prepare_queries(self, query_vecs: np.ndarray, query_langs: Optional[Sequence[str]] = None) -> np.ndarray:
        """Query vectors as this index compares them: float32, checked, and with the language identity removed
        when the index removes it (``"center"`` needs ``query_langs``).

        Args:
            query_vecs: ``[n_queries, dim]`` query vectors.
            query_langs: each query's language.
        """
        q = self._queries(query_vecs)
        language = self._contents().language
        return q if language is None else language.transform(q, query_langs)

    @property
    def docnos(self) -> np.ndarray:
        """Every docno in index order (an object array): document position i, as in ``docid``, is ``docnos[i]``."""
        return self._contents().docnos

    def lang_ids(self, langs: Optional[Sequence[str]]) -> Optional[np.ndarray]:
        """Positions of the documents in ``langs``; ``None`` when that is every document (no filter needed).

        Args:
            langs: languages to keep, or ``None`` for every document.
        """
        if langs is None:
            return None
        c = self._contents()
        unknown = [lang for lang in langs if lang not in c.lang_names]
        if unknown:
            raise ValueError(f"unknown language filter {unknown}; this index has {c.lang_names}")
        wanted = [c.lang_names.index(lang) for lang in langs]
        ids = np.flatnonzero(np.isin(c.lang_codes, wanted)).astype(np.int64)
        return None if len(ids) == len(c.docnos) else ids

    def _queries(self, query_vecs: np.ndarray) -> np.ndarray:
        q = np.ascontiguousarray(query_vecs, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"query vectors have shape {q.shape}, but {self._where()} holds {self.dim}-dimensional "
                             "vectors; encode queries with the model that built the index")
        return q

    def search(self, query_vecs: np.ndarray, k: Optional[int], langs: Optional[Sequence[str]] = None,
               *, query_langs: Optional[Sequence[str]] = None, nprobe: int = 16,
               ef_search: int = 128) -> Tuple[np.ndarray, np.ndarray]:
        """Top-``k`` inner-product search.

        Args:
            query_vecs: ``[n_queries, dim]`` query vectors.
            k: results per query; ``None`` for every (allowed) document.
            langs: only search documents in these languages.
            query_langs: each query's language, for an index that removes language identity by centring.
            nprobe: IVF cells to visit.
            ef_search: HNSW search breadth.

        Returns:
            ``(scores, ids)``, each ``[n_queries, k]``; ``ids`` are document positions, ``-1`` where an
            approximate index found fewer than ``k``.
        """
        c = self._contents()
        q = self.prepare_queries(query_vecs, query_langs)
        ids = self.lang_ids(langs)
        allowed = len(c.docnos) if ids is None else len(ids)
        k = allowed if k is None else min(k, allowed)
        if k == 0 or len(q) == 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        if c.index_type == "flat":
            return _exact_search(q, self._vectors(ids), k, ids)
        sel = None if ids is None else faiss.IDSelectorBatch(ids)
        if c.index_type == "ivf":
            params = faiss.SearchParametersIVF(sel=sel, nprobe=nprobe)
        else:
            params = faiss.SearchParametersHNSW(sel=sel, efSearch=max(ef_search, k))
        return c.faiss_index.search(q, k, params=params)

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
        index_type = self._contents().index_type
        if index_type != "flat":
            raise ValueError(f"scores() needs exact vectors; {self._where()} is a {index_type} index")
        ids = self.lang_ids(langs)
        vecs = self._vectors(ids)
        return self.prepare_queries(query_vecs, query_langs) @ vecs.T, (np.arange(len(vecs)) if ids is None else ids)

    def _vectors(self, ids: Optional[np.ndarray]) -> np.ndarray:
        """A flat index's vectors: all of them (a view), or documents ``ids`` (a cached copy per subset)."""
        index = self._contents().faiss_index
        vecs = faiss.rev_swig_ptr(index.get_xb(), index.ntotal * index.d).reshape(index.ntotal, index.d)
        if ids is None:
            return vecs
        key = (len(ids), int(ids[0]), int(ids[-1]), hash(ids.tobytes()))
        if key not in self._subsets:
            self._subsets[key] = np.ascontiguousarray(vecs[ids])
        return self._subsets[key]

    def retriever(self, encoder=None, *, num_results: Optional[int] = 1000, langs: Optional[Sequence[str]] = None,
                  query_lang: Optional[str] = None, nprobe: int = 16, ef_search: int = 128) -> pt.Transformer:
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
        """
        self.lang_ids(langs)  # fail now on an unknown language
        language = self._contents().language
        if query_lang is not None and language is not None and language.method == "center":
            language.codes([query_lang])  # fail now on a language the index has no statistics for
        retr = FaissRetriever(self, num_results=num_results, langs=langs, query_lang=query_lang, nprobe=nprobe,
                              ef_search=ef_search)
        return retr if encoder is None else encoder.query_encoder() >> retr

    # ---- writing ----------------------------------------------------------------------------
    def index(self, inp: Iterable[Dict]) -> "FaissIndex":
        """Index an iterable of dicts with ``docno``, ``doc_vec`` and optionally ``lang``.

        Vectors are added in chunks as they arrive; only the faiss index grows with the corpus.

        Args:
            inp: the documents, e.g. ``encoder.doc_encoder()`` output over a corpus iterator.
        """
        if self.path is pt.Artifact.NO_PATH:
            raise ValueError("an in-memory FaissIndex (from_vectors) has no directory to index into; "
                             "use FaissIndex(path).index(docs)")
        final = Path(self.path)
        if final.exists() and not self.overwrite:
            raise FileExistsError(f"{final} already exists; pass overwrite=True to replace it")
        atomic_directory(final, lambda tmp: self._write(tmp, inp))
        self._loaded, self._subsets = None, {}
        return self

    def _as_stored(self, vecs: np.ndarray, codes: np.ndarray, lang_names: List[str]) -> np.ndarray:
        """The chunk's vectors as stored: with given language statistics removed (estimated ones come later)."""
        if self.language_stats is None:
            return vecs
        return self.language_stats.transform(vecs, _names(codes, lang_names))

    def _write(self, root: Path, inp: Iterable[Dict]) -> None:
        index: Optional[faiss.Index] = None
        lang_names: List[str] = []
        codes: List[np.ndarray] = []
        pending: List[np.ndarray] = []  # IVF: vectors held until there are enough to train on
        n = 0
        train_size = 40 * self.ivf_nlist
        with open(root / "docnos.txt", "w", encoding="utf-8") as f_docnos:
            for chunk in _chunks(tqdm(inp, desc="indexing", unit="doc", disable=not self.verbose), 4096):
                vecs, chunk_codes = _check_chunk(chunk, n, lang_names, index.d if index else None)
                vecs = self._as_stored(vecs, chunk_codes, lang_names)
                if index is None:
                    index = _new_faiss(self.index_type, vecs.shape[1], self.hnsw_m, self.ivf_nlist)
                f_docnos.write("".join(d["docno"] + "\n" for d in chunk))
                codes.append(chunk_codes)
                n += len(chunk)
                if index.is_trained:
                    index.add(vecs)
                    continue
                pending.append(vecs)
                if n >= train_size:
                    _train_and_add(index, pending)
        if index is None:
            raise ValueError("nothing to index: the input had no documents")
        if not index.is_trained:
            if n < self.ivf_nlist:
                raise ValueError(f"index_type='ivf' with ivf_nlist={self.ivf_nlist} needs at least that many "
                                 f"documents, got {n}; lower ivf_nlist or use index_type='flat'")
            _train_and_add(index, pending)
        all_codes = np.concatenate(codes)
        language = self.language_stats
        if self.language_removal and language is None:  # estimated from the stored vectors, removed in place
            vecs = faiss.rev_swig_ptr(index.get_xb(), index.ntotal * index.d).reshape(index.ntotal, index.d)
            language = _fit_language(vecs, all_codes, lang_names, self.language_removal, self.lir_k)
            vecs[:] = language.transform(vecs, _names(all_codes, lang_names))
        faiss.write_index(index, str(root / "index.faiss"))
        np.save(root / "langs.npy", all_codes)
        files = _FILES
        if language is not None:
            (root / _LANGUAGE_FILE).write_bytes(language.to_bytes())
            files = _FILES + (_LANGUAGE_FILE,)
        meta = {
            "type": self.ARTIFACT_TYPE, "format": self.ARTIFACT_FORMAT, "package_hint": "pyterrier-hybrid",
            "doc_count": n, "dim": index.d, "index_type": self.index_type, "langs": lang_names,
            "language_removal": None if language is None else language.describe(),
            "md5": {name: _md5(root / name) for name in files},
        }
        (root / "pt_meta.json").write_text(json.dumps(meta, indent=2))


def _check_removal(method: Optional[str], k: Optional[int], stats: Optional[LanguageIdentity], index_type: str) -> None:
    if method is not None and stats is not None:
        raise ValueError("give language_removal (estimate from the indexed documents) or language_stats (estimated "
                         "elsewhere), not both")
    if method is not None and method not in REMOVAL_METHODS:
        raise ValueError(f"language_removal={method!r} is not supported; use one of {REMOVAL_METHODS}")
    if k is not None and method != "lir":
        raise ValueError("lir_k applies to language_removal='lir' only")
    if method is not None and index_type != "flat":
        raise ValueError(f"estimating language statistics from the indexed documents needs index_type='flat' (the "
                         f"vectors must all be seen before a {index_type} index stores them); estimate them on a sample "
                         "with LanguageIdentity.fit and pass language_stats=")


def _names(codes: np.ndarray, lang_names: List[str]) -> List[Optional[str]]:
    return [lang_names[c] if c >= 0 else None for c in codes]


def _fit_language(vecs: np.ndarray, codes: np.ndarray, lang_names: List[str], method: str,
                  k: Optional[int]) -> LanguageIdentity:
    if (codes < 0).any():
        raise ValueError(f"{int((codes < 0).sum())} documents have no 'lang'; language removal needs every document's "
                         "language (ir_datasets docs with a lang field, or a 'lang' column)")
    return LanguageIdentity.fit(vecs, _names(codes, lang_names), method, k)


def _exact_search(q: np.ndarray, vecs: np.ndarray, k: int, ids: Optional[np.ndarray],
                  block: int = QUERY_BLOCK) -> Tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product: a BLAS product and a (partial) sort, a block of queries at a time.

    For the full ranking of a large pool (what AP needs) this is 2.7x faster than faiss's heap-based flat
    search on the same vectors, and 1.2x on a one-language subset (benchmarks/retrieve.py, docs/benchmarks.md).
    """
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
    return scores, (pos if ids is None else ids[pos])


def _chunks(it: Iterable[Dict], size: int) -> Iterator[List[Dict]]:
    chunk: List[Dict] = []
    for item in it:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _check_chunk(chunk: List[Dict], offset: int, lang_names: List[str], dim: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
    """Validate one chunk of documents; return its vectors and language codes (``lang_names`` grows)."""
    first = chunk[0]
    for col in ("docno", "doc_vec"):
        if col not in first:
            raise KeyError(f"FaissIndex.index needs '{col}' in every document, but document {offset} has "
                           f"{sorted(first)}; index with encoder.doc_encoder() >> FaissIndex(path)")
    _check_docnos([d.get("docno") for d in chunk], offset)
    codes = _lang_codes([d.get("lang") for d in chunk], lang_names)
    try:
        vecs = np.stack([d["doc_vec"] for d in chunk])
    except (KeyError, ValueError) as e:
        raise ValueError(f"documents {offset}..{offset + len(chunk) - 1} have missing or ragged doc_vec ({e})") from None
    return _check_vectors(vecs, offset, dim), codes


def _check_docnos(docnos: Sequence, offset: int) -> None:
    for i, docno in enumerate(docnos):
        if not isinstance(docno, str) or not docno or "\n" in docno or "\r" in docno:
            raise ValueError(f"document {offset + i} has docno {docno!r}; docnos must be non-empty one-line strings "
                             "(no line breaks: \\n or \\r)")


def _lang_codes(langs: Sequence[Optional[str]], lang_names: List[str]) -> np.ndarray:
    """Each language's position in ``lang_names`` (-1 for ``None``), adding new languages as they come."""
    codes = np.empty(len(langs), dtype=np.int16)
    for i, lang in enumerate(langs):
        if lang is None:
            codes[i] = -1
            continue
        if lang not in lang_names:
            lang_names.append(lang)
        codes[i] = lang_names.index(lang)
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


def _train_and_add(index: faiss.Index, pending: List[np.ndarray]) -> None:
    vecs = np.concatenate(pending)
    index.train(vecs)
    index.add(vecs)
    pending.clear()


class FaissRetriever(pt.Transformer):
    """Searches a :class:`FaissIndex` with the ``query_vec`` column. Use :meth:`FaissIndex.retriever`."""

    def __init__(self, index: FaissIndex, *, num_results: Optional[int], langs: Optional[Sequence[str]],
                 query_lang: Optional[str], nprobe: int, ef_search: int):
        self.index, self.num_results, self.langs, self.query_lang = index, num_results, langs, query_lang
        self.nprobe, self.ef_search = nprobe, ef_search

    def _query_langs(self, inp: pd.DataFrame) -> Optional[List[str]]:
        """Each query's language, when the index needs it (centring): query_lang=, a lang column, or the qid."""
        language = self.index.language_identity
        if language is None or language.method != "center":
            return None
        if self.query_lang is not None:
            return [self.query_lang] * len(inp)
        if "lang" in inp.columns:
            return list(inp["lang"])
        qids = [str(q) for q in inp["qid"]]
        if not all(":" in q for q in qids):
            raise ValueError("this index removes language identity by centring and needs each query's language: give "
                             "retriever(query_lang=...), a 'lang' column, or qids with a '<lang>:' prefix")
        return [id_lang(q) for q in qids]

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        require_columns(inp, ["qid", "query_vec"], "FaissRetriever",
                        "Put encoder.query_encoder() before it, or use index.retriever(encoder).")
        rest = inp.drop(columns=["query_vec", "docno", "docid", "score", "rank"], errors="ignore")
        if len(inp) == 0:
            return rest.assign(docno=pd.Series(dtype=object), docid=pd.Series(dtype=np.int64),
                               score=pd.Series(dtype=np.float32), rank=pd.Series(dtype=np.int64))
        scores, ids = self.index.search(np.stack(inp["query_vec"]), self.num_results, self.langs,
                                        query_langs=self._query_langs(inp), nprobe=self.nprobe,
                                        ef_search=self.ef_search)
        keep = ids >= 0
        per_query = keep.sum(1)
        docnos = self.index.docnos
        out = rest.iloc[np.repeat(np.arange(len(rest)), per_query)].reset_index(drop=True)
        return out.assign(
            docno=docnos[ids[keep]],
            docid=ids[keep],
            score=scores[keep],
            rank=np.concatenate([np.arange(c) for c in per_query]),
        )

    def __repr__(self) -> str:
        return (f"FaissRetriever({self.index._where()!r}, num_results={self.num_results}, langs={self.langs}"
                + (f", query_lang={self.query_lang!r})" if self.query_lang else ")"))
