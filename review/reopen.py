"""Taking decisions back (`synthgate review reopen`, ReviewQueue.reopen): every decision of an
annotator found careless, or every decision on some items (or that annotator's on them).

Nothing reviewed is lost: each decision taken back moves, in one write transaction with the
rest, from review_decisions to review_taken_back, with its assignment's times and who took it
back, when and why. Every reader of the decisions (stats, agreement, verdicts, exports, Label
Studio, calibration) reads review_decisions alone, so leaves it out unchanged. Each item it
left is made again from the decisions that remain, as they would have made it:

- its sample first goes back to how review found it (status `review`, or `accepted` for an
  audited sample; a fix's labels back to those it replaced, kept in the decision as `original`);
- an adjudicator's decision that remains is final by itself, as `adjudicate` made it;
- else its annotators' verdicts: with k of them or more, the majority's is final and a split
  awaits adjudication (items.py `maybe_finalise`); with fewer, the item is open again;
- the claim's kept counts follow the assignments taken off it (claims.py COUNT_OUT: `taken`,
  `holder`; each annotator's count of tasks given), and an item `review set-k` kept a larger k
  for gets the k asked, as a release gives it (set_k.lower_released). A claim hands an open item
  out again as any other, but not to an annotator named (`annotator`): their rows are kept
  `benched`, and the claim passes the items they were taken back from (claims.py NOT_BENCHED;
  a Label Studio import of theirs is refused too, and stats count them out of who may take the
  item: blocked_items). Reopened by item alone (a bad image, say), nobody is benched: the
  item goes to anyone who does not hold it, those whose decisions were taken back too.

Decisions on gold tasks are not taken back: they are what showed the annotator careless, and
stay scored (their gold accuracy in `review stats` and `review agreement`); a gold task is never
final, so there is nothing to reopen. A write transaction per CHUNK_ITEMS items, in id order,
the items locked as a release locks them; `dry_run` runs the same and rolls it back.

Not one transaction for the whole reopen: the chunks are not there for SQL's parameter limits
but for the locks a transaction holds until it ends. A reopen costs about 1.3 ms an item on
SQLite and 4.7 ms on PostgreSQL (3,000 items, session 31), so one transaction over a busy
annotator's history would hold SQLite's write lock (BEGIN IMMEDIATE) for as long, every claim
and decision waiting behind it (another process's give up after busy_timeout, 30 s), and on
PostgreSQL hold the items' rows, which decisions wait for and claims skip, and a claim that
finds only locked rows gives up after some 9 s (review set-k is chunked for the same). Each
chunk leaves its items whole (the counts, samples and benched rows agree); a failure stops the
reopen after the chunks committed before it, every item up to the last of them reopened, and
a note on the error says so and how to take back the rest.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, union
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from synthgate.errors import InputError, lone_surrogate_in
from synthgate.review import set_k
from synthgate.review.claims import COUNT_OUT, count_given
from synthgate.review.decision import check_annotator
from synthgate.review.items import (
    ANNOTATOR_VERDICTS,
    SET_SAMPLE,
    SET_STATUS,
    check_item_id,
    finalise,
    maybe_finalise,
    no_item,
    shown_sample,
)
from synthgate.samples import ObjectLabel, Sample, Span
from synthgate.storage.store import sample_json
from synthgate.storage.tables import (
    annotator_counts,
    assignments,
    decisions,
    review_items,
    taken_back,
)

if TYPE_CHECKING:
    from synthgate.review.queue import ReviewQueue

CHUNK_ITEMS = 1000  # items per write transaction, as set-k takes them: locks held ~1-5 s
# the status a sample had while its item waited for review, by the item's reason
STATUS_UNDER_REVIEW = {"review": "review", "audit": "accepted"}


@dataclass(frozen=True)
class ItemChange:
    """One item a reopen changed: the people whose decisions were taken back, and its status
    and final verdict before and after."""

    item_id: int
    sample_id: str
    annotators: list[str]
    before: tuple[str, str | None]
    after: tuple[str, str | None]


@dataclass
class Reopened:
    """What `reopen` did (or, with `dry_run`, would do): `decisions` taken back from `items`;
    `gold_kept`: the annotator's decisions on gold tasks, kept scored; `holding`: the items
    they hold undecided (no decision to take back: theirs counts when it comes)."""

    annotator: str | None
    asked: list[int]
    dry_run: bool
    decisions: int = 0
    items: list[ItemChange] = field(default_factory=list)
    gold_kept: int = 0
    holding: list[int] = field(default_factory=list)  # items the annotator holds undecided

    def now(self, status: str) -> list[int]:
        """The items that are `status` after the reopen."""
        return [c.item_id for c in self.items if c.after[0] == status]

    @property
    def were_final(self) -> list[int]:
        """Items whose final verdict had reached their sample (and any dataset made since)."""
        return [c.item_id for c in self.items if c.before[0] == "final"]


class _DryRun(Exception):
    """Rolls a dry run's transaction back."""


def reopen(
    queue: ReviewQueue,
    items: Iterable[int] = (),
    *,
    annotator: str | None = None,
    by: str,
    reason: str = "",
    dry_run: bool = False,
) -> Reopened:
    """Take back the decisions of `annotator` (on `items`, else on every item but gold tasks),
    or every decision on `items`; `by`: who takes them back, `reason`: why (both kept with
    them). An unknown annotator or item, a gold task, or an item without such decisions is an
    `InputError` naming it, raised before anything changes."""
    by = check_annotator(by, "by")
    who = check_annotator(annotator) if annotator is not None else None
    _check_reason(reason)
    asked = list(dict.fromkeys(check_item_id(item) for item in items))
    if who is None and not asked:
        raise InputError(
            "name the items to reopen, or {annotator=NAME} (every decision of theirs), or both "
            "(theirs on those items)",
            options=("annotator=NAME",),
        )
    result = Reopened(annotator=who, asked=asked, dry_run=dry_run)
    with queue.store.engine.connect() as connection:
        if who is not None:
            _check_known(connection, who)
            result.gold_kept = _gold_decisions(connection, who, asked)
            result.holding = _held_undecided(connection, who, asked)
        if asked:
            _check_items(connection, asked, who)
        ids = sorted(asked) or _items_decided_by(connection, who)
    now = time.time()
    for start in range(0, len(ids), CHUNK_ITEMS):
        committed = len(result.items)
        try:
            with queue.write() as connection:
                part = ids[start : start + CHUNK_ITEMS]
                taken = _take_back(queue, connection, part, who, by, reason, now, result)
                if dry_run:
                    raise _DryRun
        except _DryRun:
            pass
        except BaseException as error:  # Ctrl-C too: the chunks before it stay committed
            if start and not dry_run:
                error.add_note(_stopped(result, committed, ids[start - 1], bool(asked)))
            raise
        result.decisions += taken
    result.items.sort(key=lambda change: change.item_id)
    return result


def _stopped(result: Reopened, items: int, last: int, named: bool) -> str:
    """What a reopen that failed after committing some chunks had done, and how to finish."""
    rest = "name only the items after it" if named else "the same reopen takes back the rest"
    return (
        f"review reopen stopped: the decisions on the items up to item {last} were taken back "
        f"and committed before this failure ({result.decisions} decisions on {items} items, a "
        f"write transaction per {CHUNK_ITEMS} items); the items after it are unchanged: {rest}"
    )


def _check_reason(reason: str) -> None:
    """Refuse a reason no database keeps (PostgreSQL's text holds no NUL; no UTF-8 text holds
    a lone surrogate, which a command line's undecodable bytes become), before anything
    changes."""
    if lone_surrogate_in(reason) is not None:
        raise InputError(
            field="reason",
            problem="holds a lone surrogate (an unpaired \\ud800-\\udfff escape), which is no "
            "character",
            fix="fix or drop the escape",
        )
    if "\x00" in reason:
        raise InputError(field="reason", problem="holds a NUL character", fix="drop it")


def _check_known(connection: Connection, who: str) -> None:
    """Refuse a name the queue never gave work to nor recorded a decision of."""
    known = connection.execute(
        union(
            select(decisions.c.annotator).where(decisions.c.annotator == who),
            select(taken_back.c.annotator).where(taken_back.c.annotator == who),
            select(annotator_counts.c.annotator).where(annotator_counts.c.annotator == who),
        )
    ).first()
    if known is None:
        raise InputError(
            field="annotator",
            value=who,
            problem="made no decision in this review queue",
            fix="name an annotator `synthgate review stats` lists (names are case-sensitive)",
        )


def _gold_decisions(connection: Connection, who: str, asked: list[int]) -> int:
    """How many of the annotator's decisions (on `asked`, else anywhere) are on gold tasks."""
    query = (
        select(func.count())
        .select_from(decisions.join(review_items, review_items.c.id == decisions.c.item_id))
        .where(decisions.c.annotator == who, review_items.c.kind == "gold")
    )
    if asked:
        query = query.where(decisions.c.item_id.in_(asked))
    return int(connection.execute(query).scalar_one())


def _held_undecided(connection: Connection, who: str, asked: list[int]) -> list[int]:
    """The items (of `asked`, when named) the annotator holds undecided, in id order."""
    query = select(assignments.c.item_id).where(
        assignments.c.annotator == who, assignments.c.decided_at.is_(None)
    )
    if asked:
        query = query.where(assignments.c.item_id.in_(asked))
    return list(connection.execute(query.order_by(assignments.c.item_id)).scalars())


def _items_decided_by(connection: Connection, who: str | None) -> list[int]:
    """The items other than gold tasks holding a decision of the annotator, in id order."""
    return list(
        connection.execute(
            select(decisions.c.item_id)
            .join(review_items, review_items.c.id == decisions.c.item_id)
            .where(decisions.c.annotator == who, review_items.c.kind == "sample")
            .distinct()
            .order_by(decisions.c.item_id)
        ).scalars()
    )


def _check_items(connection: Connection, asked: list[int], who: str | None) -> None:
    """Refuse an item the queue lacks, a gold task, or one without decisions to take back (the
    annotator's, when named)."""
    rows = {
        row.id: row
        for row in connection.execute(
            select(review_items.c.id, review_items.c.kind).where(review_items.c.id.in_(asked))
        )
    }
    scope: list[ColumnElement[bool]] = [decisions.c.item_id.in_(asked)]
    if who is not None:
        scope.append(decisions.c.annotator == who)
    decided = set(connection.execute(select(decisions.c.item_id).where(*scope)).scalars())
    for item_id in asked:
        row = rows.get(item_id)
        if row is None:
            raise InputError(f"{no_item(item_id)}; `synthgate review stats` counts the items")
        if row.kind == "gold":
            raise InputError(
                f"item {item_id} is a gold task: its decisions score each annotator against "
                "its known answer and stay (a gold task is never final: nothing to reopen); "
                "name real work, or {annotator=NAME} alone (their gold stays scored)",
                options=("annotator=NAME",),
            )
        if item_id not in decided:
            whose = f"{who} made no decision on it" if who is not None else "it has no decisions"
            earlier = connection.execute(
                select(func.count()).where(taken_back.c.item_id == item_id)
            ).scalar_one()
            if earlier:
                whose += f" ({earlier} taken back before)"
            raise InputError(f"item {item_id}: nothing to reopen, {whose}; drop it")


def _take_back(
    queue: ReviewQueue,
    connection: Connection,
    item_ids: list[int],
    who: str | None,
    by: str,
    reason: str,
    now: float,
    result: Reopened,
) -> int:
    """Take back the decisions on `item_ids` (`who`'s alone, when named) in the caller's write
    transaction, and make each item anew from the rest; returns how many were taken back."""
    # locked in id order, as release_stale and set-k lock them, before their decisions
    locking = select(review_items).where(
        review_items.c.id.in_(item_ids), review_items.c.kind == "sample"
    )
    if queue.dialect == "postgresql":
        locking = locking.with_for_update()
    items = {row.id: row for row in connection.execute(locking.order_by(review_items.c.id))}
    on_items = (decisions.c.item_id.in_(list(items)),)
    said: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in connection.execute(
        select(decisions).where(*on_items).order_by(decisions.c.decided_at, decisions.c.id)
    ):
        said[row.item_id].append(dict(row._mapping))
    given_back: Counter[str] = Counter()
    changed: dict[int, tuple[Any, list[str]]] = {}
    count = 0
    for item_id, item in items.items():
        going = [d for d in said[item_id] if who is None or d["annotator"] == who]
        if not going:  # another reopen took them back since they were listed
            continue
        people = [d["annotator"] for d in going if d["role"] == "annotator"]
        times = _move(connection, item_id, going, people, by, reason, now, benched=bool(who))
        count += len(going)
        given_back.update(list(times))  # the assignments deleted: tasks given less
        _remake(connection, item, said[item_id], going, len(times))
        changed[item_id] = (item, sorted({d["annotator"] for d in going}))
    # as a release does: an item set-k kept a larger k for gets the k asked
    set_k.lower_released(connection, sorted(changed))
    for annotator, n in sorted(given_back.items()):  # in name order, as release_stale
        count_given(queue.dialect).run(connection, {"annotator": annotator, "change": -n})
    after = {
        row.id: (row.status, row.final_verdict)
        for row in connection.execute(
            select(review_items.c.id, review_items.c.status, review_items.c.final_verdict).where(
                review_items.c.id.in_(list(changed))
            )
        )
    }
    for item_id, (item, people) in changed.items():
        result.items.append(
            ItemChange(
                item_id=item_id,
                sample_id=item.sample_id,
                annotators=people,
                before=(item.status, item.final_verdict),
                after=after[item_id],
            )
        )
    return count


def _move(
    connection: Connection,
    item_id: int,
    going: list[dict[str, Any]],
    people: list[str],
    by: str,
    reason: str,
    now: float,
    *,
    benched: bool,
) -> dict[str, tuple[float, float | None]]:
    """Move the decisions `going` of the item to review_taken_back with the times of their
    assignments (those of `people`, deleted); `benched`: no claim hands the item to their
    annotators again. The times by annotator."""
    times = {
        row.annotator: (row.assigned_at, row.decided_at)
        for row in connection.execute(
            select(
                assignments.c.annotator, assignments.c.assigned_at, assignments.c.decided_at
            ).where(assignments.c.item_id == item_id, assignments.c.annotator.in_(people))
        )
    }
    rows = []
    for decision in going:
        assigned, submitted = (
            times.get(decision["annotator"], (None, None))
            if decision["role"] == "annotator"
            else (None, None)
        )
        kept = {key: value for key, value in decision.items() if key != "id"}
        rows.append(
            {
                **kept,
                "decision_id": decision["id"],
                "assigned_at": assigned,
                "submitted_at": submitted,
                "taken_back_by": by,
                "taken_back_at": now,
                "reason": reason,
                "benched": benched,
            }
        )
    connection.execute(taken_back.insert(), rows)
    connection.execute(decisions.delete().where(decisions.c.id.in_([d["id"] for d in going])))
    if times:
        connection.execute(
            assignments.delete().where(
                assignments.c.item_id == item_id, assignments.c.annotator.in_(list(times))
            )
        )
    return times


def _remake(
    connection: Connection,
    item: Any,
    said: list[dict[str, Any]],
    going: list[dict[str, Any]],
    released: int,
) -> None:
    """Make the item anew from the decisions left on it, `released` people taken off it."""
    values = {"item": item.id, "status": "open", "verdict": None}
    SET_STATUS.run(connection, values)  # open first: COUNT_OUT keeps a holder of open items only
    COUNT_OUT.run(connection, {"item": item.id, "released": released})
    sample = shown_sample(connection, item)
    if item.status == "final":
        sample = _as_under_review(connection, item, sample, said)
    kept_ids = {d["id"] for d in going}
    left = [d for d in said if d["id"] not in kept_ids]
    adjudicated = [d for d in left if d["role"] == "adjudicator"]
    current = connection.execute(select(review_items).where(review_items.c.id == item.id)).one()
    if adjudicated:  # an adjudicator's word is final by itself, as `adjudicate` made it
        finalise(connection, current, adjudicated[-1]["verdict"], adjudicated[-1:], sample)
    else:
        verdicts = ANNOTATOR_VERDICTS.run(connection, {"item": item.id}).scalars()
        maybe_finalise(connection, current, sample, verdicts)


def _as_under_review(
    connection: Connection, item: Any, final: Sample, said: list[dict[str, Any]]
) -> Sample:
    """The sample of a final item as review found it, written back: the status it waited with
    and, after a fix, the labels the fix replaced (every fix of an item keeps the same)."""
    sample = final.model_copy()
    sample.status = STATUS_UNDER_REVIEW[item.reason]  # type: ignore[assignment]
    fixed = next((d for d in said if d["verdict"] == "fix"), None)
    if item.final_verdict == "fix" and fixed is not None and fixed["original"] is not None:
        if sample.spec.modality == "image":
            sample.objects = [ObjectLabel.model_validate(o) for o in fixed["original"]]
        else:
            sample.spans = [Span.model_validate(s) for s in fixed["original"]]
    SET_SAMPLE.run(
        connection,
        {
            "sample": sample.id,
            "sample_status": sample.status,
            "score": sample.report.score if sample.report else None,
            "data": sample_json(sample),
        },
    )
    return sample
