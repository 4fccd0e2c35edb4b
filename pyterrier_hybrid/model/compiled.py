"""The compiled-graph backends of :class:`~pyterrier_hybrid.model.encoder.BiEncoder`: the transformer body exported to
ONNX once per model (torch's exporter) and compiled by OpenVINO for the CPU.

* ``openvino``: the graph in fp32, run at OpenVINO's inference precision: fp32, or bf16 where the CPU has it natively.
* ``openvino-int8``: NNCF's post-training static int8 of the same graph, calibrated on multilingual queries and passages
  (MLQA-R's, by default: the training languages, never an English-only set).

ONNX Runtime (fp32 and dynamic int8) was measured on our graph too and dropped: OpenVINO was faster in fp32 and in
int8, with int8 vectors closer to fp32 (docs/benchmarks.md).

The graph ends at the hidden states; prefixes, truncation, pooling and normalisation stay in the encoder, so every
backend shares them. Exports are cached by a hash of the weights and config (and, for int8, of the calibration texts),
beside the model in ``<model>/compiled/<key>/`` when that directory is writable, else in
``$PYTERRIER_HYBRID_CACHE/compiled/<key>/`` (default ``~/.cache/pyterrier_hybrid``): a model changed after its export
gets a new key, so is exported again, never served stale.

Threads: OpenVINO's one pool is sized to the cores this process may use, with one stream. On this path torch runs no
operator (tokens come as numpy, pooling is numpy), so torch's pool sleeps while OpenVINO's runs; torch's thread setting
is left as it was for the caller's other work.

Part of the model stage: imports nothing from the index, training or evaluation packages.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from transformers import PreTrainedModel

from .model_dir import weights_hash

logger = logging.getLogger("pyterrier_hybrid")

BACKENDS = ("torch", "openvino", "openvino-int8")
#: bumped when the export (opset, inputs, quantisation settings) changes, so old caches are not reused
EXPORT_VERSION = "2"
OPSET = 17
TESTED_TRANSFORMERS = "5.25.0"
FP32_FILE = "model.onnx"
INSTALL = "pip install pyterrier-hybrid[fast]"
#: OpenVINO's names of the inference precisions, by our dtype names
PRECISION = {"float32": "f32", "bfloat16": "bf16"}
#: calibration: this many questions and as many passages per MLQA-R language (7 languages: about 300 texts)
CALIBRATION_PER_LANG = 22
CALIBRATION_BATCH = 16


def require_openvino():
    """Import openvino, or say how to install it."""
    try:
        import openvino
    except ImportError as e:
        raise ImportError(f"backend='openvino' and 'openvino-int8' need openvino, nncf and onnx: {INSTALL}") from e
    return openvino


def have_openvino() -> bool:
    """Whether the compiled backends can run here (``backend="auto"`` uses them when they can)."""
    try:
        require_openvino()
    except ImportError:
        return False
    return True


def model_key(model: PreTrainedModel) -> str:
    """A sha1 of the weights (every tensor's name, shape, dtype and bytes), the config and :data:`EXPORT_VERSION`."""
    return weights_hash(model, f"{EXPORT_VERSION};{torch.__version__};{model.config.to_json_string()}")[:16]


def cache_dir(model_name: str, key: str) -> Path:
    """Where a model's exports live: ``<model>/compiled/<key>`` when the model is a writable directory, else
    ``$PYTERRIER_HYBRID_CACHE/compiled/<key>`` (default ``~/.cache/pyterrier_hybrid``)."""
    root = Path(model_name)
    if root.is_dir() and os.access(root, os.W_OK):
        return root / "compiled" / key
    base = Path(os.environ.get("PYTERRIER_HYBRID_CACHE") or Path.home() / ".cache" / "pyterrier_hybrid")
    return base / "compiled" / key


def default_calibration() -> Dict[str, List[str]]:
    """Queries and passages of MLQA-R's 7 languages (:data:`CALIBRATION_PER_LANG` of each per language, in file
    order), the int8 calibration set when none is given."""
    from ir_datasets_ext import MLQA_R

    found: Dict[str, List[str]] = {"query": [], "doc": []}
    try:
        for lang in MLQA_R.langs:
            parsed = MLQA_R.load(lang)
            found["query"] += [q.text for q in parsed.queries[:CALIBRATION_PER_LANG]]
            found["doc"] += [d.text for d in parsed.docs[:CALIBRATION_PER_LANG]]
    except Exception as e:
        raise ValueError(f"backend='openvino-int8' calibrates on MLQA-R by default, which could not be read ({e}); "
                         "set PYTERRIER_HYBRID_DATA to the folder holding mlqa-r, or pass calibration={'query': [...], "
                         "'doc': [...]} with a few hundred texts in the languages you encode") from e
    return found


def calibration_key(texts: Dict[str, Sequence[str]], fp32: Sequence[str], settings: object) -> str:
    """A sha1 of the calibration texts, the encoder settings they are tokenised with (prefixes, limits), the nodes
    left in fp32 and NNCF's version: the int8 graph's cache name."""
    import nncf

    h = hashlib.sha1(f"{nncf.__version__};{sorted(fp32)};{settings}".encode())
    for kind in ("query", "doc"):
        for t in texts.get(kind, ()):
            h.update(f"{kind}\0{t}\0".encode())
    return h.hexdigest()[:12]


@dataclass(frozen=True)
class Calibration:
    """What an int8 graph is calibrated on.

    Args:
        key: its cache name (:func:`calibration_key`).
        batches: returns the tokenised calibration batches; called only when the int8 graph is not cached yet.
        fp32: regular expressions of graph node names left in fp32 (NNCF's ignored scope).
    """
    key: str
    batches: Callable[[], List[Dict[str, np.ndarray]]]
    fp32: Sequence[str] = ()


class _Body(torch.nn.Module):
    """The transformer up to its last hidden states, with the tokenizer's inputs as named arguments."""

    def __init__(self, model: PreTrainedModel, names: Sequence[str]):
        super().__init__()
        self.model, self.names = model, list(names)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, inputs))).last_hidden_state


def _export(model: PreTrainedModel, input_names: Sequence[str], path: Path) -> None:
    # a padded batch, so that the traced attention takes the masked path
    ids = torch.full((2, 8), 5, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 4:] = 0
    dummy = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    axes = {name: {0: "batch", 1: "tokens"} for name in [*input_names, "hidden"]}
    # the tracer's warnings are about branches on shapes that an encoder takes the same way for every batch
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(_Body(model.float().cpu().eval(), input_names), tuple(dummy[n] for n in input_names),
                              str(path), input_names=list(input_names), output_names=["hidden"], dynamic_axes=axes,
                              opset_version=OPSET, dynamo=False)  # the dynamo exporter needs onnxscript
    except Exception as e:
        import transformers

        raise RuntimeError(f"exporting the model to ONNX failed under transformers {transformers.__version__} and "
                           f"torch {torch.__version__} ({type(e).__name__}: {e}); the export is tested with "
                           f"transformers {TESTED_TRANSFORMERS} (some 5.x releases build attention masks the tracer "
                           "cannot follow): install that, or use backend='torch'") from e


def _quantize(fp32: Path, out: Path, batches: List[Dict[str, np.ndarray]], keep: Sequence[str]) -> None:
    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(fp32))
    scope = nncf.IgnoredScope(patterns=list(keep), validate=False) if keep else None
    quantized = nncf.quantize(model, nncf.Dataset(batches), model_type=nncf.ModelType.TRANSFORMER,
                              subset_size=len(batches), ignored_scope=scope)
    ov.save_model(quantized, str(out), compress_to_fp16=False)


def _publish(work: Path, target: Path) -> None:
    """Move finished files into ``target``, the ``.xml`` of an OpenVINO model after its ``.bin``: a reader who finds
    the file it looks for finds it whole."""
    target.mkdir(parents=True, exist_ok=True)
    for f in sorted(work.iterdir(), key=lambda p: p.suffix in (".xml", ".onnx")):
        if not (target / f.name).exists():
            os.replace(f, target / f.name)


def ensure_exported(model: PreTrainedModel, model_name: str, input_names: Sequence[str],
                    calibration: Optional[Calibration] = None) -> Path:
    """The path of the model's graph, exported (fp32 ONNX) and quantised (int8 OpenVINO IR) on first use.

    Args:
        model: the loaded torch model (its weights are what is exported, and what the cache key hashes).
        model_name: its directory or name, for the cache location.
        input_names: the tokenizer's model inputs (``input_ids``, ``attention_mask``, maybe ``token_type_ids``).
        calibration: for the int8 graph, what it is calibrated on; None: the fp32 graph.
    """
    require_openvino()
    target = cache_dir(model_name, model_key(model))
    path = target / (f"model-int8-{calibration.key}.xml" if calibration else FP32_FILE)
    if path.is_file():
        return path
    target.parent.mkdir(parents=True, exist_ok=True)
    # build beside the target, then rename: a reader never sees half a graph
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        fp32 = target / FP32_FILE
        if not fp32.is_file():
            logger.info("exporting %s to ONNX in %s", model_name, target)
            fp32 = work / FP32_FILE
            _export(model, input_names, fp32)
        if calibration:
            logger.info("quantising %s to int8 (NNCF, calibration %s)", model_name, calibration.key)
            _quantize(fp32, work / path.name, calibration.batches(), calibration.fp32)
        _publish(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return path


def cpu_threads() -> int:
    """The cores this process may run on (its affinity mask, which containers and ``taskset`` narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class CompiledBody:
    """An OpenVINO compiled model over an exported body: tokenizer outputs (numpy) in, hidden states out.

    Args:
        path: the ``.onnx`` or ``.xml`` file.
        dtype: the inference precision, ``"float32"`` or ``"bfloat16"`` (:data:`PRECISION`).
        threads: OpenVINO's threads; default :func:`cpu_threads`.
    """

    def __init__(self, path: Path, dtype: str = "float32", threads: Optional[int] = None):
        ov = require_openvino()
        self.path, self.threads, self.precision = Path(path), threads or cpu_threads(), PRECISION[dtype]
        config = {"INFERENCE_NUM_THREADS": self.threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_PRECISION_HINT": self.precision}
        self.compiled = ov.Core().compile_model(str(path), "CPU", config)
        self.input_names = [i.get_any_name() for i in self.compiled.inputs]

    def __call__(self, toks: Dict[str, np.ndarray]) -> np.ndarray:
        """Hidden states ``[batch, tokens, dim]`` for a tokenised batch."""
        return self.compiled({n: toks[n].astype(np.int64) for n in self.input_names})[0]


def pool_numpy(hidden: np.ndarray, mask: np.ndarray, pooling: str, normalize: bool) -> np.ndarray:
    """:func:`~pyterrier_hybrid.model.encoder.pool` and normalisation in numpy: single-threaded, so no torch thread
    pool wakes between two runs of OpenVINO's."""
    if pooling == "cls":
        vecs = hidden[:, 0]
    else:
        m = mask[..., None].astype(hidden.dtype)
        vecs = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    if normalize:  # as torch.nn.functional.normalize
        vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=-1, keepdims=True), 1e-12)
    return vecs.astype(np.float32, copy=False)
