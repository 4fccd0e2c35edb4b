"""The trainer: InfoNCE over sampled batches of a :class:`BiEncoder`, AdamW with warmup, DDP, early stopping.

Output: ``out_dir`` becomes a model directory (``save_pretrained`` + sentence-transformers files) that
:class:`~pyterrier_hybrid.BiEncoder` and sentence-transformers load, with a model card (``README.md``), the
run's ``training_config.json`` and ``train_log.jsonl`` (one line per step) beside it. ``checkpoint/``
(the state to resume from: weights, AdamW moments, sampler and RNG states, about 3x the model's size) exists while
the run trains and is removed when it finishes, unless ``keep_checkpoint`` is set; :func:`export_checkpoint` writes a
kept checkpoint's weights as a model directory of their own. Training encodes sentences only
(queries, answer sentences, hard negatives), never sentence+context pairs, through the same forward pass as
inference (:meth:`BiEncoder.embed`).

Distributed: run under ``torchrun``; every rank draws the same global batch from the same seed and encodes
its contiguous share; embeddings are gathered so negatives come from the global batch.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from ..atomic import refuse_existing
from ..model.encoder import BiEncoder
from ..model.model_card import render_model_card
from ..model.model_dir import CHECKPOINT, TRAINING_CONFIG, EncoderSettings, read_settings, resolve_model, write_model_dir
from ..model.precision import cpu_name, fast_bf16, resolve_dtype
from . import checkpoint
from .grad_cache import grad_cache_backward
from .loss import info_nce, multi_positive_mask, multi_positive_nce, negative_mask, translation_ranking
from .samplers import MULTI, Batch, BatchSampler, sampling_label


def describe_run(run: dict) -> str:
    """A run config in a few words: sampling, α, seed, steps."""
    alpha = f", α {run['alpha']:g}" if run.get("alpha") is not None else ""
    return f"sampling {run.get('sampling')}{alpha}, seed {run.get('seed')}, {run.get('train', {}).get('steps')} steps"


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
        align_weight: β, the weight of the translation-ranking term between parallel passages of the same id
            (:func:`~pyterrier_hybrid.training.loss.translation_ranking`); 0 leaves it out. The sampler must align
            (``make_sampler(..., align=True)``) exactly when it is above 0.
        align_queries: add the same term, weighted β, between parallel queries (the sampler's ``align_queries``).
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
    align_weight: float = 0.0
    align_queries: bool = False


#: TrainConfig fields added after runs were committed: left out of a run config at these values, so those runs keep
#: their config (resume, --resume of a finished run, and reproduction compare it)
_LATER_DEFAULTS = {"align_weight": 0.0, "align_queries": False}


@dataclass
class _Inputs:
    """A batch as the encoder and the loss see it."""
    groups: List[Tuple[List[str], str]]                # global texts per encoding group, with "query" / "doc"
    loss: Callable[[List[torch.Tensor]], torch.Tensor]  # the loss of the groups' global embeddings


def _dist() -> tuple:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Trainer:
    """Trains a shared-weight dual encoder on batches from a sampler.

    Args:
        encoder: the :class:`BiEncoder` to train (its pooling, prefixes and lengths are used as they are),
            or a Hugging Face name or directory to load one from with its own settings.
        sampler: a :class:`BatchSampler` (``MonolingualBatchSampler``, ``CrossLingualBatchSampler``,
            ``HybridBatchSampler``, ``MultiPositiveBatchSampler``, ``MixedBatchSampler``).
        out_dir: the output model directory (also holds the log and the checkpoint).
        config: the hyper-parameters.
        val_sampler: batches for the validation loss (early stopping).
        device: for a name or directory: defaults to CUDA when available (the local rank's GPU under torchrun).
        verbose: show a progress bar (rank 0 only).
        keep_checkpoint: keep ``checkpoint/`` after the run finishes (to extend the run, or to evaluate the final
            step's weights when validation kept an earlier one); by default a finished run removes it.
    """

    def __init__(self, encoder: Union[str, Path, BiEncoder], sampler: BatchSampler, out_dir: str | Path,
                 config: TrainConfig, *, val_sampler: Optional[BatchSampler] = None, device: Optional[str] = None,
                 verbose: bool = True, keep_checkpoint: bool = False):
        self.rank, self.world = _dist()
        if config.amp is not None and config.amp not in _AMP:
            raise ValueError(f"amp={config.amp!r} is not supported; use one of {list(_AMP)} or None")
        if config.steps < 1:
            raise ValueError(f"steps must be positive, got {config.steps}")
        if sampler.batch_size % self.world:
            raise ValueError(f"batch size {sampler.batch_size} does not split over {self.world} processes")
        if config.align_weight < 0:
            raise ValueError(f"align_weight (--align-weight) must be 0 or more, got {config.align_weight}")
        if config.align_queries and not config.align_weight:
            raise ValueError("align_queries (--align-queries) needs align_weight (--align-weight) above 0")
        aligns = (getattr(sampler, "align", False), getattr(sampler, "align_queries", False))
        if aligns != (config.align_weight > 0, config.align_queries):
            raise ValueError(f"the sampler draws translations for passages / queries {aligns}, the config weighs "
                             f"align_weight={config.align_weight}, align_queries={config.align_queries}: build the "
                             "sampler with make_sampler(..., align=align_weight > 0, align_queries=align_queries)")
        if not isinstance(encoder, BiEncoder):
            encoder = BiEncoder(encoder, device=device, dtype="float32")
        self.encoder, self.model, self.device = encoder, encoder.model, encoder.device
        self.amp_dtype = resolve_dtype(_AMP[config.amp], self.device) if config.amp else "float32"
        self.sampler, self.config, self.val_sampler = sampler, config, val_sampler
        self.out = Path(out_dir)
        self.checkpoint_dir = self.out / CHECKPOINT
        self.verbose = verbose and self.rank == 0
        self.keep_checkpoint = keep_checkpoint
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
        self.steps_done = 0
        self.best_val = float("inf")
        self.bad_evals = 0
        self.stopped_early = False
        self.sittings: List[dict] = []   # where each stretch of the run trained (see :meth:`environment`)
        self._val_batches: Optional[List[Batch]] = None
        self.finished_before = False     # train() found this run finished already and did nothing

    # ---- encoding and loss ----------------------------------------------------------------------
    def _embed(self, texts: List[str], kind: str) -> torch.Tensor:
        return self.encoder.embed(texts, kind, dtype=self.amp_dtype)

    def _inputs(self, batch: Batch) -> _Inputs:
        """The batch's encoding groups (queries, positives, one negative slot per positive, then any translations)
        and the loss of their embeddings: InfoNCE, or multi-positive InfoNCE for a multi batch, plus β times the
        translation-ranking terms."""
        t, dev = self.config.temperature, self.device
        queries = [tr.query for tr in batch.items]
        positives = [tr.positive for tr in batch.triplets]
        negatives = [tr.negative for tr in batch.triplets]
        groups = [(queries, "query"), (positives, "doc"), ([d or "" for d in negatives], "doc")]
        if batch.kind == MULTI:
            k = batch.positive_langs
            answers, mask = multi_positive_mask([positives[i * k:(i + 1) * k] for i in range(len(queries))],
                                                positives + negatives)
            answers, mask = answers.to(dev), mask.to(dev)

            def rank(q: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
                return multi_positive_nce(q, d, answers, t, mask)
        else:
            mask = negative_mask(positives, positives + negatives).to(dev)

            def rank(q: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
                return info_nce(q, d, t, mask)
        terms = self._alignment(batch, groups)

        def loss(reps: List[torch.Tensor]) -> torch.Tensor:
            q, p, n = reps[:3]
            total = rank(q, torch.cat([p, n]))
            for views, masks in terms:
                views_reps = [reps[g][rows] for g, rows in views]
                total = total + self.config.align_weight * translation_ranking(views_reps, t, masks)
            return total
        return _Inputs(groups, loss)

    def _alignment(self, batch: Batch, groups: List[Tuple[List[str], str]]) -> List[tuple]:
        """The translation-ranking terms of a batch, as views (encoding group, rows) with their false-negative masks;
        appends the translations' texts to ``groups``; none without ``align_weight``."""
        if not self.config.align_weight:
            return []
        k, translations = batch.positive_langs, batch.translations
        terms = []

        def add(group: int, texts: List[Optional[str]], kind: str) -> None:
            rows = [i for i, x in enumerate(texts) if x is not None]
            if len(rows) < 2:  # one id alone has nothing to be told apart from: no term, nothing more to encode
                return
            groups.append(([x or "" for x in texts], kind))
            terms.append([(group, rows), (len(groups) - 1, rows)])

        if k >= 2:  # a multi batch: its K passages per id are the views
            terms.append([(1, list(range(a, len(groups[1][0]), k))) for a in range(k)])
        elif translations:
            add(1, [tr.passage for tr in translations], "doc")
        if self.config.align_queries and translations:
            add(0, [tr.query for tr in translations], "query")
        masks = [[negative_mask(x, x).to(self.device) for x in ([groups[g][0][r] for r in rows] for g, rows in view)]
                 for view in terms]
        return list(zip(terms, masks))

    def _local(self, groups: List[Tuple[List[str], str]]) -> List[tuple]:
        """This rank's contiguous share of each group."""
        return [(texts[self._share(len(texts))], kind) for texts, kind in groups]

    def _share(self, n: int) -> slice:
        """This rank's contiguous share of ``n`` global rows."""
        k = n // self.world
        return slice(self.rank * k, (self.rank + 1) * k)

    def _gather(self, local: torch.Tensor, with_grad: bool) -> torch.Tensor:
        if self.world == 1:
            return local
        if with_grad:
            from torch.distributed.nn.functional import all_gather
            return torch.cat(all_gather(local))
        parts = [torch.empty_like(local) for _ in range(self.world)]
        dist.all_gather(parts, local.contiguous())
        return torch.cat(parts)

    def _backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def _accumulate(self, batch: Batch) -> float:
        """Compute the batch's loss and leave its gradient (summed over ranks) in the model."""
        inputs = self._inputs(batch)
        groups = self._local(inputs.groups)
        if self.config.grad_cache_chunk is None:
            loss = inputs.loss([self._gather(self._embed(texts, kind), with_grad=True) for texts, kind in groups])
            self._backward(loss)
            grad_scale = 1.0 / self.world  # each rank computed the same global loss: average
        else:
            loss = grad_cache_backward(groups, self._embed, inputs.loss, self._backward,
                                       self.config.grad_cache_chunk, lambda r: self._gather(r, with_grad=False),
                                       self._share, self.device)
            grad_scale = 1.0  # each rank holds its own share of the global gradient: sum
        if self.world > 1:
            for p in self.model.parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad.mul_(grad_scale)
        return float(loss.detach())

    def step(self, batch: Batch) -> float:
        """One optimisation step on ``batch`` (loss, backward, clipping, AdamW, schedule); returns the loss."""
        loss = self._accumulate(batch)
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps_done += 1
        return loss

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
            inputs = self._inputs(batch)
            # one forward pass per kind (all passages together), split back into the groups
            vecs = {kind: self.encoder.embed([x for texts, k in inputs.groups if k == kind for x in texts], kind,
                                             dtype="float32") for kind in ("query", "doc")}
            reps, taken = [], {"query": 0, "doc": 0}
            for texts, kind in inputs.groups:
                reps.append(vecs[kind][taken[kind]:taken[kind] + len(texts)])
                taken[kind] += len(texts)
            losses.append(float(inputs.loss(reps)))
        self.model.train()
        return float(np.mean(losses))

    # ---- checkpoints ---------------------------------------------------------------------------
    def run_config(self) -> dict:
        """Everything that decides what this run trains: model, sampling, data, hyper-parameters, settings."""
        return {"base_model": self.encoder.name, **self.sampler.describe(),
                "validation": self.val_sampler.describe()["sources"] if self.val_sampler is not None else None,
                "train": {k: v for k, v in asdict(self.config).items() if _LATER_DEFAULTS.get(k, ...) != v},
                "encoder": asdict(self.encoder.settings), "world_size": self.world}

    def _state(self) -> dict:
        return {
            "step": self.steps_done, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "sampler": self.sampler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "torch_rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "best_val": self.best_val, "bad_evals": self.bad_evals, "stopped_early": self.stopped_early,
            "run": self.run_config(), "sittings": self.sittings,
        }

    def environment(self) -> dict:
        """What numerics depend on besides the run config: bit-identical reruns need the same device,
        torch version and thread count (1 and 2 CPU threads give different losses from the third step)."""
        cuda = self.device.type == "cuda"
        return {"device": torch.cuda.get_device_name(self.device) if cuda else "cpu", "cpu": cpu_name(),
                "torch": str(torch.__version__), "threads": torch.get_num_threads(),
                "native_bf16": fast_bf16(self.device)}

    def save_checkpoint(self) -> None:
        """Write ``checkpoint/state.pt`` atomically (rank 0)."""
        if self.rank == 0:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            checkpoint.save(self._state(), checkpoint.state_path(self.out))
        if self.world > 1:
            dist.barrier()

    def load_checkpoint(self) -> None:
        """Continue from ``checkpoint/state.pt`` written by a run with the same config; cut the log back to it."""
        path = checkpoint.state_path(self.out)
        if not path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {path}; start without --resume")
        state = checkpoint.load(path, self.device)
        checkpoint.check_same_run(state["run"], self.run_config(), path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["sampler"])
        if self.scaler and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"].cpu())
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
        self.steps_done, self.best_val, self.bad_evals = state["step"], state["best_val"], state["bad_evals"]
        self.stopped_early = state["stopped_early"]
        self.sittings = state.get("sittings", [])  # checkpoints from before sittings were recorded have none
        if self.rank == 0:
            checkpoint.trim_log(self.out / "train_log.jsonl", self.steps_done)

    # ---- the loop ------------------------------------------------------------------------------
    def finished_run(self) -> Optional[dict]:
        """The run config of the finished model in ``out_dir`` (written with the model, last), or None."""
        path = self.out / TRAINING_CONFIG
        if not path.is_file():
            return None
        saved = json.loads(path.read_text(encoding="utf-8"))
        saved.pop("sittings", None)
        return saved

    def train(self, resume: bool = False, overwrite: bool = False) -> Path:
        """Train for ``config.steps`` steps (continuing from the checkpoint when ``resume``); return ``out_dir``.

        A finished model in ``out_dir`` is never trained over unless ``overwrite``: a fresh run refuses, and a
        ``resume`` changes nothing (:attr:`finished_before` is then True) when the configuration is the same, and
        refuses, naming the differences, when it is not.
        """
        finished = None if overwrite else self.finished_run()
        if finished is not None:
            if not resume:
                refuse_existing(self.out, overwrite, holds=f"a finished model ({describe_run(finished)})")
            found = checkpoint.differences(finished, json.loads(json.dumps(self.run_config())))
            if found:
                raise ValueError(f"--resume: {self.out} holds a finished run with another configuration, left as it "
                                 "is; write to another --out, or pass --overwrite to replace it. Differences "
                                 "(finished -> now): " + "; ".join(found))
            self.finished_before = True
            return self.out
        if overwrite and not resume:
            shutil.rmtree(self.checkpoint_dir, ignore_errors=True)  # a kept one belongs to the model replaced
        if not resume and self.checkpoint_dir.exists():
            raise FileExistsError(f"{self.out} already has a checkpoint; pass resume=True (--resume) to continue it, "
                                  "or choose another output directory")
        self.out.mkdir(parents=True, exist_ok=True)
        if resume:
            self.load_checkpoint()
        if self.steps_done < self.config.steps and not self.stopped_early:
            self.sittings.append({"from_step": self.steps_done, **self.environment()})
        self.model.train()
        batches: Iterator[Batch] = iter(self.sampler)
        # a fresh run starts a fresh log: lines of an earlier run killed before its first checkpoint must go
        log = open(self.out / "train_log.jsonl", "a" if resume else "w") if self.rank == 0 else None
        bar = tqdm(total=self.config.steps, initial=self.steps_done, desc="training", disable=not self.verbose)
        try:
            while self.steps_done < self.config.steps and not self.stopped_early:
                batch = next(batches)
                start = time.perf_counter()
                lr = self.scheduler.get_last_lr()[0]
                loss = self.step(batch)
                record = {"step": self.steps_done, "loss": loss, "lr": lr, "kind": batch.kind, "langs": batch.langs,
                          "source": batch.source, "passages": batch.passages,
                          "seconds": round(time.perf_counter() - start, 4)}  # the whole step
                if self.config.eval_every and self.val_sampler is not None and self.steps_done % self.config.eval_every == 0:
                    record["val_loss"] = self.validation_loss()
                    self.stopped_early = self._early_stopping(record["val_loss"])
                if log:
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", kind=batch.kind)
                if (self.steps_done % self.config.checkpoint_every == 0 or self.steps_done == self.config.steps
                        or self.stopped_early):
                    self.save_checkpoint()
        finally:
            bar.close()
            if log:
                log.close()
        best = checkpoint.best_path(self.out)
        if self.config.eval_every and best.is_file():
            self.model.load_state_dict(checkpoint.load(best, self.device))
        if self.rank == 0:
            self.save_model()
            if not self.keep_checkpoint:  # the model is complete: the resume state is 3x its size and done with
                shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
        if self.world > 1:
            dist.barrier()
        return self.out

    def _early_stopping(self, val_loss: float) -> bool:
        if val_loss < self.best_val:
            self.best_val, self.bad_evals = val_loss, 0
            if self.rank == 0:
                self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
                checkpoint.save(self.model.state_dict(), checkpoint.best_path(self.out))
            return False
        self.bad_evals += 1
        return self.bad_evals >= self.config.patience

    def save_model(self) -> None:
        """Write the model, its model card and run config into ``out_dir`` (loads in ``BiEncoder`` and
        sentence-transformers), beside the log and the checkpoint; a crash leaves no half-written model that loads
        (see :func:`~pyterrier_hybrid.model.model_dir.write_model_dir`)."""
        run = {**self.run_config(), "sittings": self.sittings}
        write_model_dir(self.out, self.model, self.encoder.tokenizer,
                        inference_settings(self.encoder.settings, self.encoder.name),
                        provenance=(TRAINING_CONFIG, run), within_run=True,
                        card=_card(run, self.steps_done, self.best_val, self.stopped_early))


def _card(run: dict, steps_done: int, best_val: float, stopped_early: bool, note: str = "") -> str:
    """The model card of a run's weights; it gives the best validation loss only where the run validated."""
    best = best_val if run["train"]["eval_every"] and run["validation"] is not None else None
    label = sampling_label(run["sampling"], run["alpha"], run.get("positive_langs"), run.get("mix"))
    return render_model_card(run, steps_done, best, stopped_early, label, note)


def inference_settings(trained: EncoderSettings, start: str | Path) -> EncoderSettings:
    """The settings a trained model is saved with: the training ones, but the start model's token limits.

    Training truncates for speed; were that length saved, every evaluation would silently run at it (and
    differ from the start model's, at its own limit). The training lengths stay in the run config.

    Args:
        trained: the settings the run trained with.
        start: the model the run started from (or a model directory saved with the start's limits).
    """
    found = read_settings(start)
    limits = {k: found.get(k, getattr(EncoderSettings, k)) for k in ("query_max_length", "doc_max_length")}
    return replace(trained, **limits)


def export_checkpoint(run_dir: str | Path, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write the weights of a run's resume checkpoint (``RUN/checkpoint/state.pt``, kept by ``keep_checkpoint`` /
    ``--keep-checkpoint``) as a model directory of their own; return ``out``.

    The run's model is the step with the lowest validation loss when it validated; this gives the step the
    checkpoint holds (the last one of a finished run), e.g. to evaluate what the later steps did. ``out`` loads like
    the run's model: same tokenizer, settings and card, its ``training_config.json`` saying which checkpoint and step.

    Args:
        run_dir: a training run's output directory (finished or not) that holds ``checkpoint/state.pt``.
        out: the new model directory; must not be inside ``run_dir``.
        overwrite: replace an existing ``out``.
    """
    from transformers import AutoModel, AutoTokenizer

    run_dir, out = Path(run_dir), Path(out)
    state_path = checkpoint.state_path(run_dir)
    if not state_path.is_file():
        raise FileNotFoundError(f"no checkpoint at {state_path}; give the output directory of a run trained with "
                                "--keep-checkpoint (keep_checkpoint=True), or of one still training")
    if out.resolve() == run_dir.resolve() or run_dir.resolve() in out.resolve().parents:
        raise ValueError(f"--out {out} is inside the run {run_dir}; write the exported model elsewhere")
    refuse_existing(out, overwrite)
    state = checkpoint.load(state_path, torch.device("cpu"))
    run = state["run"]
    # a finished run's directory holds the tokenizer and saved settings; an unfinished one, only its start
    start = str(run_dir) if (run_dir / "config.json").is_file() else resolve_model(run["base_model"])
    model = AutoModel.from_pretrained(start, dtype=torch.float32)
    model.load_state_dict(state["model"])
    provenance = {**run, "sittings": state.get("sittings", []),
                  "exported": {"checkpoint": str(state_path), "step": state["step"]}}
    note = (f"These are the weights of step {state['step']} from the run's checkpoint `{state_path}`, exported by "
            "pyterrier-hybrid export-checkpoint; the best validation loss is the run's, not these weights'.")
    return write_model_dir(out, model, AutoTokenizer.from_pretrained(start),
                           inference_settings(EncoderSettings(**run["encoder"]), start),
                           provenance=(TRAINING_CONFIG, provenance),
                           card=_card(run, state["step"], state["best_val"], state["stopped_early"], note))
