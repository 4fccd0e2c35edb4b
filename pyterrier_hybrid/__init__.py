"""pyterrier-hybrid: multilingual dense retrieval trained with hybrid batches, for PyTerrier.

The stages a user walks through, each a sub-package: ``model`` (the encoder, precision, model directories, merging),
``index`` (faiss indexes that know each document's language), ``training`` (sources, samplers, the trainer) and
``evaluation`` (the LAReQA protocol, bias measures, any ir_datasets collection). Imports run one way, from evaluation
down to the model.
"""
import ir_datasets_ext  # noqa: F401  registers xquad-r / mlqa-r with ir_datasets

from .evaluation import (DenseRanker, QueryLanguageShare, RankCorrelation, RankDistance, Ranker, RetrieverRanker, Split,
                         bm25_builder, load_split, query_language_share, rank_correlation, run_protocol)
from .index import CorruptIndexError, FaissIndex, FaissIndexer, LanguageIdentity, index_corpus, lang_from_qid
from .model import BiEncoder, EncoderSettings, merge_models
from .training import (BatchSampler, CrossLingualBatchSampler, HybridBatchSampler, MonolingualBatchSampler, TrainConfig,
                       Trainer, export_checkpoint)

__version__ = "0.1.0"

__all__ = [
    "BatchSampler", "BiEncoder", "CorruptIndexError", "CrossLingualBatchSampler", "DenseRanker", "EncoderSettings",
    "FaissIndex", "FaissIndexer", "HybridBatchSampler", "LanguageIdentity", "MonolingualBatchSampler",
    "QueryLanguageShare", "RankCorrelation", "RankDistance", "Ranker", "RetrieverRanker", "Split", "TrainConfig",
    "Trainer", "bm25_builder", "export_checkpoint", "index_corpus", "lang_from_qid", "load_split", "merge_models", "query_language_share",
    "rank_correlation", "run_protocol",
]
