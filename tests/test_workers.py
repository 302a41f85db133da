"""`synthgate submit` on real workers and a real Redis: killed workers, a restarted broker, poison.

Every test starts its own redis-server on a free port and `synthgate worker` subprocesses
(tests/workers_support.py), with visibility timeouts of seconds so redeliveries come quickly.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from factories import SUPPORT_TICKETS
from sqlalchemy import func, select
from workers_support import Cluster, RedisServer, task_ids, wait_until

from synthgate.config import parse_config
from synthgate.runner import run_batch
from synthgate.storage.store import Store
from synthgate.storage.tables import batches, chunks, review_items, samples

pytestmark = pytest.mark.timeout(180)


def mixed_config(images: int = 120, texts: int = 80, size: int = 160) -> dict[str, Any]:
    return {
        "name": "spread",
        "seed": 21,
        "categories": ["circle", "square", "triangle"],
        "image": {"generator": "procedural", "count": images, "size": [size, size]},
        "text": {
            "generator": "templates",
            "templates": str(SUPPORT_TICKETS),
            "count": texts,
            "locales": ["en_US", "de_DE", "ja_JP"],
        },
    }


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    made = Cluster(tmp_path, redis)
    try:
        yield made
    finally:
        made.stop()
        redis.stop()


def write_config(folder: Path, data: dict[str, Any]) -> Path:
    path = folder / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def running(cluster: Cluster) -> int:
    """Chunks a worker holds in the shared database, whatever the batch."""
    store = Store(cluster.db_url)
    try:
        with store.engine.connect() as connection:
            query = select(func.count()).select_from(chunks).where(chunks.c.status == "running")
            return int(connection.execute(query).scalar_one())
    finally:
        store.close()


def stored(cluster: Cluster) -> int:
    """Sample rows in the shared database, whatever the batch."""
    store = Store(cluster.db_url)
    try:
        with store.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(samples)).scalar_one())
    finally:
        store.close()


def store_batch_id(store: Store) -> str:
    with store.engine.connect() as connection:
        return str(connection.execute(select(batches.c.id)).scalar_one())


def assert_same_run(submitted: Path, embedded: Path) -> None:
    for name in ("coco.json", "accepted.coco.json", "text.jsonl"):
        assert (submitted / name).read_bytes() == (embedded / name).read_bytes(), name
    names = sorted(p.name for p in (embedded / "images").iterdir())
    assert names == sorted(p.name for p in (submitted / "images").iterdir())
    for name in names:
        assert (submitted / "images" / name).read_bytes() == (
            embedded / "images" / name
        ).read_bytes()


def unique_ids(folder: Path) -> tuple[list[str], list[str]]:
    coco = json.loads((folder / "coco.json").read_text())
    images = [image["synthgate"]["sample_id"] for image in coco["images"]]
    texts = [json.loads(line)["id"] for line in (folder / "text.jsonl").read_text().splitlines()]
    return images, texts


def test_a_killed_worker_loses_and_duplicates_nothing(cluster: Cluster, tmp_path: Path) -> None:
    config = write_config(tmp_path, mixed_config())
    embedded = cluster.cli("run", str(config), "--out", str(tmp_path / "embedded"))
    assert embedded.returncode == 0, embedded.stderr
    # The doomed worker makes a third of the batch alone, then holds its next chunk at the gate:
    # no other worker's write stands in the way of stopping it outside a write.
    gate = tmp_path / "gate"
    doomed = cluster.start_worker(gate=gate)
    submit = cluster.popen("submit", str(config), "--out", str(tmp_path / "submitted"), "--wait")
    wait_until(lambda: stored(cluster) >= 60, timeout=60, what="a third of the batch")
    gate.touch()
    [held] = cluster.stop_in_the_middle_of_a_chunk(doomed)
    cluster.kill_worker(doomed)
    gate.unlink()
    cluster.start_worker()
    cluster.start_worker()
    output, _ = submit.communicate(timeout=120)
    assert submit.returncode == 0, output + cluster.worker_logs()
    images, texts = unique_ids(tmp_path / "submitted")
    assert len(images) + len(texts) == 200
    assert len(set(images)) == 120 and len(set(texts)) == 80
    assert_same_run(tmp_path / "submitted", tmp_path / "embedded")
    store = Store(cluster.db_url)
    assert {chunk.status for chunk in store.chunks.of_batch(store_batch_id(store))} == {"done"}
    # The chunk the killed worker held was claimed again, under a newer lease, by another task.
    again = store.chunks.get(held.id)
    assert again is not None and again.lease > held.lease and again.holder != held.holder
    assert again.crashes >= 1
    finished_elsewhere = task_ids(cluster.folder / "worker-1.log", "succeeded") | task_ids(
        cluster.folder / "worker-2.log", "succeeded"
    )
    assert again.holder in finished_elsewhere
    store.close()


def test_a_broker_restart_mid_batch_still_completes(cluster: Cluster, tmp_path: Path) -> None:
    """Redis restarted without persistence loses the queued messages; submit sends them again.

    The worker holds its first chunk at the gate, so the restart lands mid-batch however fast
    the machine is (waiting for some samples to be stored first raced a quiet machine's worker,
    which had made all 144 by the time it was stopped)."""
    config = write_config(tmp_path, mixed_config(images=80, texts=64))
    gate = tmp_path / "gate"
    gate.touch()
    worker = cluster.start_worker(gate=gate)
    submit = cluster.popen("submit", str(config), "--out", str(tmp_path / "submitted"), "--wait")
    wait_until(lambda: running(cluster) >= 1, timeout=60, what="the worker to take a chunk")
    os.killpg(worker.pid, signal.SIGSTOP)
    assert stored(cluster) < 144
    cluster.redis.restart()
    os.killpg(worker.pid, signal.SIGCONT)
    gate.unlink()
    output, _ = submit.communicate(timeout=120)
    assert submit.returncode == 0, output + cluster.worker_logs()
    # sent again by submit's sweep or the worker's, whichever comes first: both wait as long
    resent = re.search(r"unfinished chunks? again", output) or "no worker took again" in (
        cluster.worker_logs()
    )
    assert "sent" in output and resent, output + cluster.worker_logs()
    images, texts = unique_ids(tmp_path / "submitted")
    assert len(images) == len(set(images)) == 80
    assert len(texts) == len(set(texts)) == 64


def test_a_resubmit_after_the_broker_lost_everything_finishes_without_duplicates(
    cluster: Cluster, tmp_path: Path
) -> None:
    config = write_config(tmp_path, mixed_config(images=24, texts=70, size=64))
    first = cluster.cli("submit", str(config))
    assert first.returncode == 0, first.stderr
    assert "chunks sent" in first.stdout
    # the way to follow it names the database as submit was given it: here by the environment
    batch_id = first.stdout.split()[1].rstrip(":")
    assert f"follow it with: synthgate status {batch_id}\n" in first.stdout
    given = cluster.cli("submit", str(config), "--db", cluster.db_url)  # sends nothing new
    assert given.returncode == 0, given.stderr
    status = f"synthgate status {batch_id} --db {cluster.db_url}"
    assert f"follow it with: {status}\n" in given.stdout  # it failed without --db
    shown = subprocess.run(
        [sys.executable, "-m", "synthgate", *status.split()[1:]],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    cluster.redis.restart()  # the queued messages are gone; no worker ever saw them
    cluster.start_worker()
    again = cluster.cli("submit", str(config), "--out", str(tmp_path / "submitted"), "--wait")
    assert again.returncode == 0, again.stdout + again.stderr
    images, texts = unique_ids(tmp_path / "submitted")
    assert len(images) == len(set(images)) == 24
    assert len(texts) == len(set(texts)) == 70
    finished = cluster.cli("submit", str(config), "--out", str(tmp_path / "again"), "--wait")
    assert finished.returncode == 0 and "0 chunks sent" in finished.stdout
    assert_same_run(tmp_path / "again", tmp_path / "submitted")


def test_chunks_whose_messages_the_broker_lost_are_sent_again_without_a_wait(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Submitted without --wait, then Redis restarted before a worker took them: the chunks
    stayed `queued` for good, the workers idle, until someone submitted the config again."""
    cluster.settings["SYNTHGATE_RETRY_BACKOFF_MAX"] = "1"  # stalled after 3 + 1 + 1 s
    config = write_config(tmp_path, mixed_config(images=24, texts=40, size=64))
    first = cluster.cli("submit", str(config))
    assert first.returncode == 0, first.stderr
    batch_id = first.stdout.split()[1].rstrip(":")
    cluster.redis.restart()  # the queued messages are gone; no worker ever saw them
    worker = cluster.start_worker()
    store = Store(cluster.db_url)
    try:
        wait_until(
            lambda: set(store.chunks.totals(batch_id)) == {"last_update", "generated"},
            timeout=60,
            what="the workers to send the lost chunks again and make them",
        )
    finally:
        store.close()
    assert "no worker took again" in cluster.log_of(worker).read_text()
    done = cluster.cli("submit", str(config), "--out", str(tmp_path / "submitted"), "--wait")
    assert done.returncode == 0 and "0 chunks sent" in done.stdout, done.stdout + done.stderr
    images, texts = unique_ids(tmp_path / "submitted")
    assert len(images) == len(set(images)) == 24
    assert len(texts) == len(set(texts)) == 40


def test_a_worker_on_another_database_hands_the_messages_back(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A worker started with another --db took the chunks' messages, said each was not in its
    database, and acknowledged it: the messages were gone, and a worker on the right database
    made nothing until its sweep sent them again, a lease, two heartbeats and the longest retry
    backoff after the submit (64 s here). They are sent again a heartbeat later, and it makes
    them at once."""
    config = write_config(tmp_path, mixed_config(images=8, texts=8, size=64))
    first = cluster.cli("submit", str(config))
    assert first.returncode == 0, first.stderr
    batch_id = first.stdout.split()[1].rstrip(":")
    store = Store(cluster.db_url)
    try:
        chunk_ids = [chunk.id for chunk in store.chunks.of_batch(batch_id)]
        other = f"sqlite:///{tmp_path / 'other.db'}"
        wrong = cluster.start_worker(settings={"SYNTHGATE_DB_URL": other})
        wait_until(
            lambda: all(
                f"chunk {chunk_id} is not in this worker's database"
                in cluster.log_of(wrong).read_text()
                for chunk_id in chunk_ids
            ),
            timeout=60,
            what="the worker on another database to take every chunk's message",
        )
        cluster.kill_worker(wrong)
        cluster.start_worker()
        wait_until(
            lambda: set(store.chunks.totals(batch_id)) == {"last_update", "generated"},
            timeout=30,
            what="the worker on the right database to make the chunks",
        )
    finally:
        store.close()
    said = cluster.log_of(wrong).read_text()
    assert "--db (or SYNTHGATE_DB_URL)" in said and "sent again in" in said, said


def test_a_sample_that_always_kills_its_worker_ends_failed_and_the_rest_completes(
    cluster: Cluster, tmp_path: Path
) -> None:
    config = write_config(tmp_path, mixed_config(images=16, texts=100, size=64))
    cluster.start_worker(poison="text:70")
    submit = cluster.cli("submit", str(config), "--out", str(tmp_path / "submitted"), "--wait")
    assert submit.returncode == 1, submit.stdout + submit.stderr + cluster.worker_logs()
    assert "1 failed" in submit.stdout and "text #70" in submit.stderr
    images, texts = unique_ids(tmp_path / "submitted")
    assert len(images) == 16 and len(texts) == len(set(texts)) == 99
    store = Store(cluster.db_url)
    batch_id = store_batch_id(store)
    status = cluster.cli("status", batch_id)
    assert status.returncode == 0, status.stderr
    assert "text #70" in status.stderr and "worker was lost 2 times" in status.stderr
    assert [(f["modality"], f["index"]) for f in store.failures(batch_id)] == [("text", 70)]

    # A person rejects a sample the rubric accepted; then the cause of the failure goes away and
    # the batch is submitted again: the failed sample is made, the decision stays.
    chunk = next(
        c for c in store.chunks.of_batch(batch_id) if c.modality == "text" and c.start <= 70
    )
    neighbours = store.samples_in(batch_id, "text", chunk.start, chunk.stop)
    reviewed = next(t for t in neighbours if t.status == "accepted" and t.spec.index != 70)
    reviewed.status = "rejected"
    with store.engine.begin() as connection:  # a reviewer's final verdict, as finalise writes it
        connection.execute(
            review_items.insert().values(
                key=f"sample:{reviewed.id}",
                sample_id=reviewed.id,
                batch_id=batch_id,
                modality="text",
                kind="sample",
                reason="audit",
                k=1,
                status="final",
                final_verdict="reject",
                created_at=time.time(),
            )
        )
    store.upsert_samples([reviewed])
    poisoned = cluster.workers.pop()
    cluster.kill_worker(poisoned)
    cluster.start_worker()
    again = cluster.cli("submit", str(config), "--out", str(tmp_path / "again"), "--wait")
    assert again.returncode == 0, again.stdout + again.stderr + cluster.worker_logs()
    assert store.failures(batch_id) == []
    images, texts = unique_ids(tmp_path / "again")
    assert len(images) == 16 and len(texts) == len(set(texts)) == 100
    rows = [
        json.loads(line) for line in (tmp_path / "again" / "text.jsonl").read_text().splitlines()
    ]
    assert next(r for r in rows if r["id"] == reviewed.id)["status"] == "rejected"
    assert store.get_sample(reviewed.id).status == "rejected"  # type: ignore[union-attr]
    store.close()


def test_gpu_and_cpu_queues_are_served_by_their_own_workers(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Procedural routed to `gpu` here (no GPU needed): images there, texts on `cpu`."""
    cluster.settings["SYNTHGATE_GPU_GENERATORS"] = '["procedural"]'
    data = mixed_config(images=24, texts=20, size=64)
    config = write_config(tmp_path, data)
    cluster.start_worker(queues="gpu", wait=False)
    cluster.start_worker(queues="cpu")
    submit = cluster.cli("submit", str(config), "--out", str(tmp_path / "submitted"), "--wait")
    assert submit.returncode == 0, submit.stdout + submit.stderr + cluster.worker_logs()
    run_batch(parse_config(data, source=config), tmp_path / "embedded")
    assert_same_run(tmp_path / "submitted", tmp_path / "embedded")
    logs = [(cluster.folder / f"worker-{n}.log").read_text() for n in (0, 1)]
    assert "image:0 generated" in logs[0] and "text:" not in logs[0]  # the gpu worker
    assert "text:0 generated" in logs[1] and "image:" not in logs[1]  # the cpu worker


def test_a_wrong_blobs_given_to_submit_alone_is_named_and_costs_no_remake(
    cluster: Cluster, tmp_path: Path
) -> None:
    """`submit --wait --blobs <typo>` forgot the rows of every chunk the workers had made, so
    they made the whole batch again into their (right) blob store, and every later submit
    with the same typo did the same. Now it names the folder and changes no file of theirs."""
    cluster.start_worker()
    config = write_config(tmp_path, mixed_config(images=8, texts=8, size=64))
    typo = tmp_path / "blobz"
    files: dict[Path, tuple[int, int]] = {}
    for _ in range(2):  # the first submit waits for the chunks, the second finds them made
        wrong = cluster.cli("submit", str(config), "--wait", "--blobs", str(typo))
        assert wrong.returncode == 2, wrong.stdout + wrong.stderr
        said = " ".join(wrong.stderr.split())
        assert f"If {typo} is not where the workers write, pass their blob store as --blobs" in (
            said
        )
        pngs = cluster.blob_dir.rglob("*.png")
        files = files or {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in pngs}
    assert len(files) == 8
    done = cluster.cli("submit", str(config), "--out", str(tmp_path / "out"), "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in files} == files
    assert len(unique_ids(tmp_path / "out")[0]) == 8
