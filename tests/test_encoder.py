import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

import pyterrier_hybrid as ph
from pyterrier_hybrid.model_dir import EncoderSettings, write_settings

TEXTS = ["Der Leuchtturm wurde rot gestrichen.", "Ships counted its flashes.", "Le journal des tempêtes.",
         "Tin.", "Après la crue, les mineurs se mirent à la pêche.", "Heute liegt das Tagebuch im Museum der Stadt."]


@pytest.fixture
def enc(tiny_model_dir):
    return ph.BiEncoder(tiny_model_dir, batch_size=2)


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
    enc = ph.BiEncoder(tiny_model_dir, batch_size=4, pooling=pooling)
    np.testing.assert_allclose(enc.encode_docs(TEXTS), manual(tiny_model_dir, TEXTS, pooling), atol=1e-5)


def test_no_normalisation_keeps_raw_mean(tiny_model_dir):
    raw = ph.BiEncoder(tiny_model_dir, normalize=False).encode_docs(TEXTS[:2])
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), manual(tiny_model_dir, TEXTS[:2]), atol=1e-5)


def test_prefixes_are_prepended(tiny_model_dir):
    e5 = ph.BiEncoder(tiny_model_dir, query_prefix="query: ", doc_prefix="passage: ")
    plain = ph.BiEncoder(tiny_model_dir)
    np.testing.assert_allclose(e5.encode_queries(["Wo ist das Tagebuch?"]), plain.encode_queries(["query: Wo ist das Tagebuch?"]), atol=1e-6)
    np.testing.assert_allclose(e5.encode_docs(["Tin."]), plain.encode_docs(["passage: Tin."]), atol=1e-6)


def test_max_length_truncates(tiny_model_dir):
    short = ph.BiEncoder(tiny_model_dir, doc_max_length=6)
    # 6 tokens = [CLS] + 4 characters + [SEP]; the rest of the text is cut
    np.testing.assert_allclose(short.encode_docs(["Tin was mined"]), short.encode_docs(["Tin wXXXXX"]), atol=1e-6)


def test_sentence_plus_context_encodes_the_pair(tiny_model_dir):
    enc = ph.BiEncoder(tiny_model_dir, doc_text="sentence+context")
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
    enc = ph.BiEncoder(d)
    assert enc.settings == EncoderSettings(pooling="cls", normalize=True, query_prefix="query: ", doc_prefix="passage: ",
                                           query_max_length=64, doc_max_length=77)
    assert ph.BiEncoder(d, pooling="mean").settings.pooling == "mean"  # explicit arguments win
    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(str(d), device="cpu")
    np.testing.assert_allclose(st.encode(TEXTS, prompt_name="passage"), enc.encode_docs(TEXTS), atol=1e-5)
    np.testing.assert_allclose(st.encode(["Wer?"], prompt_name="query"), enc.encode_queries(["Wer?"]), atol=1e-5)


def test_loaded_model_and_tokenizer(tiny_model_dir):
    tok, model = AutoTokenizer.from_pretrained(tiny_model_dir), AutoModel.from_pretrained(tiny_model_dir)
    enc = ph.BiEncoder(model, tok)
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
    with pytest.raises(ValueError, match="needs a CUDA device"):
        ph.BiEncoder(tiny_model_dir, dtype="float16", device="cpu")
    with pytest.raises(ValueError, match="pooling='max' is not supported"):
        ph.BiEncoder(tiny_model_dir, pooling="max")
    with pytest.raises(ValueError, match="doc_text='title'"):
        ph.BiEncoder(tiny_model_dir, doc_text="title")
