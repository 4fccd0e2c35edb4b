"""Dense indexing and search: :class:`FaissIndex` (streamed to disk, searched in blocks or through faiss),
its retriever, and sharded indexing over processes (:func:`index_corpus`)."""
from .faiss_index import FaissIndex
from .retriever import FaissRetriever
from .sharded import index_corpus
from .search import INDEX_TYPES, QUERY_BLOCK
from .storage import FORMAT_VERSION, CorruptIndexError

__all__ = ["CorruptIndexError", "FORMAT_VERSION", "FaissIndex", "FaissRetriever", "INDEX_TYPES", "QUERY_BLOCK", "index_corpus"]
