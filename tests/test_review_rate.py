"""An annotator's decisions_per_hour (review/stats.py): a rate only once their timed work spans
a minute. Four decisions a script makes within milliseconds read as millions an hour."""

from __future__ import annotations

from pathlib import Path

from review_fixtures import ACCEPT, fill, work
from sqlalchemy import update
from typer.testing import CliRunner

from synthgate.cli import app
from synthgate.review.queue import ReviewQueue
from synthgate.storage.store import Store, sqlite_url
from synthgate.storage.tables import assignments


def _people(db: Path) -> dict:
    store = Store(sqlite_url(db))
    try:
        return ReviewQueue(store).stats()["annotators"]
    finally:
        store.close()


def test_decisions_within_seconds_give_no_rate_and_a_minute_of_work_gives_one(
    tmp_path: Path,
) -> None:
    db = tmp_path / "synthgate.db"
    store = Store(sqlite_url(db))
    fill(store, review=4, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.0)
    queue.enqueue_batch("b1")
    assert len(work(queue, "ann", lambda task: ACCEPT)) == 4
    store.close()
    assert _people(db)["ann"]["decisions_per_hour"] is None  # milliseconds of work
    shown = CliRunner().invoke(app, ["review", "stats", "--db", f"sqlite:///{db}"]).output
    cells = next(line.split("│") for line in shown.splitlines() if line.startswith("│ ann "))
    assert cells[-2].strip() == "-", shown  # the decisions/h column
    # no gold (gold rate 0): no accuracy to give, "-" as the admin page shows it, not
    # "undefined", which read as a failed measurement
    assert cells[-3].strip() == "-", shown

    # the same four decisions spread over two minutes: 4 in 120 s is 120 an hour
    store = Store(sqlite_url(db))
    with store.engine.begin() as connection:
        first = connection.execute(assignments.select()).first()
        assert first is not None
        connection.execute(
            update(assignments)
            .where(assignments.c.id == first.id)
            .values(assigned_at=first.decided_at - 120)
        )
    store.close()
    assert _people(db)["ann"]["decisions_per_hour"] == 120.0
