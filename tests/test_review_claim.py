"""Claiming review items by index: the kept counts (`taken` per item, tasks given per annotator)
always equal the assignments, the
claim order is started items first and then priority, gold tasks are met in a seeded order per
annotator, and the statements a claim runs read an index range, never sort or scan the queue
(SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from review_fixtures import ACCEPT, fill, kept_and_counted, make_sample, open_store
from sqlalchemy import event, func, select, text

from synthgate.review.claims import AHEAD, FRESH, STARTED
from synthgate.review.items import SET_STATUS
from synthgate.review.queue import ReviewQueue
from synthgate.storage.prepared import Prepared
from synthgate.storage.store import Store
from synthgate.storage.tables import annotator_counts, assignments, review_items


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made = open_store(request, tmp_path)
    yield made
    made.close()


def test_kept_counts_follow_every_change_of_assignments(store: Store) -> None:
    fill(store, review=6, audit=2, accepted=12)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.3, seed=0)
    queue.enqueue_batch("b1")
    for who in ("ann", "bob", "cy"):
        for _ in range(3):
            task = queue.next_item(who)
            assert task is not None
            queue.decide(task.item_id, who, ACCEPT)
    held = queue.next_item("dee")  # left undecided, then released
    assert held is not None
    kept, counted = kept_and_counted(store)
    assert kept == counted and sum(kept.values()) == 10
    assert queue.release_stale(-1.0) == 1
    kept, counted = kept_and_counted(store)
    assert kept == counted and sum(kept.values()) == 9
    with store.engine.connect() as connection:
        fresh = connection.execute(
            select(review_items.c.id)
            .where(review_items.c.kind == "sample", review_items.c.taken == 0)
            .limit(1)
        ).scalar()
    assert fresh is not None  # 8 items, 2 slots each: 9 taken leave fresh ones
    queue.decide(fresh, "eve", ACCEPT, assign=True)  # a decision from outside (Label Studio)
    kept, counted = kept_and_counted(store)
    assert kept == counted and kept[fresh] == 1


def test_started_items_first_then_priority_then_enqueue_order(store: Store) -> None:
    fill(store, review=5, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    queue.enqueue_batch("b1")
    with store.engine.begin() as connection:
        ids = list(
            connection.execute(select(review_items.c.id).order_by(review_items.c.id)).scalars()
        )
        # the last item is worth most, the first two tie
        for item_id, value in zip(ids, [0.5, 0.5, 0.9, 0.7, 0.1], strict=True):
            connection.execute(
                review_items.update().where(review_items.c.id == item_id).values(priority=value)
            )
    first = queue.next_item("ann")
    assert first is not None and first.item_id == ids[4]
    queue.decide(first.item_id, "ann", ACCEPT)
    # bob finishes the item ann started before opening a new one
    second = queue.next_item("bob")
    assert second is not None and second.item_id == ids[4]
    queue.decide(second.item_id, "bob", ACCEPT)
    order = []
    while (task := queue.next_item("cy")) is not None:
        order.append(task.item_id)
        queue.decide(task.item_id, "cy", ACCEPT)
    assert order == [ids[0], ids[1], ids[3], ids[2]]  # priority, ties by enqueue order


def test_gold_tasks_come_in_a_seeded_order_per_annotator_and_never_twice(store: Store) -> None:
    fill(store, review=40, audit=0, accepted=40)
    queue = ReviewQueue(store, annotators_per_item=4, gold_rate=0.5, seed=3)
    queue.enqueue_batch("b1")
    met: dict[str, list[int]] = {}
    for who in ("ann", "bob"):
        met[who] = []
        with store.engine.connect() as connection:
            gold_ids = set(
                connection.execute(
                    select(review_items.c.id).where(review_items.c.kind == "gold")
                ).scalars()
            )
        while (task := queue.next_item(who)) is not None:
            if task.item_id in gold_ids:
                met[who].append(task.item_id)
            queue.decide(task.item_id, who, ACCEPT)
    for who, seen in met.items():
        assert len(seen) == len(set(seen)), f"{who} met a gold task twice"
        assert len(seen) >= 10, f"{who} met {len(seen)} gold tasks at gold_rate 0.5"
    assert met["ann"] != met["bob"]  # each annotator walks the gold set in their own order


def test_each_annotators_count_of_tasks_is_kept_with_their_assignments(store: Store) -> None:
    """The count that seeds an annotator's gold draw is kept, not counted per claim: it stays
    the number of their assignments through claims, decisions, an import's assignment and
    assignments taken back."""
    fill(store, review=60, audit=0, accepted=20)
    # fixed gold draws: the steps below leave ann a fresh task that has room for dee
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.3, seed=0)
    queue.enqueue_batch("b1")
    released = 0
    for step in range(90):
        who = ("ann", "bob", "cy")[step % 3]
        task = queue.next_item(who)
        if task is not None and step % 4:  # every fourth task left open
            queue.decide(task.item_id, who, ACCEPT)
        if step % 30 == 29:
            released += queue.release_stale(-1)  # the open ones taken back
    assert released > 0
    fresh = queue.next_item("ann")
    assert fresh is not None
    queue.decide(fresh.item_id, "dee", ACCEPT, assign=True)  # as an import records one
    with store.engine.connect() as connection:
        kept = {row.annotator: row.given for row in connection.execute(select(annotator_counts))}
        counted = {
            who: count
            for who, count in connection.execute(
                select(assignments.c.annotator, func.count()).group_by(assignments.c.annotator)
            )
        }
    assert kept == counted
    assert set(counted) == {"ann", "bob", "cy", "dee"}


@pytest.mark.parametrize("k", [2, 3])
def test_an_annotator_far_ahead_claims_what_the_walk_would(
    store: Store, k: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One annotator works alone until they hold many more than AHEAD started items nobody
    else has taken; imports (decisions made outside the queue) put others alone or together
    on fresh items of any priority, the team joins, a task is released, and the lead grows
    again. Every claim (the leader's by seeks of each other holder's first item, the others'
    by the walk) takes the item the walk over started items, then fresh ones, would take."""
    fill(store, review=140, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=k, gold_rate=0.0)
    queue.enqueue_batch("b1")
    draw = random.Random(k)
    with store.engine.begin() as connection:  # the claim order not the enqueue order, and ties
        ids = connection.execute(select(review_items.c.id)).scalars().all()
        for item_id in ids:
            connection.execute(
                review_items.update()
                .where(review_items.c.id == item_id)
                .values(priority=draw.choice([0.1, 0.2, 0.3, 0.4, 0.5]))
            )
    team = ["bob", "cy", "dee"][:k]
    imports = [["bob"], ["cy"], ["dee"], ["bob"]] + (
        [["bob", "cy"], ["cy", "dee"]] if k > 2 else []
    )
    turns: list[Any] = ["ann"] * 40 + imports + ["ann"] * 12
    turns += [team[i % len(team)] for i in range(12)] + ["ann", "bob"] * 12
    turns += ["ann"] * 30 + imports + ["cy", "ann", "ann", "dee"] * 8
    leads, seeks, released = [], [], 0
    real = ReviewQueue._real

    def probing(self: ReviewQueue, connection: Any, values: Any, ahead: int, found: Any) -> Any:
        seeks.append(ahead >= AHEAD)  # CLAIM_AHEAD's probes (in OPEN_OR_CLAIM on PostgreSQL)
        return real(self, connection, values, ahead, found)

    monkeypatch.setattr(ReviewQueue, "_real", probing)
    for step, who in enumerate(turns):
        with store.engine.connect() as connection:
            if isinstance(who, list):  # they decide a fresh item outside the queue
                fresh = (
                    connection.execute(select(review_items.c.id).where(review_items.c.taken == 0))
                    .scalars()
                    .all()
                )
                item_id = draw.choice(fresh)
                connection.close()
                for person in who:
                    queue.decide(item_id, person, ACCEPT, assign=True)
                continue
            values = {"annotator": who}
            expected = connection.execute(STARTED, values).scalar()
            if expected is None:
                expected = connection.execute(FRESH, values).scalar()
            lead = connection.execute(
                select(func.count()).where(review_items.c.holder == who)
            ).scalar()
        leads.append(lead)
        task = queue.next_item(who)
        assert (task.item_id if task else None) == expected, (step, who, lead)
        if task is None:
            continue
        if who == "bob" and not released:  # left open, then taken back: the one left holds it
            released = queue.release_stale(-1.0)
            kept, counted = kept_and_counted(store)
            assert kept == counted
            continue
        queue.decide(task.item_id, who, ACCEPT)
    assert max(leads) >= 3 * AHEAD and released == 1
    assert sum(seeks) >= 40  # the leader's claims took the seeks, many times
    kept, counted = kept_and_counted(store)
    assert kept == counted


def test_an_annotator_far_ahead_passes_a_holders_first_item_met_as_gold(store: Store) -> None:
    """ann, far ahead, met a sample as gold before it was real work; bob holds its real item
    alone, his first in claim order, and another after it. The seek of bob's first item found
    the one ann may not take and went no further: she was given a fresh item, or, with none
    left, nothing, while bob's second item waited for a second person. The claim takes what
    the walk takes: bob's second item."""
    fill(store, review=3 * AHEAD, audit=0, accepted=1)
    known = store.get_sample(make_sample(3 * AHEAD, "accepted").id)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.5, seed=4)
    gold = queue.add_gold(known, expected=["accept"])
    queue.enqueue_batch("b1")
    met: list[int] = []
    while gold not in met:  # ahead, meeting the sample as gold on the way
        task = queue.next_item("ann")
        assert task is not None
        met.append(task.item_id)
        queue.decide(task.item_id, "ann", ACCEPT)
    _decide_alone(queue, "ann", AHEAD)  # far ahead
    store.upsert_samples([make_sample(3 * AHEAD, "review")])  # now real work
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    assert queue.enqueue_batch("b1") == 1
    with store.engine.begin() as connection:
        real = connection.execute(
            select(review_items.c.id).where(review_items.c.key == f"sample:{known.id}")
        ).scalar_one()
        later = _fresh(store)
        for item_id, place in ((real, 0.1), (later, 0.2)):  # bob's first, then his second
            connection.execute(
                review_items.update().where(review_items.c.id == item_id).values(priority=place)
            )
    for item_id in (real, later):
        queue.decide(item_id, "bob", ACCEPT, assign=True)
    for fresh in (False, True):
        if fresh:  # the fresh items gone (closed elsewhere): the claim said "nothing left"
            with queue.write() as connection:
                connection.execute(
                    review_items.update()
                    .where(review_items.c.taken == 0, review_items.c.kind == "sample")
                    .values(status="final", final_verdict="accept")
                )
        with store.engine.connect() as connection:
            assert connection.execute(STARTED, {"annotator": "ann"}).scalar() == later  # walk
            ahead = connection.execute(
                select(func.count()).where(review_items.c.holder == "ann")
            ).scalar()
        assert ahead >= AHEAD
        task = queue.next_item("ann")
        assert task is not None and task.item_id == later, fresh
        assert queue.release_stale(-1.0) == 1  # given back untouched, for the next round


def test_an_item_closed_while_one_person_holds_it_is_sought_by_no_claim(store: Store) -> None:
    """A decision racing a release on PostgreSQL can close an item one person holds (the
    decision read its assignment before the release took it back). Closed, it has no holder,
    so the claim of an annotator far ahead never meets it."""
    fill(store, review=80, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    queue.enqueue_batch("b1")
    _decide_alone(queue, "ann", 2 * AHEAD)
    held = _fresh(store)
    queue.decide(held, "bob", ACCEPT, assign=True)  # bob alone on it
    with queue.write() as connection:  # as the raced decision closes it
        SET_STATUS.run(connection, {"item": held, "status": "final", "verdict": "accept"})
    kept, counted = kept_and_counted(store)  # no holder on the closed item
    assert kept == counted
    task = queue.next_item("ann")
    assert task is not None and task.item_id != held


def _decide_alone(queue: ReviewQueue, who: str, times: int) -> None:
    """`who` takes and decides `times` tasks in a row, nobody else working."""
    for _ in range(times):
        task = queue.next_item(who)
        assert task is not None
        queue.decide(task.item_id, who, ACCEPT)


def _fresh(store: Store) -> int:
    with store.engine.connect() as connection:
        return int(
            connection.execute(
                select(func.min(review_items.c.id)).where(
                    review_items.c.kind == "sample", review_items.c.taken == 0
                )
            ).scalar()
        )


def claim_statements(
    store: Store,
    queue: ReviewQueue,
    monkeypatch: pytest.MonkeyPatch,
    turns: tuple[str, ...] = ("ann", "bob", "ann", "cy"),
) -> list[tuple[str, Any]]:
    """The SELECTs over review_items that `next_item` ran (with their parameters), as the
    driver was given them (the queue's statements run through Prepared)."""
    seen: list[tuple[str, Any]] = []
    run = Prepared.run

    def capture(self: Prepared[Any], connection: Any, values: Any = None) -> Any:
        statement, params = self.driver_call(connection.dialect, values)
        if statement.lstrip().upper().startswith("SELECT") and "review_items" in statement:
            seen.append((statement, params))
        return run(self, connection, values)

    with monkeypatch.context() as patched:
        patched.setattr(Prepared, "run", capture)
        for who in turns:
            task = queue.next_item(who)
            assert task is not None
            queue.decide(task.item_id, who, ACCEPT)
    return [(s, p) for s, p in seen if "ORDER BY" in s]  # the claim probes


def test_a_claim_reads_an_index_range_and_never_sorts_the_queue(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(store, review=300, audit=0, accepted=60)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.5, seed=0)
    queue.enqueue_batch("b1")
    statements = claim_statements(store, queue, monkeypatch)
    assert statements
    with store.engine.connect() as connection:
        if _plans_as_for_a_large_queue(connection):
            # nor sorting the few rows a test queue has: a Sort is then left only where no index
            # holds the rows in the claim order
            connection.execute(text("SET enable_sort = off"))
        for statement, params in statements:
            plan = _plan(connection, statement, params)
            plan = _without_seeks(plan)  # checked on its own
            assert "ix_review_items_claim" in plan or "ix_review_items_gold_order" in plan, plan
            assert "SCAN review_items" not in plan and "Seq Scan on review_items" not in plan
            # the annotator's bench (review reopen --annotator) a seek per row, as MINE's
            assert not re.search(r"SCAN \w*benched|Seq Scan on review_taken_back", plan), plan
            # every probe walks its index in the claim order: no sort of the items it matches
            # (the started ones sorted once, however many there were)
            assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
            # the annotator's open task and count read once, however often the claim uses them
            open_reads = plan.count("decided_at IS NULL))") + plan.count("decided_at=?)")
            assert open_reads <= 1, plan
            # every "not the annotator's" an anti-join: left as a filter after a LEFT JOIN,
            # PostgreSQL expects it to drop nearly every row, and on a large queue read every
            # gold item and the whole items table (a hash), then sorted them
            assert not re.search(r"Filter: \(\w+\.\w+ IS NULL\)", plan), plan


def test_the_claim_of_an_annotator_far_ahead_seeks_each_holders_first_item(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(store, review=300, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    queue.enqueue_batch("b1")
    _decide_alone(queue, "ann", 3 * AHEAD)
    statements = claim_statements(store, queue, monkeypatch, turns=("ann",))
    seeks = [(s, p) for s, p in statements if "review_annotators" in s]
    assert seeks
    with store.engine.connect() as connection:
        _plans_as_for_a_large_queue(connection)
        for statement, params in seeks:
            plan = _plan(connection, statement, params)
            # one seek of the holder index per annotator: the sort is of their first items
            assert "ix_review_items_holder" in plan, plan
            assert "SCAN review_items" not in plan and "Seq Scan on review_items" not in plan


def test_the_work_of_a_claim_does_not_grow_with_the_annotators_lead(tmp_path: Path) -> None:
    """Counted in SQLite's virtual machine instructions (its progress handler), not in time:
    the leader's next + decide at a lead of 12 x AHEAD items takes the work it takes at 2 x
    AHEAD; the walk past their own items took work in proportion to the lead."""
    store = Store(f"sqlite:///{tmp_path / 'queue.db'}")
    fill(store, review=400, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    queue.enqueue_batch("b1")
    steps = [0]

    def counting(dbapi_connection: Any, record: Any) -> None:
        def step() -> int:
            steps[0] += 1
            return 0

        dbapi_connection.set_progress_handler(step, 10)

    event.listen(store.engine, "connect", counting)
    store.engine.dispose()  # the pool's connections are opened again, counted
    work_at = {}
    done = 0
    for lead in (2 * AHEAD, 12 * AHEAD):
        _decide_alone(queue, "ann", lead - done)  # alone: each task a fresh item they hold
        with store.engine.connect() as connection:
            held = connection.execute(
                select(func.count()).where(review_items.c.holder == "ann")
            ).scalar()
        assert held == lead
        steps[0] = 0
        _decide_alone(queue, "ann", 1)
        work_at[lead] = steps[0]
        done = lead + 1
    assert work_at[12 * AHEAD] <= 1.1 * work_at[2 * AHEAD], work_at
    store.close()


def _without_seeks(plan: str) -> str:
    """A PostgreSQL claim's plan without its seeks for an annotator far ahead (their branch of
    the claim's Append, held_by_another), which is checked here: a seek of the holder index per
    annotator, a sort of their first items (not of the queue), the item found read by its key
    (and it alone locked)."""
    lines = plan.splitlines()
    starts = [i for i, line in enumerate(lines) if "Subquery Scan on held_by_another" in line]
    if not starts:
        return plan
    start = starts[0]
    depth = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    while end < len(lines) and len(lines[end]) - len(lines[end].lstrip()) > depth:
        end += 1
    seeks = "\n".join(lines[start:end])
    assert "ix_review_items_holder" in seeks and "Seq Scan on review_items" not in seeks, seeks
    assert "Sort Key: holders_items.priority, holders_items.id" in seeks, seeks
    assert "review_items_pkey" in seeks, seeks  # then the one item found, read by its key
    return "\n".join(lines[:start] + lines[end:])


def _plans_as_for_a_large_queue(connection: Any) -> bool:
    """PostgreSQL (True): the tables' statistics, and no reading of a tiny table whole, so that
    EXPLAIN shows the plan it takes for a queue too large to scan. SQLite (False): nothing."""
    if connection.dialect.name != "postgresql":
        return False
    connection.execute(text("ANALYZE review_items"))
    connection.execute(text("ANALYZE review_assignments"))
    connection.execute(text("SET enable_seqscan = off"))
    return True


def _plan(connection: Any, statement: str, params: Any) -> str:
    """The plan the database takes for a statement, as text."""
    prefix = "QUERY PLAN " if connection.dialect.name == "sqlite" else ""
    rows = connection.exec_driver_sql(f"EXPLAIN {prefix}{statement}", params)
    return "\n".join(str(row[-1]) for row in rows)


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_a_task_and_its_decision_take_few_round_trips_on_postgresql(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a team's throughput on PostgreSQL depends on: every statement is a round trip to the
    server. The annotator's open task and the claim's probes go in one statement there (with a
    planner setting before and after it, sent with it in pipeline mode: Prepared.run_between),
    a claim's assignment and its task's row in another,
    and so do a decision, its assignment's
    close and the item's verdicts, and a result's sample and item (SQLite, in process, runs
    them one by one). Counted at the driver, where Prepared runs them."""
    import psycopg

    fill(store, review=8, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    queue.enqueue_batch("b1")
    counted: list[str] = []
    execute = psycopg.Cursor.execute

    def counting(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        counted.append(" ".join(str(query).split())[:60])
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counting)
    rounds, samples = [], set()
    for who in ("ann", "bob") * 4:  # each item: a first decision, then the one that ends it
        counted.clear()
        task = queue.next_item(who)
        assert task is not None
        claimed = len(counted)
        assert counted[0] == "SET LOCAL plan_cache_mode = force_generic_plan", counted
        assert counted[2] == "SET LOCAL plan_cache_mode TO DEFAULT", counted
        counted.clear()
        queue.decide(task.item_id, who, ACCEPT)
        rounds.append((claimed, len(counted)))
        samples.add(task.sample.id)
    # next: the open task with the claim probes (on its generic plan, set and reset around it:
    # review/claims.py GENERIC_PLAN), the assignment with the task's row, the labels a fix may
    # use (in the same transaction: read on a connection of their own, they cost a third of
    # PostgreSQL's decisions/s)
    assert [claimed for claimed, _ in rounds] == [5] * 8, rounds
    # decide: the item, the decision with the verdicts, the result (the second decision)
    assert [decided for _, decided in rounds] == [2, 3] * 4, rounds
    assert len(samples) == 4 and all(store.get_sample(s).status == "accepted" for s in samples)


def test_a_large_enqueue_refreshes_postgresqls_statistics(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Right after a batch of 100k items was enqueued, PostgreSQL planned claims on statistics
    of an empty table (autovacuum had not come by): it took `status = 'open'` for a few rows
    and read every open item's entry for each claim, `next` 1 ms -> 5 ms. An enqueue that adds
    ANALYZE_AFTER items or more analyses the table at once (reltuples: -1, never analysed)."""
    from synthgate.review import enqueue

    monkeypatch.setattr(enqueue, "ANALYZE_AFTER", 6, raising=False)
    if store.engine.dialect.name == "sqlite":  # its planner is left as it was: no statistics
        fill(store, review=10, audit=0, accepted=0)
        ReviewQueue(store, annotators_per_item=2, gold_rate=0.0).enqueue_batch("b1")
        with store.engine.connect() as connection:
            tables = text("SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'")
            assert connection.execute(tables).first() is None
        return
    counted = text("SELECT reltuples FROM pg_class WHERE relname = 'review_items'")
    fill(store, review=4, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    queue.enqueue_batch("b1")  # 4 items: left to autovacuum
    with store.engine.connect() as connection:
        assert connection.execute(counted).scalar() == -1
    fill(store, review=10, audit=0, accepted=0)
    queue.enqueue_batch("b1")  # 6 more
    with store.engine.connect() as connection:
        assert connection.execute(counted).scalar() == 10
