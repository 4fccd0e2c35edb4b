"""The index: :class:`FaissIndex` (streamed to disk, searched in blocks or through faiss), its retriever, sharded
indexing over processes (:func:`index_corpus`), and the language identity removed at index time.

It may import the model package; it imports nothing from training or evaluation.
"""
from .faiss_index import FaissIndex
from .language_identity import LanguageIdentity
from .retriever import FaissRetriever
from .sharded import index_corpus
from .search import INDEX_TYPES, QUERY_BLOCK
from .storage import FORMAT_VERSION, CorruptIndexError

__all__ = ["CorruptIndexError", "FORMAT_VERSION", "FaissIndex", "FaissRetriever", "INDEX_TYPES", "LanguageIdentity",
           "QUERY_BLOCK", "index_corpus"]
