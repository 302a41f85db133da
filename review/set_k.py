"""Changing how many annotators the open items need (`synthgate review set-k`, POST
/api/review/annotators-per-item): the way out of a queue enqueued with a k larger than the team.

Each item keeps the k it was enqueued with (`review enqueue -k`); with more than the people
who ask for work, its last slots wait for someone new and the items stay open. `set_k` gives the
open sample items (of some batches, or all) a new k, a write transaction per CHUNK_ITEMS of them
under the queue's lock, as a decision takes it (SQLite: BEGIN IMMEDIATE; PostgreSQL: the items
locked in id order, as `release_stale` locks them), so decisions arriving meanwhile wait for
that chunk and are counted:

- an item nobody holds undecided and with at least k decisions now is finished as its k-th
  decision would finish it (items.py `maybe_finalise`: agreement -> final verdict, a split or
  fixes that differ -> adjudication);
- an item some people hold undecided keeps a k of at least the people holding or having decided
  it: each of them decides, and the last decision finishes it (a decision never comes in on a
  final item, and none made is thrown away). It keeps the k asked too (`k_asked`): a release
  that takes one of them back (`review release`, `lower_released`) lowers its k to the people
  still on it, never below the k asked, and finishes it where that is enough, as set-k would
  have had they never taken it;
- the kept counts of the claim (review/claims.py) stay right: `taken` is unchanged (nobody is
  given or taken off an item), `holder` is set where an item taken once now has k > 1 and
  cleared where it now has k = 1; `priority` is unchanged.

Raising k reopens nothing: items awaiting adjudication and final ones keep their result. The
queue keeps no k for items enqueued later: each `review enqueue -k` gives its own.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, literal, null, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from synthgate.errors import InputError
from synthgate.review.items import ANNOTATOR_VERDICTS, maybe_finalise
from synthgate.review.stats import queue_team
from synthgate.storage.tables import assignments, decisions, review_items

if TYPE_CHECKING:
    from synthgate.review.queue import ReviewQueue

MAX_K = 2**31 - 1  # review_items.k is a 32-bit column on PostgreSQL
# Open items set-k changes per write transaction: ~0.45 ms each on PostgreSQL, so a claim that
# meets them locked waits well under a second, far inside its retries
CHUNK_ITEMS = 1000


@dataclass
class KChange:
    """What `set_k` did: `changed` open items got a new k; of the items it looked at, `final`
    were finished with a verdict, `adjudication` went to an adjudicator and `still_open` wait
    for more decisions; of those, `held` keep a larger k until the people holding them decide
    (`holders`); `kept` counts the items not open, by status, whose result stays; `team` the
    annotators the queue ever gave work (admins left out: stats.queue_team)."""

    k: int
    batches: list[str]
    changed: int = 0
    final: int = 0
    adjudication: int = 0
    still_open: int = 0
    held: int = 0
    holders: list[str] = field(default_factory=list)
    kept: dict[str, int] = field(default_factory=dict)
    team: list[str] = field(default_factory=list)


def check_k(k: Any) -> int:
    """`k` as a number of annotators per item, or an `InputError` naming the fix."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InputError(
            f"annotators per item must be a whole number from 1 to {MAX_K} (got {k!r}); give "
            "how many distinct people each open item needs, e.g. 2"
        )
    return k


def set_k(queue: ReviewQueue, k: int, *, batches: list[str] | None = None) -> KChange:
    """Give the open sample items (of `batches`, else all) `k` annotators each; finish those that
    have their decisions now. A write transaction per CHUNK_ITEMS open items, in id order: a
    claim waits for one chunk, never for the whole queue (on PostgreSQL a claim skips locked
    rows and gives up after some 9 s of them). Returns what changed."""
    k = check_k(k)
    chosen = sorted(set(batches or []))
    change = KChange(k=k, batches=chosen)
    scope: list[ColumnElement[bool]] = [review_items.c.kind == "sample"]
    if chosen:
        scope.append(review_items.c.batch_id.in_(chosen))
    opened = (*scope, review_items.c.status == "open")
    with queue.store.engine.connect() as connection:
        if chosen:
            _check_batches(connection, chosen)
        ids = (
            connection.execute(select(review_items.c.id).where(*opened).order_by(review_items.c.id))
            .scalars()
            .all()
        )
        for status, n in connection.execute(
            select(review_items.c.status, func.count())
            .where(*scope, review_items.c.status != "open")
            .group_by(review_items.c.status)
        ):
            change.kept[status] = n
    for start in range(0, len(ids), CHUNK_ITEMS):
        part = ids[start : start + CHUNK_ITEMS]
        with queue.write() as connection:
            chunk = (*opened, review_items.c.id.between(part[0], part[-1]))
            _set_chunk(connection, queue.dialect, change, chunk)
    with queue.store.engine.connect() as connection:
        change.still_open = connection.execute(
            select(func.count()).select_from(review_items).where(*opened)
        ).scalar_one()
        _held(connection, change, opened)
        change.team = queue_team(connection)
    return change


def _set_chunk(
    connection: Connection, dialect: str, change: KChange, chunk: tuple[Any, ...]
) -> None:
    """set_k on the open items of `chunk`, in the caller's write transaction."""
    k = change.k
    # locked in id order, as release_stale and a decision lock them: what follows reads
    # `taken` and the decisions no claim nor decision can change until the commit
    locking = select(review_items.c.id).where(*chunk).order_by(review_items.c.id)
    if dialect == "postgresql":
        locking = locking.with_for_update()
    connection.execute(locking).all()
    # never below the people holding or having decided an item: each of them decides
    wanted = case((review_items.c.taken > k, review_items.c.taken), else_=literal(k))
    change.changed += connection.execute(
        review_items.update().where(*chunk, review_items.c.k != wanted).values(k=wanted)
    ).rowcount
    # the k asked, where the people on an item keep it larger (lower_released)
    connection.execute(
        review_items.update()
        .where(*chunk, (review_items.c.taken > k) | review_items.c.k_asked.is_not(None))
        .values(k_asked=case((review_items.c.taken > k, literal(k)), else_=null()))
    )
    _hold(connection, chunk)
    for verdict in _finish_ready(connection, chunk):
        if verdict is None:
            change.adjudication += 1
        else:
            change.final += 1


def open_ks(queue: ReviewQueue, batches: list[str]) -> dict[int, int]:
    """How many open sample items of `batches` need each k (`review enqueue -k` gives only new
    items its k: the command says which open ones keep another)."""
    with queue.store.engine.connect() as connection:
        return dict(
            connection.execute(
                select(review_items.c.k, func.count())
                .where(
                    review_items.c.kind == "sample",
                    review_items.c.status == "open",
                    review_items.c.batch_id.in_(batches),
                )
                .group_by(review_items.c.k)
                .order_by(review_items.c.k)
            ).all()
        )


def _check_batches(connection: Connection, chosen: list[str]) -> None:
    known = set(
        connection.execute(
            select(review_items.c.batch_id)
            .where(review_items.c.kind == "sample", review_items.c.batch_id.in_(chosen))
            .distinct()
        ).scalars()
    )
    unknown = [batch for batch in chosen if batch not in known]
    if unknown:
        raise InputError(
            field="batch",
            value=unknown[0],
            problem="has no items in the review queue",
            fix="name a batch `synthgate review enqueue` put in the queue, or drop --batch",
        )


def lower_released(connection: Connection, item_ids: list[int]) -> None:
    """After a release took people off the items `item_ids` (release_stale, in its transaction,
    the items locked): those whose k set_k kept above the k asked get its rule again, k no lower
    than the people still on them, and are finished where they have their decisions now. Else
    the larger k stayed, and the item went to someone new."""
    scope = (
        review_items.c.id.in_(item_ids),
        review_items.c.kind == "sample",
        review_items.c.status == "open",
    )
    above = review_items.c.taken > review_items.c.k_asked
    lowered = connection.execute(
        review_items.update()
        .where(*scope, review_items.c.k_asked.is_not(None))
        .values(  # both from the row as it was
            k=case((above, review_items.c.taken), else_=review_items.c.k_asked),
            k_asked=case((above, review_items.c.k_asked), else_=null()),
        )
    ).rowcount
    if lowered:
        _hold(connection, scope)
        _finish_ready(connection, scope)


def _hold(connection: Connection, opened: tuple[Any, ...]) -> None:
    """The one person holding an item taken once of k > 1, for the items of `opened` whose k
    may have changed (claims.py COUNT_IN, COUNT_OUT keep it as people come and go)."""
    connection.execute(
        review_items.update()
        .where(*opened, review_items.c.taken == 1)
        .values(
            holder=case(
                (
                    review_items.c.k > 1,
                    select(assignments.c.annotator)
                    .where(assignments.c.item_id == review_items.c.id)
                    .scalar_subquery(),
                ),
                else_=null(),
            )
        )
    )


def _finish_ready(connection: Connection, opened: tuple[Any, ...]) -> list[str | None]:
    """Finish the open items of `opened` that have their k decisions and nobody holding them
    undecided (then `taken` counts exactly their deciders), as their k-th decision would have;
    the final verdict of each, None for one sent to adjudication."""
    # counted per item on the decisions' item index: a release of one item grouped every
    # decision of the queue
    decided = (
        select(func.count())
        .where(decisions.c.item_id == review_items.c.id, decisions.c.role == "annotator")
        .scalar_subquery()
    )
    ready = connection.execute(
        select(review_items)
        .where(*opened, decided >= review_items.c.k, decided == review_items.c.taken)
        .order_by(review_items.c.id)
    ).all()
    verdicts_of = []
    for item in ready:
        verdicts = ANNOTATOR_VERDICTS.run(connection, {"item": item.id}).scalars()
        verdicts_of.append(maybe_finalise(connection, item, verdicts=verdicts))
    return verdicts_of


def _held(connection: Connection, change: KChange, opened: tuple[Any, ...]) -> None:
    """The open items whose k stays above the one asked for until the people holding them
    undecided decide, and who those people are."""
    holding = connection.execute(
        select(review_items.c.id, assignments.c.annotator)
        .join(assignments, assignments.c.item_id == review_items.c.id)
        .where(*opened, review_items.c.k > change.k, assignments.c.decided_at.is_(None))
    ).all()
    change.held = len({item_id for item_id, _ in holding})
    change.holders = sorted(Counter(who for _, who in holding))
