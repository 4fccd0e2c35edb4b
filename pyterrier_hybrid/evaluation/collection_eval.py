"""Evaluating on any ir_datasets collection, one corpus per language, with each benchmark's usual measures.

``pyterrier-hybrid evaluate-collection --dataset 'miracl/{lang}/dev' --langs sw,te,fi`` indexes each language's
corpus once, retrieves its topics with the model (and BM25 when asked), and scores the runs with
``pt.Experiment`` against the qrels. The measures default to what each benchmark reports
(:data:`BENCHMARK_MEASURES`).
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import ir_measures
import numpy as np
import pyterrier as pt
from ir_datasets_ext import irds_name

from ..atomic import atomic_write_text
from .sparse import pisa_bm25

#: a benchmark's conventional measures, by the start of its ir_datasets name (the first match counts)
BENCHMARK_MEASURES = [
    ("miracl/", "nDCG@10,R@100"),
    ("mr-tydi/", "RR@100,R@100"),
    ("neuclir/", "nDCG@20,R@1000"),
]
DEFAULT_MEASURES = "nDCG@10,R@100"


def default_measures(pattern: str) -> List[ir_measures.Measure]:
    """The measures a benchmark is usually reported with (nDCG@10 and R@100 when it is none we know)."""
    name = irds_name(pattern)
    spec = next((m for prefix, m in BENCHMARK_MEASURES if name.startswith(prefix)), DEFAULT_MEASURES)
    return parse_measures(spec)


def parse_measures(spec: str) -> List[ir_measures.Measure]:
    """``"nDCG@10,R@100"`` as ir_measures measures, or a ValueError naming the one it cannot read."""
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        try:
            out.append(ir_measures.parse_measure(part))
        except (ValueError, NameError, SyntaxError, TypeError):
            raise ValueError(f"--measures: {part!r} is not an ir_measures measure; write them like nDCG@10,R@100,RR@100") \
                from None
    if not out:
        raise ValueError("--measures is empty; give e.g. nDCG@10,R@100")
    return out


def evaluate_collection(pattern: str, langs: Optional[Sequence[str]], *, encoder=None, bm25: bool = False,
                        measures: Optional[Sequence[ir_measures.Measure]] = None, out_dir: Optional[str | Path] = None,
                        index_dir: Optional[str | Path] = None, num_results: int = 1000,
                        allow_other_encoder: bool = False, verbose: bool = True) -> dict:
    """Index each language's corpus once and evaluate its topics and qrels with ``pt.Experiment``.

    Args:
        pattern: an ir_datasets name, ``irds:`` optional, with ``{lang}`` for several languages.
        langs: the values of ``{lang}``; required when the pattern has it.
        encoder: a :class:`~pyterrier_hybrid.BiEncoder`, or None with ``bm25``.
        bm25: evaluate BM25 (pyterrier-pisa, no stemming) too.
        measures: ir_measures measures (default: :func:`default_measures`).
        out_dir: when given, write ``report.json`` and ``report.md`` there.
        index_dir: keep the dense indexes here (``<index_dir>/<lang>``) and reuse them; default: a temporary folder.
            An index is reused only for the same corpus size and the same model (its recorded identity).
        num_results: documents retrieved per query.
        allow_other_encoder: reuse an index in ``index_dir`` that another model encoded (to compare on purpose).
        verbose: progress bars.

    Returns:
        The report: per system, each language's measures and their macro average; query and document counts.
    """
    if encoder is None and not bm25:
        raise ValueError("give an encoder (--model), BM25 (--bm25), or both")
    name = irds_name(pattern)
    if "{lang}" in name and not langs:
        raise ValueError(f"{pattern} has a {{lang}} field: give the languages, e.g. --langs sw,te,fi")
    langs = list(langs) if "{lang}" in name else [None]
    measures = list(measures) if measures else default_measures(name)
    start = time.perf_counter()
    systems: Dict[str, Dict[str, dict]] = {}
    n_queries, n_docs = {}, {}
    with tempfile.TemporaryDirectory(prefix="pyterrier-hybrid-collection-") as work:
        for lang in langs:
            dataset_name = name.format(lang=lang) if lang else name
            key = lang or dataset_name
            dataset = _load(dataset_name)
            topics, qrels = dataset.get_topics(), dataset.get_qrels()
            if len(topics) == 0 or len(qrels) == 0:
                raise ValueError(f"irds:{dataset_name} has {len(topics)} topics and {len(qrels)} qrels; evaluate a "
                                 "split with both (e.g. miracl/sw/dev, not miracl/sw)")
            pipelines, names = [], []
            if encoder is not None:
                pipelines.append(_dense(encoder, dataset, dataset_name, Path(index_dir or work) / (lang or "corpus"),
                                        num_results, allow_other_encoder, verbose))
                names.append(encoder.name)
            if bm25:
                path = Path(work) / f"bm25-{lang or 'corpus'}"
                pipelines.append(pisa_bm25(path, dataset.get_corpus_iter(verbose=False), num_results,
                                           path.with_suffix(".log")))
                names.append("BM25 (pisa)")
            table = pt.Experiment(pipelines, topics, qrels, eval_metrics=measures, names=names)
            for _, row in table.iterrows():
                systems.setdefault(row["name"], {})[key] = {str(m): float(row[str(m)]) for m in measures}
            n_queries[key], n_docs[key] = int(topics["qid"].nunique()), int(dataset.irds_ref().docs_count())
    report = {"dataset": pattern, "langs": [lang or name for lang in langs],
              "measures": [str(m) for m in measures], "n_queries": n_queries, "n_docs": n_docs,
              "systems": {s: {**by_lang, "macro": {str(m): float(np.mean([v[str(m)] for v in by_lang.values()]))
                                                   for m in measures}} for s, by_lang in systems.items()},
              "num_results": num_results, "timing": {"total_s": time.perf_counter() - start}}
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "report.json", json.dumps(report, indent=2) + "\n")
        atomic_write_text(out / "report.md", collection_markdown(report))
    return report


def _load(name: str):
    try:
        return pt.get_dataset(f"irds:{name}")
    except KeyError:
        raise KeyError(f"no ir_datasets dataset {name!r}; check the name (and {{lang}}) against ir_datasets' "
                       "catalogue, e.g. miracl/sw/dev or mr-tydi/te/test") from None


def _dense(encoder, dataset, name: str, path: Path, num_results: int, allow_other_encoder: bool,
           verbose: bool) -> pt.Transformer:
    from ..index import FaissIndex, index_corpus

    if not (path / "pt_meta.json").is_file():  # indexed once, kept when index_dir is given
        index_corpus(encoder, dataset, path, verbose=verbose)
    index = FaissIndex(path)
    if len(index) != dataset.irds_ref().docs_count():
        raise ValueError(f"{path} holds {len(index)} documents but irds:{name} has {dataset.irds_ref().docs_count()}; "
                         "it indexes another corpus: remove it or give another --index-dir")
    try:  # a reused index must hold this model's vectors
        return index.retriever(encoder, num_results=num_results, allow_other_encoder=allow_other_encoder)
    except ValueError as e:
        raise ValueError(f"{e}; here: remove {path} or give another --index-dir to index afresh, or reuse it anyway "
                         "with --allow-other-encoder") from None


def collection_markdown(report: dict) -> str:
    """The report as markdown: one table per system, a row per language and the macro average."""
    ms = report["measures"]
    lines = [f"# {report['dataset']}", "",
             f"Languages {', '.join(report['langs'])}; queries {report['n_queries']}; documents {report['n_docs']}; "
             f"{report['num_results']} results per query.", ""]
    for system, by_lang in report["systems"].items():
        lines += [f"## {system}", "", "| language | " + " | ".join(ms) + " |", "|---" * (len(ms) + 1) + "|"]
        for lang, values in by_lang.items():
            label = "**macro**" if lang == "macro" else lang
            lines.append(f"| {label} | " + " | ".join(f"{values[m]:.4f}" for m in ms) + " |")
        lines.append("")
    return "\n".join(lines)


__all__ = ["BENCHMARK_MEASURES", "collection_markdown", "default_measures", "evaluate_collection", "parse_measures"]
