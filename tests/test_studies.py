"""pyterrier_hybrid.studies.runs: runs leave their artifacts, skip when those exist, and resume a killed training."""
import json

import pytest

from pyterrier_hybrid.evaluation.report import seen_unseen
from pyterrier_hybrid.studies import runs as study


@pytest.fixture(autouse=True)
def any_cpu(monkeypatch):
    """The machinery is tested on any CPU; the bf16 guard has its own test."""
    monkeypatch.setattr(study, "bf16_host", lambda: True)


def test_bf16_work_stops_where_bf16_is_emulated(monkeypatch):
    ran = []
    monkeypatch.setattr(study.subprocess, "run", lambda cmd, check: ran.append(cmd[3:]))
    monkeypatch.setattr(study, "bf16_host", lambda: False)
    for args in (("train", "--amp", "bf16"), ("evaluate", "--dtype", "bfloat16")):
        with pytest.raises(SystemExit, match="no native bf16.*AVX512-BF16 or AMX, or on a CUDA GPU"):
            study.cli(*args)
    study.cli("train", "--out", "m")   # fp32 work and merges run on any CPU
    study.cli("merge", "a", "b", "--weight", "0.5")
    monkeypatch.setattr(study, "bf16_host", lambda: True)
    study.cli("evaluate", "--dtype", "bfloat16")
    assert ran == [["train", "--out", "m"], ["merge", "a", "b", "--weight", "0.5"], ["evaluate", "--dtype", "bfloat16"]]


THINGS = ["lighthouse", "tin mine", "ferry", "storm", "diary", "harbour", "museum", "flood", "bridge", "orchard",
          "glacier", "market", "tower", "river", "mill", "choir"]


def recipe(model, tmp_path, **extra):
    """Training data: 16 parallel en/de items (enough for a held-out half), evaluation on the bundled demo."""
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"id": f"t{i}", "langs": {
        "en": {"query": f"When was the {w} built?", "positive": f"The {w} was built in {1800 + i}."},
        "de": {"query": f"Wann wurde {w} gebaut?", "positive": f"{w} entstand im Jahr {1800 + i}."}}}) + "\n"
        for i, w in enumerate(THINGS)))
    return study.Recipe(model=str(model), data=str(data), steps=4, batch_size=4, val_fraction=0.5, eval_every=2,
                          eval_dataset="lareqa-demo", eval_dtype="float32", langs=("en", "de"), **extra)


def test_study_keeps_artifacts_and_skips_finished_runs(tiny_model_dir, tmp_path, monkeypatch):
    runs = [study.Run("xy-s0", "xy", 0.0, 0), study.Run("mix-s1", "hybrid", 0.5, 1, ("--amp", "bf16"))]
    folders = study.run_study(recipe(tiny_model_dir, tmp_path), runs, tmp_path / "results", tmp_path / "work")
    for run in runs:
        done = folders[run.name]
        assert sorted(p.name for p in done.iterdir()) == sorted(study.ARTIFACTS)
        got = study.load_run(done)
        assert (got["config"]["sampling"], got["config"]["seed"], got["config"]["train"]["steps"]) == (run.sampling, run.seed, 4)
        assert [r["step"] for r in got["log"]] == [1, 2, 3, 4]
        assert [r["step"] for r in got["log"] if "val_loss" in r] == [2, 4]  # the validation split is in use
        assert got["report"]["dataset"] == "lareqa-demo" and got["report"]["dtype"] == "float32"
        card = (done / "README.md").read_text()
        assert "## Evaluation: lareqa-demo" in card and f"seed: {run.seed}" in card
    assert study.load_run(folders["mix-s1"])["config"]["train"]["amp"] == "bf16"
    assert set(seen_unseen(got["report"], seen=["en", "de"])) == {"seen", "unseen"}

    def no_training(*args):
        raise AssertionError(f"a finished run ran again: {args}")
    monkeypatch.setattr(study, "cli", no_training)
    assert study.run_study(recipe(tiny_model_dir, tmp_path), runs, tmp_path / "results", tmp_path / "work") == folders


def test_killed_training_resumes(tiny_model_dir, tmp_path):
    run = study.Run("xx-s0", "xx", 1.0, 0)
    r = recipe(tiny_model_dir, tmp_path)
    model = tmp_path / "work" / run.name / "model"
    study.cli(*study.train_args(r, run, model))  # a whole run, then drop its end state:
    (model / "training_config.json").unlink()                     # it now looks like a run killed after step 4
    state = json.loads((model / "train_log.jsonl").read_text().splitlines()[-1])["step"]
    study.run_study(r, [run], tmp_path / "results", tmp_path / "work")
    assert state == 4 and [json.loads(x)["step"] for x in (model / "train_log.jsonl").read_text().splitlines()] == [1, 2, 3, 4]


def test_reproduce_compares_a_rerun_with_the_committed_run(tiny_model_dir, tmp_path):
    run, r = study.Run("mix-s2", "hybrid", 0.5, 2), recipe(tiny_model_dir, tmp_path)
    results = tmp_path / "results"
    study.run_study(r, [run], results, tmp_path / "work")
    check = study.reproduce(r, run, results, tmp_path / "again", "the command")
    assert check == {"run": "mix-s2", "command": "the command", "config_identical": True, "log_max_abs_diff": 0.0,
                     "report_max_abs_diff": 0.0, "identical": True}  # CPU training and evaluation are deterministic
    assert json.loads((results / "reproduction.json").read_text()) == check
    report = json.loads((results / run.name / "report.json").read_text())
    report["mAP"]["multi"] += 0.01                                  # a committed number that no rerun gives
    (results / run.name / "report.json").write_text(json.dumps(report))
    check = study.reproduce(r, run, results, tmp_path / "again", "the command")
    assert abs(check["report_max_abs_diff"] - 0.01) < 1e-9 and check["log_max_abs_diff"] == 0.0
    assert not check["identical"]


def test_max_difference():
    a = {"name": "x", "timing": {"s": 1.0}, "mAP": {"mono": 0.5, "cross": [0.25, 0.75]}, "n": 3, "dtype": "bf16"}
    assert study.max_difference(a, {**a, "name": "y", "timing": {"s": 9.0}}) == 0.0   # paths and timings ignored
    assert study.max_difference(a, {**a, "mAP": {"mono": 0.5, "cross": [0.25, 0.5]}}) == 0.25
    assert study.max_difference(a, {**a, "dtype": "fp32"}) == float("inf")               # not the same run
    assert study.max_difference(a, {**a, "mAP": {"mono": 0.5}}) == float("inf")
    assert study.max_difference(a, {**a, "mAP": {"mono": 0.5, "cross": [0.25]}}) == float("inf")
    # a log line from before steps recorded the passages they encoded still compares with one from after
    line = {"step": 1, "loss": 0.5, "seconds": 2.0}
    assert study.max_difference([line], [{**line, "passages": 64, "seconds": 3.1}]) == 0.0
    assert study.max_difference([line], [{**line, "loss": 0.75, "passages": 64}]) == 0.25


def test_last_step_is_evaluated_from_the_resume_checkpoint(tiny_model_dir, tmp_path, capsys):
    import torch
    from safetensors.torch import load_file

    run, r = study.Run("mix-s3", "hybrid", 0.5, 3), recipe(tiny_model_dir, tmp_path, keep_checkpoint=True)
    results, work = tmp_path / "results", tmp_path / "work"
    study.run_study(r, [run], results, work)
    path = study.evaluate_last_step(r, run, results, work, commit=False)
    assert path == results / run.name / study.LAST_STEP
    state = torch.load(work / run.name / "model" / "checkpoint" / "state.pt", weights_only=True)
    exported = load_file(work / run.name / "last-step-model" / "model.safetensors")
    assert state["step"] == 4 and set(exported) == set(state["model"])
    assert all(torch.equal(exported[k], v) for k, v in state["model"].items())
    got = study.load_run(results / run.name)
    kept = min((x["val_loss"], x["step"]) for x in got["log"] if "val_loss" in x)[1]
    same = study.max_difference(got["report"], got["last_step"]) == 0
    assert same == (kept == 4)  # the kept model is the final one exactly when validation kept step 4
    assert got["last_step"]["dataset"] == "lareqa-demo"
    # a run whose resume checkpoint is gone (trained elsewhere) is skipped, with a message
    other = study.Run("gone", "xy", 0.0, 0)
    (results / other.name).mkdir()
    (results / other.name / "train_log.jsonl").write_text("")
    assert study.evaluate_last_step(r, other, results, work, commit=False) is None
    assert "last step not evaluated" in capsys.readouterr().out


def test_same_run_leaves_out_where_it_ran():
    old = {"seed": 1, "train": {"steps": 480, "amp": "bf16"}}   # committed before sittings were recorded
    new = {**old, "sittings": [{"from_step": 0, "device": "cpu", "threads": 2}]}
    assert study.same_run(old, new) and study.same_run(new, {**new, "sittings": [{"device": "NVIDIA H200"}]})
    assert not study.same_run(old, {**new, "seed": 2})
    assert not study.same_run(old, {**new, "train": {"steps": 480, "amp": None}})
