"""Loading ir_datasets training data at mMARCO scale: ids kept, texts fetched when drawn, against all texts held.

Generates a synthetic collection with mMARCO's shape (shared query and doc ids across languages; per language
N queries, N + N/10 passages, one judged passage per query and 4 docpairs per query) in a temporary folder,
registers it with ir_datasets, and measures in fresh processes, on the same data:

* ``lazy``: :func:`pyterrier_hybrid.training.from_irds` (query texts and ids packed, passages from docstores);
* ``eager``: the same items with every text held in Python objects, as from_irds held them before (the texts
  fetched in one ``get_many`` pass per language, faster than the one lookup per text it used to make).

For each: seconds to load (docstores are built before timing, for both), peak RSS above the process's
baseline, and seconds to draw 100 hybrid batches of 64. Nothing is committed but the JSON result.

    python benchmarks/irds_training.py [--queries 1000000] [--out benchmarks/results/irds-training.json]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LANGS = ("en", "de", "fr")
WORDS = {"en": "harbour lantern", "de": "Hafen Laterne", "fr": "port lanterne"}


def generate(root: Path, n: int) -> None:
    """Write the synthetic collection as TSV / TREC files (ids shared across languages)."""
    docs = n + n // 10
    for lang in LANGS:
        d = root / lang
        d.mkdir(parents=True, exist_ok=True)
        w = WORDS[lang]
        with open(d / "docs.tsv", "w") as f:
            f.writelines(f"p{i}\t{w} passage {i} about item {i * 7 % 9973} in {lang}\n" for i in range(docs))
        with open(d / "queries.tsv", "w") as f:
            f.writelines(f"q{i}\t{w} question {i}\n" for i in range(n))
        with open(d / "qrels", "w") as f:
            f.writelines(f"q{i} 0 p{i} 1\n" for i in range(n))
        with open(d / "docpairs.tsv", "w") as f:
            f.writelines(f"q{i}\tp{i}\tp{(i * 31 + j * 977) % docs}\n" for i in range(n) for j in range(1, 5))


def register(root: Path) -> str:
    import ir_datasets
    from ir_datasets.formats import TrecQrels, TsvDocPairs, TsvDocs, TsvQueries
    from ir_datasets.util import LocalDownload

    pattern = "synthetic-mmarco/{lang}/train"
    for lang in LANGS:
        d = root / lang
        ir_datasets.registry.register(pattern.format(lang=lang), ir_datasets.Dataset(
            TsvDocs(LocalDownload(d / "docs.tsv"), namespace=f"synthetic-{lang}", lang=lang),
            TsvQueries(LocalDownload(d / "queries.tsv"), namespace=f"synthetic-{lang}", lang=lang),
            TrecQrels(LocalDownload(d / "qrels"), {1: "relevant"}),
            TsvDocPairs(LocalDownload(d / "docpairs.tsv"))))
    return pattern


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(root: Path, how: str) -> dict:
    """In this (fresh) process: load the source one way, then draw batches."""
    import ir_datasets

    from pyterrier_hybrid.training import Entry, HybridBatchSampler, ParallelItem, ParallelSource, from_irds

    pattern = register(root)
    for lang in LANGS:  # build the docstores now, so both ways time loading, not lz4 store building
        ir_datasets.load(pattern.format(lang=lang)).docs_store().get("p0")
    base = rss_mb()
    start = time.perf_counter()
    source = from_irds(pattern, list(LANGS))
    if how == "eager":
        texts = {}
        for lang, language in source.languages.items():
            ids = {language.positives[r] for r in range(len(language.positives))}
            ids.update(language.negatives[j] for j in range(len(language.negatives)))
            texts[lang] = {d.doc_id: d.text for d in language.store.get_many_iter(sorted(ids))}

        def entry(i, lang):
            e, t = source.entry(i, lang), texts[lang]
            return Entry(e.query, t[e.language.positives[e.row]], tuple(t[d] for d in e.language.negative_ids(e.row)))
        source = ParallelSource(source.name, [
            ParallelItem(source.parallel_id(i), {lang: entry(i, lang) for lang in source.item_langs(i)})
            for i in range(len(source))])
    load_s = time.perf_counter() - start
    sampler = HybridBatchSampler(source, 64, alpha=0.5, seed=0)
    start = time.perf_counter()
    batches = iter(sampler)
    for _ in range(100):
        next(batches)
    draw_s = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"how": how, "items": len(source), "load_s": round(load_s, 2), "peak_rss_above_baseline_mb": round(peak - base, 1),
            "draw_100_batches_s": round(draw_s, 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queries", type=int, default=1_000_000, help="queries per language")
    p.add_argument("--out", default="benchmarks/results/irds-training.json")
    p.add_argument("--measure", choices=["lazy", "eager"], help=argparse.SUPPRESS)  # the child process
    p.add_argument("--root", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.root), args.measure)))
        return
    with tempfile.TemporaryDirectory(prefix="synthetic-mmarco-") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        generate(root / "data", args.queries)
        print(f"generated {args.queries:,} queries x {len(LANGS)} languages in {time.perf_counter() - start:.0f} s",
              flush=True)
        env = {**os.environ, "IR_DATASETS_HOME": str(root / "irds")}
        results = []
        for how in ("lazy", "eager"):
            done = subprocess.run([sys.executable, __file__, "--measure", how, "--root", str(root / "data")],
                                  capture_output=True, text=True, env=env, check=True)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(results[-1], flush=True)
    lazy, eager = results
    report = {"command": f"python benchmarks/irds_training.py --queries {args.queries}", "queries_per_lang": args.queries,
              "langs": list(LANGS), "results": results,
              "memory_ratio_eager_over_lazy": round(eager["peak_rss_above_baseline_mb"]
                                                    / max(lazy["peak_rss_above_baseline_mb"], 1e-9), 2),
              "load_ratio_eager_over_lazy": round(eager["load_s"] / lazy["load_s"], 2)}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
