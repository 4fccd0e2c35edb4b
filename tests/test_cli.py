"""What a user sees from the CLI: quiet consoles, no folders left in the temp folder, errors that say what to do."""
import json
import os
import subprocess
import sys

import ir_datasets
import pytest

import ir_datasets_ext  # noqa: F401  registers lareqa-demo


def cli(tmp_path, *args):
    """``pyterrier-hybrid ARGS`` in a fresh process whose temp folder is ``tmp_path/tmp`` (empty at the start)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp)}
    done = subprocess.run([sys.executable, "-m", "pyterrier_hybrid.cli", *map(str, args)], capture_output=True,
                          env=env, timeout=300)
    return done.returncode, done.stdout.decode(), done.stderr.decode(), sorted(p.name for p in tmp.iterdir())


def test_bm25_evaluation_keeps_pisa_off_the_console_and_cleans_up(tmp_path):
    rc, out, err, left = cli(tmp_path, "evaluate", "--dataset", "lareqa-demo", "--bm25", "--out", tmp_path / "r")
    assert rc == 0, err[-2000:]
    assert "[info]" not in out + err and "Storing terms statistics" not in out + err
    log = (tmp_path / "r" / "pisa.log").read_text()
    assert log.count("[info]") > 10 and "Storing terms statistics" in log  # kept, where the report is
    assert left == []  # the BM25 indexes went with their temporary folder
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["name"] == "BM25 (pisa)" and report["langs"] == ["en", "de", "fr"]
    # the console: the settings bar, then the markdown report and the line naming the files
    assert out.rstrip().endswith("wrote " + str(tmp_path / "r" / "report.json") + ", report.md and matrix.png, pisa.log")


def test_index_shows_one_bar_and_no_weight_loading(tiny_model_dir, tmp_path):
    rc, out, err, left = cli(tmp_path, "index", "--dataset", "lareqa-demo", "--model", tiny_model_dir,
                             "--out", tmp_path / "ix")
    assert rc == 0, err[-2000:]
    bars = {line.split("\r")[-1].split(":")[0] for line in err.splitlines() if "it/s" in line or "doc/s" in line}
    assert bars == {"encoding"} and "Loading weights" not in err
    assert json.loads(out.splitlines()[-1])["docs"] == ir_datasets.load("lareqa-demo").docs_count() == 24
    assert left == []
    rc, _, err, _ = cli(tmp_path, "index", "--dataset", "lareqa-demo", "--model", tiny_model_dir, "--out", tmp_path / "ix")
    assert rc == 2 and f"{tmp_path / 'ix'} already exists; write to another --out, or pass --overwrite" in err


@pytest.mark.parametrize("args, message", [
    (["index", "--dataset", "xquad-rr", "--model", "m", "--out", "o"],
     "error: no ir_datasets dataset 'xquad-rr'; ours are xquad-r, mlqa-r and lareqa-demo"),
    (["train", "--sampling", "xx", "--model", "m", "--data", "no/such/mlqa-r", "--out", "o", "--steps", "1"],
     "error: --data 'no/such/mlqa-r': no such file or folder. It takes a .jsonl file"),
    (["evaluate", "--dataset", "lareqa-demo", "--model", "./no-such-model", "--out", "o"],
     "error: no model directory ./no-such-model; give a local model directory"),
    (["evaluate", "--dataset", "lareqa-demo", "--model", "/nonexistent", "--out", "o", "--update-card"],
     "error: no model directory /nonexistent; give a local model directory"),
    (["evaluate-collection", "--dataset", "miracl/{lang}/dev", "--langs", "sw", "--model", "/nonexistent", "--out", "o"],
     "error: no model directory /nonexistent; give a local model directory"),
    (["merge", "/nonexistent", "/nonexistent-b", "--weight", "0.5", "--out", "o"],
     "error: no model directory /nonexistent; give a local model directory"),
    (["train", "--sampling", "xx", "--model", "/nonexistent", "--data", "lareqa-demo", "--out", "o", "--steps", "1"],
     "error: no model directory /nonexistent; give a local model directory"),
    (["evaluate", "--dataset", "irds:miracl/{lang}/dev", "--langs", "sw", "--model", "m", "--out", "o"],
     "for any ir_datasets collection use pyterrier-hybrid evaluate-collection"),
    (["export-checkpoint", "no-such-run", "--out", "o"],
     "error: no checkpoint at no-such-run/checkpoint/state.pt; give the output directory of a run trained with "
     "--keep-checkpoint"),
])
def test_errors_name_the_problem_first(tmp_path, args, message):
    rc, _, err, _ = cli(tmp_path, *args)
    assert rc == 2 and message in err and "Traceback" not in err
    assert "error: \"" not in err  # no stray quotes of a KeyError


def test_train_merge_and_index_refuse_a_finished_output_in_the_same_words(tiny_model_dir, tmp_path):
    train = ["train", "--sampling", "hybrid", "--alpha", "0.5", "--model", tiny_model_dir, "--data", "lareqa-demo",
             "--out", tmp_path / "m", "--steps", "2", "--batch-size", "4", "--val-fraction", "0"]
    rc, _, err, _ = cli(tmp_path, *train)
    assert rc == 0, err[-2000:]
    before = {p: p.read_bytes() for p in (tmp_path / "m").rglob("*") if p.is_file()}
    rc, out, err, _ = cli(tmp_path, *train, "--resume")
    assert rc == 0 and out.strip() == f"{tmp_path / 'm'} is a finished run with this configuration; nothing to do"
    rc, _, err, _ = cli(tmp_path, *train[:-6], "--seed", "3", *train[-6:], "--resume")
    assert rc == 2 and "holds a finished run with another configuration" in err and "seed: 0 -> 3" in err
    way_on = "; write to another --out, or pass --overwrite (overwrite=True) to replace it"
    rc, _, err, _ = cli(tmp_path, *train)
    assert rc == 2 and (f"error: {tmp_path / 'm'} already exists and holds a finished model (sampling hybrid, α 0.5, "
                        f"seed 0, 2 steps){way_on}") in err
    rc, _, err, _ = cli(tmp_path, "merge", tmp_path / "m", tiny_model_dir, "--weight", "0.5", "--out", tmp_path / "m")
    assert rc == 2 and f"error: {tmp_path / 'm'} already exists{way_on}" in err
    rc, _, err, _ = cli(tmp_path, "index", "--dataset", "lareqa-demo", "--model", tiny_model_dir, "--out", tmp_path / "m")
    assert rc == 2 and f"error: {tmp_path / 'm'} already exists{way_on}" in err
    assert {p: p.read_bytes() for p in (tmp_path / "m").rglob("*") if p.is_file()} == before


def test_merge_names_a_missing_second_model(tiny_model_dir, tmp_path):
    rc, _, err, _ = cli(tmp_path, "merge", tiny_model_dir, "/nonexistent", "--weight", "0.5", "--out", tmp_path / "d")
    assert rc == 2 and "error: no model directory /nonexistent; give a local model directory" in err
    assert "Traceback" not in err and "Repo id" not in err and not (tmp_path / "d").exists()


def test_export_checkpoint_writes_a_model_of_the_last_step(tiny_model_dir, tmp_path):
    rc, _, err, _ = cli(tmp_path, "train", "--sampling", "xy", "--model", tiny_model_dir, "--data", "lareqa-demo",
                        "--out", tmp_path / "run", "--steps", "2", "--batch-size", "4", "--keep-checkpoint")
    assert rc == 0, err[-2000:]
    rc, out, err, left = cli(tmp_path, "export-checkpoint", tmp_path / "run", "--out", tmp_path / "last")
    assert rc == 0, err[-2000:]
    assert json.loads(out.splitlines()[-1]) == {"path": str(tmp_path / "last"), "run": str(tmp_path / "run"),
                                                "step": 2, "steps": 2}
    assert (tmp_path / "last" / "config.json").is_file() and left == []
    card = (tmp_path / "last" / "README.md").read_text()
    assert "trained with X-Y batches" in card and "weights of step 2 from the run's checkpoint" in card
