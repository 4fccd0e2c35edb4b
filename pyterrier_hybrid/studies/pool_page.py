"""The pool study's section of docs/results.md, from the artifacts of :mod:`~pyterrier_hybrid.studies.pool`.

Reads ``docs/results/pool/``: ``validation/<model>/<removal>.json`` (the screening, seed 0, MLQA-R validation ids),
``selection.json`` (committed before any new pipeline met XQuAD-R), ``trained/<run>/`` (training logs and configs:
cost), ``xquad-r/<model>/<removal>.json``, ``reverse/mlqa-r/`` and ``reading.md`` (the hand-written reading, first
in the section), and ``docs/results/pool-fp32/`` (``--precision fp32``: its own baseline, in its own subsection).
The bf16 baseline's reports, the batch-mixing front and the merging study's points come from the merging
study (``docs/results/combine/``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..evaluation.reference import PAPER
from ..evaluation.report import seen_unseen, seen_unseen_rows
from .combine_page import load_pipelines, seed_mean
from .pool import (BASELINE_MODEL, CONTROL, CONTROL_STEPS, CONTROLLED, HYBRID, REMOVALS, RULE, WHY, base_name,
                   equal_point, merged, score)
from .runs import LOW_RESOURCE, SEEN, UNSEEN, bf16_said, host, training_seconds
from .stats import holm, paired_test
from .tables import KEYS, TESTS, cell_means, headline, mean_std, reading_lines, signed

COMMAND = "python -m pyterrier_hybrid.studies.pool --model .cache/me5 --commit"
LABEL = {"hybrid-multi": "hybrid + multi (mix 0.35 / 0.35 / 0.3, K = 3)", "multi-k3": "multi, K = 3",
         "multi-k4": "multi, K = 4", "both": "hybrid + multi + alignment",
         "merge-hybrid0.75-start": "hybrid α = 0.5 ⊕ start, λ = 0.75 (today's selected)",
         "hybrid": "hybrid α = 0.5", CONTROL: f"hybrid α = 0.5, {CONTROL_STEPS}× steps"}
REMOVAL = {"none": "as encoded", "lir": "LIR"}
EQUAL_LABEL = {"steps": "fewer steps", "batch_size": "smaller batch"}


def label(model_recipe: str) -> str:
    """``hybrid + 0.5 × alignment ⊕ start`` for ``hybrid-align0.5-merged``."""
    base = base_name(model_recipe)
    point = equal_point(base)
    base = point[0] if point else base
    text = LABEL.get(base) or (f"hybrid + {base[len('hybrid-align'):]} × alignment" if base.startswith("hybrid-align")
                               else base)
    text += f" (equal passages: {EQUAL_LABEL[point[1]]})" if point else ""
    return text + (" ⊕ start, λ = 0.75" if model_recipe.endswith("-merged") else "")


def fmt(h: Dict[str, float]) -> str:
    return " | ".join(f"{h[k]:.3f}" for k, _ in KEYS) + f" | {h['rd']:.1f}"


def screened(folder: Path, combine: Path
             ) -> Tuple[Optional[dict], Dict[Tuple[str, str], Tuple[dict, Tuple[float, bool]]]]:
    """The baseline's validation report, and each screened pipeline's (report, score by the rule), best first."""
    base_path = combine / "validation" / f"{BASELINE_MODEL}-seed0" / "none.json"
    pipes = load_pipelines(folder / "validation")
    if not pipes or not base_path.is_file():
        return None, {}
    base = json.loads(base_path.read_text())
    scored = {key: (runs[0]["report"], score(runs[0]["report"], base)) for key, runs in pipes.items()}
    return base, dict(sorted(scored.items(), key=lambda kv: -kv[1][1][0]))


def screening_lines(base: Optional[dict],
                    scored: Dict[Tuple[str, str], Tuple[dict, Tuple[float, bool]]]) -> List[str]:
    """Every seed-0 pipeline on the validation ids, with the rule's score, best first (:func:`screened`)."""
    if not scored:
        return ["No pipeline screened yet."]
    lines = ["| pipeline | removal | Mo. | Cr. | Mul. | rank distance | score | eligible |", "|---|---|---|---|---|---|---|---|",
             f"| {label(BASELINE_MODEL)} | as encoded | {fmt(headline({'report': base}))} | 0 | (baseline) |"]
    for (recipe, removal), (report, (value, eligible)) in scored.items():
        lines.append(f"| {label(recipe)} | {REMOVAL.get(removal, removal)} | {fmt(headline({'report': report}))} | "
                     f"{value:+.4f} | {'yes' if eligible else 'no'} |")
    return lines


def held_lines(scored: Dict[Tuple[str, str], Tuple[dict, Tuple[float, bool]]], folder: Path, fp32: Path, combine: Path,
               selection: dict) -> List[str]:
    """How the screening held on XQuAD-R: each screened pipeline's score by the rule on the validation ids and, seed
    0, on XQuAD-R against the same precision's baseline, and their Spearman correlation. It selects nothing."""
    from scipy.stats import spearmanr

    val_scores = {key: found for key, (_, found) in scored.items()}
    if not val_scores:
        return []
    tests = {"bf16": (folder / "xquad-r", combine / "xquad-r" / f"{BASELINE_MODEL}-seed0" / "none.json"),
             "fp32": (fp32 / "xquad-r", fp32 / "xquad-r" / f"{merged(HYBRID)}-seed0" / "none.json")}
    test_scores: Dict[str, Dict[Tuple[str, str], Tuple[float, bool]]] = {}
    for precision, (test, test_base) in tests.items():
        if test_base.is_file():
            ref = json.loads(test_base.read_text())
            found = {key: test / f"{key[0]}-seed0" / f"{key[1]}.json" for key in val_scores}
            test_scores[precision] = {key: score(json.loads(path.read_text()), ref)
                                      for key, path in found.items() if path.is_file()}
    if not any(test_scores.values()):
        return []
    cell = lambda s: signed(s[0], 4) + (" (eligible)" if s[1] else "")  # noqa: E731
    lines = ["| pipeline | removal | validation | XQuAD-R, bf16 | XQuAD-R, fp32 |", "|---|---|---|---|---|"]
    for key, found in val_scores.items():
        lines.append(f"| {label(key[0])} | {REMOVAL.get(key[1], key[1])} | {cell(found)} | "
                     + " | ".join(cell(test_scores[p][key]) if key in test_scores.get(p, {}) else "not run"
                                  for p in tests) + " |")
    lines.append("")
    chosen = tuple((selection.get("selected") or ["?+none"])[0].split("+"))
    for precision, found in test_scores.items():
        if len(found) < 3:
            continue
        keys = sorted(found)
        rho = spearmanr([val_scores[k][0] for k in keys], [found[k][0] for k in keys]).correlation
        eligible = [k for k in keys if found[k][1]]
        best = max(eligible, key=lambda k: found[k][0]) if eligible else None
        name = lambda k: f"{label(k[0])}, {REMOVAL[k[1]]}" + (  # noqa: E731
            f" ({signed(found[k][0], 4)}, {'' if found[k][1] else 'not '}eligible)" if k in found else "")
        lines += [f"In {precision}, over the {len(keys)} pipelines tested: Spearman correlation of the two scores "
                  f"{rho:.2f}; the best eligible on XQuAD-R is {name(best) if best else 'none'}; the rule selected "
                  f"{name(chosen)}.", ""]
    return lines


def cost_lines(folder: Path) -> List[str]:
    """Per trained run: steps, passages and seconds per step, and where it ran."""
    runs = sorted(p for p in (folder / "trained").glob("*") if (p / "training_config.json").is_file())
    if not runs:
        return []
    lines = ["| run | steps | passages per step | seconds per step | training minutes | host |",
             "|---|---|---|---|---|---|"]
    for run in runs:
        log = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
        steps = [r for r in log if "loss" in r]
        config = json.loads((run / "training_config.json").read_text())
        hosts = sorted({f"{host(s)}, {bf16_said(s)}" for s in config.get("sittings", [])})
        seconds = training_seconds(log)
        lines.append(f"| {run.name} | {len(steps)} | {np.mean([r['passages'] for r in steps]):.1f} | "
                     f"{seconds / len(steps):.2f} | {seconds / 60:.1f} | {', '.join(hosts) or '?'} |")
    return lines


def pipeline_rows(pipes: Dict[Tuple[str, str], List[dict]]) -> List[str]:
    """A row per pipeline: mean ± std over its seeds."""
    lines = ["| pipeline | removal | seeds | Mo. | Cr. | Mul. | rank distance |", "|---|---|---|---|---|---|---|"]
    for (recipe, removal), runs in sorted(pipes.items()):
        h = [headline(r) for r in runs]
        lines.append(f"| {label(recipe)} | {REMOVAL.get(removal, removal)} | {len(h)} | "
                     + " | ".join(mean_std([x[k] for x in h]) for k, _ in KEYS) + f" | {mean_std([x['rd'] for x in h], 1)} |")
    return lines


def xquad_lines(folder: Path, combine: Path, selection: dict) -> List[str]:
    """Mean ± std over seeds on XQuAD-R, the target check and the paired tests of the selected pipeline."""
    pipes = load_pipelines(folder / "xquad-r")
    if not pipes:
        return ["No new pipeline has met XQuAD-R yet."]
    lines = pipeline_rows(pipes)
    chosen = selection.get("selected") or []
    if not chosen:
        return lines
    recipe, removal = chosen[0].split("+")
    runs = pipes.get((recipe, removal), [])
    base = load_pipelines(combine / "xquad-r")
    if runs:
        mean = seed_mean(runs)
        mo, cr, mul, rd = PAPER["xquad-r"]["XLM-R hybrid"]
        ok = [mean["mono"] >= mo, mean["cross"] >= cr, mean["multi"] >= mul, mean["rd"] <= rd]
        lines += ["", f"Selected pipeline, {label(recipe)}, {REMOVAL.get(removal, removal)}, {len(runs)} seed"
                      f"{'' if len(runs) == 1 else 's'}: Mo. {mean['mono']:.3f} ({signed(mean['mono'] - mo, 3)} against "
                      f"the paper's XLM-R hybrid), Cr. {mean['cross']:.3f} ({signed(mean['cross'] - cr, 3)}), Mul. "
                      f"{mean['multi']:.3f} ({signed(mean['multi'] - mul, 3)}), rank distance {mean['rd']:.1f} "
                      f"({signed(mean['rd'] - rd, 1)}). **Target {'reached' if all(ok) and len(runs) >= 3 else 'not reached'}**"
                      + ("" if len(runs) >= 3 else f" (only {len(runs)} of 3 seeds)") + ".", ""]
        for ref_removal in ("none", "lir"):
            lines += paired(runs, base.get((BASELINE_MODEL, ref_removal), []), f"{label(BASELINE_MODEL)}, "
                            f"{REMOVAL[ref_removal]}") + [""]
        lines += control_lines(pipes, recipe, removal)
    return lines


def control_lines(pipes: Dict[Tuple[str, str], List[dict]], recipe: str, removal: str,
                  who: str = "selected") -> List[str]:
    """Multi K = 4's pipeline against hybrid at its encoded passages (4× the steps) ⊕ start, on their common seeds."""
    control = pipes.get((merged(CONTROL), removal))
    if base_name(recipe) != CONTROLLED or not control:
        return []
    return [f"At equal encoded passages the other way round: {label(merged(CONTROL))} ({CONTROL_STEPS}× hybrid's "
            f"steps, about the passages {label(CONTROLLED)} encodes in its steps), {REMOVAL[removal]}:", "",
            *paired(pipes[(recipe, removal)], control, f"{label(merged(CONTROL))}, {REMOVAL[removal]}", who), ""]


def paired(a: List[dict], b: List[dict], name: str, who: str = "selected") -> List[str]:
    """Wilcoxon signed-rank of ``who`` against ``name`` on settings averaged over the seeds both have; Holm over the
    four measures."""
    seed = lambda r: r["model"].rsplit("-seed", 1)[-1]  # noqa: E731
    seeds = sorted({seed(r) for r in a} & {seed(r) for r in b})
    if not seeds:
        return [f"No paired test against {name}: no common seed."]
    ma, mb = cell_means([r for r in a if seed(r) in seeds]), cell_means([r for r in b if seed(r) in seeds])
    found = [paired_test(ma[key], mb[key], better) for key, _, _, better in TESTS]
    adjusted = holm([f[2] for f in found])
    return [f"| {who} vs {name} | " + " | ".join(f"{lab} ({len(ma[key])} {what})" for key, lab, what, _ in TESTS)
            + " |", "|---" * (len(TESTS) + 1) + "|",
            f"| seeds {', '.join(seeds)} | " + " | ".join(f"{u} / {d}, p = {p:.2g} (Holm {q:.2g})"
                                                         for (u, d, p), q in zip(found, adjusted)) + " |"]


def compared(pipes: Dict[Tuple[str, str], List[dict]], base: Dict[Tuple[str, str], List[dict]],
             selection: dict) -> Dict[str, List[dict]]:
    """The selected pipelines and today's selected pipeline (as encoded and with LIR), by page name, each with its
    seeds."""
    out = {}
    for pipeline in selection.get("selected") or []:
        recipe, removal = pipeline.split("+")
        if pipes.get((recipe, removal)):
            out[f"{label(recipe)}, {REMOVAL[removal]}"] = pipes[(recipe, removal)]
    if out:
        for removal in REMOVALS:
            if base.get((BASELINE_MODEL, removal)):
                out[f"{label(BASELINE_MODEL)}, {REMOVAL[removal]}"] = base[(BASELINE_MODEL, removal)]
    return out


def language_lines(systems: Dict[str, List[dict]]) -> List[str]:
    """Seen and unseen languages, and the lower-resource ones, seed means of each system."""
    if not systems:
        return []
    parts = {name: {part: {k: float(np.mean([seen_unseen(r["report"], SEEN)[part][k] for r in runs]))
                           for k in ("mono", "cross", "multi", "rank_distance")} for part in ("seen", "unseen")}
             for name, runs in systems.items()}
    per_lang = lambda runs, key, x: float(np.mean([r["report"][key][x] for r in runs]))  # noqa: E731
    low = [x for x in LOW_RESOURCE if all(x in r["report"]["langs"] for runs in systems.values() for r in runs)]
    lines = [f"Seen: settings whose languages are all among the 7 training languages; unseen: settings that involve "
             f"{', '.join(UNSEEN)} (never trained on). Seed means.", "", *seen_unseen_rows(parts, "pipeline")]
    if not low:
        return lines
    lines += ["", f"Lower-resource query languages ({', '.join(low)}): Mul. mAP and rank distance per query language, "
              "seed means.", "", f"| pipeline | {' | '.join(f'Mul. {x}' for x in low)} | mean | "
              f"{' | '.join(f'rank distance {x}' for x in low)} | mean |", "|---" * (2 * len(low) + 3) + "|"]
    for name, runs in systems.items():
        mul = [per_lang(runs, "multi_by_lang", x) for x in low]
        rd = [per_lang(runs, "rank_distance", x) for x in low]
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in mul) + f" | {np.mean(mul):.3f} | "
                     + " | ".join(f"{v:.1f}" for v in rd) + f" | {np.mean(rd):.1f} |")
    return lines


def pareto(pipes: Dict[Tuple[str, str], List[dict]], combine: Dict[Tuple[str, str], List[dict]], path: Path,
           title: str = "") -> None:
    """Mo. against Mul. and rank distance on XQuAD-R (seed means): the batch-mixing front, the merging study's
    pipelines (from ``combine``, which fp32 leaves empty: they are bf16), this study's pipelines and the paper's XLM-R
    hybrid."""
    from matplotlib.figure import Figure

    mean = lambda runs: {m: float(np.mean([headline(r)[m] for r in runs])) for m in ("mono", "multi", "rd")}  # noqa: E731
    fig = Figure(figsize=(10, 5.6))
    axes = fig.subplots(1, 2)
    paper = dict(zip(("mono", "cross", "multi", "rd"), PAPER["xquad-r"]["XLM-R hybrid"]))
    for ax, key, name in [(axes[0], "multi", "Mul. mAP (higher is better)"),
                          (axes[1], "rd", "rank distance (lower is better)")]:
        front = [mean(combine[(r, "none")]) for r in ("xx", "hybrid", "xy") if combine.get((r, "none"))]
        if front:
            ax.plot([m["mono"] for m in front], [m[key] for m in front], "-", color="black", linewidth=1.2,
                    label="batch mixing α = 1, 0.5, 0")
        # the zero-shot start is far off both axes; centring is no candidate here
        others = [mean(runs) for (recipe, removal), runs in combine.items()
                  if recipe not in ("start", "xx", "hybrid", "xy") and removal in REMOVALS]
        if others:
            ax.scatter([m["mono"] for m in others], [m[key] for m in others], color="lightgrey", s=18,
                       label="merging study's trained and merged pipelines", zorder=2)
        colors: Dict[str, str] = {}
        for (recipe, removal), runs in sorted(pipes.items()):
            m = mean(runs)
            if base_name(recipe) not in colors:  # the legend's key: a filled circle, whichever point comes first
                colors[base_name(recipe)] = f"C{len(colors) % 10}"
                ax.scatter([], [], marker="o", s=40, color=colors[base_name(recipe)], label=label(base_name(recipe)))
            color = colors[base_name(recipe)]
            ax.scatter(m["mono"], m[key], marker="v" if removal == "lir" else "o", s=40, zorder=3,
                       facecolors="none" if recipe.endswith("-merged") else color, edgecolors=color)
        if combine.get((BASELINE_MODEL, "none")):
            b = mean(combine[(BASELINE_MODEL, "none")])
            ax.scatter(b["mono"], b[key], marker="s", color="black", s=40, zorder=4, label="today's selected")
        ax.scatter(paper["mono"], paper[key], marker="*", color="tab:red", s=90, zorder=4, label="paper's XLM-R hybrid")
        ax.axvline(paper["mono"], color="tab:red", linewidth=0.6, linestyle=":")
        ax.axhline(paper[key], color="tab:red", linewidth=0.6, linestyle=":")
        ax.set_xlabel("Mo. mAP (higher is better)")
        ax.set_ylabel(name)
    # below the panels, where it hides no point
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=7, loc="lower center", ncol=3, frameon=False)
    fig.suptitle(f"XQuAD-R{title}, seed means: filled = as trained, hollow = merged with the start (λ = 0.75); "
                 "o as encoded, ▼ LIR; red = the target", fontsize=8)
    fig.tight_layout(rect=(0, 0.18, 1, 1))
    fig.savefig(path, dpi=120)


def reverse_lines(folder: Path, combine: Path) -> List[str]:
    """The reverse direction (train on XQuAD-R, seed 0, test on MLQA-R) against the merging study's reverse runs."""
    pipes = load_pipelines(folder / "reverse" / "mlqa-r")
    if not pipes:
        return ["The reverse direction has not run yet: `" + COMMAND + " --direction reverse`."]
    base = load_pipelines(combine / "reverse" / "mlqa-r")
    rows = pipeline_rows({**{k: v for k, v in base.items() if k[0] == BASELINE_MODEL}, **pipes})
    return [f"`{COMMAND} --direction reverse` trains the selected recipes on XQuAD-R (all 11 languages, seed 0) and "
            "tests on the full MLQA-R protocol; the baseline is the merging study's reverse run of today's selected "
            "pipeline. Nothing is selected here.", "", *rows]


def fp32_comparison(pipes: Dict[Tuple[str, str], List[dict]], selection: dict) -> List[str]:
    """Rows of one fp32 test set, and paired tests of each selected pipeline against the fp32 baseline."""
    base = f"{label(merged(HYBRID))} (fp32)"
    lines = [*pipeline_rows(pipes), ""]
    for pipeline in selection.get("selected") or []:
        recipe, removal = pipeline.split("+")
        if not pipes.get((recipe, removal)):
            lines += [f"{label(recipe)}, {REMOVAL[removal]}: not yet run in fp32.", ""]
            continue
        who = f"{label(recipe)}, {REMOVAL[removal]}"
        for ref in REMOVALS:
            lines += paired(pipes[(recipe, removal)], pipes.get((merged(HYBRID), ref), []), f"{base}, {REMOVAL[ref]}",
                            who) + [""]
        lines += control_lines(pipes, recipe, removal, who)
    return lines


#: the fp32 baseline's models under the merging study's names (the bf16 runs of the same recipe and seeds)
COMBINE_NAME = {merged(HYBRID): BASELINE_MODEL, HYBRID: HYBRID}


def precision_lines(folder: Path, bf16: Path, combine: Path) -> List[str]:
    """fp32 against bf16 on every report both precisions wrote (same recipe, seed, test set and removal): the
    largest difference of any mAP and of rank distance. A check of the precision rule, not a comparison."""
    pairs = []
    for test in ("xquad-r", "reverse/mlqa-r"):
        for path in sorted((folder / test).glob("*/*.json")):
            model = path.parent.name
            recipe, seed = model.rsplit("-seed", 1)
            twins = [bf16 / test / model / path.name]
            if recipe in COMBINE_NAME:
                twins.append(combine / test / f"{COMBINE_NAME[recipe]}-seed{seed}" / path.name)
            pairs += [(path, twin) for twin in twins if twin.is_file()]
    if not pairs:
        return []
    gaps = []
    for a, b in pairs:
        ra, rb = (headline({"report": json.loads(x.read_text())}) for x in (a, b))
        gaps.append((max(abs(ra[k] - rb[k]) for k, _ in KEYS), abs(ra["rd"] - rb["rd"])))
    return [f"The precision rule checked: over the {len(pairs)} reports that both precisions wrote (same recipe, "
            f"seed, test set and removal), fp32 and bf16 differ by at most {max(g[0] for g in gaps):.5f} in any mAP "
            f"and {max(g[1] for g in gaps):.2f} in rank distance.", ""]


def fp32_lines(folder: Path, bf16: Path, combine: Path, selection: dict, figures: Optional[Path] = None) -> List[str]:
    """The recipes against their own fp32 baseline (``--precision fp32``, on hosts without fast bf16), in both
    directions, their own figure, and the check against the bf16 study's (``bf16``) and the merging study's reports."""
    pipes, reverse = load_pipelines(folder / "xquad-r"), load_pipelines(folder / "reverse" / "mlqa-r")
    if not (pipes or reverse):
        return []
    figure = []
    if pipes and figures is not None:
        pareto(pipes, {}, figures / "pool-fp32-pareto.png", " in fp32")
        figure = ["![the pool study's fp32 pipelines](img/pool-fp32-pareto.png)", ""]
    lines = ["### In fp32, on hosts without fast bf16", "",
             f"`{COMMAND} --precision fp32` trains the recipes and their baseline, hybrid α = 0.5, in fp32 (the "
             "committed bf16 selection stands; nothing is screened again), merges each with the start at λ = 0.75 "
             "and encodes in fp32, into `docs/results/pool-fp32/`: seed 0 of every recipe and of the compute control "
             "first, then seeds 1 and 2 of the selected ones. These rows are compared only with each other, never "
             "with the bf16 rows above.", "", "XQuAD-R:", "",
             *(fp32_comparison(pipes, selection) if pipes else ["Not yet run in fp32.", ""]), *figure,
             f"The reverse direction (`{COMMAND} --precision fp32 --direction reverse`: trained on XQuAD-R, seed 0, "
             "tested on MLQA-R):", "",
             *(fp32_comparison(reverse, selection) if reverse else ["Not yet run in fp32.", ""])]
    lines += precision_lines(folder, bf16, combine)
    for data, rows in (("MLQA-R", cost_lines(folder)), ("XQuAD-R", cost_lines(folder / "reverse"))):
        if rows:
            lines += [f"Cost in fp32, trained on {data} (training only):", "", *rows, ""]
    return lines


def proxy_lines(combine: Path) -> List[str]:
    """How well the validation ids predict XQuAD-R: Spearman over the merging study's seed-0 pipelines."""
    from scipy.stats import spearmanr

    val, test = load_pipelines(combine / "validation"), load_pipelines(combine / "xquad-r")
    keys = [k for k in val if k in test and any(r["model"].endswith("-seed0") or r["model"] == "start" for r in test[k])]
    if len(keys) < 5:
        return []
    pick = lambda runs: next(r for r in runs if r["model"].endswith("-seed0") or r["model"] == "start")  # noqa: E731
    v = [headline(val[k][0]) for k in keys]
    t = [headline(pick(test[k])) for k in keys]
    rho = {m: spearmanr([x[m] for x in v], [x[m] for x in t]).correlation for m in ("mono", "cross", "multi", "rd")}
    v_score = [score(val[k][0]["report"], val[(BASELINE_MODEL, "none")][0]["report"])[0] for k in keys]
    t_score = [score(pick(test[k])["report"], pick(test[(BASELINE_MODEL, "none")])["report"])[0] for k in keys]
    return [f"How far the proxy can be trusted: over the merging study's {len(keys)} seed-0 pipelines, the Spearman "
            f"correlation between MLQA-R validation and XQuAD-R is {rho['mono']:.2f} for Mo., {rho['cross']:.2f} for "
            f"Cr., {rho['multi']:.2f} for Mul. and {rho['rd']:.2f} for rank distance, and {spearmanr(v_score, t_score).correlation:.2f} "
            "for the rule's score (computed from the committed artifacts; these pipelines met XQuAD-R before the "
            "rule was written and it was not tuned on them: this checks the proxy)."]


def pool_section(folder: Path, combine: Path, figures: Optional[Path] = None) -> List[str]:
    """The section's lines (empty when the study has no artifacts yet); draws its figure into ``figures``."""
    if not folder.is_dir() or not any(folder.iterdir()):
        return []
    selection_path = folder / "selection.json"
    selection = json.loads(selection_path.read_text()) if selection_path.is_file() else {}
    scored = screened(folder, combine)
    lines = ["## Training for the multilingual pool: multi-positive batches and parallel alignment", "",
             f"`{COMMAND}` trains each recipe on the α study's recipe (seed 0 first), merges it with the start at "
             "λ = 0.75, and evaluates the trained and merged models as encoded and with LIR, at 64 / 512 tokens. "
             "MLQA-R's parallel ids have 2 to 4 of its 7 languages (none has all 7), so K = 4 is the widest "
             "multi-positive batch it allows.", ""]
    lines += reading_lines(folder, "### Reading")
    lines += ["### The selection rule, committed before any new pipeline met XQuAD-R", "", f"Rule: {RULE}", "",
             f"Why it is a fair proxy: {WHY}", "", *proxy_lines(combine), "",
             "### Screening on MLQA-R validation ids (seed 0)", "", *screening_lines(*scored), ""]
    if selection:
        lines += ["Selected (`docs/results/pool/selection.json`): "
                  + (", ".join(f"{label(p.split('+')[0])}, {REMOVAL.get(p.split('+')[1])}" for p in selection["selected"])
                     or "none: no pipeline was eligible") + ".", ""]
    lines += ["### Cost", "", "Passages encoded per step (positives, MLQA-R's hard negatives, translations) and "
              "training time, from each run's log: per batch kind, its steps × its median step time (so a pause is "
              "not cost and a mix's kinds keep their own cost). These times come from whichever host and sitting "
              "trained each run; the recipes against hybrid on one host in one run are in docs/benchmarks.md "
              "(`python benchmarks/train.py recipes`).", "", *cost_lines(folder), "",
              "### XQuAD-R", "", *xquad_lines(folder, combine, selection), ""]
    fp32 = folder.parent / f"{folder.name}-fp32"
    held = held_lines(scored[1], folder, fp32, combine, selection)
    if held:
        lines += ["### How the screening held on XQuAD-R", "",
                  "The rule's score of each screened pipeline, seed 0: on the validation ids (bf16, as screened) and "
                  "on XQuAD-R against the same precision's baseline ⊕ start. Computed after the fact from the "
                  "artifacts; it checks the proxy and selects nothing.", "", *held, ""]
    pipes, base = load_pipelines(folder / "xquad-r"), load_pipelines(combine / "xquad-r")
    if pipes and figures is not None:
        pareto(pipes, base, figures / "pool-pareto.png")
        lines += ["![the pool study's pipelines against the batch-mixing front and the merging study](img/pool-pareto.png)",
                  ""]
    languages = language_lines(compared(pipes, base, selection))
    if languages:
        lines += ["### Seen, unseen and lower-resource languages", "", *languages, ""]
    lines += ["### The reverse direction: train on XQuAD-R, test on MLQA-R", "", *reverse_lines(folder, combine), ""]
    return lines + fp32_lines(fp32, folder, combine, selection, figures)
