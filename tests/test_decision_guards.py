"""Nothing that holds human decisions is ever overwritten, by any command.

One run folder gets human review decisions; then every command that writes (`--out`, `--json`)
is pointed at its database or at the folder itself. Each must exit 2 with one message before it
does any work, and leave every byte of the run as it was. Before these guards, `merge --out`,
`validate --json`, `review export --out` and `review agreement --json` replaced synthgate.db.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from balance_fixtures import make_tiny_coco
from factories import small_config
from typer.testing import CliRunner

from synthgate.cli import app
from synthgate.outputs import check_out_file, human_decision_count
from synthgate.review.queue import Decision, ReviewQueue
from synthgate.storage.store import Store, sqlite_url

runner = CliRunner()


@pytest.fixture(scope="module")
def decided(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run whose review queue holds two human decisions."""
    folder = tmp_path_factory.mktemp("decided")
    config = folder / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config(text=None)))
    run = folder / "run"
    assert runner.invoke(app, ["run", str(config), "--out", str(run)]).exit_code == 0
    store = Store(sqlite_url(run / "synthgate.db"))
    batch_id = json.loads((run / "manifest.json").read_text())["batch_id"]
    first = next(store.iter_samples(batch_id, "image"))
    store.upsert_samples([first.model_copy(update={"status": "review"})])
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    queue.enqueue_batch(batch_id)
    for annotator in ("alice", "bob"):
        task = queue.next_item(annotator)
        assert task is not None
        queue.decide(task.item_id, annotator, Decision(verdict="accept"))
    store.close()
    assert human_decision_count(run / "synthgate.db") == 2
    return run


def _fake_run(folder: Path) -> Path:
    """Another finished run folder, for merge's --synthetic."""
    (folder / "images").mkdir(parents=True)
    (folder / "manifest.json").write_text("{}")
    coco = {"images": [], "annotations": [], "categories": []}
    (folder / "coco.json").write_text(json.dumps(coco))
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


# command -> (args, given the run folder and a scratch folder), words the refusal holds
Args = Callable[[Path, Path], list[str]]
CASES: dict[str, tuple[Args, str]] = {
    "merge --out <db>": (
        lambda run, tmp: [
            "merge",
            *("--real", str(make_tiny_coco(tmp / "real")[0])),
            *("--images", str(tmp / "real" / "images")),
            *("--synthetic", str(_fake_run(tmp / "other"))),
            *("--out", str(run / "synthgate.db")),
        ],
        "is a file; choose a folder",
    ),
    "merge --out <run folder>": (
        lambda run, tmp: [
            "merge",
            *("--real", str(make_tiny_coco(tmp / "real")[0])),
            *("--images", str(tmp / "real" / "images")),
            *("--synthetic", str(_fake_run(tmp / "other"))),
            *("--out", str(run)),
        ],
        "not a synthgate merge output",
    ),
    "validate --json <db>": (
        lambda run, tmp: ["validate", str(run / "coco.json"), "--json", str(run / "synthgate.db")],
        "is a database, with 2 human review decisions",
    ),
    "validate --json <run file>": (
        lambda run, tmp: ["validate", str(run / "coco.json"), "--json", str(run / "coco.json")],
        "is a file of the run",
    ),
    "review export --out <db>": (
        lambda run, tmp: [
            "review",
            "export",
            "--run",
            str(run),
            "--out",
            str(run / "synthgate.db"),
        ],
        "is a database, with 2 human review decisions",
    ),
    "review export --out <run file>": (
        lambda run, tmp: ["review", "export", "--run", str(run), "--out", str(run / "coco.json")],
        "is a file of the run",
    ),
    "review agreement --json <db>": (
        lambda run, tmp: [
            *("review", "agreement", "--run", str(run)),
            *("--json", str(run / "synthgate.db")),
        ],
        "is a database, with 2 human review decisions",
    ),
    "run --out <run>": (
        lambda run, tmp: ["run", str(run.parent / "batch.yaml"), "--out", str(run)],
        "holds 2 human review decisions",
    ),
    "balance --out <run>": (
        lambda run, tmp: [
            *("balance", "--coco", str(make_tiny_coco(tmp / "real")[0])),
            *("--images", str(tmp / "real" / "images"), "--out", str(run)),
        ],
        "not a synthgate balance output",
    ),
    "export --force --out <run>": (
        lambda run, tmp: ["export", str(run), "-f", "yolo", "--force", "--out", str(run)],
        "not a synthgate export",
    ),
    "submit --wait --out <run>": (
        # Refused before anything is sent: no broker listens on port 9, and none is needed.
        lambda run, tmp: [
            *("submit", str(run.parent / "batch.yaml"), "--wait", "--out", str(run)),
            *("--broker", "redis://127.0.0.1:9/0", "--db", f"sqlite:///{tmp}/shared.db"),
            *("--blobs", str(tmp / "blobs")),
        ],
        "holds 2 human review decisions",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_no_command_overwrites_human_decisions(case: str, decided: Path, tmp_path: Path) -> None:
    args, words = CASES[case]
    before = _snapshot(decided)
    result = runner.invoke(app, args(decided, tmp_path))
    message = " ".join(result.output.split())
    assert result.exit_code == 2, message
    assert words in message, message
    assert "Traceback" not in message
    assert _snapshot(decided) == before
    assert not list(decided.parent.glob(".*partial")), "no temporary folder left"
    if case.startswith("submit"):
        shared = Store(f"sqlite:///{tmp_path}/shared.db")
        assert (
            shared.get_batch(json.loads((decided / "manifest.json").read_text())["batch_id"])
            is None
        )
        shared.close()


@pytest.mark.parametrize(
    ("name", "refused"),
    [
        ("../new.json", None),  # beside the run, not in it
        # a file of the user's own in a run, new or not, goes when the run is written again
        ("new.json", "lies inside the run"),
        ("notes.json", "lies inside the run"),
        ("coco.json", "is a file of the run"),
        ("images/x.png", "is a file of the run"),
        ("synthgate.db", "is a database"),
        ("copy.db", "is a database"),  # any SQLite file, wherever it lies
        ("images", "is a folder"),
    ],
)
def test_check_out_file_refuses_what_a_run_is_made_of(
    name: str, refused: str | None, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    (run / "images").mkdir(parents=True)
    for own in ("manifest.json", "coco.json", "images/x.png", "notes.json"):
        (run / own).write_text("{}")
    Store(sqlite_url(run / "synthgate.db")).close()
    os.link(run / "synthgate.db", tmp_path / "copy.db")
    target = tmp_path / name if name == "copy.db" else run / name
    if refused is None:
        check_out_file(target)
    else:
        with pytest.raises(Exception, match=refused):
            check_out_file(target)


@pytest.mark.parametrize(
    "args",
    [
        lambda run, new: ["validate", str(run / "coco.json"), "--json", str(new)],
        lambda run, new: ["review", "export", "--run", str(run), "--out", str(new)],
        lambda run, new: ["review", "agreement", "--run", str(run), "--json", str(new)],
        lambda run, new: [
            *("rubric", "calibrate", "--run", str(run), "--rubric", "detection"),
            *("--out", str(new.with_suffix(".yaml"))),
        ],
    ],
    ids=["validate --json", "review export --out", "review agreement --json", "rubric --out"],
)
def test_no_command_writes_a_new_file_into_a_run(
    args: Callable[[Path, Path], list[str]], decided: Path
) -> None:
    """A new file written into a run folder was deleted by the next `run --out` into it."""
    before = _snapshot(decided)
    result = runner.invoke(app, args(decided, decided / "mine.json"))
    message = " ".join(result.output.split())
    assert result.exit_code == 2, message
    assert f"lies inside the run {decided}" in message, message
    assert "write mine." in message, message
    assert _snapshot(decided) == before


def test_a_file_written_into_a_balance_output_is_refused_not_lost(tmp_path: Path) -> None:
    """`validate --json balanced/report.json` wrote it, and the next `balance --out balanced`
    deleted it with the folder it rebuilt."""
    coco, images = make_tiny_coco(tmp_path)
    balanced = tmp_path / "balanced"
    balance = ["balance", "--coco", str(coco), "--images", str(images), "--out", str(balanced)]
    assert runner.invoke(app, balance).exit_code == 0
    result = runner.invoke(
        app, ["validate", str(coco), "--images", str(images), "--json", str(balanced / "r.json")]
    )
    message = " ".join(result.output.split())
    assert result.exit_code == 2, message
    assert f"lies inside the balance output {balanced}" in message, message
    assert "the next balance into it rebuilds whole" in message, message
    assert not (balanced / "r.json").exists()


def test_checking_a_database_leaves_nothing_beside_it(tmp_path: Path) -> None:
    """A refused command read the database it refused to replace: read-only, SQLite left its
    -wal and -shm files in the user's run folder (a WAL database)."""
    import sqlite3

    from synthgate.workflows.reviewed import final_verdicts

    database = tmp_path / "synthgate.db"
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE review_decisions (id INTEGER PRIMARY KEY)")
    connection.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthgate.db"]
    assert human_decision_count(database) == 0
    assert final_verdicts(database) == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthgate.db"]
