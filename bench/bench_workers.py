"""Throughput of procedural generation on 1 and 2 Celery worker processes against `synthgate run`.

Starts its own redis-server on a free port, then for each case a fresh shared SQLite database and
blob folder, N `synthgate worker --concurrency 1` processes (started and ready before the clock
starts), and times `submit` -> every chunk done ("generation") and -> run folder written
("end to end", which adds the serial assembly of the run folder). The in-process baseline is
`run_batch`. Prints samples/s and the ratios against the targets: 2 workers >= 1.7x one worker,
one worker >= 0.8x in-process. Usage: python bench/bench_workers.py [--count 200] [--size 256]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synthgate.config import parse_config
from synthgate.pipeline import run_batch
from synthgate.store import BlobStore, Store
from synthgate.workers.app import make_app, settings_from
from synthgate.workers.submit import (
    assemble_from_store,
    planned_total,
    submit_batch,
    wait_for_batch,
)


def image_config(count: int, size: int) -> dict:
    return {
        "name": "bench-workers",
        "seed": 13,
        "categories": ["circle", "square", "triangle", "star", "ring"],
        "image": {
            "generator": "procedural",
            "count": count,
            "size": [size, size],
            "objects_per_image": [1, 5],
        },
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    sys.exit("redis-server did not start")


def start_workers(count: int, env: dict[str, str], folder: Path) -> list[subprocess.Popen[bytes]]:
    workers = []
    for number in range(count):
        log = folder / f"worker-{number}.log"
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "synthgate", "worker", "--concurrency", "1"],
                env=env,
                stdout=open(log, "wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    for number in range(count):
        log = folder / f"worker-{number}.log"
        while b" ready." not in log.read_bytes():
            time.sleep(0.1)
    return workers


def workers_seconds(data: dict, workers: int, broker: str, folder: Path) -> tuple[float, float]:
    """(seconds to generate, seconds to the finished run folder) with `workers` processes."""
    case = folder / f"workers-{workers}"
    case.mkdir()
    db, blobs = f"sqlite:///{case / 'shared.db'}", str(case / "blobs")
    env = {
        **os.environ,
        "SYNTHGATE_BROKER_URL": broker,
        "SYNTHGATE_DB_URL": db,
        "SYNTHGATE_BLOB_URL": blobs,
    }
    processes = start_workers(workers, env, case)
    try:
        settings = settings_from(broker=broker, db=db, blobs=blobs)
        app, store = make_app(settings), Store(db)
        config = parse_config(data, source=Path("bench"))
        started = time.perf_counter()
        batch_id, _sent = submit_batch(app, store, config)
        wait_for_batch(
            app, store, batch_id, total=planned_total(config), settings=settings, poll_seconds=0.1
        )
        generated = time.perf_counter() - started
        assemble_from_store(
            config, case / "run", store=store, blobs=BlobStore(blobs), batch_id=batch_id
        )
        return generated, time.perf_counter() - started
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    data = image_config(args.count, args.size)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        redis, broker = start_redis(folder)
        try:
            config = parse_config(data, source=Path("bench"))
            run_batch(parse_config(image_config(8, args.size), source=Path("b")), folder / "warm")
            started = time.perf_counter()
            run_batch(config, folder / "embedded")
            embedded = time.perf_counter() - started
            one = workers_seconds(data, 1, broker, folder)
            two = workers_seconds(data, 2, broker, folder)
        finally:
            redis.kill()
            redis.wait()
    n = args.count
    print(f"images: {n} of {args.size}x{args.size}, {os.cpu_count()} CPUs")
    print(f"synthgate run (in-process):     {n / embedded:8.1f} samples/s")
    for label, (generated, whole) in (("1 worker ", one), ("2 workers", two)):
        print(
            f"submit, {label}: generation {n / generated:8.1f} samples/s, "
            f"end to end {n / whole:8.1f} samples/s"
        )
    print(f"2 workers / 1 worker (generation): {one[0] / two[0]:5.2f}   (target >= 1.7)")
    print(f"2 workers / 1 worker (end to end): {one[1] / two[1]:5.2f}")
    print(f"1 worker / in-process (end to end): {embedded / one[1]:5.2f}   (target >= 0.8)")


if __name__ == "__main__":
    main()
