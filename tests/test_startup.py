"""Start-up loads only what a command uses: --help none of the heavy libraries, run, validate
and balance neither pydantic-settings (its cloud providers) nor matplotlib (only `sg.show` draws
with it), and a `validate` of labels alone no image library. At exit the command skips the final
garbage collection, yet a store left open is still closed. Timings live in bench/bench_startup.py."""

from __future__ import annotations

import gc
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = (
    "sqlalchemy", "pydantic", "pydantic_settings", "matplotlib", "fastapi", "celery", "torch", "PIL"
)  # fmt: skip


def loaded(code: str) -> set[str]:
    """Top-level packages a fresh interpreter holds after running `code`."""
    probe = f"{code}\nimport sys\nprint(' '.join({{m.split('.')[0] for m in sys.modules}}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    ("code", "absent"),
    [
        ("import synthgate.cli", HEAVY),
        ("import synthgate.runner, synthgate.validators.validate", ("pydantic_settings",)),
        ("import synthgate.workflows.balance", ("pydantic_settings", "matplotlib")),
        # validate checks its --json target: no database library for that; labels alone need
        # no image library either
        (
            "import synthgate.validators.predictions, synthgate.outputs",
            ("sqlalchemy", "pydantic_settings", "PIL", "imagehash", "cv2", "scipy"),
        ),
    ],
)
def test_start_up_loads_only_what_is_used(code: str, absent: tuple[str, ...]) -> None:
    assert not loaded(code) & set(absent)


def test_tables_load_when_a_command_draws_one() -> None:
    """rich.table (and the fractions and decimal modules it pulls in) is not a start-up cost:
    `validate` prints no table; `run` does, at its end."""
    probe = "import sys, synthgate.cli\nprint('rich.table' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]
    from synthgate.commands import new_table

    table = new_table("name", "role", title="users")
    assert ([c.header for c in table.columns], str(table.title)) == (["name", "role"], "users")


def test_settings_load_where_they_are_read() -> None:
    assert "pydantic_settings" in loaded("from synthgate.settings import Settings; Settings()")


BLAS_PROBE = """
import sys, typer, synthgate.cli as cli
cli.app = typer.Typer()
@cli.app.command()
def probe() -> None:
    import numpy
    from threadpoolctl import threadpool_info
    print(*[p["num_threads"] for p in threadpool_info() if p["internal_api"] == "openblas"])
sys.argv = ["synthgate"]
cli.main()
"""


@pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="OpenBLAS never runs more threads than CPUs"
)
@pytest.mark.parametrize(("given", "threads"), [(None, "1"), ("", "1"), ("2", "2")])
def test_commands_run_numpy_blas_on_one_thread_unless_told(
    given: str | None, threads: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """numpy's OpenBLAS threads spin between calls (CPU for nothing: synthgate's products are
    tiny); a command starts numpy with one, and a user's OPENBLAS_NUM_THREADS wins (an empty
    one is none: OpenBLAS would take every core)."""
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    if given is not None:
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", given)
    out = subprocess.run(
        [sys.executable, "-c", BLAS_PROBE], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == [threads]


LEFT_OPEN = """
import gc
gc.disable()  # as after a command's last call, no collection frees the dropped store's engine
import sys
from pathlib import Path
from synthgate import cli
from synthgate.storage.store import Store, sqlite_url

def add(path, batch_id):  # the store is dropped unclosed, as a one-call command may do
    Store(sqlite_url(Path(path))).put_batch(batch_id, name="left open", seed=1, config={})

kept = Store(sqlite_url(Path(sys.argv[1])))  # one still held at exit
kept.put_batch("b1", name="left open", seed=1, config={})
add(sys.argv[2], "b2")
sys.argv = ["synthgate", "--version"]
cli.main()
"""


def test_stores_left_open_are_closed_when_the_command_exits(tmp_path: Path) -> None:
    """Their rows are in the database files themselves, not in -wal files beside them: copying
    a file alone keeps them."""
    databases = [tmp_path / "held.db", tmp_path / "dropped.db"]
    subprocess.run([sys.executable, "-c", LEFT_OPEN, *map(str, databases)], check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dropped.db", "held.db"]
    (tmp_path / "copy").mkdir()
    for database, batch_id in zip(databases, ["b1", "b2"], strict=True):
        copied = shutil.copy(database, tmp_path / "copy" / database.name)
        connection = sqlite3.connect(copied)
        try:
            assert connection.execute("SELECT id FROM batches").fetchall() == [(batch_id,)]
        finally:
            connection.close()


def test_one_call_commands_close_their_store(tmp_path: Path) -> None:
    """`users` and `review` commands close the store they open for their one call, rather than
    leave it to the exit handler."""
    from typer.testing import CliRunner

    from synthgate.cli import app
    from synthgate.storage import store

    url = f"sqlite:///{tmp_path / 'synthgate.db'}"
    commands = [
        ["users", "add", "ann", "--role", "annotator", "--db", url],
        ["users", "list", "--db", url],
        ["users", "remove", "ann", "--db", url],
        ["review", "stats", "--db", url],
        ["review", "release", "--older-than-minutes", "5", "--db", url],
        ["review", "agreement", "--db", url, "--json", "-"],
    ]
    collecting = gc.isenabled()
    gc.disable()  # a collection must not free a store the command left open
    try:
        for command in commands:
            before = set(store._live_engines)
            result = CliRunner().invoke(app, command)
            assert result.exit_code == 0, (command, result.output)
            assert set(store._live_engines) <= before, command
    finally:
        if collecting:
            gc.enable()


def test_a_review_queue_on_sqlite_loads_no_postgresql_dialect(tmp_path: Path) -> None:
    """The review statements are built for both databases, but a SQLite queue never loads
    PostgreSQL's dialect (~30 ms of start-up; storage/tables.py dialect_insert)."""
    probe = (
        "import sys\n"
        "from synthgate.review.queue import ReviewQueue\n"
        "from synthgate.storage.store import Store\n"
        "queue = ReviewQueue(Store(f'sqlite:///{sys.argv[1]}'))\n"
        "assert queue.next_item('ann') is None and queue.release_stale(60.0) == 0\n"
        "print('sqlalchemy.dialects.postgresql' in sys.modules)"
    )
    command = [sys.executable, "-c", probe, str(tmp_path / "queue.db")]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]
