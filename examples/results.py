"""Write docs/results.md and its figures from the committed artifacts of the α study (docs/results/alpha/).

Every number on the page comes from a committed ``report.json`` / ``train_log.jsonl``; nothing is read from
``runs/``. The page states how many seeds each α has, so a study that is still running reads honestly.

    python examples/results.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from studies import RESULTS, SEEN, UNSEEN, load_run, seen_unseen  # noqa: E402

DOCS = RESULTS.parent
LOW_RESOURCE = ["hi", "th", "el"]
KEYS = [("mono", "Mo."), ("cross", "Cr."), ("multi", "Mul.")]


def load_study(folder: Path) -> Dict[float, List[dict]]:
    """Finished runs by α: each with its report, config, log and seen/unseen parts."""
    by_alpha: Dict[float, List[dict]] = {}
    for run_dir in sorted(p for p in folder.iterdir() if (p / "report.json").is_file()):
        run = load_run(run_dir)
        run["name"], run["parts"] = run_dir.name, seen_unseen(run["report"])
        by_alpha.setdefault(float(run["config"]["alpha"]), []).append(run)
    return dict(sorted(by_alpha.items()))


def headline(run: dict) -> Dict[str, float]:
    r = run["report"]
    return {**{k: r["mAP"][k] for k, _ in KEYS}, "rd": r["rank_distance"]["macro"]}


def mean_std(values: Sequence[float]) -> str:
    """``mean ± sample std`` (just the mean for one seed)."""
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.3f}" if len(v) < 2 else f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"


def table(by_alpha: Dict[float, List[dict]]) -> List[str]:
    rows = ["| α | seeds | Mo. | Cr. | Mul. | rank distance | best MLQA-R val loss |", "|---|---|---|---|---|---|---|"]
    for alpha, runs in by_alpha.items():
        h = [headline(r) for r in runs]
        val = [min(x["val_loss"] for x in r["log"] if "val_loss" in x) for r in runs]
        rd = np.array([x["rd"] for x in h])
        rd_text = f"{rd.mean():.1f}" if len(rd) < 2 else f"{rd.mean():.1f} ± {rd.std(ddof=1):.1f}"
        rows.append(f"| {alpha:g} | {len(runs)} | " + " | ".join(mean_std([x[k] for x in h]) for k, _ in KEYS)
                    + f" | {rd_text} | {mean_std(val)} |")
    return rows


def cell_means(runs: List[dict]) -> Dict[str, np.ndarray]:
    """Per setting, averaged over seeds: the 121 Mo./Cr. cells, and Mul. mAP and rank distance per language."""
    langs = runs[0]["report"]["langs"]
    cells = [(x, y) for x in langs for y in langs]
    return {"matrix": np.mean([[r["report"]["matrix"][x][y] for x, y in cells] for r in runs], axis=0),
            "multi": np.mean([[r["report"]["multi_by_lang"][x] for x in langs] for r in runs], axis=0),
            "rd": np.mean([[r["report"]["rank_distance"][x] for x in langs] for r in runs], axis=0)}


def paired_tests(by_alpha: Dict[float, List[dict]]) -> List[str]:
    """Wilcoxon signed-rank tests between α = 0.5 and every other α, on seed-averaged settings."""
    from scipy.stats import wilcoxon

    if 0.5 not in by_alpha:
        return ["No α = 0.5 run yet."]
    ref = cell_means(by_alpha[0.5])
    rows = ["| α = 0.5 vs | Mo.+Cr. cells: higher / lower, p | Mul. mAP by language: higher / lower, p | "
            "rank distance by language: lower / higher, p |", "|---|---|---|---|"]
    for alpha, runs in by_alpha.items():
        if alpha == 0.5:
            continue
        other = cell_means(runs)
        parts = []
        for key, better in [("matrix", 1), ("multi", 1), ("rd", -1)]:
            d = better * (ref[key] - other[key])
            p = wilcoxon(ref[key], other[key]).pvalue if np.any(d != 0) else 1.0
            parts.append(f"{int((d > 0).sum())} / {int((d < 0).sum())}, p = {p:.2g}")
        rows.append(f"| {alpha:g} | " + " | ".join(parts) + " |")
    return rows


def per_language(by_alpha: Dict[float, List[dict]], key: str) -> Dict[str, List[float]]:
    """Seed-averaged per-language values of ``multi_by_lang``, ``rank_distance`` or ``rank_correlation``, by α."""
    langs = next(iter(by_alpha.values()))[0]["report"]["langs"]
    out = {}
    for x in langs:
        out[x] = [float(np.mean([r["report"][key][x] for r in runs])) for runs in by_alpha.values()]
    return out


def spread_table(by_alpha: Dict[float, List[dict]]) -> List[str]:
    """How far apart the languages are at each α: std and range over query languages, seen and unseen means."""
    rows = ["| α | Mul. mAP: std over languages | range | seen mean | unseen mean | rank distance: std over "
            "languages |", "|---|---|---|---|---|---|"]
    multi, rd = per_language(by_alpha, "multi_by_lang"), per_language(by_alpha, "rank_distance")
    for i, alpha in enumerate(by_alpha):
        m = np.array([v[i] for v in multi.values()])
        seen = np.mean([multi[x][i] for x in multi if x in SEEN])
        unseen = np.mean([multi[x][i] for x in multi if x in UNSEEN])
        rows.append(f"| {alpha:g} | {m.std():.3f} | {m.max() - m.min():.3f} | {seen:.3f} | {unseen:.3f} | "
                    f"{np.std([v[i] for v in rd.values()]):.1f} |")
    return rows


def pareto_figure(by_alpha: Dict[float, List[dict]], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6))
    axes = fig.subplots(1, 2)
    colors = dict(zip(by_alpha, ["tab:red", "tab:orange", "tab:green", "tab:blue", "tab:purple"]))
    for ax, (key, label) in zip(axes, [("multi", "Mul. mAP (higher is better)"), ("rd", "rank distance (lower is better)")]):
        for alpha, runs in by_alpha.items():
            h = [headline(r) for r in runs]
            xs, ys = [x["mono"] for x in h], [x[key] for x in h]
            ax.scatter(xs, ys, s=18, alpha=0.5, color=colors[alpha])
            ax.scatter([np.mean(xs)], [np.mean(ys)], s=90, marker="*", color=colors[alpha], label=f"α = {alpha:g}")
        ax.set_xlabel("Mo. mAP (higher is better)")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=7)
    fig.suptitle("XQuAD-R: every run (dots) and each α's mean (stars)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def language_figure(by_alpha: Dict[float, List[dict]], path: Path) -> None:
    from matplotlib.figure import Figure

    alphas = list(by_alpha)
    fig = Figure(figsize=(12, 3.6))
    axes = fig.subplots(1, 3)
    for ax, (key, label) in zip(axes, [("multi_by_lang", "Mul. mAP"), ("rank_distance", "rank distance"),
                                       ("rank_correlation", "rank correlation")]):
        for x, values in per_language(by_alpha, key).items():
            style = "--" if x in UNSEEN else "-"
            width = 2.2 if x in LOW_RESOURCE else 1.0
            ax.plot(alphas, values, style, linewidth=width, marker="o", markersize=3, label=x)
        ax.set_xlabel("α (share of X-X-mono batches)")
        ax.set_title(label, fontsize=9)
    axes[2].legend(fontsize=7, ncol=2, title="dashed: unseen; thick: low-resource", title_fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def write_page(folder: Path = RESULTS / "alpha", page: Path = DOCS / "results.md") -> str:
    """Write ``page`` (and its figures in ``img/`` beside it) from the runs in ``folder``; return its text."""
    by_alpha = load_study(folder)
    if not by_alpha:
        raise SystemExit(f"no finished runs in {folder}; run examples/alpha_sweep.py first")
    figures = page.parent / "img"
    figures.mkdir(exist_ok=True)
    pareto_figure(by_alpha, figures / "alpha-pareto.png")
    language_figure(by_alpha, figures / "alpha-languages.png")
    n = sum(map(len, by_alpha.values()))
    example = next(iter(by_alpha.values()))[0]["config"]
    lines = [
        "# Does hybrid give the best of both? The α study", "",
        "<!-- generated by `python examples/results.py` from docs/results/alpha/; do not edit by hand -->", "",
        f"{n} runs: hybrid batches with α = P(X-X-mono batch) (α = 1 is X-X-mono, α = 0 is X-Y), seeds as listed. "
        f"Every run starts from `{example['base_model']}`, trains {example['train']['steps']} steps of "
        f"{example['batch_size']} on MLQA-R (ar de en es hi vi zh) with `--amp {example['train']['amp']}` and frozen "
        f"word embeddings ({example['train']['freeze_embeddings']}), keeps the checkpoint with the lowest loss on the "
        "same held-out 10% of MLQA-R parallel ids, and is evaluated on the full XQuAD-R protocol (el, ru, th, tr "
        "never trained on). Nothing is chosen by looking at XQuAD-R. Each run's report, log, config and model card "
        "are in `docs/results/alpha/<run>/`; `python examples/alpha_sweep.py --model .cache/me5` reruns a missing one.",
        "", "## Macro mAP and rank distance (mean ± std over seeds)", "", *table(by_alpha), "",
        "## Paired tests", "",
        "Wilcoxon signed-rank, α = 0.5 against each α. Seeds are averaged per setting first, then paired over the "
        "121 Mo./Cr. settings, or over the 11 query languages for Mul. mAP and rank distance; the counts say in "
        "how many α = 0.5 is better or worse.", "", *paired_tests(by_alpha), "",
        "## Mo. against Mul. and rank distance", "", "![Pareto](img/alpha-pareto.png)", "",
        "## Languages: seen, unseen (el, ru, th, tr) and lower-resource (hi, th, el)", "",
        "![per language](img/alpha-languages.png)", "", *spread_table(by_alpha), "",
    ]
    reading = folder / "reading.md"  # the hand-written reading, included as it is
    if reading.is_file():
        lines += ["## Reading", "", reading.read_text(encoding="utf-8").strip(), ""]
    text = "\n".join(lines)
    page.write_text(text, encoding="utf-8")
    return text


if __name__ == "__main__":
    print(write_page())
