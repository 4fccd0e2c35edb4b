"""Language-bias measures for multilingual retrieval, defined through ``ir_measures.define``.

They work next to ``AP`` in ``pt.Experiment(eval_metrics=[...])`` and ``ir_measures.calc_aggregate``.
Document and query languages are read from ids (``"<lang>:..."``, as in the ``xquad-r`` / ``mlqa-r``
entries); :func:`query_language_share` and :func:`rank_correlation` take other id schemes.

Ranks: within a query, documents are ordered by score, descending; equal scores are ordered by doc_id,
descending, as trec_eval does. The first document has rank 1.
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
    out = run.sort_values(["query_id", "score", "doc_id"], ascending=[True, False, False], kind="mergesort")
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
