"""Two builds of one output at once (two people of a team balancing the same dataset into
`--out balanced/`, a script started twice, two `submit --wait` with one --out): each builds
under `.NAME.partial` beside it, and a build that found that folder took it for one a stopped
command left and removed it, under the first. Both failed then, with messages about files that
vanished ("No such file or directory while writing the balanced dataset", "coco.json: not
valid JSON") or a traceback (FileNotFoundError, sqlite3 "disk I/O error"). The second is
refused now, before it touches the first one's folder (outputs.prepare_out's lock)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from balance_fixtures import make_tiny_coco
from factories import small_config

import synthgate
from synthgate import outputs
from synthgate.config import parse_config
from synthgate.errors import InputError
from synthgate.foreign_files import BALANCE_MARKER
from synthgate.outputs import Started, building_out, discard_out, prepare_out
from synthgate.runner import InProcessRunner
from synthgate.sinks import RunFolderSink


def test_a_second_build_of_an_out_being_built_is_refused_and_the_first_keeps_its_folder(
    tmp_path: Path,
) -> None:
    """Checked on a redis cluster: two `synthgate submit same.yaml --out dist/same --wait` at
    once; one wrote dist/same, the other ended in "FileNotFoundError: dist/.same.partial/images"
    (exit 1). Two `synthgate run` with one --out do the same."""
    out = tmp_path / "run"
    first = prepare_out(out)
    (first.folder / "coco.json").write_text("{}")  # the first build at work
    with pytest.raises(InputError) as refused:
        prepare_out(out)
    assert str(refused.value) == (
        f"out={out}: another synthgate command is writing it right now (in {first.folder}); "
        "wait until that command has finished, or choose another folder"
    )
    assert (first.folder / "coco.json").read_text() == "{}"
    discard_out(first)
    again = prepare_out(out)  # the first one's lock went with its folder
    assert again.folder == first.folder and not list(again.folder.iterdir())
    discard_out(again)
    discard_out(again)  # a second discard lets no other file go: the lock is closed once


def test_a_published_build_lets_the_next_one_in(tmp_path: Path) -> None:
    """The lock goes once the output is in place: building it again is no second build."""
    out = tmp_path / "export"
    for _ in range(2):
        with building_out(out, doing="exporting", marker="x.json", what="export") as folder:
            (folder / "x.json").write_text("{}")
    assert (out / "x.json").is_file()
    assert not out.with_name(".export.partial").exists()


def test_the_folder_a_stopped_build_left_is_replaced(tmp_path: Path) -> None:
    """A build killed (SIGKILL) leaves its temporary folder: the next build replaces it."""
    out = tmp_path / "run"
    left = out.with_name(f".{out.name}.partial")
    left.mkdir()
    (left / "coco.json").write_text("{}")
    started = prepare_out(out)
    assert started.folder == left and not (left / "coco.json").exists()
    discard_out(started)


def test_a_second_balance_into_an_output_being_written_is_refused(tmp_path: Path) -> None:
    coco, images = make_tiny_coco(tmp_path / "data")
    out = tmp_path / "balanced"
    with building_out(
        out,
        doing="writing the balanced dataset",
        marker=BALANCE_MARKER,
        what="balance output",
        databases="runs/*/synthgate.db",
    ) as first:  # another command, still writing
        (first / "merged.coco.json").write_text("{}")
        with pytest.raises(InputError) as refused:
            synthgate.balance(coco, images=images, out=out, target=5)
        assert str(out) in str(refused.value)
        assert (first / "merged.coco.json").read_text() == "{}"  # its work is still there
        assert not out.exists()


class _FailsAfterTheRunFolder:
    """A sink behind the run folder (the shared database of `serve` and the workers) whose
    finish fails once the run folder is published, after another build of the same --out
    started: the run folder sink is aborted after its finish."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.other: Started | None = None

    def start(self, run: object) -> None:
        pass

    def add(self, chunk: object) -> None:
        pass

    def finish(self, totals: object) -> None:
        self.other = prepare_out(self.out)  # the next submit --wait of the same --out
        (self.other.folder / "coco.json").write_text("{}")
        raise RuntimeError("the shared database went away")

    def abort(self) -> None:
        pass


def test_a_run_folder_aborted_after_it_was_published_leaves_the_next_build_alone(
    tmp_path: Path,
) -> None:
    """The run folder sink published, let its lock go, and was aborted (a later sink failed,
    or Ctrl-C): it removed .NAME.partial again, by then the next build's folder."""
    out = tmp_path / "run"
    after = _FailsAfterTheRunFolder(out)
    config = parse_config(small_config(text=None), source=tmp_path / "small.yaml")
    with pytest.raises(RuntimeError):
        InProcessRunner().run(config, sinks=[RunFolderSink(out), after])
    assert after.other is not None
    assert (after.other.folder / "coco.json").read_text() == "{}"  # its work is still there
    assert (out / "manifest.json").is_file()  # the published run stays
    discard_out(after.other)


@pytest.mark.parametrize("code", [errno.ENOLCK, errno.EOPNOTSUPP, errno.EBADF])
def test_a_file_system_without_locks_still_takes_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """Some network file systems (NFS without lockd, some FUSE and SMB mounts) refuse flock with
    ENOLCK or EOPNOTSUPP, and an NFS client refuses an exclusive flock of a file not open for
    writing (a folder never is) with EBADF: every build was refused there, 'cannot write there
    (No locks available)', and the empty .NAME.partial stayed. Without locks the output is built as
    before them (builds of one output at once are not told apart, as on Windows)."""

    def no_locks(handle: int, operation: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(outputs.fcntl, "flock", no_locks)
    out = tmp_path / "export"
    with building_out(out, doing="exporting", marker="x.json", what="export") as folder:
        (folder / "x.json").write_text("{}")
    assert (out / "x.json").is_file()
    assert not out.with_name(".export.partial").exists()


def test_a_leftover_replaced_by_another_build_meanwhile_is_not_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two builds find a stopped build's leftover at once. The first locks it, removes it and
    makes and locks its own folder; the second had opened the leftover before and now gets
    its lock (of a folder gone) and removed the first one's new folder by its name."""
    out = tmp_path / "run"
    left = out.with_name(f".{out.name}.partial")
    left.mkdir()
    real_flock = outputs.fcntl.flock
    first: list[Started] = []

    def first_build_runs_in_between(handle: int, operation: int) -> None:
        if not first:  # the second build holds the leftover open: the first one runs now
            monkeypatch.setattr(outputs.fcntl, "flock", real_flock)
            first.append(prepare_out(out))
            (first[0].folder / "coco.json").write_text("{}")
        real_flock(handle, operation)

    monkeypatch.setattr(outputs.fcntl, "flock", first_build_runs_in_between)
    with pytest.raises(InputError, match="another synthgate command is writing it"):
        prepare_out(out)
    assert (first[0].folder / "coco.json").read_text() == "{}"
    discard_out(first[0])


def test_a_build_stopped_just_after_it_was_published_leaves_the_next_build_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C between publishing and letting the lock go: the discard removed .NAME.partial,
    by then the folder of the next build (its name was free once the first was published)."""
    out = tmp_path / "export"
    real_release = outputs.release_out
    other: list[Started] = []

    def next_build_then_ctrl_c(started: Started) -> None:
        if not other:
            other.append(prepare_out(out, marker="x.json", what="export"))
            (other[0].folder / "x.json").write_text("{}")
            raise KeyboardInterrupt
        real_release(started)

    monkeypatch.setattr(outputs, "release_out", next_build_then_ctrl_c)
    with (
        pytest.raises(KeyboardInterrupt),
        building_out(out, doing="exporting", marker="x.json", what="export") as folder,
    ):
        (folder / "x.json").write_text("[]")
    assert (other[0].folder / "x.json").read_text() == "{}"
    assert (out / "x.json").read_text() == "[]"
    discard_out(other[0])
