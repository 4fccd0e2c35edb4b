"""Training: parallel data sources (the TrainingSource protocol and two kinds), batch samplers, InfoNCE (and its
multi-positive form, and the translation-ranking alignment term), checkpoints and the trainer (and exporting a
checkpoint as a model).

It may import the model package; it imports nothing from the index or evaluation packages.
"""
from .data import ParallelItem, ParallelSource, from_jsonl, from_lareqa, load_source, split_validation
from .irds import IrdsSource, from_irds
from .loss import info_nce, multi_positive_nce, negative_mask, translation_ranking
from .samplers import (Batch, BatchSampler, CrossLingualBatchSampler, HybridBatchSampler, MixedBatchSampler,
                       MonolingualBatchSampler, MultiPositiveBatchSampler, Translation, Triplet, make_sampler)
from .source import Entry, TrainingSource
from .trainer import TrainConfig, Trainer, export_checkpoint

__all__ = [
    "Batch", "BatchSampler", "CrossLingualBatchSampler", "Entry", "HybridBatchSampler", "MixedBatchSampler",
    "MonolingualBatchSampler", "MultiPositiveBatchSampler", "ParallelItem", "IrdsSource", "ParallelSource", "TrainConfig",
    "Trainer", "TrainingSource", "Translation", "Triplet", "export_checkpoint", "from_irds", "from_jsonl", "from_lareqa",
    "info_nce", "load_source", "make_sampler", "multi_positive_nce", "negative_mask", "split_validation",
    "translation_ranking",
]
