"""Encoding speed: BiEncoder against sentence-transformers on the same checkpoint, texts and batch size.

    python benchmarks/encode.py --model .cache/me5 [--lang de] [--batch-size 32]

Texts: the XQuAD-R candidates of one language (needs PYTERRIER_HYBRID_DATA or ../shared/data).
Each side encodes once to warm up on 64 texts, then the full set; docs/s and the ratio are printed.
"""
import argparse
import os
import time
from pathlib import Path

import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--lang", default="de")
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args()
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    os.environ.setdefault("PYTERRIER_HYBRID_DATA", str(shared))

    import ir_datasets
    import torch
    from sentence_transformers import SentenceTransformer

    import pyterrier_hybrid as ph

    texts = [d.text for d in ir_datasets.load(f"xquad-r/{args.lang}/{args.lang}").docs_iter()]
    ours = ph.BiEncoder(args.model, batch_size=args.batch_size, device="cpu")
    st = SentenceTransformer(args.model, device="cpu")
    st.max_seq_length = ours.settings.doc_max_length
    print(f"{len(texts)} xquad-r/{args.lang} candidates, batch {args.batch_size}, torch threads {torch.get_num_threads()}")

    def run_ours(t):
        return ours.encode_docs(t)

    def run_st(t):
        return st.encode(t, prompt_name="passage", batch_size=args.batch_size, normalize_embeddings=True)

    rates = {}
    for name, fn in [("sentence-transformers", run_st), ("pyterrier-hybrid BiEncoder", run_ours)]:
        fn(texts[:64])
        start = time.perf_counter()
        vecs = fn(texts)
        rates[name] = len(texts) / (time.perf_counter() - start)
        print(f"{name:28s} {rates[name]:8.1f} docs/s")
        rates[name + " vecs"] = vecs
    cos = np.sum(rates["sentence-transformers vecs"] * rates["pyterrier-hybrid BiEncoder vecs"], axis=1)
    print(f"min cosine between the two encodings: {cos.min():.6f}")
    print(f"ratio (ours / sentence-transformers): {rates['pyterrier-hybrid BiEncoder'] / rates['sentence-transformers']:.2f}")


if __name__ == "__main__":
    main()
