"""The LAReQA evaluation protocol: every monolingual, cross-lingual and multilingual setting at once.

A dense model encodes each language's queries and candidates exactly once; one :class:`FaissIndex`
over all candidates serves every setting through language filters. Any other PyTerrier retriever
(e.g. BM25 from pyterrier-pisa) plugs in through :class:`RetrieverRanker`, which builds one retriever
per corpus. All metrics come from full rankings (see docs/evaluation.md):

- mAP per setting (= trec_eval / ir_measures ``AP``), macro-averaged per kind (mono, cross, multi);
- rank distance in the multilingual setting (= :data:`~pyterrier_hybrid.measures.RankDistance`);
- query-language share of the top 10 (= ``QueryLanguageShare@10``);
- mean rank correlation between parallel queries (= :data:`~pyterrier_hybrid.measures.RankCorrelation`).

Ties in score are broken by doc_id, descending, as trec_eval does.
"""
from __future__ import annotations

import hashlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
import pyterrier as pt
from tqdm.auto import tqdm

from ir_datasets_ext import FAMILIES, parallel_id

from ._atomic import atomic_write
from .encoder import BiEncoder
from .index import FaissIndex

QLS_K = 10


@dataclass
class Split:
    """The queries and candidates of a protocol run, restricted to some languages and question ids."""
    langs: List[str]
    docnos: np.ndarray            # every candidate of every language, language by language
    doc_lang: np.ndarray          # index into langs, per candidate
    texts: List[str]
    contexts: List[str]
    queries: Dict[str, pd.DataFrame]            # lang -> qid, query, pid (in file order)
    answers: Dict[str, Dict[str, int]]           # lang -> parallel id -> candidate position

    @property
    def lang_slices(self) -> Dict[str, slice]:
        bounds = np.searchsorted(self.doc_lang, np.arange(len(self.langs) + 1))
        return {lang: slice(int(bounds[i]), int(bounds[i + 1])) for i, lang in enumerate(self.langs)}


def load_split(dataset: str, langs: Optional[Sequence[str]] = None, max_queries: Optional[int] = None) -> Split:
    """Load a protocol split.

    Args:
        dataset: ``"xquad-r"``, ``"mlqa-r"`` or ``"lareqa-demo"``.
        langs: restrict to these languages (their queries, corpora and the pooled corpus of them).
        max_queries: keep the first N question ids in file order (taking the languages in order and
            each file's ids as they come), in every language; corpora stay whole.
    """
    if dataset not in FAMILIES:
        raise ValueError(f"unknown dataset {dataset!r}; use one of {sorted(FAMILIES)}")
    family = FAMILIES[dataset]
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
    docnos, doc_lang, texts, contexts, answers, queries = [], [], [], [], {}, {}
    for i, lang in enumerate(langs):
        p = parsed[lang]
        offset = len(docnos)
        position = {d.doc_id: offset + j for j, d in enumerate(p.docs)}
        docnos += [d.doc_id for d in p.docs]
        texts += [d.text for d in p.docs]
        contexts += [d.context for d in p.docs]
        doc_lang += [i] * len(p.docs)
        answers[lang] = {pid: position[doc] for pid, doc in p.answers.items()}
        qs = [q for q in p.queries if keep is None or parallel_id(q.query_id) in keep]
        queries[lang] = pd.DataFrame({"qid": [q.query_id for q in qs], "query": [q.text for q in qs],
                                      "pid": [parallel_id(q.query_id) for q in qs]})
    return Split(langs, np.array(docnos, dtype=object), np.array(doc_lang, dtype=np.int64), texts, contexts,
                 queries, answers)


class DenseRanker:
    """Encodes every language once (optionally cached on disk) and ranks through one FaissIndex.

    Args:
        encoder: the model.
        cache_dir: where to keep encoded vectors between runs (keyed by the texts and everything in
            :meth:`BiEncoder.identity`: weights, settings, dtype, device, batching).
    """

    def __init__(self, encoder: BiEncoder, cache_dir: Optional[str | Path] = None):
        self.encoder, self.cache_dir = encoder, Path(cache_dir) if cache_dir else None
        self.encode_s = 0.0

    def _key(self, kind: str, texts: Sequence[str]) -> str:
        h = hashlib.sha1(repr((self.encoder.identity(), kind)).encode())
        for t in texts:
            h.update(t.encode("utf-8"))
            h.update(b"\0")
        return h.hexdigest()

    def _cached(self, kind: str, texts: List[str], encode: Callable[[], np.ndarray]) -> np.ndarray:
        path = self.cache_dir / f"{self._key(kind, texts)}.npy" if self.cache_dir else None
        if path is not None and path.is_file():
            vecs = np.load(path)
            if vecs.shape == (len(texts), self.encoder.dim):
                return vecs
        start = time.perf_counter()
        vecs = encode()
        self.encode_s += time.perf_counter() - start
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda tmp: _save_npy(tmp, vecs))
        return vecs

    def prepare(self, split: Split, workdir: Path) -> None:
        enc = self.encoder
        doc_vecs = []
        for lang, sl in split.lang_slices.items():
            texts, ctx = split.texts[sl], split.contexts[sl]
            doc_vecs.append(self._cached("docs", texts + (ctx if enc.doc_text != "sentence" else []),
                                         lambda: enc.encode_docs(texts, ctx)))
        self.query_vecs = {lang: self._cached("queries", list(q["query"]), lambda q=q: enc.encode_queries(q["query"]))
                           for lang, q in split.queries.items()}
        langs = [split.langs[i] for i in split.doc_lang]
        self.index = FaissIndex(workdir / "index", overwrite=True)
        vecs = np.concatenate(doc_vecs)
        self.index.index({"docno": d, "lang": l, "doc_vec": v} for d, l, v in zip(split.docnos, langs, vecs))

    def rank(self, x: str, doc_langs: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
        return self.index.search(self.query_vecs[x], None, doc_langs)

    def relevant_ranks(self, x: str, y: str, rows: List[int], docs: np.ndarray, docno_order: np.ndarray) -> np.ndarray:
        """Ranks of ``docs`` (``[len(rows), w]`` positions, -1 = padding) for queries ``rows`` of language x in
        the corpus of language y, by counting the documents ranked above each one (no full sort is needed)."""
        scores, ids = self.index.scores(self.query_vecs[x][rows], [y])
        col = np.searchsorted(ids, np.maximum(docs, 0))  # ids of one language are sorted positions
        target = np.take_along_axis(scores, col, axis=1)
        ranks = np.ones(docs.shape, dtype=np.int64)
        corpus_order = docno_order[ids][None, :]
        for j in range(docs.shape[1]):
            t = target[:, j:j + 1]
            ahead_on_tie = corpus_order > docno_order[np.maximum(docs[:, j], 0)][:, None]  # trec_eval: docno desc
            ranks[:, j] += (scores > t).sum(axis=1) + ((scores == t) & ahead_on_tie).sum(axis=1)
        return np.where(docs >= 0, ranks, -1)


class RetrieverRanker:
    """Ranks with any PyTerrier retriever, built once per corpus by ``build``.

    Args:
        build: ``build(docs, name)`` gets the corpus as a list of dicts (``docno``, ``text``, ``context``,
            ``lang``) and a short name for it (``"de"`` or ``"pooled"``), and returns a retriever that maps
            a topics frame (``qid``, ``query``) to a result frame (``qid``, ``docno``, ``score``).
    """

    def __init__(self, build: Callable[[List[dict], str], pt.Transformer]):
        self.build = build
        self.encode_s = 0.0

    def prepare(self, split: Split, workdir: Path) -> None:
        self.split = split
        self.position = {d: i for i, d in enumerate(split.docnos)}
        self.retrievers: Dict[Tuple[str, ...], pt.Transformer] = {}
        slices = split.lang_slices
        for key in [(lang,) for lang in split.langs] + [tuple(split.langs)]:
            docs = [{"docno": split.docnos[i], "text": split.texts[i], "context": split.contexts[i],
                     "lang": split.langs[split.doc_lang[i]]}
                    for lang in key for i in range(slices[lang].start, slices[lang].stop)]
            self.retrievers[key] = self.build(docs, key[0] if len(key) == 1 else "pooled")

    def relevant_ranks(self, x: str, y: str, rows: List[int], docs: np.ndarray, docno_order: np.ndarray) -> np.ndarray:
        """Ranks of ``docs`` (``[len(rows), w]``, -1 = padding) for queries ``rows`` of language x in y's
        ranking; 0 where the retriever did not rank them."""
        scores, ids = self.rank(x, [y])
        ids = _break_ties(scores[rows], ids[rows], docno_order)
        sl = self.split.lang_slices[y]
        return _ranks_of(_rank_matrix(ids, sl.start, sl.stop - sl.start), docs, sl.start)

    def rank(self, x: str, doc_langs: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
        topics = self.split.queries[x][["qid", "query"]]
        res = self.retrievers[tuple(doc_langs)](topics)
        row = {q: i for i, q in enumerate(topics["qid"])}
        res = res.sort_values(["qid", "score"], ascending=[True, False], kind="mergesort")
        counts = res.groupby("qid").size().reindex(topics["qid"]).fillna(0).astype(int).to_numpy()
        k = int(counts.max()) if len(counts) else 0
        ids = np.full((len(topics), k), -1, dtype=np.int64)
        scores = np.full((len(topics), k), -np.inf, dtype=np.float32)
        if len(res) == 0:
            return scores, ids
        rows = res["qid"].map(row).to_numpy(dtype=np.int64)
        cols = res.groupby("qid", sort=False).cumcount().to_numpy()
        ids[rows, cols] = res["docno"].map(self.position).to_numpy()
        scores[rows, cols] = res["score"].to_numpy()
        return scores, ids


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would add ".npy" to a temporary name
        np.save(f, array, allow_pickle=False)


def _break_ties(scores: np.ndarray, ids: np.ndarray, docno_order: np.ndarray) -> np.ndarray:
    """Reorder runs of equal scores by doc_id, descending (trec_eval's rule); only the tied runs are touched."""
    if ids.shape[1] < 2:
        return ids
    eq = (scores[:, 1:] == scores[:, :-1]) & (ids[:, 1:] >= 0)
    if not eq.any():
        return ids
    in_run = np.zeros(ids.shape, dtype=bool)
    in_run[:, 1:] |= eq
    in_run[:, :-1] |= eq
    starts = in_run.copy()
    starts[:, 1:] &= ~eq  # a run starts where the score differs from the one before
    pos = np.flatnonzero(in_run)
    run = np.cumsum(starts.ravel()[pos])
    flat = ids.reshape(-1)  # a view: writing to it reorders ids in place
    members = flat[pos]
    flat[pos] = members[np.lexsort((-docno_order[members], run))]
    return ids


def _rank_matrix(ids: np.ndarray, offset: int, n: int) -> np.ndarray:
    """``[queries, n]``: the 1-based rank of each corpus document (positions ``offset..offset+n``); 0 = unranked."""
    inv = np.zeros((len(ids), n + 1), dtype=np.int32)  # the extra column absorbs the -1 padding
    cols = np.where(ids >= 0, ids - offset, n)
    np.put_along_axis(inv, cols, np.arange(1, ids.shape[1] + 1, dtype=np.int32)[None, :], axis=1)
    return inv[:, :n]


def _ranks_of(inv: np.ndarray, docs: np.ndarray, offset: int) -> np.ndarray:
    """Look up ``docs`` (``[queries, w]`` positions, -1 = padding) in a rank matrix; padding stays -1."""
    return np.where(docs >= 0, np.take_along_axis(inv, np.maximum(docs - offset, 0), axis=1), -1)


def _padded(rel: List[List[int]]) -> np.ndarray:
    """Lists of document positions as a ``[len(rel), longest]`` matrix padded with -1."""
    docs = np.full((len(rel), max(map(len, rel))), -1, dtype=np.int64)
    for i, r in enumerate(rel):
        docs[i, :len(r)] = r
    return docs


def average_precisions(ranks: np.ndarray) -> np.ndarray:
    """AP per row of relevant-document ranks (-1 = padding, 0 = unranked, which contributes nothing)."""
    n_rel = (ranks >= 0).sum(axis=1)
    found = np.sort(np.where(ranks > 0, ranks, np.inf), axis=1)
    return (np.arange(1, ranks.shape[1] + 1) / found).sum(axis=1) / n_rel


def rank_distances(ranks: np.ndarray, n_ranked: np.ndarray) -> np.ndarray:
    """Highest minus lowest relevant rank per row; unranked ones count at ``n_ranked + 1``; 0 below two relevant."""
    valid = ranks >= 0
    r = np.where(ranks == 0, n_ranked[:, None] + 1, ranks).astype(np.float64)
    spread = np.where(valid, r, -np.inf).max(axis=1) - np.where(valid, r, np.inf).min(axis=1)
    return np.where(valid.sum(axis=1) >= 2, spread, 0.0)


def _spearman_rows(ranks: np.ndarray) -> np.ndarray:
    """Per row, the mean Spearman correlation with every other row, over the documents every row ranked.

    ``ranks`` holds 1-based ranks per document, 0 where a row did not rank the document.
    """
    shared = ranks[:, (ranks > 0).all(axis=0)]
    if shared.shape[1] < 2:
        return np.full(len(ranks), np.nan)
    if shared.shape[1] < ranks.shape[1]:  # partial rankings: rank again within the shared documents
        shared = np.argsort(np.argsort(shared, axis=1), axis=1)
    r = np.corrcoef(shared.astype(np.float64))
    np.fill_diagonal(r, np.nan)
    return np.nanmean(r, axis=1)


def run_protocol(
    ranker: Union[DenseRanker, RetrieverRanker, BiEncoder],
    dataset: str = "xquad-r",
    *,
    langs: Optional[Sequence[str]] = None,
    max_queries: Optional[int] = None,
    out_dir: Optional[str | Path] = None,
    verbose: bool = True,
    name: str = "",
) -> dict:
    """Run every Mo./Cr./Mul. setting of ``dataset`` and return (and optionally write) the report.

    Args:
        ranker: a :class:`DenseRanker`, a :class:`RetrieverRanker`, or a :class:`BiEncoder` (wrapped in a DenseRanker).
        dataset: ``"xquad-r"``, ``"mlqa-r"`` or ``"lareqa-demo"``.
        langs: restrict the evaluation to these languages.
        max_queries: keep the first N question ids (see :func:`load_split`).
        out_dir: when given, write ``report.json``, ``report.md`` and ``matrix.png`` there.
        verbose: show a progress bar over the settings.
        name: the system's name, for the report.

    Returns:
        The report dict (see docs/evaluation.md for its keys).
    """
    start = time.perf_counter()
    if isinstance(ranker, BiEncoder):
        ranker = DenseRanker(ranker)
    split = load_split(dataset, langs, max_queries)
    n_docs = len(split.docnos)
    docno_order = np.argsort(np.argsort(split.docnos.astype(str), kind="stable"), kind="stable")
    slices = split.lang_slices
    with tempfile.TemporaryDirectory() as work:
        ranker.prepare(split, Path(work))
        matrix: Dict[str, Dict[str, float]] = {x: {} for x in split.langs}
        multi, rd, qls = {}, {}, {}
        settings = [(x, [y]) for x in split.langs for y in split.langs] + [(x, list(split.langs)) for x in split.langs]
        multi_ranks: Dict[str, np.ndarray] = {}
        for x, ys in tqdm(settings, desc=f"{dataset} settings", disable=not verbose):
            q = split.queries[x]
            rel = [[split.answers[y][pid] for y in ys if pid in split.answers[y]] for pid in q["pid"]]
            keep = [i for i, r in enumerate(rel) if r]
            if not keep:
                continue
            docs = _padded([rel[i] for i in keep])
            if len(ys) == 1:
                ranks = ranker.relevant_ranks(x, ys[0], keep, docs, docno_order)
                matrix[x][ys[0]] = float(np.mean(average_precisions(ranks)))
                continue
            scores, ids = ranker.rank(x, ys)
            ids = _break_ties(scores, ids, docno_order)
            inv = _rank_matrix(ids, 0, n_docs)
            ranks = _ranks_of(inv[keep], docs, 0)
            multi[x] = float(np.mean(average_precisions(ranks)))
            rd[x] = float(np.mean(rank_distances(ranks, (ids[keep] >= 0).sum(axis=1))))
            top = ids[:, :QLS_K]
            same = (split.doc_lang[np.maximum(top, 0)] == split.langs.index(x)) & (top >= 0)
            counted = (top >= 0).sum(axis=1)
            qls[x] = float(np.mean(same.sum(axis=1)[counted > 0] / counted[counted > 0]))
            multi_ranks[x] = inv
        mrc = _mean_rank_correlation(split, multi_ranks)
    mono = [matrix[x][x] for x in split.langs if x in matrix[x]]
    cross = [v for x in split.langs for y, v in matrix[x].items() if y != x]
    report = {
        "name": name,
        "dataset": dataset,
        "langs": split.langs,
        "max_queries": max_queries,
        "dtype": ranker.encoder.dtype if isinstance(ranker, DenseRanker) else None,
        "n_queries": {x: int(len(q)) for x, q in split.queries.items()},
        "n_docs": {x: int(sl.stop - sl.start) for x, sl in slices.items()},
        "mAP": {"mono": _mean(mono), "cross": _mean(cross), "multi": _mean(list(multi.values()))},
        "rank_distance": {"macro": _mean(list(rd.values())), **rd},
        "query_language_share@10": {"macro": _mean(list(qls.values())), **qls},
        "rank_correlation": mrc,
        "matrix": matrix,
        "multi_by_lang": multi,
        "timing": {"encode_s": ranker.encode_s, "total_s": time.perf_counter() - start},
    }
    if out_dir is not None:
        from .report import write_report
        write_report(report, out_dir)
    return report


def _mean_rank_correlation(split: Split, multi_ranks: Dict[str, np.ndarray]) -> Dict[str, float]:
    """Mean Spearman correlation between multilingual rankings of parallel queries, per language and macro."""
    rows: Dict[str, Dict[str, int]] = {x: {pid: i for i, pid in enumerate(split.queries[x]["pid"])} for x in multi_ranks}
    per_lang: Dict[str, List[float]] = {x: [] for x in multi_ranks}
    pids = dict.fromkeys(pid for x in multi_ranks for pid in split.queries[x]["pid"])
    for pid in pids:
        have = [x for x in multi_ranks if pid in rows[x]]
        if len(have) < 2:
            continue
        values = _spearman_rows(np.stack([multi_ranks[x][rows[x][pid]] for x in have]))
        for x, v in zip(have, values):
            if not np.isnan(v):
                per_lang[x].append(float(v))
    by_lang = {x: _mean(v) for x, v in per_lang.items() if v}
    return {"macro": _mean(list(by_lang.values())), **by_lang}


def _mean(values: List[float]) -> float:
    return float(np.mean(values)) if values else float("nan")
