"""Training speed and memory.

    python benchmarks/train.py speed --model .cache/me5 [--batch-size 16] [--steps 8]
    python benchmarks/train.py memory --model .cache/me5 [--batch-size 64] [--chunk 8]

speed: steps/s of our Trainer against a training loop with sentence-transformers'
MultipleNegativesRankingLoss (the loss sentence-transformers' trainer uses for this task) on the same
model, the same (query, positive, hard negative) batches from MLQA-R, the same lengths, optimiser,
learning rate and temperature (scale = 1 / 0.05), in one process. The first step of each is a warm-up.

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
from dataclasses import replace
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def sampler(batch_size, seed=0):
    from pyterrier_hybrid import HybridBatchSampler
    from pyterrier_hybrid.training import load_source
    return HybridBatchSampler(load_source(str(SHARED / "mlqa-r")), batch_size=batch_size, alpha=0.5, seed=seed)


def sentence_transformers_rate(model, batches, qlen, dlen):
    """Steps/s of a loop with sentence-transformers' MultipleNegativesRankingLoss (first batch: warm-up)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    torch.manual_seed(0)
    st = SentenceTransformer(model, device="cpu")
    loss_fn = MultipleNegativesRankingLoss(st, scale=1 / 0.05)
    opt = torch.optim.AdamW(st.parameters(), lr=3e-5, weight_decay=0.01)
    st.train()

    def step(batch):
        cols = [["query: " + t.query for t in batch.triplets], ["passage: " + t.positive for t in batch.triplets],
                ["passage: " + (t.negative or "") for t in batch.triplets]]
        feats = []
        for i, texts in enumerate(cols):
            st.max_seq_length = qlen if i == 0 else dlen
            feats.append(dict(st.tokenize(texts)))
        loss_fn(feats, None).backward()
        torch.nn.utils.clip_grad_norm_(st.parameters(), 1.0)
        opt.step()
        opt.zero_grad()

    step(batches[0])
    start = time.perf_counter()
    for b in batches[1:]:
        step(b)
    return (len(batches) - 1) / (time.perf_counter() - start)


def speed(args):
    import torch

    from pyterrier_hybrid import TrainConfig, Trainer

    qlen, dlen = 64, 128
    batches = [b for b, _ in zip(sampler(args.batch_size), range(args.steps + 1))]

    theirs = sentence_transformers_rate(args.model, batches, qlen, dlen)

    torch.manual_seed(0)
    out = Path(tempfile.mkdtemp()) / "m"
    trainer = Trainer(args.model, iter_batches(batches), out, TrainConfig(steps=args.steps + 1, checkpoint_every=10_000),
                      verbose=False)
    trainer.settings = replace(trainer.settings, query_max_length=qlen, doc_max_length=dlen)
    trainer.train()
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    ours = args.steps / sum(r["seconds"] for r in log[1:])
    print(f"batch {args.batch_size} (query, positive, hard negative), lengths {qlen}/{dlen}, {args.steps} timed steps")
    print(f"sentence-transformers MultipleNegativesRankingLoss loop  {theirs:.3f} steps/s")
    print(f"pyterrier-hybrid Trainer                                  {ours:.3f} steps/s")
    print(f"ratio (ours / sentence-transformers): {ours / theirs:.2f}")


class iter_batches:
    """Replays fixed batches as a sampler."""

    def __init__(self, batches):
        self.batches, self.batch_size = batches, len(batches[0].triplets)

    def __iter__(self):
        return iter(self.batches)

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
    t._train_step(next(it)); t.optimizer.step(); t.optimizer.zero_grad()
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
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--chunk", type=int, default=8)
    args = p.parse_args()
    args.batch_size = args.batch_size or (16 if args.mode == "speed" else 64)
    os.environ.setdefault("PYTERRIER_HYBRID_DATA", str(SHARED))
    speed(args) if args.mode == "speed" else memory(args)


if __name__ == "__main__":
    main()
