import pytest

from pyterrier_hybrid.atomic import atomic_directory


def fill(files):
    def build(tmp):
        for name, text in files.items():
            (tmp / name).write_text(text)
    return build


def test_atomic_directory_creates_and_replaces_whole(tmp_path):
    target = tmp_path / "parent" / "out"
    atomic_directory(target, fill({"a": "1", "b": "2"}))
    atomic_directory(target, fill({"c": "3"}))
    assert sorted(p.name for p in target.iterdir()) == ["c"]  # nothing of the old directory is left
    assert sorted(p.name for p in target.parent.iterdir()) == ["out"]  # no temporary or old directories


def test_a_failed_build_leaves_the_old_directory(tmp_path):
    target = tmp_path / "out"
    atomic_directory(target, fill({"a": "1"}))

    def dying(tmp):
        (tmp / "half").write_text("x")
        raise RuntimeError("killed")
    with pytest.raises(RuntimeError, match="killed"):
        atomic_directory(target, dying)
    assert (target / "a").read_text() == "1" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(RuntimeError, match="killed"):
        atomic_directory(tmp_path / "new", dying)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
