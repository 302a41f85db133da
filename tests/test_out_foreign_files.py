"""Writing a synthgate folder again never deletes a file synthgate did not write there.

A run, an export, a balance or a merge output is replaced whole when it is written again
(outputs.py, foreign_files.py): a notes.txt the user put into runs/my-batch/, an image added to an export, went
with it, silently. Now such a file stops the rebuild before any work starts (exit 2, the files
named, the fix said) and stays where it is; an untouched folder is rebuilt as before, and the
files synthgate itself writes into the folder later (its database's -wal and -shm files while a
review reads it) never stop it."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from balance_fixtures import make_tiny_coco
from export_fixtures import write_coco
from factories import small_config
from typer.testing import CliRunner

import synthgate
import synthgate.foreign_files as foreign_files_module
from synthgate.cli import app
from synthgate.errors import InputError
from synthgate.foreign_files import WRITTEN_LIST, foreign_files, write_written_list, written_list
from synthgate.outputs import building_out, check_out

runner = CliRunner()
CONFIG = small_config(
    image={"generator": "procedural", "count": 3, "size": [64, 48], "objects_per_image": [1, 2]}
)
CONFIG["text"]["count"] = 2


def invoke(*args: str | Path) -> tuple[int, str]:
    """A command through the CLI: its exit code and its output on one line."""
    result = runner.invoke(app, [str(arg) for arg in args])
    return result.exit_code, " ".join(result.output.split())


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def beside(folder: Path) -> list[str]:
    """What lies beside `folder` under its temporary names (.NAME.partial, .NAME.previous)."""
    return sorted(p.name for p in folder.parent.glob(f".{folder.name}.*"))


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "small.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


@pytest.fixture(scope="module")
def first_run(config_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("first") / "run"
    code, output = invoke("run", config_file, "--out", out)
    assert code == 0, output
    return out


@pytest.fixture
def run_folder(first_run: Path, tmp_path: Path) -> Path:
    """A finished run folder of this test's own (a copy of the module's)."""
    out = tmp_path / "runs" / "my-batch"
    shutil.copytree(first_run, out)
    return out


# --- run folders -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["notes.txt", "images/mine.png", "mine/deep/labels.json", "accepted.coco.json.bak"]
)
def test_a_file_of_the_users_in_a_run_folder_stops_the_rerun(
    config_file: Path, run_folder: Path, name: str
) -> None:
    mine = run_folder / name
    mine.parent.mkdir(parents=True, exist_ok=True)
    mine.write_bytes(b"mine")
    before = snapshot(run_folder)
    code, output = invoke("run", config_file, "--out", run_folder)
    assert code == 2 and "Traceback" not in output, output
    assert (
        f"--out {run_folder}: holds 1 file synthgate did not write ({name}), which writing "
        f"this run again would delete; move it out of {run_folder}, then run again"
    ) in output
    assert mine.read_bytes() == b"mine" and snapshot(run_folder) == before
    assert beside(run_folder) == []  # refused before any work: no temporary folder made


def test_many_files_are_named_five_at_most_and_the_rest_counted(
    config_file: Path, run_folder: Path
) -> None:
    for i in range(7):
        (run_folder / f"note-{i}.txt").write_text("mine")
    code, output = invoke("run", config_file, "--out", run_folder)
    assert code == 2, output
    assert (
        "holds 7 files synthgate did not write (note-0.txt, note-1.txt, note-2.txt, "
        "note-3.txt, note-4.txt and 2 more), which writing this run again would delete; move "
        "them out of"
    ) in output
    assert len(list(run_folder.glob("note-*.txt"))) == 7


def test_a_link_in_a_run_folder_stops_the_rerun_and_its_target_is_untouched(
    config_file: Path, run_folder: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "my-data"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    (run_folder / "data").symlink_to(elsewhere, target_is_directory=True)
    code, output = invoke("run", config_file, "--out", run_folder)
    assert code == 2 and "holds 1 file synthgate did not write (data)" in output, output
    assert (run_folder / "data").is_symlink() and (elsewhere / "keep.txt").read_text() == "mine"


def test_an_untouched_run_folder_is_rerun_as_before(config_file: Path, run_folder: Path) -> None:
    before = snapshot(run_folder)
    (run_folder / "images").joinpath("empty-folder").mkdir()  # no file in it: nobody's data
    code, output = invoke("run", config_file, "--out", run_folder)
    assert code == 0, output
    after = snapshot(run_folder)
    assert after.keys() == before.keys() and not (run_folder / "images" / "empty-folder").exists()
    for name in ("coco.json", "accepted.coco.json", "text.jsonl", "report.md"):
        assert after[name] == before[name]
    assert not (run_folder / WRITTEN_LIST).exists()  # a run folder holds the files it always did
    assert beside(run_folder) == []


@pytest.fixture
def reviewed_open(run_folder: Path) -> Iterator[Path]:
    """The run queued for review (no decision yet) with its database held open by a reader, as
    `serve` holds it: SQLite's -wal and -shm files lie beside it."""
    from synthgate.review.queue import ReviewQueue
    from synthgate.storage.store import Store, sqlite_url

    store = Store(sqlite_url(run_folder / "synthgate.db"))
    batch_id = json.loads((run_folder / "manifest.json").read_text())["batch_id"]
    first = next(store.iter_samples(batch_id, "image"))
    store.upsert_samples([first.model_copy(update={"status": "review"})])
    ReviewQueue(store, annotators_per_item=1, gold_rate=0.0).enqueue_batch(batch_id)
    store.close()
    reader = sqlite3.connect(run_folder / "synthgate.db")
    reader.execute("SELECT COUNT(*) FROM samples").fetchone()
    try:
        yield run_folder
    finally:
        reader.close()


def test_the_run_folders_own_later_files_do_not_stop_the_rerun(
    config_file: Path, reviewed_open: Path, tmp_path: Path
) -> None:
    run_folder = reviewed_open
    assert (run_folder / "synthgate.db-wal").is_file()
    assert (run_folder / "synthgate.db-shm").is_file()
    (run_folder / "synthgate.db-journal").write_bytes(b"")  # a rollback journal a crash left
    (run_folder / ".DS_Store").write_bytes(b"\0")  # the Finder looked at it
    (run_folder / "images" / "Thumbs.db").write_bytes(b"\0")  # and Explorer
    # Commands that read the run (its review state) leave their outputs elsewhere ...
    code, output = invoke("export", run_folder, "--format", "yolo", "--out", tmp_path / "yolo")
    assert code == 0, output
    tasks = tmp_path / "tasks.json"
    code, output = invoke("review", "export", "--run", run_folder, "-o", tasks)
    assert code == 0 and tasks.is_file(), output
    # ... and never in it: a file written there would stop the next run
    code, output = invoke("review", "export", "--run", run_folder, "-o", run_folder / "t.json")
    assert code == 2 and "lies inside the run" in output and "stops" in output, output
    assert foreign_files(run_folder, marker="manifest.json") == []
    code, output = invoke("run", config_file, "--out", run_folder)
    assert code == 0, output
    assert not (run_folder / ".DS_Store").exists() and beside(run_folder) == []


def test_a_file_put_into_the_run_folder_while_it_is_rerun_stops_the_publish(
    config_file: Path, run_folder: Path
) -> None:
    """The run was checked before it started; a file that arrives while the new run is made
    (minutes to hours) is found before the old folder goes: the new run is dropped."""
    before = snapshot(run_folder)
    late = run_folder / "late.txt"

    def progress(modality: str, done: int, total: int) -> None:
        late.write_text("mine")

    with pytest.raises(InputError) as refused:
        synthgate.run(config_file, out=run_folder, progress=progress)
    message = str(refused.value)
    assert "holds 1 file synthgate did not write (late.txt), put there while the new run" in message
    assert f"the new run was not kept and {run_folder} is as it was" in message
    assert late.read_text() == "mine"
    assert snapshot(run_folder) == {**before, "late.txt": b"mine"}
    assert beside(run_folder) == []


def test_a_decision_recorded_while_the_run_is_made_again_stops_the_publish(
    config_file: Path, reviewed_open: Path
) -> None:
    """The run was checked before it started (its queue had no decision yet); an annotator who
    decides while the new run is made would lose that decision with the old folder: the new
    run is dropped and the decision stays."""
    from synthgate.review.queue import Decision, ReviewQueue
    from synthgate.storage.store import Store, sqlite_url

    decided: list[int] = []

    def progress(modality: str, done: int, total: int) -> None:
        if decided:
            return
        store = Store(sqlite_url(reviewed_open / "synthgate.db"))
        queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.0)
        task = queue.next_item("ann")
        assert task is not None
        queue.decide(task.item_id, "ann", Decision(verdict="accept"))
        decided.append(task.item_id)
        store.close()

    with pytest.raises(InputError) as refused:
        synthgate.run(config_file, out=reviewed_open, progress=progress)
    message = str(refused.value)
    assert "holds 1 human review decision (recorded while the new run was made" in message
    store = Store(sqlite_url(reviewed_open / "synthgate.db"))
    try:
        assert decided and ReviewQueue(store).stats()["annotators"]["ann"]["decided"] == 1
    finally:
        store.close()
    assert beside(reviewed_open) == []


def test_a_folder_the_user_makes_at_a_new_out_while_the_run_is_made_is_not_deleted(
    config_file: Path, tmp_path: Path
) -> None:
    """--out runs/new did not exist when the run was checked; while it runs, the user puts
    photos/cat.jpg and their own coco.json there. The publish must refuse (as it does for a
    late.txt in an earlier run folder), not take the folder for an old run and delete both
    (a second read found this and the next)."""
    out = tmp_path / "runs" / "new"
    cat = out / "photos" / "cat.jpg"
    coco = out / "coco.json"

    def progress(modality: str, done: int, total: int) -> None:
        cat.parent.mkdir(parents=True, exist_ok=True)
        cat.write_bytes(b"mine")
        coco.write_text("my own labels")

    with pytest.raises(InputError):
        synthgate.run(config_file, out=out, progress=progress)
    assert cat.is_file() and cat.read_bytes() == b"mine"
    assert coco.read_text() == "my own labels"


def test_a_users_file_in_a_run_folder_whose_database_was_removed_stops_the_rerun(
    config_file: Path, first_run: Path, tmp_path: Path
) -> None:
    """The run's manifest.json is there (it marks the run and lists what the run wrote at its
    top); only synthgate.db was removed. mine/labels.json is no file of the run's."""
    run_folder = tmp_path / "runs" / "my-batch"
    shutil.copytree(first_run, run_folder)
    (run_folder / "synthgate.db").unlink()
    mine = run_folder / "mine" / "labels.json"
    mine.parent.mkdir()
    mine.write_text("mine")
    result = runner.invoke(app, ["run", str(config_file), "--out", str(run_folder)])
    assert mine.is_file(), "the rerun deleted mine/labels.json"
    assert result.exit_code == 2 and "mine/labels.json" in result.output, result.output


# --- exports -----------------------------------------------------------------------------------


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_coco(tmp_path / "src")


def export_to(source: Path, out: Path, fmt: str, *extra: str) -> tuple[int, str]:
    images = source.parent / "images"
    # --skip-invalid: the fixture's crowd region has a polygon COCO cannot hold (YOLO, VOC drop it)
    args = ("--images", images, "--format", fmt, "--out", out, "--skip-invalid")
    return invoke("export", source, *args, *extra)


@pytest.mark.parametrize(
    ("fmt", "added"),
    [
        # an image with its label: YOLO names its images by their labels' stems only
        ("yolo", ["images/train/extra.png", "labels/train/extra.txt"]),
        ("voc", ["JPEGImages/extra.png", "Annotations/extra.xml"]),
        ("coco", ["images/train/extra.png"]),
        ("coco", ["README.md"]),
    ],
)
def test_a_file_added_to_an_export_stops_the_forced_export(
    source: Path, tmp_path: Path, fmt: str, added: list[str]
) -> None:
    out = tmp_path / "exported"
    assert export_to(source, out, fmt)[0] == 0
    for name in added:
        (out / name).write_bytes(b"mine")
    before = snapshot(out)
    code, output = export_to(source, out, fmt, "--force")
    assert code == 2 and "Traceback" not in output, output
    files = "1 file" if len(added) == 1 else f"{len(added)} files"
    assert (
        f"--out {out}: holds {files} synthgate did not write ({', '.join(sorted(added))}), "
        f"which writing this export again would delete; move"
    ) in output
    assert snapshot(out) == before and beside(out) == []


@pytest.mark.parametrize("fmt", ["yolo", "voc", "coco"])
def test_an_untouched_export_is_replaced_with_force(source: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "exported"
    assert export_to(source, out, fmt)[0] == 0
    first = snapshot(out)
    code, output = export_to(source, out, fmt, "--force", "--seed", "3")
    assert code == 0, output
    listed = written_list(out)
    assert listed is not None and listed | {WRITTEN_LIST} == set(snapshot(out))
    assert set(first) == set(snapshot(out)) or fmt != "voc"  # the same names, subsets aside
    assert beside(out) == []


def test_an_export_of_an_earlier_synthgate_is_checked_by_its_files_at_the_top(
    source: Path, tmp_path: Path
) -> None:
    """A folder written before the list was kept: its subfolders are taken as its own, a file at
    the top that no export writes is not."""
    out = tmp_path / "exported"
    assert export_to(source, out, "yolo")[0] == 0
    (out / WRITTEN_LIST).unlink()
    (out / "notes.txt").write_text("mine")
    code, output = export_to(source, out, "yolo", "--force")
    assert code == 2 and "(notes.txt)" in output, output
    (out / "notes.txt").unlink()
    assert export_to(source, out, "yolo", "--force")[0] == 0
    assert written_list(out) is not None  # listed from now on


# --- balance and merge outputs -----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_tiny_coco(tmp_path_factory.mktemp("tiny"))


def balance_into(tiny: tuple[Path, Path], out: Path) -> tuple[int, str]:
    coco, images = tiny
    return invoke("balance", "--coco", coco, "--images", images, "--out", out)


@pytest.fixture(scope="module")
def first_balance(tiny: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("balanced") / "out"
    code, output = balance_into(tiny, out)
    assert code == 0, output
    return out


@pytest.fixture
def balanced(first_balance: Path, tmp_path: Path) -> Path:
    out = tmp_path / "balanced"
    shutil.copytree(first_balance, out)
    return out


def a_run_in(balanced: Path) -> str:
    return json.loads((balanced / "balance.json").read_text())["runs"][0]


@pytest.mark.parametrize(
    "where", ["notes.txt", "images/extra.png", "RUN/notes.txt", "plots/my.svg"]
)
def test_a_file_in_a_balance_output_stops_the_rerun(
    tiny: tuple[Path, Path], balanced: Path, where: str
) -> None:
    name = where.replace("RUN", a_run_in(balanced))
    (balanced / name).write_bytes(b"mine")
    before = snapshot(balanced)
    code, output = balance_into(tiny, balanced)
    assert code == 2 and "Traceback" not in output, output
    assert (
        f"holds 1 file synthgate did not write ({name}), which writing this balance output "
        "again would delete"
    ) in output
    assert snapshot(balanced) == before and beside(balanced) == []


def test_a_balance_outputs_own_later_files_do_not_stop_the_rerun(
    tiny: tuple[Path, Path], balanced: Path
) -> None:
    """Its runs are reviewed in place (--run balanced/runs/NAME): their databases' -wal and
    -shm files lie beside them while they are read."""
    database = balanced / a_run_in(balanced) / "synthgate.db"
    reader = sqlite3.connect(database)
    try:
        reader.execute("SELECT COUNT(*) FROM samples").fetchone()
        assert database.with_name("synthgate.db-wal").is_file()
        assert foreign_files(balanced, marker="balance.json") == []
        code, output = balance_into(tiny, balanced)
    finally:
        reader.close()
    assert code == 0, output
    assert beside(balanced) == []


def test_a_file_in_a_merge_output_stops_the_merge_again(
    tiny: tuple[Path, Path], balanced: Path, tmp_path: Path
) -> None:
    coco, images = tiny
    run_dir = balanced / a_run_in(balanced)
    out = tmp_path / "merged"
    args = ("merge", "--real", coco, "--synthetic", run_dir, "--images", images, "--out", out)
    assert invoke(*args)[0] == 0
    assert invoke(*args)[0] == 0  # an earlier merge output is replaced
    (out / "images" / "mine.png").write_bytes(b"mine")
    code, output = invoke(*args)
    assert code == 2, output
    assert "holds 1 file synthgate did not write (images/mine.png), which writing this merge" in (
        output
    )
    assert (out / "images" / "mine.png").read_bytes() == b"mine"


# --- how often a folder is walked -------------------------------------------------------------


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The folders `foreign_files` walks, in order: each walk reads every file's name (~0.75 s
    for a run of 100k images)."""
    walked: list[Path] = []
    real = foreign_files_module.foreign_files

    def walking(out: Path, **options: Any) -> list[str]:
        walked.append(out)
        return real(out, **options)

    monkeypatch.setattr(foreign_files_module, "foreign_files", walking)
    return walked


def test_a_rerun_walks_its_folder_before_any_work_and_at_publish_only(
    config_file: Path, run_folder: Path, walks: list[Path]
) -> None:
    """It walked it three times: at setup, again when the run started (nothing had been done
    between), and at publish."""
    code, output = invoke("run", config_file, "--out", run_folder)
    assert code == 0, output
    assert walks == [run_folder, run_folder]


def test_an_export_balance_and_merge_walk_their_folder_twice(
    source: Path, tiny: tuple[Path, Path], balanced: Path, tmp_path: Path, walks: list[Path]
) -> None:
    exported = tmp_path / "exported"
    assert export_to(source, exported, "coco")[0] == 0
    assert walks == []  # a new folder: nothing of the user's to look for
    assert export_to(source, exported, "coco", "--force")[0] == 0
    assert walks == [exported, exported]
    walks.clear()
    assert balance_into(tiny, balanced)[0] == 0
    assert walks == [balanced, balanced]
    coco, images = tiny
    merged = tmp_path / "merged"
    args = ("merge", "--real", coco, "--synthetic", balanced / a_run_in(balanced))
    assert invoke(*args, "--images", images, "--out", merged)[0] == 0
    walks.clear()
    assert invoke(*args, "--images", images, "--out", merged)[0] == 0
    assert walks == [merged, merged]


# --- the list itself ---------------------------------------------------------------------------


def test_the_list_holds_any_name_a_file_system_gives(tmp_path: Path) -> None:
    folder = tmp_path / "built"
    names = ["a b.txt", "new\nline.txt", "ünï ćødé.png", os.fsdecode(b"latin-\xe9.txt")]
    (folder / "deep" / "er").mkdir(parents=True)
    for name in names:
        (folder / "deep" / name).write_text("x")
    (folder / "top.json").write_text("{}")
    (folder / "empty").mkdir()
    write_written_list(folder)
    assert written_list(folder) == {"top.json", *(f"deep/{name}" for name in names)}
    assert (folder / WRITTEN_LIST).read_bytes().isascii()
    assert foreign_files(folder, marker="top.json") == []
    (folder / "deep" / "er" / "mine.txt").write_text("mine")
    assert foreign_files(folder, marker="top.json") == ["deep/er/mine.txt"]


def test_building_out_lists_what_it_built_and_refuses_a_file_added_meanwhile(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    with building_out(out, doing="testing", marker="m.json", what="test output") as temporary:
        (temporary / "m.json").write_text("{}")
        (temporary / "sub").mkdir()
        (temporary / "sub" / "a.txt").write_text("a")
    assert written_list(out) == {"m.json", "sub/a.txt"}
    check_out(out, marker="m.json", what="test output")  # nothing foreign: passes
    with (
        pytest.raises(InputError, match=r"\(sub/late\.txt\), put there while the new test output"),
        building_out(out, doing="testing", marker="m.json", what="test output") as temporary,
    ):
        (temporary / "m.json").write_text('{"new": 1}')
        (out / "sub" / "late.txt").write_text("mine")
    assert (out / "m.json").read_text() == "{}" and (out / "sub" / "late.txt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
