"""Bring a database's schema to the current revision (`tables.SCHEMA_REVISION`).

A new database gets every table of storage/tables.py and is stamped with the current revision,
without loading Alembic. One stamped with the current revision needs nothing. Any other (a
database from before migrations, or an older revision) is upgraded by Alembic with the scripts
in storage/migrations/, inside one transaction. Several workers opening a new database at once
race to create it; the loser looks again.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.schema import CreateIndex, CreateTable

from synthgate.errors import InputError
from synthgate.storage.tables import SCHEMA_REVISION, metadata

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"


def ensure_schema(engine: Engine, *, create: bool = True, attempts: int = 5) -> None:
    """Create or upgrade the schema of `engine`'s database to `SCHEMA_REVISION`. Without
    `create` (commands that only read), a database holding none of synthgate's tables is
    refused instead of being given them."""
    for attempt in range(attempts):
        try:
            with engine.begin() as connection:
                _ensure(connection, create=create)
            return
        except (OperationalError, ProgrammingError, IntegrityError):
            # Another process created a table between the check and the CREATE: look again.
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def revision_of(connection: Connection) -> str | None:
    """The revision a database is stamped with (None: not stamped)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def _ensure(connection: Connection, *, create: bool) -> None:
    current = revision_of(connection)
    if current == SCHEMA_REVISION:
        return
    tables = inspect(connection).get_table_names() if current is None else []
    if current is None and not create and set(tables).isdisjoint(metadata.tables):
        # A command that only reads, pointed at someone else's database (or an empty one): it
        # would have added synthgate's tables there. (Not while creating: several processes
        # opening a new database at once see its tables appear one by one.)
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise InputError(
            field="db",
            value=connection.engine.url.render_as_string(hide_password=True),
            problem=f"holds tables that are not synthgate's ({shown})"
            if tables
            else "holds no tables: no run or batch wrote it",
            fix="point it at the database a run or batch wrote",
        )
    if current is None and not tables:
        _create_tables(connection)
        connection.execute(
            text(f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        )
        connection.execute(
            text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:v)"), {"v": SCHEMA_REVISION}
        )
        return
    upgrade(connection)


def _create_tables(connection: Connection) -> None:
    """Every table of storage/tables.py, each followed by its indexes in name order.
    (`metadata.create_all` walks a table's indexes as a set, in an order that changes from
    process to process, so two runs of one config wrote synthgate.db files that differed.)
    Only tables and indexes: a type PostgreSQL must create first (a native Enum, a Sequence)
    would need create_all's events, which this does not fire; the tables have none."""
    for table in metadata.sorted_tables:
        connection.execute(CreateTable(table))
        for index in sorted(table.indexes, key=lambda index: str(index.name)):
            connection.execute(CreateIndex(index))


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Run the migrations from the database's revision up to `revision` (Alembic)."""
    from alembic import command  # only an older database pays for loading Alembic
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
