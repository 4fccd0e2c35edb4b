import os

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

import pyterrier_hybrid as ph
from pyterrier_hybrid.model.model_dir import EncoderSettings, write_settings

# Encoders whose vectors are compared with transformers' own fp32 outputs say dtype="float32": "auto" is bf16 on a
# CPU with native bf16 (and under --bf16-detection=native).
TEXTS = ["Der Leuchtturm wurde rot gestrichen.", "Ships counted its flashes.", "Le journal des tempêtes.",
         "Tin.", "Après la crue, les mineurs se mirent à la pêche.", "Heute liegt das Tagebuch im Museum der Stadt."]


@pytest.fixture
def enc(tiny_model_dir):
    return ph.BiEncoder(tiny_model_dir, batch_size=2, dtype="float32")


def manual(model_dir, texts, pooling="mean"):
    """Encode one text at a time, without padding, straight from transformers."""
    tok, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()
    out = []
    with torch.no_grad():
        for t in texts:
            h = model(**tok(t, return_tensors="pt")).last_hidden_state[0]
            v = h[0] if pooling == "cls" else h.mean(0)
            out.append((v / v.norm()).numpy())
    return np.stack(out)


def test_vectors_have_unit_norm_and_model_dim(enc):
    v = enc.encode_docs(TEXTS)
    assert v.shape == (6, 32) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_length_sorted_batches_keep_input_order(tiny_model_dir, pooling):
    enc = ph.BiEncoder(tiny_model_dir, batch_size=4, pooling=pooling, dtype="float32")
    np.testing.assert_allclose(enc.encode_docs(TEXTS), manual(tiny_model_dir, TEXTS, pooling), atol=1e-5)


def test_no_normalisation_keeps_raw_mean(tiny_model_dir):
    raw = ph.BiEncoder(tiny_model_dir, normalize=False, dtype="float32").encode_docs(TEXTS[:2])
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), manual(tiny_model_dir, TEXTS[:2]), atol=1e-5)


def test_prefixes_are_prepended(tiny_model_dir):
    e5 = ph.BiEncoder(tiny_model_dir, query_prefix="query: ", doc_prefix="passage: ", dtype="float32")
    plain = ph.BiEncoder(tiny_model_dir, dtype="float32")
    np.testing.assert_allclose(e5.encode_queries(["Wo ist das Tagebuch?"]), plain.encode_queries(["query: Wo ist das Tagebuch?"]), atol=1e-6)
    np.testing.assert_allclose(e5.encode_docs(["Tin."]), plain.encode_docs(["passage: Tin."]), atol=1e-6)


def test_max_length_truncates(tiny_model_dir):
    short = ph.BiEncoder(tiny_model_dir, doc_max_length=6, dtype="float32")
    # 6 tokens = [CLS] + 4 characters + [SEP]; the rest of the text is cut
    np.testing.assert_allclose(short.encode_docs(["Tin was mined"]), short.encode_docs(["Tin wXXXXX"]), atol=1e-6)


def test_sentence_plus_context_encodes_the_pair(tiny_model_dir):
    enc = ph.BiEncoder(tiny_model_dir, doc_text="sentence+context", dtype="float32")
    tok, model = AutoTokenizer.from_pretrained(tiny_model_dir), AutoModel.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        v = model(**tok("Tin.", "Tin. After the flood.", return_tensors="pt")).last_hidden_state[0].mean(0)
    np.testing.assert_allclose(enc.encode_docs(["Tin."], ["Tin. After the flood."])[0], (v / v.norm()).numpy(), atol=1e-5)
    with pytest.raises(KeyError, match=r"needs column\(s\) \['context'\]"):
        enc.doc_encoder()(pd.DataFrame({"docno": ["a"], "text": ["Tin."]}))


def test_settings_come_from_sentence_transformers_files(tiny_model_dir, tmp_path):
    import shutil
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    write_settings(d, EncoderSettings(pooling="cls", query_prefix="query: ", doc_prefix="passage: ", doc_max_length=77), dim=32)
    enc = ph.BiEncoder(d, dtype="float32")
    assert enc.settings == EncoderSettings(pooling="cls", normalize=True, query_prefix="query: ", doc_prefix="passage: ",
                                           query_max_length=64, doc_max_length=77)
    assert ph.BiEncoder(d, pooling="mean").settings.pooling == "mean"  # explicit arguments win
    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(str(d), device="cpu")
    np.testing.assert_allclose(st.encode(TEXTS, prompt_name="passage"), enc.encode_docs(TEXTS), atol=1e-5)
    np.testing.assert_allclose(st.encode(["Wer?"], prompt_name="query"), enc.encode_queries(["Wer?"]), atol=1e-5)


def test_loaded_model_and_tokenizer(tiny_model_dir):
    tok, model = AutoTokenizer.from_pretrained(tiny_model_dir), AutoModel.from_pretrained(tiny_model_dir)
    enc = ph.BiEncoder(model, tok, dtype="float32")
    np.testing.assert_allclose(enc.encode_docs(TEXTS[:2]), manual(tiny_model_dir, TEXTS[:2]), atol=1e-5)
    with pytest.raises(ValueError, match="pass the tokenizer"):
        ph.BiEncoder(model)


def test_query_encoder_adds_query_vec_per_row(enc):
    topics = pd.DataFrame({"qid": ["a", "b", "c"], "query": ["Wer?", "Wo?", "Wer?"]})
    out = enc.query_encoder()(topics)
    assert list(out.columns) == ["qid", "query", "query_vec"]
    np.testing.assert_allclose(out.query_vec[0], out.query_vec[2])
    np.testing.assert_allclose(np.stack(out.query_vec), enc.encode_queries(topics["query"]), atol=1e-6)


@pytest.mark.parametrize("bad", ["", "   ", None, float("nan")])
def test_empty_or_nan_query_is_rejected(enc, bad):
    with pytest.raises(ValueError, match=r"column 'query' row 1 is .*non-empty text"):
        enc.query_encoder()(pd.DataFrame({"qid": ["a", "b"], "query": ["Wer?", bad]}))


def test_missing_columns_are_named(enc):
    with pytest.raises(KeyError, match=r"query_encoder\(\) needs column\(s\) \['query'\]"):
        enc.query_encoder()(pd.DataFrame({"qid": ["a"], "text": ["x"]}))
    with pytest.raises(KeyError, match=r"doc_encoder\(\) needs column\(s\) \['text'\]"):
        enc.doc_encoder()(pd.DataFrame({"docno": ["a"], "body": ["x"]}))
    with pytest.raises(ValueError, match="column 'text' row 0"):
        enc.doc_encoder()(pd.DataFrame({"docno": ["a"], "text": [np.nan]}))


def test_scorer_reranks_by_cosine(enc):
    res = pd.DataFrame({"qid": ["q"] * 3, "query": ["Wo liegt das Tagebuch?"] * 3, "docno": ["a", "b", "c"],
                        "text": TEXTS[3:6], "score": [3.0, 2.0, 1.0], "rank": [0, 1, 2]})
    out = enc.scorer()(res)
    expected = enc.encode_docs(TEXTS[3:6]) @ enc.encode_queries(["Wo liegt das Tagebuch?"])[0]
    got = out.set_index("docno").loc[["a", "b", "c"]]
    np.testing.assert_allclose(got.score, expected, atol=1e-6)
    assert list(got["rank"]) == list(np.argsort(np.argsort(-expected)))


def test_bad_settings(tiny_model_dir):
    with pytest.raises(ValueError, match="'float16' needs a CUDA device"):
        ph.BiEncoder(tiny_model_dir, dtype="float16", device="cpu")
    with pytest.raises(ValueError, match="pooling='max' is not supported"):
        ph.BiEncoder(tiny_model_dir, pooling="max")
    with pytest.raises(ValueError, match="doc_text='title'"):
        ph.BiEncoder(tiny_model_dir, doc_text="title")


HUB_SCRIPT = """
import sys, numpy as np, pyterrier_hybrid as ph
hub, local = ph.BiEncoder(sys.argv[1]), ph.BiEncoder(sys.argv[2])
assert hub.settings == local.settings, (hub.settings, local.settings)
texts = ["Wo liegt das Tagebuch?", "Le phare fut peint en rouge."]
np.save(sys.argv[3], np.stack([hub.encode_queries(texts), local.encode_queries(texts),
                               hub.encode_docs(texts), local.encode_docs(texts)]))
print(repr(hub.settings))
"""


def test_hub_name_reads_the_same_settings_as_its_local_directory(tiny_model_dir, tmp_path):
    import subprocess
    import sys
    from pyterrier_hybrid.testing import make_fake_hub_cache
    local = tmp_path / "local"
    import shutil
    shutil.copytree(tiny_model_dir, local)
    write_settings(local, EncoderSettings(pooling="cls", query_prefix="q> ", doc_prefix="d> ", doc_max_length=40), dim=32)
    cache = make_fake_hub_cache(local, "acme/tiny-encoder", tmp_path / "hub")
    env = {**__import__("os").environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", HUB_SCRIPT, "acme/tiny-encoder", str(local), str(tmp_path / "v.npy")],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "pooling='cls'" in done.stdout and "query_prefix='q> '" in done.stdout and "doc_max_length=40" in done.stdout
    hq, lq, hd, ld = np.load(tmp_path / "v.npy")
    assert np.array_equal(hq, lq) and np.array_equal(hd, ld)
    assert not np.allclose(hq, hd)  # the prefixes differ, so the vectors do


def test_prefix_rule(tiny_model_dir, caplog):
    from pyterrier_hybrid.model.model_dir import family_prefixes, resolve_settings
    assert family_prefixes("intfloat/multilingual-e5-small") == ("query: ", "passage: ")
    assert family_prefixes("intfloat/e5-base-v2") == ("query: ", "passage: ")
    assert family_prefixes("intfloat/multilingual-e5-large-instruct") is None  # instructions, not these prefixes
    assert family_prefixes("sentence-transformers/LaBSE") is None
    with caplog.at_level("INFO", logger="pyterrier_hybrid"):
        plain = resolve_settings(tiny_model_dir)  # states no prompts, no known family
    assert (plain.query_prefix, plain.doc_prefix) == ("", "")
    assert any(r.levelname == "WARNING" and "no known family" in r.getMessage() for r in caplog.records)
    assert resolve_settings(tiny_model_dir, query_prefix="Q: ").query_prefix == "Q: "


def test_known_family_name_gets_its_prefixes_only_when_its_files_state_none(tiny_model_dir, tmp_path):
    from pyterrier_hybrid.model.model_dir import resolve_settings
    import shutil
    e5 = shutil.copytree(tiny_model_dir, tmp_path / "multilingual-e5-small")
    assert (resolve_settings(e5).query_prefix, resolve_settings(e5).doc_prefix) == ("query: ", "passage: ")
    write_settings(e5, EncoderSettings(query_prefix="", doc_prefix=""), dim=32)  # stated: no prefixes
    assert (resolve_settings(e5).query_prefix, resolve_settings(e5).doc_prefix) == ("", "")


@pytest.mark.parametrize("native", [True, False])
def test_auto_dtype_follows_the_cpu_detection(tiny_model_dir, monkeypatch, native):
    from pyterrier_hybrid.model import precision
    monkeypatch.setattr(precision, "native_bf16", lambda: native)
    enc = ph.BiEncoder(tiny_model_dir, dtype="auto", device="cpu")
    assert enc.dtype == ("bfloat16" if native else "float32")
    assert precision.resolve_dtype("auto", torch.device("cpu")) == enc.dtype


@pytest.mark.parametrize("cap, native", [("AVX2", False), ("avx512_core_vnni", False), ("", None)])
def test_a_onednn_isa_cap_below_bf16_turns_native_bf16_off(cap, native):
    # a fresh interpreter: this session's detection is patched by conftest
    import subprocess
    import sys
    code = ("import torch; from pyterrier_hybrid.model.precision import native_bf16; "
            "print(native_bf16(), torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())")
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": cap}
    detected, host = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                    check=True).stdout.split()
    assert detected == str(host == "True" if native is None else native)


def test_bf16_on_cpu_is_close_to_fp32_and_warns_when_emulated(tiny_model_dir, monkeypatch, caplog):
    from pyterrier_hybrid.model import precision
    fp32 = ph.BiEncoder(tiny_model_dir, dtype="float32", device="cpu").encode_docs(TEXTS)
    monkeypatch.setattr(precision, "native_bf16", lambda: False)
    with caplog.at_level("WARNING", logger="pyterrier_hybrid"):
        bf16 = ph.BiEncoder(tiny_model_dir, dtype="bfloat16", device="cpu").encode_docs(TEXTS)
    assert any("emulated" in r.getMessage() for r in caplog.records)
    assert bf16.dtype == np.float32 and not np.array_equal(bf16, fp32)  # computed in bf16...
    assert float((bf16 * fp32).sum(1).min()) > 0.999  # ...and still the same directions
    with pytest.raises(ValueError, match="dtype='int4' is not supported"):
        ph.BiEncoder(tiny_model_dir, dtype="int4")


def test_a_path_with_no_model_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model directory .*/missing/model; give a local model directory"):
        ph.BiEncoder(tmp_path / "missing" / "model")
    with pytest.raises(FileNotFoundError, match="no model directory ./nowhere"):
        ph.BiEncoder("./nowhere")
    with pytest.raises(FileNotFoundError, match="has no config.json, so it is not a model directory"):
        ph.BiEncoder(tmp_path)
