"""Fenced workers under faults, on real Redis and real `synthgate worker` processes, on SQLite and
PostgreSQL: a worker frozen past the visibility timeout comes back and changes nothing, and a
SIGKILLed worker's chunk goes to another worker when its lease runs out, not after the broker's
visibility timeout.

Settings are seconds (tests/workers_support.py: lease 3 s, heartbeat 0.5 s, visibility 6 s);
bench/bench_recovery.py measures the recovery at the production defaults.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from postgres_support import wipe
from sqlalchemy import select
from workers_support import WORKER_SETTINGS, Cluster, RedisServer, wait_until

from synthgate.review.decision import Decision
from synthgate.review.queue import ReviewQueue
from synthgate.storage.store import Store, sqlite_url
from synthgate.storage.tables import batches, decisions, review_items
from synthgate.validators.rubric import RUBRICS_DIR

pytestmark = pytest.mark.timeout(240)

VISIBILITY_TIMEOUT = float(WORKER_SETTINGS["SYNTHGATE_VISIBILITY_TIMEOUT"])
LEASE_TIMEOUT = float(WORKER_SETTINGS["SYNTHGATE_LEASE_TIMEOUT"])
HEARTBEAT = float(WORKER_SETTINGS["SYNTHGATE_HEARTBEAT_INTERVAL"])
LONG_TIME_LIMITS = {
    "SYNTHGATE_SOFT_TIME_LIMIT": "100",
    "SYNTHGATE_TIME_LIMIT": "110",
    "SYNTHGATE_VISIBILITY_TIMEOUT": "120",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    db_url = None
    if request.param == "postgresql":
        db_url = request.getfixturevalue("postgres_cluster").database("fencing")
        wipe(db_url)
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    made = Cluster(tmp_path, redis, db_url=db_url)
    try:
        yield made
    finally:
        made.stop()
        redis.stop()


def audited_config(folder: Path, *, images: int) -> Path:
    """Procedural images judged by the detection rubric with half the accepted ones audited,
    so that every chunk has samples people review."""
    rubric = yaml.safe_load((RUBRICS_DIR / "detection.yaml").read_text())
    rubric["routing"]["audit_rate"] = 0.5
    (folder / "audited.yaml").write_text(yaml.safe_dump(rubric))
    config = {
        "name": "fenced",
        "seed": 5,
        "categories": ["circle", "square", "triangle"],
        "image": {
            "generator": "procedural",
            "count": images,
            "size": [192, 192],
            "objects_per_image": [2, 5],
            "rubric": str(folder / "audited.yaml"),
        },
    }
    path = folder / "fenced.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def statuses(store: Store, batch_id: str) -> dict[str, str]:
    return {sample.id: sample.status for sample in store.iter_samples(batch_id, "image")}


def review_everything_open(store: Store, batch_id: str) -> int:
    """Enqueue the batch's review and audit samples and reject each one (k = 1: final at once):
    verdicts that differ from the rubric's, so a worker rewriting one would show."""
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.0)
    queue.enqueue_batch(batch_id)
    decided = 0
    while (task := queue.next_item("ann")) is not None:
        verdict = Decision(verdict="reject", comment="seen by a person")
        queue.decide(task.item_id, "ann", verdict)
        decided += 1
    return decided


def verdicts(store: Store) -> list[tuple[Any, ...]]:
    """Every review item's state and every decision, as rows: what people decided."""
    with store.engine.connect() as connection:
        items = connection.execute(
            select(
                review_items.c.sample_id, review_items.c.status, review_items.c.final_verdict
            ).order_by(review_items.c.id)
        ).all()
        made = connection.execute(
            select(decisions.c.item_id, decisions.c.verdict, decisions.c.decided_at).order_by(
                decisions.c.id
            )
        ).all()
    return [tuple(row) for row in [*items, *made]]


def test_a_worker_frozen_past_the_visibility_timeout_changes_nothing_when_it_returns(
    cluster: Cluster, tmp_path: Path
) -> None:
    config = audited_config(tmp_path, images=96)
    embedded = cluster.cli("run", str(config), "--out", str(tmp_path / "embedded"))
    assert embedded.returncode == 0, embedded.stderr
    gate = tmp_path / "gate"  # while it exists, the frozen worker holds its chunk, unfinished
    # The frozen worker comes back within its own time limits and carries on where it stopped:
    # only its lease stops its writes. It makes the first chunks alone, so it is never short of
    # one to hold and no other worker writes while the test looks for the moment to stop it.
    frozen = cluster.start_worker(gate=gate, settings=LONG_TIME_LIMITS)
    submit = cluster.popen("submit", str(config), "--out", str(tmp_path / "submitted"), "--wait")
    store = Store(cluster.db_url)
    wait_until(lambda: batch_id_of(store) is not None, timeout=60, what="the batch")
    batch_id = str(batch_id_of(store))
    wait_until(
        lambda: store.chunks.totals(batch_id).get("done", 0) >= 2,
        timeout=60,
        what="two chunks judged",
    )
    gate.touch()
    reviewed_before = review_everything_open(store, batch_id)  # people at work before the stall

    [held] = cluster.stop_in_the_middle_of_a_chunk(frozen)
    stopped_at = time.monotonic()
    gate.unlink()
    # The other worker restores unacknowledged messages after the usual 6 s, so Redis
    # redelivers the frozen worker's message during the stall.
    cluster.start_worker()
    # The frozen worker's lease runs out; another worker makes its chunk, the batch finishes.
    output, _ = submit.communicate(timeout=120)
    assert submit.returncode == 0, output + cluster.worker_logs()
    remade = store.chunks.get(held.id)
    assert remade is not None and remade.status == "done" and remade.lease > held.lease
    # People review the chunk the frozen worker still thinks it is making.
    reviewed_after = review_everything_open(store, batch_id)
    assert reviewed_before and reviewed_after
    reviewed = reviewed_samples(store)
    assert any(held.start <= index < held.stop for index in indices(store, batch_id, reviewed))
    people = verdicts(store)
    settled = statuses(store, batch_id)
    # Frozen past the visibility timeout: Redis gave its message to the other worker too.
    wait_until(
        lambda: time.monotonic() - stopped_at > VISIBILITY_TIMEOUT + 2,
        timeout=60,
        what="the visibility timeout",
    )
    os.killpg(frozen.pid, signal.SIGCONT)
    log = cluster.log_of(frozen)
    refused = f"{held.id}: lease {held.lease} lost to another worker; stopped"
    wait_until(lambda: refused in log.read_text(), timeout=60, what="its task to be refused")

    after = statuses(store, batch_id)
    assert after == settled  # nothing changed: no `pending` written over a judged sample
    assert "pending" not in after.values() and len(after) == 96
    embedded_store = Store(sqlite_url(tmp_path / "embedded" / "synthgate.db"))
    expected = statuses(embedded_store, batch_id)
    embedded_store.close()
    assert {i: s for i, s in after.items() if i not in reviewed} == {
        i: s for i, s in expected.items() if i not in reviewed
    }
    assert {after[i] for i in reviewed} == {"rejected"}  # the reviewers' verdict, kept
    assert verdicts(store) == people
    chunk = store.chunks.get(held.id)
    assert chunk is not None and (chunk.status, chunk.lease) == ("done", remade.lease)
    assert {c.status for c in store.chunks.of_batch(batch_id)} == {"done"}
    status = cluster.cli("status", batch_id)
    assert status.returncode == 0 and "(done)" in status.stdout, status.stdout + status.stderr
    store.close()


def test_a_killed_workers_chunk_is_taken_up_when_its_lease_runs_out(
    cluster: Cluster, tmp_path: Path
) -> None:
    """No `submit --wait` here: the surviving worker's own sweep hands the chunk over. The
    visibility timeout is a minute, so the recovery measured is the lease's."""
    cluster.settings["SYNTHGATE_VISIBILITY_TIMEOUT"] = "60"
    config = audited_config(tmp_path, images=160)
    # Both hold their first chunk at the gate, so no write of the survivor's stands in the way
    # of stopping the doomed one outside a write (on a loaded machine, it could for a minute).
    gate = tmp_path / "gate"
    gate.touch()
    doomed = cluster.start_worker(gate=gate)
    survivor = cluster.start_worker(gate=gate)
    sent = cluster.cli("submit", str(config))
    assert sent.returncode == 0, sent.stdout + sent.stderr
    store = Store(cluster.db_url)
    batch_id = str(batch_id_of(store))
    [held] = cluster.stop_in_the_middle_of_a_chunk(doomed)
    cluster.kill_worker(doomed)
    killed_at = time.monotonic()
    gate.unlink()

    def taken_up() -> bool:
        chunk = store.chunks.get(held.id)
        return chunk is not None and chunk.lease > held.lease

    wait_until(taken_up, timeout=60, what="the killed worker's chunk to be taken up")
    recovery = time.monotonic() - killed_at
    print(f"\nrecovery after SIGKILL: {recovery:.1f} s (lease {LEASE_TIMEOUT:g} s)")
    wait_until(
        lambda: store.chunks.totals(batch_id).get("generated", 0) == 20,
        timeout=120,
        what="every chunk generated",
    )
    assert recovery <= LEASE_TIMEOUT + HEARTBEAT + 5 <= 15
    again = store.chunks.get(held.id)
    assert again is not None and again.crashes == 1 and again.holder != held.holder
    assert str(again.holder) in cluster.log_of(survivor).read_text()
    assert len(statuses(store, batch_id)) == 160
    store.close()


def batch_id_of(store: Store) -> str | None:
    with store.engine.connect() as connection:
        return connection.execute(select(batches.c.id)).scalar()


def reviewed_samples(store: Store) -> set[str]:
    with store.engine.connect() as connection:
        return set(connection.execute(select(review_items.c.sample_id)).scalars())


def indices(store: Store, batch_id: str, sample_ids: set[str]) -> list[int]:
    return [s.spec.index for s in store.iter_samples(batch_id, "image") if s.id in sample_ids]
