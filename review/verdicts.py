"""What people decided, per reviewed sample, as the rubric's calibration reads it.

`reviewed_items(store, rubric=...)` gives one `Reviewed` per final sample item judged by that
rubric: the measurements its report kept (the worst value per measure), the rubric's route,
the route the final verdict implies (accept -> accepted, fix -> review, reject -> rejected) and
the level per criterion the deciding people gave: the lower median of the levels in the
decisions that carry the final verdict (the adjudicator's, when there was one). Items whose
report has no measurements (judged before reports kept them) or was made by another rubric are
counted in `Reviewed.skipped`, not returned.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from synthgate.review.adjudication import ROUTE_OF_VERDICT
from synthgate.samples import Sample
from synthgate.storage.store import Store
from synthgate.storage.tables import decisions, review_items, samples

CHUNK = 2000


@dataclass(frozen=True)
class Reviewed:
    """One reviewed sample: what the rubric measured and said, what people said."""

    item_id: int
    sample_id: str
    measurements: dict[str, float]
    rubric_route: str
    human_route: str
    human_levels: dict[str, int] = field(default_factory=dict)


@dataclass
class ReviewedItems:
    items: list[Reviewed]
    skipped: Counter[str]  # reason -> items left out


def consensus_levels(rows: Iterable[dict[str, Any]], verdict: str) -> dict[str, int]:
    """Per criterion, the lower median of the levels given with the final verdict (by the
    adjudicator when one decided)."""
    rows = list(rows)
    adjudicated = [r for r in rows if r["role"] == "adjudicator"]
    deciding = adjudicated or [r for r in rows if r["verdict"] == verdict]
    given: dict[str, list[int]] = defaultdict(list)
    for row in deciding:
        for criterion, level in (row["levels"] or {}).items():
            given[criterion].append(int(level))
    return {c: sorted(levels)[(len(levels) - 1) // 2] for c, levels in sorted(given.items())}


def reviewed_items(
    store: Store,
    *,
    rubric: str,
    batches: list[str] | None = None,
    latest: int | None = None,
) -> ReviewedItems:
    """Every final sample item of `batches` (default: all) whose report the rubric made; with
    `latest`, only among that many most recent final items."""
    found: list[Reviewed] = []
    skipped: Counter[str] = Counter()
    query = (
        select(
            review_items.c.id,
            review_items.c.sample_id,
            review_items.c.final_verdict,
            samples.c.data,
        )
        .join(samples, samples.c.id == review_items.c.sample_id)
        .where(review_items.c.kind == "sample", review_items.c.status == "final")
        .order_by(review_items.c.id)
    )
    if batches:
        query = query.where(review_items.c.batch_id.in_(batches))
    last = 0
    with store.engine.connect() as connection:
        if latest is not None:
            since = connection.execute(
                select(review_items.c.id)
                .where(review_items.c.kind == "sample", review_items.c.status == "final")
                .order_by(review_items.c.id.desc())
                .offset(latest)
                .limit(1)
            ).scalar()
            last = since or 0
        while True:
            rows = connection.execute(query.where(review_items.c.id > last).limit(CHUNK)).all()
            if not rows:
                break
            last = rows[-1].id
            said: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for decision in connection.execute(
                select(
                    decisions.c.item_id,
                    decisions.c.role,
                    decisions.c.verdict,
                    decisions.c.levels,
                ).where(decisions.c.item_id.in_([r.id for r in rows]))
            ):
                said[decision.item_id].append(dict(decision._mapping))
            for row in rows:
                # the sample row after review holds the final status; its report is the rubric's
                report = Sample.model_validate_json(row.data).report
                if report is None:
                    skipped["no rubric report"] += 1
                elif report.rubric != rubric:
                    skipped[f"judged by rubric {report.rubric}"] += 1
                elif not report.measurements:
                    skipped["report without measurements (judged by an older synthgate)"] += 1
                else:
                    found.append(
                        Reviewed(
                            item_id=row.id,
                            sample_id=row.sample_id,
                            measurements=dict(report.measurements),
                            rubric_route=report.route,
                            human_route=ROUTE_OF_VERDICT[row.final_verdict],
                            human_levels=consensus_levels(said[row.id], row.final_verdict),
                        )
                    )
    return ReviewedItems(found, skipped)
