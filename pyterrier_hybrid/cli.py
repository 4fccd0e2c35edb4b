"""``pyterrier-hybrid``: train, merge, export a checkpoint, index and evaluate (the LAReQA protocol, or any
ir_datasets collection) from the command line (a thin layer over the library)."""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

from .atomic import refuse_existing
from .model.encoder import DOC_TEXTS, BiEncoder
from .model.model_dir import TRAINING_CONFIG, resolve_model
from .model.compiled import BACKENDS
from .model.precision import DTYPES
from .training.samplers import SAMPLINGS


def load_encoder(args: argparse.Namespace, verbose: bool = True):
    """A BiEncoder whose settings follow the one rule of :func:`~pyterrier_hybrid.model.model_dir.resolve_settings`."""
    return BiEncoder(args.model, doc_text=args.doc_text, batch_size=args.batch_size, dtype=args.dtype, verbose=verbose,
                     query_max_length=args.query_max_length, doc_max_length=args.doc_max_length, backend=args.backend)


def _langs(value: Optional[str]) -> Optional[List[str]]:
    return [x.strip() for x in value.split(",") if x.strip()] if value else None


def cmd_evaluate(args: argparse.Namespace) -> None:
    from ir_datasets_ext import FAMILIES

    if args.dataset not in FAMILIES:
        raise ValueError(f"--dataset {args.dataset!r}: evaluate runs our protocols ({', '.join(sorted(FAMILIES))}); "
                         "for any ir_datasets collection use pyterrier-hybrid evaluate-collection, e.g. "
                         "evaluate-collection --dataset 'miracl/{lang}/dev' --langs sw,te,fi")
    from .evaluation.protocol import run_protocol
    from .evaluation.rankers import DenseRanker, RetrieverRanker
    from .evaluation.report import to_markdown

    if args.bm25 and args.language_removal:
        raise ValueError("--language-removal applies to dense vectors; leave it out with --bm25")
    if args.update_card:  # say so before the long evaluation, not after
        if args.bm25:
            raise ValueError("--update-card: BM25 has no model card; leave out --update-card")
        from .model.model_card import check_own_card
        check_own_card(resolve_model(args.model))
    with tempfile.TemporaryDirectory(prefix="pyterrier-hybrid-bm25-") as work:  # BM25's indexes, removed after
        if args.bm25:
            from .evaluation.sparse import bm25_builder
            ranker = RetrieverRanker(bm25_builder(work, log=Path(args.out) / "pisa.log"))
            name = "BM25 (pisa)"
        else:
            ranker = DenseRanker(load_encoder(args), cache_dir=args.cache_dir, language_removal=args.language_removal,
                                 lir_k=args.lir_k)
            name = args.model
        report = run_protocol(ranker, args.dataset, langs=_langs(args.langs), max_queries=args.max_queries,
                              holdout=args.holdout, out_dir=args.out, name=name)
    print(to_markdown(report))
    print(f"wrote {Path(args.out) / 'report.json'}, report.md and matrix.png" + (", pisa.log" if args.bm25 else ""))
    if args.update_card:
        from .model.model_card import append_evaluation
        card = append_evaluation(args.model, report, command=shlex.join(["pyterrier-hybrid", *sys.argv[1:]]))
        print(f"added the summary to {card}")


def cmd_evaluate_collection(args: argparse.Namespace) -> None:
    from .evaluation.collection_eval import collection_markdown, evaluate_collection, parse_measures

    if args.with_bm25 and args.bm25:
        raise ValueError("--with-bm25 adds BM25 beside --model; with --bm25 alone BM25 is the only system")
    report = evaluate_collection(args.dataset, _langs(args.langs), encoder=load_encoder(args, verbose=False) if args.model
                                 else None, bm25=args.bm25 or args.with_bm25,
                                 measures=parse_measures(args.measures) if args.measures else None, out_dir=args.out,
                                 index_dir=args.index_dir, allow_other_encoder=args.allow_other_encoder)
    print(collection_markdown(report))
    print(f"wrote {Path(args.out) / 'report.json'} and report.md")


def cmd_index(args: argparse.Namespace) -> None:
    """Index a corpus; under ``torchrun --nproc-per-node N`` each process encodes a share (see index_corpus) on its
    local rank's GPU (the encoder's default device)."""
    import pyterrier as pt

    from .index import index_corpus

    refuse_existing(args.out, args.overwrite)
    try:
        dataset = pt.get_dataset(f"irds:{args.dataset}")
    except KeyError:
        raise KeyError(f"no ir_datasets dataset {args.dataset!r}; ours are xquad-r, mlqa-r and lareqa-demo, with "
                       "/<query lang>/<doc lang> subsets (e.g. xquad-r/de/en), and any other ir_datasets name works") from None
    encoder = load_encoder(args, verbose=False)  # one bar, the index's: an encoder's bar per chunk would nest in it
    index = index_corpus(encoder, dataset, args.out, overwrite=args.overwrite, verbose=True, shard_size=args.shard_size,
                         index_type=args.index_type, language_removal=args.language_removal, lir_k=args.lir_k)
    if index is None:  # a rank other than 0: its shards are written, rank 0 assembles
        return
    removal = index.language_identity.describe() if index.language_identity else None
    print(json.dumps({"path": args.out, "docs": len(index), "dim": index.dim, "langs": index.langs,
                      "index_type": index.index_type, "language_removal": removal}))


def cmd_merge(args: argparse.Namespace) -> None:
    from .model.merge import merge_models

    out = merge_models(args.a, args.b, args.weight, args.out, overwrite=args.overwrite)
    print(json.dumps({"path": str(out), "a": args.a, "b": args.b, "weight": args.weight}))


def cmd_export_checkpoint(args: argparse.Namespace) -> None:
    from .training.trainer import export_checkpoint

    out = export_checkpoint(args.run, args.out, overwrite=args.overwrite)
    run = json.loads((out / TRAINING_CONFIG).read_text(encoding="utf-8"))
    print(json.dumps({"path": str(out), "run": args.run, "step": run["exported"]["step"],
                      "steps": run["train"]["steps"]}))


def cmd_train(args: argparse.Namespace) -> None:
    import os

    import torch
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        _train(args)
    finally:
        # an undestroyed process group can abort the process at exit ("terminate called without an active exception")
        if dist.is_initialized():
            dist.destroy_process_group()


def _train(args: argparse.Namespace) -> None:
    import torch

    from .training import TrainConfig, Trainer, load_source, make_sampler, split_validation
    from .training.samplers import parse_mix

    if args.mix and args.sampling not in (None, "mix"):
        raise ValueError(f"--mix draws each batch's kind; leave out --sampling {args.sampling} (or give --sampling mix)")
    if args.sampling is None and not args.mix:
        raise ValueError("give --sampling (xx, xy, hybrid, multi) or --mix (e.g. xx=0.35,xy=0.35,multi=0.3)")
    if args.sampling == "mix" and not args.mix:
        raise ValueError("--sampling mix needs --mix, e.g. --mix xx=0.35,xy=0.35,multi=0.3")
    sampling, mix = ("mix", parse_mix(args.mix)) if args.mix else (args.sampling, None)
    if args.align_weight < 0:
        raise ValueError(f"--align-weight must be 0 or more, got {args.align_weight}")
    if args.align_queries and not args.align_weight:
        raise ValueError("--align-queries adds to the alignment term: give --align-weight above 0 too")
    kw = {"positive_langs": args.positive_langs, "mix": mix, "align": args.align_weight > 0,
          "align_queries": args.align_queries}
    resolve_model(args.model)  # a wrong path fails before the data is read
    langs = _langs(args.langs)
    sources = [load_source(spec, langs) for spec in args.data]
    val_sampler = None
    if args.val_fraction:
        sources, val_sources = zip(*(split_validation(s, args.val_fraction) for s in sources))
        val_sampler = make_sampler(sampling, list(val_sources), args.batch_size, args.alpha, args.seed + 1, **kw)
    sampler = make_sampler(sampling, list(sources), args.batch_size, args.alpha, args.seed, **kw)
    encoder = BiEncoder(args.model, query_max_length=args.query_max_length, doc_max_length=args.doc_max_length,
                        dtype="float32")
    config = TrainConfig(steps=args.steps, lr=args.lr, weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio,
                         temperature=args.temperature, grad_cache_chunk=args.grad_cache_chunk, amp=args.amp,
                         freeze_embeddings=args.freeze_embeddings,
                         checkpoint_every=args.checkpoint_every, eval_every=args.eval_every, patience=args.patience,
                         align_weight=args.align_weight, align_queries=args.align_queries)
    torch.manual_seed(args.seed)
    trainer = Trainer(encoder, sampler, args.out, config, val_sampler=val_sampler, keep_checkpoint=args.keep_checkpoint)
    out = trainer.train(resume=args.resume, overwrite=args.overwrite)
    if trainer.rank == 0 and trainer.finished_before:
        print(f"{out} is a finished run with this configuration; nothing to do")
    elif trainer.rank == 0:
        print(f"model written to {out} (log: {out / 'train_log.jsonl'})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyterrier-hybrid", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("evaluate", help="run the full Mo./Cr./Mul. protocol of a LAReQA-format dataset (xquad-r, "
                                         "mlqa-r) and write a report")
    ev.add_argument("--dataset", required=True, help="xquad-r, mlqa-r or lareqa-demo")
    _system_args(ev, "directory for report.json, report.md and matrix.png")
    ev.add_argument("--max-queries", type=int, help="keep the first N question ids, in every language")
    ev.add_argument("--holdout", type=float, metavar="FRACTION",
                    help="only the question ids that train --val-fraction FRACTION holds out (choose settings on them)")
    ev.add_argument("--cache-dir", help="reuse encoded vectors across runs from this directory")
    ev.add_argument("--update-card", action="store_true",
                    help="add the report's summary to the model directory's model card (README.md)")
    _removal_args(ev)
    ev.set_defaults(func=cmd_evaluate)

    ec = sub.add_parser("evaluate-collection", help="evaluate on any ir_datasets collection (one or several "
                                                    "languages) with ir_measures, and write a report")
    ec.add_argument("--dataset", required=True,
                    help="an ir_datasets name (irds: optional), with {lang} for several corpora, e.g. "
                         "'miracl/{lang}/dev' --langs sw,te,fi")
    _system_args(ec, "directory for report.json and report.md")
    ec.add_argument("--measures", help="ir_measures measures, e.g. nDCG@10,R@100 (default: the benchmark's usual "
                                       "ones: MIRACL nDCG@10,R@100; Mr.TyDi RR@100,R@100; NeuCLIR nDCG@20,R@1000)")
    ec.add_argument("--with-bm25", action="store_true", help="evaluate BM25 (pisa) beside --model")
    ec.add_argument("--index-dir", help="keep each language's dense index here and reuse it (with the same model)")
    ec.add_argument("--allow-other-encoder", action="store_true",
                    help="reuse an index in --index-dir that another model encoded (its vectors, this model's queries)")
    ec.set_defaults(func=cmd_evaluate_collection)

    tr = sub.add_parser("train", help="train a dual encoder with X-X-mono, X-Y, hybrid, multi-positive or mixed batches")
    tr.add_argument("--sampling", choices=SAMPLINGS, help="the batch kind (or give --mix)")
    tr.add_argument("--alpha", type=float, default=0.5, help="hybrid: probability of an X-X-mono batch")
    tr.add_argument("--mix", help="each batch's kind drawn by probability, e.g. xx=0.35,xy=0.35,multi=0.3")
    tr.add_argument("--positive-langs", type=int, default=2, metavar="K",
                    help="multi: each query's answer in K languages, its own among them")
    tr.add_argument("--align-weight", type=float, default=0.0, metavar="BETA",
                    help="add BETA x translation ranking between parallel passages of the same id (0: none)")
    tr.add_argument("--align-queries", action="store_true", help="the alignment term between parallel queries too")
    tr.add_argument("--model", required=True, help="starting model: directory or Hugging Face name")
    tr.add_argument("--data", action="append", required=True,
                    help="a .jsonl file, a LAReQA family (mlqa-r), a folder named after one, or an ir_datasets "
                         "pattern with {lang} (mmarco/v2/{lang}/train); repeat for several sources")
    tr.add_argument("--langs", help="comma-separated training languages (default: all in the data)")
    tr.add_argument("--out", required=True)
    tr.add_argument("--steps", type=int, required=True)
    tr.add_argument("--batch-size", type=int, default=100, help="global batch size (split over torchrun processes)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint (a finished run: nothing to do)")
    tr.add_argument("--overwrite", action="store_true", help="replace a finished model in OUT")
    tr.add_argument("--keep-checkpoint", action="store_true",
                    help="keep OUT/checkpoint (the resume state, about 3x the model's size) after the run finishes")
    tr.add_argument("--lr", type=float, default=3e-5)
    tr.add_argument("--weight-decay", type=float, default=0.01)
    tr.add_argument("--warmup-ratio", type=float, default=0.1)
    tr.add_argument("--temperature", type=float, default=0.05)
    tr.add_argument("--grad-cache-chunk", type=int, help="encode in sub-batches of this size with gradient caching")
    tr.add_argument("--amp", choices=["bf16", "fp16"],
                    help="mixed precision: bf16 (CPU with native bf16, or CUDA) or fp16 (CUDA)")
    tr.add_argument("--freeze-embeddings", action="store_true",
                    help="keep the word-embedding matrix fixed (most of the parameters; cheaper CPU steps)")
    tr.add_argument("--query-max-length", type=int, default=64)
    tr.add_argument("--doc-max-length", type=int, default=128)
    tr.add_argument("--checkpoint-every", type=int, default=100)
    tr.add_argument("--val-fraction", type=float, default=0.0, help="hold out this share of items for the validation loss")
    tr.add_argument("--eval-every", type=int, default=0, help="validation loss every N steps (early stopping)")
    tr.add_argument("--patience", type=int, default=3)
    tr.set_defaults(func=cmd_train)

    mg = sub.add_parser("merge", help="interpolate the weights of two models fine-tuned from the same start")
    mg.add_argument("a", help="model A: directory or Hugging Face name; --weight is its share")
    mg.add_argument("b", help="model B")
    mg.add_argument("--weight", type=float, required=True, help="λ in [0, 1]: every parameter is λ·A + (1 − λ)·B")
    mg.add_argument("--out", required=True, help="the merged model's directory")
    mg.add_argument("--overwrite", action="store_true")
    mg.set_defaults(func=cmd_merge)

    ex = sub.add_parser("export-checkpoint", help="write the weights of a run's kept checkpoint (train "
                                                  "--keep-checkpoint) as a model directory")
    ex.add_argument("run", help="the run's --out directory, holding checkpoint/state.pt")
    ex.add_argument("--out", required=True, help="the exported model's directory")
    ex.add_argument("--overwrite", action="store_true")
    ex.set_defaults(func=cmd_export_checkpoint)

    ix = sub.add_parser("index", help="encode an ir_datasets corpus into a FaissIndex")
    ix.add_argument("--dataset", required=True, help="an ir_datasets name, e.g. xquad-r or mlqa-r/en/de")
    ix.add_argument("--model", required=True)
    ix.add_argument("--out", required=True)
    ix.add_argument("--index-type", default="flat",
                    help="flat (exact), hnsw, ivf, or a faiss factory string such as IVF4096,PQ48 or HNSW32")
    ix.add_argument("--overwrite", action="store_true")
    ix.add_argument("--shard-size", type=int,
                    help="documents per shard: what a killed run redoes, and the unit torchrun processes share "
                         "(default: pyterrier_hybrid.index.sharded.SHARD_SIZE)")
    _removal_args(ix)
    _encoder_args(ix)
    ix.set_defaults(func=cmd_index)
    return parser


def _system_args(parser: argparse.ArgumentParser, out: str) -> None:
    """The options both evaluations share: the system (a model or BM25), how it encodes, the languages, --out."""
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--model", help="local model directory or Hugging Face name")
    who.add_argument("--bm25", action="store_true", help="evaluate BM25 (pyterrier-pisa) instead of a model")
    parser.add_argument("--out", required=True, help=out)
    parser.add_argument("--langs", help="comma-separated languages to restrict the evaluation to, e.g. ar,de,en")
    _encoder_args(parser)


def _encoder_args(parser: argparse.ArgumentParser) -> None:
    """How a model encodes: passage text, batching, precision and token limits."""
    parser.add_argument("--doc-text", choices=DOC_TEXTS, default=DOC_TEXTS[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--dtype", choices=DTYPES, default="auto",
                        help="auto: bf16 where the hardware does it natively, else fp32")
    parser.add_argument("--backend", choices=[*BACKENDS, "auto"], default=BACKENDS[0],
                        help="torch; openvino (compiled for the CPU, at --dtype's precision); openvino-int8 (NNCF "
                             "static int8, opt-in: another model); auto: openvino where installed, else torch. The "
                             "compiled ones need pip install pyterrier-hybrid[fast]")
    parser.add_argument("--query-max-length", type=int, help="query token limit (default: the model's saved limit)")
    parser.add_argument("--doc-max-length", type=int,
                        help="passage token limit (default: the model's saved limit; our trained models save their "
                             "start's, not the training length)")


def _removal_args(parser: argparse.ArgumentParser) -> None:
    from .index.language_identity import METHODS

    parser.add_argument("--language-removal", choices=METHODS,
                        help="remove language identity, estimated from the indexed documents: center (subtract each "
                             "language's mean document vector; queries by their language) or lir (project out the "
                             "language means' top directions)")
    parser.add_argument("--lir-k", type=int, help="lir: directions to project out (default: languages - 1)")


def main(argv: Optional[List[str]] = None) -> None:
    args = build_parser().parse_args(argv)
    import transformers

    transformers.utils.logging.disable_progress_bar()  # the "Loading weights" bar of every model load
    try:
        args.func(args)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e  # str(KeyError) adds quotes
        print(f"pyterrier-hybrid {args.command}: error: {message}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
