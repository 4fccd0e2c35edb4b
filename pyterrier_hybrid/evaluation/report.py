"""Writing a protocol report: report.json, report.md and matrix.png (all written atomically), and its numbers
split by languages seen and unseen in training."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure  # drawn without pyplot: the user's plotting backend is left alone

from ..atomic import atomic_write, atomic_write_text


def _fmt(v: float, digits: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def _removal(removal) -> str:
    if not removal:
        return ""
    how = "centring" if removal["method"] == "center" else f"LIR, k = {removal['k']}"
    return f"; language identity removed ({how}, from the candidates of {', '.join(removal['langs'])})"


def to_markdown(report: dict) -> str:
    """The report as markdown: headline numbers, per-language multilingual numbers, and the language matrix."""
    langs = report["langs"]
    m, rd, qls, mrc = report["mAP"], report["rank_distance"], report["query_language_share@10"], report["rank_correlation"]
    lines = [
        f"# {report['name'] or 'system'} on {report['dataset']}",
        "",
        f"Languages {', '.join(langs)}; queries per language {report['n_queries']}; "
        f"max_queries {report['max_queries']}; encoder dtype {report.get('dtype') or 'n/a'}, "
        f"backend {report.get('backend') or 'n/a'}"
        + _removal(report.get("language_removal")) + ".",
        "",
        "| mAP Mo. | mAP Cr. | mAP Mul. | rank distance | query-language share@10 | rank correlation |",
        "|---|---|---|---|---|---|",
        f"| {_fmt(m['mono'])} | {_fmt(m['cross'])} | {_fmt(m['multi'])} | {_fmt(rd['macro'], 1)} | "
        f"{_fmt(qls['macro'])} | {_fmt(mrc['macro'])} |",
        "",
        "## Multilingual setting, per query language",
        "",
        "| lang | mAP | rank distance | query-language share@10 | rank correlation |",
        "|---|---|---|---|---|",
    ]
    for x in langs:
        lines.append(f"| {x} | {_fmt(report['multi_by_lang'].get(x, float('nan')))} | {_fmt(rd.get(x, float('nan')), 1)} | "
                     f"{_fmt(qls.get(x, float('nan')))} | {_fmt(mrc.get(x, float('nan')))} |")
    lines += ["", "## mAP by query language (rows) and document language (columns)", "",
              "| | " + " | ".join(langs) + " |", "|---" * (len(langs) + 1) + "|"]
    for x in langs:
        lines.append(f"| **{x}** | " + " | ".join(_fmt(report["matrix"][x].get(y, float("nan"))) for y in langs) + " |")
    partial = report.get("partial_rankings")
    if partial:
        share = partial["unranked_relevant_share"]["macro"]
        lines += ["", f"Partial rankings: in the multilingual setting a query ranks {partial['mean_ranked']['macro']:.1f} of "
                      f"{partial['pool']} candidates on average, and {share:.1%} of the relevant ones are not ranked; "
                      "those count at rank (number ranked + 1), so the rank distance is bounded by how few are ranked "
                      "and is not comparable with a full ranking's."]
    t = report["timing"]
    lines += ["", f"Time: {t['total_s']:.1f} s in all, {t['encode_s']:.1f} s encoding.", ""]
    return "\n".join(lines)


def plot_matrix(report: dict, path: Path) -> None:
    """A heatmap of the query-language x document-language mAP matrix."""
    langs = report["langs"]
    values = np.array([[report["matrix"][x].get(y, np.nan) for y in langs] for x in langs])
    fig = Figure(figsize=(1.0 + 0.6 * len(langs), 0.8 + 0.55 * len(langs)))
    ax = fig.subplots()
    im = ax.imshow(values, cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(langs)), langs)
    ax.set_yticks(range(len(langs)), langs)
    ax.set_xlabel("document language")
    ax.set_ylabel("query language")
    for i in range(len(langs)):
        for j in range(len(langs)):
            if not np.isnan(values[i, j]):
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if values[i, j] > 0.6 else "white")
    ax.set_title(f"{report['name'] or 'system'}: mAP on {report['dataset']}", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=120, format="png"))


def write_report(report: dict, out_dir: str | Path) -> None:
    """Write ``report.json``, ``report.md`` and ``matrix.png`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "report.json", json.dumps(report, indent=2, allow_nan=True))
    atomic_write_text(out / "report.md", to_markdown(report))
    plot_matrix(report, out / "matrix.png")


#: the measures of :func:`seen_unseen`, each with the decimals its table prints
PART_MEASURES = {"mono": 3, "cross": 3, "multi": 3, "rank_distance": 1}


def seen_unseen(report: dict, seen: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """Macro mAP (Mo., Cr., Mul.) and rank distance over the settings whose languages were all trained on ("seen"),
    and over the settings that involve any other language ("unseen"); a Cr. setting is unseen when either side is.

    Args:
        report: a protocol report (:func:`~pyterrier_hybrid.evaluation.protocol.run_protocol`).
        seen: the training languages.

    Returns:
        ``{"seen": {...}, "unseen": {...}}``, each with ``mono``, ``cross``, ``multi`` and ``rank_distance``
        (NaN where a part has no setting).
    """
    out, m = {}, report["matrix"]
    for part, keep in [("seen", lambda *ls: all(lang in seen for lang in ls)),
                       ("unseen", lambda *ls: any(lang not in seen for lang in ls))]:
        values = {"mono": [m[x][x] for x in m if keep(x)],
                  "cross": [v for x in m for y, v in m[x].items() if y != x and keep(x, y)],
                  "multi": [v for x, v in report["multi_by_lang"].items() if keep(x)],
                  "rank_distance": [v for x, v in report["rank_distance"].items() if x != "macro" and keep(x)]}
        out[part] = {k: float(np.mean(v)) if v else float("nan") for k, v in values.items()}
    return out


def seen_unseen_rows(parts: Mapping[str, Mapping[str, Mapping[str, float]]], label: str = "system") -> List[str]:
    """The markdown table of :func:`seen_unseen` results, a row per system and part.

    Args:
        parts: system name -> :func:`seen_unseen` of its report (or a mean of several).
        label: the heading of the first column.
    """
    rows = [f"| {label} | part | Mo. | Cr. | Mul. | rank distance |", "|---|---|---|---|---|---|"]
    for name, by_part in parts.items():
        for part, v in by_part.items():
            rows.append(f"| {name} | {part} | " + " | ".join(f"{v[k]:.{d}f}" for k, d in PART_MEASURES.items()) + " |")
    return rows
