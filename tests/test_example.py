import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "experiment.py"


def test_example_runs_on_bundled_demo(tiny_model_dir):
    out = subprocess.run([sys.executable, str(EXAMPLE), "--dataset", "lareqa-demo", "--query-lang", "de",
                          "--doc-lang", "en", "--model", str(tiny_model_dir)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "lareqa-demo/de/de (monolingual)" in out.stdout and "lareqa-demo/de/en (cross-lingual)" in out.stdout
    # both systems are evaluated on both settings
    assert out.stdout.count("BM25 (pisa)") == 2 and out.stdout.count("dense (BiEncoder + FaissIndex)") == 2
