"""The trainer: InfoNCE over sampled batches, AdamW with warmup, gradient caching, DDP, checkpoint and resume.

Output: ``out_dir`` becomes a model directory (``save_pretrained`` + sentence-transformers files) that
:class:`~pyterrier_hybrid.BiEncoder` and sentence-transformers load, with a model card (``README.md``), the
run's ``training_config.json``, ``train_log.jsonl`` (one line per step) and ``checkpoint/`` (the state to
resume from) beside it.

Distributed: run under ``torchrun``; every rank draws the same global batch from the same seed and encodes
its contiguous share; embeddings are gathered so negatives come from the global batch.
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer, get_linear_schedule_with_warmup

from .._atomic import atomic_write
from ..encoder import pool
from ..model_dir import EncoderSettings, resolve_settings, write_settings
from ..precision import autocast, resolve_dtype
from .loss import info_nce, negative_mask
from .model_card import CARD, render_model_card
from .samplers import Batch

RUN_CONFIG = "training_config.json"
#: run-config keys that may change on --resume: they do not change what is trained
_RESUMABLE = {"train.checkpoint_every"}

_AMP = {"bf16": "bfloat16", "fp16": "float16"}


@dataclass
class TrainConfig:
    """Training hyper-parameters (paper defaults: AdamW, lr 3e-5, weight decay 0.01, batch 100).

    Args:
        steps: optimisation steps.
        lr: peak learning rate.
        weight_decay: AdamW weight decay.
        warmup_ratio: share of the steps with linear warmup; linear decay to 0 follows.
        temperature: InfoNCE temperature.
        max_grad_norm: gradient clipping norm.
        grad_cache_chunk: encode in sub-batches of this size with gradient caching (memory independent of
            the batch size); ``None`` backpropagates through the whole batch at once.
        amp: ``"bf16"`` autocast (CPU or CUDA) or ``"fp16"`` (CUDA, with loss scaling); ``None`` for fp32.
            Weights, optimiser state and the loss stay fp32.
        freeze_embeddings: keep the word-embedding matrix fixed (position embeddings and norms still train).
            It is most of a multilingual model's parameters (96M of multilingual-e5-small's 118M), and its
            gradient and AdamW update are most of a CPU step.
        checkpoint_every: save a resumable checkpoint every N steps (and at the end).
        eval_every: compute the validation loss every N steps (0 = never).
        patience: stop after this many evaluations without improvement; the best weights are kept.
    """
    steps: int
    lr: float = 3e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    temperature: float = 0.05
    max_grad_norm: float = 1.0
    grad_cache_chunk: Optional[int] = None
    amp: Optional[str] = None
    freeze_embeddings: bool = False
    checkpoint_every: int = 100
    eval_every: int = 0
    patience: int = 3


def _dist() -> tuple:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _RngFork:
    """Replays the same random state (dropout masks) for the second, gradient-computing forward pass."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


class Trainer:
    """Trains a shared-weight dual encoder on batches from a sampler.

    Args:
        model: a Hugging Face name or directory to start from.
        sampler: a batch sampler (``MonolingualBatchSampler``, ``CrossLingualBatchSampler``, ``HybridBatchSampler``).
        out_dir: the output model directory (also holds the log and the checkpoint).
        config: the hyper-parameters.
        settings: pooling, prefixes and max lengths; default: :func:`~pyterrier_hybrid.model_dir.resolve_settings`.
        val_sampler: batches for the validation loss (early stopping).
        device: defaults to CUDA when available (the local rank's GPU under torchrun).
        verbose: show a progress bar (rank 0 only).
    """

    def __init__(self, model: str, sampler, out_dir: str | Path, config: TrainConfig, *,
                 settings: Optional[EncoderSettings] = None, val_sampler=None, device: Optional[str] = None,
                 verbose: bool = True):
        self.rank, self.world = _dist()
        if device is None:
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if config.amp is not None and config.amp not in _AMP:
            raise ValueError(f"amp={config.amp!r} is not supported; use one of {list(_AMP)} or None")
        self.amp_dtype = resolve_dtype(_AMP[config.amp], self.device) if config.amp else "float32"
        if config.steps < 1:
            raise ValueError(f"steps must be positive, got {config.steps}")
        self.batch_size = sampler.batch_size
        if self.batch_size % self.world:
            raise ValueError(f"batch size {self.batch_size} does not split over {self.world} processes")
        self.model_name, self.sampler, self.config, self.val_sampler = str(model), sampler, config, val_sampler
        self.out = Path(out_dir)
        self.verbose = verbose and self.rank == 0
        self.settings = settings or resolve_settings(model)
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.model = AutoModel.from_pretrained(model).to(self.device)
        if config.freeze_embeddings:
            self.model.get_input_embeddings().weight.requires_grad_(False)
        trained = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        exempt = {n for n, _ in trained if n.endswith("bias") or "norm" in n.lower()}  # as BERT
        self.optimizer = torch.optim.AdamW([
            {"params": [p for n, p in trained if n not in exempt], "weight_decay": config.weight_decay},
            {"params": [p for n, p in trained if n in exempt], "weight_decay": 0.0},
        ], lr=config.lr)
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, int(config.warmup_ratio * config.steps), config.steps)
        self.scaler = torch.amp.GradScaler("cuda") if config.amp == "fp16" else None
        self.step = 0
        self.best_val = float("inf")
        self.bad_evals = 0
        self.stopped_early = False
        self._val_batches: Optional[List[Batch]] = None

    # ---- encoding and loss ----------------------------------------------------------------------
    def _embed(self, texts: Sequence[str], max_length: int, amp: bool = True) -> torch.Tensor:
        toks = self.tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt").to(self.device)
        with autocast(self.device, self.amp_dtype if amp else "float32"):
            hidden = self.model(**toks).last_hidden_state
        vecs = pool(hidden, toks["attention_mask"], self.settings.pooling).float()
        return torch.nn.functional.normalize(vecs, dim=-1) if self.settings.normalize else vecs

    def _inputs(self, batch: Batch):
        """Global query texts, doc texts (positives, then one negative slot per triplet) and the mask."""
        s = self.settings
        queries = [s.query_prefix + t.query for t in batch.triplets]
        positives = [t.positive for t in batch.triplets]
        negatives = [t.negative for t in batch.triplets]
        mask = negative_mask(positives, positives + negatives).to(self.device)
        docs = [s.doc_prefix + (d or "") for d in positives + negatives]
        return queries, docs, mask

    def _shard(self, texts: List[str]) -> List[str]:
        n = len(texts) // self.world
        return texts[self.rank * n:(self.rank + 1) * n]

    def _local(self, queries: List[str], docs: List[str]) -> List[tuple]:
        """This rank's texts as (texts, max_length) groups: queries, positives, negatives."""
        b = len(queries)
        return [(self._shard(queries), self.settings.query_max_length),
                (self._shard(docs[:b]), self.settings.doc_max_length),
                (self._shard(docs[b:]), self.settings.doc_max_length)]

    def _gather(self, local: torch.Tensor, with_grad: bool) -> torch.Tensor:
        if self.world == 1:
            return local
        if with_grad:
            from torch.distributed.nn.functional import all_gather
            return torch.cat(all_gather(local))
        parts = [torch.empty_like(local) for _ in range(self.world)]
        dist.all_gather(parts, local.contiguous())
        return torch.cat(parts)

    def _loss(self, q: torch.Tensor, p: torch.Tensor, n: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return info_nce(q, torch.cat([p, n]), self.config.temperature, mask)

    def _backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def _train_step(self, batch: Batch) -> float:
        queries, docs, mask = self._inputs(batch)
        groups = self._local(queries, docs)
        if self.config.grad_cache_chunk is None:
            reps = [self._gather(self._embed(texts, length), with_grad=True) for texts, length in groups]
            loss = self._loss(*reps, mask)
            self._backward(loss)
            grad_scale = 1.0 / self.world  # each rank computed the same global loss: average
        else:
            loss = self._grad_cache_step(groups, mask)
            grad_scale = 1.0  # each rank holds its own share of the global gradient: sum
        if self.world > 1:
            for p in self.model.parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad.mul_(grad_scale)
        return float(loss.detach())

    def _grad_cache_step(self, groups: List[tuple], mask: torch.Tensor) -> torch.Tensor:
        """GradCache: embed without a graph, get the loss gradient w.r.t. the embeddings, then re-embed
        chunk by chunk with a graph and push those gradients through (same dropout via saved RNG state)."""
        chunk = self.config.grad_cache_chunk
        forks, local_reps = [], []
        with torch.no_grad():
            for texts, length in groups:
                parts = []
                for i in range(0, len(texts), chunk):
                    forks.append(_RngFork(self.device))
                    parts.append(self._embed(texts[i:i + chunk], length))
                local_reps.append(torch.cat(parts))
        global_reps = [self._gather(r, with_grad=False).requires_grad_() for r in local_reps]
        loss = self._loss(*global_reps, mask)
        self._backward(loss)
        n_local = len(groups[0][0])
        fork = iter(forks)
        for (texts, length), rep in zip(groups, global_reps):
            grad = rep.grad[self.rank * n_local:(self.rank + 1) * n_local]
            for i in range(0, len(texts), chunk):
                next(fork).restore()
                part = self._embed(texts[i:i + chunk], length)
                part.backward(grad[i:i + chunk])
        return loss.detach()

    @torch.no_grad()
    def validation_loss(self) -> float:
        """Mean loss over the fixed validation batches (computed on the whole batch by every rank), in fp32
        whatever ``amp`` is, so that runs in different precisions are compared on one scale."""
        if self._val_batches is None:
            it = iter(self.val_sampler)
            self._val_batches = [next(it) for _ in range(4)]
        self.model.eval()
        losses = []
        for batch in self._val_batches:
            queries, docs, mask = self._inputs(batch)
            q = self._embed(queries, self.settings.query_max_length, amp=False)
            d = self._embed(docs, self.settings.doc_max_length, amp=False)  # positives, then negatives
            losses.append(float(info_nce(q, d, self.config.temperature, mask)))
        self.model.train()
        return float(np.mean(losses))

    # ---- checkpoints ---------------------------------------------------------------------------
    def run_config(self) -> dict:
        """Everything that decides what this run trains: model, sampling, data, hyper-parameters, settings."""
        return {"base_model": self.model_name, **self.sampler.describe(),
                "validation": self.val_sampler.describe()["sources"] if self.val_sampler is not None else None,
                "train": asdict(self.config), "encoder": asdict(self.settings), "world_size": self.world}

    def _state(self) -> dict:
        return {
            "step": self.step, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "sampler": self.sampler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "torch_rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "best_val": self.best_val, "bad_evals": self.bad_evals, "stopped_early": self.stopped_early,
            "run": self.run_config(),
        }

    def _atomic_save(self, obj, path: Path) -> None:
        atomic_write(path, lambda tmp: torch.save(obj, tmp))

    def _load(self, path: Path):
        # weights_only: a checkpoint from elsewhere must not be able to run code when it is unpickled
        try:
            return torch.load(path, map_location=self.device, weights_only=True)
        except pickle.UnpicklingError as e:
            raise ValueError(f"{path} holds more than tensors and plain data, so it was not loaded (it could run "
                             f"code). Use a checkpoint written by pyterrier-hybrid. Detail: {str(e)[:300]}") from None

    def save_checkpoint(self) -> None:
        """Write ``checkpoint/state.pt`` atomically (rank 0)."""
        if self.rank == 0:
            (self.out / "checkpoint").mkdir(parents=True, exist_ok=True)
            self._atomic_save(self._state(), self.out / "checkpoint" / "state.pt")
        if self.world > 1:
            dist.barrier()

    def load_checkpoint(self) -> None:
        path = self.out / "checkpoint" / "state.pt"
        if not path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {path}; start without --resume")
        state = self._load(path)
        differences = _differences(state["run"], self.run_config())
        if differences:
            raise ValueError(f"--resume: {path} was written by a run with another configuration; resume it with "
                             "the same settings, or start afresh in another directory. Differences "
                             "(checkpoint -> now): " + "; ".join(differences))
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["sampler"])
        if self.scaler and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"].cpu())
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
        self.step, self.best_val, self.bad_evals = state["step"], state["best_val"], state["bad_evals"]
        self.stopped_early = state["stopped_early"]
        # the log may hold steps after the checkpoint (the run was killed later): drop them
        log = self.out / "train_log.jsonl"
        if self.rank == 0 and log.is_file():
            lines = [ln for ln in log.read_text().splitlines() if ln and json.loads(ln)["step"] <= self.step]
            log.write_text("".join(ln + "\n" for ln in lines))

    # ---- the loop ------------------------------------------------------------------------------
    def train(self, resume: bool = False) -> Path:
        """Train for ``config.steps`` steps (continuing from the checkpoint when ``resume``); return ``out_dir``."""
        if not resume and (self.out / "checkpoint").exists():
            raise FileExistsError(f"{self.out} already has a checkpoint; pass resume=True (--resume) to continue it, "
                                  "or choose another output directory")
        self.out.mkdir(parents=True, exist_ok=True)
        if resume:
            self.load_checkpoint()  # also cuts the log back to the checkpoint's step
        self.model.train()
        batches: Iterator[Batch] = iter(self.sampler)
        # a fresh run starts a fresh log: lines of an earlier run killed before its first checkpoint must go
        log = open(self.out / "train_log.jsonl", "a" if resume else "w") if self.rank == 0 else None
        bar = tqdm(total=self.config.steps, initial=self.step, desc="training", disable=not self.verbose)
        try:
            while self.step < self.config.steps and not self.stopped_early:
                batch = next(batches)
                start = time.perf_counter()
                loss = self._train_step(batch)
                if self.scaler:
                    self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
                lr = self.scheduler.get_last_lr()[0]
                if self.scaler:
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                else:
                    self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.step += 1
                record = {"step": self.step, "loss": loss, "lr": lr, "kind": batch.kind, "langs": batch.langs,
                          "source": batch.source, "seconds": round(time.perf_counter() - start, 4)}  # the whole step
                if self.config.eval_every and self.val_sampler is not None and self.step % self.config.eval_every == 0:
                    record["val_loss"] = self.validation_loss()
                    self.stopped_early = self._early_stopping(record["val_loss"])
                if log:
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", kind=batch.kind)
                if self.step % self.config.checkpoint_every == 0 or self.step == self.config.steps or self.stopped_early:
                    self.save_checkpoint()
        finally:
            bar.close()
            if log:
                log.close()
        best = self.out / "checkpoint" / "best.pt"
        if self.config.eval_every and best.is_file():
            self.model.load_state_dict(self._load(best))
        if self.rank == 0:
            self.save_model()
        if self.world > 1:
            dist.barrier()
        return self.out

    def _early_stopping(self, val_loss: float) -> bool:
        if val_loss < self.best_val:
            self.best_val, self.bad_evals = val_loss, 0
            if self.rank == 0:
                (self.out / "checkpoint").mkdir(parents=True, exist_ok=True)
                self._atomic_save(self.model.state_dict(), self.out / "checkpoint" / "best.pt")
            return False
        self.bad_evals += 1
        return self.bad_evals >= self.config.patience

    def save_model(self) -> None:
        """Write the model, its model card and run config into ``out_dir`` (loads in ``BiEncoder`` and
        sentence-transformers).

        Files are written to a temporary folder and moved in with ``config.json`` last, so a crash
        leaves no directory that loads as a half-written model.
        """
        tmp = self.out / ".model.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        self.model.save_pretrained(tmp)
        self.tokenizer.save_pretrained(tmp)
        write_settings(tmp, self.settings, dim=self.model.config.hidden_size)
        run = self.run_config()
        (tmp / RUN_CONFIG).write_text(json.dumps(run, indent=2, ensure_ascii=False), encoding="utf-8")
        best = self.best_val if self.config.eval_every and self.val_sampler is not None else None
        (tmp / CARD).write_text(render_model_card(run, self.step, best, self.stopped_early), encoding="utf-8")
        (self.out / "config.json").unlink(missing_ok=True)
        for entry in sorted(tmp.iterdir(), key=lambda p: p.name == "config.json"):
            target = self.out / entry.name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(entry, target)
        tmp.rmdir()


def _differences(saved: dict, now: dict, prefix: str = "") -> List[str]:
    """``key: old -> new`` for every leaf that differs between two run configs (resumable keys aside)."""
    out = []
    for key in sorted(set(saved) | set(now), key=str):
        name = f"{prefix}{key}"
        a, b = (dict(enumerate(v)) if isinstance(v, list) and len(saved.get(key) or ()) == len(now.get(key) or ())
                else v for v in (saved.get(key), now.get(key)))
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, name + ".")
        elif a != b and name not in _RESUMABLE:
            out.append(f"{name}: {a!r} -> {b!r}")
    return out
