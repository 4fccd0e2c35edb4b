"""A local folder laid out as huggingface_hub's cache, so Hub names resolve with no network."""
from __future__ import annotations

import shutil
from pathlib import Path

REVISION = "0123456789abcdef0123456789abcdef01234567"


def make_fake_hub_cache(model_dir: str | Path, repo_id: str, cache: str | Path) -> Path:
    """Copy ``model_dir`` into ``cache`` as a downloaded ``repo_id``; point ``HF_HUB_CACHE`` at the result.

    Args:
        model_dir: a saved model directory.
        repo_id: the Hub name it should answer to, e.g. ``"intfloat/multilingual-e5-small"``.
        cache: the cache folder to create or add to.
    """
    repo = Path(cache) / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(model_dir, repo / "snapshots" / REVISION)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(REVISION)
    return Path(cache)
