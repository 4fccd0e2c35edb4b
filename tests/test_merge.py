"""Weight merging: every parameter interpolated, parents named, mismatched models refused."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import pyterrier_hybrid as ph
from pyterrier_hybrid.model.model_dir import write_settings
from pyterrier_hybrid.testing import make_tiny_model


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two tiny models with one architecture and tokenizer but different random weights (prefixes stated)."""
    root = tmp_path_factory.mktemp("parents")
    out = []
    for seed in (1, 2):
        d = make_tiny_model(root / f"m{seed}", seed=seed, dropout=0.0)
        write_settings(d, ph.EncoderSettings(query_prefix="query: ", doc_prefix="passage: "), dim=32)
        out.append(d)
    return out


def test_every_parameter_is_the_weighted_mean(pair, tmp_path):
    a, b = pair
    out = ph.merge_models(a, b, 0.25, tmp_path / "m")
    wa, wb, wm = (load_file(d / "model.safetensors") for d in (a, b, out))
    assert wm.keys() == wa.keys() and len(wm) > 20
    for name in wm:
        expected = 0.25 * wa[name].numpy().astype(np.float64) + 0.75 * wb[name].numpy().astype(np.float64)
        np.testing.assert_allclose(wm[name].numpy(), expected, rtol=1e-6, atol=1e-7)
    assert not np.allclose(wm["encoder.layer.0.output.dense.weight"], wa["encoder.layer.0.output.dense.weight"])
    # λ = 1 is A itself, so its vectors are A's
    one = ph.merge_models(a, b, 1.0, tmp_path / "one")
    texts = ["Wann wurde die Brücke gebaut?", "The bridge opened in 1890."]
    np.testing.assert_allclose(ph.BiEncoder(one).encode_docs(texts), ph.BiEncoder(a).encode_docs(texts), atol=1e-6)
    assert ph.BiEncoder(out).settings == ph.BiEncoder(a).settings


def test_config_and_card_name_both_parents(pair, tmp_path):
    from huggingface_hub import ModelCard
    from pyterrier_hybrid.model.model_card import check_own_card
    a, b = pair
    out = ph.merge_models(a, b, 0.75, tmp_path / "m")
    config = json.loads((out / "merge_config.json").read_text())
    assert [(p["model"], p["weight"]) for p in config["parents"]] == [(str(a), 0.75), (str(b), 0.25)]
    card = ModelCard.load(out / "README.md")
    assert card.data.base_model == [str(a), str(b)] and card.data.pyterrier_hybrid["merge"]["weight"] == 0.75
    assert check_own_card(out) == out / "README.md"  # evaluate --update-card accepts it
    with pytest.raises(FileExistsError, match="--overwrite"):
        ph.merge_models(a, b, 0.5, out)


def test_a_fine_tune_merged_with_its_start(tiny_model_no_dropout, tmp_path):
    from pyterrier_hybrid import HybridBatchSampler, TrainConfig, Trainer
    from pyterrier_hybrid.training import from_lareqa
    torch.manual_seed(0)
    start = ph.BiEncoder(tiny_model_no_dropout, query_prefix="query: ", doc_prefix="passage: ")
    tuned = Trainer(start, HybridBatchSampler(from_lareqa("lareqa-demo"), 4), tmp_path / "tuned",
                    TrainConfig(steps=3, lr=1e-3), verbose=False).train()
    base = shutil.copytree(tiny_model_no_dropout, tmp_path / "start")  # the start, with the prefixes it trained with
    write_settings(base, start.settings, dim=32)
    out = ph.merge_models(tuned, base, 0.5, tmp_path / "m")
    wt, ws, wm = (load_file(d / "model.safetensors") for d in (tuned, base, out))
    w = "encoder.layer.1.attention.self.query.weight"
    assert not torch.equal(wt[w], ws[w])
    torch.testing.assert_close(wm[w], 0.5 * wt[w] + 0.5 * ws[w])
    parent = json.loads((out / "merge_config.json").read_text())["parents"][0]
    assert (parent["start"], parent["sampling"], parent["weight"]) == (str(tiny_model_no_dropout), "hybrid", 0.5)


def test_mismatched_models_are_refused(pair, tmp_path):
    a, b = pair
    wider = make_tiny_model(tmp_path / "wider", hidden=48)
    with pytest.raises(ValueError, match="different architectures .*hidden_size: 32 vs 48"):
        ph.merge_models(a, wider, 0.5, tmp_path / "x")
    other_tok = shutil.copytree(b, tmp_path / "other-tok")
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(other_tok)
    tok.add_tokens(["Brückenbau"])
    tok.save_pretrained(other_tok)
    with pytest.raises(ValueError, match="different tokenizers"):
        ph.merge_models(a, other_tok, 0.5, tmp_path / "x")
    cls = shutil.copytree(b, tmp_path / "cls")
    write_settings(cls, ph.EncoderSettings(pooling="cls", query_prefix="query: ", doc_prefix="passage: "), 32)
    with pytest.raises(ValueError, match="encode differently .*pooling: 'mean' vs 'cls'"):
        ph.merge_models(a, cls, 0.5, tmp_path / "x")
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        ph.merge_models(a, b, 1.5, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_cli_merge(pair, tmp_path):
    a, b = pair
    done = subprocess.run([sys.executable, "-m", "pyterrier_hybrid.cli", "merge", str(a), str(b), "--weight", "0.5",
                           "--out", str(tmp_path / "m")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == {"path": str(tmp_path / "m"), "a": str(a), "b": str(b), "weight": 0.5}
    bad = subprocess.run([sys.executable, "-m", "pyterrier_hybrid.cli", "merge", str(a), str(b), "--weight", "-0.1",
                          "--out", str(tmp_path / "n")], capture_output=True, text=True)
    assert bad.returncode == 2 and "error: --weight -0.1 is outside [0, 1]" in bad.stderr
