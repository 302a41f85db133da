"""The statements of a review claim: which item an annotator is given next, and the kept counts
an assignment moves (review/queue.py runs them).

- The annotator's open task, their count of tasks given (it seeds their gold draw) and how many
  items they hold alone (OPEN_TASK; on PostgreSQL with the claim's probes, OPEN_OR_CLAIM).
- The claim's probes, each the first row of an index range: STARTED (items others started, the
  most taken first), FRESH, and the gold tasks from a seeded point (CLAIM_GOLD), passing those
  the annotator holds and those of a sample they hold or held as a real item or whose real item
  is open; the real probes pass items of a sample they hold or held as gold (NOT_SEEN_AS_GOLD)
  and items `review reopen --annotator` benched them from (NOT_BENCHED).
  An annotator far ahead of the team (holding AHEAD items or more that nobody else has taken)
  seeks each other holder's first item they may take instead of walking past their own
  (CLAIM_AHEAD).
- The kept counts: `taken` and `holder` of an item (COUNT_IN, COUNT_OUT), tasks given per
  annotator (count_given); on PostgreSQL an assignment rides with its task's row
  (assign_and_show).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, case, func, literal, null, select, true, union_all
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.selectable import FromClause, Join

from synthgate.review.items import GOLD, HONEYPOT, SHOWN
from synthgate.storage.prepared import Prepared
from synthgate.storage.tables import (
    annotator_counts,
    assignments,
    dialect_insert,
    review_items,
    taken_back,
)

# The statements, built once with bound parameters and run on the driver's cursor
# (storage/prepared.py): SQLAlchemy's per-execution work costs more than running them on an
# index.
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


# A sample made gold (review gold, or a honeypot) before it was enqueued as real work has a gold
# item and a real one: an annotator who holds or held the gold one must not be given the real
# one, the same sample twice. Its gold items are keyed gold:<id> and honeypot:<id>: each row a
# real probe walks takes a seek of the unique key for each and, where there is one, a probe of
# uq_assignment for the annotator on it, as UNSEEN_GOLD's; no subquery per row. Rows are passed
# only for such samples, a handful per annotator. Tested on the assignment's item_id, a column of
# the join's condition: PostgreSQL then runs an anti-join and expects the walk to stop early
# (tested on its id, it expected the test to drop nearly every row, and sorted every open item).
# The same join keeps an annotator `review reopen --annotator` benched from a real item (their
# review_taken_back row of it, `benched`) off it: one seek of ix_review_taken_back_annotator_item
# per row walked, tested on its item_id for the same anti-join; no row for nearly every item.
@dataclass(frozen=True)
class GoldOfSample:
    """The gold items of the sample of each row of `items` (review_items, or an alias of it for
    a walk of its own) and the annotator's assignments of them, and the reopen that benched the
    annotator from the row's item, if one did: `join` adds them to a FROM that holds `items`,
    `unseen` is the test that the annotator holds or held none of the gold items, `not_benched`
    that no reopen benched them."""

    items: Any
    gold: Any
    honeypot: Any
    mine_gold: Any
    mine_honeypot: Any
    benched: Any

    @classmethod
    def of(cls, items: Any, prefix: str = "") -> GoldOfSample:
        """Its own aliases, named with `prefix` (one set per walk of the items)."""
        return cls(
            items,
            review_items.alias(f"{prefix}gold_of_sample"),
            review_items.alias(f"{prefix}honeypot_of_sample"),
            assignments.alias(f"{prefix}mine_gold"),
            assignments.alias(f"{prefix}mine_honeypot"),
            taken_back.alias(f"{prefix}benched"),
        )

    def join(self, joined: FromClause) -> Join:
        with_gold = self._join(joined, GOLD, self.gold, self.mine_gold)
        with_both = self._join(with_gold, HONEYPOT, self.honeypot, self.mine_honeypot)
        bench = self.benched
        return with_both.outerjoin(
            bench,
            (bench.c.annotator == ANNOTATOR)
            & (bench.c.item_id == self.items.c.id)
            & bench.c.benched.is_(true()),
        )

    def _join(self, joined: FromClause, prefix: str, gold: Any, mine: Any) -> Join:
        """`joined` with the gold item keyed `prefix` + the sample id and the annotator's
        assignment of it."""
        key = literal(prefix) + self.items.c.sample_id
        return joined.outerjoin(gold, gold.c.key == key).outerjoin(
            mine, (mine.c.item_id == gold.c.id) & (mine.c.annotator == ANNOTATOR)
        )

    @property
    def unseen(self) -> tuple[Any, Any]:
        return (self.mine_gold.c.item_id.is_(None), self.mine_honeypot.c.item_id.is_(None))

    @property
    def not_benched(self) -> Any:
        return self.benched.c.item_id.is_(None)


GOLD_OF_SAMPLE = GoldOfSample.of(review_items)
NOT_SEEN_AS_GOLD = GOLD_OF_SAMPLE.unseen
NOT_BENCHED = GOLD_OF_SAMPLE.not_benched


def with_gold_of_sample(joined: FromClause) -> Join:
    """`joined` (holding review_items) with the annotator's assignments of the gold items of
    each item's sample, for NOT_SEEN_AS_GOLD."""
    return GOLD_OF_SAMPLE.join(joined)


# The gold item of the item's sample the annotator holds or held (its gold task first), NULL if
# none, and who benched them from the item (NULL if nobody): NOT_SEEN_AS_GOLD's and NOT_BENCHED's
# tests for one item, by its id (an assignment outside the claim, queue.py `_assign`, keeps to
# the claim's rules)
SEEN_AS_GOLD = Prepared(
    select(
        func.coalesce(
            GOLD_OF_SAMPLE.mine_gold.c.item_id, GOLD_OF_SAMPLE.mine_honeypot.c.item_id
        ).label("gold"),
        GOLD_OF_SAMPLE.benched.c.taken_back_by.label("benched_by"),
        GOLD_OF_SAMPLE.benched.c.reason.label("benched_why"),
    )
    .select_from(with_gold_of_sample(review_items))
    .where(review_items.c.id == ITEM)
    .limit(1)
)


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
        .select_from(with_gold_of_sample(NOT_MINE))
        .where(
            *OPEN_SAMPLE,
            review_items.c.taken > held_by_more_than,
            review_items.c.taken < review_items.c.k,
            MINE.c.item_id.is_(None),
            *NOT_SEEN_AS_GOLD,
            NOT_BENCHED,
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
HOLDERS_GOLD = GoldOfSample.of(HOLDERS_ITEMS, "holders_")
# Each annotator's first open item they hold alone that the claiming annotator may take (its id,
# and its priority to order by): the seek walks past those of a sample the claimant met as gold,
# as STARTED's walk does (a handful); tested after the seek, it found nothing for a holder whose
# first item was one, and the claim passed their other items, to a fresh item or to nothing.
HOLDERS_FIRST = (
    select(HOLDERS_ITEMS.c.id, HOLDERS_ITEMS.c.priority)
    .select_from(HOLDERS_GOLD.join(HOLDERS_ITEMS))
    .where(
        HOLDERS_ITEMS.c.holder == annotator_counts.c.annotator,
        HOLDERS_ITEMS.c.status == "open",
        *HOLDERS_GOLD.unseen,
        HOLDERS_GOLD.not_benched,
    )
    .order_by(HOLDERS_ITEMS.c.priority, HOLDERS_ITEMS.c.id)
    .limit(1)
)
FIRST_HELD = (
    HOLDERS_FIRST.with_only_columns(HOLDERS_ITEMS.c.id)
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
FIRSTS_HELD = HOLDERS_FIRST.lateral("firsts_held")
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


# Nobody holds a fresh item, so it cannot be the annotator's (its sample's gold can be). Written
# as a range of `taken` in the claim index's own order (taken < 1 is taken = 0: counts are never
# negative), so that only ix_review_items_claim serves it without a sort: with `taken = 0` and
# (priority, id), PostgreSQL also weighed ix_review_items_gold_order, filtering out the started
# items, the first ones in priority order (it cannot know); past a few thousand started items it
# took that walk.
FRESH = (
    select(review_items.c.id)
    .select_from(with_gold_of_sample(review_items))
    .where(*OPEN_SAMPLE, review_items.c.taken < 1, *NOT_SEEN_AS_GOLD, NOT_BENCHED)
    .order_by(review_items.c.taken.desc(), review_items.c.priority, review_items.c.id)
    .limit(1)
)
# A gold task of a sample the annotator holds or held as a real item would show them the same
# sample twice, once with a known answer. A sample has one real item, keyed sample:<id>: each
# gold row walked takes a seek of the unique key for it and, if there is one, a probe of
# uq_assignment for the annotator on it, as MINE's; no subquery per row. (Joined by sample_id
# and kind instead, SQLite walked every sample item of ix_review_items_gold_order per gold row.)
# Tested on item_id, as NOT_SEEN_AS_GOLD is, so that PostgreSQL runs an anti-join.
# Nor is a gold task given while its sample's real item is open (or waiting for adjudication),
# as add_gold refuses to make one: nobody who answered it could take the real item
# (NOT_SEEN_AS_GOLD), which then might never get its k people. One more seek of the unique key
# per gold row walked (an anti-join of its own, on `key`); the rows it passes are the gold of
# samples made gold before they were enqueued whose real items are still open.
REAL_OF_SAMPLE = review_items.alias("real_of_sample")
MINE_REAL = assignments.alias("mine_real")
OPEN_REAL = review_items.alias("open_real")
REAL_KEY = literal("sample:") + review_items.c.sample_id
NOT_MINE_REAL = (
    NOT_MINE.outerjoin(REAL_OF_SAMPLE, REAL_OF_SAMPLE.c.key == REAL_KEY)
    .outerjoin(
        MINE_REAL,
        (MINE_REAL.c.item_id == REAL_OF_SAMPLE.c.id) & (MINE_REAL.c.annotator == ANNOTATOR),
    )
    .outerjoin(OPEN_REAL, (OPEN_REAL.c.key == REAL_KEY) & (OPEN_REAL.c.status != "final"))
)
UNSEEN_GOLD = (
    select(review_items.c.id)
    .select_from(NOT_MINE_REAL)
    .where(
        review_items.c.kind == "gold",
        review_items.c.status == "open",
        MINE.c.item_id.is_(None),
        MINE_REAL.c.item_id.is_(None),
        OPEN_REAL.c.key.is_(None),
    )
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
# OPEN_OR_CLAIM runs on its generic plan: index walks whatever the annotator. Planned for each
# annotator's values instead, as PostgreSQL chose once a queue held 100k items (it weighs the
# generic plan against the custom ones and kept planning anew), planning took 1.2-1.9 ms of a
# 2.5 ms `next`; the plan it then runs takes 0.2 ms (1k items: 0.7 ms in all, planned once).
# Only this statement: the gold probes' generic plans cannot know where `start` falls (one
# took 34 ms), so the setting goes back to the server's at once (SET LOCAL: this transaction).
# The setting, the statement and the reset go to the server together (Prepared.run_between:
# psycopg's pipeline mode); sent one by one, with the transaction's BEGIN, they were four round
# trips of a `next`'s eleven (bench_review_queue at 1k: 175-180 -> 187-193 decisions/s).
GENERIC_PLAN = "SET LOCAL plan_cache_mode = force_generic_plan"
DEFAULT_PLAN = "SET LOCAL plan_cache_mode TO DEFAULT"
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
