"""The merging and language-removal section of docs/results.md, from the artifacts of examples/combine.py.

Reads ``docs/results/combine/``: ``xquad-r/<model>/<removal>.json`` (every pipeline, every seed),
``selection.json`` (the pipeline chosen on MLQA-R validation ids before XQuAD-R), ``validation/`` and
``retrain/<run>.json`` (the retrained runs checked against the α study), and ``reverse/`` (the same for the reverse
direction: ``reverse/mlqa-r/<model>/<removal>.json`` and ``reverse/retrain/``); ``reading.md``, the hand-written
reading, goes first.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from .runs import max_difference
from .stats import holm, paired_test
from .tables import KEYS, TESTS, cell_means, headline, mean_std, reading_lines, signed

PURE = ["xx", "xy", "hybrid"]
LABEL = {"start": "zero-shot start", "xx": "X-X-mono (α = 1)", "xy": "X-Y (α = 0)", "hybrid": "hybrid (α = 0.5)"}
REMOVAL_LABEL = {"none": "as encoded", "center": "centring", "lir": "LIR (k = languages − 1)", "lir3": "LIR (k = 3)"}
#: the acceptance target on the full XQuAD-R protocol
TARGET = {"mono": 0.800, "multi": 0.600, "rd": 300.0}


def recipe_label(recipe: str) -> str:
    """How the page names a model recipe: ``X-Y (α = 0)``, ``X-X-mono ⊕ X-Y, λ = 0.5``."""
    if recipe in LABEL:
        return LABEL[recipe]
    a, weight, b = _merge_parts(recipe)
    return f"{LABEL[a].split(' (')[0]} ⊕ {LABEL[b].split(' (')[0]}, λ = {weight:g}"


def _merge_parts(recipe: str) -> Tuple[str, float, str]:
    """``merge-xx0.25-xy`` as ("xx", 0.25, "xy")."""
    _, first, second = recipe.split("-", 2)
    name = first.rstrip("0123456789.")
    return name, float(first[len(name):]), second


def load_pipelines(folder: Path) -> Dict[Tuple[str, str], List[dict]]:
    """Reports by (model recipe, removal), one per seed, as headline-ready runs ({"report": ...})."""
    out: Dict[Tuple[str, str], List[dict]] = {}
    if not folder.is_dir():
        return out
    for model in sorted(p for p in folder.iterdir() if p.is_dir()):
        recipe = model.name.rsplit("-seed", 1)[0]
        for report in sorted(model.glob("*.json")):
            out.setdefault((recipe, report.stem), []).append({"report": json.loads(report.read_text()),
                                                              "model": model.name})
    return out


def order(key: Tuple[str, str]) -> tuple:
    """Sort key of a (recipe, removal) pipeline: the start, the pure strategies, then the merges."""
    recipe, removal = key
    rank = (["start"] + PURE).index(recipe) if recipe in ["start"] + PURE else 4
    return rank, recipe, list(REMOVAL_LABEL).index(removal) if removal in REMOVAL_LABEL else 9


def pipeline_table(pipes: Dict[Tuple[str, str], List[dict]], selected: Optional[str]) -> List[str]:
    """Every pipeline's mean ± std over seeds, the selected one marked."""
    rows = ["| model | removal | seeds | Mo. | Cr. | Mul. | rank distance |", "|---|---|---|---|---|---|---|"]
    for key in sorted(pipes, key=order):
        h = [headline(r) for r in pipes[key]]
        mark = " **(selected)**" if selected == f"{key[0]}+{key[1]}" else ""
        rows.append(f"| {recipe_label(key[0])}{mark} | {REMOVAL_LABEL.get(key[1], key[1])} | {len(h)} | "
                    + " | ".join(mean_std([x[k] for x in h]) for k, _ in KEYS) + f" | {mean_std([x['rd'] for x in h], 1)} |")
    return rows


def best_pure(selection: dict) -> Optional[str]:
    """The pure strategy (as encoded) with the best validation score: the reference the tests compare against."""
    scores = {r: selection["scores"].get(f"{r}+none") for r in PURE}
    scores = {r: s for r, s in scores.items() if s is not None}
    return max(scores, key=scores.get) if scores else None


def seed_mean(runs: List[dict]) -> Dict[str, float]:
    """Mo., Cr., Mul. mAP and rank distance, averaged over a pipeline's seeds."""
    h = [headline(r) for r in runs]
    return {k: float(np.mean([x[k] for x in h])) for k in ("mono", "cross", "multi", "rd")}


def against_reference(mean: Dict[str, float], ref: List[dict], reference: str) -> str:
    """The selected pipeline's differences from the reference (as encoded), and whether it is as good on all four."""
    r = seed_mean(ref)
    diffs = [f"{label} {signed(mean[k] - r[k], 3)}" for k, label in KEYS] + [f"rank distance {signed(mean['rd'] - r['rd'], 1)}"]
    at_least = all(mean[k] >= r[k] for k, _ in KEYS) and mean["rd"] <= r["rd"]
    return (f"Against the best pure strategy on validation, {recipe_label(reference)} as encoded ({len(ref)} "
            f"seed{'' if len(ref) == 1 else 's'}): {', '.join(diffs)}; "
            f"{'at least as good on all four' if at_least else 'not at least as good on all four'}.")


def target_lines(pipes, selected: str, reference: str) -> List[str]:
    """The selected pipeline against the acceptance target and the reference; reached only on three seeds."""
    recipe, removal = selected.split("+")
    runs, ref = pipes.get((recipe, removal), []), pipes.get((reference, "none"), [])
    if not runs:
        return [f"The selected pipeline ({selected}) has no XQuAD-R report yet."]
    mean = seed_mean(runs)
    ok = {"mono": mean["mono"] >= TARGET["mono"], "multi": mean["multi"] >= TARGET["multi"], "rd": mean["rd"] <= TARGET["rd"]}
    lines = [f"Selected: **{recipe_label(recipe)}, {REMOVAL_LABEL.get(removal, removal)}**, on {len(runs)} seed"
             f"{'' if len(runs) == 1 else 's'}: Mo. {mean['mono']:.3f} (target ≥ {TARGET['mono']:.3f}: "
             f"{'met' if ok['mono'] else 'missed by ' + format(TARGET['mono'] - mean['mono'], '.3f')}), Mul. "
             f"{mean['multi']:.3f} (≥ {TARGET['multi']:.3f}: "
             f"{'met' if ok['multi'] else 'missed by ' + format(TARGET['multi'] - mean['multi'], '.3f')}), rank distance "
             f"{mean['rd']:.1f} (≤ {TARGET['rd']:.0f}: "
             f"{'met' if ok['rd'] else 'missed by ' + format(mean['rd'] - TARGET['rd'], '.1f')})."]
    if ref:
        lines.append(against_reference(mean, ref, reference))
    reached = all(ok.values()) and len(runs) >= 3
    lines.append(f"**Target {'reached' if reached else 'not reached'}**"
                 + ("" if len(runs) >= 3 else f" (only {len(runs)} of 3 seeds evaluated)") + ".")
    return lines


def reverse_lines(folder: Path, selected: Optional[str], reference: Optional[str],
                  zero_shot: Optional[Path]) -> List[str]:
    """The reverse direction (train on XQuAD-R, test on MLQA-R): every pipeline, and the forward choice judged there."""
    pipes = load_pipelines(folder / "mlqa-r")
    if not pipes:
        return []
    lines = ["### The reverse direction: train on XQuAD-R, test on MLQA-R", "",
             "`python -m pyterrier_hybrid.studies.combine --model .cache/me5 --commit --direction reverse --seeds 0` "
             "does the same with the reverse study's runs (trained on all 11 XQuAD-R languages) and the full MLQA-R "
             "protocol. Nothing is selected here: the pipeline chosen above on MLQA-R validation ids is judged as it "
             "is. The Mo. / Mul. / rank-distance target is stated for XQuAD-R and does not apply to MLQA-R.", ""]
    if selected and reference:
        recipe, removal = selected.split("+")
        runs, ref = pipes.get((recipe, removal), []), pipes.get((reference, "none"), [])
        if runs and ref:
            mean = seed_mean(runs)
            lines += [f"Selected pipeline on MLQA-R: Mo. {mean['mono']:.3f}, Cr. {mean['cross']:.3f}, Mul. "
                      f"{mean['multi']:.3f}, rank distance {mean['rd']:.1f}. " + against_reference(mean, ref, reference),
                      ""]
    return lines + [*pipeline_table(pipes, selected), "", *zero_shot_lines(pipes, zero_shot),
                    "Retrained reverse runs against the reverse study (report at 96 tokens on MLQA-R):", "",
                    *retrain_lines(folder / "retrain"), ""]


def paired_lines(pipes, selected: str, reference: str) -> List[str]:
    """Wilcoxon signed-rank of the selected pipeline against the reference on seed-averaged settings."""
    recipe, removal = selected.split("+")
    a, b = pipes.get((recipe, removal), []), pipes.get((reference, "none"), [])
    seeds = sorted({r["model"].rsplit("-seed", 1)[-1] for r in a} & {r["model"].rsplit("-seed", 1)[-1] for r in b})
    if not seeds or (recipe, removal) == (reference, "none"):
        return ["No paired test: the selected pipeline and the reference need a common seed, and must differ."]
    pick = lambda runs: [r for r in runs if r["model"].rsplit("-seed", 1)[-1] in seeds]  # noqa: E731
    ma, mb = cell_means(pick(a)), cell_means(pick(b))
    found = [paired_test(ma[key], mb[key], better) for key, _, _, better in TESTS]
    adjusted = holm([f[2] for f in found])
    return ["| selected vs " + recipe_label(reference) + " | " + " | ".join(
                f"{label} ({len(ma[key])} {paired})" for key, label, paired, _ in TESTS) + " |",
            "|---" * (len(TESTS) + 1) + "|",
            f"| seeds {', '.join(seeds)} | " + " | ".join(f"{u} / {d}, p = {p:.2g} (Holm {q:.2g})"
                                                         for (u, d, p), q in zip(found, adjusted)) + " |"]


def pareto(pipes, alpha_front: Dict[float, List[dict]], path: Path) -> None:
    """Mo. against Mul. and rank distance: the batch-mixing front, and the merged and language-neutral points."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.2))
    axes = fig.subplots(1, 2)
    markers = {"none": "o", "center": "^", "lir": "v", "lir3": "D"}
    mean = {k: {m: float(np.mean([headline(r)[m] for r in v])) for m in ("mono", "multi", "rd")} for k, v in pipes.items()}
    for ax, key, label in [(axes[0], "multi", "Mul. mAP (higher is better)"),
                           (axes[1], "rd", "rank distance (lower is better)")]:
        front = [(1.0, "xx"), (0.5, "hybrid"), (0.0, "xy")]
        xs = [mean[(r, "none")]["mono"] for _, r in front if (r, "none") in mean]
        ys = [mean[(r, "none")][key] for _, r in front if (r, "none") in mean]
        ax.plot(xs, ys, "-", color="black", linewidth=1.2, label="batch mixing α = 1, 0.5, 0 (512 tokens)")
        if alpha_front:
            h = {a: [headline(r) for r in runs] for a, runs in alpha_front.items()}
            ax.plot([np.mean([x["mono"] for x in v]) for v in h.values()],
                    [np.mean([x[key] for x in v]) for v in h.values()], "--", color="grey", linewidth=1,
                    label="α study, 5 α (96 tokens)")
        colors = {}
        for (recipe, removal), m in sorted(mean.items(), key=lambda kv: order(kv[0])):
            color = colors.setdefault(recipe, f"C{len(colors) % 10}")
            ax.scatter(m["mono"], m[key], marker=markers.get(removal, "s"), color=color, s=36,
                       label=recipe_label(recipe) if removal == "none" else None, zorder=3)
        ax.axvline(TARGET["mono"], color="tab:red", linewidth=0.6, linestyle=":")
        ax.axhline(TARGET[key], color="tab:red", linewidth=0.6, linestyle=":")
        ax.set_xlabel("Mo. mAP (higher is better)")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=6, loc="lower left")
    fig.suptitle("XQuAD-R, seed means: marker = removal (o as encoded, ▲ centring, ▼ LIR, ◆ LIR k = 3); red = target",
                 fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def retrain_lines(folder: Path) -> List[str]:
    """The retrained runs' checks against the α study, a row each."""
    checks = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not checks:
        return ["No retrained run checked yet."]
    rows = ["| run | config identical | largest log difference | largest report difference (96 tokens) |",
            "|---|---|---|---|"]
    for path in checks:
        c = json.loads(path.read_text())
        rows.append(f"| {c['run']} | {'yes' if c['config_identical'] else 'no'} | {c['log_max_abs_diff']:.3g} | "
                    f"{c['report_max_abs_diff']:.3g} |")
    return rows


def zero_shot_lines(pipes, committed: Optional[Path]) -> List[str]:
    """The start as encoded here against the committed zero-shot report: removal must change nothing unasked."""
    start = pipes.get(("start", "none"))
    if not start or committed is None or not committed.is_file():
        return []
    old, new = json.loads(committed.read_text()), start[0]["report"]
    diff = {part: max_difference(old[part], new[part]) for part in ("mAP", "rank_distance", "matrix")}
    return [f"The zero-shot start as encoded here against the committed zero-shot report "
            f"(`{committed.name}`, bf16, 512 tokens), largest absolute difference: macro and per-setting "
            f"mAP {max(diff['mAP'], diff['matrix']):.2g}, rank distance {diff['rank_distance']:.2g} (bf16 tie noise "
            "across hosts is about 1e-5 mAP).", ""]


def combine_section(folder: Path, figures: Path, alpha_front: Dict[float, List[dict]],
                    zero_shot: Optional[Dict[str, Path]] = None) -> List[str]:
    """The section's lines (empty when the study has no artifacts yet); draws its figure into ``figures``.

    ``zero_shot`` names the committed zero-shot report of each test dataset: the start, as encoded here, is
    checked against it.
    """
    pipes, zero_shot = load_pipelines(folder / "xquad-r"), zero_shot or {}
    selection_path = folder / "selection.json"
    if not pipes and not selection_path.is_file():
        return []
    selection = json.loads(selection_path.read_text()) if selection_path.is_file() else None
    selected = selection["selected"] if selection else None
    lines = ["## Beyond batch mixing: merging and language-identity removal", "",
             "`python -m pyterrier_hybrid.studies.combine --model .cache/me5 --commit` retrains X-X-mono, X-Y and "
             "hybrid (α = 0.5) from the α study's configs, merges them (X-X ⊕ X-Y at λ ∈ {0.25, 0.5, 0.75}, λ the X-X "
             "share; hybrid ⊕ the start at λ ∈ {0.5, 0.75}, λ the hybrid share), and evaluates every model on the full "
             "XQuAD-R protocol as encoded, with centring, and with LIR, all at 64 / 512 tokens (the start's limits). "
             "Removal statistics come from the evaluated candidates only.", ""]
    lines += reading_lines(folder, "### Reading: which pipeline to pick")
    if selection:
        reference = best_pure(selection)
        top = list(selection["scores"].items())[:8]
        lines += ["### Selection, before XQuAD-R", "",
                  f"Rule: {selection['rule']}. Committed in `docs/results/combine/selection.json` before any merged "
                  "or language-neutral pipeline was evaluated on XQuAD-R. The best validation scores:", "",
                  "| pipeline | validation score (mean of Mo., Cr., Mul. mAP) |", "|---|---|",
                  *[f"| {recipe_label(p.split('+')[0])}, {REMOVAL_LABEL.get(p.split('+')[1], p.split('+')[1])} | "
                    f"{s:.4f} |" for p, s in top], ""]
        if reference:
            lines += ["### Is the target reached?", "", *target_lines(pipes, selected, reference), "",
                      "### Paired tests against the best pure strategy", "",
                      "Wilcoxon signed-rank (two-sided) on settings averaged over the common seeds; `better / worse` "
                      "counts the settings favouring the selected pipeline; Holm over the four.", "",
                      *paired_lines(pipes, selected, reference), ""]
    if pipes:
        pareto(pipes, alpha_front, figures / "combine-pareto.png")
        lines += ["### Every pipeline (mean ± std over seeds)", "", *pipeline_table(pipes, selected), "",
                  "![merging and removal against the batch-mixing front](img/combine-pareto.png)", ""]
    lines += [*reverse_lines(folder / "reverse", selected, best_pure(selection) if selection else None,
                             zero_shot.get("mlqa-r")),
              "### Retrained runs against the α study", "",
              *zero_shot_lines(pipes, zero_shot.get("xquad-r")),
              "Each retrained run's config and training log against the committed ones, and its report at the α "
              "study's length (96 tokens) against the committed report.", "", *retrain_lines(folder / "retrain"), ""]
    return lines
