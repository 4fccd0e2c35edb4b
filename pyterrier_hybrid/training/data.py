"""Parallel training data: one item per parallel id, with a query, a positive and hard negatives per language.

Three sources produce it:

- :func:`from_lareqa`: SQuAD-format files with sentence candidates (XQuAD-R / MLQA-R style json, or any
  registered LAReQA family). The positive is the answer sentence; hard negatives are the other
  sentences of the same paragraph.
- :func:`from_irds`: ir_datasets collections whose query and doc ids are shared across languages, such as
  ``mmarco/v2/<lang>/train`` (the positive is a judged-relevant document; negatives come from ``docpairs``
  when the dataset has them).
- :func:`from_jsonl`: one JSON object per line::

      {"id": "q42", "langs": {"en": {"query": "...", "positive": "...", "negatives": ["...", "..."]},
                              "de": {"query": "...", "positive": "..."}}}
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

import ir_datasets_ext as lareqa
from ir_datasets_ext import LareqaFamily

from .irds import from_irds
from .source import Entry, TrainingSource


@dataclass(frozen=True)
class ParallelItem:
    """A training item: the same question and answer in several languages, under one parallel id."""
    parallel_id: str
    langs: Dict[str, Entry] = field(hash=False)


@dataclass
class ParallelSource:
    """A named list of parallel items (one training source, a :class:`~pyterrier_hybrid.training.source.TrainingSource`
    held in memory). Parallel ids are unique within a source."""
    name: str
    items: List[ParallelItem]

    def __post_init__(self):
        if not self.items:
            raise ValueError(f"training source {self.name!r} has no items")
        seen = set()
        for item in self.items:
            if item.parallel_id in seen:
                raise ValueError(f"training source {self.name!r} has parallel id {item.parallel_id!r} twice; merge its languages into one item")
            seen.add(item.parallel_id)
            for lang, e in item.langs.items():
                if not (e.query.strip() and e.positive.strip()):
                    raise ValueError(f"training source {self.name!r}: item {item.parallel_id!r} ({lang}) has an empty query or positive")

    def __len__(self) -> int:
        return len(self.items)

    @property
    def langs(self) -> List[str]:
        """Every language of the source, in first-seen order."""
        return list(dict.fromkeys(lang for item in self.items for lang in item.langs))

    def describe(self) -> dict:
        """Name, size, languages and a content fingerprint: what a run config records of its data."""
        h = hashlib.sha1()
        for item in self.items:
            for lang, e in sorted(item.langs.items()):
                h.update("\0".join((item.parallel_id, lang, e.query, e.positive, *e.negatives)).encode("utf-8"))
        return {"name": self.name, "items": len(self.items), "langs": self.langs, "sha1": h.hexdigest()}

    # the rest of the TrainingSource protocol: what the samplers read
    def lang_index(self) -> Dict[str, np.ndarray]:
        """Per language, the positions of the items that have it, in item order."""
        by_lang: Dict[str, List[int]] = {}
        for i, item in enumerate(self.items):
            for lang in item.langs:
                by_lang.setdefault(lang, []).append(i)
        return {k: np.array(v) for k, v in by_lang.items()}

    def multi_index(self) -> np.ndarray:
        """Positions of the items in two or more languages."""
        return np.array([i for i, item in enumerate(self.items) if len(item.langs) >= 2], dtype=np.int64)

    def parallel_id(self, i: int) -> str:
        return self.items[i].parallel_id

    def item_langs(self, i: int) -> List[str]:
        """Item i's languages, sorted."""
        return sorted(self.items[i].langs)

    def entry(self, i: int, lang: str) -> Entry:
        return self.items[i].langs[lang]

    def subset(self, keep: Sequence[bool], name: str) -> "ParallelSource":
        """The items where ``keep`` is true, as a source called ``name``."""
        return ParallelSource(name, [item for item, k in zip(self.items, keep) if k])

    def restrict(self, langs: Sequence[str]) -> "ParallelSource":
        """Keep only these languages (and the items that still have one)."""
        unknown = [lang for lang in langs if lang not in self.langs]
        if unknown:
            raise ValueError(f"training source {self.name!r} has no language {unknown}; it has {self.langs}")
        items = [ParallelItem(i.parallel_id, {k: v for k, v in i.langs.items() if k in langs}) for i in self.items]
        return ParallelSource(self.name, [i for i in items if i.langs])


def _group(name: str, rows: Iterable[Tuple[str, str, Entry]]) -> ParallelSource:
    by_id: Dict[str, Dict[str, Entry]] = {}
    for parallel, lang, entry in rows:
        by_id.setdefault(parallel, {})[lang] = entry
    return ParallelSource(name, [ParallelItem(parallel, langs) for parallel, langs in by_id.items()])


def from_lareqa(family: Union[str, LareqaFamily], langs: Optional[Sequence[str]] = None,
                max_negatives: int = 3) -> ParallelSource:
    """Training items from a LAReQA-format family (``"mlqa-r"``, ``"xquad-r"``, ``"lareqa-demo"``, ...).

    Args:
        family: a family or a registered family name (see ``ir_datasets_ext.FAMILIES``).
        langs: the languages to use (default: all of the family's).
        max_negatives: at most this many same-paragraph sentences per item and language.
    """
    fam = lareqa.family(family) if isinstance(family, str) else family
    langs = list(langs) if langs else list(fam.langs)
    fam.check_langs(langs)

    def rows():
        for lang in langs:
            parsed = fam.load(lang)
            by_id = {d.doc_id: d for d in parsed.docs}
            paragraph: Dict[str, List[str]] = {}
            for d in parsed.docs:
                paragraph.setdefault(lareqa.paragraph_id(d.doc_id), []).append(d.doc_id)
            for q in parsed.queries:
                parallel = lareqa.parallel_id(q.query_id)
                pos = parsed.answers[parallel]
                negs = [by_id[d].text for d in paragraph[lareqa.paragraph_id(pos)] if d != pos and by_id[d].text != by_id[pos].text]
                yield parallel, lang, Entry(q.text, by_id[pos].text, tuple(negs[:max_negatives]))

    return _group(fam.name, rows())


def from_jsonl(path: str | Path) -> ParallelSource:
    """Training items from a JSONL file (format in this module's docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training data {path} does not exist")

    def rows():
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    for lang, e in obj["langs"].items():
                        yield str(obj["id"]), lang, Entry(e["query"], e["positive"], tuple(e.get("negatives", ())))
                except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
                    raise ValueError(f"{path}:{n} is not a training item ({err!r}); expected "
                                     '{"id": ..., "langs": {"<lang>": {"query": ..., "positive": ..., "negatives": [...]}}}') from None

    return _group(path.name, rows())


def load_source(spec: str, langs: Optional[Sequence[str]] = None) -> TrainingSource:
    """A source from a CLI ``--data`` value: a ``.jsonl`` file, a LAReQA family name, a folder named after a
    family (e.g. ``../shared/data/mlqa-r``, read in place and md5-checked), or an ir_datasets pattern with ``{lang}``."""
    path = Path(spec)
    if "{lang}" in spec:
        if not langs:
            raise ValueError(f"--data {spec} needs --langs to know which languages to load")
        return from_irds(spec, langs)
    if spec not in lareqa.FAMILIES and not path.exists() and ("/" in spec or os.sep in spec or spec.endswith(".jsonl")):
        raise FileNotFoundError(f"--data {spec!r}: no such file or folder. It takes a .jsonl file, a LAReQA family "
                                f"({', '.join(sorted(lareqa.FAMILIES))}), a folder named after one (e.g. "
                                "../shared/data/mlqa-r), or an ir_datasets pattern with {lang}")
    if spec.endswith(".jsonl"):
        source = from_jsonl(path)
        return source.restrict(langs) if langs else source
    if spec in lareqa.FAMILIES:
        return from_lareqa(spec, langs)
    if path.is_dir() and path.name in lareqa.FAMILIES:
        return from_lareqa(replace(lareqa.family(path.name), data_dir=str(path.parent)), langs)
    raise ValueError(f"--data {spec!r} is not a .jsonl file, a LAReQA family ({sorted(lareqa.FAMILIES)}), a folder named "
                     "after one, or an ir_datasets pattern with {lang}")


def held_out(parallel_id: str, fraction: float) -> bool:
    """Whether ``pyterrier-hybrid train --val-fraction FRACTION`` holds this parallel id out for validation.

    One rule for training and evaluation (a hash of the id), so the same ids are held out on every run.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    return hashlib.md5(parallel_id.encode()).digest()[0] < fraction * 256


def split_validation(source: TrainingSource, fraction: float) -> Tuple[TrainingSource, TrainingSource]:
    """Split items (whole parallel ids, so no translation leaks) into training and validation sources,
    by a hash of the id: the same ids go to validation on every run.

    Args:
        source: any training source.
        fraction: the share of parallel ids held out, in (0, 1).
    """
    held = np.array([held_out(source.parallel_id(i), fraction) for i in range(len(source))], dtype=bool)
    return source.subset(~held, source.name), source.subset(held, f"{source.name} (validation)")
