"""Language-identity removal: take the language-specific offset off multilingual vectors, from documents alone.

A multilingual encoder adds an offset per language to every vector, which is why same-language documents
outrank better foreign ones in a pooled corpus (rank distance). Two ways to remove it, both estimated from
document vectors only (never queries or labels), so they belong to an index as BM25's statistics do:

- ``"center"``: subtract from each vector the mean document vector of its language, then re-normalise. A query
  uses the document mean of the query's language, so its language must be known.
- ``"lir"``: project out the top-k principal directions of the per-language document means (k ≤ languages - 1),
  then re-normalise. The same projection applies to every vector, so a query's language is not needed.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

METHODS = ("center", "lir")


@dataclass(frozen=True)
class LanguageIdentity:
    """Per-language document statistics and the removal they define (see the module docstring).

    Build one with :meth:`fit`; :class:`~pyterrier_hybrid.FaissIndex` estimates and stores one when asked.

    Args:
        method: ``"center"`` or ``"lir"``.
        langs: the document languages, in order.
        means: ``[len(langs), dim]`` float32, each language's mean document vector.
        counts: documents per language the means were estimated from.
        basis: ``"lir"`` only: ``[k, dim]`` orthonormal rows, the directions projected out.
    """
    method: str
    langs: Tuple[str, ...]
    means: np.ndarray
    counts: Tuple[int, ...]
    basis: Optional[np.ndarray] = None

    @classmethod
    def fit(cls, doc_vecs: np.ndarray, doc_langs: Sequence[str], method: str = "center",
            k: Optional[int] = None) -> "LanguageIdentity":
        """Estimate from document vectors and their languages.

        Args:
            doc_vecs: ``[n_docs, dim]`` document vectors.
            doc_langs: each document's language (every document needs one).
            method: ``"center"`` or ``"lir"``.
            k: ``"lir"``: directions to project out, at most languages - 1 (default: languages - 1).
        """
        if method not in METHODS:
            raise ValueError(f"language removal {method!r} is not supported; use one of {METHODS}")
        vecs = np.asarray(doc_vecs, dtype=np.float32)
        if vecs.ndim != 2 or len(vecs) != len(doc_langs) or len(vecs) == 0:
            raise ValueError(f"give one language per document vector: {vecs.shape} vectors, {len(doc_langs)} languages")
        missing = sum(lang is None or lang == "" for lang in doc_langs)
        if missing:
            raise ValueError(f"{missing} documents have no language; language removal needs a 'lang' for every "
                             "document")
        langs, codes = np.unique(np.asarray(doc_langs, dtype=object).astype(str), return_inverse=True)
        sums = np.zeros((len(langs), vecs.shape[1]), dtype=np.float64)
        np.add.at(sums, codes, vecs)
        return cls.from_sums(list(langs), sums, np.bincount(codes, minlength=len(langs)), method, k)

    @classmethod
    def from_sums(cls, langs: Sequence[str], sums: np.ndarray, counts: Sequence[int], method: str = "center",
                  k: Optional[int] = None) -> "LanguageIdentity":
        """Estimate from per-language sums of document vectors, e.g. accumulated while a corpus streams past.

        Args:
            langs: the languages, one per row of ``sums``.
            sums: ``[len(langs), dim]`` sums of each language's document vectors.
            counts: documents per language (each at least 1).
            method, k: as for :meth:`fit`.
        """
        if method not in METHODS:
            raise ValueError(f"language removal {method!r} is not supported; use one of {METHODS}")
        order = np.argsort(np.asarray(langs, dtype=str), kind="stable")  # by name, whatever order they came in
        langs = [str(langs[i]) for i in order]
        sums, counts = np.asarray(sums, dtype=np.float64)[order], np.asarray(counts, dtype=np.int64)[order]
        if (counts < 1).any():
            raise ValueError("every language needs at least one document")
        means = (sums / counts[:, None]).astype(np.float32)
        basis = None
        if method == "lir":
            if len(langs) < 2:
                raise ValueError("'lir' needs documents in at least two languages: their means' differences are "
                                 "what it removes")
            k = len(langs) - 1 if k is None else k
            if not 1 <= k <= len(langs) - 1:
                raise ValueError(f"lir k={k} must be between 1 and languages - 1 = {len(langs) - 1}: the centred means "
                                 f"of {len(langs)} languages span at most {len(langs) - 1} directions")
            centred = means.astype(np.float64) - means.mean(axis=0, dtype=np.float64)
            basis = np.linalg.svd(centred, full_matrices=False)[2][:k].astype(np.float32)
        elif k is not None:
            raise ValueError("k applies to method='lir' only")
        return cls(method, tuple(langs), means, tuple(int(c) for c in counts), basis)

    @property
    def needs_query_lang(self) -> bool:
        """Whether removing it from a query needs the query's language: ``"center"`` subtracts that language's mean,
        ``"lir"`` projects every vector the same way."""
        return self.method == "center"

    @property
    def k(self) -> Optional[int]:
        """Directions projected out (``"lir"``), or None."""
        return None if self.basis is None else len(self.basis)

    def describe(self) -> dict:
        """What a report or an index's metadata records."""
        return {"method": self.method, "k": self.k, "langs": list(self.langs), "counts": list(self.counts)}

    def transform(self, vecs: np.ndarray, langs: Optional[Sequence[str]] = None) -> np.ndarray:
        """The vectors with the language identity removed, L2-normalised (a new float32 array).

        Args:
            vecs: ``[n, dim]`` vectors.
            langs: each vector's language; needed when :attr:`needs_query_lang` (a language without statistics is
                an error), ignored by ``"lir"``.
        """
        v = np.array(vecs, dtype=np.float32, copy=True)
        if v.ndim != 2 or v.shape[1] != self.means.shape[1]:
            raise ValueError(f"vectors of shape {v.shape} do not match the {self.means.shape[1]}-dimensional "
                             "language statistics; use the model that built the index")
        if self.needs_query_lang:
            if langs is None or len(langs) != len(v):
                raise ValueError("language removal 'center' subtracts the mean of each vector's language, so it needs "
                                 "each query's language: give retriever(query_lang=...) or a 'lang' column (for qids "
                                 "such as 'de:42', put pyterrier_hybrid.lang_from_qid() before the retriever)")
            v -= self.means[self.codes(langs)]
        else:
            v -= (v @ self.basis.T) @ self.basis
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        return v / np.maximum(norms, np.finfo(np.float32).tiny)

    def codes(self, langs: Sequence[str]) -> np.ndarray:
        """Each language's row in :attr:`means`; a language with no statistics is a clear error."""
        position = {lang: i for i, lang in enumerate(self.langs)}
        unknown = sorted({str(lang) for lang in langs if lang not in position})
        if unknown:
            raise ValueError(f"no language statistics for {unknown}: the documents they were estimated from are in "
                             f"{list(self.langs)}. Index documents in that language, or use language removal 'lir', "
                             "which needs no query language")
        return np.fromiter((position[lang] for lang in langs), dtype=np.int64, count=len(langs))

    def to_bytes(self) -> bytes:
        """An ``.npz`` of the statistics (no pickles)."""
        buf = io.BytesIO()
        arrays = {"means": self.means, "counts": np.asarray(self.counts, dtype=np.int64),
                  "langs": np.asarray(self.langs, dtype=str), "method": np.asarray(self.method)}
        if self.basis is not None:
            arrays["basis"] = self.basis
        np.savez(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "LanguageIdentity":
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls(str(z["method"]), tuple(str(x) for x in z["langs"]), z["means"].astype(np.float32),
                       tuple(int(c) for c in z["counts"]), z["basis"].astype(np.float32) if "basis" in z else None)
