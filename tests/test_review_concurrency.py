"""Annotators working the queue at the same time (threads, then separate processes, on SQLite;
PostgreSQL in a scratch database, see conftest.py) never receive the same
item twice, no item gets more than k assignments, and every item ends with exactly k decisions."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from postgres_support import wipe
from sqlalchemy import select, text

from synthgate.errors import InputError
from synthgate.review.queue import Decision, ReviewQueue
from synthgate.samples import (
    CRITERIA,
    ObjectLabel,
    Provenance,
    RubricReport,
    Sample,
    SampleSpec,
    sample_id,
)
from synthgate.storage.store import Store
from synthgate.storage.tables import assignments, decisions, review_items

ITEMS = 40


def review_sample(index: int, status: str = "review") -> Sample:
    spec = SampleSpec(
        batch_id="c1", index=index, modality="image", generator="procedural", seed=index
    )
    return Sample(
        id=sample_id("c1", "image", index),
        spec=spec,
        uri=f"images/{index}.png",
        width=32,
        height=32,
        objects=[ObjectLabel(category="circle", bbox=[2, 2, 8, 8], area=50.0)],
        provenance=Provenance(generator="procedural", generator_version="1", seed=index),
        report=RubricReport(
            rubric="r",
            score=3.0,
            levels={c: 5 for c in CRITERIA},
            route="review" if status == "review" else "accepted",
        ),
        status=status,
    )


def prepared_store(url: str, k: int) -> Store:
    store = Store(url)
    store.upsert_samples(
        [review_sample(i) for i in range(ITEMS)]
        + [review_sample(ITEMS + i, "accepted") for i in range(10)]
    )
    ReviewQueue(store, annotators_per_item=k, gold_rate=0.15).enqueue_batch("c1")
    return store


def check_outcome(store: Store, k: int, received: dict[str, list[int]]) -> None:
    for annotator, items in received.items():
        assert len(items) == len(set(items)), f"{annotator} received an item twice"
    with store.engine.connect() as connection:
        kinds = dict(connection.execute(select(review_items.c.id, review_items.c.kind)).all())
        per_item = Counter(connection.execute(select(assignments.c.item_id)).scalars())
        decided = Counter(
            connection.execute(
                select(decisions.c.item_id).where(decisions.c.role == "annotator")
            ).scalars()
        )
    real = [i for i, kind in kinds.items() if kind == "sample"]
    assert len(real) == ITEMS
    assert all(per_item[i] == k for i in real), "an item got other than k assignments"
    assert all(decided[i] == k for i in real), "an item got other than k decisions"
    assert sum(len(v) for v in received.values()) == sum(per_item.values())
    assert store.count_by_status("c1").get(("image", "review"), 0) == 0


def run_threads(queue: ReviewQueue, annotators: list[str]) -> dict[str, list[int]]:
    received: dict[str, list[int]] = {a: [] for a in annotators}
    failures: list[BaseException] = []
    start = threading.Barrier(len(annotators))

    def annotate(name: str) -> None:
        try:
            start.wait()
            while (task := queue.next_item(name)) is not None:
                received[name].append(task.item_id)
                queue.decide(task.item_id, name, Decision(verdict="accept"))
        except BaseException as error:  # surfaced in the main thread below
            failures.append(error)

    threads = [threading.Thread(target=annotate, args=(a,)) for a in annotators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    return received


@pytest.mark.parametrize(("k", "annotators"), [(2, 2), (2, 4), (3, 5)])
def test_threads_on_sqlite(tmp_path: Path, k: int, annotators: int) -> None:
    store = prepared_store(f"sqlite:///{tmp_path / 'synthgate.db'}", k)
    queue = ReviewQueue(store, annotators_per_item=k, gold_rate=0.15)
    received = run_threads(queue, [f"ann{i}" for i in range(annotators)])
    check_outcome(store, k, received)
    store.close()


WORKER = """
import json, sys
from synthgate.review.queue import Decision, ReviewQueue
from synthgate.storage.store import Store
store = Store(sys.argv[1])
queue = ReviewQueue(store, annotators_per_item=int(sys.argv[2]), gold_rate=0.15)
seen = []
while (task := queue.next_item(sys.argv[3])) is not None:
    seen.append(task.item_id)
    queue.decide(task.item_id, sys.argv[3], Decision(verdict="accept"))
print(json.dumps(seen))
"""


def test_processes_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'synthgate.db'}"
    store = prepared_store(url, 2)
    names = ["ann", "bob", "cy"]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, "2", name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    received = {}
    for name, worker in zip(names, workers, strict=True):
        out, err = worker.communicate(timeout=180)
        assert worker.returncode == 0, err
        received[name] = json.loads(out)
    check_outcome(store, 2, received)
    store.close()


def test_threads_on_postgresql(postgres_scratch_url: str) -> None:
    url = postgres_scratch_url
    wipe(url)  # a scratch database: start from nothing
    store = prepared_store(url, 2)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.15)
    received = run_threads(queue, ["ann", "bob", "cy", "dee"])
    check_outcome(store, 2, received)
    store.close()


def test_a_slot_locked_by_another_claim_is_waited_for_not_reported_empty(
    postgres_scratch_url: str,
) -> None:
    """SKIP LOCKED skips rows another annotator's claim holds; while every open slot is held,
    the queue must retry, not tell the annotator that nothing is left (items would end with
    fewer than k assignments: seen once in CI with four threads)."""
    wipe(postgres_scratch_url)
    store = prepared_store(postgres_scratch_url, 2)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    with store.engine.connect() as holder:
        transaction = holder.begin()
        # another claim in flight holds every open item
        holder.execute(select(review_items.c.id).with_for_update()).all()
        got: list[object] = []
        claimer = threading.Thread(target=lambda: got.append(queue.next_item("bob")))
        claimer.start()
        claimer.join(timeout=0.5)
        assert claimer.is_alive(), f"next_item answered {got} while every slot was locked"
        transaction.rollback()
    claimer.join(timeout=30)
    assert got and got[0] is not None, "after the lock is released the annotator gets an item"
    store.close()


@pytest.mark.parametrize("first", ["release", "decide"])
def test_a_decision_and_the_release_of_its_assignment_are_one_after_the_other(
    postgres_scratch_url: str, first: str
) -> None:
    """`review release` takes back an undecided assignment while its annotator's decision comes
    in. Whichever gets the item first wins, whole: the decision is refused once the assignment
    is gone (nothing recorded for an assignment nobody holds), and a decision that came first
    is kept (the release passes over it). Before, the first order recorded a decision for the
    released assignment, and the second deadlocked (the release deleted the assignment, then
    waited for the item the decision held). The two are queued behind a transaction holding
    the item, in the order given, and run when it lets go."""
    wipe(postgres_scratch_url)
    store = prepared_store(postgres_scratch_url, 2)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    task = queue.next_item("ann")
    assert task is not None
    outcome: dict[str, object] = {}

    def release() -> None:
        try:
            outcome["released"] = queue.release_stale(-1.0)
        except BaseException as error:  # asserted on below
            outcome["release failed"] = repr(error)

    def decide() -> None:
        try:
            queue.decide(task.item_id, "ann", Decision(verdict="accept"))
            outcome["decided"] = True
        except InputError as error:
            outcome["decided"] = str(error)
        except BaseException as error:
            outcome["decide failed"] = repr(error)

    order = {"release": [release, decide], "decide": [decide, release]}[first]
    with store.engine.connect() as holder, store.engine.connect() as watcher:
        transaction = holder.begin()
        holder.execute(
            select(review_items.c.id).where(review_items.c.id == task.item_id).with_for_update()
        ).all()
        # PostgreSQL queues waiters for a row in the order they came: the first let go first
        threads = []
        for waiting, work in enumerate(order, start=1):
            threads.append(threading.Thread(target=work))
            threads[-1].start()
            _wait_for_lock_waiters(watcher, waiting)
        transaction.rollback()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive(), outcome
    with store.engine.connect() as connection:
        held = connection.execute(
            select(assignments.c.annotator, assignments.c.decided_at).where(
                assignments.c.item_id == task.item_id
            )
        ).all()
        recorded = connection.execute(
            select(decisions.c.annotator).where(decisions.c.item_id == task.item_id)
        ).all()
        taken = connection.execute(
            select(review_items.c.taken).where(review_items.c.id == task.item_id)
        ).scalar()
    if first == "release":
        assert outcome["released"] == 1
        assert "taken back" in str(outcome["decided"]), outcome
        assert held == [] and recorded == [] and taken == 0
    else:
        assert outcome == {"decided": True, "released": 0}
        assert [who for who, _ in held] == ["ann"] and held[0].decided_at is not None
        assert [who for (who,) in recorded] == ["ann"] and taken == 1
    store.close()


def _wait_for_lock_waiters(watcher: Any, count: int) -> None:
    """Until `count` sessions of this (scratch) database are blocked by another's lock."""
    waiting_sessions = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND cardinality(pg_blocking_pids(pid)) > 0"
    )
    deadline = time.monotonic() + 10
    while watcher.execute(waiting_sessions).scalar() < count:
        watcher.rollback()  # the activity view is read once per transaction
        assert time.monotonic() < deadline, f"fewer than {count} sessions came to wait"
        time.sleep(0.01)
