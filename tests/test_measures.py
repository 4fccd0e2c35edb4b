import ir_measures
import numpy as np
import pandas as pd
import pyterrier as pt
import pytest
from ir_measures import AP

from pyterrier_hybrid.evaluation.measures import (QueryLanguageShare, RankCorrelation, RankDistance, average_precisions,
                                       language_shares, parallel_rank_correlations, query_language_share,
                                       rank_distances)


def frame(rows, cols):
    return pd.DataFrame(rows, columns=cols)


RUN = frame([
    ("q1", "a", 0.9), ("q1", "b", 0.8), ("q1", "c", 0.7), ("q1", "d", 0.6),
    ("q2", "x", 0.5), ("q2", "y", 0.5), ("q2", "z", 0.1),
    ("q4", "k", 1.0), ("q4", "m", 0.0),
], ["query_id", "doc_id", "score"])
QRELS = frame([("q1", "a", 1), ("q1", "c", 1), ("q1", "b", 0), ("q2", "x", 1), ("q2", "z", 1), ("q4", "m", 1)],
              ["query_id", "doc_id", "relevance"])


def per_query(measure, qrels, run):
    return {m.query_id: m.value for m in ir_measures.iter_calc([measure], qrels, run)}


def test_rank_distance_by_hand():
    got = per_query(RankDistance, QRELS, RUN)
    # q1: a at 1, c at 3 -> 2 (b is judged non-relevant, so it does not count)
    # q2: tie x=y broken by doc_id descending -> y 1, x 2; z 3 -> 1
    # q4: one relevant document -> 0
    assert got == {"q1": 2.0, "q2": 1.0, "q4": 0.0}
    assert ir_measures.calc_aggregate([RankDistance], QRELS, RUN)[RankDistance] == pytest.approx(1.0)


def test_rank_distance_counts_missing_documents_after_the_run():
    qrels = frame([("q3", "p", 1), ("q3", "r", 1)], ["query_id", "doc_id", "relevance"])
    run = frame([("q3", "p", 0.9), ("q3", "q", 0.8)], ["query_id", "doc_id", "score"])
    with pytest.warns(UserWarning, match=r"1 relevant documents of 1 queries are not in the run"):
        got = per_query(RankDistance, qrels, run)
    assert got == {"q3": 2.0}  # p at 1, r at 2 + 1 = 3


def test_query_language_share_at_k():
    run = frame([("de:1", "de:a", 3.0), ("de:1", "en:b", 2.0), ("de:1", "de:c", 1.0),
                 ("en:1", "de:a", 3.0), ("en:1", "de:c", 2.0), ("en:1", "en:b", 1.0)], ["query_id", "doc_id", "score"])
    qrels = frame([("de:1", "de:a", 1), ("en:1", "en:b", 1)], ["query_id", "doc_id", "relevance"])
    assert per_query(QueryLanguageShare @ 2, qrels, run) == {"de:1": 0.5, "en:1": 0.0}
    assert per_query(QueryLanguageShare @ 3, qrels, run) == pytest.approx({"de:1": 2 / 3, "en:1": 1 / 3})
    custom = query_language_share(lambda i: i.split("_")[-1]) @ 1
    run2 = frame([("1_de", "a_de", 1.0), ("1_de", "b_en", 0.5)], ["query_id", "doc_id", "score"])
    assert per_query(custom, frame([("1_de", "a_de", 1)], ["query_id", "doc_id", "relevance"]), run2) == {"1_de": 1.0}


def test_rank_correlation_by_hand():
    rows = []
    for qid, order in [("de:1", "1234"), ("en:1", "2134"), ("fr:1", "4321")]:
        rows += [(qid, f"d{d}", 10.0 - r) for r, d in enumerate(order)]
    rows += [("de:2", "d1", 1.0), ("de:2", "d2", 0.5)]  # no parallel partner
    run = frame(rows, ["query_id", "doc_id", "score"])
    qrels = frame([(q, "d1", 1) for q in ["de:1", "en:1", "fr:1", "de:2"]], ["query_id", "doc_id", "relevance"])
    with pytest.warns(UserWarning, match="1 queries have no parallel query"):
        got = per_query(RankCorrelation, qrels, run)
    # Spearman: de-en 0.8, de-fr -1.0, en-fr -0.8; de:2 is scored 0 by ir_measures
    assert got == pytest.approx({"de:1": -0.1, "en:1": 0.0, "fr:1": -0.9, "de:2": 0.0})
    three = qrels[qrels.query_id != "de:2"]
    assert ir_measures.calc_aggregate([RankCorrelation], three, run[run.query_id != "de:2"])[RankCorrelation] == pytest.approx(-1 / 3)


def test_rank_correlation_uses_documents_ranked_by_all():
    run = frame([("de:1", "a", 3.0), ("de:1", "b", 2.0), ("de:1", "c", 1.0),
                 ("en:1", "c", 3.0), ("en:1", "b", 2.0), ("en:1", "z", 1.0)], ["query_id", "doc_id", "score"])
    qrels = frame([("de:1", "a", 1), ("en:1", "a", 1)], ["query_id", "doc_id", "relevance"])
    # shared documents b, c: de ranks b above c, en ranks c above b -> rho = -1
    assert per_query(RankCorrelation, qrels, run) == pytest.approx({"de:1": -1.0, "en:1": -1.0})


def test_measures_in_pt_experiment():
    res = RUN.rename(columns={"query_id": "qid", "doc_id": "docno"})
    qrels = QRELS.rename(columns={"query_id": "qid", "doc_id": "docno", "relevance": "label"})
    topics = pd.DataFrame({"qid": ["q1", "q2", "q4"], "query": ["a", "b", "c"]})
    out = pt.Experiment([pt.Transformer.from_df(res)], topics, qrels, eval_metrics=[AP, RankDistance], names=["run"])
    assert out["RankDistance"][0] == pytest.approx(1.0)
    # AP by hand: q1 (1 + 2/3)/2, q2 tie: y,x,z -> (1/2 + 2/3)/2, q4 1/2
    assert out["AP"][0] == pytest.approx(((1 + 2 / 3) / 2 + (1 / 2 + 2 / 3) / 2 + 1 / 2) / 3)


# the vectorised functions the protocol runner uses, on the cases above (tests/test_protocol.py checks them
# against ir_measures on every setting of a real run)

def test_average_precision_and_rank_distance_by_hand():
    ranks = np.array([[1, 3, -1], [2, 0, -1], [5, 2, 9]])  # -1 pads; 0 = relevant but not retrieved
    np.testing.assert_allclose(average_precisions(ranks), [(1 + 2 / 3) / 2, 0.25, (1 / 2 + 2 / 5 + 3 / 9) / 3])
    np.testing.assert_allclose(rank_distances(ranks, np.array([10, 10, 10])), [2, 9, 7])  # row 2: unranked at 11


def test_language_shares_by_hand():
    de, en = 0, 1
    top = np.array([[de, en, de], [de, de, en], [en, -1, -1], [-1, -1, -1]])  # -1: nothing ranked there
    # as test_query_language_share_at_k for the first two rows; the empty fourth row is skipped
    np.testing.assert_allclose(language_shares(top[:, :2], de), [0.5, 1.0, 0.0])
    np.testing.assert_allclose(language_shares(top, de), [2 / 3, 2 / 3, 0.0])


def test_parallel_rank_correlations_by_hand():
    # the rankings of test_rank_correlation_by_hand as ranks of d1..d4: de 1234, en 2134, fr 4321
    ranks = np.array([[1, 2, 3, 4], [2, 1, 3, 4], [4, 3, 2, 1]])
    np.testing.assert_allclose(parallel_rank_correlations(ranks), [-0.1, 0.0, -0.9])
    # test_rank_correlation_uses_documents_ranked_by_all: a, b, c, z; only b and c are ranked by both
    partial = np.array([[1, 2, 3, 0], [0, 2, 1, 3]])
    np.testing.assert_allclose(parallel_rank_correlations(partial), [-1.0, -1.0])
    assert np.isnan(parallel_rank_correlations(np.array([[1, 0], [0, 1]]))).all()
