"""publish_folder: an output folder is the old one or the new one, never half-written."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwgen.emit import folders
from hwgen.emit.folders import publish_folder


def write(text):
    def fill(folder: Path) -> str:
        (folder / "f.txt").write_text(text)
        return text
    return fill


def fail(folder: Path) -> None:
    (folder / "half.txt").write_text("half")
    raise OSError("disk full")


def test_replaces_the_previous_folder(tmp_path):
    assert publish_folder(tmp_path, "out", write("one")) == "one"
    (tmp_path / "out" / "stale.txt").write_text("x")
    publish_folder(tmp_path, "out", write("two"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["f.txt"]
    assert (tmp_path / "out" / "f.txt").read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failure_keeps_the_previous_folder(tmp_path):
    publish_folder(tmp_path, "out", write("one"))
    with pytest.raises(OSError, match="disk full"):
        publish_folder(tmp_path, "out", fail)
    assert (tmp_path / "out" / "f.txt").read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failure_removes_every_folder_it_created(tmp_path):
    with pytest.raises(OSError):
        publish_folder(tmp_path / "a" / "b", "out", fail)
    assert list(tmp_path.iterdir()) == []


def test_the_previous_folder_comes_back_if_the_final_rename_fails(tmp_path, monkeypatch):
    publish_folder(tmp_path, "out", write("one"))
    real_rename = Path.rename

    def rename(self, target):
        if Path(target) == tmp_path / "out" and ".out-new-" in self.name:
            raise OSError("rename failed")
        return real_rename(self, target)

    monkeypatch.setattr(folders.Path, "rename", rename)
    with pytest.raises(OSError, match="rename failed"):
        publish_folder(tmp_path, "out", write("two"))
    assert (tmp_path / "out" / "f.txt").read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
