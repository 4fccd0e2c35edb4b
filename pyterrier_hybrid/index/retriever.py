"""FaissRetriever: the PyTerrier transformer that searches a FaissIndex with the ``query_vec`` column."""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np
import pandas as pd
import pyterrier as pt

from ..checks import require_columns


class FaissRetriever(pt.Transformer):
    """Searches a :class:`FaissIndex` with the ``query_vec`` column. Use :meth:`FaissIndex.retriever`.

    Each query's language, which an index that removes language identity by centring needs, is ``query_lang=``,
    else the ``lang`` column; it is never guessed from the qid (:func:`~pyterrier_hybrid.lang_from_qid` does that
    as a visible step).
    """

    def __init__(self, index, *, num_results: Optional[int], langs: Optional[Sequence[str]],
                 query_lang: Optional[str], nprobe: int, ef_search: int, refine: Optional[int] = None):
        self.index, self.num_results, self.langs, self.query_lang = index, num_results, langs, query_lang
        self.nprobe, self.ef_search, self.refine = nprobe, ef_search, refine

    def _query_langs(self, inp: pd.DataFrame) -> Optional[List[str]]:
        if self.query_lang is not None:
            return [self.query_lang] * len(inp)
        return list(inp["lang"]) if "lang" in inp.columns else None

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        require_columns(inp, ["qid", "query_vec"], "FaissRetriever",
                        "Put encoder.query_encoder() before it, or use index.retriever(encoder).")
        rest = inp.drop(columns=["query_vec", "docno", "docid", "score", "rank"], errors="ignore")
        if len(inp) == 0:
            return rest.assign(docno=pd.Series(dtype=object), docid=pd.Series(dtype=np.int64),
                               score=pd.Series(dtype=np.float32), rank=pd.Series(dtype=np.int64))
        scores, ids = self.index.search(np.stack(inp["query_vec"]), self.num_results, self.langs,
                                        query_langs=self._query_langs(inp), nprobe=self.nprobe, refine=self.refine,
                                        ef_search=self.ef_search)
        keep = ids >= 0
        per_query = keep.sum(1)
        docnos = self.index.docnos
        out = rest.iloc[np.repeat(np.arange(len(rest)), per_query)].reset_index(drop=True)
        return out.assign(
            docno=docnos[ids[keep]],
            docid=ids[keep],
            score=scores[keep],
            rank=np.concatenate([np.arange(c) for c in per_query]),
        )

    def __repr__(self) -> str:
        return (f"FaissRetriever({self.index._where()!r}, num_results={self.num_results}, langs={self.langs}"
                + (f", query_lang={self.query_lang!r})" if self.query_lang else ")"))
