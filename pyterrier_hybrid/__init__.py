"""pyterrier-hybrid: multilingual dense retrieval trained with hybrid batches, for PyTerrier."""
import ir_datasets_ext  # noqa: F401  registers xquad-r / mlqa-r with ir_datasets

from .encoder import BiEncoder
from .index import CorruptIndexError, FaissIndex
from .measures import QueryLanguageShare, RankCorrelation, RankDistance, query_language_share, rank_correlation
from .model_dir import EncoderSettings
from .protocol import DenseRanker, RetrieverRanker, run_protocol
from .sparse import bm25_builder
from .training import CrossLingualBatchSampler, HybridBatchSampler, MonolingualBatchSampler, TrainConfig, Trainer

__version__ = "0.1.0"

__all__ = [
    "BiEncoder", "CorruptIndexError", "CrossLingualBatchSampler", "DenseRanker", "HybridBatchSampler",
    "MonolingualBatchSampler", "TrainConfig", "Trainer", "EncoderSettings", "FaissIndex", "QueryLanguageShare",
    "RankCorrelation", "RankDistance", "RetrieverRanker", "bm25_builder", "query_language_share",
    "rank_correlation", "run_protocol",
]
