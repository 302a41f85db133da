"""Test support for the distributed runner: a private redis-server and real `synthgate worker`s.

`RedisServer` starts redis-server on a free port, without persistence, and can restart it on the
same port (losing every queued message). `Cluster` holds one batch's shared database (a SQLite
file, or the PostgreSQL URL it is given), blob store and broker and starts
`python -m synthgate worker` subprocesses in their own process groups, so a test can SIGKILL a
whole worker (main process and pool) as a machine loss would. Timeouts are seconds, not the
production hour, so redelivery after a kill stays fast. Without redis-server the tests skip,
except under CI=true, where that is a failure.

Run as a script (`python tests/workers_support.py worker ...`) it is the synthgate CLI with a
poisoned sample: the pool process that makes sample `SYNTHGATE_TEST_POISON` ("text:17") kills
itself with SIGKILL, every time, as a sample that runs a worker out of memory would; and with a
gate: while the file `SYNTHGATE_TEST_GATE` exists, generation waits, so a test can hold workers
in the middle of their chunks.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from synthgate.storage.chunks import ChunkState
from synthgate.storage.store import Store
from synthgate.storage.tables import chunks

WORKER_SETTINGS = {
    "SYNTHGATE_VISIBILITY_TIMEOUT": "6",
    "SYNTHGATE_TIME_LIMIT": "5",
    "SYNTHGATE_SOFT_TIME_LIMIT": "4",
    "SYNTHGATE_RESTORE_INTERVAL": "1",
    # A killed worker's chunk goes to another one after 3 s without a renewal (production: 10 s).
    "SYNTHGATE_LEASE_TIMEOUT": "3",
    "SYNTHGATE_HEARTBEAT_INTERVAL": "0.5",
    "SYNTHGATE_MAX_CRASHES": "2",
    "SYNTHGATE_CPU_CHUNK_FACTOR": "1",  # small chunks: many messages in flight to lose
}


def require_redis_server() -> str:
    found = shutil.which("redis-server")
    if found is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    def __init__(self, folder: Path) -> None:
        self.binary = require_redis_server()
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--dir",
                str(self.folder),
                "--appendonly",
                "no",  # a restart loses the queues: the worst case for the runner
            ],
            stdout=open(self.folder / "redis.log", "ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


class Cluster:
    """A broker, a shared SQLite database and blob folder, and the workers started on them."""

    def __init__(self, folder: Path, redis: RedisServer, *, db_url: str | None = None) -> None:
        self.folder = folder
        self.redis = redis
        self.db_url = db_url or f"sqlite:///{folder / 'shared.db'}"
        self.blob_dir = folder / "blobs"
        self.workers: list[subprocess.Popen[bytes]] = []
        self.settings: dict[str, str] = {}  # more SYNTHGATE_* for workers and the CLI

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            **WORKER_SETTINGS,
            "SYNTHGATE_BROKER_URL": self.redis.url,
            "SYNTHGATE_DB_URL": self.db_url,
            "SYNTHGATE_BLOB_URL": str(self.blob_dir),
            **self.settings,
            **extra,
        }

    def start_worker(
        self,
        *,
        concurrency: int = 1,
        queues: str = "cpu",
        poison: str | None = None,
        gate: Path | None = None,
        settings: dict[str, str] | None = None,
        wait: bool = True,
    ) -> subprocess.Popen[bytes]:
        """A real `synthgate worker` in its own process group; waits until it is ready.

        `poison`: the sample ("text:17") whose pool process kills itself; `gate`: a file that,
        while it exists, holds every sample's generation (the worker keeps its chunk, and its
        lease, while it waits); `settings`: SYNTHGATE_* of this worker alone."""
        number = len(self.workers)
        log = self.folder / f"worker-{number}.log"
        extra = dict(settings or {})
        if poison:
            extra["SYNTHGATE_TEST_POISON"] = poison
        if gate:
            extra["SYNTHGATE_TEST_GATE"] = str(gate)
        entry = [str(Path(__file__))] if poison or gate else ["-m", "synthgate"]
        process = subprocess.Popen(
            [sys.executable, *entry, "worker", "--concurrency", str(concurrency), "-Q", queues],
            env=self.env(**extra),
            stdout=open(log, "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(process)
        if wait:
            deadline = time.monotonic() + 60
            while b" ready." not in log.read_bytes():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start:\n{log.read_text()}")
                time.sleep(0.1)
        return process

    def kill_worker(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker's whole process group: no warm shutdown, no acks."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                self.kill_worker(process)

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "synthgate", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "synthgate", *args],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def worker_logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.folder.glob("worker-*.log")))

    def log_of(self, worker: subprocess.Popen[bytes]) -> Path:
        return self.folder / f"worker-{self.workers.index(worker)}.log"

    def stop_in_the_middle_of_a_chunk(self, worker: subprocess.Popen[bytes]) -> list[ChunkState]:
        """SIGSTOP the worker while it holds a chunk it has not finished and is not inside a
        write (a transaction frozen with it would block the others' writes until it resumes);
        retries until then. Returns the chunks its unfinished tasks hold, as the database has
        them."""
        log = self.log_of(worker)
        store = Store(self.db_url)
        deadline = time.monotonic() + 60  # a loaded machine starts pool processes slowly
        try:
            while time.monotonic() < deadline:
                os.killpg(worker.pid, signal.SIGSTOP)
                unfinished = task_ids(log, "received") - task_ids(log, "succeeded")
                if unfinished:
                    with store.engine.connect() as connection:
                        ids = connection.execute(
                            select(chunks.c.id).where(
                                chunks.c.holder.in_(unfinished), chunks.c.status == "running"
                            )
                        ).scalars()
                        held = [store.chunks.get(chunk_id) for chunk_id in ids]
                    if held and not any(holds_a_lock(store, c.id) for c in held if c):
                        return [chunk for chunk in held if chunk is not None]
                os.killpg(worker.pid, signal.SIGCONT)
                time.sleep(0.01)
        finally:
            store.close()
        raise AssertionError("the worker never held an unfinished chunk")


def holds_a_lock(store: Store, chunk_id: str) -> bool:
    """Whether some transaction holds the write lock (SQLite) or the chunk's row (PostgreSQL:
    every write of a chunk's holder starts with its row)."""
    url = make_url(store.url)
    if url.get_backend_name() == "sqlite":
        probe = sqlite3.connect(str(url.database), timeout=0.2)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.rollback()
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            probe.close()
    with store.engine.connect() as connection:
        try:
            connection.execute(
                select(chunks.c.id).where(chunks.c.id == chunk_id).with_for_update(nowait=True)
            )
            return False
        except OperationalError:
            return True
        finally:
            connection.rollback()


def task_ids(log: Path, event: str) -> set[str]:
    """Ids of the make_chunk tasks a worker's log says were `received` / `succeeded`."""
    return set(re.findall(rf"make_chunk\[([0-9a-f-]+)\] {event}", log.read_text()))


def wait_until(predicate: Any, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _test_cli() -> None:
    """The synthgate CLI, but the pool process making sample SYNTHGATE_TEST_POISON dies, and
    generation waits while the file SYNTHGATE_TEST_GATE exists."""
    from synthgate.cli import main
    from synthgate.workers import chunks

    poison = os.environ.get("SYNTHGATE_TEST_POISON")
    gate = os.environ.get("SYNTHGATE_TEST_GATE")
    real = chunks.generate_specs

    def generate_specs(generator: Any, specs: list[Any]) -> list[Any]:
        if poison is not None:
            modality, _, index = poison.partition(":")
            if any(s.modality == modality and s.index == int(index) for s in specs):
                os.kill(os.getpid(), signal.SIGKILL)
        while gate is not None and os.path.exists(gate):
            time.sleep(0.02)
        return real(generator, specs)

    chunks.generate_specs = generate_specs
    main()


if __name__ == "__main__":
    _test_cli()
