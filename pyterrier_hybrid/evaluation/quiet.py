"""Keeping the console for our own output: C++ logs (pyterrier-pisa) go to a log file instead."""
from __future__ import annotations

import ctypes
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyterrier as pt


@contextmanager
def console_to(log: str | Path) -> Iterator[None]:
    """Send file descriptors 1 and 2 to ``log`` (appended): pisa's C++ log writes to them directly, past
    ``sys.stdout``, so redirecting Python's streams would not catch it."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "ab") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            ctypes.CDLL(None).fflush(None)  # C stdio buffers too, before fds 1 and 2 point back at the console
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)


class LoggedTransformer(pt.Transformer):
    """Runs ``inner`` with the console sent to ``log`` (see :func:`console_to`).

    Args:
        inner: the transformer, e.g. a PISA retriever, which logs on its first search.
        log: the log file.
    """

    def __init__(self, inner: pt.Transformer, log: str | Path):
        self.inner, self.log = inner, Path(log)

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        with console_to(self.log):
            return self.inner(inp)

    def __repr__(self) -> str:
        return f"LoggedTransformer({self.inner!r}, log={str(self.log)!r})"
