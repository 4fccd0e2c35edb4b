"""The CLI against the in-process Trainer on the same batches: does `pyterrier-hybrid train` add time per step?

    python benchmarks/train_paths.py        # writes benchmarks/results/train-paths.json (per-step seconds)

21 batches of 16 from MLQA-R (the CLI's sampler, seed 0), fp32 and bf16 with frozen word embeddings: first our
Trainer in this process on those batches, then `pyterrier-hybrid train` on the same ones (benchmarks/train.py's
cli_run, which checks nothing here: its sampler draws the same batches from the same seed).
"""
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

import train as tb  # benchmarks/train.py: a script's own folder is on the import path
from pyterrier_hybrid import BiEncoder, TrainConfig, Trainer

STEPS = 21
MODEL = ".cache/me5"


class Replay:
    """Fixed batches as a sampler, described as the sampler that drew them."""

    def __init__(self, batches, description):
        self.batches, self.batch_size, self.description = batches, len(batches[0].triplets), description

    def __iter__(self):
        return iter(self.batches)

    def describe(self):
        return self.description

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def in_process(batches, description, **config):
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m"
        enc = BiEncoder(MODEL, query_max_length=tb.QLEN, doc_max_length=tb.DLEN, dtype="float32")
        Trainer(enc, Replay(batches, description), out, TrainConfig(steps=STEPS, checkpoint_every=10_000, **config),
                verbose=False).train()
        return [json.loads(line)["seconds"] for line in (out / "train_log.jsonl").read_text().splitlines()]


def main():
    os.environ.setdefault("PYTERRIER_HYBRID_DATA", str(tb.SHARED))
    source = tb.sampler(16)
    batches = [b for b, _ in zip(source, range(STEPS))]
    res = {}
    for name, config, flags in [("fp32", {}, []), ("bf16+frozen", {"amp": "bf16", "freeze_embeddings": True},
                                                   ["--amp", "bf16", "--freeze-embeddings"])]:
        a = in_process(batches, source.describe(), **config)
        b = tb.cli_run(MODEL, 16, STEPS, flags)[0]
        res[name] = (a, b)
        print(name, "in-process mean 2-N", np.mean(a[1:]), "median 2-6", np.median(a[1:6]), "| CLI mean 2-N",
              np.mean(b[1:]), "median 2-6", np.median(b[1:6]), flush=True)
    print("ratio in-process", np.mean(res["fp32"][0][1:]) / np.mean(res["bf16+frozen"][0][1:]),
          "CLI", np.mean(res["fp32"][1][1:]) / np.mean(res["bf16+frozen"][1][1:]))
    (tb.RESULTS / "train-paths.json").write_text(json.dumps(res))


if __name__ == "__main__":
    main()
