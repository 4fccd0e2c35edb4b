#!/usr/bin/env bash
# The CUDA path in a few minutes: train 200 steps with --amp bf16, index and evaluate an XQuAD-R subset, and
# time encoding against sentence-transformers on the same GPU. Run it from the repository root on a machine
# with a GPU, torch with CUDA, and this package installed (pip install -e '.[dev]' sentence-transformers):
#
#     bash benchmarks/gpu_check.sh [MODEL_DIR] [OUT_DIR]
#
# MODEL_DIR defaults to .cache/me5 (made offline by ../shared/tools/make_offline_me5.py when missing);
# OUT_DIR defaults to runs/gpu-check. The data comes from $PYTERRIER_HYBRID_DATA, else ../shared/data.
# Everything it measures ends in OUT_DIR/gpu_check.json; copy that to benchmarks/results/gpu-check.json.
set -euo pipefail
MODEL=${1:-.cache/me5}
OUT=${2:-runs/gpu-check}
export PYTERRIER_HYBRID_DATA=${PYTERRIER_HYBRID_DATA:-$(cd .. && pwd)/shared/data}
mkdir -p "$OUT"

python - <<'EOF'
import torch
if not torch.cuda.is_available():
    raise SystemExit("gpu_check.sh: torch sees no CUDA device; run it on a GPU machine with a CUDA build of torch")
print("device:", torch.cuda.get_device_name(0), "| torch", torch.__version__, "| bf16:", torch.cuda.is_bf16_supported())
EOF
[ -f "$MODEL/config.json" ] || python ../shared/tools/make_offline_me5.py "$MODEL"

step() { echo "== $1"; }
seconds() { python -c "import time; print(time.time())"; }

step "train: 200 steps, batch 64, --amp bf16, hybrid alpha 0.5, on MLQA-R"
t0=$(seconds)
python -m pyterrier_hybrid.cli train --sampling hybrid --alpha 0.5 --model "$MODEL" --data "$PYTERRIER_HYBRID_DATA/mlqa-r" \
    --out "$OUT/model" --steps 200 --batch-size 64 --amp bf16 --doc-max-length 96 --checkpoint-every 100 --seed 0
t1=$(seconds)

step "index XQuAD-R (all 13,014 candidates) on the GPU"
python -m pyterrier_hybrid.cli index --dataset xquad-r --model "$OUT/model" --out "$OUT/index" --overwrite --batch-size 256
t2=$(seconds)

step "evaluate on the first 200 XQuAD-R questions, every setting"
python -m pyterrier_hybrid.cli evaluate --dataset xquad-r --max-queries 200 --model "$OUT/model" --out "$OUT/eval" \
    --batch-size 256
t3=$(seconds)

step "encoding: BiEncoder bf16 / fp32 against sentence-transformers fp32 / fp16, same GPU, same texts"
python - "$MODEL" "$OUT" "$t0" "$t1" "$t2" "$t3" <<'EOF'
import json, sys, time
from pathlib import Path
import numpy as np
import torch
from pyterrier_hybrid import BiEncoder, load_split

model, out, t0, t1, t2, t3 = sys.argv[1], Path(sys.argv[2]), *map(float, sys.argv[3:])
split = load_split("xquad-r")
texts = list(split.texts)
result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
          "train_200_steps_s": round(t1 - t0, 1), "index_xquad_r_s": round(t2 - t1, 1),
          "evaluate_200_questions_s": round(t3 - t2, 1)}
log = [json.loads(line) for line in (out / "model" / "train_log.jsonl").read_text().splitlines()]
result["train_loss_first_last"] = [log[0]["loss"], log[-1]["loss"]]
result["train_s_per_step_after_5"] = round(float(np.mean([r["seconds"] for r in log[5:]])), 4)
report = json.loads((out / "eval" / "report.json").read_text())
result["eval_map"] = report["mAP"]
result["eval_rank_distance"] = report["rank_distance"]["macro"]

def timed(encode):
    encode(texts[:256])
    torch.cuda.synchronize()
    start = time.perf_counter()
    vecs = encode(texts)
    torch.cuda.synchronize()
    return len(texts) / (time.perf_counter() - start), np.asarray(vecs, dtype=np.float32)

speeds = {}
for dtype in ("bfloat16", "float32"):
    enc = BiEncoder(model, dtype=dtype, batch_size=256, device="cuda")
    speeds[f"ours-{dtype}"], vecs = timed(enc.encode_docs)
    if dtype == "float32":
        ours32 = vecs
try:
    from sentence_transformers import SentenceTransformer
    for half in (False, True):
        st = SentenceTransformer(model, device="cuda")
        if half:
            st = st.half()
        name = "st-fp16" if half else "st-fp32"
        speeds[name], vecs = timed(lambda t: st.encode(["passage: " + x for x in t], batch_size=256,
                                                       normalize_embeddings=True))
        if not half:
            result["cosine_ours_fp32_vs_st_fp32_min"] = float((vecs * ours32).sum(1).min())
except ImportError as e:
    result["sentence_transformers"] = f"skipped: {e}"
result["encode_docs_per_s"] = {k: round(v) for k, v in speeds.items()}
if "st-fp32" in speeds:
    result["encode_ratio_to_st_fp32"] = {k: round(v / speeds["st-fp32"], 2) for k, v in speeds.items()}
(out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
print(json.dumps(result, indent=2))
EOF
