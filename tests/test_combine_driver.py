"""pyterrier_hybrid.studies.combine: each direction retrains the right α study's runs and writes where the page reads."""
from pathlib import Path

import pytest

from pyterrier_hybrid.studies import combine, runs
from pyterrier_hybrid.studies.runs import RESULTS, train_args


@pytest.fixture(autouse=True)
def any_cpu(monkeypatch):
    """The driver is tested on any CPU; the bf16 guard is tested in test_studies.py."""
    monkeypatch.setattr(runs, "bf16_host", lambda: True)


def test_directions(tmp_path):
    forward, reverse = (combine.Study("me5", tmp_path, False, d) for d in ("forward", "reverse"))
    assert (forward.test, forward.out, forward.path("xy-seed1")) == (
        "xquad-r", RESULTS / "combine", tmp_path / "models" / "xy-seed1")
    assert (reverse.test, reverse.out, reverse.path("xy-seed0")) == (
        "mlqa-r", RESULTS / "combine" / "reverse", tmp_path / "reverse" / "models" / "xy-seed0")
    assert reverse.path("start") == forward.path("start") == Path("me5")
    # the reverse retrain uses the reverse study's recipe: XQuAD-R data in all 11 languages, like its committed config
    args = train_args(reverse.recipe, combine.pure_run("hybrid", 0), tmp_path / "m")
    assert args[args.index("--data") + 1].endswith("xquad-r")
    assert args[args.index("--langs") + 1] == "ar,de,el,en,es,hi,ru,th,tr,vi,zh"
    assert args[args.index("--alpha") + 1] == "0.5" and "--freeze-embeddings" in args
    args = train_args(forward.recipe, combine.pure_run("xx", 2), tmp_path / "m")
    assert args[args.index("--data") + 1].endswith("mlqa-r") and args[args.index("--seed") + 1] == "2"


def test_evaluate_commits_study_reports_only(tmp_path, tiny_model_dir, monkeypatch):
    """Reports under the study's folder are committed; the 96-token check's reports stay in the work folder."""
    committed = []
    monkeypatch.setattr(combine, "OUT", tmp_path / "results")
    monkeypatch.setattr(combine, "REPO", tmp_path)
    monkeypatch.setattr(combine, "git_commit", lambda path, message: committed.append(path))
    study = combine.Study(str(tiny_model_dir), tmp_path / "work", commit=True)
    reports = study.evaluate("start", "lareqa-demo", None, tmp_path / "results" / "xquad-r", removals=("none", "center"))
    assert committed == [tmp_path / "results" / "xquad-r" / "start"]
    assert "language_removal" not in reports["none"] and reports["center"]["language_removal"]["method"] == "center"
    assert reports["none"]["max_length"] == {"query": combine.QUERY_LENGTH, "doc": combine.DOC_LENGTH}
    check = study.evaluate("start", "lareqa-demo", None, tmp_path / "work" / "at-training-length",
                           doc_length=combine.TRAINING_LENGTH, removals=("none",))
    assert committed == [tmp_path / "results" / "xquad-r" / "start"]  # nothing more
    assert check["none"]["max_length"]["doc"] == 96
    assert (tmp_path / "work" / "at-training-length" / "start" / "none.json").is_file()


def test_models_are_built_on_demand(tmp_path, monkeypatch):
    """A merge retrains its missing parent only; a seed whose reports are all there trains nothing."""
    calls = []
    monkeypatch.setattr(combine, "cli", lambda *args: calls.append(args[:2] if args[0] == "merge" else ("train",)))
    study = combine.Study("me5", tmp_path, False)
    monkeypatch.setattr(study, "train", lambda s, seed: calls.append(("train", s, seed)) or study.path(f"{s}-seed{seed}"))
    assert study.build("start") == Path("me5") and calls == []
    out = study.build("merge-hybrid0.75-start-seed2")
    assert out == tmp_path / "models" / "merge-hybrid0.75-start-seed2"
    assert calls == [("train", "hybrid", 2), ("merge", str(tmp_path / "models" / "hybrid-seed2"))]
    calls.clear()
    study.build("merge-xx0.25-xy-seed1")
    assert calls == [("train", "xx", 1), ("train", "xy", 1), ("merge", str(tmp_path / "models" / "xx-seed1"))]
    # a merge already on disk is not rebuilt, and neither are its parents
    calls.clear()
    (out / "config.json").parent.mkdir(parents=True)
    (out / "config.json").write_text("{}")
    assert study.build("merge-hybrid0.75-start-seed2") == out and calls == []


def test_committed_seed_trains_nothing(tmp_path, monkeypatch):
    """Seed 0's reports and retrain checks are committed: running it again builds no model."""
    monkeypatch.setattr(combine, "cli", lambda *args: pytest.fail(f"ran {args[:2]}"))
    study = combine.Study("me5", tmp_path, False)
    monkeypatch.setattr(study, "train", lambda *args: pytest.fail(f"trained {args}"))
    study.run_seed(0)
    assert not (tmp_path / "models").exists()
