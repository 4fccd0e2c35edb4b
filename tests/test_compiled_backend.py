"""BiEncoder(backend="openvino" / "openvino-int8" / "auto"): the torch encoder's vectors from OpenVINO, exported once per
model."""
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
from pyterrier_hybrid.testing import make_tiny_model

pytest.importorskip("openvino")
pytest.importorskip("nncf")

QUERIES = ["river stone?", "Wo ist das Brot?", "window", "which bread is by the river window and why, said she"]
DOCS = [{"docno": f"d{i}", "text": t, "lang": "en"} for i, t in enumerate(
    ["river stone", "bread window", "stone bread river", "window", "a river of bread",
     "Das Brot liegt am Fluss, neben dem Fenster und dem Stein, seit gestern Abend."])]
TEXTS = [d["text"] for d in DOCS]
CONTEXTS = ["the whole paragraph about " + t + ", and more" for t in TEXTS]
KW = dict(query_prefix="query: ", doc_prefix="passage: ", batch_size=4)  # batches of several lengths: padding
#: a small int8 calibration set of our own texts
CALIBRATION = {"query": QUERIES * 2, "doc": TEXTS * 3}


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(1).min())


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("compiled-model"), seed=3)


@pytest.mark.parametrize("pooling,normalize", [("mean", True), ("cls", False)])
def test_openvino_fp32_vectors_equal_torch_fp32(model_dir, pooling, normalize):
    torch_enc = ph.BiEncoder(model_dir, dtype="float32", device="cpu", pooling=pooling, normalize=normalize, **KW)
    ov_enc = ph.BiEncoder(model_dir, backend="openvino", dtype="float32", pooling=pooling, normalize=normalize, **KW)
    assert (ov_enc.backend, ov_enc.dtype) == ("openvino", "float32")
    for a, b in [(torch_enc.encode_queries(QUERIES), ov_enc.encode_queries(QUERIES)),
                 (torch_enc.encode_docs(TEXTS), ov_enc.encode_docs(TEXTS))]:
        assert a.shape == b.shape == (len(a), torch_enc.dim)
        assert min_cosine(a, b) > 1 - 1e-4
        assert np.abs(a - b).max() < 1e-4  # the lengths too, where vectors are not normalised
    # the prefix reaches the graph: without it the vectors differ
    bare = ph.BiEncoder(model_dir, backend="openvino", dtype="float32", pooling=pooling, normalize=normalize,
                        query_prefix="")
    assert np.abs(bare.encode_queries(QUERIES) - ov_enc.encode_queries(QUERIES)).max() > 1e-3


def test_openvino_sentence_with_context_and_max_length(model_dir):
    kw = dict(KW, doc_text="sentence+context", doc_max_length=40)  # the contexts are truncated
    a = ph.BiEncoder(model_dir, dtype="float32", device="cpu", **kw).encode_docs(TEXTS[:5], CONTEXTS[:5])
    b = ph.BiEncoder(model_dir, backend="openvino", dtype="float32", **kw).encode_docs(TEXTS[:5], CONTEXTS[:5])
    assert min_cosine(a, b) > 1 - 1e-4


def test_int8_is_close_and_ranks_the_same(model_dir):
    fp32 = ph.BiEncoder(model_dir, dtype="float32", device="cpu", **KW)
    int8 = ph.BiEncoder(model_dir, backend="openvino-int8", dtype="float32", calibration=CALIBRATION, **KW)
    q8, d8 = int8.encode_queries(QUERIES), int8.encode_docs(TEXTS)
    q, d = fp32.encode_queries(QUERIES), fp32.encode_docs(TEXTS)
    # measured on this model: 0.9999 and above
    assert min_cosine(q, q8) > 0.999 and min_cosine(d, d8) > 0.999
    assert not np.array_equal(d, d8)  # it is quantised, not the fp32 graph again
    np.testing.assert_array_equal((q8 @ d8.T).argmax(1), (q @ d.T).argmax(1))
    files = {p.name for p in Path(int8.compiled.path).parent.iterdir()}
    key = int8.calibration_key
    assert files == {"model.onnx", f"model-int8-{key}.xml", f"model-int8-{key}.bin"}
    # other calibration texts are another int8 model, exported beside it; the same texts are the cached one
    other = ph.BiEncoder(model_dir, backend="openvino-int8", dtype="float32",
                         calibration={"query": QUERIES, "doc": TEXTS}, **KW)
    assert other.calibration_key != key and other.compiled.path.parent == int8.compiled.path.parent
    again = ph.BiEncoder(model_dir, backend="openvino-int8", dtype="float32", calibration=CALIBRATION, **KW)
    assert again.calibration_key == key
    np.testing.assert_array_equal(again.encode_docs(TEXTS), d8)


def test_int8_calibrates_on_mlqa_r_by_default_and_says_how_to_change_it(model_dir, monkeypatch):
    import ir_datasets_ext
    from ir_datasets_ext import DEMO
    from pyterrier_hybrid.model import compiled

    monkeypatch.setattr(compiled, "CALIBRATION_PER_LANG", 2)
    monkeypatch.setattr(ir_datasets_ext, "MLQA_R", DEMO)  # the same reader, on the demo family's files
    texts = compiled.default_calibration()
    expected = {"query": [q.text for lang in DEMO.langs for q in DEMO.load(lang).queries[:2]],
                "doc": [d.text for lang in DEMO.langs for d in DEMO.load(lang).docs[:2]]}
    assert texts == expected and len(texts["doc"]) == 2 * len(DEMO.langs)

    class Missing:
        langs = ("ar",)

        def load(self, lang):
            raise FileNotFoundError(f"no {lang}.json here")

    monkeypatch.setattr(ir_datasets_ext, "MLQA_R", Missing())
    with pytest.raises(ValueError, match=r"calibrates on MLQA-R by default, which could not be read \(no ar.json "
                                         r"here\); set PYTERRIER_HYBRID_DATA"):
        ph.BiEncoder(model_dir, backend="openvino-int8")
    with pytest.raises(ValueError, match=r"calibration= needs \{'query'"):
        ph.BiEncoder(model_dir, backend="openvino-int8", calibration={"queries": ["a"]})
    with pytest.raises(ValueError, match="calibration= is for backend='openvino-int8' only"):
        ph.BiEncoder(model_dir, backend="openvino", calibration=CALIBRATION)


def test_openvino_uses_our_cores_and_leaves_torch_alone(model_dir):
    before = torch.get_num_threads()
    enc = ph.BiEncoder(model_dir, backend="openvino", dtype="float32")
    enc.encode_docs(TEXTS)
    assert enc.compiled.compiled.get_property("INFERENCE_NUM_THREADS") == len(os.sched_getaffinity(0))
    assert enc.compiled.compiled.get_property("NUM_STREAMS") == 1
    assert torch.get_num_threads() == before


def test_a_changed_model_is_exported_again(tmp_path):
    path = make_tiny_model(tmp_path / "m", seed=0)
    old = ph.BiEncoder(path, backend="openvino", dtype="float32").encode_docs(TEXTS)
    make_tiny_model(path, seed=1)  # the weights rewritten in place after the export
    new = ph.BiEncoder(path, backend="openvino", dtype="float32").encode_docs(TEXTS)
    expected = ph.BiEncoder(path, dtype="float32", device="cpu").encode_docs(TEXTS)
    assert min_cosine(new, expected) > 1 - 1e-4
    assert min_cosine(new, old) < 0.99  # not the stale graph
    assert len(list((path / "compiled").iterdir())) == 2  # one export per version of the weights


def test_an_unwritable_model_directory_exports_to_the_cache(model_dir, tmp_path, monkeypatch):
    from pyterrier_hybrid.model import compiled

    monkeypatch.setenv("PYTERRIER_HYBRID_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(compiled.os, "access", lambda *a: False)
    enc = ph.BiEncoder(model_dir, backend="openvino")
    assert Path(enc.compiled.path).parent.parent == tmp_path / "cache" / "compiled"
    assert not any(p.name.startswith(".") for p in (tmp_path / "cache" / "compiled").iterdir())  # no leftovers


def test_transformers_and_faiss_index_take_the_openvino_backend(model_dir, tmp_path):
    enc = ph.BiEncoder(model_dir, backend="openvino", dtype="float32", **KW)
    ref = ph.BiEncoder(model_dir, dtype="float32", device="cpu", **KW)
    docs = pd.DataFrame(DOCS)
    got = np.stack(enc.doc_encoder()(docs)["doc_vec"])
    assert min_cosine(got, ref.encode_docs(TEXTS)) > 1 - 1e-4
    topics = pd.DataFrame({"qid": [f"q{i}" for i in range(len(QUERIES))], "query": QUERIES})
    qv = np.stack(enc.query_encoder()(topics)["query_vec"])
    assert min_cosine(qv, ref.encode_queries(QUERIES)) > 1 - 1e-4

    index = (enc.doc_encoder() >> ph.FaissIndex(tmp_path / "idx")).index(DOCS)
    stored = json.loads((Path(index.path) / "pt_meta.json").read_text())["encoder"]
    assert stored["backend"] == "openvino" and "calibration" not in stored
    res = pt.Artifact.load(str(index.path)).retriever(enc, num_results=None)(topics)
    scores = qv @ got.T
    for i, qid in enumerate(topics["qid"]):
        top = res[res.qid == qid].sort_values("rank")
        assert list(top["docno"])[0] == f"d{scores[i].argmax()}"
    # the torch backend's queries against openvino-built documents are caught by the identity check
    with pytest.raises(ValueError, match=r"differs \(backend: 'openvino' there, 'torch' here\)"):
        pt.Artifact.load(str(index.path)).retriever(ref)
    # so is an int8 graph of another calibration
    int8 = (ph.BiEncoder(model_dir, backend="openvino-int8", dtype="float32", calibration=CALIBRATION, **KW)
            .doc_encoder() >> ph.FaissIndex(tmp_path / "idx8")).index(DOCS)
    other = ph.BiEncoder(model_dir, backend="openvino-int8", dtype="float32",
                         calibration={"query": QUERIES, "doc": TEXTS}, **KW)
    with pytest.raises(ValueError, match=r"differs \(calibration: '\w+' there, '\w+' here\)"):
        pt.Artifact.load(str(int8.path)).retriever(other)


def test_an_index_recorded_before_backends_counts_as_torch(model_dir, tmp_path):
    enc = ph.BiEncoder(model_dir, dtype="float32")
    index = (enc.doc_encoder() >> ph.FaissIndex(tmp_path / "idx")).index(DOCS)
    meta_file = Path(index.path) / "pt_meta.json"
    meta = json.loads(meta_file.read_text())
    del meta["encoder"]["backend"]
    meta_file.write_text(json.dumps(meta))
    topics = pd.DataFrame({"qid": ["q0"], "query": ["river"]})
    assert len(pt.Artifact.load(str(index.path)).retriever(enc)(topics)) > 0
    with pytest.raises(ValueError, match=r"differs \(backend: 'torch' there, 'openvino' here\)"):
        pt.Artifact.load(str(index.path)).retriever(ph.BiEncoder(model_dir, backend="openvino", dtype="float32"))


def test_the_cli_takes_the_backend_into_index_and_report(model_dir, tmp_path, capsys):
    from pyterrier_hybrid.cli import main

    main(["index", "--dataset", "lareqa-demo", "--model", str(model_dir), "--out", str(tmp_path / "ix"),
          "--backend", "openvino", "--dtype", "float32"])
    assert json.loads((tmp_path / "ix" / "pt_meta.json").read_text())["encoder"]["backend"] == "openvino"
    main(["evaluate", "--dataset", "lareqa-demo", "--model", str(model_dir), "--out", str(tmp_path / "ev"),
          "--backend", "auto", "--dtype", "float32"])
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert (report["backend"], report["dtype"]) == ("openvino", "float32")
    assert "encoder dtype float32, backend openvino" in (tmp_path / "ev" / "report.md").read_text()


def test_without_openvino_the_error_says_what_to_install_and_auto_is_torch(model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino now raises ImportError
    with pytest.raises(ImportError, match=r"pip install pyterrier-hybrid\[fast\]"):
        ph.BiEncoder(model_dir, backend="openvino")
    assert ph.BiEncoder(model_dir, backend="auto").backend == "torch"


@pytest.mark.parametrize("detected", [True, False])
def test_auto_picks_openvino_at_the_hosts_precision(model_dir, monkeypatch, detected):
    """auto: OpenVINO on the CPU, in bf16 where the CPU has it natively, else fp32; never the int8 graph."""
    from pyterrier_hybrid.model import precision

    monkeypatch.setattr(precision, "native_bf16", lambda: detected)
    enc = ph.BiEncoder(model_dir, backend="auto")
    assert (enc.backend, enc.dtype) == ("openvino", "bfloat16" if detected else "float32")
    # what OpenVINO is asked for (a CPU without bf16 may run f32 anyway, so its own report depends on the host)
    assert enc.compiled.precision == ("bf16" if detected else "f32")


def test_wrong_backend_options_are_refused(model_dir):
    with pytest.raises(ValueError, match=r"backend='tensorrt' is not supported; use one of \['torch', 'openvino', "):
        ph.BiEncoder(model_dir, backend="tensorrt")
    with pytest.raises(ValueError, match=r"backend='openvino' runs in float32 or bfloat16"):
        ph.BiEncoder(model_dir, backend="openvino", dtype="float16")
    with pytest.raises(ValueError, match=r"backend='openvino' runs on the CPU"):
        ph.BiEncoder(model_dir, backend="openvino", device="cuda")
    assert ph.BiEncoder(model_dir).backend == "torch"  # the default


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
def test_openvino_equals_torch_fp32_on_the_real_model(me5_dir):
    torch_enc = ph.BiEncoder(me5_dir, dtype="float32", device="cpu", batch_size=16)
    ov_enc = ph.BiEncoder(me5_dir, backend="openvino", dtype="float32", batch_size=16)
    assert len(SENTENCES) >= 50
    assert min_cosine(torch_enc.encode_queries(SENTENCES), ov_enc.encode_queries(SENTENCES)) > 1 - 1e-4
    assert min_cosine(torch_enc.encode_docs(SENTENCES), ov_enc.encode_docs(SENTENCES)) > 1 - 1e-4


def test_a_failed_export_names_the_versions_and_the_way_out(tmp_path, monkeypatch):
    """Some transformers releases build attention masks the tracer cannot follow: one clear error, no half files."""
    path = make_tiny_model(tmp_path / "m", seed=4)

    def broken(*args, **kwargs):
        raise IndexError("tuple index out of range")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(RuntimeError, match=r"exporting the model to ONNX failed under transformers .* \(IndexError: "
                                           r"tuple index out of range\); .* or use backend='torch'"):
        ph.BiEncoder(path, backend="openvino")
    assert [p.name for p in (path / "compiled").iterdir()] == []  # nothing left behind
