"""Two builds of one output at once (two people of a team balancing the same dataset into
`--out balanced/`, a script started twice, two `submit --wait` with one --out): each builds
under `.NAME.partial` beside it, and a build that found that folder took it for one a stopped
command left and removed it, under the first. Both failed then, with messages about files that
vanished ("No such file or directory while writing the balanced dataset", "coco.json: not
valid JSON") or a traceback (FileNotFoundError, sqlite3 "disk I/O error"). The second is
refused now, before it touches the first one's folder (outputs.prepare_out's lock)."""

from __future__ import annotations

from pathlib import Path

import pytest
from balance_fixtures import make_tiny_coco

import synthgate
from synthgate.errors import InputError
from synthgate.foreign_files import BALANCE_MARKER
from synthgate.outputs import building_out, discard_out, prepare_out


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
