"""Helpers for tests and offline demos: a tiny random model and a fake Hugging Face cache (not the library's API)."""
from .fake_hub import make_fake_hub_cache
from .tiny_model import make_tiny_model

__all__ = ["make_fake_hub_cache", "make_tiny_model"]
