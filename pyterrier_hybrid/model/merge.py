"""Weight merging: θ = λ·θ_A + (1 − λ)·θ_B for two encoders fine-tuned from the same start.

Averaging a fine-tune with its own start keeps what the start could do (WiSE-FT; LM-Cocktail), and averaging
models trained on different batch mixes can keep each one's strengths (arXiv 2507.08480). The merged directory
loads like any model we write: :class:`~pyterrier_hybrid.BiEncoder`, sentence-transformers, ``--update-card``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict

import torch

from ..atomic import refuse_existing
from .model_card import render_merge_card
from .model_dir import MERGE_CONFIG, TRAINING_CONFIG, resolve_model, resolve_settings, write_model_dir

#: config.json keys that say where or how a checkpoint was saved, not what the network is
_NOT_ARCHITECTURE = {"_name_or_path", "transformers_version", "torch_dtype", "dtype"}
#: the settings both parents must share: a vector means something else under another pooling or prefix
_SHARED_SETTINGS = ("pooling", "normalize", "query_prefix", "doc_prefix")


def merge_models(a: str | Path, b: str | Path, weight: float, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write the parameter-wise interpolation ``weight * A + (1 - weight) * B`` to ``out``; return ``out``.

    A and B must have the same architecture (config.json apart from where it was saved), the same tokenizer and the
    same pooling, normalisation and prefixes; the merged model takes A's tokenizer and A's length limits.
    ``out`` gets ``merge_config.json`` and a model card naming both parents and λ. It is written by
    :func:`~pyterrier_hybrid.model.model_dir.write_model_dir`, so a crash leaves nothing that loads.

    Args:
        a: model directory (or Hugging Face name) A; ``weight`` is its share.
        b: model directory (or name) B.
        weight: λ in [0, 1]; 1 gives A's weights, 0 gives B's.
        out: the merged model's directory.
        overwrite: replace an existing ``out``.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"--weight {weight} is outside [0, 1]; λ is A's share of every parameter")
    out = Path(out)
    refuse_existing(out, overwrite)
    a, b = resolve_model(a), resolve_model(b)
    configs = [AutoConfig.from_pretrained(m).to_dict() for m in (a, b)]
    keys = (set(configs[0]) | set(configs[1])) - _NOT_ARCHITECTURE
    differ = sorted(k for k in keys if configs[0].get(k) != configs[1].get(k))
    if differ:
        what = ", ".join(f"{k}: {configs[0].get(k)!r} vs {configs[1].get(k)!r}" for k in differ)
        raise ValueError(f"{a} and {b} have different architectures ({what}); only models fine-tuned from the same "
                         "start can be merged")
    toks = [AutoTokenizer.from_pretrained(m) for m in (a, b)]
    if _tokenizer_identity(toks[0]) != _tokenizer_identity(toks[1]):
        raise ValueError(f"{a} and {b} have different tokenizers (class, vocabulary or special tokens); the same "
                         "token id would mean another token in each, so they cannot be merged")
    settings = [resolve_settings(m) for m in (a, b)]
    clash = [f"{k}: {getattr(settings[0], k)!r} vs {getattr(settings[1], k)!r}" for k in _SHARED_SETTINGS
             if getattr(settings[0], k) != getattr(settings[1], k)]
    if clash:
        raise ValueError(f"{a} and {b} encode differently ({'; '.join(clash)}); merge models that share their "
                         "pooling, normalisation and prefixes")
    model = AutoModel.from_pretrained(a, dtype=torch.float32)
    other = AutoModel.from_pretrained(b, dtype=torch.float32).state_dict()
    model.load_state_dict(_interpolate(model.state_dict(), other, weight, a, b))
    config = {"formula": "weight * A + (1 - weight) * B, every parameter",
              "parents": [_parent(a, weight), _parent(b, 1.0 - weight)], "weight": weight, "settings_from": a}
    return write_model_dir(out, model, toks[0], settings[0], provenance=(MERGE_CONFIG, config),
                           card=render_merge_card(a, b, weight))


def _tokenizer_identity(tok) -> tuple:
    return type(tok).__name__, tok.get_vocab(), tuple(tok.all_special_tokens)


def _interpolate(sa: Dict[str, torch.Tensor], sb: Dict[str, torch.Tensor], weight: float, a: str,
                 b: str) -> Dict[str, torch.Tensor]:
    if sa.keys() != sb.keys():
        missing = sorted(set(sa) ^ set(sb))[:5]
        raise ValueError(f"{a} and {b} hold different parameters (e.g. {missing}); they cannot be merged")
    out = {}
    for name, x in sa.items():
        y = sb[name]
        if x.shape != y.shape:
            raise ValueError(f"{name} has shape {tuple(x.shape)} in {a} but {tuple(y.shape)} in {b}")
        if x.is_floating_point():
            out[name] = weight * x + (1.0 - weight) * y
        elif torch.equal(x, y):
            out[name] = x  # integer buffers (position ids) are not learned: they must agree
        else:
            raise ValueError(f"{name} is an integer tensor that differs between {a} and {b}; they cannot be merged")
    return out


def _parent(model: str | Path, weight: float) -> dict:
    """A parent's name, share and, when we trained it, its start and its sampling."""
    run = Path(model) / TRAINING_CONFIG
    info = {"model": str(model), "weight": weight}
    if run.is_file():
        config = json.loads(run.read_text(encoding="utf-8"))
        info.update(start=config.get("base_model"), sampling=config.get("sampling"), alpha=config.get("alpha"),
                    seed=config.get("seed"))
    return info

