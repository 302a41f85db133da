"""The schema: one revision in code and in the migrations, the same tables either way, and a
database from before migrations upgrades with its rows kept."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from synthgate.review.priority import gold_position
from synthgate.storage.schema import MIGRATIONS, ensure_schema, revision_of, upgrade
from synthgate.storage.store import Store, sqlite_url
from synthgate.storage.tables import SCHEMA_REVISION

# What a run folder's database held before migrations: the DDL of synthgate.db as the previous
# release wrote it (sqlite_master of a quickstart run), and one sample row.
PRE_MIGRATION_DDL = """
CREATE TABLE batches (id VARCHAR(64) NOT NULL, name VARCHAR(200) NOT NULL, seed BIGINT NOT NULL,
  config JSON NOT NULL, status VARCHAR(20) NOT NULL, message TEXT, PRIMARY KEY (id));
CREATE TABLE samples (id VARCHAR(64) NOT NULL, batch_id VARCHAR(64) NOT NULL,
  modality VARCHAR(8) NOT NULL, "index" INTEGER NOT NULL, status VARCHAR(20) NOT NULL,
  score FLOAT, data TEXT NOT NULL, reason TEXT, PRIMARY KEY (id),
  CONSTRAINT uq_sample_position UNIQUE (batch_id, modality, "index"));
CREATE INDEX ix_samples_batch_id ON samples (batch_id);
CREATE TABLE chunks (id VARCHAR(100) NOT NULL, batch_id VARCHAR(64) NOT NULL,
  modality VARCHAR(8) NOT NULL, start INTEGER NOT NULL, stop INTEGER NOT NULL,
  queue VARCHAR(20) NOT NULL, status VARCHAR(20) NOT NULL, deliveries INTEGER NOT NULL,
  crashes INTEGER NOT NULL, current INTEGER, reason TEXT, quota_categories JSON,
  updated FLOAT NOT NULL, PRIMARY KEY (id));
CREATE INDEX ix_chunks_batch_id ON chunks (batch_id);
INSERT INTO batches VALUES ('b-1', 'b', 7, '{}', 'done', NULL);
INSERT INTO samples VALUES ('ima-1', 'b-1', 'image', 0, 'accepted', 5.0, '{"x": 1}', NULL);
"""


def schema_of(url: str) -> dict[str, Any]:
    """Tables with their columns (name, nullable, primary key), unique constraints and indexes."""
    engine = create_engine(url)
    try:
        found = inspect(engine)
        return {
            table: {
                "columns": sorted(
                    (c["name"], bool(c["nullable"]), c.get("primary_key", 0))
                    for c in found.get_columns(table)
                ),
                "unique": sorted(
                    tuple(u["column_names"]) for u in found.get_unique_constraints(table)
                ),
                "indexes": sorted(
                    (
                        tuple(i["column_names"]),
                        sorted(i.get("column_sorting", {}).items()),  # taken DESC, say
                        bool(i["unique"]),
                    )
                    for i in found.get_indexes(table)
                ),
            }
            for table in sorted(found.get_table_names())
        }
    finally:
        engine.dispose()


def test_the_code_revision_is_the_migrations_head() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_REVISION


def test_a_new_database_and_a_migrated_one_have_the_same_schema(tmp_path: Path) -> None:
    created = sqlite_url(tmp_path / "created.db")
    Store(created).close()  # a new database: created from the tables, stamped
    migrated = sqlite_url(tmp_path / "migrated.db")
    engine = create_engine(migrated)
    with engine.begin() as connection:
        upgrade(connection)  # every migration from nothing
        assert revision_of(connection) == SCHEMA_REVISION
    engine.dispose()
    assert schema_of(created) == schema_of(migrated)


def test_a_database_from_before_migrations_upgrades_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(PRE_MIGRATION_DDL)
    store = Store(sqlite_url(path))
    try:
        assert store.get_batch("b-1")["status"] == "done"
        assert store.chunks.of_batch("b-1") == []
        assert store.requesters.of_batch("b-1") == set()  # the table it lacked is there now
        with store.engine.connect() as connection:
            assert revision_of(connection) == SCHEMA_REVISION
    finally:
        store.close()
    fresh = tmp_path / "fresh.db"
    Store(sqlite_url(fresh)).close()
    assert schema_of(sqlite_url(path)) == schema_of(sqlite_url(fresh))


def test_opening_a_current_database_again_changes_nothing(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "db.db")
    Store(url).close()
    before = schema_of(url)
    engine = create_engine(url)
    ensure_schema(engine)
    engine.dispose()
    assert schema_of(url) == before


def test_a_review_queue_from_revision_0001_gets_its_kept_counts_from_its_rows(
    tmp_path: Path,
) -> None:
    """0002 adds `taken`, `priority` and `route` to review items: counted from the assignments,
    the gold order from each gold key, the route from the sample's stored report; 0006 counts
    each annotator's assignments; 0007 names the holder of each sample item taken once."""
    url = sqlite_url(tmp_path / "queue.db")
    engine = create_engine(url)
    with engine.begin() as connection:
        upgrade(connection, "0001")
    engine.dispose()
    with sqlite3.connect(tmp_path / "queue.db") as connection:
        connection.executescript(
            """
            INSERT INTO samples VALUES ('s1', 'b', 'image', 0, 'review', 3.8,
              '{"report": {"route": "review"}}', NULL);
            INSERT INTO samples VALUES ('s2', 'b', 'image', 1, 'accepted', 4.6,
              '{"report": {"route": "accepted"}}', NULL);
            INSERT INTO review_items VALUES (1, 'sample:s1', 's1', 'b', 'image', 'sample',
              'review', 2, 'open', NULL, 1.0);
            INSERT INTO review_items VALUES (2, 'sample:s2', 's2', 'b', 'image', 'sample',
              'audit', 2, 'final', 'accept', 1.0);
            INSERT INTO review_items VALUES (3, 'honeypot:s2', 's2', 'b', 'image', 'gold',
              'honeypot', 2, 'open', NULL, 1.0);
            INSERT INTO review_assignments VALUES (1, 1, 'ann', 1.0, NULL);
            INSERT INTO review_assignments VALUES (2, 2, 'ann', 1.0, 2.0);
            INSERT INTO review_assignments VALUES (3, 2, 'bob', 1.0, 2.0);
            INSERT INTO review_assignments VALUES (4, 3, 'bob', 1.0, 2.0);
            """
        )
    Store(url).close()
    with sqlite3.connect(tmp_path / "queue.db") as connection:
        rows = connection.execute(
            "SELECT id, taken, priority, route, holder FROM review_items ORDER BY id"
        ).fetchall()
    # 0007: the one holder of a sample item taken once (not of a gold item)
    assert rows == [
        (1, 1, 0.0, "review", "ann"),
        (2, 2, 0.0, "accepted", None),
        (3, 1, gold_position("honeypot:s2"), None, None),
    ]
    with sqlite3.connect(tmp_path / "queue.db") as connection:  # 0006: each one's tasks given
        given = connection.execute("SELECT * FROM review_annotators ORDER BY annotator").fetchall()
    assert given == [("ann", 2), ("bob", 2)]
    fresh = tmp_path / "fresh.db"
    Store(sqlite_url(fresh)).close()
    assert schema_of(url) == schema_of(sqlite_url(fresh))


def test_someone_else_s_database_is_refused_not_migrated(tmp_path: Path) -> None:
    """A --db (or SYNTHGATE_DB_URL) pointing at another application's database: synthgate's
    tables were added to it, even by `status`, a command that only reads."""
    import pytest
    from typer.testing import CliRunner

    from synthgate.cli import app
    from synthgate.errors import InputError

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")

    def tables(path: Path) -> list[str]:
        with sqlite3.connect(path) as connection:
            found = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            return sorted(name for (name,) in found)

    result = CliRunner().invoke(app, ["status", "x", "--db", sqlite_url(other)])
    assert result.exit_code == 2 and "not synthgate's" in result.output
    assert tables(other) == ["invoices"]
    with sqlite3.connect(other) as connection:  # refused before a connection switched it to WAL
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    with pytest.raises(InputError, match=r"holds tables that are not synthgate's \(invoices\)"):
        Store(sqlite_url(other), create=False)  # the schema check, for any other database
    assert tables(other) == ["invoices"]
    empty = tmp_path / "empty.db"
    empty.touch()
    result = CliRunner().invoke(app, ["status", "x", "--db", sqlite_url(empty)])
    assert result.exit_code == 2 and "an empty file, not a database" in result.output
    assert empty.stat().st_size == 0


def test_new_databases_made_by_separate_processes_are_byte_identical(tmp_path: Path) -> None:
    # A run's synthgate.db is one of its files: the same config must write the same bytes.
    # create_all made each table's indexes in set order, which changed from process to process
    # (object ids), so it is checked across processes, not within one.
    code = (
        "import sys\n"
        "from sqlalchemy import create_engine\n"
        "from synthgate.storage.schema import ensure_schema\n"
        "engine = create_engine('sqlite:///' + sys.argv[1])\n"
        "ensure_schema(engine)\n"
        "engine.dispose()\n"
    )
    paths = [tmp_path / f"new-{n}.db" for n in range(4)]
    for path in paths:
        subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    first = paths[0].read_bytes()
    assert all(path.read_bytes() == first for path in paths[1:])
