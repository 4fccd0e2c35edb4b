"""Training: parallel data sources (the TrainingSource protocol and two kinds), batch samplers, InfoNCE, checkpoints
and the trainer (and exporting a checkpoint as a model).

It may import the model package; it imports nothing from the index or evaluation packages.
"""
from .data import ParallelItem, ParallelSource, from_jsonl, from_lareqa, load_source, split_validation
from .irds import IrdsSource, from_irds
from .loss import info_nce, negative_mask
from .samplers import Batch, BatchSampler, CrossLingualBatchSampler, HybridBatchSampler, MonolingualBatchSampler, Triplet, make_sampler
from .source import Entry, TrainingSource
from .trainer import TrainConfig, Trainer, export_checkpoint

__all__ = [
    "Batch", "BatchSampler", "CrossLingualBatchSampler", "Entry", "HybridBatchSampler", "MonolingualBatchSampler", "ParallelItem",
    "IrdsSource", "ParallelSource", "TrainConfig", "Trainer", "TrainingSource", "Triplet", "export_checkpoint", "from_irds",
    "from_jsonl", "from_lareqa", "info_nce", "load_source", "make_sampler", "negative_mask", "split_validation",
]
