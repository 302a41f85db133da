"""The review queue on the database: items, blind assignments, decisions, gold tasks.

`ReviewQueue(store)` takes the samples a batch routed to review (and the audit sample of accepted
ones) as items; `next_item(annotator)` hands each item to `annotators_per_item` distinct people,
never twice to one person, and mixes in gold tasks (known answers, honeypots made by injecting a
defect into an accepted sample) at `gold_rate`, unannounced; `decide()` records a decision and,
once an item has all its decisions, makes the result final on the sample (agreement or majority)
or sends it to an adjudicator, who may also finish an open item the blind rule keeps from
everyone the queue knows (review/stats.py `blocked_items`). Assignment happens in one short
write transaction (BEGIN IMMEDIATE on SQLite, a row lock with SKIP LOCKED on PostgreSQL), so
concurrent annotators never share a slot. A claim costs O(log n) in the open items: every
item keeps its count of assignments (`taken`) and its place in the claim order (`priority`,
review/priority.py), and the claim walks an index over (kind, status, taken descending,
priority, id) to the first row it may take. That walk passes the started items the annotator
holds: an annotator far ahead of the team, holding AHEAD items or more that nobody else has
taken yet, seeks instead the first item each other person holds alone (every item keeps its
one `holder`) that they may take, one index seek per annotator. With k > 2, items two people hold are still walked (two annotators far ahead of a third pass
theirs).
On PostgreSQL, where every statement is a round trip to the server, a task takes two statements
(the open task with the claim; the assignment with the task's row) and a decision two or three.
The claim's statements are in review/claims.py.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Generator, Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import ARRAY, Integer, any_, bindparam, func, literal, select, true
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from synthgate.arguments import number_typed
from synthgate.errors import InputError, counted
from synthgate.review import enqueue, gold, priority, reopen, set_k
from synthgate.review.adjudication import Awaiting
from synthgate.review.claims import (
    AHEAD,
    ANNOTATOR,
    ASSIGN,
    CLAIM_AHEAD,
    CLAIM_GOLD,
    CLAIM_REAL,
    COUNT_IN,
    COUNT_OUT,
    DEFAULT_PLAN,
    GENERIC_PLAN,
    ITEM,
    OPEN_OR_CLAIM,
    OPEN_TASK,
    SEEN_AS_GOLD,
    Probe,
    assign_and_show,
    count_given,
)
from synthgate.review.decision import (
    Decision,
    ReviewTask,
    Verdict,
    check_annotator,
    check_decision,
    criteria_of,
    decision_argument,
    decision_row,
    refuse_unchanged_fix,
    with_attributes,
)
from synthgate.review.items import (
    ANNOTATOR_VERDICTS,
    GOLD,
    SHOWING,
    SHOWN,
    batch_labels,
    check_item_id,
    finalise,
    item_labels,
    item_row,
    maybe_finalise,
    no_item,
    parse_shown,
    shown_problems,
    shown_row,
    shown_sample,
)
from synthgate.review.reopen import Reopened
from synthgate.review.set_k import KChange
from synthgate.review.stats import blocked_items, queue_stats
from synthgate.samples import CRITERIA, Sample
from synthgate.storage.prepared import Prepared
from synthgate.storage.store import Store, sample_json
from synthgate.storage.tables import (
    WriteTransaction,
    annotator_counts,
    assignments,
    decisions,
    gold_answers,
    review_batches,
    review_items,
)
from synthgate.storage.tables import batches as batch_rows
from synthgate.storage.tables import samples as sample_rows
from synthgate.storage.users import Users
from synthgate.validators.rubric import Rubric

# The statements of the decision, built once with bound parameters and run on the driver's
# cursor (storage/prepared.py), as the claim's (review/claims.py).
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
DECISION_ORDER = (decisions.c.decided_at, decisions.c.id)  # the order decisions came in
RECORD_STATEMENT = decisions.insert().values(  # the columns of decision_row
    {column.key: bindparam(column.key) for column in decisions.c if column.key != "id"}
)
RECORD = Prepared(RECORD_STATEMENT)
# `assigned_at` NULL keeps the assignment's; a decision made outside the queue gives its own
DECIDED_STATEMENT = (
    assignments.update()
    .where(assignments.c.id == bindparam("assignment"))
    .values(
        decided_at=bindparam("now"),
        assigned_at=func.coalesce(
            bindparam("assigned_at", type_=assignments.c.assigned_at.type),
            assignments.c.assigned_at,
        ),
    )
)
DECIDED = Prepared(DECIDED_STATEMENT)


def _record_and_verdicts() -> Prepared[Any]:
    """PostgreSQL: the decision, its assignment closed, and the item's earlier verdicts in one
    statement. One row per earlier annotator verdict, in decision order, each with `closed`;
    a single row with verdict NULL when there is none (the LEFT JOIN ON true). `closed` counts
    the assignment rows closed: 0 when the assignment was gone (a release took it back while
    the decision waited for the item, see release_stale)."""
    decided = DECIDED_STATEMENT.returning(assignments.c.id).cte("decided")
    closed = select(func.count().label("closed")).select_from(decided).subquery("closed")
    earlier = (
        ANNOTATOR_VERDICTS.statement.add_columns(decisions.c.decided_at, decisions.c.id)
        .order_by(None)
        .subquery("earlier")
    )
    return Prepared(
        select(closed.c.closed, earlier.c.verdict)
        .select_from(closed.outerjoin(earlier, true()))
        .order_by(earlier.c.decided_at, earlier.c.id)
        .add_cte(RECORD_STATEMENT.cte("recorded"))
        .add_cte(decided)
    )


RECORD_AND_VERDICTS = _record_and_verdicts()


class ReviewQueue:
    """The review queue of one database (the store's), shared by the CLI, the API and workers."""

    def __init__(
        self,
        store: Store,
        *,
        annotators_per_item: int = 2,
        gold_rate: float = 0.1,
        seed: int | None = None,
    ) -> None:
        """`seed` fixes every draw (honeypots, the random order, who meets gold when), for tests
        and benches; without it the gold draws take a secret of the database (`gold_key`).
        A value of another type (a str read from a form) is an `InputError` naming it."""
        annotators_per_item = number_typed(
            annotators_per_item,
            "annotators_per_item",
            whole=True,
            fix=f"pass an int from 1 to {set_k.MAX_K}, e.g. 2",
        )
        gold_rate = number_typed(
            gold_rate, "gold_rate", whole=False, fix="pass a float in [0, 1), e.g. 0.1"
        )
        if annotators_per_item < 1:
            raise InputError(
                f"annotators_per_item must be >= 1 (got {annotators_per_item}); 2 is the usual choice"
            )
        if annotators_per_item > set_k.MAX_K:  # beyond the column: PostgreSQL refused the items
            raise InputError(
                f"annotators_per_item must be at most {set_k.MAX_K} (got {annotators_per_item}); "
                "give how many distinct people each item needs, e.g. 2"
            )
        if not 0.0 <= gold_rate < 1.0:
            raise InputError(f"gold_rate must be in [0, 1) (got {gold_rate}); try 0.1")
        self.store = store
        self.k = int(annotators_per_item)
        self.gold_rate = float(gold_rate)
        self.seed = 0 if seed is None else seed
        self._seed_given = seed is not None
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
        report the two long steps of a large batch. A batch id the database lacks (no batch,
        no sample of it) is an `InputError`, and nothing is written for it.
        """
        check_batch(self.store, batch_id)
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
        batch: str | None = None,
    ) -> int:
        """Put a gold task (a sample with a known verdict) into the gold set; returns its item.

        The task is tied to a batch of the queue (`batch`, by default the sample's own, or the
        one batch it fits: enqueue.gold_batch), whose labels its Fix form lists as the batch's
        real tasks do; a sample with a label the batch lacks is refused, naming it.
        A sample already gold gets the answer given now (a mistyped one is corrected), unless
        decisions were scored against the old one: then it is refused, naming both; it stays
        tied to its batch unless `batch` names another (gold put in untied, of a batch not in
        the queue, is tied now). A sample whose real item is open (not yet final) is refused,
        naming the item."""
        if not expected:
            raise InputError("add_gold: expected must name at least one verdict")
        if criterion is not None and criterion not in CRITERIA:
            raise InputError(
                field="criterion",
                value=criterion,
                problem=f"not a rubric criterion; use one of {', '.join(CRITERIA)}",
            )
        with self.write() as connection:
            # its gold copy and its real item, one after the other, would show an annotator the
            # same sample twice: a claim gives no gold of a sample while its real item is open,
            # nor real work of a sample the annotator met as gold (review/claims.py); refused
            # here so that the gold set is not quietly missing it
            real = connection.execute(
                select(review_items.c.id).where(
                    review_items.c.key == f"sample:{sample.id}",
                    review_items.c.status != "final",
                )
            ).scalar()
            if real is not None:
                raise InputError(
                    f"{sample.id}: not made gold, it is open real work in the review queue (item "
                    f"{real}); make gold of another sample, or of this one once it is decided"
                )
            known = connection.execute(
                select(
                    review_items.c.id,
                    review_items.c.batch_id,
                    gold_answers.c.expected,
                    gold_answers.c.criterion,
                    gold_answers.c.shown,
                )
                .join(gold_answers, gold_answers.c.item_id == review_items.c.id)
                .where(review_items.c.key == GOLD + sample.id)
            ).first()
            # held to the batch as annotators see it: a gold task keeps the copy first put in
            shown = Sample.model_validate_json(known.shown) if known is not None else sample
            was = known.batch_id if known is not None else None
            tied = enqueue.gold_batch(connection, shown, batch, tied=was)
            task = enqueue.Gold(GOLD + sample.id, sample, expected, criterion, None, answer, tied)
            if known is not None and (list(known.expected), known.criterion) != (
                list(expected),
                criterion,
            ):
                scored = connection.execute(
                    select(func.count()).where(decisions.c.item_id == known.id)
                ).scalar_one()
                if scored:
                    raise InputError(
                        field="expected",
                        value=list(expected),
                        problem=f"sample {sample.id} is gold item {known.id} already, expecting "
                        f"{list(known.expected)}, and "
                        f"{counted(scored, 'decision was', 'decisions were')} "
                        "scored against that",
                        fix="make a gold task of another sample; an answer people were scored "
                        "against stays",
                    )
                connection.execute(
                    gold_answers.update()
                    .where(gold_answers.c.item_id == known.id)
                    .values(
                        expected=list(expected),
                        criterion=criterion,
                        answer=sample_json(answer) if answer else None,
                    )
                )
            if known is not None:
                if known.batch_id != tied:  # gold put in untied (or to another batch) before
                    connection.execute(
                        review_items.update()
                        .where(review_items.c.id == known.id)
                        .values(batch_id=tied)
                    )
                return int(known.id)
        return enqueue.put_golds(self, [task])[0]

    # ---- working the queue -------------------------------------------------------------------

    @cached_property
    def gold_key(self) -> str:
        """What seeds the draws of who meets gold when. Drawn from the annotator's name and
        count of tasks alone, anyone with the code could list their gold positions; so, unless
        the caller fixed a seed, the key is a random secret made once per database and kept in
        it (storage/users.py `secret`): the CLI, every server process and every restart over the
        same database draw alike, and no two databases do."""
        if self._seed_given:
            return str(self.seed)
        return Users(self.store.engine).secret("review-gold").hex()

    def next_item(self, annotator: str) -> ReviewTask | None:
        """The annotator's next task (their open one first), or None when nothing is left."""
        annotator = check_annotator(annotator)
        # read before the claim's write transaction: the first read writes the key, and SQLite
        # has one writer at a time; without gold there are no draws to key
        gold_key = self.gold_key if self.gold_rate > 0 else ""
        with self.store.engine.connect() as connection:
            for attempt in range(200):
                if attempt:
                    time.sleep(min(0.002 * attempt, 0.05))  # other claims hold the slots
                # One short write transaction: the open task, else a claim and its assignment,
                # and the task's row; the sample is parsed after the commit.
                with self.write(connection) as writing:
                    values = {"annotator": annotator}
                    if self.dialect == "postgresql":  # on its generic plan: see claims.py
                        claimed = OPEN_OR_CLAIM.run_between(
                            writing, GENERIC_PLAN, DEFAULT_PLAN, values
                        )
                        open_task, position, ahead, found = claimed.one()
                    else:
                        open_task, position, ahead = OPEN_TASK.run(writing, values).one()
                        found = None
                    item_id = open_task
                    if item_id is None:
                        real = self._real(writing, values, ahead, found)
                        item_id = self._claim(writing, annotator, position, real, gold_key)
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
                    # in the claim's transaction: read apart, a connection of its own cost
                    # PostgreSQL a third of its decisions/s (BEGIN, the query, ROLLBACK)
                    labels = item_labels(writing, item_id)
                return self._task_of(row, labels)
        raise RuntimeError("next_item: could not claim an item after 200 attempts")

    def decide(
        self,
        item_id: int,
        annotator: str,
        decision: Decision | Mapping[str, Any],
        *,
        assign: bool = False,
        times: tuple[float, float] | None = None,
    ) -> None:
        """Record the annotator's decision; with all k in, finalise or send to adjudication.

        `assign=True` is for decisions made outside the queue (a Label Studio import): the item
        is given to the annotator first, under next_item's rules (open, fewer than k people),
        and the assignment keeps `times`, when they started and submitted it out there, else
        none at all (assigned when decided: the moment of the import is no time on the task,
        and `review stats` would make thousands of decisions an hour of it). In the same
        transaction as the decision: an import stopped between them left that moment.
        `decision` may be a dict of a Decision's fields (decision_argument).
        """
        annotator = check_annotator(annotator)
        decision = decision_argument(decision)
        with self.write() as connection:
            deciding = DECIDING_LOCKED if self.dialect == "postgresql" else DECIDING
            values = {"item": check_item_id(item_id), "annotator": annotator}
            item = deciding.run(connection, values).first()
            if item is None:
                raise no_item(item_id)
            shown = parse_shown(item)
            check_decision(
                item_id, shown, decision, labels=self._fix_labels(connection, item, decision)
            )
            refuse_unchanged_fix(item_id, shown, decision)
            decision = with_attributes(item_id, shown, decision)
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
                    f"item {item_id} is not assigned to {annotator!r} (never given to them, or "
                    "taken back by review release); ask for the next item first"
                )
            now = time.time()
            row = decision_row(item_id, annotator, decision, shown, "annotator", now)
            # the assignment's times: the queue's, or those of a decision made outside it
            started, submitted = (None, now) if not assign else (times or (now, now))
            closing = {"assignment": assignment_id, "now": submitted, "assigned_at": started}
            verdicts = None  # read by maybe_finalise
            if self.dialect == "postgresql":
                values = {**row, **closing, "item": item_id}
                rows = RECORD_AND_VERDICTS.run(connection, values).rows
                closed = rows[0].closed
                # a NULL verdict is the padding row of an item with no earlier verdict
                verdicts = [*(r.verdict for r in rows if r.verdict is not None), row["verdict"]]
            else:
                RECORD.run(connection, row)
                closed = DECIDED.run(connection, closing).rowcount
            if not closed:  # the raise rolls back the decision just recorded
                raise InputError(
                    f"item {item_id} was taken back from {annotator!r} (undecided for too long: "
                    "review release) while this decision came in; ask for the next item"
                )
            if item.kind == "sample":
                maybe_finalise(connection, item, shown, verdicts)

    def adjudicate(
        self, item_id: int, adjudicator: str, decision: Decision | Mapping[str, Any]
    ) -> None:
        """An adjudicator's decision on an item its annotators disagreed on, or on an open item
        the blind rule keeps from the team (stats' `blocked`): it is final. `decision` as
        decide takes it."""
        adjudicator = check_annotator(adjudicator, "adjudicator")
        decision = decision_argument(decision)
        with self.write() as connection:
            item = self._lock_item(connection, item_id)
            if item.status == "open" and item.kind == "sample":
                self._check_blocked(connection, item)
            elif item.status != "adjudication":
                raise InputError(f"item {item_id} is {item.status}, not waiting for adjudication")
            deciders = connection.execute(
                select(decisions.c.annotator).where(decisions.c.item_id == item_id)
            ).scalars()
            if adjudicator in set(deciders):
                raise InputError(
                    f"{adjudicator!r} already decided item {item_id}; another person adjudicates"
                )
            shown = shown_sample(connection, item)
            check_decision(
                item_id, shown, decision, labels=self._fix_labels(connection, item, decision)
            )
            refuse_unchanged_fix(item_id, shown, decision)
            decision = with_attributes(item_id, shown, decision)
            row = decision_row(item_id, adjudicator, decision, shown, "adjudicator", time.time())
            connection.execute(decisions.insert().values(**row))
            finalise(connection, item, decision.verdict, [row])

    @staticmethod
    def _check_blocked(connection: Connection, item: Any) -> None:
        """Refuse to adjudicate an open item unless it is blocked (stats.blocked_items: nobody
        the queue knows may take it) and nobody holds it undecided (their decision would come
        in on a final item)."""
        if not blocked_items(connection, item=item.id):
            raise InputError(
                f"item {item.id} is open, not waiting for adjudication: annotators may still "
                "take it"
            )
        holding = connection.execute(
            select(assignments.c.annotator)
            .where(assignments.c.item_id == item.id, assignments.c.decided_at.is_(None))
            .order_by(assignments.c.annotator)
        ).scalars()
        names = ", ".join(repr(who) for who in holding)
        if names:
            raise InputError(
                f"item {item.id} is blocked, but {names} holds it undecided: adjudicate it once "
                "they decide, or after review release takes it back"
            )

    def release_stale(
        self, older_than_s: float | None = None, *, annotator: str | None = None
    ) -> int:
        """Take back assignments left undecided for longer than `older_than_s` seconds (an
        annotator who walked away), or every undecided one of `annotator` (with both: theirs
        older than that), so the items go to someone else; returns how many. An item
        `review set-k` left a larger k for its holders gets the k asked, or is finished now
        that its holder is gone, as set-k would have (set_k.lower_released). An annotator the
        queue never handed a task is an `InputError`, raised before anything changes."""
        if older_than_s is None and annotator is None:
            raise InputError(
                "name the undecided assignments to take back: older_than_s (anyone's left "
                "that long), {annotator=NAME} (theirs, of any age), or both",
                options=("annotator=NAME",),
            )
        stale: ColumnElement[bool] = assignments.c.decided_at.is_(None)
        if older_than_s is not None:
            cutoff = time.time() - older_than_s
            stale = stale & (assignments.c.assigned_at < cutoff)
        if annotator is not None:
            who = check_annotator(annotator)
            self._check_handed_tasks(who)
            stale = stale & (assignments.c.annotator == who)
        taking_back = assignments.delete().where(stale)
        with self.write() as connection:
            if self.dialect == "postgresql":
                # The items first, in id order, as a decision takes its item and then its
                # assignment. Deleting first deadlocked: the release held the deleted
                # assignment and waited for its item (COUNT_OUT), while a decision held the
                # item and waited for the assignment. Only the items locked lose assignments.
                locked = connection.execute(
                    select(review_items.c.id)
                    .where(review_items.c.id.in_(select(assignments.c.item_id).where(stale)))
                    .order_by(review_items.c.id)
                    .with_for_update()
                ).scalars()
                taking_back = taking_back.where(
                    assignments.c.item_id == any_(literal(list(locked), ARRAY(Integer)))
                )
            released = connection.execute(
                taking_back.returning(assignments.c.item_id, assignments.c.annotator)
            ).all()
            by_item = Counter(item_id for item_id, _ in released)
            for item_id, count in by_item.items():
                COUNT_OUT.run(connection, {"item": item_id, "released": count})
            # an item whose holders kept its k above what review set-k asked for
            set_k.lower_released(connection, sorted(by_item))
            # in a fixed order, so that two releases never wait on each other's counts
            for annotator, count in sorted(Counter(who for _, who in released).items()):
                count_given(self.dialect).run(
                    connection, {"annotator": annotator, "change": -count}
                )
            return len(released)

    def _check_handed_tasks(self, who: str) -> None:
        """Refuse a name the queue never handed a task (kept counts: a claim's first task
        makes the annotator's row)."""
        with self.store.engine.connect() as connection:
            known = connection.execute(
                select(annotator_counts.c.annotator).where(annotator_counts.c.annotator == who)
            ).first()
        if known is None:
            raise InputError(
                field="annotator",
                value=who,
                problem="was never handed a task in this review queue",
                fix="name an annotator `synthgate review stats` lists (names are case-sensitive)",
            )

    def set_annotators_per_item(self, k: int, *, batches: list[str] | None = None) -> KChange:
        """Give the open items (of `batches`, else all) `k` annotators each, and finish those
        that have their decisions now, as a k-th decision would (review/set_k.py)."""
        return set_k.set_k(self, k, batches=batches)

    def reopen(
        self,
        items: Iterable[int] = (),
        *,
        annotator: str | None = None,
        by: str,
        reason: str = "",
        dry_run: bool = False,
    ) -> Reopened:
        """Take back every decision of `annotator` (but those on gold tasks, which stay scored),
        or every decision on `items`, or the annotator's on them: kept in review_taken_back
        with `by` and `reason`, each item made anew from the decisions left, open again with
        fewer than k (review/reopen.py). `dry_run`: what would change, nothing changed."""
        return reopen.reopen(
            self, items, annotator=annotator, by=by, reason=reason, dry_run=dry_run
        )

    def awaiting_adjudication(self) -> list[int]:
        with self.store.engine.connect() as connection:
            return list(
                connection.execute(
                    select(review_items.c.id)
                    .where(review_items.c.status == "adjudication")
                    .order_by(review_items.c.id)
                ).scalars()
            )

    def awaiting_with_decisions(self) -> list[Awaiting]:
        """The items awaiting adjudication, oldest first, each with its sample and every
        decision on it (what an adjudicator reads before deciding), in one query."""
        rows = select(
            review_items.c.id.label("waiting"),
            review_items.c.sample_id,
            review_items.c.modality,
            review_items.c.k,
            *decisions.c,
        )
        with self.store.engine.connect() as connection:
            found = connection.execute(
                rows.select_from(
                    review_items.outerjoin(decisions, decisions.c.item_id == review_items.c.id)
                )
                .where(review_items.c.status == "adjudication")
                .order_by(review_items.c.id, *DECISION_ORDER)
            ).all()
        awaiting: list[Awaiting] = []
        for row in found:
            if not awaiting or awaiting[-1].item_id != row.waiting:
                awaiting.append(Awaiting(row.waiting, row.sample_id, row.modality, row.k, []))
            if row.id is not None:
                awaiting[-1].decisions.append({c.key: row._mapping[c.key] for c in decisions.c})
        return awaiting

    def decisions_on(self, item_id: int) -> list[dict[str, Any]]:
        """Every decision on an item (an adjudicator's too) in the order they came, as
        review_decisions rows; an unknown id is an `InputError`."""
        with self.store.engine.connect() as connection:
            item = item_row(connection, item_id)
            found = connection.execute(
                select(decisions).where(decisions.c.item_id == item.id).order_by(*DECISION_ORDER)
            )
            return [dict(row._mapping) for row in found]

    def fix_of(self, item_id: int, annotator: str) -> dict[str, Any]:
        """The labels of the annotator's fix of the item, as a `Decision` takes them (objects
        or spans): an adjudicator's fix may take one. An `InputError` when the annotator made
        no decision on the item, or one that is no fix."""
        with self.store.engine.connect() as connection:
            fixed = connection.execute(
                select(decisions.c.verdict, decisions.c.objects, decisions.c.spans).where(
                    decisions.c.item_id == item_id,
                    decisions.c.annotator == annotator,
                    decisions.c.role == "annotator",
                )
            ).first()
        if fixed is None or fixed.verdict != "fix":
            said = "made no decision" if fixed is None else f"said {fixed.verdict}"
            raise InputError(f"{annotator} {said} on item {item_id}, no fix to take")
        labels = {"objects": fixed.objects} if fixed.objects is not None else {}
        return labels | ({"spans": fixed.spans} if fixed.spans is not None else {})

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
            # the folder of the sample's own batch; gold tied to another batch (add_gold) from a
            # batch the queue does not hold, that batch's: a task without its image tells gold
            home = shown.spec.batch_id
            roots = dict(
                connection.execute(
                    select(review_batches.c.batch_id, review_batches.c.image_root).where(
                        review_batches.c.batch_id.in_({home, item.batch_id})
                    )
                ).all()
            )
            root = roots.get(home, roots.get(item.batch_id))
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

    def fix_labels(self, item_id: int) -> list[str]:
        """The batch's labels a fix of the item may use (check_decision's `labels`): its object
        classes for an image item, its span labels for a text item."""
        with self.store.engine.connect() as connection:
            return item_labels(connection, item_id)

    def labels_batch(self, item_id: int) -> str | None:
        """The batch whose labels `fix_labels` lists for the item (a gold task's, the batch
        `add_gold` tied it to), or None when that batch keeps none in the queue (not enqueued,
        or by an older synthgate): then it lists every batch's of its kind."""
        with self.store.engine.connect() as connection:
            batch_id = item_row(connection, item_id).batch_id
            labels = connection.execute(
                select(review_batches.c.labels).where(review_batches.c.batch_id == batch_id)
            ).scalar()
        return batch_id if labels is not None else None

    @staticmethod
    def _fix_labels(connection: Connection, item: Any, decision: Decision) -> list[str]:
        """A fix's `labels` for check_decision; none to read for other verdicts (a decision
        costs no more round trips)."""
        if decision.verdict != "fix":
            return []
        return batch_labels(connection, item.batch_id, item.modality)

    def _assign(self, connection: Connection, item: Any, annotator: str) -> None:
        if item.status != "open":
            raise InputError(f"item {item.id} is {item.status}: it takes no more decisions")
        if item.kind == "sample" and item.taken >= item.k:
            raise InputError(f"item {item.id} already has its {item.k} annotators")
        if item.kind == "sample":
            # blind, as a claim is (claims.NOT_SEEN_AS_GOLD): not the same sample twice
            seen = SEEN_AS_GOLD.run(connection, {"item": item.id, "annotator": annotator}).one()
            if seen.gold is not None:
                raise InputError(
                    f"{annotator!r} was given sample {item.sample_id} as gold item {seen.gold}: "
                    f"an answer of theirs to it as item {item.id} would not be blind; left out, "
                    "another annotator takes the item"
                )
            if seen.benched_by is not None:  # as the claim's NOT_BENCHED
                why = f": {seen.benched_why}" if seen.benched_why else ""
                raise InputError(
                    f"item {item.id}: {annotator!r}'s decision on it was taken back by "
                    f"{seen.benched_by} (review reopen --annotator{why}), and they are not given "
                    "it again; another annotator takes it"
                )
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
        """The values of ASSIGN, COUNT_IN and count_given (one more task for the annotator)."""
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
        self,
        connection: Connection,
        annotator: str,
        position: int,
        real: int | None,
        gold_key: str,
    ) -> int | None:
        """The item to assign next; -1 if other claims hold every open slot (the caller
        retries), None if nothing is left for this annotator. `position`: how many tasks the
        annotator was given before (with `gold_key` it seeds their gold draw); `real`: the
        sample item `_real` found."""
        if real is None or real < 0:
            return real  # gold only rides along with real work
        if gold.draw_gold(self.gold_rate, seed=[gold_key, annotator, position]):
            # The first gold item the annotator has not seen, walking the gold order from a
            # point drawn for this claim (and around): a seeded order per annotator, by index.
            start = priority.gold_start(gold_key, annotator, position)
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

    def _task_of(self, row: Any, fix_labels: list[str] | None = None) -> ReviewTask:
        """The task of an item's SHOWN row: the sample, parsed anew, as every task looks."""
        shown = parse_shown(row)
        # every task looks alike: gold tasks must not be told apart by status or audit flag
        shown.status = "review"
        if row.kind == "gold" and shown.report is not None and shown.report.route == "accepted":
            shown.report.audit = True
        criteria = criteria_of(shown)
        return ReviewTask(
            item_id=row.id, sample=shown, criteria=criteria, fix_labels=fix_labels or []
        )


def check_batch(store: Store, batch_id: str) -> None:
    """Refuse a batch id the database holds neither a batch nor a sample of, naming the
    batches whose id starts with the one given (a config's name where its batch id,
    `NAME-<hash>`, goes)."""
    with store.engine.connect() as connection:
        for column in (batch_rows.c.id, sample_rows.c.batch_id):
            if connection.execute(select(column).where(column == batch_id).limit(1)).first():
                return
        near = list(
            connection.execute(
                select(batch_rows.c.id)
                .where(batch_rows.c.id.startswith(f"{batch_id}-", autoescape=True))
                .order_by(batch_rows.c.id)
                .limit(6)
            ).scalars()
        )
    shown = ", ".join(near[:5]) + (", ..." if len(near) > 5 else "")
    raise InputError(
        field="batch",
        value=batch_id,
        problem="no such batch in the database",
        fix=f"give a batch id, e.g. {shown}"
        if near
        else "give the id of a batch a run made (`synthgate run CONFIG` prints it)",
    )


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
