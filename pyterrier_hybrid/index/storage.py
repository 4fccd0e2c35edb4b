"""The on-disk format of a FaissIndex: streamed writing, checked reading, lazy docnos.

Layout of format version 3 (a directory)::

    pt_meta.json     type/format for pt.Artifact.load, format_version, doc_count, dim, index_type, factory,
                     langs, language_removal, encoder (the identity of the model that encoded the documents, or
                     null), and each file's size and md5
    vectors.f32      flat indexes: float32 [doc_count, dim], row i is document i (language identity removed
                     when the index removes it); searched block by block, never loaded whole when large
    index.faiss      other types: the faiss index built from those vectors (which are then not kept)
    docnos.txt       one docno per line, in index order
    docnos.offsets   int64 [doc_count + 1]: where each line starts in docnos.txt
    langs.i16        int16 [doc_count]: each document's position in pt_meta.json's "langs" (-1 = unknown)
    language_identity.npz   only with language removal (see :mod:`~pyterrier_hybrid.index.language_identity`)

Everything is written as it streams in, so memory does not grow with the corpus. Version 2 (the same, without
``encoder``) is still read, as an index that records no encoder. :class:`IndexMeta` is the one reader and writer
of ``pt_meta.json`` and the language statistics.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from dataclasses import dataclass, field
from typing import BinaryIO, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .language_identity import LanguageIdentity

logger = logging.getLogger(__name__)

ARTIFACT_TYPE, ARTIFACT_FORMAT = "dense_index", "hybrid_faiss"
FORMAT_VERSION = 3
#: versions this release reads: 2 lacks only ``encoder``
READABLE_VERSIONS = (2, 3)
META = "pt_meta.json"
VECTORS, FAISS, DOCNOS, OFFSETS, LANGS, LANGUAGE = ("vectors.f32", "index.faiss", "docnos.txt", "docnos.offsets",
                                                    "langs.i16", "language_identity.npz")
#: md5s are checked at load up to this many bytes in all; a larger index checks sizes, and ``verify()`` the rest
VERIFY_BYTES = 1 << 30
#: documents per block when vectors are read from disk (about 400 MB at 384-d)
READ_BLOCK = 1 << 18
#: up to this many docnos are decoded once into an array on first use (2M short strings: about 150 MB)
DOCNO_CACHE = 1 << 21


class CorruptIndexError(ValueError):
    """An index directory is incomplete or does not match its checksums."""


def md5_file(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


class _HashedFile:
    """A file written append-only, hashed as it is written."""

    def __init__(self, path: Path):
        self.path, self.f, self.md5, self.size = path, open(path, "wb"), hashlib.md5(), 0

    def write(self, data: bytes) -> None:
        self.f.write(data)
        self.md5.update(data)
        self.size += len(data)

    def close(self) -> Dict[str, object]:
        self.f.close()
        return {"size": self.size, "md5": self.md5.hexdigest()}


class StoreWriter:
    """Streams documents into an index directory: vectors, docnos and languages, chunk by chunk.

    Per-language sums of the vectors are kept as they pass, so language statistics can be estimated without
    a second read; so is a hash of each docno (8 bytes a document), so duplicates are found at the end with one
    sort instead of a set of every docno.
    """

    def __init__(self, root: Path):
        self.root = root
        self.files = {name: _HashedFile(root / name) for name in (VECTORS, DOCNOS, OFFSETS, LANGS)}
        self.files[OFFSETS].write(np.zeros(1, np.int64).tobytes())
        self.n, self.dim, self.lang_names = 0, None, []  # type: int, Optional[int], List[str]
        self.sums: List[np.ndarray] = []
        self.counts: List[int] = []
        self._hashes: List[np.ndarray] = []

    def add(self, docnos: Sequence[str], vecs: np.ndarray, langs: Sequence[Optional[str]]) -> None:
        """Append one chunk: ``vecs`` float32 ``[n, dim]``, each document's language (``None`` when unknown)."""
        codes = self._codes(langs)
        self.dim = vecs.shape[1]
        data = [d.encode("utf-8") + b"\n" for d in docnos]
        ends = self.files[DOCNOS].size + np.cumsum([len(d) for d in data], dtype=np.int64)
        self.files[DOCNOS].write(b"".join(data))
        self.files[OFFSETS].write(ends.tobytes())
        self.files[VECTORS].write(np.ascontiguousarray(vecs, dtype=np.float32).tobytes())
        self.files[LANGS].write(codes.tobytes())
        self._hashes.append(np.fromiter((hash(d) for d in docnos), dtype=np.int64, count=len(docnos)))
        while len(self.sums) < len(self.lang_names):
            self.sums.append(np.zeros(self.dim, np.float64))
            self.counts.append(0)
        for code in np.unique(codes[codes >= 0]):
            rows = vecs[codes == code]
            self.sums[code] += rows.sum(axis=0, dtype=np.float64)
            self.counts[code] += len(rows)
        self.n += len(vecs)

    def _codes(self, langs: Sequence[Optional[str]]) -> np.ndarray:
        """Each language's position in :attr:`lang_names` (-1 for ``None``), adding new languages as they come."""
        codes = np.empty(len(langs), dtype=np.int16)
        position = {lang: i for i, lang in enumerate(self.lang_names)}
        for i, lang in enumerate(langs):
            if lang is None:
                codes[i] = -1
                continue
            if lang not in position:
                position[lang] = len(self.lang_names)
                self.lang_names.append(lang)
            codes[i] = position[lang]
        return codes

    def fit_language(self, method: str, k: Optional[int]) -> LanguageIdentity:
        """Language statistics of every document written so far (every document needs a language)."""
        known = sum(self.counts)
        if known < self.n:
            raise missing_langs(self.n - known)
        return LanguageIdentity.from_sums(self.lang_names, np.stack(self.sums), self.counts, method, k)

    def close(self) -> Dict[str, Dict[str, object]]:
        return {name: f.close() for name, f in self.files.items()}

    def duplicate(self) -> Optional[Tuple[str, int, int]]:
        """After :meth:`close`: ``(docno, first position, second position)`` of the docno written twice whose second
        copy comes first, or None when every docno is unique."""
        if not self._hashes:
            return None
        docnos = DocnoArray(self.root / DOCNOS, self.root / OFFSETS, self.n)
        return first_duplicate(np.concatenate(self._hashes), docnos)


def first_duplicate(hashes: np.ndarray, docnos: Sequence[str]) -> Optional[Tuple[str, int, int]]:
    """``(docno, first position, second position)`` of the earliest repeated docno, or None.

    Args:
        hashes: a hash of each docno; only positions whose hashes collide are compared by their docnos.
        docnos: the docnos, indexable by position.
    """
    order = np.argsort(hashes, kind="stable")
    ranked = hashes[order]
    found: Optional[Tuple[str, int, int]] = None
    for h in np.unique(ranked[1:][ranked[1:] == ranked[:-1]]):  # hashes seen more than once
        seen: Dict[str, int] = {}
        for pos in np.sort(order[np.searchsorted(ranked, h):np.searchsorted(ranked, h, side="right")]):
            docno = docnos[int(pos)]
            if docno in seen and (found is None or pos < found[2]):
                found = (docno, seen[docno], int(pos))
            seen.setdefault(docno, int(pos))
    return found


def missing_langs(count: int) -> ValueError:
    """The error for documents without a language when language removal is estimated from them."""
    return ValueError(f"{count} documents have no 'lang'; language removal needs every document's language "
                      "(ir_datasets docs with a lang field, or a 'lang' column)")


def transform_in_place(path: Path, dim: int, language: LanguageIdentity, codes: np.ndarray,
                       lang_names: List[str]) -> Dict[str, object]:
    """Remove language identity from a vectors file block by block; return its new size and md5."""
    h = hashlib.md5()
    with open(path, "r+b") as f:
        for start, block in iter_blocks(f, len(codes), dim):
            names = [lang_names[c] for c in codes[start:start + len(block)]]
            out = np.ascontiguousarray(language.transform(block, names), dtype=np.float32).tobytes()
            f.seek(start * dim * 4)
            f.write(out)
            h.update(out)
    return {"size": path.stat().st_size, "md5": h.hexdigest()}


def iter_blocks(f: BinaryIO, n: int, dim: int, block: int = READ_BLOCK) -> Iterator[Tuple[int, np.ndarray]]:
    """``(first row, rows)`` of a float32 ``[n, dim]`` file, ``block`` rows at a time (fresh arrays, not a map)."""
    for start in range(0, n, block):
        f.seek(start * dim * 4)
        count = min(block, n - start) * dim
        rows = np.fromfile(f, dtype=np.float32, count=count)
        if rows.size != count:
            raise CorruptIndexError(f"{getattr(f, 'name', 'vectors')} ends early at row {start}; rebuild the index")
        yield start, rows.reshape(-1, dim)


def file_entry(path: Path) -> Dict[str, object]:
    """A written file's size and md5, as ``files`` in pt_meta.json lists them."""
    return {"size": path.stat().st_size, "md5": md5_file(path)}


@dataclass
class IndexMeta:
    """Every fact about an index: what ``pt_meta.json`` and ``language_identity.npz`` hold, read and written here only.

    Args:
        doc_count: documents in the index.
        dim: the vector size.
        index_type: the type it was built as: ``"flat"``, ``"hnsw"``, ``"ivf"`` or a faiss factory string.
        factory: the faiss factory string it was built from; None for flat (exact search over ``vectors.f32``).
        langs: the document languages, in order of first appearance.
        language: the language statistics removed from the stored vectors, or None.
        encoder: the identity of the model that encoded the documents (see
            :mod:`~pyterrier_hybrid.index.encoder_identity`), or None when it was not recorded.
        files: each file's size and md5.
        format_version: the format it was written in.
    """
    doc_count: int
    dim: int
    index_type: str
    factory: Optional[str]
    langs: List[str]
    language: Optional[LanguageIdentity] = None
    encoder: Optional[dict] = None
    files: Dict[str, dict] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def language_removal(self) -> Optional[str]:
        """The removal method (``"center"`` or ``"lir"``), or None."""
        return None if self.language is None else self.language.method

    def write(self, root: Path) -> None:
        """Write the language statistics (when any) and ``pt_meta.json``, the last file of a build."""
        if self.language is not None:
            (root / LANGUAGE).write_bytes(self.language.to_bytes())
            self.files[LANGUAGE] = file_entry(root / LANGUAGE)
        (root / META).write_text(json.dumps({
            "type": ARTIFACT_TYPE, "format": ARTIFACT_FORMAT, "format_version": self.format_version,
            "package_hint": "pyterrier-hybrid", "doc_count": self.doc_count, "dim": self.dim,
            "index_type": self.index_type, "factory": self.factory, "langs": self.langs,
            "language_removal": None if self.language is None else self.language.describe(),
            "encoder": self.encoder, "files": self.files}, indent=2))

    @classmethod
    def read(cls, root: Path) -> "IndexMeta":
        """Read and check an index directory's metadata: its type and format version, every file's size (and md5,
        up to :data:`VERIFY_BYTES`), and that the files hold ``doc_count`` documents."""
        meta = _read_json(root)
        _check_files(root, meta["files"])
        n, dim = int(meta["doc_count"]), int(meta["dim"])
        for name, size in [(OFFSETS, 8 * (n + 1)), (LANGS, 2 * n)] + (
                [(VECTORS, 4 * n * dim)] if VECTORS in meta["files"] else []):
            if meta["files"][name]["size"] != size:
                raise CorruptIndexError(f"{root / name} does not hold {n} documents; the index is corrupt, rebuild it")
        language = LanguageIdentity.from_bytes((root / LANGUAGE).read_bytes()) if meta.get("language_removal") else None
        return cls(n, dim, meta["index_type"], meta["factory"], list(meta["langs"]), language, meta.get("encoder"),
                   meta["files"], meta["format_version"])

    def verify(self, root: Path) -> None:
        """Check every file's md5; a CorruptIndexError naming the first that differs."""
        _verify_md5(root, self.files)


def _read_json(root: Path) -> dict:
    """``pt_meta.json``, checked for the artifact type and a readable format version."""
    path = root / META
    if not path.is_file():
        raise FileNotFoundError(f"{root} is not a FaissIndex (no {META}); "
                                "build one with (encoder.doc_encoder() >> FaissIndex(path)).index(docs)")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CorruptIndexError(f"{path} is not valid json ({e}); the index is corrupt, rebuild it") from None
    if (meta.get("type"), meta.get("format")) != (ARTIFACT_TYPE, ARTIFACT_FORMAT):
        raise ValueError(f"{root} holds a {meta.get('type')}.{meta.get('format')} artifact, "
                         f"not a {ARTIFACT_TYPE}.{ARTIFACT_FORMAT} FaissIndex; load it with pt.Artifact.load")
    meta.setdefault("format_version", 1)  # the first release wrote none
    if meta["format_version"] not in READABLE_VERSIONS:
        raise CorruptIndexError(
            f"{root} is in FaissIndex format {meta['format_version']}, and this pyterrier-hybrid reads formats "
            f"{list(READABLE_VERSIONS)}; rebuild it with `pyterrier-hybrid index` (or "
            "FaissIndex(path, overwrite=True).index(docs))")
    return meta


def _check_files(root: Path, files: Dict[str, dict]) -> None:
    """Every listed file is present with its size; md5s are checked too when the index is small enough."""
    for name, want in files.items():
        path = root / name
        if not path.is_file():
            raise CorruptIndexError(f"{root} is missing {name}; the index is incomplete, rebuild it")
        if path.stat().st_size != want["size"]:
            raise CorruptIndexError(f"{path} has {path.stat().st_size} bytes, {META} says {want['size']}; "
                                    "the index is corrupt, rebuild it")
    total = sum(f["size"] for f in files.values())
    if total <= VERIFY_BYTES:
        _verify_md5(root, files)
    else:
        logger.info("%s: sizes checked; md5s of its %.1f GB are checked by FaissIndex.verify()", root, total / 1e9)


def _verify_md5(root: Path, files: Dict[str, dict]) -> None:
    for name, want in files.items():
        if md5_file(root / name) != want["md5"]:
            raise CorruptIndexError(f"{root / name} does not match the md5 in {META}; the index is corrupt, rebuild it")


class DocnoArray:
    """Docnos read from disk on demand: ``docnos[ids]`` gives an object array of str, without building every
    docno of a 10M-document index up front. An index of up to 2M documents decodes them all once, on first
    use, so that full rankings (millions of rows) index an array instead of decoding each row."""

    def __init__(self, text: Path, offsets: Path, n: int):
        self._text = np.memmap(text, dtype=np.uint8, mode="r") if n else np.zeros(0, np.uint8)
        self._offsets = np.memmap(offsets, dtype=np.int64, mode="r", shape=(n + 1,))
        self._n = n
        self._all: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, ids):
        if isinstance(ids, (int, np.integer)):
            i = int(ids) + (self._n if ids < 0 else 0)
            return bytes(self._text[self._offsets[i]:self._offsets[i + 1] - 1]).decode("utf-8")
        ids = np.arange(self._n)[ids] if isinstance(ids, slice) else np.asarray(ids, dtype=np.int64)
        if self._n <= DOCNO_CACHE:
            if self._all is None:
                self._all = self._decode(np.arange(self._n))
            return self._all[ids]
        unique, inverse = np.unique(ids, return_inverse=True)  # a ranking repeats docnos across its queries
        return self._decode(unique)[inverse]

    def _decode(self, ids: np.ndarray) -> np.ndarray:
        text = bytes(self._text[self._offsets[ids[0]]:self._offsets[ids[-1] + 1]]) if len(ids) else b""
        base = self._offsets[ids[0]] if len(ids) else 0
        out = np.empty(len(ids), dtype=object)
        for j, (a, b) in enumerate(zip(self._offsets[ids] - base, self._offsets[ids + 1] - 1 - base)):
            out[j] = text[a:b].decode("utf-8")
        return out

    def __iter__(self):
        return (self[i] for i in range(self._n))

    def __array__(self, dtype=None, copy=None):
        return self[np.arange(self._n)]
