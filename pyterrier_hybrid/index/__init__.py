"""The index: :class:`FaissIndex` (a read-only Artifact, searched in blocks or through faiss) and its
:class:`FaissIndexer` (every build option, streamed to disk), its retriever, :func:`lang_from_qid`, sharded
indexing over processes (:func:`index_corpus`), the language identity removed at index time, and the encoder
identity an index records.

It may import the model package; it imports nothing from training or evaluation.
"""
from .faiss_index import FaissIndex
from .indexer import FaissIndexer
from .language_identity import LanguageIdentity
from .query_lang import lang_from_qid
from .retriever import FaissRetriever
from .sharded import index_corpus
from .search import INDEX_TYPES
from .storage import FORMAT_VERSION, CorruptIndexError, IndexMeta

__all__ = ["CorruptIndexError", "FORMAT_VERSION", "FaissIndex", "FaissIndexer", "FaissRetriever", "INDEX_TYPES",
           "IndexMeta", "LanguageIdentity", "index_corpus", "lang_from_qid"]
