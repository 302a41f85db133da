"""outputs.publish_out and building_out: the finished folder replaces the old one, or
nothing changes."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from PIL import Image

from synthgate.errors import InputError
from synthgate.outputs import building_out, publish_out


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
    from synthgate.outputs import prepare_out

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
    assert sorted(p.name for p in out.iterdir()) == [".synthgate-files", "file.txt", "more.txt"]
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


@pytest.mark.parametrize(
    ("files", "kind"),
    [
        (["manifest.json", "synthgate.db"], "run"),
        ([".synthgate-export.json"], "export"),
        (["balance.json", "merged.coco.json"], "balance output"),
        (["balance.json", "merged.jsonl"], "balance output"),
        (["merge.json", "merged.coco.json"], "merge output"),
        (["merge.json", "merged.jsonl"], "merge output"),
    ],
)
@pytest.mark.parametrize("inside", ["images/new", "new", "images/deep/new"])
def test_an_output_inside_another_synthgate_folder_is_refused(
    tmp_path: Path, files: list[str], kind: str, inside: str
) -> None:
    """Writing the outer folder again replaces everything in it (publish_out swaps the whole
    folder): a run kept inside another's images/ would be deleted with it, database and all."""
    from synthgate.outputs import check_out

    outer = tmp_path / "outer"
    (outer / "images").mkdir(parents=True)
    for name in files:
        (outer / name).write_text("{}")
    with pytest.raises(InputError, match=f"lies inside the {kind} .*outer") as refused:
        check_out(outer / inside)
    assert refused.value.field == "out"
    check_out(tmp_path / "beside")  # a folder beside it is fine


def test_a_run_inside_a_run_is_refused_before_any_work(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "small.yaml"
    config.write_text(
        "name: small\nseed: 1\ncategories: [circle]\n"
        "image: {generator: procedural, count: 2, size: [64, 64], objects_per_image: [1, 1]}\n"
    )

    def run(out: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "synthgate", "run", str(config), "--out", out],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert run("first").returncode == 0
    before = sorted(p.name for p in (tmp_path / "first" / "images").iterdir())
    refused = run("first/images/second")
    assert refused.returncode == 2, refused.stderr
    assert "lies inside the run" in " ".join(refused.stderr.split())
    assert sorted(p.name for p in (tmp_path / "first" / "images").iterdir()) == before


def test_a_failed_build_takes_away_the_folders_made_for_it(tmp_path: Path) -> None:
    (tmp_path / "kept").mkdir()  # there before: stays, empty or not
    with (
        pytest.raises(RuntimeError),
        building_out(
            tmp_path / "kept" / "new" / "x" / "out", doing="testing", marker="m", what="test output"
        ) as temporary,
    ):
        (temporary / "file.txt").write_text("half")
        raise RuntimeError("the build failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]
    assert not any((tmp_path / "kept").iterdir())


def test_a_made_folder_that_got_other_files_meanwhile_stays(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError),
        building_out(
            tmp_path / "new" / "x" / "out", doing="testing", marker="m", what="test output"
        ),
    ):
        (tmp_path / "new" / "someone_elses.txt").write_text("theirs")
        raise RuntimeError("the build failed")
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["someone_elses.txt"]


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_something_else_under_the_temporary_name_is_named(tmp_path: Path, kind: str) -> None:
    """A stale folder of that name is a build that stopped (it is replaced); a file is not ours
    to delete, and used to give "cannot write there (Not a directory)" naming out."""
    from synthgate.outputs import prepare_out

    blocking = tmp_path / ".out.partial"
    if kind == "file":
        blocking.write_text("keep")
    else:
        blocking.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InputError, match=r"\.out\.partial is in the way"):
        prepare_out(tmp_path / "out")
    assert blocking.is_symlink() or blocking.read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.partial"]


def test_a_users_balance_or_merge_json_above_out_blocks_nothing(tmp_path: Path) -> None:
    from synthgate.outputs import check_out

    (tmp_path / "balance.json").write_text("{}")  # a project's own file of that name
    (tmp_path / "merge.json").write_text("{}")
    check_out(tmp_path / "exports" / "yolo")


def test_an_export_inside_a_balance_output_is_refused_before_balance_replaces_it(
    tmp_path: Path,
) -> None:
    """README: "An output folder inside a run, balance, merge or export folder is refused".
    An export made inside a balance output was allowed, and the next balance into that folder
    swapped the whole folder and deleted the export with it."""
    from synthgate.workflows.export import export

    balanced = tmp_path / "balanced"
    (balanced / "images").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(balanced / "images" / "a.png")
    coco = {
        "images": [{"id": 1, "file_name": "images/a.png", "width": 8, "height": 8}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [1, 1, 4, 4],
                "area": 16,
                "iscrowd": 0,
            }
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }
    (balanced / "merged.coco.json").write_text(json.dumps(coco))
    (balanced / "balance.json").write_text(json.dumps({"kind": "coco"}))
    with pytest.raises(InputError, match="lies inside the balance output") as refused:
        export(balanced, format="yolo", out=balanced / "yolo")
    assert refused.value.field == "out"
    assert not (balanced / "yolo").exists()
