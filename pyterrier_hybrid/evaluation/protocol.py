"""The LAReQA protocol runner: every monolingual, cross-lingual and multilingual setting at once, as one report.

A :class:`~pyterrier_hybrid.evaluation.rankers.Ranker` prepares once (a dense model encodes each language's queries and
candidates exactly once) and then ranks every setting. All metrics come from full rankings
(see docs/evaluation.md):

- mAP per setting (= trec_eval / ir_measures ``AP``), macro-averaged per kind (mono, cross, multi);
- rank distance in the multilingual setting (= :data:`~pyterrier_hybrid.evaluation.measures.RankDistance`);
- query-language share of the top 10 (= ``QueryLanguageShare@10``);
- mean rank correlation between parallel queries (= :data:`~pyterrier_hybrid.evaluation.measures.RankCorrelation`).

Ties in score are broken by doc_id, descending, as trec_eval does.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from tqdm.auto import tqdm

from ..model.encoder import BiEncoder
from .measures import average_precisions, language_shares, parallel_rank_correlations, rank_distances
from .ranking import rank_matrix, ranks_of
from .rankers import DenseRanker, Ranker
from .splits import Split, load_split

QLS_K = 10


def run_protocol(
    ranker: Union[Ranker, BiEncoder],
    dataset: str = "xquad-r",
    *,
    langs: Optional[Sequence[str]] = None,
    max_queries: Optional[int] = None,
    holdout: Optional[float] = None,
    out_dir: Optional[str | Path] = None,
    verbose: bool = True,
    name: str = "",
) -> dict:
    """Run every Mo./Cr./Mul. setting of ``dataset`` and return (and optionally write) the report.

    Args:
        ranker: a :class:`~pyterrier_hybrid.evaluation.rankers.Ranker` (:class:`DenseRanker`, :class:`RetrieverRanker`),
            or a :class:`BiEncoder` (wrapped in a DenseRanker).
        dataset: ``"xquad-r"``, ``"mlqa-r"`` or ``"lareqa-demo"``.
        langs: restrict the evaluation to these languages.
        max_queries: keep the first N question ids (see :func:`~pyterrier_hybrid.evaluation.splits.load_split`).
        holdout: keep only the question ids that training with ``--val-fraction holdout`` holds out.
        out_dir: when given, write ``report.json``, ``report.md`` and ``matrix.png`` there.
        verbose: show a progress bar over the settings.
        name: the system's name, for the report.

    Returns:
        The report dict (see docs/evaluation.md for its keys).
    """
    start = time.perf_counter()
    if isinstance(ranker, BiEncoder):
        ranker = DenseRanker(ranker)
    elif not isinstance(ranker, Ranker):
        raise TypeError(f"run_protocol needs a BiEncoder or a Ranker (prepare, ranking, relevant_ranks, encode_s, "
                        f"dtype), such as DenseRanker or RetrieverRanker; got {type(ranker).__name__}")
    split = load_split(dataset, langs, max_queries, holdout)
    n_docs = len(split.docnos)
    ranker.prepare(split)
    matrix: Dict[str, Dict[str, float]] = {x: {} for x in split.langs}
    multi, rd, qls = {}, {}, {}
    # each query language's settings together: a DenseRanker scores x's queries against the pool once for all of them
    settings = [(x, ys) for x in split.langs for ys in [[y] for y in split.langs] + [list(split.langs)]]
    multi_ranks: Dict[str, np.ndarray] = {}
    n_ranked: Dict[str, float] = {}
    unranked: Dict[str, float] = {}
    for x, ys in tqdm(settings, desc=f"{dataset} settings", disable=not verbose):
        q = split.queries[x]
        rel = [[split.answers[y][parallel] for y in ys if parallel in split.answers[y]]
               for parallel in q["parallel_id"]]
        keep = [i for i, r in enumerate(rel) if r]
        if not keep:
            continue
        docs = _padded([rel[i] for i in keep])
        if len(ys) == 1:
            ranks = ranker.relevant_ranks(x, ys[0], keep, docs)
            matrix[x][ys[0]] = float(np.mean(average_precisions(ranks)))
            continue
        ids = ranker.ranking(x, ys)
        inv = rank_matrix(ids, 0, n_docs)
        every = len(keep) == len(ids)  # no copies of [queries, pool] matrices when every query has an answer
        ranks = ranks_of(inv if every else inv[keep], docs, 0)
        multi[x] = float(np.mean(average_precisions(ranks)))
        counts = ((ids if every else ids[keep]) >= 0).sum(axis=1)
        rd[x] = float(np.mean(rank_distances(ranks, counts)))
        n_ranked[x], unranked[x] = float(np.mean(counts)), float((ranks == 0).sum() / (ranks >= 0).sum())
        top = ids[:, :QLS_K]
        qls[x] = float(np.mean(language_shares(np.where(top >= 0, split.doc_lang_codes[np.maximum(top, 0)], -1),
                                               split.langs.index(x))))
        multi_ranks[x] = inv
    mono = [matrix[x][x] for x in split.langs if x in matrix[x]]
    cross = [v for x in split.langs for y, v in matrix[x].items() if y != x]
    report = {
        "name": name,
        "dataset": dataset,
        "langs": split.langs,
        "max_queries": max_queries,
        "dtype": ranker.dtype,
        "backend": getattr(getattr(ranker, "encoder", None), "backend", None),  # None for BM25
        "n_queries": {x: int(len(q)) for x, q in split.queries.items()},
        "n_docs": {x: int(sl.stop - sl.start) for x, sl in split.lang_slices.items()},
        "mAP": {"mono": _mean(mono), "cross": _mean(cross), "multi": _mean(list(multi.values()))},
        "rank_distance": {"macro": _mean(list(rd.values())), **rd},
        "query_language_share@10": {"macro": _mean(list(qls.values())), **qls},
        "rank_correlation": _mean_rank_correlation(split, multi_ranks),
        "matrix": matrix,
        "multi_by_lang": multi,
        "timing": {"encode_s": ranker.encode_s, "total_s": time.perf_counter() - start},
    }
    if holdout is not None:  # only when asked for, like the keys below: older reports keep their keys
        report["holdout"] = holdout
    lengths = getattr(ranker, "max_length", None)
    if lengths:
        report["max_length"] = lengths
    removal = getattr(ranker, "language_removal", None)
    if removal:  # only when asked for: reports without it keep their old keys
        report["language_removal"] = removal
    if any(v < n_docs for v in n_ranked.values()):
        # a ranker that leaves documents out (BM25 ranks only those sharing a term): its unranked relevant
        # documents count at rank (number ranked + 1), so its rank distance is bounded by how few it ranks
        report["partial_rankings"] = {"pool": n_docs, "mean_ranked": {"macro": _mean(list(n_ranked.values())), **n_ranked},
                                      "unranked_relevant_share": {"macro": _mean(list(unranked.values())), **unranked}}
    if out_dir is not None:
        from .report import write_report
        write_report(report, out_dir)
    return report


def _padded(rel: List[List[int]]) -> np.ndarray:
    """Lists of candidate positions as a ``[len(rel), longest]`` matrix padded with -1."""
    docs = np.full((len(rel), max(map(len, rel))), -1, dtype=np.int64)
    for i, r in enumerate(rel):
        docs[i, :len(r)] = r
    return docs


def _mean_rank_correlation(split: Split, multi_ranks: Dict[str, np.ndarray]) -> Dict[str, float]:
    """Mean Spearman correlation between multilingual rankings of parallel queries, per language and macro."""
    rows = {x: {parallel: i for i, parallel in enumerate(split.queries[x]["parallel_id"])} for x in multi_ranks}
    per_lang: Dict[str, List[float]] = {x: [] for x in multi_ranks}
    for parallel in dict.fromkeys(p for x in multi_ranks for p in split.queries[x]["parallel_id"]):
        have = [x for x in multi_ranks if parallel in rows[x]]
        if len(have) < 2:
            continue
        values = parallel_rank_correlations(np.stack([multi_ranks[x][rows[x][parallel]] for x in have]))
        for x, v in zip(have, values):
            if not np.isnan(v):
                per_lang[x].append(float(v))
    by_lang = {x: _mean(v) for x, v in per_lang.items() if v}
    return {"macro": _mean(list(by_lang.values())), **by_lang}


def _mean(values: List[float]) -> float:
    return float(np.mean(values)) if values else float("nan")
