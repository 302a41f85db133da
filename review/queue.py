"""The review queue on the database: items, blind assignments, decisions, gold tasks.

`ReviewQueue(store)` takes the samples a batch routed to review (and the audit sample of accepted
ones) as items; `next_item(annotator)` hands each item to `annotators_per_item` distinct people,
never twice to one person, and mixes in gold tasks (known answers, honeypots made by injecting a
defect into an accepted sample) at `gold_rate`, unannounced; `decide()` records a decision and,
once an item has all its decisions, makes the result final on the sample (agreement or majority)
or sends it to an adjudicator. Assignment happens in one short write transaction (BEGIN
IMMEDIATE on SQLite, a row lock with SKIP LOCKED on PostgreSQL), so concurrent annotators never
share a slot. A claim costs O(log n) in the open items: every item keeps its count of
assignments (`taken`) and its place in the claim order (`priority`, review/priority.py), and the
claim walks an index over (kind, status, taken descending, priority, id) to the first row it
may take. That walk passes the started items the annotator holds: an annotator far ahead of the
team, holding AHEAD items or more that nobody else has taken yet, seeks instead the first item
each other person holds alone (every item keeps its one `holder`), one index seek per annotator.
With k > 2, items two people hold are still walked (two annotators far ahead of a third pass
theirs).
On PostgreSQL, where every statement is a round trip to the server, a task takes two statements
(the open task with the claim; the assignment with the task's row) and a decision two or three.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Select, bindparam, case, func, literal, null, select, true, union_all
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import BindParameter

from synthgate.errors import InputError
from synthgate.review import enqueue, gold, priority
from synthgate.review.decision import (
    Decision,
    ReviewTask,
    Verdict,
    check_annotator,
    check_decision,
    criteria_of,
    decision_row,
)
from synthgate.review.items import (
    ANNOTATOR_VERDICTS,
    SHOWING,
    SHOWN,
    check_item_id,
    finalise,
    item_row,
    maybe_finalise,
    no_item,
    parse_shown,
    shown_problems,
    shown_row,
    shown_sample,
)
from synthgate.review.stats import queue_stats
from synthgate.samples import CRITERIA, Sample
from synthgate.storage.prepared import Prepared
from synthgate.storage.store import Store
from synthgate.storage.tables import (
    WriteTransaction,
    annotator_counts,
    assignments,
    decisions,
    dialect_insert,
    gold_answers,
    review_batches,
    review_items,
)
from synthgate.validators.rubric import Rubric

# The statements of the claim and the decision, built once with bound parameters and run on the
# driver's cursor (storage/prepared.py): SQLAlchemy's per-execution work costs more than running
# them on an index.
ANNOTATOR: BindParameter[str] = bindparam("annotator")
ITEM: BindParameter[int] = bindparam("item")
# Started items an annotator may hold alone before their claim stops walking past them (STARTED)
# and seeks the first item each other holder holds alone instead (CLAIM_AHEAD).
AHEAD = 16
# The annotator's open task (their undecided assignment, if any: their rows with decided_at
# NULL, one seek of ix_review_assignments_annotator_open), how many tasks they were given
# (the position that seeds their gold draw, kept in review_annotators) and how many items they
# hold alone, counted to AHEAD (ix_review_items_holder); none reads the rest of their history.
# An aggregate, so that PostgreSQL reads it once where OPEN_OR_CLAIM uses it.
HELD_ALONE = (
    select(literal(1).label("one"))
    .where(review_items.c.holder == ANNOTATOR)
    .limit(AHEAD)
    .subquery("held_alone")
)
OPEN_TASK_QUERY = select(
    func.min(assignments.c.item_id).label("task"),
    func.coalesce(
        select(annotator_counts.c.given)
        .where(annotator_counts.c.annotator == ANNOTATOR)
        .scalar_subquery(),
        0,
    ).label("given"),
    select(func.count()).select_from(HELD_ALONE).scalar_subquery().label("ahead"),
).where(assignments.c.annotator == ANNOTATOR, assignments.c.decided_at.is_(None))
OPEN_TASK = Prepared(OPEN_TASK_QUERY)
# the annotator's assignments, for an anti-join: a claim skips the items they hold (one probe of
# uq_assignment per candidate row, no subquery per row)
MINE = select(assignments.c.item_id).where(assignments.c.annotator == ANNOTATOR).alias("mine")
NOT_MINE = review_items.outerjoin(MINE, MINE.c.item_id == review_items.c.id)
OPEN_SAMPLE = (review_items.c.kind == "sample", review_items.c.status == "open")


# Items others have started first (their decisions complete sooner), the most taken first,
# then fresh ones; each in priority order, each a range of ix_review_items_claim walked in its
# own order (`taken` descending), so the first started item the annotator may take is found
# without sorting the started ones. The walk passes the started items the annotator holds
# themselves, one index probe each: many only for someone far ahead of the rest of the team.
def started(held_by_more_than: int) -> Select[Any]:
    """The first item held by more than so many people (and fewer than k) that the annotator
    does not hold, walked as above."""
    return (
        select(review_items.c.id)
        .select_from(NOT_MINE)
        .where(
            *OPEN_SAMPLE,
            review_items.c.taken > held_by_more_than,
            review_items.c.taken < review_items.c.k,
            MINE.c.item_id.is_(None),
        )
        .order_by(review_items.c.taken.desc(), review_items.c.priority, review_items.c.id)
        .limit(1)
    )


STARTED = started(0)
# An annotator holding AHEAD items alone (far ahead of the rest of the team: nobody has taken
# the items they started yet) claims from a walk of the items two or more people hold (only
# with k > 2), then the first of the items each other person holds alone: one seek of
# ix_review_items_holder per annotator, the seeks' firsts in claim order. The same item as
# STARTED finds (among items taken once, the order is priority, id), without passing theirs.
# The seek names the holder alone (an item has one only while it is an open sample item of
# k > 1 taken once: kept_and_counted in the tests holds it so), and so does the join: a
# condition on the items' own columns let SQLite walk every started item and seek for each.
SHARED = started(1)  # the range of the index starts past the items taken once
HOLDERS_ITEMS = review_items.alias("holders_items")
FIRST_HELD = (
    select(HOLDERS_ITEMS.c.id)
    .where(HOLDERS_ITEMS.c.holder == annotator_counts.c.annotator, HOLDERS_ITEMS.c.status == "open")
    .order_by(HOLDERS_ITEMS.c.priority, HOLDERS_ITEMS.c.id)
    .limit(1)
    .correlate(annotator_counts)
    .scalar_subquery()
)
HELD_BY_ANOTHER = (
    select(review_items.c.id)
    .select_from(annotator_counts.join(review_items, review_items.c.id == FIRST_HELD))
    .where(annotator_counts.c.annotator != ANNOTATOR)
    .order_by(review_items.c.priority, review_items.c.id)
    .limit(1)
)


# PostgreSQL: the same seeks as LATERAL subqueries, and only the item they find locked (the
# claim's FOR UPDATE ... SKIP LOCKED on the outer select). It would not take a scalar subquery
# in a join's condition as the key of an index lookup (it joined every item to the annotators'
# firsts); here the first is a value, read once, and the item is read by its key.
FIRSTS_HELD = (
    select(HOLDERS_ITEMS.c.id, HOLDERS_ITEMS.c.priority)
    .where(HOLDERS_ITEMS.c.holder == annotator_counts.c.annotator, HOLDERS_ITEMS.c.status == "open")
    .order_by(HOLDERS_ITEMS.c.priority, HOLDERS_ITEMS.c.id)
    .limit(1)
    .lateral("firsts_held")
)
HELD_BY_ANOTHER_PG = select(review_items.c.id).where(
    review_items.c.id
    == select(FIRSTS_HELD.c.id)
    .select_from(annotator_counts.join(FIRSTS_HELD, true()))
    .where(annotator_counts.c.annotator != ANNOTATOR)
    .order_by(FIRSTS_HELD.c.priority, FIRSTS_HELD.c.id)
    .limit(1)
    .scalar_subquery(),
    *OPEN_SAMPLE,
    review_items.c.taken == 1,
)


# Nobody holds a fresh item, so it cannot be the annotator's. Written as a range of `taken` in
# the claim index's own order (taken < 1 is taken = 0: counts are never negative), so that only
# ix_review_items_claim serves it without a sort: with `taken = 0` and (priority, id), PostgreSQL
# also weighed ix_review_items_gold_order, filtering out the started items, the first ones in
# priority order (it cannot know); past a few thousand started items it took that walk.
FRESH = (
    select(review_items.c.id)
    .where(*OPEN_SAMPLE, review_items.c.taken < 1)
    .order_by(review_items.c.taken.desc(), review_items.c.priority, review_items.c.id)
    .limit(1)
)
UNSEEN_GOLD = (
    select(review_items.c.id)
    .select_from(NOT_MINE)
    .where(review_items.c.kind == "gold", review_items.c.status == "open", MINE.c.item_id.is_(None))
)
GOLD_AFTER = (
    UNSEEN_GOLD.where(review_items.c.priority >= bindparam("start"))
    .order_by(review_items.c.priority, review_items.c.id)
    .limit(1)
)
GOLD_BEFORE = (
    UNSEEN_GOLD.where(review_items.c.priority < bindparam("start"))
    .order_by(review_items.c.priority, review_items.c.id)
    .limit(1)
)


@dataclass(frozen=True)
class Probe:
    """A claim's query, as SQLite runs it and as PostgreSQL does: locking the row it finds and
    skipping rows other claims hold."""

    plain: Prepared
    locked: Prepared

    @classmethod
    def of(cls, query: Select[Any]) -> Probe:
        return cls(
            Prepared(query), Prepared(query.with_for_update(skip_locked=True, of=review_items))
        )


CLAIM_REAL = [Probe.of(STARTED), Probe.of(FRESH)]
CLAIM_AHEAD = {
    "sqlite": [Probe.of(SHARED), Probe.of(HELD_BY_ANOTHER), Probe.of(FRESH)],
    "postgresql": [Probe.of(SHARED), Probe.of(HELD_BY_ANOTHER_PG), Probe.of(FRESH)],
}
CLAIM_GOLD = [Probe.of(GOLD_AFTER), Probe.of(GOLD_BEFORE)]
# PostgreSQL: OPEN_TASK and the claim's locked probes in one round trip. The probes run only
# when the annotator holds no open task (a one-time filter), each as a sub-select of its own
# (FOR UPDATE is not allowed on a UNION's members): CLAIM_REAL's, or CLAIM_AHEAD's for an
# annotator holding AHEAD items alone, FRESH only when those found nothing (the outer LIMIT
# stops the Append); each reads its index as it does alone.
OPENED = OPEN_TASK_QUERY.subquery("opened")
CLAIMS = [  # each locked as its probe is
    ("started", CLAIM_REAL[0], OPENED.c.ahead < AHEAD),
    ("shared", CLAIM_AHEAD["postgresql"][0], OPENED.c.ahead >= AHEAD),
    ("held_by_another", CLAIM_AHEAD["postgresql"][1], OPENED.c.ahead >= AHEAD),
    ("fresh", CLAIM_REAL[1], true()),
]
CLAIMABLE = [
    probe.locked.statement.where(OPENED.c.task.is_(None), when).correlate(OPENED).subquery(name)
    for name, probe, when in CLAIMS
]
CANDIDATES = union_all(*(select(c.c.id).correlate(OPENED) for c in CLAIMABLE)).subquery()
CLAIMED = select(CANDIDATES.c.id).limit(1).correlate(OPENED).lateral("claimed")
OPEN_OR_CLAIM = Prepared(
    select(OPENED.c.task, OPENED.c.given, OPENED.c.ahead, CLAIMED.c.id).select_from(
        OPENED.outerjoin(CLAIMED, true())
    )
)
ASSIGN = Prepared(
    assignments.insert().values(
        item_id=ITEM, annotator=ANNOTATOR, assigned_at=bindparam("assigned_at")
    )
)
# Kept counts: one more person on the item (its holder the annotator if they are its first of
# k > 1), and people taken off it (the one left, if one is, its holder).
HELD_ONCE = (
    (review_items.c.kind == "sample") & (review_items.c.status == "open") & (review_items.c.k > 1)
)
COUNT_IN = Prepared(
    review_items.update()
    .where(review_items.c.id == ITEM)
    .values(
        taken=review_items.c.taken + 1,
        holder=case((HELD_ONCE & (review_items.c.taken == 0), ANNOTATOR), else_=null()),
    )
)
COUNT_OUT = Prepared(
    review_items.update()
    .where(review_items.c.id == ITEM)
    .values(
        taken=review_items.c.taken - bindparam("released"),
        holder=case(
            (
                HELD_ONCE & (review_items.c.taken - bindparam("released") == 1),
                select(assignments.c.annotator)
                .where(assignments.c.item_id == review_items.c.id)
                .scalar_subquery(),
            ),
            else_=null(),
        ),
    )
)
# the item, the sample it shows and the annotator's assignment of it, read under the item's
# lock to decide
DECIDING_QUERY = (
    select(
        *SHOWN.statement.selected_columns,
        assignments.c.id.label("assignment_id"),
        assignments.c.decided_at.label("decided_at"),
    )
    .select_from(
        SHOWING.outerjoin(
            assignments,
            (assignments.c.item_id == review_items.c.id) & (assignments.c.annotator == ANNOTATOR),
        )
    )
    .where(review_items.c.id == ITEM)
)
DECIDING = Prepared(DECIDING_QUERY)
DECIDING_LOCKED = Prepared(DECIDING_QUERY.with_for_update(of=review_items))
RECORD_STATEMENT = decisions.insert().values(  # the columns of decision_row
    {column.key: bindparam(column.key) for column in decisions.c if column.key != "id"}
)
RECORD = Prepared(RECORD_STATEMENT)
DECIDED_STATEMENT = (
    assignments.update()
    .where(assignments.c.id == bindparam("assignment"))
    .values(decided_at=bindparam("now"))
)
DECIDED = Prepared(DECIDED_STATEMENT)


@functools.cache
def count_given(dialect: str) -> Prepared[Any]:
    """The annotator's kept count of tasks given, moved by `change` (as COUNT_IN moves an
    item's; an upsert: their first task makes their row). Built on first use, for the database
    in use: an upsert is written in the database's own dialect, and a SQLite run must not load
    PostgreSQL's (storage/tables.py dialect_insert)."""
    change: BindParameter[int] = bindparam("change")
    insert = dialect_insert(dialect, annotator_counts).values(annotator=ANNOTATOR, given=change)
    return Prepared(
        insert.on_conflict_do_update(
            index_elements=[annotator_counts.c.annotator],
            set_={"given": annotator_counts.c.given + change},
        )
    )


# On PostgreSQL the writes of a claim and of a decision ride, as data-modifying WITH clauses,
# on the statement that reads next: one round trip where SQLite (no writes in WITH) takes two or
# three. The reading part sees the rows as they were before the statement (PostgreSQL runs the
# clauses on one snapshot): the task's row its `taken` before this claim, the verdicts all but
# the one being recorded.
@functools.cache
def assign_and_show() -> Prepared[Any]:
    """PostgreSQL: the assignment, the item's count, the annotator's count and the task's row
    (built on first use, as `count_given`)."""
    return Prepared(
        SHOWN.statement.add_cte(ASSIGN.statement.cte("assigned"))
        .add_cte(COUNT_IN.statement.cte("counted"))
        .add_cte(count_given("postgresql").statement.cte("given"))
    )


RECORD_AND_VERDICTS = Prepared(
    ANNOTATOR_VERDICTS.statement.add_cte(RECORD_STATEMENT.cte("recorded")).add_cte(
        DECIDED_STATEMENT.cte("decided")
    )
)


class ReviewQueue:
    """The review queue of one database (the store's), shared by the CLI, the API and workers."""

    def __init__(
        self,
        store: Store,
        *,
        annotators_per_item: int = 2,
        gold_rate: float = 0.1,
        seed: int = 0,
    ) -> None:
        if annotators_per_item < 1:
            raise InputError(
                f"annotators_per_item must be >= 1 (got {annotators_per_item}); 2 is the usual choice"
            )
        if not 0.0 <= gold_rate < 1.0:
            raise InputError(f"gold_rate must be in [0, 1) (got {gold_rate}); try 0.1")
        self.store = store
        self.k = annotators_per_item
        self.gold_rate = gold_rate
        self.seed = seed
        self.dialect = store.engine.dialect.name

    # ---- filling the queue -------------------------------------------------------------------

    def enqueue_batch(
        self,
        batch_id: str,
        *,
        image_root: str | Path | None = None,
        order: str = "uncertainty",
        rubric: Rubric | None = None,
        progress: enqueue.Progress | None = None,
        gold_progress: enqueue.Progress | None = None,
    ) -> int:
        """Add a batch's review and audit samples as items, plus honeypots; returns new items.

        Idempotent: an item is keyed by its sample, so a second call adds only what is new, and
        re-ranks the batch's open items nobody has started. `order`: uncertainty (the items
        people learn most from first, measured against `rubric`, by default the batch's),
        random or fifo (review/priority.py). `image_root` is the folder or blob URL the samples'
        uris are relative to (default: the folder of a SQLite database, i.e. the run folder).
        `progress(samples read, in the batch)` and `gold_progress(honeypots made, wanted)`
        report the two long steps of a large batch.
        """
        return enqueue.enqueue_batch(
            self,
            batch_id,
            image_root=image_root,
            order=order,
            rubric=rubric,
            progress=progress,
            gold_progress=gold_progress,
        )

    def add_gold(
        self,
        sample: Sample,
        *,
        expected: list[Verdict],
        criterion: str | None = None,
        answer: Sample | None = None,
    ) -> int:
        """Put a gold task (a sample with a known verdict) into the gold set; returns its item."""
        if not expected:
            raise InputError("add_gold: expected must name at least one verdict")
        if criterion is not None and criterion not in CRITERIA:
            raise InputError(
                field="criterion",
                value=criterion,
                problem=f"not a rubric criterion; use one of {', '.join(CRITERIA)}",
            )
        task = enqueue.Gold(f"gold:{sample.id}", sample, expected, criterion, None, answer)
        return enqueue.put_golds(self, [task])[0]

    # ---- working the queue -------------------------------------------------------------------

    def next_item(self, annotator: str) -> ReviewTask | None:
        """The annotator's next task (their open one first), or None when nothing is left."""
        annotator = check_annotator(annotator)
        with self.store.engine.connect() as connection:
            for attempt in range(200):
                if attempt:
                    time.sleep(min(0.002 * attempt, 0.05))  # other claims hold the slots
                # One short write transaction: the open task, else a claim and its assignment,
                # and the task's row; the sample is parsed after the commit.
                with self.write(connection) as writing:
                    values = {"annotator": annotator}
                    if self.dialect == "postgresql":
                        open_task, position, ahead, found = OPEN_OR_CLAIM.run(writing, values).one()
                    else:
                        open_task, position, ahead = OPEN_TASK.run(writing, values).one()
                        found = None
                    item_id = open_task
                    if item_id is None:
                        real = self._real(writing, values, ahead, found)
                        item_id = self._claim(writing, annotator, position, real)
                        if item_id is None:
                            return None
                        if item_id < 0:  # every open slot is held by another claim: try again
                            continue
                        if self.dialect == "postgresql":
                            values = self._assignment(item_id, annotator)
                            row = assign_and_show().run(writing, values).one()
                        else:
                            self._add_assignment(writing, item_id, annotator)
                            row = SHOWN.run(writing, {"item": item_id}).one()
                    else:
                        row = SHOWN.run(writing, {"item": item_id}).one()
                return self._task_of(row)
        raise RuntimeError("next_item: could not claim an item after 200 attempts")

    def decide(
        self, item_id: int, annotator: str, decision: Decision, *, assign: bool = False
    ) -> None:
        """Record the annotator's decision; with all k in, finalise or send to adjudication.

        `assign=True` is for decisions made outside the queue (a Label Studio import): the item
        is given to the annotator first, under next_item's rules (open, fewer than k people).
        """
        annotator = check_annotator(annotator)
        with self.write() as connection:
            deciding = DECIDING_LOCKED if self.dialect == "postgresql" else DECIDING
            values = {"item": check_item_id(item_id), "annotator": annotator}
            item = deciding.run(connection, values).first()
            if item is None:
                raise no_item(item_id)
            shown = parse_shown(item)
            check_decision(item_id, shown, decision)
            assignment_id = item.assignment_id
            if assignment_id is None and assign:
                self._assign(connection, item, annotator)
                assignment_id = connection.execute(
                    select(assignments.c.id).where(
                        assignments.c.item_id == item_id, assignments.c.annotator == annotator
                    )
                ).scalar()
            elif item.decided_at is not None:
                raise InputError(f"{annotator!r} already decided item {item_id}")
            if assignment_id is None:
                raise InputError(
                    f"item {item_id} is not assigned to {annotator!r}; ask for the next item first"
                )
            now = time.time()
            row = decision_row(item_id, annotator, decision, shown, "annotator", now)
            verdicts = None  # read by maybe_finalise
            if self.dialect == "postgresql":
                values = {**row, "assignment": assignment_id, "now": now, "item": item_id}
                verdicts = [*RECORD_AND_VERDICTS.run(connection, values).scalars(), row["verdict"]]
            else:
                RECORD.run(connection, row)
                DECIDED.run(connection, {"assignment": assignment_id, "now": now})
            if item.kind == "sample":
                maybe_finalise(connection, item, shown, verdicts)

    def adjudicate(self, item_id: int, adjudicator: str, decision: Decision) -> None:
        """An adjudicator's decision on an item its annotators disagreed on: it is final."""
        adjudicator = check_annotator(adjudicator)
        with self.write() as connection:
            item = self._lock_item(connection, item_id)
            if item.status != "adjudication":
                raise InputError(f"item {item_id} is {item.status}, not waiting for adjudication")
            deciders = connection.execute(
                select(decisions.c.annotator).where(decisions.c.item_id == item_id)
            ).scalars()
            if adjudicator in set(deciders):
                raise InputError(
                    f"{adjudicator!r} already decided item {item_id}; another person adjudicates"
                )
            shown = shown_sample(connection, item)
            check_decision(item_id, shown, decision)
            row = decision_row(item_id, adjudicator, decision, shown, "adjudicator", time.time())
            connection.execute(decisions.insert().values(**row))
            finalise(connection, item, decision.verdict, [row])

    def release_stale(self, older_than_s: float) -> int:
        """Take back assignments left undecided for longer than `older_than_s` seconds (an
        annotator who walked away), so the items go to someone else; returns how many."""
        cutoff = time.time() - older_than_s
        with self.write() as connection:
            released = connection.execute(
                assignments.delete()
                .where(assignments.c.decided_at.is_(None), assignments.c.assigned_at < cutoff)
                .returning(assignments.c.item_id, assignments.c.annotator)
            ).all()
            for item_id, count in Counter(item_id for item_id, _ in released).items():
                COUNT_OUT.run(connection, {"item": item_id, "released": count})
            for annotator, count in Counter(who for _, who in released).items():
                count_given(self.dialect).run(
                    connection, {"annotator": annotator, "change": -count}
                )
            return len(released)

    def awaiting_adjudication(self) -> list[int]:
        with self.store.engine.connect() as connection:
            return list(
                connection.execute(
                    select(review_items.c.id)
                    .where(review_items.c.status == "adjudication")
                    .order_by(review_items.c.id)
                ).scalars()
            )

    def task(self, item_id: int) -> ReviewTask:
        """The task of an item as an annotator sees it (for an adjudicator or an export)."""
        with self.store.engine.connect() as connection:
            return self._task(connection, item_id)

    def refused(self, item_ids: Iterable[int]) -> dict[int, str]:
        """Why `task` would refuse each of these items that it would refuse (no such item, its
        sample gone), read a few hundred to a query without reading a sample."""
        with self.store.engine.connect() as connection:
            return shown_problems(connection, item_ids)

    def tasks(self, item_ids: Iterable[int]) -> Generator[ReviewTask, None, None]:
        """`task` of each item, in order, read on one connection (an export of 100k items)."""
        with self.store.engine.connect() as connection:
            for item_id in item_ids:
                yield self._task(connection, item_id)

    def item_image_path(self, item_id: int) -> Path | str | None:
        """Where the item's pixels are: a local Path, an fsspec URL, or None for text."""
        with self.store.engine.connect() as connection:
            item = item_row(connection, item_id)
            shown = shown_sample(connection, item)
            root = connection.execute(
                select(review_batches.c.image_root).where(
                    review_batches.c.batch_id == item.batch_id
                )
            ).scalar()
        if shown.spec.modality != "image" or not shown.uri or root is None:
            return None
        if "://" in root:
            return f"{root.rstrip('/')}/{shown.uri.lstrip('/')}"
        base = Path(root).resolve()
        path = (base / shown.uri).resolve()
        if not path.is_relative_to(base):  # a uri must never reach outside its run folder
            raise InputError(f"item {item_id}: image uri {shown.uri!r} leaves the run folder")
        return path

    def item_image_bytes(self, item_id: int) -> bytes | None:
        where = self.item_image_path(item_id)
        if where is None:
            return None
        if isinstance(where, Path):
            return where.read_bytes()
        import fsspec  # only for remote blob stores

        with fsspec.open(where, "rb") as handle:
            return handle.read()

    def stats(self) -> dict[str, Any]:
        """Queue depth, decisions, per-annotator throughput and gold accuracy."""
        with self.store.engine.connect() as connection:
            return queue_stats(connection, self.k)

    # ---- internals ---------------------------------------------------------------------------

    def write(self, connection: Connection | None = None) -> WriteTransaction:
        """A write transaction, on `connection` when given (it stays open afterwards)."""
        return WriteTransaction(self.store.engine, connection)

    def _assign(self, connection: Connection, item: Any, annotator: str) -> None:
        if item.status != "open":
            raise InputError(f"item {item.id} is {item.status}: it takes no more decisions")
        if item.kind == "sample" and item.taken >= item.k:
            raise InputError(f"item {item.id} already has its {item.k} annotators")
        self._add_assignment(connection, item.id, annotator)

    def _add_assignment(self, connection: Connection, item_id: int, annotator: str) -> None:
        """Give the item to the annotator and count it on the item and for the annotator, in the
        same transaction."""
        values = self._assignment(item_id, annotator)
        ASSIGN.run(connection, values)
        COUNT_IN.run(connection, values)
        count_given(self.dialect).run(connection, values)

    @staticmethod
    def _assignment(item_id: int, annotator: str) -> dict[str, Any]:
        """The values of ASSIGN and COUNT_IN (one more person on the item)."""
        return {"item": item_id, "annotator": annotator, "assigned_at": time.time(), "change": 1}

    def _real(
        self, connection: Connection, values: dict[str, Any], ahead: int, found: int | None
    ) -> int | None:
        """The sample item the claim would take (on PostgreSQL locked), -1 if other claims
        hold every one it may take, None if none is left: CLAIM_REAL's walk, or CLAIM_AHEAD's
        seeks for an annotator holding `ahead` >= AHEAD items alone. `found`: on PostgreSQL,
        what OPEN_OR_CLAIM's locked probes found (the same ones)."""
        probes = CLAIM_AHEAD[self.dialect] if ahead >= AHEAD else CLAIM_REAL
        if self.dialect != "postgresql":
            return self._first(connection, probes, values)
        return found if found is not None else self._held(connection, probes, values)

    def _claim(
        self, connection: Connection, annotator: str, position: int, real: int | None
    ) -> int | None:
        """The item to assign next; -1 if other claims hold every open slot (the caller
        retries), None if nothing is left for this annotator. `position`: how many tasks the
        annotator was given before (it seeds their gold draw); `real`: the sample item `_real`
        found."""
        if real is None or real < 0:
            return real  # gold only rides along with real work
        if gold.draw_gold(self.gold_rate, seed=[self.seed, annotator, position]):
            # The first gold item the annotator has not seen, walking the gold order from a
            # point drawn for this claim (and around): a seeded order per annotator, by index.
            start = priority.gold_start(self.seed, annotator, position)
            golden = self._first(connection, CLAIM_GOLD, {"annotator": annotator, "start": start})
            if golden is not None and golden >= 0:
                return golden
        return real

    def _first(
        self, connection: Connection, probes: list[Probe], values: dict[str, Any]
    ) -> int | None:
        """The first row of the first probe that has one: an item id; on PostgreSQL locked
        (SKIP LOCKED), and -1 when rows exist but other claims hold them all."""
        postgresql = self.dialect == "postgresql"
        for probe in probes:
            found = (probe.locked if postgresql else probe.plain).run(connection, values).scalar()
            if found is not None:
                return int(found)
        return self._held(connection, probes, values) if postgresql else None

    def _held(
        self, connection: Connection, probes: list[Probe], values: dict[str, Any]
    ) -> int | None:
        """After the locked probes found nothing (PostgreSQL): -1 when rows exist but other
        claims lock them all right now, which is "try again", not "nothing left" (a claim may
        end without taking its row); else None."""
        if any(p.plain.run(connection, values).first() is not None for p in probes):
            return -1
        return None

    def _lock_item(self, connection: Connection, item_id: int) -> Any:
        query = select(review_items).where(review_items.c.id == check_item_id(item_id))
        if self.dialect == "postgresql":
            query = query.with_for_update()
        item = connection.execute(query).first()
        if item is None:
            raise no_item(item_id)
        return item

    def _task(self, connection: Connection, item_id: int) -> ReviewTask:
        return self._task_of(shown_row(connection, item_id))

    def _task_of(self, row: Any) -> ReviewTask:
        """The task of an item's SHOWN row: the sample, parsed anew, as every task looks."""
        shown = parse_shown(row)
        # every task looks alike: gold tasks must not be told apart by status or audit flag
        shown.status = "review"
        if row.kind == "gold" and shown.report is not None and shown.report.route == "accepted":
            shown.report.audit = True
        criteria = criteria_of(shown)
        return ReviewTask(item_id=row.id, sample=shown, criteria=criteria)


__all__ = [
    "Decision",
    "ReviewQueue",
    "ReviewTask",
    "Verdict",
    "assignments",
    "decisions",
    "gold_answers",
    "review_batches",
    "review_items",
]
