"""The model card (``README.md``, Hugging Face's convention) a model directory pyterrier-hybrid writes carries.

YAML metadata says how the model was made: for a trained one its base model, sampling, α, steps, batch, seed, data,
lengths, temperature and best validation loss; for a merged one its parents and λ. ``pyterrier-hybrid evaluate
--update-card`` adds evaluation summaries.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import List, Optional, Union

from ..atomic import atomic_write_text
from .model_dir import CARD, MERGE_CONFIG, TRAINING_CONFIG

_EVAL = re.compile(r"\n<!-- evaluation:(?P<key>[^ ]+) -->\n.*?<!-- /evaluation -->\n", re.DOTALL)
_LOAD = 'Load with `pyterrier_hybrid.BiEncoder("<this directory>")` or sentence-transformers.'


def _front_matter(base_model: Union[str, List[str]], tag: str, made: dict, **more) -> str:
    """The card's YAML block; its ``pyterrier_hybrid`` entry (``made``) marks the cards we wrote."""
    from huggingface_hub import ModelCardData

    data = ModelCardData(base_model=base_model, library_name="sentence-transformers", pipeline_tag="sentence-similarity",
                         tags=["pyterrier", "dense-retrieval", "multilingual", tag], pyterrier_hybrid=made, **more)
    return f"---\n{data.to_yaml()}\n---\n"


def render_model_card(run: dict, steps_done: int, best_val_loss: Optional[float], stopped_early: bool,
                      sampling: str, note: str = "") -> str:
    """The card's text for a trained model.

    Args:
        run: the run config (see ``Trainer.run_config``).
        steps_done: the steps the weights were trained for.
        best_val_loss: the best validation loss, None when not measured.
        stopped_early: whether early stopping ended the run.
        sampling: the sampling as the card names it (``training.samplers.sampling_label``).
        note: a sentence added after the description (e.g. where exported weights came from).
    """
    langs = list(dict.fromkeys(lang for s in run["sources"] for lang in s["langs"]))
    best = None if best_val_loss is None or math.isinf(best_val_loss) else round(float(best_val_loss), 6)
    train, enc = run["train"], run["encoder"]
    front = _front_matter(
        run["base_model"], "hybrid-batches", language=langs, datasets=[s["name"] for s in run["sources"]],
        made={
            "sampling": run["sampling"], "alpha": run["alpha"], "steps": train["steps"], "steps_done": steps_done,
            "stopped_early": stopped_early, "batch_size": run["batch_size"], "seed": run["seed"],
            "temperature": train["temperature"], "lr": train["lr"], "amp": train["amp"],
            "freeze_embeddings": train["freeze_embeddings"],
            "query_max_length": enc["query_max_length"], "doc_max_length": enc["doc_max_length"],
            "best_val_loss": best,
        })
    sources = "\n".join(f"| {s['name']} | {s['items']} | {', '.join(s['langs'])} | `{s['sha1'][:12]}` |"
                        for s in run["sources"])
    return f"""{front}
# Dual encoder trained with {sampling} batches

Fine-tuned from `{run['base_model']}` with pyterrier-hybrid (hybrid batches,
arXiv 2408.10536): {steps_done} of {train['steps']} steps{' (early stopping fired)' if stopped_early else ''},
batch size {run['batch_size']}, seed {run['seed']}, InfoNCE temperature {train['temperature']}, AdamW lr {train['lr']},
precision {train['amp'] or 'fp32'}{', word embeddings frozen' if train['freeze_embeddings'] else ''},
query / passage length {enc['query_max_length']} / {enc['doc_max_length']} tokens,
prefixes {enc['query_prefix']!r} / {enc['doc_prefix']!r}. Best validation loss: {best if best is not None else 'not measured'}.
{note + chr(10) if note else ''}
| training source | items | languages | sha1 |
|---|---|---|---|
{sources}

The full configuration is in `{TRAINING_CONFIG}`. {_LOAD}
"""


def render_merge_card(a: str, b: str, weight: float) -> str:
    """The card's text for the merge ``weight * a + (1 - weight) * b``.

    Args:
        a: model A's name or directory.
        b: model B's.
        weight: λ, A's share.
    """
    front = _front_matter([a, b], "merge", made={"merge": {"a": a, "b": b, "weight": weight}})
    return f"""{front}
# Merged dual encoder: {weight:g} × `{a}` + {1 - weight:g} × `{b}`

Every parameter is `{weight:g} * A + {1 - weight:g} * B` (pyterrier-hybrid `merge`), with A = `{a}` and
B = `{b}`. Tokenizer, pooling, prefixes and length limits are A's. `{MERGE_CONFIG}` names both parents (and,
for models pyterrier-hybrid trained, their start, sampling and seed). {_LOAD}
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
