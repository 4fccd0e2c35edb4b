"""lang_from_qid: each query's language read from its qid, as a visible pipeline step.

An index that removes language identity by centring needs each query's language (``lang`` column or
``retriever(query_lang=...)``). Collections whose qids carry it, as ``xquad-r`` and ``mlqa-r`` do (``"de:5733"``),
put ``lang_from_qid()`` before the retriever rather than having the retriever guess it.
"""
from __future__ import annotations

from typing import Callable

import pandas as pd
import pyterrier as pt

from ir_datasets_ext import id_lang

from ..checks import require_columns


class LangFromQid(pt.Transformer):
    """Adds a ``lang`` column computed from ``qid``. Use :func:`lang_from_qid`."""

    def __init__(self, lang_of: Callable[[str], str]):
        self.lang_of = lang_of

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        require_columns(inp, ["qid"], "lang_from_qid()")
        qids = [str(q) for q in inp["qid"]]
        if self.lang_of is id_lang:  # the default reads a prefix: a qid without one is an error, not a language
            bare = [q for q in qids if ":" not in q]
            if bare:
                raise ValueError(f"lang_from_qid() reads the '<lang>:' prefix of each qid, but qid {bare[0]!r} has "
                                 "none; give lang_from_qid(lang_of=...) for another qid scheme, or "
                                 "retriever(query_lang=...)")
        return inp.assign(lang=[self.lang_of(q) for q in qids])

    def __repr__(self) -> str:
        return "lang_from_qid()" if self.lang_of is id_lang else f"lang_from_qid(lang_of={self.lang_of!r})"


def lang_from_qid(lang_of: Callable[[str], str] = id_lang) -> pt.Transformer:
    """A transformer adding each query's language as a ``lang`` column, read from its qid.

    ``ph.lang_from_qid() >> index.retriever(encoder)`` centres ``"de:5733"`` on the German mean.

    Args:
        lang_of: qid -> language (default: the ``"<lang>:"`` prefix of the LAReQA collections, as the measures'
            ``lang_of=`` takes it).
    """
    return LangFromQid(lang_of)


__all__ = ["LangFromQid", "lang_from_qid"]
