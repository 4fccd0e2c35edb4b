"""BiEncoder: a shared-weight dual encoder over any Hugging Face encoder, as PyTerrier transformers."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Dict, List, Literal, Optional, Sequence, Union, get_args

import numpy as np
import pandas as pd
import pyterrier as pt
import torch
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from ..checks import require_columns, require_texts
from .model_dir import CARD, resolve_model, resolve_settings
from .compiled import (BACKENDS, CALIBRATION_BATCH, Calibration, CompiledBody, calibration_key, default_calibration, ensure_exported,
                       have_openvino, pool_numpy)
from .precision import autocast, resolve_dtype

logger = logging.getLogger("pyterrier_hybrid")
#: graph nodes (regular expressions) the int8 backend leaves in fp32: none. Keeping each layer's feed-forward output
#: projection in fp32 brought the full protocol closer to fp32 but not within the bounds, and made the graph slower
#: than bf16 (docs/benchmarks.md), so the offered int8 graph is NNCF's whole transformer preset
INT8_FP32_NODES: Sequence[str] = ()

DocText = Literal["sentence", "sentence+context"]
Kind = Literal["query", "doc"]
#: what a passage's vector encodes: its sentence, or its sentence with its paragraph (the CLI's --doc-text choices)
DOC_TEXTS = get_args(DocText)


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool token states ``[batch, tokens, dim]`` into ``[batch, dim]`` (mean over unmasked tokens, or CLS)."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def default_device() -> str:
    """This process's device: its local rank's GPU under torchrun (or GPU 0), else the CPU."""
    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"


class BiEncoder:
    """A dual encoder with shared weights for queries and passages; scores are inner products.

    Settings left as ``None`` come from the model's sentence-transformers files (pooling, normalisation,
    prompts, max length), in its directory or on the Hugging Face Hub, then from the rule of
    :func:`~pyterrier_hybrid.model.model_dir.resolve_settings` (known families' documented prefixes).

    Args:
        model: a Hugging Face name or local directory, or an already-loaded ``PreTrainedModel``.
        tokenizer: the tokenizer, when ``model`` is a loaded model.
        pooling: ``"mean"`` or ``"cls"``.
        normalize: L2-normalise vectors (cosine similarity).
        query_prefix: prepended to queries, e.g. ``"query: "``.
        doc_prefix: prepended to passages, e.g. ``"passage: "``.
        query_max_length: token limit for queries.
        doc_max_length: token limit for passages.
        doc_text: ``"sentence"`` encodes the ``text`` column; ``"sentence+context"`` encodes
            ``text`` and ``context`` as a pair, truncating the context (LAReQA's candidate encoding).
        batch_size: texts per forward pass.
        device: ``"cpu"``, ``"cuda"``...; defaults to CUDA when available (the local rank's GPU under torchrun).
        dtype: ``"auto"`` (bf16 where the hardware does it natively, else fp32; on the full XQuAD-R protocol
            bf16 moved mAP by at most 0.0005), ``"float32"``, ``"bfloat16"`` (CPU or CUDA, under autocast) or
            ``"float16"`` (CUDA). The resolved one is in ``.dtype`` and in every protocol report.
        verbose: show a tqdm progress bar while encoding.
        backend: ``"torch"``; ``"openvino"`` (the model compiled by OpenVINO for the CPU, exported once per model,
            see :mod:`~pyterrier_hybrid.model.compiled`, at ``dtype``'s precision); ``"openvino-int8"`` (NNCF's
            static int8 of it, opt-in: it is a different model, see docs/benchmarks.md); or ``"auto"``: OpenVINO
            where it is installed and the device is the CPU, else torch. The compiled ones need
            ``pip install pyterrier-hybrid[fast]`` and encode only (``embed`` is not differentiable there). The
            resolved backend is in ``.backend``, in every report and in every index.
        calibration: ``openvino-int8`` only: ``{"query": [...], "doc": [...]}``, a few hundred texts in the languages
            to encode, without prefixes; default: MLQA-R's questions and passages in its 7 languages.
    """

    def __init__(
        self,
        model: Union[str, Path, PreTrainedModel],
        tokenizer: Optional[PreTrainedTokenizerBase] = None,
        *,
        pooling: Optional[str] = None,
        normalize: Optional[bool] = None,
        query_prefix: Optional[str] = None,
        doc_prefix: Optional[str] = None,
        query_max_length: Optional[int] = None,
        doc_max_length: Optional[int] = None,
        doc_text: DocText = "sentence",
        batch_size: int = 32,
        device: Optional[str] = None,
        dtype: str = "auto",
        verbose: bool = False,
        backend: str = "torch",
        calibration: Optional[Dict[str, Sequence[str]]] = None,
    ):
        if backend not in (*BACKENDS, "auto"):
            raise ValueError(f"backend={backend!r} is not supported; use one of {[*BACKENDS, 'auto']}")
        if calibration is not None and backend != "openvino-int8":
            raise ValueError("calibration= is for backend='openvino-int8' only")
        if isinstance(model, (str, Path)):
            self.name = resolve_model(model)
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(self.name)
            model = AutoModel.from_pretrained(self.name)
        else:
            if tokenizer is None:
                raise ValueError("pass the tokenizer together with an already-loaded model")
            self.name = getattr(model, "name_or_path", type(model).__name__)
        self.settings = resolve_settings(
            self.name, pooling=pooling, normalize=normalize, query_prefix=query_prefix, doc_prefix=doc_prefix,
            query_max_length=query_max_length, doc_max_length=doc_max_length)
        if doc_text not in DOC_TEXTS:
            raise ValueError(f"doc_text={doc_text!r} is not supported; use one of {DOC_TEXTS}")
        if backend == "auto":
            backend = "openvino" if device in (None, "cpu") and not torch.cuda.is_available() and have_openvino() \
                else "torch"
        self.backend = backend
        if backend != "torch" and device not in (None, "cpu"):
            raise ValueError(f"backend={backend!r} runs on the CPU; leave device out, or use backend='torch' on "
                             f"{device}")
        if backend != "torch" and dtype == "float16":
            raise ValueError(f"backend={backend!r} runs in float32 or bfloat16 (dtype 'auto' picks); float16 needs "
                             "backend='torch' on CUDA")
        self.device = torch.device("cpu" if backend != "torch" else device or default_device())
        self.doc_text = doc_text
        self.dtype = resolve_dtype(dtype, self.device)
        self.batch_size = batch_size
        self.verbose = verbose
        self.tokenizer = tokenizer
        self.model = model.to(self.device).eval()  # fp32 weights: reduced precision comes from autocast
        self.compiled: Optional[CompiledBody] = None
        calib = self._calibration(calibration) if backend == "openvino-int8" else None
        #: the int8 graph's calibration (a hash of its texts and settings), None for the other backends
        self.calibration_key = calib.key if calib else None
        if backend != "torch":
            self.compiled = CompiledBody(ensure_exported(self.model, self.name, tokenizer.model_input_names, calib),
                                         self.dtype)
        logger.info("encoder %s: backend %s, dtype %s", self.name, self.backend, self.dtype)

    def _calibration(self, texts: Optional[Dict[str, Sequence[str]]]) -> Calibration:
        """The int8 calibration: the texts with this encoder's prefixes and limits, tokenised in batches."""
        texts = texts if texts is not None else default_calibration()
        unknown = set(texts) - {"query", "doc"}
        if unknown or not any(texts.values()):
            raise ValueError(f"calibration= needs {{'query': [...], 'doc': [...]}} with texts; got keys {sorted(texts)}")
        s = self.settings
        key = calibration_key({k: [*v] for k, v in texts.items()}, INT8_FP32_NODES, s)
        return Calibration(key, lambda: self.token_batches(texts), INT8_FP32_NODES)

    def token_batches(self, texts: Dict[str, Sequence[str]]) -> List[Dict[str, np.ndarray]]:
        """Texts as the compiled graph takes them: with this encoder's prefixes and limits, tokenised (numpy int64)
        in batches of :data:`CALIBRATION_BATCH`, queries first; what int8 calibration and its checks feed NNCF.

        Args:
            texts: ``{"query": [...], "doc": [...]}``; either may be missing.
        """
        s, found = self.settings, []
        for kind, prefix, limit in (("query", s.query_prefix, s.query_max_length),
                                    ("doc", s.doc_prefix, s.doc_max_length)):
            items = [prefix + t for t in texts.get(kind, ())]
            for i in range(0, len(items), CALIBRATION_BATCH):
                toks = self.tokenizer(items[i:i + CALIBRATION_BATCH], padding=True, truncation=True, max_length=limit,
                                      return_tensors="np")
                found.append({k: v.astype(np.int64) for k, v in toks.items()})
        return found

    @property
    def dim(self) -> int:
        """The vector size."""
        return int(self.model.config.hidden_size)

    def identity(self) -> tuple:
        """Everything that changes the vectors: the weights (by file), settings, text mode, dtype, backend, device,
        batching."""
        root = Path(self.name)
        files = ()
        if root.is_dir():  # a model retrained into the same directory must not look the same
            files = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.iterdir())
                          if p.is_file() and p.name != CARD)  # the card changes with evaluations, not weights
            root = root.resolve()
        return (str(root), files, self.settings, self.doc_text, self.dtype, self.backend, self.calibration_key,
                self.device.type, self.batch_size)

    def embed(self, texts: Sequence[str], kind: Kind, contexts: Optional[Sequence[str]] = None,
              dtype: Optional[str] = None) -> torch.Tensor:
        """The one forward pass, shared by encoding, training and validation: prefix, tokenise, encode, pool,
        normalise. Differentiable unless called under ``no_grad`` / ``inference_mode``.

        Args:
            texts: one batch of queries or passages, without prefixes.
            kind: ``"query"`` or ``"doc"``: which prefix and max length apply.
            contexts: paragraphs encoded as the second segment of each passage (``doc_text="sentence+context"``).
            dtype: autocast dtype for this call (training and validation choose their own); default ``self.dtype``.
                Ignored by the compiled backends.

        Returns:
            ``[len(texts), dim]`` float32 vectors.
        """
        s = self.settings
        prefix, max_length = (s.query_prefix, s.query_max_length) if kind == "query" else (s.doc_prefix, s.doc_max_length)
        toks = self.tokenizer(
            [prefix + t for t in texts], list(contexts) if contexts is not None else None, padding=True,
            truncation="only_second" if contexts is not None else True, max_length=max_length,
            return_tensors="pt" if self.compiled is None else "np")
        if self.compiled is not None:  # no torch op runs here, so torch's thread pool stays asleep beside OpenVINO's
            return torch.from_numpy(pool_numpy(self.compiled(toks), toks["attention_mask"], s.pooling, s.normalize))
        toks = toks.to(self.device)
        with autocast(self.device, dtype or self.dtype):
            hidden = self.model(**toks).last_hidden_state
        vecs = pool(hidden, toks["attention_mask"], s.pooling).float()
        return torch.nn.functional.normalize(vecs, dim=-1) if s.normalize else vecs

    def _encode(self, texts: List[str], kind: Kind, contexts: Optional[List[str]] = None) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # longest first: batches of similar length waste little padding
        order = np.argsort([-len(t) for t in texts], kind="stable")
        batches = range(0, len(order), self.batch_size)
        with torch.inference_mode():
            for start in tqdm(batches, desc="queries" if kind == "query" else "docs", unit="batch",
                              disable=not self.verbose):
                idx = order[start:start + self.batch_size]
                vecs = self.embed([texts[i] for i in idx], kind, [contexts[i] for i in idx] if contexts else None)
                out[idx] = vecs.cpu().numpy()
        return out

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Encode queries (with the query prefix) into a ``[n, dim]`` float32 array, in input order."""
        return self._encode(require_texts(texts, "query"), "query")

    def encode_docs(self, texts: Sequence[str], contexts: Optional[Sequence[str]] = None) -> np.ndarray:
        """Encode passages (with the doc prefix) into a ``[n, dim]`` float32 array, in input order.

        Args:
            texts: the candidate texts.
            contexts: their paragraphs; required when ``doc_text="sentence+context"``.
        """
        texts = require_texts(texts, "text")
        if self.doc_text != "sentence+context":
            return self._encode(texts, "doc")
        if contexts is None:
            raise ValueError("doc_text='sentence+context' needs the contexts of the passages")
        return self._encode(texts, "doc", require_texts(contexts, "context"))

    def query_encoder(self) -> pt.Transformer:
        """A transformer adding a ``query_vec`` column computed from ``query``."""
        return QueryEncoder(self)

    def doc_encoder(self) -> pt.Transformer:
        """A transformer adding a ``doc_vec`` column computed from ``text`` (and ``context``)."""
        return DocEncoder(self)

    def scorer(self) -> pt.Transformer:
        """A transformer re-scoring a result frame (``query``, ``text``) by vector similarity."""
        return self.query_encoder() >> self.doc_encoder() >> VectorScorer()

    def __repr__(self) -> str:
        backend = f", backend={self.backend!r}" if self.backend != "torch" else ""
        return (f"BiEncoder({self.name!r}, {self.settings}, doc_text={self.doc_text!r}, dtype={self.dtype!r}"
                f"{backend})")


class QueryEncoder(pt.Transformer):
    """Adds ``query_vec``; each distinct query text is encoded once."""

    def __init__(self, encoder: BiEncoder):
        self.encoder = encoder

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        require_columns(inp, ["query"], "query_encoder()", "Use topics with a 'query' column (PyTerrier topics have one).")
        if len(inp) == 0:
            return inp.assign(query_vec=pd.Series(dtype=object))
        texts = require_texts(inp["query"], "query")
        uniq, inverse = np.unique(np.array(texts, dtype=object), return_inverse=True)
        vecs = self.encoder.encode_queries(list(uniq))
        return inp.assign(query_vec=list(vecs[inverse]))

    def __repr__(self) -> str:
        return f"{self.encoder!r}.query_encoder()"


class DocEncoder(pt.Transformer):
    """Adds ``doc_vec`` to a document or result frame."""

    def __init__(self, encoder: BiEncoder):
        self.encoder = encoder

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        cols = ["text", "context"] if self.encoder.doc_text == "sentence+context" else ["text"]
        require_columns(inp, cols, "doc_encoder()", f"doc_text={self.encoder.doc_text!r} encodes {cols}.")
        if len(inp) == 0:
            return inp.assign(doc_vec=pd.Series(dtype=object))
        contexts = inp["context"] if "context" in cols else None
        return inp.assign(doc_vec=list(self.encoder.encode_docs(inp["text"], contexts)))

    def __rshift__(self, right) -> pt.Transformer:
        # an index records which model encodes its documents, so that another model's queries can be refused
        encoded_by = getattr(right, "encoded_by", None)
        return super().__rshift__(encoded_by(self.encoder) if callable(encoded_by) else right)

    def __repr__(self) -> str:
        return f"{self.encoder!r}.doc_encoder()"


class VectorScorer(pt.Transformer):
    """Scores rows by the inner product of ``query_vec`` and ``doc_vec``, then re-ranks."""

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        require_columns(inp, ["qid", "query_vec", "doc_vec"], "scorer()")
        out = inp.drop(columns=["score", "rank"], errors="ignore")
        if len(out) == 0:
            return out.assign(score=pd.Series(dtype=float), rank=pd.Series(dtype=int))
        q, d = np.stack(out["query_vec"]), np.stack(out["doc_vec"])
        if q.shape[1] != d.shape[1]:
            raise ValueError(f"query_vec has dimension {q.shape[1]} but doc_vec has {d.shape[1]}; "
                             "encode both with the same model")
        out = out.assign(score=np.einsum("ij,ij->i", q, d))
        return pt.model.add_ranks(out)
