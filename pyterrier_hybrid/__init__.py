"""pyterrier-hybrid: multilingual dense retrieval trained with hybrid batches, for PyTerrier."""
import ir_datasets_ext  # noqa: F401  registers xquad-r / mlqa-r

__version__ = "0.1.0"
