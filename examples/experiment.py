"""A small real experiment: a multilingual dense retriever against BM25, monolingual and cross-lingual.

One FaissIndex holds the candidates of two languages; language filters turn it into the
x->x (monolingual) and x->y (cross-lingual) corpora. BM25 comes from pyterrier-pisa.

    python examples/experiment.py                      # picks the best data and model it can find
    python examples/experiment.py --dataset xquad-r --query-lang de --doc-lang en --model /path/to/me5

Data: $PYTERRIER_HYBRID_DATA, else ../shared/data when present, else the bundled lareqa-demo.
Model: --model, else $PYTERRIER_HYBRID_ME5, else .cache/me5 (built by ../shared/tools/make_offline_me5.py
when that tool is present), else a tiny random model (the pipeline runs; its numbers mean nothing).
"""
import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def pick_data() -> str:
    if os.environ.get("PYTERRIER_HYBRID_DATA"):
        return "xquad-r"
    if (SHARED / "data" / "xquad-r" / "en.json").is_file():
        os.environ["PYTERRIER_HYBRID_DATA"] = str(SHARED / "data")
        return "xquad-r"
    return "lareqa-demo"


def pick_model(workdir: Path) -> str:
    if os.environ.get("PYTERRIER_HYBRID_ME5"):
        return os.environ["PYTERRIER_HYBRID_ME5"]
    cached = REPO / ".cache" / "me5"
    tool = SHARED / "tools" / "make_offline_me5.py"
    if not (cached / "model.safetensors").is_file() and tool.is_file():
        print(f"building multilingual-e5-small into {cached} with {tool} ...")
        subprocess.run([sys.executable, str(tool), str(cached)], check=True)
    if (cached / "model.safetensors").is_file():
        return str(cached)
    from pyterrier_hybrid.tiny_model import make_tiny_model
    print("NOTE: no real model found; using a tiny random model, so the scores below are meaningless.")
    return str(make_tiny_model(workdir / "tiny-model"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", help="xquad-r, mlqa-r or lareqa-demo (default: best available)")
    parser.add_argument("--query-lang", default="de")
    parser.add_argument("--doc-lang", default="en")
    parser.add_argument("--model", help="Hugging Face name or directory")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    import pyterrier as pt
    from ir_measures import AP, RR, nDCG
    from pyterrier_pisa import PisaIndex

    import pyterrier_hybrid as ph

    work = Path(tempfile.mkdtemp(prefix="pyterrier-hybrid-"))
    name = args.dataset or pick_data()
    model = args.model or pick_model(work)
    x, y = args.query_lang, args.doc_lang
    print(f"dataset {name}, queries in {x}, documents in {x} and {y}, model {model}")

    encoder = ph.BiEncoder(model, batch_size=args.batch_size, verbose=True)
    index = ph.FaissIndex(work / "dense")
    docs = [d for lang in dict.fromkeys([x, y]) for d in pt.get_dataset(f"irds:{name}/{x}/{lang}").get_corpus_iter(verbose=False)]
    (encoder.doc_encoder() >> index).index(docs)

    for lang in dict.fromkeys([x, y]):
        ds = pt.get_dataset(f"irds:{name}/{x}/{lang}")
        bm25_index = PisaIndex(str(work / f"bm25-{lang}"), stemmer="none", text_field="text")
        bm25_index.index(ds.get_corpus_iter(verbose=False))
        dense = index.retriever(encoder, num_results=None, langs=[lang])  # full ranking for AP
        result = pt.Experiment(
            [dense, bm25_index.bm25(num_results=10_000)],
            ds.get_topics(), ds.get_qrels(),
            eval_metrics=[AP, nDCG @ 10, RR],
            names=["dense (BiEncoder + FaissIndex)", "BM25 (pisa)"],
        )
        kind = "monolingual" if lang == x else "cross-lingual"
        print(f"\n{name}/{x}/{lang} ({kind}):\n{result.to_string(index=False)}")


if __name__ == "__main__":
    main()
