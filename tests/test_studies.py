"""examples/studies.py: runs leave their artifacts, skip when those exist, and resume a killed training."""
import json
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))
import studies  # noqa: E402


THINGS = ["lighthouse", "tin mine", "ferry", "storm", "diary", "harbour", "museum", "flood", "bridge", "orchard",
          "glacier", "market", "tower", "river", "mill", "choir"]


def recipe(model, tmp_path):
    """Training data: 16 parallel en/de items (enough for a held-out half), evaluation on the bundled demo."""
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"id": f"t{i}", "langs": {
        "en": {"query": f"When was the {w} built?", "positive": f"The {w} was built in {1800 + i}."},
        "de": {"query": f"Wann wurde {w} gebaut?", "positive": f"{w} entstand im Jahr {1800 + i}."}}}) + "\n"
        for i, w in enumerate(THINGS)))
    return studies.Recipe(model=str(model), data=str(data), steps=4, batch_size=4, val_fraction=0.5, eval_every=2,
                          eval_dataset="lareqa-demo", eval_dtype="float32", langs=("en", "de"))


def test_study_keeps_artifacts_and_skips_finished_runs(tiny_model_dir, tmp_path, monkeypatch):
    runs = [studies.Run("xy-s0", "xy", 0.0, 0), studies.Run("mix-s1", "hybrid", 0.5, 1, ("--amp", "bf16"))]
    folders = studies.run_study(recipe(tiny_model_dir, tmp_path), runs, tmp_path / "results", tmp_path / "work")
    for run in runs:
        done = folders[run.name]
        assert sorted(p.name for p in done.iterdir()) == sorted(studies.ARTIFACTS)
        got = studies.load_run(done)
        assert (got["config"]["sampling"], got["config"]["seed"], got["config"]["train"]["steps"]) == (run.sampling, run.seed, 4)
        assert [r["step"] for r in got["log"]] == [1, 2, 3, 4]
        assert [r["step"] for r in got["log"] if "val_loss" in r] == [2, 4]  # the validation split is in use
        assert got["report"]["dataset"] == "lareqa-demo" and got["report"]["dtype"] == "float32"
        card = (done / "README.md").read_text()
        assert "## Evaluation: lareqa-demo" in card and f"seed: {run.seed}" in card
    assert studies.load_run(folders["mix-s1"])["config"]["train"]["amp"] == "bf16"
    assert set(studies.seen_unseen(got["report"], seen=["en", "de"])) == {"seen", "unseen"}

    def no_training(*args):
        raise AssertionError(f"a finished run ran again: {args}")
    monkeypatch.setattr(studies, "cli", no_training)
    assert studies.run_study(recipe(tiny_model_dir, tmp_path), runs, tmp_path / "results", tmp_path / "work") == folders


def test_killed_training_resumes(tiny_model_dir, tmp_path):
    run = studies.Run("xx-s0", "xx", 1.0, 0)
    r = recipe(tiny_model_dir, tmp_path)
    model = tmp_path / "work" / run.name / "model"
    studies.cli(*studies.train_args(r, run, model))  # a whole run, then drop its end state:
    (model / "training_config.json").unlink()                     # it now looks like a run killed after step 4
    state = json.loads((model / "train_log.jsonl").read_text().splitlines()[-1])["step"]
    studies.run_study(r, [run], tmp_path / "results", tmp_path / "work")
    assert state == 4 and [json.loads(x)["step"] for x in (model / "train_log.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
