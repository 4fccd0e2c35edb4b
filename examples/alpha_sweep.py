"""The alpha sweep: hybrid batches with alpha in {0, 0.25, 0.5, 0.75, 1}, the same budget and seed each.

alpha = 1 is X-X-mono and alpha = 0 is X-Y. Takes the options of examples/reproduce.py, plus --alphas;
writes R/sweep/alpha-<a>/ (model and report), R/sweep.json and R/sweep.png (Mul. mAP and rank distance
against alpha).

    python examples/alpha_sweep.py --model .cache/me5 --out runs/reproduce
"""
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from reproduce import REPO, evaluate, parser, train  # noqa: E402


def main() -> None:
    p = parser()
    p.add_argument("--alphas", default="0,0.25,0.5,0.75,1")
    args = p.parse_args()
    if not os.environ.get("PYTERRIER_HYBRID_DATA") and (REPO.parent / "shared" / "data").is_dir():
        os.environ["PYTERRIER_HYBRID_DATA"] = str(REPO.parent / "shared" / "data")
    out = Path(args.out)
    points = []
    for alpha in [float(a) for a in args.alphas.split(",")]:
        run = out / "sweep" / f"alpha-{alpha:g}"
        model = train(args, "hybrid", alpha, run / "model")
        rep = evaluate(args, f"alpha={alpha:g}", str(model), run / "eval")
        points.append({"alpha": alpha, "mAP": rep["mAP"], "rank_distance": rep["rank_distance"]["macro"]})
        print(json.dumps(points[-1]))
    (out / "sweep.json").write_text(json.dumps(points, indent=2))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    alphas = [pt["alpha"] for pt in points]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(alphas, [pt["mAP"]["multi"] for pt in points], "o-", color="tab:blue")
    ax.set_xlabel("alpha (share of X-X-mono batches)")
    ax.set_ylabel("Mul. mAP", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(alphas, [pt["rank_distance"] for pt in points], "s--", color="tab:red")
    ax2.set_ylabel("rank distance (lower is better)", color="tab:red")
    ax.set_title(f"alpha sweep on {args.eval_dataset}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "sweep.png", dpi=120)


if __name__ == "__main__":
    main()
