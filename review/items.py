"""Review items inside a write transaction: the item's row, the sample it shows (a gold task
shows its stored copy), and making its result final once it has every decision it needs.

The sample row and the item change in the same transaction, so no decision is half-applied.
The statements are built once, with bound parameters, and run on the driver's cursor
(storage/prepared.py): SQLAlchemy's per-execution work costs more than running them on an index,
and a review request runs several of them. SHOWN_PRESENT, which takes an IN list, runs as usual.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, case, exists, func, null, select
from sqlalchemy.engine import Connection

from synthgate.errors import InputError
from synthgate.review import adjudication
from synthgate.samples import Sample
from synthgate.storage.prepared import Prepared
from synthgate.storage.store import sample_json
from synthgate.storage.tables import (
    decisions,
    gold_answers,
    review_batches,
    review_items,
    samples,
)

# review_items.id is a 32-bit column on PostgreSQL: a number beyond it names no item (and must
# never reach the database as an out-of-range parameter)
MAX_ITEM_ID = 2**31 - 1
IDS_PER_QUERY = 500  # item ids bound in one IN (...): well within SQLite's 32,766 variables
# A sample's gold items are keyed by one of these and its id: review gold's, and a honeypot made
# of it (enqueue.py); the blind rule (claims.py) and the blocked items (stats.py) read both.
GOLD = "gold:"
HONEYPOT = "honeypot:"
GOLD_KEYS = (GOLD, HONEYPOT)

ITEM = Prepared(select(review_items).where(review_items.c.id == bindparam("item")))
# An item with the sample it shows: the stored copy for gold (review_gold), else the live one.
SHOWING = review_items.outerjoin(
    gold_answers, gold_answers.c.item_id == review_items.c.id
).outerjoin(samples, samples.c.id == review_items.c.sample_id)
# The item's modality and the labels its batch keeps for a fix (`own`), or, for a batch that
# keeps none, those every batch keeps (`other`, a row each; fix_labels_of reads them). The
# second join is empty for a batch that keeps its own: one row, as one lookup would give.
OWN_BATCH = review_batches.alias("own")
ITEM_LABELS = Prepared(
    select(
        review_items.c.modality,
        OWN_BATCH.c.labels.label("own"),
        review_batches.c.labels.label("other"),
    )
    .select_from(
        review_items.outerjoin(
            OWN_BATCH, OWN_BATCH.c.batch_id == review_items.c.batch_id
        ).outerjoin(
            review_batches, OWN_BATCH.c.labels.is_(None) & review_batches.c.labels.is_not(None)
        )
    )
    .where(review_items.c.id == bindparam("item"))
)
# The same for a batch by its id: its row, or, when it keeps no labels, every batch's that does.
BATCH_LABELS = Prepared(
    select(review_batches.c.batch_id, review_batches.c.labels).where(
        (review_batches.c.batch_id == bindparam("batch"))
        | (
            review_batches.c.labels.is_not(None)
            & ~exists().where(
                OWN_BATCH.c.batch_id == bindparam("batch"), OWN_BATCH.c.labels.is_not(None)
            )
        )
    )
)
# the item and the JSON of the sample it shows
SHOWN = Prepared(
    select(review_items, func.coalesce(gold_answers.c.shown, samples.c.data).label("shown"))
    .select_from(SHOWING)
    .where(review_items.c.id == bindparam("item"))
)
# Items as shown_problem reads them (id, sample_id, shown), `shown` 1 where SHOWN has a
# sample's JSON, else None, without touching the JSON (both JSON columns are NOT NULL: a row
# there is a sample there). Many ids to a query (an import checks 100k tasks that carry no
# annotation): an IN list, which a Prepared statement cannot expand.
SHOWN_PRESENT = select(
    review_items.c.id,
    review_items.c.sample_id,
    case((gold_answers.c.item_id.is_not(None) | samples.c.id.is_not(None), 1)).label("shown"),
).select_from(SHOWING)
ANNOTATOR_DECISIONS = (
    select(decisions)
    .where(decisions.c.item_id == bindparam("item"), decisions.c.role == "annotator")
    .order_by(decisions.c.decided_at, decisions.c.id)
)
# the verdicts alone: counting them needs none of the JSON columns (levels, labels)
ANNOTATOR_VERDICTS = Prepared(
    select(decisions.c.verdict)
    .where(decisions.c.item_id == bindparam("item"), decisions.c.role == "annotator")
    .order_by(decisions.c.decided_at, decisions.c.id)
)
# moved ahead of every undisputed item once (priorities of undisputed items are >= 0)
DISPUTED = Prepared(
    review_items.update()
    .where(review_items.c.id == bindparam("item"), review_items.c.priority >= 0)
    .values(priority=review_items.c.priority - 2)
)
# An item closed (final, or waiting for adjudication) has no holder a claim may seek.
SET_STATUS = Prepared(
    review_items.update()
    .where(review_items.c.id == bindparam("item"))
    .values(status=bindparam("status"), final_verdict=bindparam("verdict"), holder=null())
)
SET_SAMPLE_STATEMENT = (
    samples.update()
    .where(samples.c.id == bindparam("sample"))
    .values(status=bindparam("sample_status"), score=bindparam("score"), data=bindparam("data"))
)
SET_SAMPLE = Prepared(SET_SAMPLE_STATEMENT)
# PostgreSQL: the sample's update rides on the item's as a WITH clause
FINALISE = Prepared(SET_STATUS.statement.add_cte(SET_SAMPLE_STATEMENT.cte("final_sample")))


def item_number(item_id: Any) -> int | None:
    """`item_id` as an int, or None when no item can have it (not an integer, a bool, zero or
    less, or beyond the column): such a value names no item, and must not reach the database."""
    try:
        number = None if isinstance(item_id, bool) else operator.index(item_id)
    except TypeError:
        return None
    return number if number is not None and 0 < number <= MAX_ITEM_ID else None


def no_item(item_id: Any) -> InputError:
    """The error for an id that names no item of the queue."""
    return InputError(f"no review item {item_id}")


def check_item_id(item_id: int) -> int:
    """`item_id` as an int (`item_number`), or an `InputError` when no item can have it."""
    number = item_number(item_id)
    if number is None:
        raise no_item(item_id)
    return number


def item_row(connection: Connection, item_id: int) -> Any:
    """The item's row; an unknown id is an `InputError`."""
    item = ITEM.run(connection, {"item": check_item_id(item_id)}).first()
    if item is None:
        raise no_item(item_id)
    return item


def shown_row(connection: Connection, item_id: int) -> Any:
    """The item's row with the sample it shows (SHOWN: one query, not yet parsed); an unknown
    id is an `InputError`."""
    row = SHOWN.run(connection, {"item": check_item_id(item_id)}).first()
    if row is None:
        raise no_item(item_id)
    return row


def shown_problems(connection: Connection, item_ids: Iterable[int]) -> dict[int, str]:
    """What `shown_row` and `parse_shown` refuse for each of these items they would refuse
    (no such item, its sample gone), read a few hundred to a query, no sample's JSON read."""
    found = {}
    ids = list(dict.fromkeys(item_ids))
    for start in range(0, len(ids), IDS_PER_QUERY):
        numbers = {item_id: item_number(item_id) for item_id in ids[start : start + IDS_PER_QUERY]}
        wanted = [n for n in numbers.values() if n is not None]
        query = SHOWN_PRESENT.where(review_items.c.id.in_(wanted))
        rows = {row.id: row for row in connection.execute(query)} if wanted else {}
        for item_id, number in numbers.items():
            row = rows.get(number)
            problem = str(no_item(item_id)) if row is None else shown_problem(row)
            if problem is not None:
                found[item_id] = problem
    return found


def item_and_sample(connection: Connection, item_id: int) -> tuple[Any, Sample]:
    """The item's row and the sample it shows, in one query; an unknown id is an `InputError`.
    The sample is parsed anew: the caller may change it."""
    row = shown_row(connection, item_id)
    return row, parse_shown(row)


def parse_shown(row: Any) -> Sample:
    """The sample of a row read with SHOWN (its `shown` column), parsed anew."""
    problem = shown_problem(row)
    if problem is not None:
        raise InputError(problem)
    return Sample.model_validate_json(row.shown)


def shown_problem(row: Any) -> str | None:
    """Why a row read with SHOWN has no sample to show, or None when it has one."""
    if row.shown is None:
        return f"item {row.id}: sample {row.sample_id} is not in the database"
    return None


def batch_labels(connection: Connection, batch_id: str, modality: str) -> list[str]:
    """The labels a fix of the batch's items of `modality` may use (fix_labels_of), kept when
    the batch was enqueued: object classes for images, span labels for texts."""
    rows = BATCH_LABELS.run(connection, {"batch": batch_id}).all()
    own = next((r.labels for r in rows if r.batch_id == batch_id), None)
    return fix_labels_of(own, [r.labels for r in rows if r.batch_id != batch_id], modality)


def item_labels(connection: Connection, item_id: int) -> list[str]:
    """`batch_labels` of the item's batch and modality, in one query (an annotator's every
    task is told them); an unknown id is an `InputError`."""
    rows = ITEM_LABELS.run(connection, {"item": check_item_id(item_id)}).all()
    if not rows:
        raise no_item(item_id)
    return fix_labels_of(rows[0].own, [r.other for r in rows], rows[0].modality)


def fix_labels_of(own: Any, others: Iterable[Any], modality: str) -> list[str]:
    """The labels of `modality` a fix may use: `own`, those the item's batch keeps, or, for a
    batch that keeps none (gold put in apart from a batch, or a batch enqueued before they were
    kept), every batch's (`others`) together. A task shows them (the review page's Fix form,
    the API's `fix_labels`), so gold must show what real work does: with one batch in the queue,
    the very list its items show; no list at all would tell the gold apart at a glance."""
    if own is not None:
        return labels_of(own, modality)
    return sorted({label for labels in others if labels for label in labels_of(labels, modality)})


def labels_of(labels: Any, modality: str) -> list[str]:
    """The labels of `modality` in a `review_batches.labels` value. A batch enqueued while they
    were kept as one list of both kinds keeps that list for either until `review enqueue`
    runs again."""
    if isinstance(labels, dict):
        return list(labels.get(modality) or [])
    return list(labels or [])


def shown_sample(connection: Connection, item: Any) -> Sample:
    """The sample the item shows annotators: the stored copy for gold, else the live sample."""
    return item_and_sample(connection, item.id)[1]


def maybe_finalise(
    connection: Connection,
    item: Any,
    shown: Sample | None = None,
    verdicts: list[str] | None = None,
) -> str | None:
    """Once the item has `k` annotator decisions: final on agreement, else to adjudication; a
    fix is final only with labels more than half of them agree on (adjudication.agreed_fix:
    boxes a pixel or two apart are one fix), so fixes that differ go to adjudication too.
    `shown`: the item's sample, `verdicts`: its annotators' verdicts, when the caller has read
    them already. The final verdict, or None (not finished, or sent to adjudication)."""
    if verdicts is None:
        verdicts = ANNOTATOR_VERDICTS.run(connection, {"item": item.id}).scalars()
    if len(verdicts) < item.k:
        if len(set(verdicts)) > 1:  # its annotators disagree: the rest of its decisions first
            DISPUTED.run(connection, {"item": item.id})
        return None
    verdict = adjudication.resolve(verdicts)
    rows: list[dict[str, Any]] = [{"verdict": v} for v in verdicts]
    if verdict == "fix":  # a fix brings its corrected labels: the one a majority agrees with
        said = connection.execute(ANNOTATOR_DECISIONS, {"item": item.id})
        fix = adjudication.agreed_fix([dict(r._mapping) for r in said])
        verdict, rows = (None, []) if fix is None else ("fix", [fix])
    if verdict is None:
        SET_STATUS.run(connection, {"item": item.id, "status": "adjudication", "verdict": None})
        return None
    finalise(connection, item, verdict, rows, shown)
    return verdict


def finalise(
    connection: Connection,
    item: Any,
    verdict: str,
    rows: list[dict[str, Any]],
    shown: Sample | None = None,
) -> None:
    """Write the final verdict on the sample row and close the item."""
    sample = shown if shown is not None else shown_sample(connection, item)
    final = adjudication.final_sample(sample, verdict, rows)
    # the sample row and the item change in one transaction: no decision is half-applied
    values = {
        "sample": final.id,
        "sample_status": final.status,
        "score": final.report.score if final.report else None,
        "data": sample_json(final),
        "item": item.id,
        "status": "final",
        "verdict": verdict,
    }
    if connection.dialect.name == "postgresql":  # one round trip (queue.py assign_and_show)
        FINALISE.run(connection, values)
    else:
        SET_SAMPLE.run(connection, values)
        SET_STATUS.run(connection, values)
