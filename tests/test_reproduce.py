"""examples/reproduce.py end to end on the bundled demo with a tiny model, and the studies of
pyterrier_hybrid.studies.alpha_sweep."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from pyterrier_hybrid.studies import alpha_sweep

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# an example is a script, not a module of the package: loaded from its file
_spec = importlib.util.spec_from_file_location("reproduce", EXAMPLES / "reproduce.py")
reproduce = sys.modules["reproduce"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reproduce)


def run(script, tiny_model_dir, out, *extra):
    cmd = [sys.executable, str(EXAMPLES / script), "--model", str(tiny_model_dir), "--out", str(out),
           "--train-data", "lareqa-demo", "--train-langs", "en,de", "--eval-dataset", "lareqa-demo",
           "--steps", "3", "--batch-size", "4", "--lr", "1e-3", *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_reproduce_trains_evaluates_and_summarizes(tiny_model_dir, tmp_path):
    out = run("reproduce.py", tiny_model_dir, tmp_path)
    for sampling in ["xx", "xy", "hybrid"]:
        log = (tmp_path / "models" / sampling / "train_log.jsonl").read_text().splitlines()
        kinds = {json.loads(line)["kind"] for line in log}
        assert len(log) == 3 and kinds <= ({"xx", "xy"} if sampling == "hybrid" else {sampling})
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["reports"]) == {"zero-shot", "BM25", "X-X-mono", "X-Y", "hybrid"}
    assert set(summary["parts"]["hybrid"]) == {"seen", "unseen"}  # fr was never trained on
    assert set(summary["tests"]) == {"X-X-mono", "X-Y"}
    assert summary["tests"]["X-Y"]["multi_direction"] in out  # the remark is written next to its p-value
    assert "| hybrid | unseen |" in out and "LaBSE hybrid" in out
    # a second run reuses everything (no training step is repeated)
    run("reproduce.py", tiny_model_dir, tmp_path)
    assert len((tmp_path / "models" / "hybrid" / "train_log.jsonl").read_text().splitlines()) == 3


def test_alpha_sweep_studies():
    recipe, runs = alpha_sweep.study("alpha", "M")
    assert len(runs) == 15 and len({r.name for r in runs}) == 15
    assert [(r.alpha, r.seed) for r in runs[:5]] == [(a, 0) for a in (0, 0.25, 0.5, 0.75, 1)]  # seed by seed
    assert all(r.sampling == "hybrid" and tuple(r.flags) == alpha_sweep.RECIPE_FLAGS for r in runs)
    assert (recipe.steps, recipe.batch_size, recipe.val_fraction, recipe.eval_dataset) == (120, 32, 0.1, "xquad-r")
    budget, runs = alpha_sweep.study("budget", "M")
    assert budget.steps == 4 * recipe.steps and budget.eval_every == 4 * recipe.eval_every
    assert [(r.alpha, r.seed) for r in runs] == [(a, s) for s in (0, 1, 2) for a in (0, 0.5, 1)]  # seed 0 first
    reverse, _ = alpha_sweep.study("reverse", "M")
    assert reverse.eval_dataset == "mlqa-r" and reverse.data.endswith("xquad-r") and len(reverse.langs) == 11


def _report(multi, rd, cell):
    langs = ["en", "de", "fr", "es", "it", "nl"]
    return {"matrix": {x: {y: cell + i + j for j, y in enumerate(langs)} for i, x in enumerate(langs)},
            "multi_by_lang": dict(zip(langs, multi)), "rank_distance": dict(zip(langs, rd))}


def test_paired_tests_say_in_how_many_languages_hybrid_moved():
    hybrid = _report([0.5, 0.6, 0.7, 0.5, 0.6, 0.7], [10, 20, 30, 40, 50, 60], 0.5)
    other = _report([0.4, 0.5, 0.6, 0.4, 0.5, 0.6], [11, 19, 31, 39, 52, 58], 0.4)
    t = reproduce.paired_tests(hybrid, other)
    assert t["multi_direction"] == "hybrid higher in all 6"
    assert t["multi_p"] == 0.03125  # 2 / 2**6, the smallest exact two-sided p-value for 6 pairs
    assert t["rank_distance_direction"] == "hybrid higher in 3, lower in 3 of 6"
    assert reproduce.direction([1, 2], [3, 4]) == "hybrid lower in all 2"
    assert reproduce.direction([1, 2, 3], [1, 1, 4]) == "hybrid higher in 1, lower in 1 of 3"  # one tie
