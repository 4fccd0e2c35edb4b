"""pyterrier-hybrid: multilingual dense retrieval trained with hybrid batches, for PyTerrier."""
import ir_datasets_ext  # noqa: F401  registers xquad-r / mlqa-r with ir_datasets

from .encoder import BiEncoder
from .index import CorruptIndexError, FaissIndex
from .model_dir import EncoderSettings

__version__ = "0.1.0"

__all__ = ["BiEncoder", "CorruptIndexError", "EncoderSettings", "FaissIndex"]
