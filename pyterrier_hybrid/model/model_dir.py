"""Model directories: where a model is found, its file names, its encoder settings, and the one writer.

Reading and writing the same files sentence-transformers uses (``modules.json``,
``1_Pooling/config.json``, ``config_sentence_transformers.json``, ``sentence_bert_config.json``)
means our trained models load in sentence-transformers, and theirs load in :class:`BiEncoder`.
Every model directory pyterrier-hybrid writes (trained, merged, exported from a checkpoint) comes from
:func:`write_model_dir`.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Literal, Optional, Tuple

from ..atomic import atomic_directory

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger("pyterrier_hybrid")

#: the model card (Hugging Face's convention); its metadata marks the ones pyterrier-hybrid wrote
CARD = "README.md"
#: how a trained model was made (the run config), beside its weights
TRAINING_CONFIG = "training_config.json"
#: how a merged model was made (its parents and λ)
MERGE_CONFIG = "merge_config.json"
#: a training run's resume state, inside its output directory
CHECKPOINT = "checkpoint"

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


#: Documented prefixes of model families that state none in their files: (name pattern, query, passage).
KNOWN_PREFIXES: Tuple[Tuple[str, str, str], ...] = (
    (r"(^|/)(multilingual-)?e5-(small|base|large)(-v2)?$", "query: ", "passage: "),  # intfloat E5, not -instruct
    (r"(^|/)nomic-embed-text-v1(\.5)?$", "search_query: ", "search_document: "),
)


def resolve_model(model: str | Path) -> str:
    """The model to load, or a clear error for a local path that holds none: the one check of every command and
    class that takes a model, made before transformers or huggingface_hub read a missing path as a Hub name.

    Args:
        model: a local model directory or a Hugging Face name.

    Returns:
        the name to load: ``model`` as given, with ``~`` expanded.
    """
    root = Path(model).expanduser()
    if root.is_dir() and not (root / "config.json").is_file():
        raise FileNotFoundError(f"{root} has no config.json, so it is not a model directory; give one written by "
                                "save_pretrained (or pyterrier-hybrid train / merge / export-checkpoint)")
    local = isinstance(model, Path) or str(model).startswith(("/", ".", "~")) or str(model).count("/") > 1
    if local and not root.exists():
        raise FileNotFoundError(f"no model directory {model}; give a local model directory (for example one made by "
                                "python ../shared/tools/make_offline_me5.py DIR) or a Hugging Face name such as "
                                "intfloat/multilingual-e5-small")
    return str(root) if str(model).startswith("~") else str(model)


def _file_finder(model: str | Path) -> Callable[[str], Optional[Path]]:
    """Finds a model's files: in its directory, or through huggingface_hub (its cache, when offline)."""
    root = Path(resolve_model(model))
    if root.is_dir():
        return lambda name: root / name if (root / name).is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    def find(name: str) -> Optional[Path]:
        try:
            return Path(hf_hub_download(str(model), name))
        except (EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError):
            return None  # not in the repository, or offline and not cached: the file states nothing

    return find


def read_settings(model: str | Path) -> Dict[str, Any]:
    """The :class:`EncoderSettings` fields a model specifies in its sentence-transformers files.

    Args:
        model: a local directory, or a Hugging Face name (looked up in the Hub, or its local cache offline).
    """
    find = _file_finder(model)

    def read_json(name: str) -> Optional[Any]:
        path = find(name)
        return json.loads(path.read_text(encoding="utf-8")) if path is not None else None

    found: Dict[str, Any] = {}
    modules = read_json("modules.json") or []
    for module in modules:
        kind = module.get("type", "")
        if kind.endswith("models.Pooling"):
            pool = read_json(f"{module.get('path', '')}/config.json".lstrip("/")) or {}
            if pool.get("pooling_mode_cls_token"):
                found["pooling"] = "cls"
            elif pool.get("pooling_mode_mean_tokens"):
                found["pooling"] = "mean"
            else:
                modes = [k for k, v in pool.items() if k.startswith("pooling_mode") and v]
                raise ValueError(f"{model} uses pooling {modes}; BiEncoder supports mean and cls only")
    if modules:
        found["normalize"] = any(m.get("type", "").endswith("models.Normalize") for m in modules)
    prompts = (read_json("config_sentence_transformers.json") or {}).get("prompts") or {}
    if "query" in prompts:
        found["query_prefix"] = prompts["query"]
    for key in ("passage", "document", "doc"):
        if key in prompts:
            found["doc_prefix"] = prompts[key]
            break
    bert = read_json("sentence_bert_config.json") or {}
    if bert.get("max_seq_length"):
        found["doc_max_length"] = int(bert["max_seq_length"])
    hybrid = read_json("pyterrier_hybrid.json") or {}
    found.update({k: v for k, v in hybrid.items() if k in EncoderSettings.__dataclass_fields__})
    return found


def family_prefixes(name: str) -> Optional[Tuple[str, str]]:
    """The documented (query, passage) prefixes of a known model family, by its Hugging Face name."""
    for pattern, query, doc in KNOWN_PREFIXES:
        if re.search(pattern, str(name).rstrip("/"), flags=re.IGNORECASE):
            return query, doc
    return None


def resolve_settings(model: str | Path, **given: Any) -> EncoderSettings:
    """The settings to encode with, by one rule used by :class:`BiEncoder`, the trainer and the CLI.

    In order: what the caller gives (``None`` = not given); what the model's files state; for prefixes
    the model states nothing about, its family's documented prefixes (:data:`KNOWN_PREFIXES`); else none.
    A model that states no prefixes never silently gets another family's: the choice is logged.

    Args:
        model: a local directory or a Hugging Face name.
        given: :class:`EncoderSettings` fields set by the caller.
    """
    unknown = set(given) - {f.name for f in fields(EncoderSettings)}
    if unknown:
        raise TypeError(f"unknown encoder settings {sorted(unknown)}")
    found = read_settings(model)
    given = {k: v for k, v in given.items() if v is not None}
    if not {"query_prefix", "doc_prefix"} & (set(found) | set(given)):
        known = family_prefixes(model)
        if known:
            found["query_prefix"], found["doc_prefix"] = known
            logger.info("%s states no prompts; using its family's documented prefixes %r / %r", model, *known)
        else:
            logger.warning("%s states no prompts and is no known family; encoding without query/passage "
                           "prefixes (pass query_prefix= / doc_prefix= to set them)", model)
    return replace(EncoderSettings(**found), **given)


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
            # "document" too: sentence-transformers' encode_document() prefers it, and adds an empty one if absent
            "prompts": {"query": settings.query_prefix, "document": settings.doc_prefix, "passage": settings.doc_prefix},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine" if settings.normalize else "dot",
        },
        "sentence_bert_config.json": {"max_seq_length": settings.doc_max_length, "do_lower_case": False},
        "pyterrier_hybrid.json": asdict(settings),
    }
    for name, content in files.items():
        (root / name).write_text(json.dumps(content, indent=2, ensure_ascii=False), encoding="utf-8")


def write_model_dir(path: str | Path, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                    settings: EncoderSettings, *, provenance: Tuple[str, dict], card: str,
                    within_run: bool = False) -> Path:
    """Write a model directory that :class:`BiEncoder` and sentence-transformers load: weights, tokenizer,
    sentence-transformers files, settings, provenance and card. The one writer of trained, merged and exported models.

    A crash never leaves a directory that loads as a half-written model: the files are built in a temporary folder
    first. By default that folder is renamed to ``path``, replacing what was there. ``within_run`` keeps the
    directory's other files (a training run's log and checkpoint) and moves the model's files in, ``config.json``
    (what makes it load) removed first and moved last.

    Args:
        path: the model directory.
        model: the weights (saved with ``save_pretrained``).
        tokenizer: its tokenizer.
        settings: how it encodes (pooling, normalisation, prefixes, length limits).
        provenance: (file name, content) saying how it was made, e.g. ``(TRAINING_CONFIG, run_config)``.
        card: the model card's text (see :mod:`~pyterrier_hybrid.model.model_card`).
        within_run: add the model to an existing run directory instead of replacing the directory.
    """
    path = Path(path)
    name, content = provenance

    def build(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_settings(tmp, settings, dim=model.config.hidden_size)
        (tmp / name).write_text(json.dumps(content, indent=2, ensure_ascii=False), encoding="utf-8")
        (tmp / CARD).write_text(card, encoding="utf-8")

    if not within_run:
        atomic_directory(path, build)
        return path
    tmp = path / ".model.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    build(tmp)
    (path / "config.json").unlink(missing_ok=True)
    for entry in sorted(tmp.iterdir(), key=lambda p: p.name == "config.json"):
        target = path / entry.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(entry, target)
    tmp.rmdir()
    return path


def weights_hash(model: "torch.nn.Module", salt: str = "") -> str:
    """A sha1 of ``salt`` and every tensor of the model's state dict, by name, shape, dtype and bytes (about a second
    per GB): the same weights give the same hash wherever their directory is.

    Args:
        model: the loaded model.
        salt: text hashed first (e.g. an export format's version).
    """
    import hashlib

    import torch

    h = hashlib.sha1(salt.encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().reshape(-1).contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(tensor.shape)};".encode())
        h.update(t.view(torch.uint8).cpu().numpy().tobytes())
    return h.hexdigest()
