import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Where models and data come from must not depend on the shell the suite runs in (HF_HUB_OFFLINE=1 on an offline
# cluster, a custom HF_HOME or IR_DATASETS_HOME, a leftover PYTERRIER_HYBRID_DATA). This runs before any test module
# imports huggingface_hub or ir_datasets, which read some of these once. Tests that need one set it themselves.
ENV_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HOME", "HF_HUB_CACHE", "HF_ENDPOINT",
            "TRANSFORMERS_CACHE", "SENTENCE_TRANSFORMERS_HOME", "IR_DATASETS_HOME")
ME5_GIVEN = os.environ.get("PYTERRIER_HYBRID_ME5")  # an input, not an accident: the integration tier's model
for _name in [*ENV_VARS, *(k for k in os.environ if k.startswith("PYTERRIER_HYBRID_"))]:
    os.environ.pop(_name, None)
_HOME = tempfile.mkdtemp(prefix="pyterrier-hybrid-tests-")
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
os.environ.update(HF_HOME=os.path.join(_HOME, "hf"), IR_DATASETS_HOME=os.path.join(_HOME, "ir_datasets"))

from ir_datasets_ext import DEMO  # noqa: E402

# our own three-language fixture in the LAReQA format, shipped in the package as lareqa-demo
DEMO_FILES = Path(DEMO.data_dir) / DEMO.name
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_addoption(parser):
    parser.addoption(
        "--bf16-detection", choices=("host", "native", "emulated", "flipped"), default="host",
        help="what precision.native_bf16() answers in the whole session: the host's real detection (default), "
             "native (AVX512-BF16/AMX), emulated (AVX2 only), or flipped (the opposite of this host's). The suite must "
             "pass all ways; .ci/run runs it on the host's detection, then flipped.")


def forced_bf16(config) -> bool:
    """The session's bf16 detection, from --bf16-detection."""
    from pyterrier_hybrid.model import precision
    choice = config.getoption("--bf16-detection")
    host = precision.native_bf16()
    return {"host": host, "native": True, "emulated": False, "flipped": not host}[choice]


def pytest_report_header(config):
    return f"bf16 detection: {'native' if forced_bf16(config) else 'emulated'} ({config.getoption('--bf16-detection')})"


@pytest.fixture(autouse=True, scope="session")
def bf16_detection(request):
    """precision.native_bf16 answers what --bf16-detection says, for the whole session (module fixtures included),
    so no test reads the CPU it happens to run on; tests of the detection itself patch it again."""
    from pyterrier_hybrid.model import precision
    native = forced_bf16(request.config)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(precision, "native_bf16", lambda: native)
        yield native


@pytest.fixture
def shared_data(monkeypatch):
    """Point the data loader at ../shared/data, or skip when it is absent."""
    if not (SHARED_DATA / "xquad-r" / "en.json").is_file():
        pytest.skip(f"real XQuAD-R / MLQA-R not found at {SHARED_DATA}; the integration tier needs ../shared/data")
    monkeypatch.setenv("PYTERRIER_HYBRID_DATA", str(SHARED_DATA))
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from pyterrier_hybrid.testing import make_tiny_model
    return make_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def me5_dir():
    """The real multilingual-e5-small: $PYTERRIER_HYBRID_ME5 as the suite started, else built offline by
    ../shared/tools/make_offline_me5.py (cached in .cache/)."""
    if ME5_GIVEN:
        return Path(ME5_GIVEN)
    target = Path(__file__).resolve().parents[1] / ".cache" / "me5"
    if (target / "model.safetensors").is_file():
        return target
    tool = SHARED_DATA.parent / "tools" / "make_offline_me5.py"
    if not tool.is_file():
        pytest.skip(f"no real model: set PYTERRIER_HYBRID_ME5 to a multilingual-e5-small directory, or provide {tool}")
    import subprocess
    import sys
    done = subprocess.run([sys.executable, str(tool), str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"{tool} failed to build the model:\n{done.stderr[-2000:]}")
    return target


@pytest.fixture(scope="session")
def tiny_model_no_dropout(tmp_path_factory):
    from pyterrier_hybrid.testing import make_tiny_model
    return make_tiny_model(tmp_path_factory.mktemp("tiny-model-nodrop"), dropout=0.0)


# ---- a training run killed part-way (resume tests) ----

class Killed(Exception):
    pass


class DiesAfter:
    """A sampler that dies (like a killed process) when asked for batch number ``n + 1``."""

    def __init__(self, inner, n):
        self.inner, self.n, self.batch_size = inner, n, inner.batch_size
        self.align, self.align_queries = inner.align, inner.align_queries  # the trainer checks them

    def __iter__(self):
        for i, batch in enumerate(self.inner):
            if i == self.n:
                raise Killed()
            yield batch

    def state_dict(self):
        return self.inner.state_dict()

    def describe(self):
        return self.inner.describe()

    def load_state_dict(self, state):
        self.inner.load_state_dict(state)
