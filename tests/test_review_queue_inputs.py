"""The review queue refuses what a user can get wrong: bad decisions and queue settings are
input errors; an item's image path stays inside the run folder (or under a blob URL)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from review_fixtures import ACCEPT, corrected, fill, make_sample, open_store

from synthgate.errors import InputError
from synthgate.review.queue import Decision, ReviewQueue
from synthgate.samples import ObjectLabel, Span
from synthgate.storage.store import Store


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    made = Store(f"sqlite:///{tmp_path / 'synthgate.db'}")
    yield made
    made.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The same contract on SQLite and on PostgreSQL (a scratch database: see conftest.py)."""
    made = open_store(request, tmp_path)
    yield made
    made.close()


def bad_decisions() -> list:
    return [
        ("unassigned", lambda q, t: q.decide(t.item_id, "zed", ACCEPT), "is not assigned to 'zed'"),
        (
            "twice",
            lambda q, t: [q.decide(t.item_id, "ann", ACCEPT), q.decide(t.item_id, "ann", ACCEPT)],
            "already decided",
        ),
        ("no item", lambda q, t: q.decide(999, "ann", ACCEPT), "no review item 999"),
        # ids no item can have (beyond the 32-bit column, SQLite's 64 bits, or not an int) never
        # reach the database
        ("item 2^31", lambda q, t: q.decide(2**31, "ann", ACCEPT), "no review item 2147483648"),
        ("item 2^64", lambda q, t: q.task(2**64), "no review item 18446744073709551616"),
        ("item true", lambda q, t: q.task(True), "no review item True"),
        ("item -1 image", lambda q, t: q.item_image_path(-1), "no review item -1"),
        ("item 2^63 adjudicated", lambda q, t: q.adjudicate(2**63, "lead", ACCEPT), "no review"),
        (
            "fix without labels",
            lambda q, t: q.decide(t.item_id, "ann", Decision(verdict="fix")),
            "needs the corrected objects",
        ),
        (
            "labels without fix",
            lambda q, t: q.decide(t.item_id, "ann", Decision(verdict="accept", objects=[])),
            "only with verdict 'fix'",
        ),
        (
            "unknown criterion",
            lambda q, t: q.decide(
                t.item_id, "ann", Decision(verdict="accept", levels={"beauty": 5})
            ),
            "unknown criteria ['beauty']",
        ),
        (
            "box outside image",
            lambda q, t: q.decide(
                t.item_id,
                "ann",
                Decision(
                    verdict="fix",
                    objects=[ObjectLabel(category="circle", bbox=[60, 40, 10, 10], area=100)],
                ),
            ),
            "leaves the 64x48 image",
        ),
        ("empty annotator", lambda q, t: q.next_item("  "), "annotator name must be"),
        (
            "adjudicate open item",
            lambda q, t: q.adjudicate(t.item_id, "lead", ACCEPT),
            "not waiting for adjudication",
        ),
    ]


@pytest.mark.parametrize(
    ("name", "act", "message"), bad_decisions(), ids=[c[0] for c in bad_decisions()]
)
def test_bad_decisions_are_input_errors(store: Store, name: str, act, message: str) -> None:
    fill(store, review=2, audit=0, accepted=0)
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    task = queue.next_item("ann")
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        act(queue, task)


def test_span_fix_out_of_range_and_long_comment_are_refused(store: Store) -> None:
    fill(store, review=1, audit=0, accepted=0, modality="text")
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    task = queue.next_item("ann")
    with pytest.raises(InputError, match=r"start < end <= 49"):
        queue.decide(
            task.item_id,
            "ann",
            Decision(verdict="fix", spans=[Span(start=40, end=60, label="ORG")]),
        )
    with pytest.raises(ValidationError):
        Decision(verdict="accept", comment="x" * 5001)
    with pytest.raises(ValidationError):
        Decision(verdict="accept", levels={"precision": 4})
    with pytest.raises(ValidationError):
        Decision(verdict="accept", surprise=1)


def test_a_fix_of_a_classification_text_is_refused(store: Store) -> None:
    """A decision cannot carry a document label: a 'fix' of a wrongly labelled text would
    have accepted it with that label."""
    sample = make_sample(0, "review", modality="text").model_copy(update={"doc_label": "negative"})
    store.upsert_samples([sample])
    queue = ReviewQueue(store, gold_rate=0.0, annotators_per_item=1)
    queue.enqueue_batch("b1")
    task = queue.next_item("ann")
    with pytest.raises(InputError, match=r"document label \('negative'\).*reject the text"):
        queue.decide(task.item_id, "ann", Decision(verdict="fix", spans=[]))
    queue.decide(task.item_id, "ann", Decision(verdict="reject"))
    assert store.get_sample(sample.id).status == "rejected"


@pytest.mark.parametrize("modality", ["image", "text"])
def test_a_fix_that_changes_no_label_is_refused(store: Store, modality: str) -> None:
    """A 'fix' of the labels as shown finalised the sample as it stood, and counted as catching
    a honeypot's defect: answering 'fix' to every task gamed gold accuracy."""
    store.upsert_samples([make_sample(0, "review", modality=modality)])
    queue = ReviewQueue(store, gold_rate=0.0, annotators_per_item=1)
    queue.enqueue_batch("b1")
    task = queue.next_item("ann")
    assert task is not None
    shown = task.sample
    same = Decision(verdict="fix", objects=shown.objects, spans=None)
    if modality == "text":
        same = Decision(verdict="fix", spans=shown.spans)
    with pytest.raises(InputError, match="this fix changes no label; accept the sample"):
        queue.decide(task.item_id, "ann", same)
    fixed = (
        Decision(verdict="fix", objects=corrected(shown.objects))
        if modality == "image"
        else Decision(verdict="fix", spans=shown.spans[:-1])
    )
    queue.decide(task.item_id, "ann", fixed)
    assert store.get_sample(shown.id).status == "accepted"


@pytest.mark.parametrize(("k", "gold_rate"), [(0, 0.1), (2, 1.0), (2, -0.1)])
def test_bad_queue_settings(store: Store, k: int, gold_rate: float) -> None:
    with pytest.raises(InputError):
        ReviewQueue(store, annotators_per_item=k, gold_rate=gold_rate)


def test_item_image_path_is_inside_the_run_folder(sqlite_store: Store, tmp_path: Path) -> None:
    store = sqlite_store
    fill(store, review=1, audit=0, accepted=0)
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    task = queue.next_item("ann")
    assert queue.item_image_path(task.item_id) == (tmp_path / "images" / "0.png").resolve()
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "0.png").write_bytes(b"png")
    assert queue.item_image_bytes(task.item_id) == b"png"
    evil = make_sample(0, "review").model_copy(update={"uri": "../../etc/passwd"})
    store.upsert_samples([evil])
    with pytest.raises(InputError, match="leaves the run folder"):
        queue.item_image_path(task.item_id)


def test_image_root_can_be_a_blob_url(sqlite_store: Store) -> None:
    store = sqlite_store
    fill(store, review=1, audit=0, accepted=0)
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1", image_root="s3://bucket/runs/r1/")
    task = queue.next_item("ann")
    assert queue.item_image_path(task.item_id) == "s3://bucket/runs/r1/images/0.png"


CIRCLE = {"category": "circle", "bbox": [4, 4, 10, 10], "area": 78.0}
PERSON = {"start": 0, "end": 9, "label": "PERSON"}  # "Anna Berg"
CLASSES = "; use one of ['circle', 'square']"
LABELS = "; use one of ['ORG', 'PERSON']"
# a fix's labels become an accepted sample's: each must be one the batch holds, and sane
BAD_FIXES = [
    ("image", {**CIRCLE, "category": ""}, "objects[0].category '' is not a label of this batch"),
    ("image", {**CIRCLE, "category": "banana"}, f"'banana' is not a label of this batch{CLASSES}"),
    ("image", {**CIRCLE, "category": "a\nb"}, f"'a\\nb' is not a label of this batch{CLASSES}"),
    ("image", {**CIRCLE, "area": -1}, "objects[0].area must be >= 0 (got -1.0)"),
    ("image", {**CIRCLE, "visible_fraction": 7.0}, "visible_fraction must be in [0, 1] (got 7.0)"),
    ("text", {**PERSON, "label": ""}, f"spans[0].label '' is not a label of this batch{LABELS}"),
    ("text", {**PERSON, "label": "BANANA"}, "label 'BANANA' is not a label of this batch"),
    ("text", {**PERSON, "value": "Acme GmbH"}, "spans[0].value 'Acme GmbH' is not the text"),
]


@pytest.mark.parametrize(("modality", "label", "message"), BAD_FIXES)
def test_a_fix_keeps_to_the_batchs_labels(
    store: Store, modality: str, label: dict, message: str
) -> None:
    fill(store, review=1, audit=0, accepted=0, modality=modality)
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    task = queue.next_item("ann")
    field = "objects" if modality == "image" else "spans"
    fix = Decision.model_validate({"verdict": "fix", field: [label]})
    with pytest.raises(InputError, match=re.escape(message)):
        queue.decide(task.item_id, "ann", fix)
    assert store.get_sample(task.sample.id).status == "review"  # nothing recorded


def test_a_fix_may_use_a_label_of_another_sample_of_the_batch(store: Store) -> None:
    fill(store, review=1, audit=0, accepted=0, modality="text")
    other = make_sample(5, "accepted", modality="text")
    order = make_sample(0, "review", modality="text").text.index("4411")
    other.spans = [Span(start=order, end=order + 4, label="ORDER", value="4411")]
    store.upsert_samples([other])
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.0)
    queue.enqueue_batch("b1")
    task = queue.next_item("ann")
    span = Span(start=order, end=order + 4, label="ORDER", value="4411")
    queue.decide(task.item_id, "ann", Decision(verdict="fix", spans=[span]))
    assert store.get_sample(task.sample.id).spans == [span]
