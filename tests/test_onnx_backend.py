"""BiEncoder(backend="onnx" / "onnx-int8"): the torch encoder's vectors from ONNX Runtime, exported once per model."""
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyterrier as pt
import pytest
import torch

import pyterrier_hybrid as ph
from pyterrier_hybrid.model import onnx_backend
from pyterrier_hybrid.testing import make_tiny_model

pytest.importorskip("onnxruntime")

QUERIES = ["river stone?", "Wo ist das Brot?", "window", "which bread is by the river window and why, said she"]
DOCS = [{"docno": f"d{i}", "text": t, "lang": "en"} for i, t in enumerate(
    ["river stone", "bread window", "stone bread river", "window", "a river of bread",
     "Das Brot liegt am Fluss, neben dem Fenster und dem Stein, seit gestern Abend."])]
TEXTS = [d["text"] for d in DOCS]
CONTEXTS = ["the whole paragraph about " + t + ", and more" for t in TEXTS]
KW = dict(query_prefix="query: ", doc_prefix="passage: ", batch_size=4)  # batches of several lengths: padding


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(1).min())


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("onnx-model"), seed=3)


@pytest.mark.parametrize("pooling,normalize", [("mean", True), ("cls", False)])
def test_onnx_vectors_equal_torch_fp32(model_dir, pooling, normalize):
    torch_enc = ph.BiEncoder(model_dir, dtype="float32", device="cpu", pooling=pooling, normalize=normalize, **KW)
    onnx_enc = ph.BiEncoder(model_dir, backend="onnx", pooling=pooling, normalize=normalize, **KW)
    assert (onnx_enc.backend, onnx_enc.dtype) == ("onnx", "float32")
    for a, b in [(torch_enc.encode_queries(QUERIES), onnx_enc.encode_queries(QUERIES)),
                 (torch_enc.encode_docs(TEXTS), onnx_enc.encode_docs(TEXTS))]:
        assert a.shape == b.shape == (len(a), torch_enc.dim)
        assert min_cosine(a, b) > 1 - 1e-4
        assert np.abs(a - b).max() < 1e-4  # the lengths too, where vectors are not normalised
    # the prefix reaches the graph: without it the vectors differ
    bare = ph.BiEncoder(model_dir, backend="onnx", pooling=pooling, normalize=normalize, query_prefix="")
    assert np.abs(bare.encode_queries(QUERIES) - onnx_enc.encode_queries(QUERIES)).max() > 1e-3


def test_onnx_sentence_with_context_and_max_length(model_dir):
    kw = dict(KW, doc_text="sentence+context", doc_max_length=40)  # the contexts are truncated
    a = ph.BiEncoder(model_dir, dtype="float32", device="cpu", **kw).encode_docs(TEXTS[:5], CONTEXTS[:5])
    b = ph.BiEncoder(model_dir, backend="onnx", **kw).encode_docs(TEXTS[:5], CONTEXTS[:5])
    assert min_cosine(a, b) > 1 - 1e-4


def test_int8_is_close_and_ranks_the_same(model_dir):
    fp32 = ph.BiEncoder(model_dir, dtype="float32", device="cpu", **KW)
    int8 = ph.BiEncoder(model_dir, backend="onnx-int8", **KW)
    q8, d8 = int8.encode_queries(QUERIES), int8.encode_docs(TEXTS)
    q, d = fp32.encode_queries(QUERIES), fp32.encode_docs(TEXTS)
    # measured on this model: 0.99999 and above (embeddings and the last feed-forward kept in fp32)
    assert min_cosine(q, q8) > 0.999 and min_cosine(d, d8) > 0.999
    assert not np.array_equal(d, d8)  # it is quantised, not the fp32 graph again
    np.testing.assert_array_equal((q8 @ d8.T).argmax(1), (q @ d.T).argmax(1))
    files = {p.name for p in Path(int8.onnx.path).parent.iterdir()}
    assert files == {"model.onnx", "model-int8.onnx"}


def test_the_session_uses_our_cores_and_leaves_torch_alone(model_dir):
    before = torch.get_num_threads()
    enc = ph.BiEncoder(model_dir, backend="onnx")
    enc.encode_docs(TEXTS)
    opts = enc.onnx.session.get_session_options()
    assert opts.intra_op_num_threads == len(os.sched_getaffinity(0)) and opts.inter_op_num_threads == 1
    assert torch.get_num_threads() == before


def test_a_changed_model_is_exported_again(tmp_path):
    path = make_tiny_model(tmp_path / "m", seed=0)
    old = ph.BiEncoder(path, backend="onnx").encode_docs(TEXTS)
    make_tiny_model(path, seed=1)  # the weights rewritten in place after the export
    new = ph.BiEncoder(path, backend="onnx").encode_docs(TEXTS)
    expected = ph.BiEncoder(path, dtype="float32", device="cpu").encode_docs(TEXTS)
    assert min_cosine(new, expected) > 1 - 1e-4
    assert min_cosine(new, old) < 0.99  # not the stale graph
    assert len(list((path / "onnx").iterdir())) == 2  # one export per version of the weights


def test_an_unwritable_model_directory_exports_to_the_cache(model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTERRIER_HYBRID_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(onnx_backend.os, "access", lambda *a: False)
    enc = ph.BiEncoder(model_dir, backend="onnx")
    assert Path(enc.onnx.path).parent.parent == tmp_path / "cache" / "onnx"
    assert not any(p.name.startswith(".") for p in (tmp_path / "cache" / "onnx").iterdir())  # no leftovers


def test_transformers_and_faiss_index_take_the_onnx_backend(model_dir, tmp_path):
    enc = ph.BiEncoder(model_dir, backend="onnx", **KW)
    ref = ph.BiEncoder(model_dir, dtype="float32", device="cpu", **KW)
    docs = pd.DataFrame(DOCS)
    got = np.stack(enc.doc_encoder()(docs)["doc_vec"])
    assert min_cosine(got, ref.encode_docs(TEXTS)) > 1 - 1e-4
    topics = pd.DataFrame({"qid": [f"q{i}" for i in range(len(QUERIES))], "query": QUERIES})
    qv = np.stack(enc.query_encoder()(topics)["query_vec"])
    assert min_cosine(qv, ref.encode_queries(QUERIES)) > 1 - 1e-4

    index = (enc.doc_encoder() >> ph.FaissIndex(tmp_path / "idx")).index(DOCS)
    stored = json.loads((Path(index.path) / "pt_meta.json").read_text())["encoder"]
    assert stored["backend"] == "onnx"
    res = pt.Artifact.load(str(index.path)).retriever(enc, num_results=None)(topics)
    scores = qv @ got.T
    for i, qid in enumerate(topics["qid"]):
        top = res[res.qid == qid].sort_values("rank")
        assert list(top["docno"])[0] == f"d{scores[i].argmax()}"
    # the torch backend's queries against onnx-built documents are caught by the identity check
    with pytest.raises(ValueError, match=r"differs \(backend: 'onnx' there, 'torch' here\)"):
        pt.Artifact.load(str(index.path)).retriever(ref)


def test_an_index_recorded_before_backends_counts_as_torch(model_dir, tmp_path):
    enc = ph.BiEncoder(model_dir, dtype="float32")
    index = (enc.doc_encoder() >> ph.FaissIndex(tmp_path / "idx")).index(DOCS)
    meta_file = Path(index.path) / "pt_meta.json"
    meta = json.loads(meta_file.read_text())
    del meta["encoder"]["backend"]
    meta_file.write_text(json.dumps(meta))
    topics = pd.DataFrame({"qid": ["q0"], "query": ["river"]})
    assert len(pt.Artifact.load(str(index.path)).retriever(enc)(topics)) > 0
    with pytest.raises(ValueError, match=r"differs \(backend: 'torch' there, 'onnx' here\)"):
        pt.Artifact.load(str(index.path)).retriever(ph.BiEncoder(model_dir, backend="onnx"))


def test_the_cli_takes_the_backend_into_index_and_report(model_dir, tmp_path, capsys):
    from pyterrier_hybrid.cli import main

    main(["index", "--dataset", "lareqa-demo", "--model", str(model_dir), "--out", str(tmp_path / "ix"),
          "--backend", "onnx"])
    assert json.loads((tmp_path / "ix" / "pt_meta.json").read_text())["encoder"]["backend"] == "onnx"
    main(["evaluate", "--dataset", "lareqa-demo", "--model", str(model_dir), "--out", str(tmp_path / "ev"),
          "--backend", "onnx-int8"])
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert (report["backend"], report["dtype"]) == ("onnx-int8", "float32")
    assert "encoder dtype float32, backend onnx-int8" in (tmp_path / "ev" / "report.md").read_text()


def test_without_onnxruntime_the_error_says_what_to_install(model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(ImportError, match=r"pip install pyterrier-hybrid\[fast\]"):
        ph.BiEncoder(model_dir, backend="onnx")


def test_wrong_backend_options_are_refused(model_dir):
    with pytest.raises(ValueError, match=r"backend='tensorrt' is not supported; use one of \['torch', 'onnx', "):
        ph.BiEncoder(model_dir, backend="tensorrt")
    with pytest.raises(ValueError, match=r"backend='onnx' runs in float32 on the CPU"):
        ph.BiEncoder(model_dir, backend="onnx", dtype="bfloat16")
    assert ph.BiEncoder(model_dir).backend == "torch"  # the default, and 'auto' picks no ONNX variant


# about 50 sentences in the languages of XQuAD-R / MLQA-R, of several lengths
SENTENCES = [
    "What is the capital of Germany?", "Berlin is the capital and largest city of Germany.",
    "The river flows slowly through the old town before it reaches the sea.", "Who wrote the novel?",
    "Photosynthesis converts light energy into chemical energy stored in sugars.",
    "Wie hoch ist der höchste Berg der Alpen?", "Der Mont Blanc ist mit 4806 Metern der höchste Berg der Alpen.",
    "Im Sommer fahren viele Familien an die Ostsee, um dort Urlaub zu machen.", "Warum ist der Himmel blau?",
    "Die Bibliothek wurde im 18. Jahrhundert gegründet und besitzt heute über zwei Millionen Bücher.",
    "¿Cuándo se fundó la universidad?", "La universidad fue fundada en 1551 y es una de las más antiguas de América.",
    "El mercado abre todos los días a las siete de la mañana.", "¿Qué idioma se habla en Brasil?",
    "En Brasil se habla portugués, aunque también existen muchas lenguas indígenas.",
    "Quelle est la population de Paris ?", "Paris compte environ deux millions d'habitants dans ses limites.",
    "Le train partira à l'heure malgré la neige tombée pendant la nuit.",
    "كم عدد سكان القاهرة؟", "القاهرة هي أكبر مدينة في العالم العربي من حيث عدد السكان.",
    "يتدفق نهر النيل من الجنوب إلى الشمال ويصب في البحر الأبيض المتوسط.", "ما هي عاصمة المغرب؟",
    "中国的首都是哪里？", "北京是中华人民共和国的首都，也是全国的政治和文化中心。", "长江是亚洲最长的河流。",
    "这本书讲述了一个家庭在战争年代的故事。", "आज मौसम कैसा है?", "दिल्ली भारत की राजधानी है और यहाँ करोड़ों लोग रहते हैं।",
    "गंगा नदी हिमालय से निकलती है।", "Thủ đô của Việt Nam là gì?", "Hà Nội là thủ đô của Việt Nam từ năm 1976.",
    "Sông Mê Kông chảy qua sáu quốc gia trước khi đổ ra biển.", "Какая самая длинная река в Европе?",
    "Волга является самой длинной рекой в Европе.", "Зимой в Москве часто идёт снег.",
    "Ποια είναι η πρωτεύουσα της Ελλάδας;", "Η Αθήνα είναι η πρωτεύουσα και η μεγαλύτερη πόλη της Ελλάδας.",
    "Türkiye'nin başkenti neresidir?", "Ankara, 1923'ten beri Türkiye'nin başkentidir.",
    "ประเทศไทยมีกี่จังหวัด", "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย",
    "Qual é o maior rio do mundo?", "O rio Amazonas é o maior rio do mundo em volume de água.",
    "Ile lat ma ta katedra?", "Katedra została zbudowana w XIV wieku.", "Wat is de hoofdstad van Nederland?",
    "Amsterdam is de hoofdstad, maar de regering zetelt in Den Haag.",
    "A very long passage that repeats itself to reach the token limit. " * 12, "ok", "42",
]


@pytest.mark.integration
def test_onnx_equals_torch_fp32_on_the_real_model(me5_dir):
    torch_enc = ph.BiEncoder(me5_dir, dtype="float32", device="cpu", batch_size=16)
    onnx_enc = ph.BiEncoder(me5_dir, backend="onnx", batch_size=16)
    assert len(SENTENCES) >= 50
    assert min_cosine(torch_enc.encode_queries(SENTENCES), onnx_enc.encode_queries(SENTENCES)) > 1 - 1e-4
    assert min_cosine(torch_enc.encode_docs(SENTENCES), onnx_enc.encode_docs(SENTENCES)) > 1 - 1e-4
