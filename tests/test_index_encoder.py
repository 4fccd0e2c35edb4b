"""The model an index was encoded with: recorded when it is built, checked when another model's queries come."""
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyterrier as pt
import pytest

import pyterrier_hybrid as ph
from pyterrier_hybrid.index.encoder_identity import encoder_identity, weights_hash
from pyterrier_hybrid.testing import make_tiny_model

DOCS = [{"docno": f"d{i}", "text": t, "lang": "en"} for i, t in enumerate(
    ["river stone", "bread window", "stone bread river", "window", "a river of bread"])]
TOPICS = pd.DataFrame({"qid": ["q0", "q1"], "query": ["river", "bread window"]})


@pytest.fixture(scope="module")
def enc(tiny_model_dir):
    return ph.BiEncoder(tiny_model_dir, dtype="float32")


@pytest.fixture(scope="module")
def other(tmp_path_factory):
    """Another model of the same dimension and vocabulary: other weights."""
    return ph.BiEncoder(make_tiny_model(tmp_path_factory.mktemp("other"), seed=1), dtype="float32")


@pytest.fixture
def built(enc, tmp_path):
    return (enc.doc_encoder() >> ph.FaissIndex(tmp_path / "idx")).index(DOCS)  # the pipeline names the model


def test_the_index_records_the_model(built, enc, tiny_model_dir):
    stored = json.loads((Path(built.path) / "pt_meta.json").read_text())["encoder"]
    assert stored == built.encoder == encoder_identity(enc)
    assert stored["model"] == str(tiny_model_dir) and stored["dtype"] == "float32" and stored["doc_text"] == "sentence"
    assert (stored["pooling"], stored["query_max_length"]) == (enc.settings.pooling, enc.settings.query_max_length)
    # the hash is the weights': loading them again gives it
    assert weights_hash(ph.BiEncoder(tiny_model_dir).model) == stored["weights"]


def test_another_model_is_refused_unless_asked(built, enc, other, tiny_model_dir, tmp_path, caplog):
    refused = (rf"holds documents encoded by model '{tiny_model_dir}', but the queries would be encoded by "
               rf"'{other.name}', which differs \(weights: .*allow_other_encoder=True")
    with pytest.raises(ValueError, match=refused):
        built.retriever(other)
    loaded = pt.Artifact.load(str(built.path))
    with pytest.raises(ValueError, match=r"differs \(query_prefix: '' there, 'q: ' here\)"):
        loaded.retriever(ph.BiEncoder(tiny_model_dir, dtype="float32", query_prefix="q: "))
    with pytest.raises(ValueError, match=r"differs \(dtype: 'float32' there, 'bfloat16' here\)"):
        loaded.retriever(ph.BiEncoder(tiny_model_dir, dtype="bfloat16"))
    # asked for: the other model's queries against the stored vectors, exactly as numpy ranks them
    res = loaded.retriever(other, num_results=None, allow_other_encoder=True)(TOPICS)
    scores = other.encode_queries(list(TOPICS["query"])) @ enc.encode_docs([d["text"] for d in DOCS]).T
    for i, qid in enumerate(TOPICS["qid"]):
        got = res[res.qid == qid].sort_values("rank")
        np.testing.assert_allclose(got.score, np.sort(scores[i])[::-1], rtol=1e-5, atol=1e-6)
    copy = shutil.copytree(tiny_model_dir, tmp_path / "copy")
    assert len(loaded.retriever(ph.BiEncoder(copy, dtype="float32"), num_results=2)(TOPICS)) == 4  # same weights
    # an index of format 2 records no model: it loads, and the check says it cannot be made
    meta = json.loads((Path(built.path) / "pt_meta.json").read_text())
    del meta["encoder"]
    (Path(built.path) / "pt_meta.json").write_text(json.dumps({**meta, "format_version": 2}))
    old = ph.FaissIndex(built.path)
    assert old.format_version == 2 and old.encoder is None
    with caplog.at_level(logging.WARNING):
        assert len(old.retriever(other, num_results=2)(TOPICS)) == 4
    assert "is in format 2, which records no model" in caplog.text


def test_indexing_without_a_model_records_none(enc, other, tmp_path, caplog):
    encoded = enc.doc_encoder()(pd.DataFrame(DOCS)).to_dict("records")
    plain = ph.FaissIndex(tmp_path / "plain").index(encoded)
    with caplog.at_level(logging.WARNING):
        assert plain.encoder is None and len(plain.retriever(other, num_results=1)(TOPICS)) == 2  # vectors given
    assert caplog.text == ""
    assert ph.FaissIndex(tmp_path / "given").indexer(encoder=enc).index(encoded).encoder == encoder_identity(enc)


def test_a_pipeline_records_its_encoder_only_before_the_index(enc, tmp_path):
    explicit = (enc.doc_encoder() >> ph.FaissIndex(tmp_path / "a").encoded_by(enc)).index(DOCS)
    assert explicit.encoder == encoder_identity(enc)
    vectors = enc.doc_encoder()(pd.DataFrame(DOCS)).to_dict("records")
    bare = ph.FaissIndex(tmp_path / "b")
    bare.index(vectors)  # ready-made vectors: no model to record
    assert bare.encoder is None
