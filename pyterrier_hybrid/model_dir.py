"""Encoder settings stored beside a Hugging Face checkpoint, in sentence-transformers' layout.

Reading and writing the same files sentence-transformers uses (``modules.json``,
``1_Pooling/config.json``, ``config_sentence_transformers.json``, ``sentence_bert_config.json``)
means our trained models load in sentence-transformers, and theirs load in :class:`BiEncoder`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Literal, Optional

Pooling = Literal["mean", "cls"]
POOLINGS = ("mean", "cls")


@dataclass(frozen=True)
class EncoderSettings:
    """How a checkpoint turns text into a vector.

    Args:
        pooling: ``"mean"`` over non-padding tokens, or ``"cls"`` (the first token).
        normalize: L2-normalise vectors, so inner product is cosine similarity.
        query_prefix: text put before every query, e.g. ``"query: "`` for E5.
        doc_prefix: text put before every passage, e.g. ``"passage: "`` for E5.
        query_max_length: queries are truncated to this many tokens.
        doc_max_length: passages are truncated to this many tokens.
    """
    pooling: Pooling = "mean"
    normalize: bool = True
    query_prefix: str = ""
    doc_prefix: str = ""
    query_max_length: int = 64
    doc_max_length: int = 256

    def __post_init__(self):
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling={self.pooling!r} is not supported; use one of {POOLINGS}")
        if self.query_max_length < 1 or self.doc_max_length < 1:
            raise ValueError("query_max_length and doc_max_length must be positive")


def _read_json(path: Path) -> Optional[Dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def read_settings(model_dir: str | Path) -> Dict[str, Any]:
    """The :class:`EncoderSettings` fields a model directory specifies (sentence-transformers files)."""
    root = Path(model_dir)
    found: Dict[str, Any] = {}
    modules = _read_json(root / "modules.json") or []
    for module in modules:
        kind = module.get("type", "")
        if kind.endswith("models.Pooling"):
            pool = _read_json(root / module.get("path", "") / "config.json") or {}
            if pool.get("pooling_mode_cls_token"):
                found["pooling"] = "cls"
            elif pool.get("pooling_mode_mean_tokens"):
                found["pooling"] = "mean"
            else:
                modes = [k for k, v in pool.items() if k.startswith("pooling_mode") and v]
                raise ValueError(f"{root} uses pooling {modes}; BiEncoder supports mean and cls only")
    if modules:
        found["normalize"] = any(m.get("type", "").endswith("models.Normalize") for m in modules)
    prompts = (_read_json(root / "config_sentence_transformers.json") or {}).get("prompts") or {}
    if "query" in prompts:
        found["query_prefix"] = prompts["query"]
    for key in ("passage", "document", "doc"):
        if key in prompts:
            found["doc_prefix"] = prompts[key]
            break
    bert = _read_json(root / "sentence_bert_config.json") or {}
    if bert.get("max_seq_length"):
        found["doc_max_length"] = int(bert["max_seq_length"])
    hybrid = _read_json(root / "pyterrier_hybrid.json") or {}
    found.update({k: v for k, v in hybrid.items() if k in EncoderSettings.__dataclass_fields__})
    return found


def write_settings(model_dir: str | Path, settings: EncoderSettings, dim: int) -> None:
    """Write sentence-transformers metadata (plus our exact settings) into a saved checkpoint."""
    root = Path(model_dir)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if settings.normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (root / "2_Normalize").mkdir(exist_ok=True)
    (root / "1_Pooling").mkdir(exist_ok=True)
    files = {
        "modules.json": modules,
        "1_Pooling/config.json": {
            "word_embedding_dimension": dim,
            "pooling_mode_cls_token": settings.pooling == "cls",
            "pooling_mode_mean_tokens": settings.pooling == "mean",
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
        "config_sentence_transformers.json": {
            "prompts": {"query": settings.query_prefix, "passage": settings.doc_prefix},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine" if settings.normalize else "dot",
        },
        "sentence_bert_config.json": {"max_seq_length": settings.doc_max_length, "do_lower_case": False},
        "pyterrier_hybrid.json": asdict(settings),
    }
    for name, content in files.items():
        (root / name).write_text(json.dumps(content, indent=2, ensure_ascii=False), encoding="utf-8")
