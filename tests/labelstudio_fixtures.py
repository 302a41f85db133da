"""Shared pieces of the Label Studio tests: review samples with a mask, a box and spans, a store
holding them, two annotators deciding everything, and a snapshot of every review table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from sqlalchemy import select

from synthgate.masks import encode_mask
from synthgate.review.queue import Decision, ReviewQueue
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
from synthgate.storage.tables import assignments, decisions, gold_answers, review_items, samples

TEXT = "Anna Berg from Acme GmbH called about order 4411."
WIDTH, HEIGHT = 64, 48


def disc_mask(cx: int, cy: int, r: int) -> dict:
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    return encode_mask((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r)


def make_sample(index: int, modality: str, status: str = "review") -> Sample:
    spec = SampleSpec(batch_id="b1", index=index, modality=modality, generator="g", seed=index)
    common = {
        "id": sample_id("b1", modality, index),
        "spec": spec,
        "provenance": Provenance(generator="g", generator_version="1", seed=index),
        "report": RubricReport(
            rubric="default",
            score=3.0 + index / 10,
            levels={c: 5 for c in CRITERIA},
            route="review",
        ),
        "status": status,
    }
    if modality == "image":
        return Sample(
            **common,
            uri=f"images/{index}.png",
            width=WIDTH,
            height=HEIGHT,
            objects=[
                ObjectLabel(
                    category="circle", bbox=[4, 4, 10, 10], mask=disc_mask(9, 9, 5), area=81.0
                ),
                ObjectLabel(category="square", bbox=[30.5, 20.25, 12, 12], area=144.0),
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


def open_store(tmp_path: Path, url: str | None = None) -> Iterator[Store]:
    """Body of the `store` fixture: four image and four text samples of batch b1, in review, in
    the database at `url` (default: a SQLite file in `tmp_path`)."""
    made = Store(url or f"sqlite:///{tmp_path / 'synthgate.db'}")
    made.upsert_samples([make_sample(i, m) for m in ("image", "text") for i in range(4)])
    made.put_batch("b1", name="b1", seed=0, config={"categories": ["circle", "square", "triangle"]})
    yield made
    made.close()


def decide_everything(queue: ReviewQueue) -> None:
    """Two annotators; a mix of verdicts, fixes with moved boxes/spans, one adjudication."""
    plans = {
        "ann": ["accept", "fix", "reject", "fix", "accept", "fix", "reject", "accept"],
        "bob": ["accept", "fix", "accept", "fix", "accept", "fix", "reject", "reject"],
    }
    for who, verdicts in plans.items():
        for verdict in verdicts:
            task = queue.next_item(who)
            decision = Decision(
                verdict=verdict,
                levels={"precision": 3, "correctness": 5},
                comment=f"{who} says {verdict}",
            )
            if verdict == "fix" and task.sample.spec.modality == "image":
                moved = task.sample.objects[0].model_copy(
                    update={"bbox": [5.0, 6.0, 9.5, 8.0], "mask": None}
                )
                decision.objects = [moved, task.sample.objects[1]]
            elif verdict == "fix":
                decision.spans = [Span(start=0, end=4, label="PERSON"), task.sample.spans[1]]
            queue.decide(task.item_id, who, decision)
    for item_id in queue.awaiting_adjudication():
        queue.adjudicate(item_id, "lead", Decision(verdict="reject", comment="lead decides"))


def snapshot(store: Store) -> dict:
    with store.engine.connect() as connection:
        return {
            table.name: sorted(map(tuple, connection.execute(select(table))), key=repr)
            for table in (samples, review_items, assignments, decisions, gold_answers)
        }
