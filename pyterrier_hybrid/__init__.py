"""pyterrier-hybrid: multilingual dense retrieval trained with hybrid batches, for PyTerrier."""
import ir_datasets_ext  # noqa: F401  registers xquad-r / mlqa-r with ir_datasets

from .encoder import BiEncoder
from .index import CorruptIndexError, FaissIndex, index_corpus
from .language_identity import LanguageIdentity
from .merge import merge_models
from .measures import QueryLanguageShare, RankCorrelation, RankDistance, query_language_share, rank_correlation
from .model_dir import EncoderSettings
from .protocol import run_protocol
from .rankers import DenseRanker, Ranker, RetrieverRanker
from .sparse import bm25_builder
from .splits import Split, load_split
from .training import (BatchSampler, CrossLingualBatchSampler, HybridBatchSampler, MonolingualBatchSampler, TrainConfig,
                       Trainer)

__version__ = "0.1.0"

__all__ = [
    "BatchSampler", "BiEncoder", "CorruptIndexError", "CrossLingualBatchSampler", "DenseRanker", "EncoderSettings",
    "FaissIndex", "HybridBatchSampler", "LanguageIdentity", "MonolingualBatchSampler", "QueryLanguageShare",
    "RankCorrelation", "RankDistance", "Ranker", "RetrieverRanker", "Split", "TrainConfig", "Trainer", "bm25_builder",
    "index_corpus", "load_split", "merge_models", "query_language_share", "rank_correlation", "run_protocol",
]
