"""Write docs/results.md and its figures from the committed artifacts of the studies in docs/results/.

Every number on the page comes from a committed ``report.json`` / ``train_log.jsonl``; nothing is read from
``runs/``. The page states how many seeds each α has, so a study that is still running reads honestly.

    python -m pyterrier_hybrid.studies.results
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..atomic import atomic_write_text
from ..evaluation.reference import PAPER
from ..evaluation.report import seen_unseen, seen_unseen_rows
from .combine_page import combine_section
from .pool_page import pool_section
from .runs import LOW_RESOURCE, REPO, RESULTS, SEEN, UNSEEN, bf16_said, host, load_run, training_seconds
from .stats import holm, paired_test
from .tables import DIGITS, KEYS, TESTS, cell_means, headline, mean_std, reading_lines, signed

DOCS = RESULTS.parent
#: the starting checkpoint's committed zero-shot reports (bf16, as the trained runs are evaluated)
ZERO_SHOT = {d: REPO / "benchmarks" / "results" / "precision" / f"{d}-bfloat16.json" for d in ("xquad-r", "mlqa-r")}
#: BM25's committed reports on the full protocols (`pyterrier-hybrid evaluate --dataset D --bm25 --out runs/bm25/D`)
BM25 = {d: REPO / "benchmarks" / "results" / "bm25" / f"{d}.json" for d in ("xquad-r", "mlqa-r")}
#: how this page is made, and how the α study's runs are, as the page prints them
COMMAND = "python -m pyterrier_hybrid.studies.results"
SWEEP = "python -m pyterrier_hybrid.studies.alpha_sweep --model .cache/me5"


def load_study(folder: Path) -> Dict[float, List[dict]]:
    """Finished runs by α: each with its report, config, log and seen/unseen parts."""
    by_alpha: Dict[float, List[dict]] = {}
    if not folder.is_dir():
        return by_alpha
    for run_dir in sorted(p for p in folder.iterdir() if (p / "report.json").is_file()):
        run = load_run(run_dir)
        run["name"], run["parts"] = run_dir.name, seen_unseen(run["report"], SEEN)
        by_alpha.setdefault(float(run["config"]["alpha"]), []).append(run)
    return dict(sorted(by_alpha.items()))


def selected_step(run: dict) -> int:
    """The step whose checkpoint the run kept: the lowest validation loss (the first, on a tie)."""
    return min((x["val_loss"], x["step"]) for x in run["log"] if "val_loss" in x)[1]


def table(by_alpha: Dict[float, List[dict]]) -> List[str]:
    """Mean ± std over seeds per α, with the step each seed kept."""
    rows = ["| α | seeds | Mo. | Cr. | Mul. | rank distance | checkpoint kept (step, by seed) |",
            "|---|---|---|---|---|---|---|"]
    for alpha, runs in by_alpha.items():
        h = [headline(r) for r in runs]
        rows.append(f"| {alpha:g} | {len(runs)} | " + " | ".join(mean_std([x[k] for x in h]) for k, _ in KEYS)
                    + f" | {mean_std([x['rd'] for x in h], 1)} | {', '.join(str(selected_step(r)) for r in runs)} |")
    return rows


def paired_tests(by_alpha: Dict[float, List[dict]]) -> List[str]:
    """Wilcoxon signed-rank tests of every mixed α against each pure strategy (α = 0 and α = 1), on seed-averaged
    settings.

    Each cell reads ``better / worse`` (how many of the paired settings favour the mixed α), then the p-value
    and its Holm adjustment over every test in the table.
    """
    pure = [a for a in (0.0, 1.0) if a in by_alpha]
    pairs = [(a, b) for a in by_alpha if 0 < a < 1 for b in pure]
    if not pairs:
        return ["Needs a mixed α and a pure strategy (α = 0 or α = 1)."]
    means = {a: cell_means(runs) for a, runs in by_alpha.items()}
    found = [paired_test(means[a][key], means[b][key], better) for a, b in pairs for key, _, _, better in TESTS]
    adjusted = holm([f[2] for f in found])
    n = {key: len(values) for key, values in means[pure[0]].items()}
    rows = ["| mixed α vs pure | " + " | ".join(f"{label} ({n[key]} {paired})" for key, label, paired, _ in TESTS) + " |",
            "|---" * (len(TESTS) + 1) + "|"]
    for i, (a, b) in enumerate(pairs):
        chunk = slice(i * len(TESTS), (i + 1) * len(TESTS))
        cells = [f"{up} / {down}, p = {p:.2g} (Holm {q:.2g})" for (up, down, p), q in zip(found[chunk], adjusted[chunk])]
        rows.append(f"| {a:g} vs {b:g} | " + " | ".join(cells) + " |")
    return rows


def beyond_pure(by_alpha: Dict[float, List[dict]], alpha: float, key: str, better: int) -> float:
    """α's seed mean minus the better pure strategy's on one measure, signed so that > 0 means better than both."""
    mean = {a: np.mean([headline(r)[key] for r in by_alpha[a]]) for a in (0.0, 1.0, alpha)}
    return float(better * mean[alpha] - max(better * mean[0.0], better * mean[1.0]))


def noise_and_gaps(by_alpha: Dict[float, List[dict]]) -> List[str]:
    """Seed noise against the gaps between α: for each measure, the two pure strategies, the pooled seed std, and
    every mixed α's mean minus the better pure one (signed so that > 0 means better than both)."""
    if 0.0 not in by_alpha or 1.0 not in by_alpha:
        return ["Needs both pure strategies (α = 0 and α = 1)."]
    mixed = [a for a in by_alpha if 0 < a < 1]
    rows = ["| measure | X-Y (α = 0) | X-X-mono (α = 1) | seed std (pooled) | "
            + " | ".join(f"α = {a:g} minus the better pure" for a in mixed) + " |", "|---" * (4 + len(mixed)) + "|"]
    for key, label, _, better in TESTS:
        digits = DIGITS[key]
        values = {a: np.array([headline(r)[key] for r in runs]) for a, runs in by_alpha.items()}
        variances = [v.var(ddof=1) for v in values.values() if len(v) > 1]
        noise = f"{np.sqrt(np.mean(variances)):.{digits}f}" if variances else "(one seed)"
        cells = [signed(beyond_pure(by_alpha, a, key, better), digits) for a in mixed]
        rows.append(f"| {label} | {values[0.0].mean():.{digits}f} | {values[1.0].mean():.{digits}f} | {noise} | "
                    + " | ".join(cells) + " |")
    return rows


def seen_unseen_table(by_alpha: Dict[float, List[dict]]) -> List[str]:
    """Seed means over settings of seen languages only, and over settings that involve an unseen one."""
    return seen_unseen_rows({f"{alpha:g}": {part: {k: np.mean([r["parts"][part][k] for r in runs]) for k in values}
                                            for part, values in runs[0]["parts"].items()}
                             for alpha, runs in by_alpha.items()}, "α")


def per_language(by_alpha: Dict[float, List[dict]], key: str) -> Dict[str, List[float]]:
    """Seed-averaged per-language values of ``multi_by_lang``, ``rank_distance`` or ``rank_correlation``, by α."""
    langs = next(iter(by_alpha.values()))[0]["report"]["langs"]
    out = {}
    for x in langs:
        out[x] = [float(np.mean([r["report"][key][x] for r in runs])) for runs in by_alpha.values()]
    return out


def spread_table(by_alpha: Dict[float, List[dict]]) -> List[str]:
    """How far apart the query languages are at each α (seed means): Mul. mAP std and range, its seen, unseen and
    lower-resource means, and the std over languages of rank distance and rank correlation."""
    rows = ["| α | Mul. mAP: std over languages | range | seen | unseen | lower-resource | rank distance: std | "
            "rank correlation: std |", "|---|---|---|---|---|---|---|---|"]
    multi, rd = per_language(by_alpha, "multi_by_lang"), per_language(by_alpha, "rank_distance")
    corr = per_language(by_alpha, "rank_correlation")
    for i, alpha in enumerate(by_alpha):
        m = np.array([v[i] for v in multi.values()])
        part = lambda langs: np.mean([multi[x][i] for x in multi if x in langs])  # noqa: E731
        rows.append(f"| {alpha:g} | {m.std():.3f} | {m.max() - m.min():.3f} | {part(SEEN):.3f} | {part(UNSEEN):.3f} | "
                    f"{part(LOW_RESOURCE):.3f} | {np.std([v[i] for v in rd.values()]):.1f} | "
                    f"{np.std([v[i] for v in corr.values()]):.3f} |")
    return rows


def pareto_figure(by_alpha: Dict[float, List[dict]], path: Path) -> None:
    """Mo. against Mul. and against rank distance: every run, each α's mean, the line between the two pure
    strategies' means and the corner that would be the best of both."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.8))
    axes = fig.subplots(1, 2)
    colors = dict(zip(by_alpha, ["tab:red", "tab:orange", "tab:green", "tab:blue", "tab:purple"]))
    for ax, (key, label, better) in zip(axes, [("multi", "Mul. mAP (higher is better)", max),
                                               ("rd", "rank distance (lower is better)", min)]):
        means = {}
        for alpha, runs in by_alpha.items():
            h = [headline(r) for r in runs]
            xs, ys = [x["mono"] for x in h], [x[key] for x in h]
            means[alpha] = (float(np.mean(xs)), float(np.mean(ys)))
            ax.scatter(xs, ys, s=18, alpha=0.5, color=colors[alpha])
            ax.scatter(*means[alpha], s=110, marker="*", color=colors[alpha], label=f"α = {alpha:g}", zorder=3)
        if 0.0 in means and 1.0 in means:
            (x0, y0), (x1, y1) = means[0.0], means[1.0]
            ax.plot([x0, x1], [y0, y1], ":", color="grey", linewidth=1, label="between the pure strategies")
            ax.scatter([max(x0, x1)], [better(y0, y1)], s=60, marker="x", color="black", label="best of both")
        ax.set_xlabel("Mo. mAP (higher is better)")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=7)
    fig.suptitle("XQuAD-R: every run (dots), each α's seed mean (stars)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def language_figure(by_alpha: Dict[float, List[dict]], path: Path) -> None:
    """Per query language against α: Mul. mAP, rank distance and rank correlation (unseen dashed)."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    alphas = list(by_alpha)
    fig = Figure(figsize=(12, 3.6))
    axes = fig.subplots(1, 3)
    for ax, (key, label) in zip(axes, [("multi_by_lang", "Mul. mAP"), ("rank_distance", "rank distance"),
                                       ("rank_correlation", "rank correlation")]):
        for i, (x, values) in enumerate(per_language(by_alpha, key).items()):
            style = "--" if x in UNSEEN else "-"
            width = 2.2 if x in LOW_RESOURCE else 1.0
            ax.plot(alphas, values, style, linewidth=width, marker="o", markersize=3, label=x,
                    color=colormaps["tab20"](i))  # 11 languages: the default cycle repeats after 10
        ax.set_xlabel("α (share of X-X-mono batches)")
        ax.set_title(label, fontsize=9)
    axes[2].legend(fontsize=7, ncol=2, title="dashed: unseen; thick: low-resource", title_fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def reference_rows(dataset: str) -> List[str]:
    """Table rows for the starting checkpoint (its committed zero-shot report, when there is one) and the paper's
    XLM-R runs, on ``dataset``."""
    rows = []
    for label, path, bound in [("zero-shot start", ZERO_SHOT[dataset], ""), ("BM25 (pisa)", BM25[dataset], "*")]:
        if path.is_file():
            r = json.loads(path.read_text())
            rows.append(f"| {label} (`{path.relative_to(REPO)}`) | – | {r['mAP']['mono']:.3f} | {r['mAP']['cross']:.3f} "
                        f"| {r['mAP']['multi']:.3f} | {r['rank_distance']['macro']:.1f}{bound} | – |")
    for name, (mo, cr, mul, rd) in PAPER[dataset].items():
        if name.startswith("XLM-R"):  # the paper's model family closest to ours in size
            mo, cr, mul = (f"{v:.3f}".lstrip("0") for v in (mo, cr, mul))
            rows.append(f"| paper: {name} | – | {mo} | {cr} | {mul} | {rd:.1f} | – |")
    return rows


def bm25_note(dataset: str) -> List[str]:
    """Why BM25's rank distance (starred) is not comparable: it ranks only documents that share a term."""
    if not BM25[dataset].is_file():
        return []
    part = json.loads(BM25[dataset].read_text())["partial_rankings"]
    return [f"\\* BM25 ranks only candidates that share a term with the question: in the Mul. setting "
            f"{part['mean_ranked']['macro']:.1f} of {part['pool']:,} per question on average, and "
            f"{part['unranked_relevant_share']['macro']:.1%} of the relevant sentences are not ranked at all. Those count "
            "at rank (number ranked + 1), as `RankDistance` defines it, so BM25's rank distance is bounded by how few "
            "it ranks and says nothing about language bias; its mAP is comparable.", ""]


def study_section(by_alpha: Dict[float, List[dict]], title: str, intro: str, reference: Sequence[str] = (),
                  more: Sequence[str] = ()) -> List[str]:
    """A heading, a sentence (``{steps}`` filled from the runs' config), the mean ± std table of another study's
    finished runs with ``reference`` rows under it, then ``more`` lines (nothing at all if there are no runs)."""
    if not by_alpha:
        return []
    steps = next(iter(by_alpha.values()))[0]["config"]["train"]["steps"]
    return [f"## {title}", "", intro.format(steps=steps), "", *table(by_alpha), *reference, "", *more,
            *([""] if more else [])]


def budget_lines(budget: Dict[float, List[dict]], base: Dict[float, List[dict]]) -> List[str]:
    """What more steps changed: each α's longer run minus the same seed's run at the sweep's budget, and how far
    hybrid sits beyond the better pure strategy at each budget (> 0: better than both). Only seeds that every α
    of the longer study has finished are compared, so a study still running never mixes seeds."""
    seeds = sorted(set.intersection(*({r["config"]["seed"] for r in runs} for runs in budget.values())))
    if not seeds:
        return ["No seed has finished every α of this study yet, so nothing is compared."]
    budget = {a: [r for r in runs if r["config"]["seed"] in seeds] for a, runs in budget.items()}
    same_seed = {a: [r for r in runs if r["config"]["seed"] in seeds] for a, runs in base.items()}
    steps = {name: next(iter(s.values()))[0]["config"]["train"]["steps"]
             for name, s in (("base", base), ("budget", budget))}
    seed_label = f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
    head = " | ".join(label for _, label, _, _ in TESTS)
    mean = lambda runs, key: float(np.mean([headline(r)[key] for r in runs]))  # noqa: E731
    rows = [f"Compared below: {seed_label}, the seeds every α has finished.", "",
            f"Each α at {steps['budget']} steps minus the same seed at {steps['base']} steps:", "",
            f"| α | {head} |", "|---" * (len(TESTS) + 1) + "|"]
    rows += [f"| {a:g} | " + " | ".join(signed(mean(runs, k) - mean(same_seed[a], k), DIGITS[k]) for k, *_ in TESTS)
             + " |" for a, runs in budget.items() if same_seed.get(a)]
    # the final step's weights, where evaluated: what the steps after the kept one did (nothing is chosen by it)
    final = {a: [{**r, "report": r["last_step"]} for r in runs if r.get("last_step")] for a, runs in budget.items()}
    final = {a: runs for a, runs in final.items() if runs}
    if final:
        rows += ["", f"The weights at step {steps['budget']} (the resume checkpoint), evaluated the same way. They are "
                 "not the kept model: this shows what the steps after the kept one did on XQuAD-R, and chooses "
                 "nothing.", "", f"| α | {head} |", "|---" * (len(TESTS) + 1) + "|"]
        rows += [f"| {a:g} | " + " | ".join(f"{mean(runs, k):.{DIGITS[k]}f}" for k, *_ in TESTS) + " |"
                 for a, runs in final.items()]
    position = []
    every_seed = len(same_seed) == len(base) and all(len(same_seed[a]) == len(base[a]) for a in base)
    budgets = [(f"{steps['base']} steps, {seed_label}", same_seed)]
    if not every_seed:  # the same rows twice say nothing
        budgets.append((f"{steps['base']} steps, every seed", base))
    for name, runs in (*budgets, (f"{steps['budget']} steps, kept step", budget),
                       (f"{steps['budget']} steps, final step", final)):
        if not all(runs.get(a) for a in (0.0, 1.0)):
            continue
        for alpha in (a for a in runs if 0 < a < 1 and a in budget):
            position.append(f"| {alpha:g} | {name} | " + " | ".join(
                signed(beyond_pure(runs, alpha, key, better), DIGITS[key]) for key, _, _, better in TESTS) + " |")
    if not position:
        return rows + ["", "Where hybrid sits against the pure strategies needs α = 0, a mixed α and α = 1 at both budgets."]
    return rows + ["", "Each mixed α minus the better pure strategy, signed so that > 0 is better than both on every "
                   "measure (for rank distance: the better pure strategy's distance minus the mixed α's):", "",
                   f"| α | budget | {head} |", "|---" * (len(TESTS) + 2) + "|", *position, "",
                   f"Paired tests at {steps['budget']} steps (kept models), as above, with Holm's adjustment over this "
                   "table. They pair settings (seeds averaged), so they say nothing about seed noise:", "",
                   *paired_tests(budget)]


def reproduction_lines(folder: Path) -> List[str]:
    """What the committed reproduction check (``alpha_sweep --reproduce``) found."""
    path = folder / "reproduction.json"
    if not path.is_file():
        return ["No reproduction check committed yet (`python -m pyterrier_hybrid.studies.alpha_sweep --model "
                ".cache/me5 --reproduce alpha0-seed0 --commit`)."]
    c = json.loads(path.read_text())
    verdict = "bit-identical" if c["identical"] else "not identical"
    return [f"`{c['command']}` trained and evaluated `{c['run']}` again from scratch and compared it with the "
            f"committed artifacts (`docs/results/{folder.name}/reproduction.json`): training config identical: "
            f"{'yes' if c['config_identical'] else 'no'}; largest absolute difference over every logged loss and "
            f"learning rate: {c['log_max_abs_diff']:g}; over every number of the report: {c['report_max_abs_diff']:g} "
            f"({verdict})."]


def hardware_lines(studies: Dict[str, Dict[float, List[dict]]]) -> List[str]:
    """Where each study's runs trained, from the ``sittings`` of their configs (runs made before they were
    recorded have none)."""
    def where(sittings: List[dict]) -> str:
        said = [f"{host(s)}, torch {s['torch']}, {s['threads']} threads, {bf16_said(s)}"
                for s in sittings]
        if len(said) > 1:
            said = [f"from step {s['from_step']}: {w}" for s, w in zip(sittings, said)]
        return "; ".join(said)

    groups: Dict[Tuple[str, str], List[List[dict]]] = {}
    for study, by_alpha in studies.items():
        for runs in by_alpha.values():
            for run in runs:
                place = where(run["config"]["sittings"]) if run["config"].get("sittings") else "not recorded"
                groups.setdefault((study, place), []).append(run["log"])

    def cost(logs: List[List[dict]]) -> str:
        # medians: a step that straddles a pause (a study stopped for a quiet benchmark) is not cost
        seconds = [s for s in map(training_seconds, logs) if s is not None]
        if not seconds:
            return "– | –"
        steps = [r["seconds"] for log in logs for r in log if "loss" in r and "seconds" in r]
        return f"{np.median(steps):.2f} | {np.mean(seconds) / 60:.1f}"

    return ["Where the runs trained, from the `sittings` in each `training_config.json` (recorded since 2026-12; a "
            "rerun is bit-identical only on the same device, torch version and thread count), and how long they "
            "took there, from the seconds each step logged (training only; evaluation comes on top):", "",
            "| study | where | runs | seconds per step (median) | training minutes per run (steps × median, per batch kind) |",
            "|---|---|---|---|---|",
            *(f"| {study} | {place} | {len(runs)} | {cost(runs)} |" for (study, place), runs in groups.items())]


def fp32_lines(fp32: Dict[str, Dict[float, List[dict]]]) -> List[str]:
    """The studies run in fp32 on hosts without fast bf16, each against fp32 baselines of the same seeds only:
    every section above is bf16, and no table or test mixes the two (nothing at all while there are none)."""
    alpha, budget, reverse = fp32["alpha"], fp32["budget"], fp32["reverse"]
    if not (alpha or budget or reverse):
        return []
    return ["## In fp32, on hosts without fast bf16", "",
            "Every section above trains under bf16 autocast and encodes in bf16. These runs train and encode in fp32 "
            f"(`{SWEEP} --precision fp32 --study NAME --commit`, in `docs/results/<study>-fp32/`), and are compared "
            "only with each other: the baselines are retrained in fp32 on the same seeds.", "",
            *study_section(alpha, "fp32: the baselines", "α ∈ {{0, 0.5, 1}} at {steps} steps, fp32, otherwise the "
                           "recipe of the α study."),
            *study_section(budget, "fp32: four times the budget", "α ∈ {{0, 0.5, 1}} at {steps} steps, fp32.",
                           more=budget_lines(budget, alpha) if alpha else
                           ["No fp32 baselines yet, so nothing is compared."]),
            *study_section(reverse, "fp32: the reverse direction", "α ∈ {{0, 0.5, 1}}, seed 0, {steps} steps, fp32, "
                           "trained on XQuAD-R and tested on MLQA-R.", reference=reference_rows("mlqa-r"),
                           more=[*noise_and_gaps(reverse), "", *paired_tests(reverse)])]


def write_page(folder: Path = RESULTS / "alpha", page: Path = DOCS / "results.md") -> str:
    """Write ``page`` (and its figures in ``img/`` beside it) from the runs in ``folder``; return its text."""
    by_alpha = load_study(folder)
    budget, reverse = load_study(folder.parent / "budget"), load_study(folder.parent / "reverse")
    fp32 = {name: load_study(folder.parent / f"{name}-fp32") for name in ("alpha", "budget", "reverse")}
    if not by_alpha:
        raise SystemExit(f"no finished runs in {folder}; run python -m pyterrier_hybrid.studies.alpha_sweep first")
    figures = page.parent / "img"
    figures.mkdir(parents=True, exist_ok=True)
    pareto_figure(by_alpha, figures / "alpha-pareto.png")
    language_figure(by_alpha, figures / "alpha-languages.png")
    n = sum(map(len, by_alpha.values()))
    example = next(iter(by_alpha.values()))[0]["config"]
    seeds = sorted({r["config"]["seed"] for runs in by_alpha.values() for r in runs})
    lines = [
        "# Does hybrid give the best of both? The α study", "",
        f"<!-- generated by `{COMMAND}` from docs/results/; do not edit by hand -->", "",
        f"Regenerate this page and its figures from the committed run artifacts with `{COMMAND}`.", "",
        f"{n} run{'' if n == 1 else 's'}: hybrid batches with α = P(X-X-mono batch) (α = 1 is X-X-mono, α = 0 is X-Y), seeds "
        f"{', '.join(map(str, seeds))}. Every run starts from `{example['base_model']}` (multilingual-e5-small), "
        f"trains {example['train']['steps']} steps of {example['batch_size']} on MLQA-R ({' '.join(SEEN)}) with "
        f"`--amp {example['train']['amp']}` and frozen word embeddings (the recipe of docs/training.md), keeps the "
        "checkpoint with the lowest loss on the same held-out 10% of MLQA-R parallel ids, and is evaluated on the "
        f"full XQuAD-R protocol ({', '.join(UNSEEN)} never trained on). Nothing is chosen by looking at XQuAD-R. Each "
        "run's report, log, config and model card are in `docs/results/alpha/<run>/`; "
        f"`{SWEEP} --commit` trains and commits any run that is missing.", "",
    ]
    lines += reading_lines(folder, "## Reading")
    lines += [
        "## Macro mAP and rank distance (mean ± std over seeds)", "", *table(by_alpha),
        *reference_rows("xquad-r"), "", *bm25_note("xquad-r"),
        "The kept checkpoint has the lowest loss on 4 fixed validation batches drawn from the held-out MLQA-R ids "
        "with the run's own α and seed (validation every 20 steps), so the loss selects within a run but is not "
        "comparable across runs; each run's values are in its `train_log.jsonl`.", "",
        "The paper's rows use XLM-R at the paper's budget (arXiv 2408.10536; docs/references.md): context, not a "
        "like-for-like comparison.", "",
        "## Seed noise against the gaps between α", "",
        "Seed std is the square root of the mean over α of the sample variance over seeds. Each mixed α's column is "
        "its mean minus the better of the two pure strategies on that measure, signed so that a positive number is "
        "better than both (for rank distance: the better pure strategy's distance minus the mixed α's).", "",
        *noise_and_gaps(by_alpha), "",
        "## Paired tests", "",
        "Wilcoxon signed-rank (scipy, two-sided), each mixed α against X-Y (α = 0) and X-X-mono (α = 1). Seeds are "
        "averaged per setting first, then the settings are paired; `better / worse` counts the settings where the "
        "mixed α is better or worse (for rank distance, lower is better), and Holm's adjustment covers every test "
        "in the table. With 11 pairs, p = 0.00098 is the smallest an exact test can give: all 11 moved one way.", "",
        *paired_tests(by_alpha), "",
        "## Mo. against Mul. and rank distance", "", "![Pareto](img/alpha-pareto.png)", "",
        "## Seen and unseen languages", "",
        "Seed means over settings whose languages were all trained on, and over settings that involve "
        f"{', '.join(UNSEEN[:-1])} or {UNSEEN[-1]} (a Cr. setting is unseen when either side is).", "",
        *seen_unseen_table(by_alpha), "",
        f"## Per query language: spread, unseen ({', '.join(UNSEEN)}) and lower-resource ({', '.join(LOW_RESOURCE)})",
        "",
        "![per language](img/alpha-languages.png)", "", *spread_table(by_alpha), "",
        *study_section(budget, "Four times the budget",
                       "α ∈ {{0, 0.5, 1}} at {steps} steps, otherwise the recipe above; seed 0 first, then seeds 1 "
                       "and 2 (the seeds column says which are in) "
                       f"(`{SWEEP} --study budget --commit`).",
                       more=budget_lines(budget, by_alpha) if budget else []),
        *study_section(reverse, "The reverse direction: train on XQuAD-R, test on MLQA-R",
                       "α ∈ {{0, 0.5, 1}}, seed 0, trained on all 11 XQuAD-R languages and evaluated zero-shot on the "
                       f"full MLQA-R protocol (`{SWEEP} --study reverse --commit`); the validation loss is on "
                       "held-out XQuAD-R ids. MLQA-R has 7 languages, all trained on here; its Mul. pool has 2 to 4 relevant sentences per question.",
                       reference=reference_rows("mlqa-r"),
                       more=[*bm25_note("mlqa-r"), "Each mixed α minus the better pure strategy, and paired tests over MLQA-R's settings "
                             "(Holm over this table):", "", *noise_and_gaps(reverse), "", *paired_tests(reverse)]
                       if reverse else []),
        *combine_section(folder.parent / "combine", figures, by_alpha, zero_shot=ZERO_SHOT),
        *pool_section(folder.parent / "pool", folder.parent / "combine", figures),
        *fp32_lines(fp32),
        "## Reproducibility", "", *reproduction_lines(folder), "",
        *hardware_lines({"α study": by_alpha, "budget": budget, "reverse": reverse,
                         **{f"{name} (fp32)": runs for name, runs in fp32.items()}}), "",
    ]
    text = "\n".join(lines)
    atomic_write_text(page, text)
    return text


if __name__ == "__main__":
    print(write_page())
