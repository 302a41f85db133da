"""Test support for PostgreSQL: a throwaway cluster from Debian's server binaries.

`PostgresCluster.start()` runs initdb and pg_ctl into a fresh temporary folder, serving on a Unix
socket only (no TCP listener), with fsync off; `database(name)` creates a scratch database in it
and gives its SQLAlchemy URL, so test modules that drop their tables between tests each get their
own database in the one cluster. conftest.py starts one cluster per test session.

Without the server binaries (initdb, pg_ctl) or psycopg the PostgreSQL cases skip, except under
CI=true, where a missing service is a failure (.ci/run installs the `postgresql` package).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from workers_support import free_port


def _missing(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def server_binaries() -> tuple[str, str]:
    """initdb and pg_ctl, or skip (fail under CI=true) when they are not installed."""
    # Debian's postgresql package keeps the server binaries off PATH.
    path = os.pathsep.join([os.environ.get("PATH", ""), *glob.glob("/usr/lib/postgresql/*/bin")])
    initdb, pg_ctl = shutil.which("initdb", path=path), shutil.which("pg_ctl", path=path)
    if initdb is None or pg_ctl is None:
        _missing("PostgreSQL server binaries (initdb, pg_ctl) are not installed (apt postgresql)")
    try:
        import psycopg  # noqa: F401  (the driver the store's postgresql+psycopg URLs need)
    except ImportError:
        _missing("psycopg is not installed (pip install 'psycopg[binary]')")
    return str(initdb), str(pg_ctl)


def _as_postgres(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres user then."""
    if os.geteuid() == 0 and shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *command]
    return command


class PostgresCluster:
    """One throwaway PostgreSQL cluster; `database(name)` hands out scratch databases in it."""

    def __init__(self) -> None:
        self.initdb, self.pg_ctl = server_binaries()
        self.folder: Path | None = None
        self.port = free_port()
        self.databases: dict[str, str] = {}

    @property
    def sockets(self) -> Path:
        assert self.folder is not None, "start() the cluster first"
        return self.folder / "sockets"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.sockets}&port={self.port}"

    def start(self) -> None:
        # Not under pytest's tmp_path: its folders are private to root, and the server runs as
        # the postgres user when the tests run as root.
        self.folder = Path(tempfile.mkdtemp(prefix="synthgate-pg-"))
        data = self.folder / "data"
        self.sockets.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            shutil.chown(self.sockets, "postgres")
        initdb = [self.initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        self._run(initdb)
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses='' -c fsync=off"
        log = self.folder / "postgres.log"
        self._run([self.pg_ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "start"])

    def database(self, name: str) -> str:
        """The URL of a fresh database `name`; the same URL again for a name already made."""
        if name not in self.databases:
            import psycopg

            dsn = f"host={self.sockets} port={self.port} user=postgres dbname=postgres"
            with psycopg.connect(dsn, autocommit=True) as connection:
                connection.execute(f'CREATE DATABASE "{name}"')
            self.databases[name] = self.url(name)
        return self.databases[name]

    def stop(self) -> None:
        if self.folder is None:
            return
        stop = [self.pg_ctl, "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop"]
        subprocess.run(_as_postgres(stop), capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None

    def _run(self, command: list[str]) -> None:
        done = subprocess.run(_as_postgres(command), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed:\n{done.stdout}{done.stderr}")


def wipe(url: str) -> None:
    """Drop every synthgate table of a scratch database and its schema revision, so that the
    next Store creates the schema from nothing."""
    from sqlalchemy import create_engine, text

    from synthgate.storage.tables import metadata

    engine = create_engine(url)
    try:
        metadata.drop_all(engine)
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        engine.dispose()
