"""Training speed and memory.

    python benchmarks/train.py speed --model .cache/me5 [--batch-size 16] [--steps 50]
    python benchmarks/train.py memory --model .cache/me5 [--batch-size 64] [--chunk 8]

speed: steps/s and losses of our Trainer in fp32, bf16 autocast, and bf16 with frozen word embeddings,
against a training loop with sentence-transformers' MultipleNegativesRankingLoss (the loss
sentence-transformers' trainer uses for this task) on the same model, the same (query, positive, hard negative)
batches from MLQA-R, the same lengths, optimiser, learning rate and temperature (scale = 1 / 0.05), in one
process. The first step of each is a warm-up; every system trains on the same ``--steps`` batches, so the
loss curves compare point by point. Writes benchmarks/results/train.json.

memory: peak RSS of two training steps at one batch size, with and without gradient caching, each in a
fresh process.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"
QLEN, DLEN = 64, 128


def sampler(batch_size, seed=0):
    from pyterrier_hybrid import HybridBatchSampler
    from pyterrier_hybrid.training import load_source
    return HybridBatchSampler(load_source(str(SHARED / "mlqa-r")), batch_size=batch_size, alpha=0.5, seed=seed)


def sentence_transformers_run(model, batches):
    """Per-step seconds and losses of a loop with sentence-transformers' MultipleNegativesRankingLoss."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    torch.manual_seed(0)
    st = SentenceTransformer(model, device="cpu")
    loss_fn = MultipleNegativesRankingLoss(st, scale=1 / 0.05)
    opt = torch.optim.AdamW(st.parameters(), lr=3e-5, weight_decay=0.01)
    st.train()
    seconds, losses = [], []
    for batch in batches:
        start = time.perf_counter()
        cols = [["query: " + t.query for t in batch.triplets], ["passage: " + t.positive for t in batch.triplets],
                ["passage: " + (t.negative or "") for t in batch.triplets]]
        feats = []
        for i, texts in enumerate(cols):
            st.max_seq_length = QLEN if i == 0 else DLEN
            feats.append(dict(st.preprocess(texts)))
        loss = loss_fn(feats, None)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(st.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        seconds.append(time.perf_counter() - start)
        losses.append(float(loss.detach()))
    return seconds, losses


def trainer_run(model, batches, **config):
    """Per-step seconds and losses of our Trainer on fixed batches."""
    import torch

    from pyterrier_hybrid import BiEncoder, TrainConfig, Trainer

    torch.manual_seed(0)
    out = Path(tempfile.mkdtemp()) / "m"
    encoder = BiEncoder(model, query_max_length=QLEN, doc_max_length=DLEN, dtype="float32")
    Trainer(encoder, batches, out, TrainConfig(steps=len(batches), checkpoint_every=10_000, **config),
            verbose=False).train()
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    return [r["seconds"] for r in log], [r["loss"] for r in log]


def speed(args):
    source = sampler(args.batch_size)
    batches = iter_batches([b for b, _ in zip(source, range(args.steps + 1))], source.describe())
    systems = {
        "sentence-transformers MNRL loop (fp32)": lambda: sentence_transformers_run(args.model, batches),
        "pyterrier-hybrid Trainer, fp32": lambda: trainer_run(args.model, batches),
        "pyterrier-hybrid Trainer, bf16": lambda: trainer_run(args.model, batches, amp="bf16"),
        "pyterrier-hybrid Trainer, bf16 + frozen word embeddings":
            lambda: trainer_run(args.model, batches, amp="bf16", freeze_embeddings=True),
    }
    runs = {}
    for name, run in systems.items():
        seconds, losses = run()
        runs[name] = {"steps_per_s": (len(seconds) - 1) / sum(seconds[1:]), "losses": losses}
        print(f"{name}: {runs[name]['steps_per_s']:.3f} steps/s", flush=True)
    peer, base = runs["sentence-transformers MNRL loop (fp32)"], runs["pyterrier-hybrid Trainer, fp32"]
    print(f"\nbatch {args.batch_size} (query, positive, hard negative), lengths {QLEN}/{DLEN}, {args.steps + 1} "
          f"batches (the first a warm-up)\n")
    print("| system | steps/s | ratio to ST | ratio to ours fp32 | mean loss, last 10 | loss deviation from ours fp32: "
          "mean, largest |")
    print("|---|---|---|---|---|---|")
    for name, r in runs.items():
        dev = np.abs(np.array(r["losses"]) - base["losses"]) / np.array(base["losses"])
        r.update(ratio_to_st=r["steps_per_s"] / peer["steps_per_s"], ratio_to_fp32=r["steps_per_s"] / base["steps_per_s"],
                 last10=float(np.mean(r["losses"][-10:])), mean_rel_dev=float(dev.mean()), max_rel_dev=float(dev.max()))
        print(f"| {name} | {r['steps_per_s']:.3f} | {r['ratio_to_st']:.2f} | {r['ratio_to_fp32']:.2f} | "
              f"{r['last10']:.4f} | {100 * r['mean_rel_dev']:.1f}%, {100 * r['max_rel_dev']:.1f}% |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train.json").write_text(json.dumps({"batch_size": args.batch_size, "steps": args.steps,
                                                    "lengths": [QLEN, DLEN], "runs": runs}, indent=2))


class iter_batches:
    """Replays fixed batches as a sampler (described as the sampler that drew them)."""

    def __init__(self, batches, description):
        self.batches, self.batch_size, self.description = batches, len(batches[0].triplets), description

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)

    def describe(self):
        return self.description

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


CHILD = r"""
import json, resource, sys, tempfile
sys.path.insert(0, sys.argv[4])
from train import sampler
from pyterrier_hybrid import TrainConfig, Trainer
model, batch, chunk = sys.argv[1], int(sys.argv[2]), None if sys.argv[3] == "none" else int(sys.argv[3])
t = Trainer(model, sampler(batch), tempfile.mkdtemp() + "/m", TrainConfig(steps=2, grad_cache_chunk=chunk, checkpoint_every=10_000), verbose=False)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
it = iter(t.sampler)
for _ in range(2):
    t.step(next(it))
print(json.dumps({"base_mb": base / 1024, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def memory(args):
    print(f"batch {args.batch_size}, two training steps, fresh process each")
    for chunk in ["none", str(args.chunk)]:
        out = subprocess.run([sys.executable, "-c", CHILD, args.model, str(args.batch_size), chunk, str(Path(__file__).parent)],
                             capture_output=True, text=True, check=True, env={**os.environ})
        m = json.loads(out.stdout.strip().splitlines()[-1])
        name = "no gradient caching" if chunk == "none" else f"gradient caching, chunks of {chunk}"
        print(f"{name:34s} peak RSS {m['peak_mb']:7.0f} MB ({m['peak_mb'] - m['base_mb']:6.0f} MB above the loaded model)")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["speed", "memory"])
    p.add_argument("--model", required=True)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--steps", type=int, default=50, help="speed: timed steps after one warm-up")
    p.add_argument("--chunk", type=int, default=8)
    args = p.parse_args()
    args.batch_size = args.batch_size or (16 if args.mode == "speed" else 64)
    os.environ.setdefault("PYTERRIER_HYBRID_DATA", str(SHARED))
    speed(args) if args.mode == "speed" else memory(args)


if __name__ == "__main__":
    main()
