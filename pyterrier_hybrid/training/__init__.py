"""Training: parallel data sources, batch samplers, InfoNCE, checkpoints and the trainer.

It may import the model package; it imports nothing from the index or evaluation packages.
"""
from .data import Entry, ParallelItem, ParallelSource, from_jsonl, from_lareqa, load_source, split_validation
from .irds import IrdsSource, from_irds
from .loss import info_nce, negative_mask
from .samplers import Batch, BatchSampler, CrossLingualBatchSampler, HybridBatchSampler, MonolingualBatchSampler, Triplet, make_sampler
from .trainer import TrainConfig, Trainer

__all__ = [
    "Batch", "BatchSampler", "CrossLingualBatchSampler", "Entry", "HybridBatchSampler", "MonolingualBatchSampler", "ParallelItem",
    "IrdsSource", "ParallelSource", "TrainConfig", "Trainer", "Triplet", "from_irds", "from_jsonl", "from_lareqa", "info_nce",
    "load_source", "make_sampler", "negative_mask", "split_validation",
]
