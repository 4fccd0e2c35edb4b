"""Language-bias measures for multilingual retrieval, defined through ``ir_measures.define``, and the
vectorised arithmetic the protocol runner uses to compute AP and the same measures over whole rank matrices.

They work next to ``AP`` in ``pt.Experiment(eval_metrics=[...])`` and ``ir_measures.calc_aggregate``.
Document and query languages are read from ids (``"<lang>:..."``, as in the ``xquad-r`` / ``mlqa-r``
entries); :func:`query_language_share` and :func:`rank_correlation` take other id schemes.

Ranks: within a query, documents are ordered by score, descending; equal scores are ordered by doc_id,
descending, as trec_eval does. The first document has rank 1. The vectorised functions take ranks in that
order and must give the same numbers as ``AP`` and the measures here (tests/test_protocol.py checks every
setting against ir_measures).
"""
from __future__ import annotations

import warnings
from typing import Callable, Iterator, Tuple

import ir_measures
import numpy as np
import pandas as pd

from ir_datasets_ext import id_lang, parallel_id

IdFn = Callable[[str], str]


def ranked(run: pd.DataFrame) -> pd.DataFrame:
    """The run ordered within each query (score desc, doc_id desc), with a 1-based ``rank`` column."""
    # sort integer codes, not strings: a full ranking of a pooled corpus has millions of rows
    queries, docs = pd.Categorical(run["query_id"]), pd.Categorical(run["doc_id"])  # categories sorted
    out = run.iloc[np.lexsort((-docs.codes, -run["score"].to_numpy(), queries.codes))]
    return out.assign(rank=out.groupby("query_id", sort=False).cumcount().to_numpy() + 1)


def _rank_distance(qrels: pd.DataFrame, run: pd.DataFrame) -> Iterator[Tuple[str, float]]:
    rel = qrels.loc[qrels["relevance"] > 0, ["query_id", "doc_id"]]
    run = ranked(run)
    n_ranked = run.groupby("query_id").size()
    merged = rel.merge(run[["query_id", "doc_id", "rank"]], on=["query_id", "doc_id"], how="left")
    missing = merged["rank"].isna()
    if missing.any():
        warnings.warn(f"RankDistance: {int(missing.sum())} relevant documents of {merged.loc[missing, 'query_id'].nunique()} "
                      "queries are not in the run; they count at rank (number ranked + 1). Retrieve the full "
                      "ranking (num_results=None) for exact values.", stacklevel=2)
        fill = merged.loc[missing, "query_id"].map(n_ranked).fillna(0) + 1
        merged.loc[missing, "rank"] = fill
    spread = merged.groupby("query_id")["rank"].agg(["max", "min", "size"])
    for qid, row in spread.iterrows():
        yield qid, float(row["max"] - row["min"]) if row["size"] >= 2 else 0.0


RankDistance = ir_measures.define(
    _rank_distance, name="RankDistance", support_cutoff=False,
    pretty_name="Rank distance",
    short_desc="Highest minus lowest rank among a query's relevant documents (LAReQA-style language bias: "
               "the spread between the parallel answers in a pooled multilingual corpus). Lower is better. "
               "Relevant documents missing from the run count at rank (number ranked + 1), with a warning; "
               "queries with fewer than two relevant documents score 0. Source: Roy et al., LAReQA "
               "(arXiv 2004.05484), as used in arXiv 2408.10536.",
)
RankDistance.__doc__ = RankDistance.SHORT_DESC


def query_language_share(lang_of: IdFn = id_lang) -> ir_measures.Measure:
    """``QueryLanguageShare@k``: the fraction of the top k documents in the query's own language.

    1.0 means the ranking stays in the query language (strong same-language bias in a pooled corpus);
    in a pooled corpus of L balanced languages, an unbiased ranking tends to 1/L.
    Queries with an empty run are skipped.

    Args:
        lang_of: maps a query id or doc id to its language (default: the ``"<lang>:"`` prefix).
    """
    def impl(qrels: pd.DataFrame, run: pd.DataFrame) -> Iterator[Tuple[str, float]]:
        qlang = run["query_id"].map(lang_of)
        same = (run["doc_id"].map(lang_of) == qlang).groupby(run["query_id"]).mean()
        return ((qid, float(v)) for qid, v in same.items())

    return ir_measures.define(
        impl, name="QueryLanguageShare", support_cutoff=True, pretty_name="Query-language share",
        short_desc="Fraction of the top-k documents in the query's language; lower means less same-language bias.")


def rank_correlation(lang_of: IdFn = id_lang, group_of: IdFn = parallel_id) -> ir_measures.Measure:
    """``RankCorrelation``: mean Spearman correlation between the rankings of parallel queries.

    Parallel queries are translations of one question (same ``group_of`` id, different languages), run
    against one pooled multilingual corpus. For each query, the value is the mean Spearman rho between its
    ranking and the ranking of each of its parallel queries, over the documents all of them ranked.
    1.0 means every language of the question gets the same ranking (no language bias).
    A query with no parallel partner in the run has no value; ir_measures then scores it 0, so a warning
    says how many there are. Source: Mean Rank Correlation, arXiv 2509.06195.

    Args:
        lang_of: maps a query id to its language (default: the ``"<lang>:"`` prefix).
        group_of: maps a query id to its language-independent question id.
    """
    def impl(qrels: pd.DataFrame, run: pd.DataFrame) -> Iterator[Tuple[str, float]]:
        run = ranked(run)
        groups = run["query_id"].drop_duplicates()
        by_group = groups.groupby(groups.map(group_of).to_numpy())
        alone = 0
        for _, qids in by_group:
            qids = list(qids)
            if len(qids) < 2 or len({lang_of(q) for q in qids}) < 2:
                alone += len(qids)
                continue
            part = run[run["query_id"].isin(qids)]
            table = part.pivot(index="doc_id", columns="query_id", values="rank").dropna()[qids]
            if len(table) < 2:
                continue
            # Spearman rho = Pearson correlation of ranks re-ranked within the shared documents
            r = np.corrcoef(table.rank().to_numpy().T)
            np.fill_diagonal(r, np.nan)
            for qid, row in zip(qids, r):
                yield qid, float(np.nanmean(row))
        if alone:
            warnings.warn(f"RankCorrelation: {alone} queries have no parallel query in another language in the run; "
                          "ir_measures scores them 0. Evaluate queries that have translations.", stacklevel=2)

    return ir_measures.define(
        impl, name="RankCorrelation", support_cutoff=False, pretty_name="Mean rank correlation",
        short_desc="Mean Spearman correlation between rankings of parallel queries; higher means less language bias.")


QueryLanguageShare = query_language_share()
RankCorrelation = rank_correlation()


# ---- vectorised: the same numbers over rank matrices, for the protocol runner ---------------------------------

def average_precisions(ranks: np.ndarray) -> np.ndarray:
    """``AP`` per row of relevant-document ranks.

    Args:
        ranks: ``[queries, w]`` 1-based ranks of each query's relevant documents; -1 pads, and 0 marks one that
            was not ranked (it counts as relevant but adds nothing).
    """
    n_rel = (ranks >= 0).sum(axis=1)
    found = np.sort(np.where(ranks > 0, ranks, np.inf), axis=1)
    return (np.arange(1, ranks.shape[1] + 1) / found).sum(axis=1) / n_rel


def rank_distances(ranks: np.ndarray, n_ranked: np.ndarray) -> np.ndarray:
    """:data:`RankDistance` per row: highest minus lowest relevant rank; 0 for fewer than two relevant documents.

    Args:
        ranks: as for :func:`average_precisions`; an unranked document counts at ``n_ranked + 1``.
        n_ranked: per row, how many documents the query ranked.
    """
    valid = ranks >= 0
    r = np.where(ranks == 0, n_ranked[:, None] + 1, ranks).astype(np.float64)
    spread = np.where(valid, r, -np.inf).max(axis=1) - np.where(valid, r, np.inf).min(axis=1)
    return np.where(valid.sum(axis=1) >= 2, spread, 0.0)


def language_shares(top_langs: np.ndarray, query_lang: int) -> np.ndarray:
    """``QueryLanguageShare@k`` per query that ranked anything (queries with an empty run are skipped).

    Args:
        top_langs: ``[queries, k]`` language codes of each query's top k documents; -1 pads a shorter ranking.
        query_lang: the queries' language code.
    """
    counted = (top_langs >= 0).sum(axis=1)
    same = (top_langs == query_lang).sum(axis=1)
    return same[counted > 0] / counted[counted > 0]


def parallel_rank_correlations(ranks: np.ndarray) -> np.ndarray:
    """:data:`RankCorrelation` for a group of parallel queries: per row, the mean Spearman correlation with every
    other row, over the documents every row ranked; NaN for all rows when fewer than two documents are shared.

    Args:
        ranks: ``[parallel queries, documents]`` 1-based ranks per document, 0 where a row did not rank it.
    """
    shared = ranks[:, (ranks > 0).all(axis=0)]
    if shared.shape[1] < 2:
        return np.full(len(ranks), np.nan)
    if shared.shape[1] < ranks.shape[1]:  # partial rankings: rank again within the shared documents
        shared = np.argsort(np.argsort(shared, axis=1), axis=1)
    r = np.corrcoef(shared.astype(np.float64))
    np.fill_diagonal(r, np.nan)
    return np.nanmean(r, axis=1)
