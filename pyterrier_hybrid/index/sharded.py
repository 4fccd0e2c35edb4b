"""Indexing a corpus sharded over processes: each rank encodes a contiguous share, rank 0 assembles one index.

Under ``torchrun --nproc-per-node N`` (one process per GPU, or several on a CPU) every rank calls
:func:`index_corpus` with the same arguments. The corpus is cut into fixed-size shards; rank r encodes the
r-th contiguous run of them into ``.<index name>.shards/shard-NNNNN/`` beside the index, each a flat
:class:`FaissIndex` written atomically by its indexer, and rank 0 waits for every shard, then streams them in
order into one index (whose indexer refuses a docno given twice, across shards too). A killed run, started
again, skips the shards that finished. No collective calls are made, so ranks that
finish early never time out waiting for slower ones.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, List, Optional, Tuple

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ir_datasets_ext import irds_name

from ..atomic import atomic_write_text, refuse_existing
from . import storage
from .encoder_identity import encoder_identity
from .faiss_index import FaissIndex
from .indexer import CHUNK, Chunk, chunked

logger = logging.getLogger(__name__)

#: documents per shard: the unit of work that a killed run does not redo
SHARD_SIZE = 1 << 18


def index_corpus(encoder, docs: Any, path: str | Path, *, rank: Optional[int] = None,
                 world_size: Optional[int] = None, shard_size: Optional[int] = None, overwrite: bool = False,
                 verbose: bool = False, poll_s: float = 1.0, **index_args: Any) -> Optional[FaissIndex]:
    """Encode ``docs`` with ``encoder`` into a :class:`FaissIndex` at ``path``, sharded over processes.

    Args:
        encoder: a :class:`~pyterrier_hybrid.BiEncoder` (on this rank's device).
        docs: an ir_datasets dataset or its name (``"mlqa-r"``, ``"irds:miracl/sw"``), a PyTerrier ir_datasets
            dataset, a DataFrame, or a list of dicts, with ``docno`` (or ``doc_id``), ``text`` and optionally
            ``lang`` (and ``context`` for ``doc_text="sentence+context"``).
        path: the index directory.
        rank, world_size: this process's rank and the number of processes (default: torchrun's ``RANK`` and
            ``WORLD_SIZE``, else 0 and 1).
        shard_size: documents per shard (default :data:`SHARD_SIZE`).
        overwrite: replace an existing index at ``path``.
        verbose: progress bars.
        poll_s: how often rank 0 looks for the other ranks' shards.
        index_args: :class:`~pyterrier_hybrid.index.indexer.FaissIndexer` options (``index_type``,
            ``language_removal``, ...); the index records ``encoder``'s identity.

    Returns:
        The index on rank 0; ``None`` on the other ranks, which return once their shards are written.
    """
    rank = int(os.environ.get("RANK", 0)) if rank is None else rank
    world_size = int(os.environ.get("WORLD_SIZE", 1)) if world_size is None else world_size
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
    shard_size = SHARD_SIZE if shard_size is None else shard_size
    if shard_size < 1:
        raise ValueError(f"shard_size must be positive, got {shard_size}")
    final = Path(path)
    refuse_existing(final, overwrite)
    corpus = _Corpus(docs)
    n_shards = -(-corpus.count // shard_size)
    work = final.with_name(f".{final.name}.shards")
    identity = {k: v for k, v in encoder_identity(encoder).items() if k != "model"}  # the same weights elsewhere resume
    plan = {"docs": corpus.count, "corpus": corpus.name, "shard_size": shard_size,
            "encoder": hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()}
    _check_plan(work, plan, rank)
    mine = range(rank * n_shards // world_size, (rank + 1) * n_shards // world_size)
    share = range(mine.start * shard_size, min(mine.stop * shard_size, corpus.count))
    with tqdm(total=len(share), desc="encoding" + (f" (rank {rank} of {world_size})" if world_size > 1 else ""),
              unit="doc", disable=not verbose) as bar:
        for shard in mine:
            folder = work / f"shard-{shard:05d}"
            first, stop = shard * shard_size, min((shard + 1) * shard_size, corpus.count)
            if not (folder / storage.META).is_file():  # else it finished before a kill
                _write_shard(folder, encoder, corpus.slice(first, stop), first)
            bar.update(stop - first)
    if rank != 0:
        return None
    folders = [work / f"shard-{s:05d}" for s in range(n_shards)]
    _wait_for(folders, poll_s)
    index = FaissIndex(final).indexer(overwrite=overwrite, verbose=verbose, encoder=encoder, **index_args) \
        .index_chunks(_read_shards(folders))
    shutil.rmtree(work)
    return index


class _Corpus:
    """A corpus with a length and contiguous slices of ``{docno, text, lang, ...}`` dicts."""

    def __init__(self, docs: Any):
        if isinstance(docs, str):
            import ir_datasets
            name = irds_name(docs)
            docs = ir_datasets.load(name)
        if hasattr(docs, "irds_ref"):  # a PyTerrier ir_datasets dataset
            docs = docs.irds_ref()
        self.docs = docs
        if hasattr(docs, "docs_iter"):
            name = docs.dataset_id() if hasattr(docs, "dataset_id") else type(docs).__name__
            self.count, self.name = int(docs.docs_count()), name
        elif isinstance(docs, pd.DataFrame):
            self.count, self.name = len(docs), f"DataFrame of {len(docs)} documents"
        elif isinstance(docs, (list, tuple)):
            self.count, self.name = len(docs), f"list of {len(docs)} documents"
        else:
            raise TypeError(f"index_corpus needs a corpus with a length (an ir_datasets dataset, a DataFrame or a "
                            f"list of dicts), got {type(docs).__name__}; for a plain iterator use "
                            "(encoder.doc_encoder() >> FaissIndex(path)).index(docs)")
        if self.count == 0:
            raise ValueError("nothing to index: the corpus has no documents")

    def slice(self, start: int, stop: int) -> Iterator[dict]:
        if isinstance(self.docs, pd.DataFrame):
            return iter(self.docs.iloc[start:stop].to_dict("records"))
        if isinstance(self.docs, (list, tuple)):
            return iter(self.docs[start:stop])
        it = self.docs.docs_iter()
        try:
            part = it[start:stop]  # ir_datasets' own slicing, which seeks where the format allows
        except TypeError:
            part = itertools.islice(it, start, stop)
        return (_as_dict(d) for d in part)


def _as_dict(doc) -> dict:
    """An ir_datasets doc as PyTerrier names its fields; ``text`` is its default text (title and body, say)."""
    row = {"docno" if k == "doc_id" else k: v for k, v in doc._asdict().items()}
    if hasattr(doc, "default_text"):
        row["text"] = doc.default_text()
    return row


def _check_plan(work: Path, plan: dict, rank: int) -> None:
    """Shards of an earlier run are reused only for the same corpus, shard size and encoder."""
    path = work / "plan.json"
    if path.is_file():
        found = json.loads(path.read_text())
        if found != plan:
            changed = sorted(k for k in plan if found.get(k) != plan[k])
            raise ValueError(f"{work} holds shards of another indexing run (differs in {changed}); remove it to "
                             "start afresh, or index with the same corpus, shard size and model")
        return
    if rank == 0:
        work.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(plan, indent=2))
    else:
        work.mkdir(parents=True, exist_ok=True)


def _write_shard(folder: Path, encoder, docs: Iterator[dict], first: int) -> None:
    """Encode one shard's documents into a flat index at ``folder`` (written atomically)."""
    doc_encoder = encoder.doc_encoder()

    def chunks() -> Iterator[Chunk]:
        n = first
        for batch in chunked(docs, CHUNK):
            frame = pd.DataFrame(batch)
            if "docno" not in frame.columns:
                raise KeyError(f"documents from {n} have no 'docno' (or 'doc_id'); they have {sorted(frame.columns)}")
            langs = list(frame["lang"]) if "lang" in frame.columns else [None] * len(frame)
            yield list(frame["docno"]), np.stack(doc_encoder(frame)["doc_vec"]), langs
            n += len(frame)
    FaissIndex(folder).indexer(encoder=encoder).index_chunks(chunks(), start=first)


def _wait_for(folders: List[Path], poll_s: float) -> None:
    last = 0.0
    while True:
        missing = [f.name for f in folders if not (f / storage.META).is_file()]
        if not missing:
            return
        if time.monotonic() - last > 60:
            logger.info("rank 0 waits for %d shards from the other ranks (%s ...)", len(missing), missing[0])
            last = time.monotonic()
        time.sleep(poll_s)


def _read_shards(folders: Iterable[Path]) -> Iterator[Chunk]:
    """Every shard's documents in order, ``CHUNK`` at a time, as ``(docnos, vectors, languages)``."""
    for folder in folders:
        yield from FaissIndex(folder).chunks(CHUNK)


__all__: Tuple[str, ...] = ("index_corpus",)
