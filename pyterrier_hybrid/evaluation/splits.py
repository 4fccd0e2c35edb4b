"""The queries and candidates a protocol run covers: :class:`Split` and :func:`load_split`."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from ir_datasets_ext import family as lareqa_family, parallel_id

from ..training.data import held_out


@dataclass
class Split:
    """The queries and candidates of a protocol run, restricted to some languages and question ids.

    Candidates are numbered by position: every candidate of every language, language by language.
    """
    langs: List[str]
    docnos: np.ndarray            # object array of docnos, by position
    doc_lang_codes: np.ndarray    # per position, the candidate's language as an index into langs
    texts: List[str]
    contexts: List[str]
    queries: Dict[str, pd.DataFrame]             # lang -> qid, query, parallel_id (in file order)
    answers: Dict[str, Dict[str, int]]           # lang -> parallel id -> position of the answer candidate

    @property
    def lang_slices(self) -> Dict[str, slice]:
        """Each language's candidates, as a slice of positions."""
        bounds = np.searchsorted(self.doc_lang_codes, np.arange(len(self.langs) + 1))
        return {lang: slice(int(bounds[i]), int(bounds[i + 1])) for i, lang in enumerate(self.langs)}

    @property
    def doc_lang_names(self) -> List[str]:
        """Per position, the candidate's language name."""
        return [self.langs[i] for i in self.doc_lang_codes]

    @cached_property
    def docno_order(self) -> np.ndarray:
        """Per position, the candidate's place among the docnos sorted as strings: trec_eval breaks score
        ties by docno, descending, so every ranker orders tied candidates by this."""
        return np.argsort(np.argsort(self.docnos.astype(str), kind="stable"), kind="stable")


def load_split(dataset: str, langs: Optional[Sequence[str]] = None, max_queries: Optional[int] = None,
               holdout: Optional[float] = None) -> Split:
    """Load a protocol split.

    Args:
        dataset: ``"xquad-r"``, ``"mlqa-r"`` or ``"lareqa-demo"``.
        langs: restrict to these languages (their queries, corpora and the pooled corpus of them).
        max_queries: keep the first N question ids in file order (taking the languages in order and
            each file's ids as they come), in every language; corpora stay whole.
        holdout: keep only the question ids that training with ``--val-fraction holdout`` holds out
            (:func:`held_out`), e.g. to choose settings on a training set's validation ids; corpora stay whole.
    """
    family = lareqa_family(dataset)
    langs = list(langs) if langs else list(family.langs)
    family.check_langs(langs)
    if len(set(langs)) != len(langs):
        raise ValueError(f"languages repeat in {langs}")
    parsed = {lang: family.load(lang) for lang in langs}
    keep = None
    if max_queries is not None:
        if max_queries < 1:
            raise ValueError(f"max_queries must be positive, got {max_queries}")
        order = dict.fromkeys(parallel_id(q.query_id) for lang in langs for q in parsed[lang].queries)
        keep = set(list(order)[:max_queries])
    if holdout is not None:
        ids = {parallel_id(q.query_id) for lang in langs for q in parsed[lang].queries}
        held = {i for i in ids if held_out(i, holdout)}
        if not held:
            raise ValueError(f"holdout={holdout} keeps none of {dataset}'s {len(ids)} question ids; use a larger fraction")
        keep = held if keep is None else keep & held
    docnos, doc_lang, texts, contexts, answers, queries = [], [], [], [], {}, {}
    for i, lang in enumerate(langs):
        p = parsed[lang]
        offset = len(docnos)
        position = {d.doc_id: offset + j for j, d in enumerate(p.docs)}
        docnos += [d.doc_id for d in p.docs]
        texts += [d.text for d in p.docs]
        contexts += [d.context for d in p.docs]
        doc_lang += [i] * len(p.docs)
        answers[lang] = {parallel: position[doc] for parallel, doc in p.answers.items()}
        qs = [q for q in p.queries if keep is None or parallel_id(q.query_id) in keep]
        queries[lang] = pd.DataFrame({"qid": [q.query_id for q in qs], "query": [q.text for q in qs],
                                      "parallel_id": [parallel_id(q.query_id) for q in qs]})
    return Split(langs, np.array(docnos, dtype=object), np.array(doc_lang, dtype=np.int64), texts, contexts,
                 queries, answers)
