"""examples/experiment.py: which data and model it picks, and why, and what the console shows.

The "network" is a loopback HTTP server serving the bundled lareqa-demo files under a registered family, and
the "Hub" is a Hugging Face cache folder holding the tiny random model as intfloat/multilingual-e5-small.
"""
import functools
import http.server
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import ir_datasets
import pytest
from huggingface_hub import constants

from conftest import DEMO_FILES, ENV_VARS
from ir_datasets_ext import DEMO, LareqaFamily
from pyterrier_hybrid.testing import make_fake_hub_cache

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# an example is a script, not a module of the package: it is loaded from its file, here and in the driver below
_spec = importlib.util.spec_from_file_location("experiment", EXAMPLES / "experiment.py")
experiment = sys.modules["experiment"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(experiment)

# the family the end-to-end runs download in place of XQuAD-R (a subprocess cannot see this module's objects)
DRIVER = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("experiment", {path!r})
experiment = sys.modules["experiment"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(experiment)
from ir_datasets_ext import DEMO, LareqaFamily, register
experiment.DOWNLOAD = LareqaFamily("loopback-r", dict(DEMO.md5), {url!r}, "Apache-2.0")
register(experiment.DOWNLOAD)
experiment.main({argv!r})
"""


@pytest.fixture
def server():
    """A loopback HTTP server over the demo files; yields its base URL."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(DEMO_FILES.parent)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


@pytest.fixture
def closed_url():
    """A loopback URL where nothing listens: connections are refused at once, like a machine with no network."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def fake_hub(tiny_model_dir, tmp_path):
    """A Hugging Face cache holding the tiny model as intfloat/multilingual-e5-small."""
    return make_fake_hub_cache(tiny_model_dir, "intfloat/multilingual-e5-small", tmp_path / "hub")


@pytest.fixture
def no_local_copies(monkeypatch, tmp_path):
    monkeypatch.delenv("PYTERRIER_HYBRID_DATA", raising=False)
    monkeypatch.delenv("PYTERRIER_HYBRID_ME5", raising=False)
    monkeypatch.setattr(ir_datasets.util, "home_path", lambda: tmp_path / "irds")


def family(base_url):
    return LareqaFamily("loopback-r", dict(DEMO.md5), f"{base_url}/lareqa-demo/{{lang}}.json", "Apache-2.0")


# ---- choosing the data --------------------------------------------------------------------------

def test_data_flag_wins_over_everything(monkeypatch, closed_url):
    monkeypatch.setenv("PYTERRIER_HYBRID_DATA", "/somewhere")
    assert experiment.pick_data("mlqa-r", ["de"], family(closed_url)) == experiment.Choice("mlqa-r", "given by --dataset")


def test_data_local_copy_before_download(monkeypatch, server):
    monkeypatch.setenv("PYTERRIER_HYBRID_DATA", "/data/copy")
    choice = experiment.pick_data(None, ["de", "en"], family(server))
    assert choice == experiment.Choice("loopback-r", "local copy in $PYTERRIER_HYBRID_DATA (/data/copy)")


def test_data_downloads_when_the_url_answers(no_local_copies, server):
    port = server.rsplit(":", 1)[1]
    choice = experiment.pick_data(None, ["de", "en"], family(server))
    assert choice == experiment.Choice("loopback-r", f"downloading de, en from 127.0.0.1:{port} (md5-checked)")


def test_data_falls_back_to_demo_with_no_network(no_local_copies, closed_url):
    choice = experiment.pick_data(None, ["de", "en"], family(closed_url))
    assert (choice.value, choice.fallback) == ("lareqa-demo", True)
    assert re.fullmatch(r"the bundled demo; no network: cannot reach 127\.0\.0\.1:\d+ \(.*refused\)", choice.reason)


def test_data_downloaded_before_needs_no_network(no_local_copies, tmp_path, closed_url):
    fam = family(closed_url)
    for lang in ["de", "en"]:
        fam.download_path(lang).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DEMO_FILES / f"{lang}.json", fam.download_path(lang))
    choice = experiment.pick_data(None, ["de", "en"], fam)
    assert choice == experiment.Choice("loopback-r", f"downloaded before, in {tmp_path / 'irds' / 'lareqa' / 'loopback-r'}")


def test_probe_of_a_silent_server_gives_up_after_its_timeout():
    with socket.socket() as s:  # accepts connections (the kernel does) but never answers
        s.bind(("127.0.0.1", 0))
        s.listen()
        host = f"127.0.0.1:{s.getsockname()[1]}"
        start = time.perf_counter()
        why_not = experiment.reachable(f"http://{host}/x", timeout=0.3)
        elapsed = time.perf_counter() - start
    assert elapsed < 5.0  # gives up, not hangs: generous, as a busy host may be slow to schedule
    assert why_not in {f"no answer from {host} within 0.3 s", f"cannot reach {host} (timed out)"}


# ---- choosing the model -------------------------------------------------------------------------

def test_model_flag_then_environment(monkeypatch, fake_hub):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(fake_hub))
    monkeypatch.setenv("PYTERRIER_HYBRID_ME5", "/models/me5")
    assert experiment.pick_model("/my/model") == experiment.Choice("/my/model", "given by --model")
    assert experiment.pick_model(None) == experiment.Choice("/models/me5", "local copy in $PYTERRIER_HYBRID_ME5")


def test_model_from_the_hub_cache(no_local_copies, monkeypatch, fake_hub):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(fake_hub))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    choice = experiment.pick_model(None)
    assert choice == experiment.Choice("intfloat/multilingual-e5-small", f"from the Hugging Face cache ({fake_hub})")


def test_model_downloads_when_the_hub_answers(no_local_copies, monkeypatch, tmp_path, server):
    # the loopback server answers /api/models/... with 404: any HTTP answer means the network is there
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", server)
    choice = experiment.pick_model(None)
    assert choice == experiment.Choice("intfloat/multilingual-e5-small", f"downloading from {server[len('http://'):]}")


def test_model_falls_back_offline(no_local_copies, monkeypatch, tmp_path, closed_url):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    offline = experiment.pick_model(None)
    assert offline == experiment.Choice("tiny random model", "HF_HUB_OFFLINE is set and intfloat/multilingual-e5-small "
                                        f"is not in the cache {tmp_path / 'empty'}", fallback=True)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", closed_url)
    assert experiment.pick_model(None).reason.startswith(f"no network: cannot reach {closed_url[len('http://'):]} (")


# ---- the whole run, as a user sees it -----------------------------------------------------------

def run(tmp_path, url, env, argv=()):
    """examples/experiment.py's main() in a fresh process, XQuAD-R replaced by the demo files at ``url``."""
    clean = {k: v for k, v in os.environ.items() if k not in ENV_VARS and not k.startswith("PYTERRIER_HYBRID_")}
    clean.update(IR_DATASETS_HOME=str(tmp_path / "irds"), HF_HOME=str(tmp_path / "hf"), **env)
    code = DRIVER.format(path=str(EXAMPLES / "experiment.py"), url=f"{url}/lareqa-demo/{{lang}}.json", argv=list(argv))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, env=clean, timeout=300)
    # bytes, not text=True: universal newlines would turn a progress bar's \r updates into lines of their own
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, err[-3000:]
    return out, err


def screen_lines(out, err):
    """Lines a terminal shows: \r redraws a progress bar in place; only \n starts a new line."""
    return (out + err).count("\n")


def tables(stdout):
    return re.findall(r"^=== (\S+)  (\S+): (\d+) questions in de, (\d+) candidates in (\w+) ===$", stdout, re.M)


def test_run_downloads_data_and_uses_the_hub_model(tmp_path, server, fake_hub):
    out, err = run(tmp_path, server, {"HF_HUB_CACHE": str(fake_hub), "HF_HUB_OFFLINE": "1"})
    lines = out.splitlines()
    port = server.rsplit(":", 1)[1]
    assert lines[1] == f"  data:  loopback-r - downloading de, en from 127.0.0.1:{port} (md5-checked)"
    assert lines[2] == f"  model: intfloat/multilingual-e5-small - from the Hugging Face cache ({fake_hub})"
    assert not any(line.startswith("NOTE") for line in lines)
    for lang in ["de", "en"]:  # fetched into ir_datasets' cache, byte for byte
        assert (tmp_path / "irds" / "lareqa" / "loopback-r" / f"{lang}.json").read_bytes() == (DEMO_FILES / f"{lang}.json").read_bytes()
    assert tables(out) == [("loopback-r/de/de", "monolingual", "5", "8", "de"), ("loopback-r/de/en", "cross-lingual", "5", "9", "en")]
    assert out.count("dense (BiEncoder + FaissIndex)") == 2 and out.count("BM25 (pisa)") == 2
    # the download and pisa's logs are in the log file, not on the console; the console fits on one screen,
    # its only other output one progress bar (docs)
    log = Path(re.fullmatch(r"  log:   (.+) \(data download, BM25 indexing, query encoding\)", lines[3]).group(1))
    assert "[info]" not in out + err and log.read_text().count("Number of documents: ") == 2
    assert log.read_text().count("[INFO] [finished] http://127.0.0.1") == 2
    assert [line.split("\r")[-1].split(":")[0] for line in err.split("\n")] == ["docs", ""]
    assert screen_lines(out, err) == 16  # 4 about the choices, encoding and its bar, 5 per setting


def test_run_with_no_network_says_why_it_fell_back(tmp_path, closed_url):
    host = closed_url[len("http://"):]
    out, err = run(tmp_path, closed_url, {"HF_HUB_CACHE": str(tmp_path / "empty-hub"), "HF_ENDPOINT": closed_url})
    lines = out.splitlines()
    assert re.fullmatch(rf"  data:  lareqa-demo - the bundled demo; no network: cannot reach {host} \(.*\)", lines[1])
    assert re.fullmatch(rf"  model: tiny random model - no network: cannot reach {host} \(.*\)", lines[2])
    assert lines[4] == "NOTE: set $PYTERRIER_HYBRID_DATA to a folder with loopback-r/<lang>.json, or connect, to run on loopback-r."
    assert lines[5].startswith("NOTE: a random model's scores mean nothing")
    assert tables(out) == [("lareqa-demo/de/de", "monolingual", "5", "8", "de"), ("lareqa-demo/de/en", "cross-lingual", "5", "9", "en")]
    assert not (tmp_path / "irds" / "lareqa").exists()  # nothing was downloaded
    assert screen_lines(out, err) == 18  # README: the 16 lines of a real run and 2 NOTE lines saying why


def test_script_with_flags_runs_the_bundled_demo(tiny_model_dir):
    out = subprocess.run([sys.executable, str(EXAMPLES / "experiment.py"), "--dataset", "lareqa-demo", "--query-lang", "de",
                          "--doc-lang", "en", "--model", str(tiny_model_dir)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[1:3] == ["  data:  lareqa-demo - given by --dataset", f"  model: {tiny_model_dir} - given by --model"]
    assert [t[:2] for t in tables(out.stdout)] == [("lareqa-demo/de/de", "monolingual"), ("lareqa-demo/de/en", "cross-lingual")]
