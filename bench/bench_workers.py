"""Throughput of procedural generation on 1 and 2 Celery worker processes against `synthgate run`.

Starts its own redis-server on a free port and two pools of `synthgate worker --concurrency 1`
processes (1 and 2 workers, each pool on its own Redis database, SQLite file and blob folder),
warmed by a small batch as the in-process run is. Each round runs, interleaved so that a busy
neighbour slows all alike: `run_batch` in-process; per pool, `submit` -> every chunk generated
("generation": workers also run the per-sample checks), then the reports finished in index order
(the batch checks: hash comparisons) and written by the submitting process; and the same
overlapped, chunks finished as they arrive (what `synthgate submit --wait` does). Prints the
best of the rounds in samples/s, the ratios against the targets (2 workers >= 1.7x one worker,
one worker >= 0.8x in-process) and CPU time per sample (worker processes plus the submitting
process, less the CPU of the bench's own 20 ms polling), which a neighbour on a shared machine
distorts less than samples/s.
Usage: python bench/bench_workers.py [--count 600] [--size 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _support import start_redis, tree_cpu_seconds

from synthgate.config import parse_config
from synthgate.runner import run_batch
from synthgate.storage.blobs import BlobStore
from synthgate.storage.store import Store
from synthgate.workers.app import make_app, settings_from
from synthgate.workers.runner import assemble_from_store, chunk_generated
from synthgate.workers.submit import submit_batch


def image_config(count: int, size: int, *, seed: int) -> dict:
    return {
        "name": "bench-workers",
        "seed": seed,
        "categories": ["circle", "square", "triangle", "star", "ring"],
        "image": {
            "generator": "procedural",
            "count": count,
            "size": [size, size],
            "objects_per_image": [1, 5],
        },
    }


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


class Pool:
    """N worker processes on their own Redis database, database file and blob folder."""

    def __init__(self, workers: int, redis_url: str, folder: Path) -> None:
        self.folder = folder / f"workers-{workers}"
        self.folder.mkdir()
        # Each pool has its own Redis database number, so idle pools never take the other's work.
        broker = f"{redis_url}/{workers}"
        db, self.blob_dir = f"sqlite:///{self.folder / 'shared.db'}", str(self.folder / "blobs")
        env = {
            **os.environ,
            "SYNTHGATE_BROKER_URL": broker,
            "SYNTHGATE_DB_URL": db,
            "SYNTHGATE_BLOB_URL": self.blob_dir,
        }
        self.processes = start_workers(workers, env, self.folder)
        self.settings = settings_from(broker=broker, db=db, blobs=self.blob_dir)
        self.app, self.store = make_app(self.settings), Store(db)

    def cpu_seconds(self) -> float:
        """CPU time used so far by the worker processes and their pool processes."""
        return tree_cpu_seconds([process.pid for process in self.processes])

    def submit(self, data: dict, *, overlapped: bool) -> tuple[float, float, float]:
        """(seconds until every chunk is generated, until the run folder is written, CPU s).

        `overlapped`: judge and write chunks as they arrive, as `synthgate submit --wait` does;
        otherwise wait for the whole batch first, so the workers' generation is timed without
        the judging process competing for the same CPUs. Waiting polls the chunks' status rows
        every 20 ms (a precise finish time); the CPU that polling takes is left out of the
        figure (`submit --wait` polls every 0.25 s).
        """
        config = parse_config(data, source=Path("bench"))
        cpu_before = self.cpu_seconds() + time.process_time()
        started = time.perf_counter()
        batch_id, _sent = submit_batch(self.app, self.store, config)
        chunk_ids = [chunk.id for chunk in self.store.chunks.of_batch(batch_id)]
        ready: list[float] = []
        polling = 0.0

        def wait_for_chunk(chunk_id: str) -> None:
            nonlocal polling
            polled = time.thread_time()
            while not chunk_generated(self.store, chunk_id):
                time.sleep(0.02)
            polling += time.thread_time() - polled
            ready.append(time.perf_counter() - started)

        if not overlapped:
            for chunk_id in chunk_ids:
                wait_for_chunk(chunk_id)
        assemble_from_store(
            config,
            self.folder / f"run-{data['seed']}-{overlapped}",
            store=self.store,
            blobs=BlobStore(self.blob_dir),
            batch_id=batch_id,
            wait_for_chunk=wait_for_chunk if overlapped else None,
        )
        whole = time.perf_counter() - started
        cpu = self.cpu_seconds() + time.process_time() - cpu_before - polling
        return max(ready), whole, cpu

    def stop(self) -> None:
        for process in self.processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        redis, redis_url = start_redis(folder)
        pools = [Pool(1, redis_url, folder), Pool(2, redis_url, folder)]
        try:
            # Warm everything as it will run: generators built, caches filled, in every process.
            run_batch(
                parse_config(image_config(16, args.size, seed=0), source=Path("w")), folder / "w"
            )
            for pool in pools:
                pool.submit(image_config(32, args.size, seed=0), overlapped=True)
            embedded: list[float] = []
            embedded_cpu: list[float] = []
            runs: dict[tuple[int, bool], list[tuple[float, float, float]]] = {
                (w, o): [] for w in (1, 2) for o in (False, True)
            }
            # Rounds interleave every way of running, so a busy neighbour on a shared machine
            # slows each of them alike; each run is a new batch (another seed), the best counts.
            for round_ in range(1, args.rounds + 1):
                data = image_config(args.count, args.size, seed=round_)
                started, cpu_before = time.perf_counter(), time.process_time()
                run_batch(parse_config(data, source=Path("bench")), folder / f"embedded-{round_}")
                embedded.append(time.perf_counter() - started)
                embedded_cpu.append(time.process_time() - cpu_before)
                for (workers, overlapped), found in runs.items():
                    seed = 100 * round_ + 10 * workers + int(overlapped)
                    pool = pools[workers - 1]
                    found.append(pool.submit({**data, "seed": seed}, overlapped=overlapped))
        finally:
            for pool in pools:
                pool.stop()
            redis.kill()
            redis.wait()
    n = args.count
    best_embedded, cpu_embedded = min(embedded), min(embedded_cpu)
    best = {key: [min(t[i] for t in found) for i in range(3)] for key, found in runs.items()}
    print(f"images: {n} of {args.size}x{args.size}, {os.cpu_count()} CPUs, best of {args.rounds}")
    print(f"load average now: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print(
        f"synthgate run (in-process):  {n / best_embedded:7.1f} samples/s, "
        f"CPU {1000 * cpu_embedded / n:5.2f} ms/sample, {cpu_embedded / best_embedded:4.2f} cores"
    )
    for workers in (1, 2):
        generated, phased, cpu = best[(workers, False)]
        overlapped = best[(workers, True)][1]
        print(
            f"submit, {workers} worker{'s' if workers > 1 else ' '}: generation {n / generated:7.1f}, "
            f"then judged+written {n / phased:7.1f}, overlapped (submit --wait) "
            f"{n / overlapped:7.1f} samples/s; CPU {1000 * cpu / n:5.2f} ms/sample"
        )
    one, two = best[(1, False)], best[(2, False)]
    print(f"2 workers / 1 worker, generation:          {one[0] / two[0]:5.2f}   (target >= 1.7)")
    print(
        f"2 workers / 1 worker, submit --wait:       {best[(1, True)][1] / best[(2, True)][1]:5.2f}"
    )
    print(f"1 worker / in-process, generation:         {best_embedded / one[0]:5.2f}")
    print(
        f"1 worker / in-process, submit --wait:      {best_embedded / best[(1, True)][1]:5.2f}   (target >= 0.8)"
    )
    print(f"CPU per sample, 1 worker / in-process:     {one[2] / cpu_embedded:5.2f}")


if __name__ == "__main__":
    main()
