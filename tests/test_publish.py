"""storage.folders.publish_out and building_out: the finished folder replaces the old one, or
nothing changes."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from synthgate.errors import InputError
from synthgate.storage.folders import building_out, publish_out


def make(folder: Path, text: str) -> Path:
    folder.mkdir()
    (folder / "file.txt").write_text(text)
    return folder


def test_publish_replaces_the_old_folder(tmp_path: Path) -> None:
    out = make(tmp_path / "out", "old")
    publish_out(make(tmp_path / ".out.partial", "new"), out)
    assert (out / "file.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_publish_that_fails_puts_the_old_folder_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = make(tmp_path / "out", "old")
    temporary = make(tmp_path / ".out.partial", "new")
    real_rename = Path.rename

    def rename(self: Path, target: Path) -> Path:
        if self == temporary:
            raise OSError(28, "No space left on device")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(OSError):
        publish_out(temporary, out)
    assert (out / "file.txt").read_text() == "old"
    assert not (tmp_path / ".out.previous").exists()


def test_a_folder_left_aside_by_a_stopped_publish_comes_back_and_is_guarded(
    tmp_path: Path,
) -> None:
    """Killed between publish_out's renames, `out` is gone and `.out.previous` is its only copy:
    prepare_out puts it back first, so its checks (a run, human decisions) see it."""
    from synthgate.errors import InputError
    from synthgate.storage.folders import prepare_out

    make(tmp_path / ".out.previous", "old")  # not a run: no manifest.json
    with pytest.raises(InputError, match="not a synthgate run"):
        prepare_out(tmp_path / "out")
    assert (tmp_path / "out" / "file.txt").read_text() == "old"


def test_building_out_publishes_what_was_built(tmp_path: Path) -> None:
    out = make(tmp_path / "out", "old")
    with building_out(out, doing="testing", marker="file.txt", what="test output") as temporary:
        (temporary / "file.txt").write_text("new")
        (temporary / "more.txt").write_text("more")
    assert (out / "file.txt").read_text() == "new"
    assert sorted(p.name for p in out.iterdir()) == ["file.txt", "more.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failed_write_names_the_file_as_it_would_be_in_out(tmp_path: Path) -> None:
    out = make(tmp_path / "out", "old")
    with (
        pytest.raises(InputError) as raised,
        building_out(out, doing="exporting", marker="file.txt", what="test output") as temporary,
    ):
        raise OSError(errno.ENOSPC, "No space left on device", str(temporary / "labels" / "a.txt"))
    message = str(raised.value)
    assert message.startswith(
        f"{out / 'labels' / 'a.txt'}: No space left on device while exporting"
    )
    assert "nothing was written" in message
    assert (out / "file.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_other_errors_pass_through_and_leave_nothing_behind(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with (
        pytest.raises(KeyError),
        building_out(out, doing="testing", marker="file.txt", what="test output"),
    ):
        raise KeyError("a bug, not the disk")
    assert list(tmp_path.iterdir()) == []
