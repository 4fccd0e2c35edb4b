"""Counts and qrels of the real XQuAD-R / MLQA-R files (the counts of docs/datasets.md, from LAReQA)."""
import json

import ir_datasets
import pytest

pytestmark = pytest.mark.integration

XQUAD_DOCS = {"ar": 1222, "de": 1276, "el": 1234, "en": 1180, "es": 1215, "hi": 1244,
              "ru": 1219, "th": 852, "tr": 1167, "vi": 1209, "zh": 1196}
MLQA = {"ar": (517, 2545), "de": (512, 2362), "en": (1148, 6264), "es": (500, 1787),
        "hi": (507, 2426), "vi": (511, 2828), "zh": (504, 2322)}


def n_queries(name):
    return sum(1 for _ in ir_datasets.load(name).queries_iter())


def test_xquad_r_counts(shared_data):
    for lang, n in XQUAD_DOCS.items():
        assert ir_datasets.load(f"xquad-r/{lang}/{lang}").docs_count() == n
        assert n_queries(f"xquad-r/{lang}/en") == 1190
    assert ir_datasets.load("xquad-r").docs_count() == sum(XQUAD_DOCS.values()) == 13014
    assert sum(1 for _ in ir_datasets.load("xquad-r/th").docs_iter()) == 13014
    rels = {}
    for q in ir_datasets.load("xquad-r/de").qrels_iter():
        rels.setdefault(q.query_id, set()).add(q.doc_id)
    assert len(rels) == 1190 and {len(v) for v in rels.values()} == {11}


def test_mlqa_r_counts(shared_data):
    for lang, (nq, nd) in MLQA.items():
        assert n_queries(f"mlqa-r/{lang}/en") == nq
        assert ir_datasets.load(f"mlqa-r/en/{lang}").docs_count() == nd
    assert ir_datasets.load("mlqa-r").docs_count() == 20534
    sizes = {}
    for q in ir_datasets.load("mlqa-r/en").qrels_iter():
        sizes[q.query_id] = sizes.get(q.query_id, 0) + 1
    assert len(sizes) == 1148 and set(sizes.values()) == {2, 3, 4}


@pytest.mark.parametrize("family,x,y", [("xquad-r", "de", "zh"), ("xquad-r", "th", "th"), ("mlqa-r", "hi", "es")])
def test_qrels_match_raw_json(shared_data, family, x, y):
    """Recompute the answer sentence from the raw file for every question, independently of the parser."""
    raw = json.loads((shared_data / family / f"{y}.json").read_text(encoding="utf-8"))
    expected, sentences, p = {}, {}, 0
    for article in raw["data"]:
        for para in article["paragraphs"]:
            for s, text in enumerate(para["sentences"]):
                sentences[f"{y}:{p}-{s}"] = text
            for qa in para["qas"]:
                start = qa["answers"][0]["answer_start"]
                s = max(i for i, (b, _) in enumerate(para["sentence_breaks"]) if b <= start)
                expected[qa["id"]] = f"{y}:{p}-{s}"
            p += 1
    ds = ir_datasets.load(f"{family}/{x}/{y}")
    got = {q.query_id.split(":", 1)[1]: q.doc_id for q in ds.qrels_iter()}
    query_ids = {q.query_id.split(":", 1)[1] for q in ds.queries_iter()}
    assert got == {k: v for k, v in expected.items() if k in query_ids}
    store = ds.docs_store()
    some = sorted(got)[::97]
    assert all(store.get(got[k]).text == sentences[got[k]] for k in some)
