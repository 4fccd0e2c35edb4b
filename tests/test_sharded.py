"""Sharded indexing: torchrun processes (gloo on the CPU) and Python ranks give the index one process gives,
and a killed run resumes from the shards that finished."""
import os
import subprocess
import sys

import numpy as np
import pytest

import pyterrier_hybrid as ph
from pyterrier_hybrid.index import sharded
from pyterrier_hybrid.index.encoder_identity import encoder_identity

from conftest import DEMO_FILES  # noqa: F401  (the demo collection's files must be there)


def corpus(n=50):
    langs = ["en", "de", "fr"]
    words = {"en": "river stone bread window", "de": "Fluss Stein Brot Fenster", "fr": "rivière pierre pain fenêtre"}
    return [{"docno": f"{langs[i % 3]}:{i}", "lang": langs[i % 3],
             "text": " ".join(words[langs[i % 3]].split()[: 1 + i % 4]) + f" {i}"} for i in range(n)]


def stored(index):
    return list(index.docnos), index._contents().vectors, [index.langs[c] for c in index._contents().lang_codes]


@pytest.fixture(scope="module")
def enc(tiny_model_dir):
    return ph.BiEncoder(tiny_model_dir, batch_size=8, dtype="float32")


def test_python_ranks_equal_one_process(enc, tmp_path):
    docs = corpus()
    one = ph.index_corpus(enc, docs, tmp_path / "one", shard_size=7)
    assert ph.index_corpus(enc, docs, tmp_path / "two", rank=1, world_size=2, shard_size=7) is None
    two = ph.index_corpus(enc, docs, tmp_path / "two", rank=0, world_size=2, shard_size=7, poll_s=0.01)
    d1, v1, l1 = stored(one)
    d2, v2, l2 = stored(two)
    assert d1 == d2 == [d["docno"] for d in docs] and l1 == l2 == [d["lang"] for d in docs]
    np.testing.assert_allclose(v2, v1, atol=1e-5)
    np.testing.assert_allclose(v1, enc.encode_docs([d["text"] for d in docs]), atol=1e-5)
    assert not (tmp_path / ".two.shards").exists()  # the shards go once the index is assembled
    assert one.encoder == two.encoder == encoder_identity(enc)  # the model is recorded, for retriever() to check


def test_killed_run_resumes_from_finished_shards(enc, tmp_path, monkeypatch):
    docs = corpus()
    whole = ph.index_corpus(enc, docs, tmp_path / "whole", shard_size=10)
    written = []
    real = sharded._write_shard

    def dies_at_third(root, encoder, it, first):
        if first == 20 and not written.count("died"):
            written.append("died")
            raise KeyboardInterrupt("killed")
        written.append(first)
        real(root, encoder, it, first)
    monkeypatch.setattr(sharded, "_write_shard", dies_at_third)
    with pytest.raises(KeyboardInterrupt):
        ph.index_corpus(enc, docs, tmp_path / "resumed", shard_size=10)
    assert written == [0, 10, "died"] and not (tmp_path / "resumed").exists()
    assert sorted(p.name for p in (tmp_path / ".resumed.shards").iterdir()) == ["plan.json", "shard-00000", "shard-00001"]
    resumed = ph.index_corpus(enc, docs, tmp_path / "resumed", shard_size=10)
    assert written == [0, 10, "died", 20, 30, 40]  # the two finished shards are not encoded again
    d1, v1, l1 = stored(whole)
    d2, v2, l2 = stored(resumed)
    assert d1 == d2 and l1 == l2
    np.testing.assert_array_equal(v1, v2)


def test_shards_of_another_run_are_refused(enc, tmp_path, monkeypatch):
    docs = corpus()
    monkeypatch.setattr(sharded, "_write_shard", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        ph.index_corpus(enc, docs, tmp_path / "i", shard_size=10)
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"holds shards of another indexing run \(differs in \['corpus', 'docs'\]\)"):
        ph.index_corpus(enc, docs[:40], tmp_path / "i", shard_size=10)
    with pytest.raises(TypeError, match="needs a corpus with a length"):
        ph.index_corpus(enc, iter(docs), tmp_path / "j")
    ph.index_corpus(enc, docs[:5], tmp_path / "k")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        ph.index_corpus(enc, docs, tmp_path / "k")


def test_duplicate_docnos_are_refused_within_and_across_shards(enc, tmp_path):
    docs = corpus(30)
    docs[15] = {**docs[15], "docno": docs[12]["docno"]}  # both in the second shard of 10
    with pytest.raises(ValueError, match=r"documents 12 and 15 both have docno 'en:12'; docnos must be unique"):
        ph.index_corpus(enc, docs, tmp_path / "within", shard_size=10)
    docs = corpus(30)
    docs[25] = {**docs[25], "docno": docs[3]["docno"]}  # the first and the third shard
    with pytest.raises(ValueError, match=r"documents 3 and 25 both have docno 'en:3'; docnos must be unique"):
        ph.index_corpus(enc, docs, tmp_path / "across", shard_size=10)
    assert not (tmp_path / "within").exists() and not (tmp_path / "across").exists()


def cli_index(out, model, nproc):
    args = ["index", "--dataset", "lareqa-demo", "--model", str(model), "--out", str(out), "--dtype", "float32",
            "--shard-size", "5", "--batch-size", "4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if nproc == 1:
        cmd = [sys.executable, "-m", "pyterrier_hybrid.cli"] + args
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_addr",
               "127.0.0.1", "--master_port", str(29600 + os.getpid() % 1000), "-m", "pyterrier_hybrid.cli"] + args
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return ph.FaissIndex(out)


def test_torchrun_two_processes_equal_one(tiny_model_dir, tmp_path):
    one = cli_index(tmp_path / "one", tiny_model_dir, 1)
    two = cli_index(tmp_path / "two", tiny_model_dir, 2)
    d1, v1, l1 = stored(one)
    d2, v2, l2 = stored(two)
    assert len(d1) > 10 and d1 == d2 and l1 == l2 and set(l1) == {"en", "de", "fr"}
    np.testing.assert_allclose(v2, v1, atol=1e-5)
