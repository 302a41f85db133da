"""Recovery after a SIGKILLed worker at the production defaults (lease 10 s, heartbeat 2 s,
visibility timeout 3600 s): how long its chunk waits before another worker takes it up.

The issue's scenario, per round: two `synthgate worker --concurrency 1` processes and
`synthgate submit --wait` of the quickstart batch (a new seed each round, `--images` images so
that chunks are still left `--kill-after` seconds in); then one worker is frozen while it holds
an unfinished chunk and SIGKILLed, and a fresh third worker is started at once. Printed per
round, polling the database every 20 ms: the seconds from the SIGKILL until the chunk was sent
again (a sweep requeued and published it, ahead of the waiting chunks), until another worker
claimed it under a newer lease (it waits for a worker to finish the chunk in hand: every
worker is busy), until the run folder was written; and the CPU seconds the surviving worker and
`submit` used meanwhile. Sending again lies between lease - heartbeat (the last renewal came up
to a heartbeat before the kill) and lease + heartbeat (the sweep's phase): 8-12 s at the
defaults. Target: <= 15 s.
Usage: python bench/bench_recovery.py [--rounds 3] [--kill-after 4] [--images 600] [--db URL]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _support import start_redis, tree_cpu_seconds
from sqlalchemy import select

from synthgate.config import load_config
from synthgate.pipeline import batch_id_for
from synthgate.storage.chunks import ChunkState
from synthgate.storage.store import Store
from synthgate.storage.tables import chunks
from synthgate.workers.app import WorkerSettings

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "configs" / "quickstart.yaml"
# Only the URLs come from here: every timing setting is the production default.
TIMINGS = re.compile(r"^SYNTHGATE_(?!BROKER_URL|DB_URL|BLOB_URL|RUNS_DIR)")


class Round:
    """One batch on its own broker database, database and blob folder, with its workers."""

    def __init__(
        self, number: int, folder: Path, redis_url: str, db_url: str | None, images: int
    ) -> None:
        self.folder = folder / f"round-{number}"
        self.folder.mkdir()
        self.db_url = db_url or f"sqlite:///{self.folder / 'shared.db'}"
        base = {k: v for k, v in os.environ.items() if not TIMINGS.match(k)}
        self.env = {
            **base,
            "SYNTHGATE_BROKER_URL": f"{redis_url}/{number}",
            "SYNTHGATE_DB_URL": self.db_url,
            "SYNTHGATE_BLOB_URL": str(self.folder / "blobs"),
        }
        self.workers: list[subprocess.Popen[bytes]] = []
        config = yaml.safe_load(QUICKSTART.read_text())
        config["seed"] = 1000 + number
        config["image"]["count"] = images
        config["text"]["templates"] = str(ROOT / config["text"]["templates"])
        self.config = self.folder / "quickstart.yaml"
        self.config.write_text(yaml.safe_dump(config))
        self.batch_id = batch_id_for(load_config(self.config))

    def log(self, number: int) -> Path:
        return self.folder / f"worker-{number}.log"

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = self.log(len(self.workers))
        process = subprocess.Popen(
            [sys.executable, "-m", "synthgate", "worker", "--concurrency", "1"],
            env=self.env,
            stdout=open(log, "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(process)
        while b" ready." not in log.read_bytes():
            if process.poll() is not None:
                sys.exit(f"a worker did not start:\n{log.read_text()}")
            time.sleep(0.05)
        return process

    def freeze_holding_a_chunk(self, worker: subprocess.Popen[bytes], store: Store) -> ChunkState:
        """SIGSTOP the worker at a moment it holds a running chunk (retrying until it does)."""
        log = self.log(self.workers.index(worker))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            os.killpg(worker.pid, signal.SIGSTOP)
            text = log.read_text()
            received = set(re.findall(r"make_chunk\[([0-9a-f-]+)\] received", text))
            done = set(re.findall(r"make_chunk\[([0-9a-f-]+)\] succeeded", text))
            if not store.chunks.of_batch(self.batch_id, statuses=["queued", "running"]):
                sys.exit("the batch was made before the kill: use a larger --images")
            if received - done:
                with store.engine.connect() as connection:
                    held = connection.execute(
                        select(chunks.c.id).where(
                            chunks.c.holder.in_(received - done), chunks.c.status == "running"
                        )
                    ).scalar()
                found = store.chunks.get(held) if held else None
                if found is not None:
                    return found
            os.killpg(worker.pid, signal.SIGCONT)
            time.sleep(0.01)
        sys.exit("the worker never held a running chunk")

    @staticmethod
    def cpu_seconds(
        processes: list[subprocess.Popen[bytes]] | list[subprocess.Popen[str]],
    ) -> float:
        """CPU time used so far by these processes and their children."""
        return tree_cpu_seconds([process.pid for process in processes])

    def run(self, kill_after: float) -> tuple[float, float, float, float]:
        """Seconds from the SIGKILL until the chunk was sent again, until another worker
        claimed it, until the run folder was written; CPU s until it was claimed."""
        doomed = self.start_worker()
        self.start_worker()
        out = str(self.folder / "run")
        submit = subprocess.Popen(
            [sys.executable, "-m", "synthgate", "submit", str(self.config), "--wait", "-o", out],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(kill_after)
        store = Store(self.db_url)
        held = self.freeze_holding_a_chunk(doomed, store)
        survivor = self.workers[1]
        cpu_before = self.cpu_seconds([survivor]) + self.cpu_seconds([submit])
        os.killpg(doomed.pid, signal.SIGKILL)
        killed = time.perf_counter()
        doomed.wait()
        self.start_worker()  # as in the issue: a fresh worker at once
        handed_over = None
        while True:
            chunk = store.chunks.get(held.id)
            assert chunk is not None
            if handed_over is None and (chunk.crashes > held.crashes or chunk.lease > held.lease):
                handed_over = time.perf_counter() - killed  # requeued and sent again
            if chunk.lease > held.lease:
                break
            time.sleep(0.02)
        claimed = time.perf_counter() - killed
        cpu = self.cpu_seconds([survivor]) + self.cpu_seconds([submit]) - cpu_before
        output, _ = submit.communicate(timeout=1200)
        finished = time.perf_counter() - killed
        if submit.returncode != 0:
            sys.exit(f"submit failed:\n{output}")
        store.close()
        return handed_over or claimed, claimed, finished, cpu

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kill-after", type=float, default=4.0)
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--db", default=None, help="a PostgreSQL URL (default: SQLite per round)")
    args = parser.parse_args()
    defaults = WorkerSettings()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        redis, redis_url = start_redis(folder)
        try:
            for number in range(1, args.rounds + 1):
                batch = Round(number, folder, redis_url, args.db, args.images)
                try:
                    results.append(batch.run(args.kill_after))
                finally:
                    batch.stop()
                handed, claimed, finished, cpu = results[-1]
                print(
                    f"round {number}: sent again {handed:5.1f} s, claimed by another worker "
                    f"{claimed:5.1f} s after the SIGKILL ({cpu:4.1f} CPU s of the surviving "
                    f"worker and submit meanwhile); run folder written {finished:5.1f} s after it"
                )
        finally:
            redis.kill()
            redis.wait()
    handed = [r[0] for r in results]
    claimed = [r[1] for r in results]
    print(
        f"settings: lease {defaults.lease_timeout:g} s, heartbeat {defaults.heartbeat_interval:g} s,"
        f" visibility timeout {defaults.visibility_timeout:g} s; {os.cpu_count()} CPUs, load "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )
    print(
        f"recovery after SIGKILL: sent again in {min(handed):.1f}-{max(handed):.1f} s (lease -/+ "
        f"heartbeat: {defaults.lease_timeout - defaults.heartbeat_interval:g}-"
        f"{defaults.lease_timeout + defaults.heartbeat_interval:g} s), claimed in "
        f"{min(claimed):.1f}-{max(claimed):.1f} s (+ the wait for a worker to finish its chunk); "
        "target <= 15 s"
    )


if __name__ == "__main__":
    main()
