"""BM25 baselines from pyterrier-pisa (Terrier's own BM25 needs jars this project cannot assume)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, List, Optional

import pyterrier as pt

from .quiet import LoggedTransformer, console_to


def pisa_bm25(path: str | Path, docs: Iterable[dict], num_results: int, log: Path,
              stemmer: str = "none") -> pt.Transformer:
    """Index ``docs`` with PISA at ``path`` and return its BM25 retriever; PISA's log goes to ``log``."""
    from pyterrier_pisa import PisaIndex

    index = PisaIndex(str(path), stemmer=stemmer, text_field="text", overwrite=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with console_to(log):  # bm25() compresses the index and builds its score bounds: it logs too
        index.index(iter(docs))
        bm25 = index.bm25(num_results=num_results)
    return LoggedTransformer(bm25, log)


def bm25_builder(workdir: str | Path, stemmer: str = "none",
                 log: Optional[str | Path] = None) -> Callable[[List[dict], str], pt.Transformer]:
    """A ``build(docs, name)`` function for :class:`~pyterrier_hybrid.evaluation.rankers.RetrieverRanker`.

    Each corpus gets its own PISA index under ``workdir/bm25-<name>``, and a BM25 retriever returning
    every matching document (a full ranking as far as BM25 can rank). PISA's own log (about 60 lines and a
    progress line per index) goes to ``log``, not to the console.

    Args:
        workdir: where the indexes go.
        stemmer: PISA's stemmer; ``"none"`` suits a multilingual corpus (its stemmers are English).
        log: the file PISA's log is appended to; default ``workdir/pisa.log``.
    """
    log = Path(log) if log is not None else Path(workdir) / "pisa.log"

    def build(docs: List[dict], name: str) -> pt.Transformer:
        return pisa_bm25(Path(workdir) / f"bm25-{name}", docs, len(docs), log, stemmer)

    return build
