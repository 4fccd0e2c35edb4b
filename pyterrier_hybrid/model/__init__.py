"""The model: :class:`BiEncoder` and its PyTerrier transformers, its compiled (OpenVINO) backends, dtype choice, model
directories (settings, card, provenance) and weight merging.

The bottom stage: it imports nothing from the index, training or evaluation packages.
"""
from .encoder import BiEncoder
from .merge import merge_models
from .model_dir import EncoderSettings

__all__ = ["BiEncoder", "EncoderSettings", "merge_models"]
