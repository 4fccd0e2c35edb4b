"""The compiled-graph backends of :class:`~pyterrier_hybrid.model.encoder.BiEncoder`: the transformer body exported to
ONNX once per model (torch's exporter), run by ONNX Runtime on the CPU, in fp32 or dynamic int8 (onnxruntime's
quantiser).

The graph ends at the hidden states; prefixes, truncation, pooling and normalisation stay in the encoder, so every
backend shares them. Exports are cached by a hash of the weights and config, beside the model in
``<model>/onnx/<key>/`` when that directory is writable, else in ``$PYTERRIER_HYBRID_CACHE/onnx/<key>/`` (default
``~/.cache/pyterrier_hybrid``): a model changed after its export gets a new key, so is exported again, never served
stale.

Threads: the session's one intra-op pool is sized to the cores this process may use, and inter-op parallelism is off.
On this path torch runs no operator (tokens come as numpy, pooling is numpy), so torch's own pool sleeps while the
session runs; torch's thread setting is left as it was for the caller's other work.

Part of the model stage: imports nothing from the index, training or evaluation packages.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from transformers import PreTrainedModel

from .model_dir import weights_hash

logger = logging.getLogger("pyterrier_hybrid")

BACKENDS = ("torch", "onnx", "onnx-int8")
#: bumped when the export (opset, inputs, quantisation settings) changes, so old caches are not reused
EXPORT_VERSION = "1"
OPSET = 17
FP32_FILE, INT8_FILE = "model.onnx", "model-int8.onnx"
INSTALL = "pip install pyterrier-hybrid[fast]"


def require_onnxruntime():
    """Import onnxruntime, or say how to install it."""
    try:
        import onnxruntime
    except ImportError as e:
        raise ImportError(f"backend='onnx' and 'onnx-int8' need onnxruntime and onnx: {INSTALL}") from e
    return onnxruntime


def model_key(model: PreTrainedModel) -> str:
    """A sha1 of the weights (every tensor's name, shape, dtype and bytes), the config and :data:`EXPORT_VERSION`."""
    return weights_hash(model, f"{EXPORT_VERSION};{torch.__version__};{model.config.to_json_string()}")[:16]


def cache_dir(model_name: str, key: str) -> Path:
    """Where a model's exports live: ``<model>/onnx/<key>`` when the model is a writable directory, else
    ``$PYTERRIER_HYBRID_CACHE/onnx/<key>`` (default ``~/.cache/pyterrier_hybrid``)."""
    root = Path(model_name)
    if root.is_dir() and os.access(root, os.W_OK):
        return root / "onnx" / key
    base = Path(os.environ.get("PYTERRIER_HYBRID_CACHE") or Path.home() / ".cache" / "pyterrier_hybrid")
    return base / "onnx" / key


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
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Body(model.float().cpu().eval(), input_names), tuple(dummy[n] for n in input_names),
                          str(path), input_names=list(input_names), output_names=["hidden"], dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False)  # the dynamo exporter needs onnxscript


def _quantize(fp32: Path, int8: Path, num_layers: int) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    import onnx

    # only the weight matrices, per output channel; the embeddings (Gather) and the last layer's feed-forward stay
    # fp32, as the layers closest to the pooled vector
    last = num_layers - 1
    keep = [n.name for n in onnx.load(str(fp32), load_external_data=False).graph.node
            if n.op_type == "MatMul" and (f"layer.{last}/intermediate/" in n.name or f"layer.{last}/output/" in n.name)]
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"], nodes_to_exclude=keep)


def ensure_exported(model: PreTrainedModel, model_name: str, input_names: Sequence[str], int8: bool) -> Path:
    """The path of the model's ONNX graph (fp32, or int8 when ``int8``), exported and quantised on first use.

    Args:
        model: the loaded torch model (its weights are what is exported, and what the cache key hashes).
        model_name: its directory or name, for the cache location.
        input_names: the tokenizer's model inputs (``input_ids``, ``attention_mask``, maybe ``token_type_ids``).
        int8: the dynamically quantised variant.
    """
    require_onnxruntime()
    target = cache_dir(model_name, model_key(model))
    path = target / (INT8_FILE if int8 else FP32_FILE)
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
        if int8:
            _quantize(fp32, work / INT8_FILE, model.config.num_hidden_layers)
        target.mkdir(exist_ok=True)
        for f in work.iterdir():
            if not (target / f.name).exists():
                os.replace(f, target / f.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return path


def cpu_threads() -> int:
    """The cores this process may run on (its affinity mask, which containers and ``taskset`` narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class OnnxBody:
    """An ONNX Runtime session over an exported body: tokenizer outputs (numpy) in, hidden states out.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads; default :func:`cpu_threads`.
    """

    def __init__(self, path: Path, threads: Optional[int] = None):
        ort = require_onnxruntime()
        opts = ort.SessionOptions()
        # one pool, sized to our cores; inter-op parallelism would be a second pool
        opts.intra_op_num_threads = threads or cpu_threads()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = path
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, toks: Dict[str, np.ndarray]) -> np.ndarray:
        """Hidden states ``[batch, tokens, dim]`` for a tokenised batch."""
        return self.session.run(None, {n: toks[n].astype(np.int64) for n in self.input_names})[0]


def pool_numpy(hidden: np.ndarray, mask: np.ndarray, pooling: str, normalize: bool) -> np.ndarray:
    """:func:`~pyterrier_hybrid.model.encoder.pool` and normalisation in numpy: single-threaded, so no torch thread
    pool wakes between two runs of the session's."""
    if pooling == "cls":
        vecs = hidden[:, 0]
    else:
        m = mask[..., None].astype(hidden.dtype)
        vecs = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    if normalize:  # as torch.nn.functional.normalize
        vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=-1, keepdims=True), 1e-12)
    return vecs.astype(np.float32, copy=False)
