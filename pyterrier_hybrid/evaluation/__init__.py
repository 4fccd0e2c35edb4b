"""Evaluation: protocol splits, rankers, the bias measures, the Mo./Cr./Mul. protocol runner and its report,
any ir_datasets collection through ``pt.Experiment``, BM25 beside it, and the paper's reference numbers.

The top stage: it may import the model, index and training packages; none of them imports it.
"""
from .measures import QueryLanguageShare, RankCorrelation, RankDistance, query_language_share, rank_correlation
from .protocol import run_protocol
from .rankers import DenseRanker, Ranker, RetrieverRanker
from .report import seen_unseen, seen_unseen_rows
from .sparse import bm25_builder
from .splits import Split, load_split

__all__ = ["DenseRanker", "QueryLanguageShare", "RankCorrelation", "RankDistance", "Ranker", "RetrieverRanker", "Split",
           "bm25_builder", "load_split", "query_language_share", "rank_correlation", "run_protocol", "seen_unseen",
           "seen_unseen_rows"]
