"""Bad input to `synthgate run`: one clear message naming file and field, exit 2, nothing written."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from factories import SUPPORT_TICKETS, small_config

import synthgate


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synthgate", "run", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _with(path: str, value: object) -> dict:
    config = small_config()
    *parents, key = path.split(".")
    node = config
    for part in parents:
        node = node[part]
    node[key] = value
    return config


BAD_INPUT_CASES = [
    # (id, config content or None for a missing file, words the message must hold)
    ("missing-file", None, ["not found"]),
    ("yaml-syntax", "name: x\nimage: {count: 3\n", ["YAML syntax error", "line"]),
    (
        "unknown-top-key",
        yaml.safe_dump({**small_config(), "colour": "red"}),
        ["unknown key", "colour"],
    ),
    (
        "unknown-nested-key",
        yaml.safe_dump(_with("image.objets", 3)),
        ["unknown key", "image.objets"],
    ),
    ("count-zero", yaml.safe_dump(_with("image.count", 0)), ["image.count", "greater than 0"]),
    ("count-negative", yaml.safe_dump(_with("text.count", -3)), ["text.count", "-3"]),
    (
        "unknown-generator",
        yaml.safe_dump(_with("image.generator", "dreamer")),
        ["image.generator", "dreamer"],
    ),
    (
        "missing-templates",
        yaml.safe_dump(_with("text.templates", "nope.yaml")),
        ["text.templates", "nope.yaml"],
    ),
    ("not-a-mapping", "- just\n- a list\n", ["mapping"]),
    # category names every export can hold, one class each
    ("blank-category", yaml.safe_dump(small_config(categories=["circle", " "])), ["blank"]),
    (
        "category-twice",
        yaml.safe_dump(small_config(categories=["circle", "square", "circle"])),
        ["'circle' is listed twice"],
    ),
    (
        "category-with-a-tab",
        yaml.safe_dump(small_config(categories=["big\tcircle"])),
        ["control character"],
    ),
    (  # a line break YOLO's data.yaml reader splits at (str.splitlines)
        "category-with-a-line-separator",
        yaml.safe_dump(small_config(categories=["big\u2028circle"])),
        ["control character or line break"],
    ),
    (
        "category-yaml-reads-as-a-boolean",
        yaml.safe_dump(small_config(categories=["circle", True])),
        ["categories.1", "YAML reads yes, on and true as a boolean: write the word in quotes"],
    ),
    # `count: yes` made one image, `objects_per_image: [on, 3]` read as [1, 3] (bool is an int)
    (
        "count-yaml-reads-as-a-boolean",
        yaml.safe_dump(_with("image.count", True)),
        ["image.count", "YAML read a boolean", "write the number"],
    ),
    (
        "range-yaml-reads-as-a-boolean",
        yaml.safe_dump(_with("image.objects_per_image", [True, 3])),
        ["image.objects_per_image", "YAML read a boolean", "[True, 3]"],
    ),
    # a blank locale was run as Faker's default (en_US) and recorded as ''
    ("blank-locale", yaml.safe_dump(_with("text.locales", ["en_US", ""])), ["text.locales", "''"]),
    # these three were refused once the generator or rubric was built, without the file named
    (
        "unknown-locale",
        yaml.safe_dump(_with("text.locales", ["en_US", "xx_YY"])),
        ["batch.yaml: text.locales: 'xx_YY' is not a Faker locale"],
    ),
    (
        "templates-a-folder",
        yaml.safe_dump(_with("text.templates", str(SUPPORT_TICKETS.parent))),
        ["batch.yaml: text.templates:", "is a folder; give the template file itself"],
    ),
    (
        "image-rubric-for-text",
        yaml.safe_dump(_with("text.rubric", "detection")),
        ["batch.yaml: text.rubric: detection judges image samples, not text"],
    ),
    (
        "text-rubric-for-images",
        yaml.safe_dump(_with("image.rubric", "ner")),
        ["batch.yaml: image.rubric: ner judges text samples, not image"],
    ),
    (  # said "rubric 'nope': no such file", naming neither the config file nor the field
        "rubric-neither-shipped-nor-a-file",
        yaml.safe_dump(_with("image.rubric", "nope")),
        ["batch.yaml: image.rubric: rubric 'nope': no such file", "'detection'"],
    ),
    # each was made without a word: a locale listed twice weighted the plan, '3' was read as 3
    (
        "locale-twice",
        yaml.safe_dump(_with("text.locales", ["en_US", "en_US"])),
        ["batch.yaml: text.locales: locale 'en_US' is listed twice"],
    ),
    (
        "count-in-quotes",
        yaml.safe_dump(_with("text.count", "3")),
        ["batch.yaml: text.count: is text where a number goes", "(got '3')"],
    ),
    (  # a box wider than the image: a numpy traceback from the layout draw
        "layout-box-wider-than-the-image",
        yaml.safe_dump(
            small_config(
                text=None,
                image={
                    "generator": "diffusion_layout",
                    "count": 2,
                    "size": [64, 64],
                    "box_scale_range": [0.5, 1.2],
                    "model": {"path": "batch.yaml"},
                },
            )
        ),
        ["image.box_scale_range", "max must be <= 1", "[0.5, 1.2]"],
    ),
    (
        "hundreds-of-unknown-keys",
        yaml.safe_dump({**small_config(), **{f"key{i:03}": i for i in range(300)}}),
        ["unknown key 'key000'", "... and 280 more problems"],
    ),
]


@pytest.mark.parametrize(
    ("case", "content", "words"), BAD_INPUT_CASES, ids=[c[0] for c in BAD_INPUT_CASES]
)
def test_bad_config_is_one_clear_message(
    tmp_path: Path, case: str, content: str | None, words: list[str]
) -> None:
    config = tmp_path / "batch.yaml"
    if content is not None:
        config.write_text(content)
    out = tmp_path / "out"
    result = _run(str(config), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""  # no progress bar began: not even the empty line of one
    message = " ".join(result.stderr.split())
    assert str(config.name) in message
    for word in words:
        assert word in message, message
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == (["batch.yaml"] if content is not None else [])


MODEL_NOT_THERE = [
    # (id, the section, the message): found once the generator was built, without the file named
    (
        "diffusion",
        {"generator": "diffusion_layout", "count": 2, "size": [64, 64], "model": {"path": "nope"}},
        "batch.yaml: image.model.path: no model at 'nope'",
    ),
    (
        "text-model",
        {"generator": "text_model", "count": 2, "source": "rows.jsonl", "model": {"path": "nope"}},
        "batch.yaml: text.model.path: no model at 'nope'",
    ),
]


@pytest.mark.parametrize(
    ("case", "section", "message"), MODEL_NOT_THERE, ids=[c[0] for c in MODEL_NOT_THERE]
)
def test_a_model_that_is_not_there_names_the_config_file(
    tmp_path: Path, case: str, section: dict, message: str
) -> None:
    pytest.importorskip("torch")  # the diffusion extra: without it, that is what is said
    pytest.importorskip("transformers")
    modality = "image" if case == "diffusion" else "text"
    (tmp_path / "rows.jsonl").write_text('{"text": "It works.", "label": "pos"}\n')
    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config(**{modality: section})))
    out = tmp_path / "out"
    result = _run(str(config), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert message in " ".join(result.stderr.split()), result.stderr
    assert not out.exists()
    with pytest.raises(synthgate.InputError) as raised:  # the library's generate too
        synthgate.generate(config, modality=modality)
    assert message in str(raised.value)


def test_unknown_faker_provider_is_named(tmp_path: Path) -> None:
    templates = tmp_path / "tickets.yaml"
    templates.write_text(
        yaml.safe_dump(
            {"task": "ner", "labels": ["PERSON"], "templates": ["Hello {PERSON:no_such_provider}."]}
        )
    )
    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(_with("text.templates", str(templates))))
    out = tmp_path / "out"
    result = _run(str(config), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "no_such_provider" in result.stderr and "tickets.yaml" in result.stderr
    assert not out.exists()


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root can write anywhere; see the read-only file case"
)
def test_unwritable_out_as_user(tmp_path: Path) -> None:  # pragma: no cover - root on CI
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config()))
    result = _run(str(config), "--out", str(locked / "run"), cwd=tmp_path)
    assert result.returncode == 2 and "cannot write" in result.stderr


def test_out_below_a_file_is_refused(tmp_path: Path) -> None:
    """An --out whose parent is a file cannot be written, even as root."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config()))
    result = _run(str(config), "--out", str(blocker / "run"), cwd=tmp_path)
    assert result.returncode == 2
    assert "--out" in result.stderr and "cannot write" in result.stderr
    assert "Traceback" not in result.stderr
    assert blocker.read_text() == "not a folder"


def test_out_that_is_not_a_run_is_not_replaced(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config()))
    result = _run(str(config), "--out", str(precious), cwd=tmp_path)
    assert result.returncode == 2 and "not a synthgate run" in result.stderr
    assert (precious / "notes.txt").read_text() == "keep me"


def test_a_full_disk_while_the_run_folder_is_written_is_one_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PNG that cannot be written once the run started was a traceback (exit 1) that left
    .run.partial behind: it is a refusal of --out naming the file, exit 2, nothing left."""
    from typer.testing import CliRunner

    from synthgate import sinks
    from synthgate.cli import app

    def disk_full(pixels: object) -> bytes:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sinks, "encode_png", disk_full)
    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config()))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(out)])
    said = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert f"error: --out {out}: No space left on device while writing images/" in said, said
    assert "nothing was published" in said and "then run again" in said, said
    assert "Traceback" not in said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.yaml"]


def test_a_full_disk_while_the_run_folders_database_is_written_is_one_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite says a full disk its own way (SQLITE_FULL, through SQLAlchemy's
    OperationalError), not as an OSError: the run folder's database filling up was a
    traceback (exit 1), and serve's batch a bug. It is the folder's refusal, as a PNG is."""
    import sqlalchemy
    from typer.testing import CliRunner

    from synthgate import sinks
    from synthgate.cli import app

    def disk_full(self: object, chunk: object) -> None:
        engine = sqlalchemy.create_engine("sqlite://")
        with engine.connect() as connection:  # a real SQLITE_FULL, as a full disk gives it
            connection.exec_driver_sql("PRAGMA max_page_count = 2")
            connection.exec_driver_sql("CREATE TABLE t (x)")
            for _ in range(100):
                connection.exec_driver_sql("INSERT INTO t VALUES (?)", ("x" * 1000,))

    monkeypatch.setattr(sinks.DatabaseSink, "add", disk_full)
    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config()))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(out)])
    said = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert (
        f"error: --out {out}: the database or the disk is full while writing synthgate.db; "
        "nothing was published; free space on its disk"
    ) in said, said
    assert "Traceback" not in said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.yaml"]


def test_a_disk_io_error_while_the_run_folders_database_is_written_is_one_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write SQLite's disk refused for another reason than ENOSPC (EDQUOT, a quota used up;
    EIO) is "disk I/O error" (SQLITE_IOERR_WRITE), not SQLITE_FULL: it was a traceback (exit
    1) that left .run.partial behind. It is the folder's refusal as a full disk is, in words
    that do not say the disk is full."""
    import sqlite3

    import sqlalchemy.exc
    from typer.testing import CliRunner

    from synthgate import sinks
    from synthgate.cli import app

    def disk_io_error(self: object, chunk: object) -> None:
        error = sqlite3.OperationalError("disk I/O error")  # as SQLite raises it on EDQUOT
        error.sqlite_errorcode = sqlite3.SQLITE_IOERR_WRITE  # type: ignore[attr-defined]
        error.sqlite_errorname = "SQLITE_IOERR_WRITE"  # type: ignore[attr-defined]
        raise sqlalchemy.exc.OperationalError("INSERT INTO samples ...", {}, error)

    monkeypatch.setattr(sinks.DatabaseSink, "add", disk_io_error)
    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config()))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(out)])
    said = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert (
        f"error: --out {out}: disk I/O error (a disk quota, a full or failing disk) while "
        "writing synthgate.db; nothing was published; check its disk for room, quota and "
        "errors (or choose another folder), then run again"
    ) in said, said
    assert "is full" not in said and "Traceback" not in said, said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.yaml"]


@pytest.mark.parametrize(
    "code", ["SQLITE_IOERR_SHMMAP", "SQLITE_IOERR_SHMOPEN", "SQLITE_IOERR_LOCK", "SQLITE_PROTOCOL"]
)
def test_a_locking_error_of_the_run_folders_database_names_its_file_system(
    code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's locks and the shared memory of its write-ahead log fail where the folder's
    file system does not give them (a network file system, typically): that was "disk I/O
    error (a disk quota, a full or failing disk)", "check its disk for room, quota and
    errors", a disk with room to spare. It says what failed, and to use a local disk."""
    import sqlite3

    import sqlalchemy.exc
    from typer.testing import CliRunner

    from synthgate import sinks
    from synthgate.cli import app

    def locking_error(self: object, chunk: object) -> None:
        error = sqlite3.OperationalError("disk I/O error")
        error.sqlite_errorcode = getattr(sqlite3, code)  # type: ignore[attr-defined]
        error.sqlite_errorname = code  # type: ignore[attr-defined]
        raise sqlalchemy.exc.OperationalError("INSERT INTO samples ...", {}, error)

    monkeypatch.setattr(sinks.DatabaseSink, "add", locking_error)
    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config()))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(out)])
    said = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert (
        f"error: --out {out}: its file system does not give SQLite's file locks or shared "
        f"memory ({code}; a network file system?) while writing synthgate.db; nothing was "
        "published; choose a folder on a local disk, then run again"
    ) in said, said
    assert "disk I/O" not in said and "Traceback" not in said, said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.yaml"]


def test_a_publish_whose_restore_fails_too_says_where_the_previous_run_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Publishing moves the old run aside to .NAME.previous, renames the new one into place
    and, if that fails, renames the old one back. When both renames fail, the old run is left
    in .run.previous: the message said only 'nothing was published; make it writable (or
    choose another folder)', as though the run folder were as it was. It says where the
    previous run is, and that the next synthgate command that writes the folder puts it back,
    which check_out (the first step of every such command) does."""
    from typer.testing import CliRunner

    from synthgate.cli import app
    from synthgate.outputs import check_out

    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config()))
    out = tmp_path / "run"
    first = CliRunner().invoke(app, ["run", str(config), "--out", str(out)])
    assert first.exit_code == 0, first.output
    manifest = (out / "manifest.json").read_bytes()
    real_rename = Path.rename

    def rename(self: Path, target: Path) -> Path:
        if Path(target) == out:  # the new run into place, and the old one back
            raise PermissionError(errno.EACCES, "Permission denied", str(self), None, str(target))
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(out)])
    monkeypatch.undo()
    said = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert (
        f"error: --out {out}: Permission denied while putting the finished run in place; "
        "nothing was published, and the run it was to replace could not be put back "
        "(Permission denied): it is in .run.previous beside it, and the next synthgate "
        "command that writes run puts it back; make the folder it is in writable, then run "
        "again"
    ) in said, said
    assert "Traceback" not in said
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.previous", "batch.yaml"]
    assert (tmp_path / ".run.previous" / "manifest.json").read_bytes() == manifest
    check_out(out)  # what `synthgate run --out`, balance, merge and export do first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.yaml", "run"]
    assert (out / "manifest.json").read_bytes() == manifest
    again = CliRunner().invoke(app, ["run", str(config), "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.yaml", "run"]


def test_a_previous_run_that_still_cannot_be_put_back_is_one_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish that failed twice left the old run in .run.previous, saying the next synthgate
    command that writes the folder puts it back (cc6d683). Run before the folder it is in was
    made writable, that command's check_out could not rename it back either: its
    PermissionError was a traceback (exit 1). It is one message saying where the run is and
    what to do; .run.previous stays as it was."""
    from typer.testing import CliRunner

    from synthgate.cli import app

    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config()))
    out = tmp_path / "run"
    first = CliRunner().invoke(app, ["run", str(config), "--out", str(out)])
    assert first.exit_code == 0, first.output
    manifest = (out / "manifest.json").read_bytes()
    out.rename(tmp_path / ".run.previous")  # as the publish that failed twice left it
    real_rename = Path.rename

    def rename(self: Path, target: Path) -> Path:
        if Path(target) == out:  # the folder it is in is still not writable
            raise PermissionError(errno.EACCES, "Permission denied", str(self), None, str(target))
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(out)])
    monkeypatch.undo()
    said = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert (
        f"error: --out {out}: the run it held is in .run.previous beside it (left there by a "
        "publish that failed) and could not be put back (Permission denied); make the folder "
        "it is in writable, then run again"
    ) in said, said
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.previous", "batch.yaml"]
    assert (tmp_path / ".run.previous" / "manifest.json").read_bytes() == manifest


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_that_is_still_full_when_the_run_is_aborted_is_one_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a disk that is full, the run's buffered COCO part files cannot be flushed when they
    close, at the end or when the run is aborted: the abort raised that OSError again (exit 1,
    a traceback) before it took .run.partial away, its lock and database still held. /dev/full
    stands in for the full disk under the part files."""
    import builtins

    from typer.testing import CliRunner

    from synthgate.cli import app
    from synthgate.formats import coco

    def on_a_full_disk(file: Path, *args: object, **kwargs: object) -> object:
        if Path(file).name.endswith(".part"):
            return builtins.open("/dev/full", *args, **kwargs)  # type: ignore[call-overload]
        return builtins.open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(coco, "open", on_a_full_disk, raising=False)
    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config(text=None)))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(out)])
    said = " ".join(result.output.split())
    assert result.exit_code == 2, (result.output, result.exception)
    assert f"error: --out {out}: No space left on device while writing" in said, said
    assert "nothing was published; free space on its disk" in said, said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.yaml"]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="lists open files in /proc")
def test_a_run_folders_database_full_at_its_start_is_not_held_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run folder's database filling the disk while its tables are made (the run's start)
    is refused as a full disk later is, and the folder goes; but the store that failed kept its
    engine, so the deleted synthgate.db, -wal and -shm stayed open, their space taken, until a
    garbage collection (in a server: for a while, on the disk its operator is asked to free)."""
    import gc

    from sqlalchemy import event
    from typer.testing import CliRunner

    from synthgate.cli import app
    from synthgate.storage import store

    tune = store._tune_sqlite

    def a_full_disk(engine: object) -> None:
        tune(engine)  # type: ignore[arg-type]

        @event.listens_for(engine, "connect")
        def _three_pages(dbapi_connection: object, _record: object) -> None:
            dbapi_connection.execute("PRAGMA max_page_count = 3")  # type: ignore[attr-defined]

    monkeypatch.setattr(store, "_tune_sqlite", a_full_disk)
    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config(text=None)))
    out = tmp_path / "run"
    gc.disable()
    try:
        result = CliRunner().invoke(app, ["run", str(config), "--out", str(out)])
        # this run's files only: a store another test of the process left to the garbage
        # collector (disabled here) may hold its own synthgate.db open
        held = [
            target
            for fd in os.listdir("/proc/self/fd")
            if (target := _target(f"/proc/self/fd/{fd}")).startswith(str(tmp_path))
            and "synthgate.db" in target
        ]
    finally:
        gc.enable()
    said = " ".join(result.output.split())
    assert result.exit_code == 2, (result.output, result.exception)
    assert "the database or the disk is full while writing synthgate.db" in said, said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.yaml"]
    assert held == []


def _target(link: str) -> str:
    try:
        return os.readlink(link)
    except OSError:  # the listing's own descriptor, closed since
        return ""
