"""The model card (``README.md``, Hugging Face's convention) a trained model directory carries.

YAML metadata says how the model was made (base model, sampling, α, steps, batch, seed, data, lengths,
temperature, best validation loss); ``pyterrier-hybrid evaluate --update-card`` adds evaluation summaries.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Optional

from ..atomic import atomic_write_text

CARD = "README.md"
_EVAL = re.compile(r"\n<!-- evaluation:(?P<key>[^ ]+) -->\n.*?<!-- /evaluation -->\n", re.DOTALL)


def render_model_card(run: dict, steps_done: int, best_val_loss: Optional[float], stopped_early: bool) -> str:
    """The card's text for a run config (see ``Trainer.run_config``) and the training outcome."""
    from huggingface_hub import ModelCardData

    langs = list(dict.fromkeys(lang for s in run["sources"] for lang in s["langs"]))
    best = None if best_val_loss is None or math.isinf(best_val_loss) else round(float(best_val_loss), 6)
    train, enc = run["train"], run["encoder"]
    data = ModelCardData(
        base_model=run["base_model"], language=langs, library_name="sentence-transformers",
        pipeline_tag="sentence-similarity", tags=["pyterrier", "dense-retrieval", "multilingual", "hybrid-batches"],
        datasets=[s["name"] for s in run["sources"]],
        pyterrier_hybrid={
            "sampling": run["sampling"], "alpha": run["alpha"], "steps": train["steps"], "steps_done": steps_done,
            "stopped_early": stopped_early, "batch_size": run["batch_size"], "seed": run["seed"],
            "temperature": train["temperature"], "lr": train["lr"], "amp": train["amp"],
            "freeze_embeddings": train["freeze_embeddings"],
            "query_max_length": enc["query_max_length"], "doc_max_length": enc["doc_max_length"],
            "best_val_loss": best,
        })
    sources = "\n".join(f"| {s['name']} | {s['items']} | {', '.join(s['langs'])} | `{s['sha1'][:12]}` |"
                        for s in run["sources"])
    kind = {"xx": "X-X-mono", "xy": "X-Y", "hybrid": f"hybrid (α = {run['alpha']})"}[run["sampling"]]
    return f"""---
{data.to_yaml()}
---

# Dual encoder trained with {kind} batches

Fine-tuned from `{run['base_model']}` with pyterrier-hybrid (hybrid batches,
arXiv 2408.10536): {steps_done} of {train['steps']} steps{' (early stopping fired)' if stopped_early else ''},
batch size {run['batch_size']}, seed {run['seed']}, InfoNCE temperature {train['temperature']}, AdamW lr {train['lr']},
precision {train['amp'] or 'fp32'}{', word embeddings frozen' if train['freeze_embeddings'] else ''},
query / passage length {enc['query_max_length']} / {enc['doc_max_length']} tokens,
prefixes {enc['query_prefix']!r} / {enc['doc_prefix']!r}. Best validation loss: {best if best is not None else 'not measured'}.

| training source | items | languages | sha1 |
|---|---|---|---|
{sources}

The full configuration is in `training_config.json`. Load with `pyterrier_hybrid.BiEncoder("<this directory>")`
or sentence-transformers.
"""


def check_own_card(model_dir: str | Path) -> Path:
    """The path of ``model_dir``'s card if pyterrier-hybrid wrote it (its metadata has a ``pyterrier_hybrid``
    key); otherwise a clear error, so that a base model's or a Hub model's card is never edited.

    Args:
        model_dir: a model directory.
    """
    from huggingface_hub import ModelCard

    path = Path(model_dir) / CARD
    if not path.is_file():
        raise FileNotFoundError(f"--update-card: {path} does not exist; only model directories written by "
                                "pyterrier-hybrid train carry a card to update. Leave out --update-card")
    if "pyterrier_hybrid" not in ModelCard.load(path).data.to_dict():
        raise ValueError(f"--update-card: {path} was not written by pyterrier-hybrid train (its metadata has no "
                         "'pyterrier_hybrid' entry), so it is left as it is. Leave out --update-card; the report "
                         "is in --out")
    return path


def append_evaluation(model_dir: str | Path, report: dict, command: str) -> Path:
    """Add (or replace) the card's summary of one evaluation report, keyed by dataset, subset and dtype.

    Args:
        model_dir: a model directory written by the trainer (see :func:`check_own_card`).
        report: a protocol report (``run_protocol``'s return value).
        command: the command that produced it, for the reader to rerun.
    """
    path = check_own_card(model_dir)
    key = f"{report['dataset']}|{','.join(report['langs'])}|{report['max_queries']}|{report.get('dtype')}"
    m, rd = report["mAP"], report["rank_distance"]["macro"]
    section = (f"\n<!-- evaluation:{key} -->\n## Evaluation: {report['dataset']} ({len(report['langs'])} languages"
               f"{', first ' + str(report['max_queries']) + ' questions' if report['max_queries'] else ''}, "
               f"{report.get('dtype', 'float32')})\n\n"
               f"| mAP Mo. | mAP Cr. | mAP Mul. | rank distance |\n|---|---|---|---|\n"
               f"| {m['mono']:.3f} | {m['cross']:.3f} | {m['multi']:.3f} | {rd:.1f} |\n\n"
               f"`{command}`\n<!-- /evaluation -->\n")
    text = path.read_text(encoding="utf-8")
    kept = _EVAL.sub(lambda old: "" if old["key"] == key else old[0], text)
    atomic_write_text(path, kept.rstrip("\n") + "\n" + section)
    return path
