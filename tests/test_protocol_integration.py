"""The protocol runner on real XQuAD-R with the real multilingual-e5-small, against plain numpy."""
import numpy as np
import pytest

import pyterrier_hybrid as ph
from pyterrier_hybrid.evaluation.protocol import run_protocol
from pyterrier_hybrid.evaluation.rankers import DenseRanker
from pyterrier_hybrid.evaluation.splits import load_split

pytestmark = pytest.mark.integration
LANGS = ["en", "de", "zh"]


def numpy_ranks(scores, docnos):
    """1-based rank of every document: score descending, ties by docno descending."""
    order = sorted(range(len(docnos)), key=lambda i: (-float(scores[i]), tuple(-ord(c) for c in docnos[i])))
    ranks = np.empty(len(docnos), dtype=int)
    ranks[order] = np.arange(1, len(docnos) + 1)
    return ranks


def plain_ap(ranks):
    ranks = sorted(ranks)
    return sum((i + 1) / r for i, r in enumerate(ranks)) / len(ranks)


def test_runner_matches_numpy(shared_data, me5_dir, tmp_path):
    cache = me5_dir.parent / "vectors" if me5_dir.parent.name == ".cache" else tmp_path
    ranker = DenseRanker(ph.BiEncoder(me5_dir, batch_size=64), cache_dir=cache)
    report = run_protocol(ranker, "xquad-r", langs=LANGS, max_queries=200, verbose=False, out_dir=tmp_path)
    print({k: report[k] for k in ["mAP", "rank_distance"]})
    split = load_split("xquad-r", LANGS, 200)
    assert all(len(q) == 200 for q in split.queries.values())
    dvecs = ranker.index._contents().vectors
    docnos = [str(d) for d in split.docnos]
    lang_of = np.array([split.langs[i] for i in split.doc_lang_codes])
    for x, y in [("en", "en"), ("de", "en"), ("zh", "de")]:
        allowed = np.flatnonzero(lang_of == y)
        aps = []
        scores = ranker.query_vecs[x] @ dvecs[allowed].T  # float32 matrix product, as a search engine does
        for row, parallel in zip(scores, split.queries[x]["parallel_id"]):
            ranks = numpy_ranks(row, [docnos[i] for i in allowed])
            target = list(allowed).index(split.answers[y][parallel])
            aps.append(plain_ap([ranks[target]]))
        assert report["matrix"][x][y] == pytest.approx(np.mean(aps), abs=1e-6), (x, y)
    # rank distance of German queries in the pooled en+de+zh corpus. faiss and numpy round float32 dot
    # products differently, so documents within 1e-6 of a relevant one may swap: each such neighbour
    # can move that document by one rank, which bounds the difference (0 when there are none)
    dists, slack = [], 0
    for row, parallel in zip(ranker.query_vecs["de"] @ dvecs.T, split.queries["de"]["parallel_id"]):
        ranks = numpy_ranks(row, docnos)
        rel = [split.answers[y][parallel] for y in LANGS]
        dists.append(max(ranks[rel]) - min(ranks[rel]))
        slack += sum(int((np.abs(row - row[d]) < 1e-6).sum()) - 1 for d in rel)
    assert slack <= 0.02 * 200 * len(LANGS)
    assert abs(report["rank_distance"]["de"] - np.mean(dists)) <= slack / 200 + 1e-6
    assert report["mAP"]["mono"] > report["mAP"]["cross"] > report["mAP"]["multi"] > 0.2
