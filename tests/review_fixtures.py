"""Shared pieces of the review queue tests: samples as the rubric leaves them, a filled store,
stock decisions, and a store opened on SQLite or PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from postgres_support import wipe
from sqlalchemy import select

from synthgate.review.queue import Decision, ReviewQueue, ReviewTask
from synthgate.samples import (
    CRITERIA,
    ObjectLabel,
    Provenance,
    RubricReport,
    Sample,
    SampleSpec,
    Span,
    sample_id,
)
from synthgate.storage.store import Store
from synthgate.storage.tables import assignments, review_items

TEXT = "Anna Berg from Acme GmbH called about order 4411."


def make_sample(
    index: int, status: str, *, modality: str = "image", audit: bool = False, score: float = 3.5
) -> Sample:
    """A sample as the rubric would leave it (status and report set by hand until it lands)."""
    route = {"review": "review", "accepted": "accepted", "rejected": "rejected"}[status]
    spec = SampleSpec(
        batch_id="b1",
        index=index,
        modality=modality,
        generator="procedural",
        category="circle",
        seed=index,
    )
    report = RubricReport(
        rubric="default", score=score, levels={c: 5 for c in CRITERIA}, route=route, audit=audit
    )
    common = {
        "id": sample_id("b1", modality, index),
        "spec": spec,
        "provenance": Provenance(generator="procedural", generator_version="1", seed=index),
        "report": report,
        "status": status,
    }
    if modality == "image":
        return Sample(
            **common,
            uri=f"images/{index}.png",
            width=64,
            height=48,
            objects=[
                ObjectLabel(category="circle", bbox=[4, 4, 10, 10], area=78.0),
                ObjectLabel(category="square", bbox=[30, 20, 12, 12], area=144.0),
            ],
        )
    return Sample(
        **common,
        text=TEXT,
        spans=[
            Span(start=0, end=9, label="PERSON", value="Anna Berg"),
            Span(start=15, end=24, label="ORG", value="Acme GmbH"),
        ],
    )


def fill(
    store: Store, *, review: int = 6, audit: int = 2, accepted: int = 12, modality: str = "image"
) -> None:
    rows, index = [], 0
    for status, n, is_audit in (
        ("review", review, False),
        ("accepted", audit, True),
        ("accepted", accepted, False),
    ):
        for _ in range(n):
            rows.append(make_sample(index, status, modality=modality, audit=is_audit))
            index += 1
    rows.append(make_sample(index, "rejected", modality=modality))
    store.upsert_samples(rows)


def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """The store a parametrized `store` fixture asks for: SQLite in `tmp_path`, or PostgreSQL
    on a scratch database (see conftest.py), emptied so that every test starts from nothing."""
    if request.param == "sqlite":
        return Store(f"sqlite:///{tmp_path / 'synthgate.db'}")
    url = request.getfixturevalue("postgres_scratch_url")
    wipe(url)
    return Store(url)


ACCEPT = Decision(verdict="accept", levels={"correctness": 5, "precision": 5})
REJECT = Decision(verdict="reject", levels={"correctness": 1}, comment="wrong class")


def fix_of(task: ReviewTask) -> Decision:
    if task.sample.spec.modality == "image":
        objects = [
            o.model_copy(update={"bbox": [5.0, 5.0, 8.0, 8.0]}) for o in task.sample.objects[:1]
        ]
        return Decision(verdict="fix", levels={"precision": 3}, objects=objects)
    return Decision(
        verdict="fix", levels={"precision": 3}, spans=[Span(start=0, end=4, label="PERSON")]
    )


def work(queue: ReviewQueue, annotator: str, choose) -> list[int]:
    seen = []
    while (task := queue.next_item(annotator)) is not None:
        seen.append(task.item_id)
        queue.decide(task.item_id, annotator, choose(task))
    return seen


def corrected(objects: list[ObjectLabel]) -> list[ObjectLabel]:
    """`objects` with a real correction, as a fix must make: the first box 1 px narrower, its
    mask dropped (the review page sends none for a box it moved)."""
    first, *rest = objects
    x, y, w, h = first.bbox
    return [first.model_copy(update={"bbox": [x, y, w - 1, h], "mask": None}), *rest]


SAMPLE_MET_AS_GOLD = make_sample(4, "review").id  # made gold, then enqueued as real work


def met_as_gold_by_everyone(store: Store, made: str = "review gold") -> tuple[ReviewQueue, int]:
    """Gold first: ann and bob answer the gold task of a sample (SAMPLE_MET_AS_GOLD, `made` by
    review gold or a honeypot at enqueue), then it is enqueued as real work (judged again, now
    for review); the queue (k = 2) and the sample's real item, the only item open."""
    fill(store, review=4, audit=0, accepted=1)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.9, seed=4)
    if made == "review gold":
        queue.add_gold(make_sample(4, "accepted"), expected=["accept"])
    queue.enqueue_batch("b1")
    kind = "gold" if made == "review gold" else "honeypot"
    with store.engine.connect() as connection:
        gold = connection.execute(
            select(review_items.c.id).where(review_items.c.key == f"{kind}:{SAMPLE_MET_AS_GOLD}")
        ).scalar_one()
    for who in ("ann", "bob"):
        assert gold in work(queue, who, lambda t: ACCEPT)
    assert queue.stats()["blocked"] == []  # nothing real of the sample yet
    store.upsert_samples([make_sample(4, "review")])
    assert queue.enqueue_batch("b1") == 1
    with store.engine.connect() as connection:
        real = connection.execute(
            select(review_items.c.id).where(review_items.c.key == f"sample:{SAMPLE_MET_AS_GOLD}")
        ).scalar_one()
    return queue, real


def kept_and_counted(store: Store) -> tuple[dict[int, int], dict[int, int]]:
    """Each item's kept count, and its assignments counted; checks its kept holder on the way
    (the one person holding an open sample item of k > 1 taken once, else none)."""
    with store.engine.connect() as connection:
        items = connection.execute(select(review_items)).all()
        holders: dict[int, list[str]] = {}
        for item_id, annotator in connection.execute(
            select(assignments.c.item_id, assignments.c.annotator)
        ):
            holders.setdefault(item_id, []).append(annotator)
    for item in items:
        held = holders.get(item.id, [])
        alone = item.kind == "sample" and item.status == "open" and item.k > 1 and len(held) == 1
        assert item.holder == (held[0] if alone else None), (item, held)
    kept = {item.id: item.taken for item in items}
    return kept, {item: len(holders.get(item, [])) for item in kept}
