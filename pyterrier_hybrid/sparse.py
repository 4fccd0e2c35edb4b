"""BM25 baselines from pyterrier-pisa (Terrier's own BM25 needs jars this project cannot assume)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, List

import pyterrier as pt


def bm25_builder(workdir: str | Path, stemmer: str = "none") -> Callable[[List[dict], str], pt.Transformer]:
    """A ``build(docs, name)`` function for :class:`~pyterrier_hybrid.rankers.RetrieverRanker`.

    Each corpus gets its own PISA index under ``workdir/<name>``, and a BM25 retriever returning
    every matching document (a full ranking as far as BM25 can rank).

    Args:
        workdir: where the indexes go.
        stemmer: PISA's stemmer; ``"none"`` suits a multilingual corpus (its stemmers are English).
    """
    from pyterrier_pisa import PisaIndex

    def build(docs: List[dict], name: str) -> pt.Transformer:
        index = PisaIndex(str(Path(workdir) / f"bm25-{name}"), stemmer=stemmer, text_field="text", overwrite=True)
        index.index(iter(docs))
        return index.bm25(num_results=len(docs))

    return build
