"""A small real experiment: a multilingual dense retriever against BM25, monolingual and cross-lingual.

One FaissIndex holds the candidates of two languages; language filters turn it into the
x->x (monolingual) and x->y (cross-lingual) corpora. BM25 comes from pyterrier-pisa.

    python examples/experiment.py                      # XQuAD-R and multilingual-e5-small, downloaded if need be
    python examples/experiment.py --dataset mlqa-r --query-lang de --doc-lang en --model /path/to/model

What it runs on, first match wins (it prints which, and why):

Data:  1. --dataset NAME (any registered LAReQA collection: xquad-r, mlqa-r, lareqa-demo);
       2. XQuAD-R from the local copy in $PYTERRIER_HYBRID_DATA (a folder with xquad-r/<lang>.json);
       3. XQuAD-R downloaded before into ir_datasets' cache ($IR_DATASETS_HOME);
       4. XQuAD-R downloaded now from its pinned upstream commit (md5-checked), when the URL answers;
       5. no network: the bundled lareqa-demo (5 questions per language).
Model: 1. --model NAME_OR_DIR;
       2. the local copy in $PYTERRIER_HYBRID_ME5 (a model directory);
       3. intfloat/multilingual-e5-small from the Hugging Face cache ($HF_HUB_CACHE);
       4. intfloat/multilingual-e5-small downloaded from the Hub, when it answers (not with HF_HUB_OFFLINE=1);
       5. no network: a tiny random model (the pipeline runs; its numbers mean nothing).

The console shows the choices, one progress bar for encoding the candidates and one table per setting;
the data download log, pyterrier-pisa's indexing log and the query-encoding bars go to a log file.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence
from urllib.parse import urlsplit

from ir_datasets_ext import DATA_ENV, DEMO, XQUAD_R, LareqaFamily
from pyterrier_hybrid.evaluation.quiet import console_to

MODEL_ENV = "PYTERRIER_HYBRID_ME5"
HUB_MODEL = "intfloat/multilingual-e5-small"
DOWNLOAD = XQUAD_R  # the collection fetched when there is no local copy
TINY = "tiny random model"
TINY_PREFIXES = {"query_prefix": "query: ", "doc_prefix": "passage: "}  # the E5 prefixes it stands in for
PROBE_TIMEOUT = 3.0  # seconds; a probe that gets no answer by then counts as no network


@dataclass(frozen=True)
class Choice:
    """What to run on: ``value`` is a dataset name or a model name/directory; ``fallback`` marks the offline demo."""
    value: str
    reason: str
    fallback: bool = False


def reachable(url: str, timeout: float = PROBE_TIMEOUT) -> Optional[str]:
    """``None`` when ``url`` answers a HEAD request within ``timeout`` seconds (any HTTP status: the network
    is there), otherwise why not. Runs in a daemon thread, so a hanging DNS lookup cannot stall the caller."""
    host = urlsplit(url).netloc
    outcome = [f"no answer from {host} within {timeout:g} s"]

    def probe() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
            outcome[0] = None
        except urllib.error.HTTPError:
            outcome[0] = None
        except (OSError, ValueError) as e:
            outcome[0] = f"cannot reach {host} ({getattr(e, 'reason', e)})"

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0]


def pick_data(flag: Optional[str], langs: Sequence[str], family: LareqaFamily = XQUAD_R,
              timeout: float = PROBE_TIMEOUT) -> Choice:
    """The collection to run on, and why (the order in this module's docstring)."""
    if flag:
        return Choice(flag, "given by --dataset")
    local = os.environ.get(DATA_ENV)
    if local:
        return Choice(family.name, f"local copy in ${DATA_ENV} ({local})")
    missing = [lang for lang in dict.fromkeys(langs) if not family.download_path(lang).is_file()]
    if not missing:
        return Choice(family.name, f"downloaded before, in {family.download_path(langs[0]).parent}")
    url = family.url.format(lang=missing[0])
    why_not = reachable(url, timeout)
    if why_not is None:
        return Choice(family.name, f"downloading {', '.join(missing)} from {urlsplit(url).netloc} (md5-checked)")
    return Choice(DEMO.name, f"the bundled demo; no network: {why_not}", fallback=True)


def pick_model(flag: Optional[str], name: str = HUB_MODEL, timeout: float = PROBE_TIMEOUT) -> Choice:
    """The model to encode with, and why (the order in this module's docstring)."""
    from huggingface_hub import constants, try_to_load_from_cache

    if flag:
        return Choice(flag, "given by --model")
    if os.environ.get(MODEL_ENV):
        return Choice(os.environ[MODEL_ENV], f"local copy in ${MODEL_ENV}")
    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return Choice(name, f"from the Hugging Face cache ({constants.HF_HUB_CACHE})")
    if constants.HF_HUB_OFFLINE:
        return Choice(TINY, f"HF_HUB_OFFLINE is set and {name} is not in the cache {constants.HF_HUB_CACHE}", fallback=True)
    url = f"{constants.ENDPOINT}/api/models/{name}"
    why_not = reachable(url, timeout)
    if why_not is None:
        return Choice(name, f"downloading from {urlsplit(url).netloc}")
    return Choice(TINY, f"no network: {why_not}", fallback=True)


def tiny_model(path: Path) -> str:
    from pyterrier_hybrid.testing import make_tiny_model

    return str(make_tiny_model(path))


def compare(pt, ds, topics, encoder, index, lang: str, work: Path):
    """``pt.Experiment`` of the dense retriever and BM25 on one setting (``ds``: ``irds:<name>/<x>/<lang>``)."""
    from ir_measures import AP, RR, nDCG
    from pyterrier_pisa import PisaIndex

    bm25_index = PisaIndex(str(work / f"bm25-{lang}"), stemmer="none", text_field="text")
    bm25_index.index(ds.get_corpus_iter(verbose=False))
    dense = index.retriever(encoder, num_results=None, langs=[lang])  # full ranking for AP
    return pt.Experiment(
        [dense, bm25_index.bm25(num_results=10_000)], topics, ds.get_qrels(),
        eval_metrics=[AP, nDCG @ 10, RR], names=["dense (BiEncoder + FaissIndex)", "BM25 (pisa)"])


def notes(data: Choice, model: Choice) -> List[str]:
    """What a fallback means for the numbers, and how to get the real run."""
    out = []
    if data.fallback:
        out.append(f"NOTE: set ${DATA_ENV} to a folder with {DOWNLOAD.name}/<lang>.json, or connect, to run on {DOWNLOAD.name}.")
    if model.fallback:
        out.append(f"NOTE: a random model's scores mean nothing; pass --model, set ${MODEL_ENV}, or connect, to use {HUB_MODEL}.")
    return out


def table(result) -> str:
    """A ``pt.Experiment`` frame as text: system names on the left, one column of three decimals per measure."""
    measures = [c for c in result.columns if c != "name"]
    width = int(result["name"].str.len().max()) + 2
    lines = [f"{'system':<{width}}" + "".join(f"{m:>9}" for m in measures)]
    lines += [f"{row['name']:<{width}}" + "".join(f"{row[m]:9.3f}" for m in measures) for _, row in result.iterrows()]
    return "\n".join(lines)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", help="a LAReQA collection: xquad-r, mlqa-r or lareqa-demo (default: see above)")
    parser.add_argument("--query-lang", default="de")
    parser.add_argument("--doc-lang", default="en")
    parser.add_argument("--model", help="Hugging Face name or directory (default: see above)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--log", default=str(Path(tempfile.gettempdir()) / "pyterrier-hybrid-experiment.log"),
                        help="the log file (data download, BM25 indexing, query encoding), replaced by each run")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    x, langs = args.query_lang, list(dict.fromkeys([args.query_lang, args.doc_lang]))
    data, model = pick_data(args.dataset, langs, DOWNLOAD), pick_model(args.model)

    import transformers
    from huggingface_hub.utils import enable_progress_bars

    transformers.utils.logging.disable_progress_bar()  # the weight-loading bar...
    enable_progress_bars()  # ...but a first download from the Hub still shows its progress
    log = Path(args.log)
    log.unlink(missing_ok=True)  # one log, replaced by each run
    print(f"Dense retrieval against BM25: {x} questions over {' and '.join(langs)} candidates")
    print(f"  data:  {data.value} - {data.reason}")
    print(f"  model: {model.value} - {model.reason}")
    print(f"  log:   {log} (data download, BM25 indexing, query encoding)")
    for note in notes(data, model):
        print(note)
    with tempfile.TemporaryDirectory(prefix="pyterrier-hybrid-") as tmp:  # the indexes (and a tiny model): removed
        run(args, data, model, Path(tmp), log)


def run(args: argparse.Namespace, data: Choice, model: Choice, work: Path, log: Path) -> None:
    """Index, then one ``pt.Experiment`` table per setting; ``work`` holds the indexes."""
    import pyterrier as pt

    import pyterrier_hybrid as ph

    x, langs = args.query_lang, list(dict.fromkeys([args.query_lang, args.doc_lang]))
    encoder = ph.BiEncoder(tiny_model(work / "tiny-model") if model.fallback else model.value,
                           batch_size=args.batch_size, verbose=True, **(TINY_PREFIXES if model.fallback else {}))
    index = ph.FaissIndex(work / "dense")
    with console_to(log):
        docs = [d for lang in langs for d in pt.get_dataset(f"irds:{data.value}/{x}/{lang}").get_corpus_iter(verbose=False)]
    print(f"encoding {len(docs)} candidates:", flush=True)
    (encoder.doc_encoder() >> index).index(docs, batch_size=len(docs))  # one encoder call: one progress bar

    for lang in langs:
        ds = pt.get_dataset(f"irds:{data.value}/{x}/{lang}")
        topics = ds.get_topics()
        kind = "monolingual" if lang == x else "cross-lingual"
        n_docs = sum(d["lang"] == lang for d in docs)
        print(f"\n=== {data.value}/{x}/{lang}  {kind}: {len(topics)} questions in {x}, {n_docs} candidates in {lang} ===",
              flush=True)  # shown while the queries are encoded
        with console_to(log):
            result = compare(pt, ds, topics, encoder, index, lang, work)
        print(table(result))

if __name__ == "__main__":
    main()
