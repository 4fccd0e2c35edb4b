"""LAReQA-style collections (XQuAD-R, MLQA-R) as ir_datasets entries.

Both families share one file format: SQuAD v1.1 json where each paragraph also lists
its ``sentences`` and their ``sentence_breaks`` (character offsets into ``context``).
Every sentence is a retrieval candidate; the relevant one for a question is the
sentence that contains the answer start. Question ids are shared across languages.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import ir_datasets
from ir_datasets.formats import BaseDocs, BaseQrels, BaseQueries, GenericQrel
from ir_datasets.indices import Docstore
from ir_datasets.util import Download, LocalDownload, RequestsDownload
from ir_datasets.util.hash import HashVerificationError

#: Environment variable naming a folder laid out as ``<family>/<lang>.json``; used as-is, no download.
DATA_ENV = "PYTERRIER_HYBRID_DATA"


class LareqaDataError(ValueError):
    """A data file is corrupt, malformed or missing."""


class LareqaDoc(NamedTuple):
    """A candidate sentence. ``doc_id`` is ``<lang>:<paragraph>-<sentence>`` (see :func:`paragraph_id`)."""
    doc_id: str
    text: str
    context: str
    lang: str

    def default_text(self) -> str:
        return self.text


class LareqaQuery(NamedTuple):
    """A question. ``query_id`` is ``<lang>:<parallel question id>``; :func:`id_lang` gives the language.

    Two fields, so PyTerrier's ``get_topics()`` names the text ``query`` with no variant argument.
    """
    query_id: str
    text: str

    def default_text(self) -> str:
        return self.text


def id_lang(some_id: str) -> str:
    """The language prefix of a doc or query id (``"de:..."`` -> ``"de"``)."""
    return some_id.split(":", 1)[0]


def parallel_id(query_id: str) -> str:
    """The language-independent question id (``"de:5733"`` -> ``"5733"``)."""
    return query_id.split(":", 1)[1]


def paragraph_id(doc_id: str) -> str:
    """The paragraph a candidate sentence belongs to (``"de:12-3"`` -> ``"de:12"``)."""
    return doc_id.rsplit("-", 1)[0]


@dataclass(frozen=True)
class ParsedLanguage:
    """One language file, parsed: its candidates, its questions and each question's answer sentence."""
    docs: Tuple[LareqaDoc, ...]
    queries: Tuple[LareqaQuery, ...]
    answers: Dict[str, str] = field(hash=False)  # parallel id -> doc_id


def parse_squad_sentences(raw: bytes, lang: str, source: str) -> ParsedLanguage:
    """Parse one LAReQA language file into candidates, questions and answer sentences.

    Args:
        raw: the file's bytes.
        lang: the file's language code, used as the id prefix.
        source: where the bytes came from, for error messages.
    """
    def bad(what: str) -> LareqaDataError:
        return LareqaDataError(
            f"{source} is not a LAReQA file (SQuAD json with per-paragraph 'sentences' and "
            f"'sentence_breaks'): {what}. Delete it and fetch it again, or fix the file.")

    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise bad(f"invalid json ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise bad("no top-level 'data' list")
    docs: List[LareqaDoc] = []
    queries: List[LareqaQuery] = []
    answers: Dict[str, str] = {}
    p_idx = 0
    for article in data["data"]:
        for para in article.get("paragraphs", ()):
            try:
                context, sentences, breaks, qas = para["context"], para["sentences"], para["sentence_breaks"], para["qas"]
            except (KeyError, TypeError) as e:
                raise bad(f"paragraph {p_idx} lacks {e}") from None
            if len(sentences) != len(breaks):
                raise bad(f"paragraph {p_idx} has {len(sentences)} sentences but {len(breaks)} sentence_breaks")
            ids = [f"{lang}:{p_idx}-{s}" for s in range(len(sentences))]
            docs.extend(LareqaDoc(i, s, context, lang) for i, s in zip(ids, sentences))
            for qa in qas:
                try:
                    qid, question, start = qa["id"], qa["question"], qa["answers"][0]["answer_start"]
                except (KeyError, IndexError, TypeError) as e:
                    raise bad(f"a question in paragraph {p_idx} lacks {e}") from None
                if qid in answers:
                    raise bad(f"question id {qid} appears twice")
                # the answer sentence is the one whose span holds the answer start
                hit = next((s for s, (b, e) in enumerate(breaks) if b <= start < e), None)
                if hit is None:
                    raise bad(f"answer_start {start} of question {qid} lies in no sentence")
                answers[qid] = ids[hit]
                queries.append(LareqaQuery(f"{lang}:{qid}", question))
            p_idx += 1
    if not docs or not queries:
        raise bad("it holds no sentences or no questions")
    return ParsedLanguage(tuple(docs), tuple(queries), answers)


@dataclass(frozen=True)
class LareqaFamily:
    """One LAReQA collection: its languages, pinned upstream location and checksums.

    Args:
        name: the ir_datasets name and the folder name under the data directory.
        md5: expected md5 per language file; its keys are the languages, in order.
        url: upstream URL pattern with a ``{lang}`` field.
        license: the data licence, for documentation.
        data_dir: a folder holding ``<name>/<lang>.json`` to read instead of ``$PYTERRIER_HYBRID_DATA``
            or a download (used for data shipped inside a package).
    """
    name: str
    md5: Dict[str, str] = field(hash=False)
    url: Optional[str]
    license: str
    data_dir: Optional[str] = None

    @property
    def langs(self) -> Tuple[str, ...]:
        return tuple(self.md5)

    def check_langs(self, langs: Sequence[str]) -> None:
        """Raise a clear error for any language this family does not have."""
        unknown = [lang for lang in langs if lang not in self.md5]
        if unknown:
            raise ValueError(f"{self.name} has no language {', '.join(map(repr, unknown))}; "
                             f"valid languages: {', '.join(self.langs)}")

    def load(self, lang: str) -> ParsedLanguage:
        """Fetch (or find locally), verify and parse one language file."""
        self.check_langs([lang])
        return _load_cached(self, lang, self.data_dir or os.environ.get(DATA_ENV))

    def download_path(self, lang: str) -> Path:
        """Where a download of ``lang`` is kept, in ir_datasets' cache (``$IR_DATASETS_HOME``)."""
        return Path(ir_datasets.util.home_path()) / "lareqa" / self.name / f"{lang}.json"

    def _fetch(self, lang: str, local: Optional[str]) -> Tuple[bytes, str]:
        expected = self.md5[lang]
        url = self.url.format(lang=lang) if self.url else None
        if local:
            path = Path(local) / self.name / f"{lang}.json"
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path} does not exist. The data folder {local} must hold {self.name}/<lang>.json for "
                    f"{', '.join(self.langs)}; point {DATA_ENV} at such a folder, or unset it to download from {url}")
            dl, source = Download([LocalDownload(path)], expected_md5=expected, stream=True), str(path)
        elif url is None:
            raise FileNotFoundError(f"{self.name} has no download URL; set {DATA_ENV} to a folder with {self.name}/<lang>.json")
        else:
            cache = self.download_path(lang)
            dl, source = Download([RequestsDownload(url)], expected_md5=expected, cache_path=str(cache)), str(cache)
        try:
            with dl.stream() as f:
                return f.read(), source
        except HashVerificationError as e:
            fix = (f"replace it with the upstream file {url}" if local
                   else "the download was discarded; retry, and check what the URL serves")
            raise LareqaDataError(f"checksum mismatch for {source}: {e}. It is corrupt or another version; {fix}") from None


@lru_cache(maxsize=None)
def _load_cached(family: LareqaFamily, lang: str, local: Optional[str]) -> ParsedLanguage:
    raw, source = family._fetch(lang, local)
    return parse_squad_sentences(raw, lang, source)


class _DictDocstore(Docstore):
    def __init__(self, docs: Sequence[LareqaDoc]):
        super().__init__(LareqaDoc)
        self._by_id = {d.doc_id: d for d in docs}

    def get_many_iter(self, doc_ids) -> Iterator[LareqaDoc]:
        return (self._by_id[i] for i in doc_ids if i in self._by_id)


class LareqaDocs(BaseDocs):
    """The candidates of some languages of a family, in language order then file order."""

    def __init__(self, family: LareqaFamily, langs: Sequence[str]):
        self._family, self._langs = family, tuple(langs)

    def _docs(self) -> List[LareqaDoc]:
        return [d for lang in self._langs for d in self._family.load(lang).docs]

    def docs_iter(self) -> Iterator[LareqaDoc]:
        return iter(self._docs())

    def docs_cls(self):
        return LareqaDoc

    def docs_store(self, field: str = "doc_id") -> Docstore:
        return _DictDocstore(self._docs())

    def docs_count(self) -> int:
        return sum(len(self._family.load(lang).docs) for lang in self._langs)

    def docs_namespace(self) -> str:
        return self._family.name

    def docs_lang(self) -> Optional[str]:
        return self._langs[0] if len(self._langs) == 1 else None


class LareqaQueries(BaseQueries):
    """The questions of some languages of a family."""

    def __init__(self, family: LareqaFamily, langs: Sequence[str]):
        self._family, self._langs = family, tuple(langs)

    def queries_iter(self) -> Iterator[LareqaQuery]:
        return (q for lang in self._langs for q in self._family.load(lang).queries)

    def queries_cls(self):
        return LareqaQuery

    def queries_namespace(self) -> str:
        return self._family.name

    def queries_lang(self) -> Optional[str]:
        return self._langs[0] if len(self._langs) == 1 else None


class LareqaQrels(BaseQrels):
    """For each question, its answer sentence in every document language that has the question."""

    def __init__(self, family: LareqaFamily, query_langs: Sequence[str], doc_langs: Sequence[str]):
        self._family, self._query_langs, self._doc_langs = family, tuple(query_langs), tuple(doc_langs)

    def qrels_iter(self) -> Iterator[GenericQrel]:
        answers = [self._family.load(lang).answers for lang in self._doc_langs]
        for lang in self._query_langs:
            for q in self._family.load(lang).queries:
                parallel = parallel_id(q.query_id)
                for ans in answers:
                    if parallel in ans:
                        yield GenericQrel(q.query_id, ans[parallel], 1)

    def qrels_cls(self):
        return GenericQrel

    def qrels_defs(self) -> Dict[int, str]:
        return {1: "the sentence holds the answer start"}


def _dataset(family: LareqaFamily, query_langs: Sequence[str], doc_langs: Sequence[str]) -> ir_datasets.Dataset:
    return ir_datasets.Dataset(
        LareqaDocs(family, doc_langs),
        LareqaQueries(family, query_langs),
        LareqaQrels(family, query_langs, doc_langs),
    )


def dataset_names(family: LareqaFamily) -> List[str]:
    """Every name :func:`register` gives a family: ``name``, ``name/x`` and ``name/x/y``."""
    names = [family.name]
    for x in family.langs:
        names.append(f"{family.name}/{x}")
        names.extend(f"{family.name}/{x}/{y}" for y in family.langs)
    return names


def register(family: LareqaFamily) -> None:
    """Register ``name`` (all vs pooled), ``name/x`` (x vs pooled) and ``name/x/y`` (x vs y).

    Safe to call more than once. Any other ``name/...`` raises an error listing the valid languages.
    """
    registry = ir_datasets.registry
    if family.name in registry._registered:
        return
    all_langs = family.langs
    registry.register(family.name, _dataset(family, all_langs, all_langs))
    for x in all_langs:
        registry.register(f"{family.name}/{x}", _dataset(family, [x], all_langs))
        for y in all_langs:
            registry.register(f"{family.name}/{x}/{y}", _dataset(family, [x], [y]))

    def unknown(name: str, groups: Tuple[str, ...]):
        family.check_langs([p for p in groups[0].split("/") if p])
        raise KeyError(f"{name} is not a dataset; use {family.name}, {family.name}/<x> or {family.name}/<x>/<y>")

    registry.register_pattern(rf"^{family.name}/(.*)$", unknown)
