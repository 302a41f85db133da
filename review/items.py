"""Review items inside a write transaction: the item's row, the sample it shows (a gold task
shows its stored copy), and making its result final once it has every decision it needs.

The sample row and the item change in the same transaction, so no decision is half-applied.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from synthgate.errors import InputError
from synthgate.review import adjudication
from synthgate.samples import Sample
from synthgate.storage.tables import decisions, gold_answers, review_items, samples


def item_row(connection: Connection, item_id: int) -> Any:
    """The item's row; an unknown id is an `InputError`."""
    item = connection.execute(select(review_items).where(review_items.c.id == item_id)).first()
    if item is None:
        raise InputError(f"no review item {item_id}")
    return item


def shown_sample(connection: Connection, item: Any) -> Sample:
    """The sample the item shows annotators: the stored copy for gold, else the live sample."""
    if item.kind == "gold":
        shown = connection.execute(
            select(gold_answers.c.shown).where(gold_answers.c.item_id == item.id)
        ).scalar_one()
        return Sample.model_validate_json(shown)
    data = connection.execute(select(samples.c.data).where(samples.c.id == item.sample_id)).scalar()
    if data is None:
        raise InputError(f"item {item.id}: sample {item.sample_id} is not in the database")
    return Sample.model_validate_json(data)


def maybe_finalise(connection: Connection, item: Any) -> None:
    """Once the item has `k` annotator decisions: final on agreement, else to adjudication."""
    rows = [
        dict(r._mapping)
        for r in connection.execute(
            select(decisions)
            .where(decisions.c.item_id == item.id, decisions.c.role == "annotator")
            .order_by(decisions.c.decided_at, decisions.c.id)
        )
    ]
    if len(rows) < item.k:
        return
    verdict = adjudication.resolve([r["verdict"] for r in rows])
    if verdict is None:
        connection.execute(
            review_items.update().where(review_items.c.id == item.id).values(status="adjudication")
        )
        return
    finalise(connection, item, verdict, rows)


def finalise(connection: Connection, item: Any, verdict: str, rows: list[dict[str, Any]]) -> None:
    """Write the final verdict on the sample row and close the item."""
    sample = shown_sample(connection, item)
    final = adjudication.final_sample(sample, verdict, rows)
    # the sample row and the item change in one transaction: no decision is half-applied
    connection.execute(
        samples.update()
        .where(samples.c.id == final.id)
        .values(
            status=final.status,
            score=final.report.score if final.report else None,
            data=final.model_dump_json(),
        )
    )
    connection.execute(
        review_items.update()
        .where(review_items.c.id == item.id)
        .values(status="final", final_verdict=verdict)
    )
