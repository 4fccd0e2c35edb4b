"""A few real training steps: multilingual-e5-small on MLQA-R, through the CLI, loaded back by BiEncoder."""
import json
import subprocess
import sys

import numpy as np
import pytest

import pyterrier_hybrid as ph

pytestmark = pytest.mark.integration


def test_hybrid_training_on_mlqa_r(shared_data, me5_dir, tmp_path):
    out = tmp_path / "hybrid"
    cmd = [sys.executable, "-m", "pyterrier_hybrid.cli", "train", "--sampling", "hybrid", "--alpha", "0.5",
           "--model", str(me5_dir), "--data", str(shared_data / "mlqa-r"), "--out", str(out), "--steps", "4",
           "--batch-size", "8", "--lr", "2e-5", "--warmup-ratio", "0", "--doc-max-length", "64", "--seed", "1",
           "--grad-cache-chunk", "4", "--checkpoint-every", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    langs = {"ar", "de", "en", "es", "hi", "vi", "zh"}
    for r in log:
        pairs = [p.split("-") for p in r["langs"]]
        assert all(x in langs and y in langs for x, y in pairs)
        assert all(x == y for x, y in pairs) if r["kind"] == "xx" else all(x != y for x, y in pairs)
    assert all(np.isfinite(r["loss"]) and r["loss"] > 0 for r in log)
    print("losses", [round(r["loss"], 4) for r in log], "kinds", [r["kind"] for r in log])
    # the trained model still ranks: an English question finds its German answer among distractors
    before, after = ph.BiEncoder(me5_dir), ph.BiEncoder(out)
    assert after.settings.query_prefix == "query: "
    q = ["Where is the diary kept today?"]
    docs = ["Heute liegt das Tagebuch im Museum der Stadt.", "Im Tal wurde Zinn abgebaut.", "Nachts fahren Schiffe vorbei."]
    for enc in (before, after):
        assert int(np.argmax(enc.encode_docs(docs) @ enc.encode_queries(q)[0])) == 0
    moved = np.abs(after.encode_docs(docs) - before.encode_docs(docs)).max()
    assert 0 < moved < 0.2
