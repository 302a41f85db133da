"""Queue statistics: depth, decisions, per-annotator throughput and accuracy on gold tasks, and
how many final verdicts changed the rubric's route (`route_changes`).

An annotator's `decisions_per_hour` counts their decisions from the first task they took to the
last they decided, of those whose time on the task is known: one imported from Label Studio is
timed by its `created_at` and `lead_time`, and without them was assigned when it was decided
(review/interop.py); such decisions are counted as `untimed` instead.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from synthgate.review import gold
from synthgate.review.report import ROUTE_OF_VERDICT
from synthgate.storage.tables import assignments, decisions, gold_answers, review_items


def route_changes(connection: Connection) -> dict[str, Any]:
    """How many final verdicts sent a sample elsewhere than the rubric's route, and where."""
    final = connection.execute(
        select(review_items.c.route, review_items.c.final_verdict, func.count())
        .where(review_items.c.kind == "sample", review_items.c.status == "final")
        .group_by(review_items.c.route, review_items.c.final_verdict)
    ).all()
    moves: dict[str, int] = defaultdict(int)
    for route, verdict, n in final:
        if route is not None and ROUTE_OF_VERDICT[verdict] != route:
            moves[f"{route} -> {ROUTE_OF_VERDICT[verdict]}"] += n
    return {
        "final": sum(n for _, _, n in final),
        "with_route": sum(n for route, _, n in final if route is not None),
        "changed": sum(moves.values()),
        "moves": dict(sorted(moves.items())),
    }


def annotators_per_item(connection: Connection, k: int) -> int:
    """The k the queue's sample items ask for (each keeps the k it was enqueued with; the most
    common one among the open items, else among all, the larger on a tie), or `k`, what new
    items get, while there are none: old batches finished at k = 2 do not hide an open one at 3."""
    counts = connection.execute(
        select(review_items.c.k, review_items.c.status, func.count())
        .where(review_items.c.kind == "sample")
        .group_by(review_items.c.k, review_items.c.status)
    ).all()
    if not counts:
        return k
    open_items = [(each, n) for each, status, n in counts if status != "final"]
    asked: Counter[int] = Counter()
    for each, n in open_items or [(each, n) for each, _, n in counts]:
        asked[each] += n
    return max(asked, key=lambda each: (asked[each], each))


def queue_stats(connection: Connection, k: int) -> dict[str, Any]:
    by_status = {
        (kind, status): n
        for kind, status, n in connection.execute(
            select(review_items.c.kind, review_items.c.status, func.count()).group_by(
                review_items.c.kind, review_items.c.status
            )
        )
    }
    open_slots = connection.execute(
        select(func.coalesce(func.sum(review_items.c.k - review_items.c.taken), 0)).where(
            review_items.c.kind == "sample", review_items.c.status == "open"
        )
    ).scalar_one()
    people: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"assigned": 0, "decided": 0, "gold_decided": 0, "gold_correct": 0}
    )
    spans: dict[str, list[float]] = defaultdict(list)
    timed: Counter[str] = Counter()
    for who, assigned_at, decided_at in connection.execute(
        select(assignments.c.annotator, assignments.c.assigned_at, assignments.c.decided_at)
    ):
        people[who]["assigned"] += 1
        if decided_at is not None:
            people[who]["decided"] += 1
        if decided_at is not None and decided_at > assigned_at:
            timed[who] += 1
            spans[who] += [assigned_at, decided_at]
    for who, verdict, expected in connection.execute(
        select(decisions.c.annotator, decisions.c.verdict, gold_answers.c.expected)
        .join(gold_answers, gold_answers.c.item_id == decisions.c.item_id)
        .where(decisions.c.role == "annotator")
    ):
        people[who]["gold_decided"] += 1
        people[who]["gold_correct"] += int(gold.is_correct(verdict, expected))
    for who, row in people.items():
        row["gold_accuracy"] = (
            row["gold_correct"] / row["gold_decided"] if row["gold_decided"] else None
        )
        hours = (max(spans[who]) - min(spans[who])) / 3600 if spans[who] else 0.0
        row["decisions_per_hour"] = round(timed[who] / hours, 1) if hours > 0 else None
        row["untimed"] = row["decided"] - timed[who]
    return {
        "route_changes": route_changes(connection),
        # not the reading queue's k: `review stats` opens the queue with the default, and
        # serve with its own, while the items keep the k of `review enqueue -k`
        "annotators_per_item": annotators_per_item(connection, k),
        "items": {
            status: sum(n for (kind, s), n in by_status.items() if kind == "sample" and s == status)
            for status in ("open", "adjudication", "final")
        },
        "gold_items": sum(n for (kind, _), n in by_status.items() if kind == "gold"),
        "queue_depth": int(open_slots),
        "decisions": connection.execute(select(func.count()).select_from(decisions)).scalar_one(),
        "annotators": dict(sorted(people.items())),
    }
