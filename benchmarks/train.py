"""Training speed and memory.

    python benchmarks/train.py speed --model .cache/me5 [--batch-size 16] [--steps 50]
    python benchmarks/train.py memory --model .cache/me5 [--batch-size 64] [--chunk 8]
    python benchmarks/train.py recipes --model .cache/me5 [--steps 16] [--recipes multi-k3,both]

speed: `pyterrier-hybrid train` itself, in a fresh process per configuration (fp32; bf16 autocast; bf16 with
frozen word embeddings), timed by the seconds per step in its own train_log.jsonl, against a training loop with
sentence-transformers' MultipleNegativesRankingLoss (the loss sentence-transformers' trainer uses for this task)
on the same model and the same (query, positive, hard negative) batches: the CLI's sampler with the same seed,
checked batch for batch against the CLI's log. Same lengths, optimiser, learning rate and temperature
(scale = 1 / 0.05). Step 1 is a warm-up and left out; steps/s are reported over steps 2-6 (median, the window a
user sees first) and over steps 2 to N (mean). Writes benchmarks/results/train.json.

memory: peak RSS of two training steps at one batch size, with and without gradient caching, each in a
fresh process.

recipes: the pool study's training recipes against its baseline, hybrid α = 0.5, on one host in one run, so the
seconds compare (the study's own logs come from several hosts and sittings). Each recipe trains --steps steps of
the study's exact command (seed 0, so its first batches) in a fresh process; step 1 is a warm-up and left out. A
recipe's seconds per step weighs this host's median step time per batch kind by the kinds of the study's 120-step
seed-0 run (its committed log), as ``studies.runs.training_seconds`` does. Writes benchmarks/results/train-recipes.json.
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


def cli_run(model, batch_size, steps, flags):
    """Per-step seconds, losses and batch compositions of ``pyterrier-hybrid train`` run as a user runs it."""
    with tempfile.TemporaryDirectory() as tmp:  # the trained model is not kept
        out = Path(tmp) / "m"
        cmd = [sys.executable, "-m", "pyterrier_hybrid.cli", "train", "--sampling", "hybrid", "--alpha", "0.5",
               "--model", model, "--data", str(SHARED / "mlqa-r"), "--out", str(out), "--steps", str(steps),
               "--batch-size", str(batch_size), "--seed", "0", "--query-max-length", str(QLEN), "--doc-max-length",
               str(DLEN), *flags]
        subprocess.run(cmd, check=True, capture_output=True)
        log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    return [r["seconds"] for r in log], [r["loss"] for r in log], [(r["kind"], r["langs"]) for r in log]


def rates(seconds):
    """steps/s over steps 2-6 (median step time) and over steps 2 to N (mean)."""
    return 1 / float(np.median(seconds[1:6])), (len(seconds) - 1) / sum(seconds[1:])


def shapes(model, batches):
    """Each batch's padded token lengths (queries, positives, negatives), as the trainer's forward pass pads them."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)

    def longest(texts, prefix, limit):
        return max(len(ids) for ids in tok([prefix + t for t in texts], truncation=True, max_length=limit)["input_ids"])

    return [(longest([t.query for t in b.triplets], "query: ", QLEN),
             longest([t.positive for t in b.triplets], "passage: ", DLEN),
             longest([t.negative or "" for t in b.triplets], "passage: ", DLEN)) for b in batches]


def first_seen(signatures):
    """Per step, whether any of its padded lengths is new (no earlier step had that query or passage length)."""
    seen_q, seen_d, out = set(), set(), []
    for q, p, n in signatures:
        out.append(q not in seen_q or p not in seen_d or n not in seen_d)
        seen_q.add(q)
        seen_d.update((p, n))
    return out


def speed(args):
    source = sampler(args.batch_size)
    batches = [b for b, _ in zip(source, range(args.steps + 1))]
    new_shape = first_seen(shapes(args.model, batches))
    systems = {
        "pyterrier-hybrid train (CLI), fp32": [],
        "pyterrier-hybrid train (CLI), --amp bf16": ["--amp", "bf16"],
        "pyterrier-hybrid train (CLI), --amp bf16 --freeze-embeddings": ["--amp", "bf16", "--freeze-embeddings"],
    }
    runs = {}
    for name, flags in systems.items():
        seconds, losses, composition = cli_run(args.model, args.batch_size, args.steps + 1, flags)
        if composition != [(b.kind, b.langs) for b in batches]:
            raise SystemExit(f"{name} trained on other batches than the peer; the comparison would be unfair")
        runs[name] = {"seconds": seconds, "losses": losses}
    peer = "sentence-transformers MNRL loop (fp32)"
    seconds, losses = sentence_transformers_run(args.model, batches)
    runs[peer] = {"seconds": seconds, "losses": losses}
    base = runs["pyterrier-hybrid train (CLI), fp32"]
    for r in runs.values():
        r["steps_per_s_2_6"], r["steps_per_s"] = rates(r["seconds"])
    print(f"\nbatch {args.batch_size} (query, positive, hard negative), lengths {QLEN}/{DLEN}, {args.steps + 1} "
          "batches (step 1 a warm-up, left out)\n")
    print("| system | steps/s, steps 2-6 (median) | steps/s, steps 2-N | ratio to ST, 2-N | ratio to CLI fp32: "
          "2-6, 2-N | loss deviation from CLI fp32: mean, largest |")
    print("|---|---|---|---|---|---|")
    for name, r in runs.items():
        dev = np.abs(np.array(r["losses"]) - base["losses"]) / np.array(base["losses"])
        r.update(ratio_to_st=r["steps_per_s"] / runs[peer]["steps_per_s"],
                 ratio_to_fp32=r["steps_per_s"] / base["steps_per_s"],
                 ratio_to_fp32_2_6=r["steps_per_s_2_6"] / base["steps_per_s_2_6"],
                 mean_rel_dev=float(dev.mean()), max_rel_dev=float(dev.max()))
        print(f"| {name} | {r['steps_per_s_2_6']:.3f} | {r['steps_per_s']:.3f} | {r['ratio_to_st']:.2f} | "
              f"{r['ratio_to_fp32_2_6']:.2f}, {r['ratio_to_fp32']:.2f} | "
              f"{100 * r['mean_rel_dev']:.1f}%, {100 * r['max_rel_dev']:.1f}% |")
    # autocast kernels are prepared per input shape: a step with a padded length no earlier step had pays for it
    print(f"\nmedian step seconds, steps 2-N, on steps with a padded length not seen before "
          f"({sum(new_shape[1:])} steps) and on the rest ({len(new_shape) - 1 - sum(new_shape[1:])}):\n")
    print("| system | new length | seen length | ratio |")
    print("|---|---|---|---|")
    for name, r in runs.items():
        sec = np.array(r["seconds"][1:])
        new, seen = float(np.median(sec[np.array(new_shape[1:])])), float(np.median(sec[~np.array(new_shape[1:])]))
        r.update(median_s_new_length=new, median_s_seen_length=seen)
        print(f"| {name} | {new:.3f} | {seen:.3f} | {new / seen:.2f} |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train.json").write_text(json.dumps({"batch_size": args.batch_size, "steps": args.steps,
                                                    "lengths": [QLEN, DLEN], "new_length": new_shape, "runs": runs},
                                                   indent=2))


CHILD = r"""
import json, resource, sys, tempfile
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
        # the child imports this file as `train`, found through PYTHONPATH
        path = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
        out = subprocess.run([sys.executable, "-c", CHILD, args.model, str(args.batch_size), chunk],
                             capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": path})
        m = json.loads(out.stdout.strip().splitlines()[-1])
        name = "no gradient caching" if chunk == "none" else f"gradient caching, chunks of {chunk}"
        print(f"{name:34s} peak RSS {m['peak_mb']:7.0f} MB ({m['peak_mb'] - m['base_mb']:6.0f} MB above the loaded model)")


def recipes(args):
    from dataclasses import replace

    from pyterrier_hybrid.studies.alpha_sweep import RECIPE_FLAGS, study
    from pyterrier_hybrid.studies.pool import OUT, PoolStudy, equal_point
    from pyterrier_hybrid.studies.runs import RESULTS as STUDIES, Run, train_args

    settings = study("alpha", args.model)[0]
    settings = replace(settings, steps=args.steps + 1, eval_every=args.steps + 1)
    todo = {"hybrid": ("hybrid", (), STUDIES / "alpha" / "alpha0.5-seed0")}
    todo.update({name: (sampling, flags, OUT / "trained" / f"{name}-seed0")
                 for name, (sampling, flags) in PoolStudy(args.model, Path(tempfile.gettempdir()), False).recipes().items()
                 if equal_point(name) is None and (args.recipes is None or name in args.recipes)})
    rows = {}
    for name, (sampling, flags, committed) in todo.items():
        with tempfile.TemporaryDirectory() as tmp:  # the trained model is not kept
            out = Path(tmp) / "m"
            run = Run(name, sampling, 0.5, 0, RECIPE_FLAGS + tuple(flags))
            subprocess.run([sys.executable, "-m", "pyterrier_hybrid.cli", *train_args(settings, run, out)],
                           check=True, capture_output=True)
            log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
        timed = [r for r in log if "loss" in r][1:]
        median = {k: float(np.median([r["seconds"] for r in timed if r["kind"] == k])) for k in {r["kind"] for r in timed}}
        study_log = committed / "train_log.jsonl"
        steps = ([r for r in map(json.loads, study_log.read_text().splitlines()) if "loss" in r]
                 if study_log.is_file() else timed)
        missing = {r["kind"] for r in steps} - set(median)
        if missing:
            raise SystemExit(f"{name}: no timed step of kind {sorted(missing)} in {args.steps} steps; raise --steps")
        rows[name] = {"seconds_per_step": float(np.mean([median[r["kind"]] for r in steps])), "median_by_kind": median,
                      "passages_per_step": float(np.mean([r["passages"] for r in steps if "passages" in r]
                                                         or [r["passages"] for r in timed])),
                      "kinds_from": str(study_log.relative_to(STUDIES.parents[1])) if study_log.is_file() else "this run"}
        print(f"{name}: {rows[name]}", flush=True)
    from pyterrier_hybrid.model.precision import cpu_name, native_bf16
    base = rows["hybrid"]["seconds_per_step"]
    print(f"\n{cpu_name()}, bf16 {'native' if native_bf16() else 'emulated'}, {args.steps} timed steps per recipe\n")
    print("| recipe | passages per step | seconds per step | ratio to hybrid | median seconds by batch kind |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        by_kind = ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["median_by_kind"].items()))
        print(f"| {name} | {r['passages_per_step']:.1f} | {r['seconds_per_step']:.2f} | "
              f"{r['seconds_per_step'] / base:.2f} | {by_kind} |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train-recipes.json").write_text(json.dumps({"cpu": cpu_name(), "native_bf16": native_bf16(),
                                                            "steps": args.steps, "recipes": rows}, indent=2))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["speed", "memory", "recipes"])
    p.add_argument("--model", required=True)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--steps", type=int, help="timed steps after one warm-up (speed: 50, recipes: 16)")
    p.add_argument("--chunk", type=int, default=8)
    p.add_argument("--recipes", type=lambda v: v.split(","), help="recipes: only these (and hybrid), e.g. multi-k3,both")
    args = p.parse_args()
    args.batch_size = args.batch_size or (16 if args.mode == "speed" else 64)
    args.steps = args.steps or (16 if args.mode == "recipes" else 50)
    os.environ.setdefault("PYTERRIER_HYBRID_DATA", str(SHARED))
    {"speed": speed, "memory": memory, "recipes": recipes}[args.mode](args)


if __name__ == "__main__":
    main()
