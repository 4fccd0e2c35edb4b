"""Atomic writes of one file or one whole directory: build beside the target, then rename it into place."""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Callable, Optional


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary path in the target's folder, then rename it to ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_directory(path: str | Path, build: Callable[[Path], None]) -> None:
    """Fill a new directory with ``build(tmp)`` beside ``path``, then move it to ``path``, replacing what was there.

    If ``build`` raises, ``path`` is left as it was and the temporary directory is removed, so a crash never
    leaves a half-built directory at ``path``.

    Args:
        path: the directory to create or replace; its parent is created when missing.
        build: writes the directory's contents into the (empty, existing) directory it is given.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")  # unique: a crashed build may have left one
    tmp.mkdir()
    try:
        build(tmp)
        if path.exists():
            # two renames, not rmtree first: the old directory stays whole until the new one is complete
            old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old)
        else:
            os.rename(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def refuse_existing(path: str | Path, overwrite: bool, holds: Optional[str] = None) -> None:
    """The one rule of every command that writes a folder (train, merge, index): never replace one unasked.

    Args:
        path: the output about to be written.
        overwrite: the caller asked to replace it (``--overwrite``, ``overwrite=True``).
        holds: what is there, for the message (e.g. a finished model's recipe).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        what = f" and holds {holds}" if holds else ""
        raise FileExistsError(f"{path} already exists{what}; write to another --out, or pass --overwrite "
                              "(overwrite=True) to replace it")
