"""The review queue: enqueueing, blind k-way assignment, decisions, adjudication, gold tasks,
errors, and data safety (the sample row gets the final result; a fix keeps the originals)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from synthgate.errors import InputError
from synthgate.review.queue import Decision, ReviewQueue, ReviewTask
from synthgate.review.tables import decisions, review_items
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
from synthgate.store import Store, metadata

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


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Store:
    made = Store(f"sqlite:///{tmp_path / 'synthgate.db'}")
    yield made
    made.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """The same contract on SQLite and on PostgreSQL (a scratch database: see conftest.py)."""
    if request.param == "sqlite":
        made = Store(f"sqlite:///{tmp_path / 'synthgate.db'}")
    else:
        made = Store(request.getfixturevalue("postgres_scratch_url"))
        metadata.drop_all(made.engine)  # a scratch database: every test starts from nothing
        metadata.create_all(made.engine)
    yield made
    made.close()


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


def test_enqueue_takes_review_and_audit_samples_and_is_idempotent(store: Store) -> None:
    fill(store)
    queue = ReviewQueue(store, gold_rate=0.2)
    assert queue.enqueue_batch("b1") == 8
    assert queue.enqueue_batch("b1") == 0
    stats = queue.stats()
    assert stats["items"] == {"open": 8, "adjudication": 0, "final": 0}
    assert stats["gold_items"] == 2  # ceil(8 * 0.2 / 0.8) honeypots from accepted samples
    assert stats["queue_depth"] == 16
    with store.engine.connect() as connection:
        reasons = sorted(connection.execute(select(review_items.c.reason)).scalars())
    assert reasons == ["audit"] * 2 + ["honeypot"] * 2 + ["review"] * 6


@pytest.mark.parametrize("modality", ["image", "text"])
@pytest.mark.parametrize(
    ("verdicts", "status", "final"),
    [
        (["accept", "accept"], "accepted", "accept"),
        (["reject", "reject"], "rejected", "reject"),
        (["fix", "fix"], "accepted", "fix"),
        (["accept", "reject"], "review", None),  # split: waits for an adjudicator
    ],
)
def test_two_decisions_make_the_result(
    store: Store, modality: str, verdicts, status, final
) -> None:
    fill(store, review=1, audit=0, accepted=0, modality=modality)
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    tasks = {}
    for who, verdict in zip(["ann", "bob"], verdicts, strict=True):
        task = queue.next_item(who)
        tasks[who] = task
        queue.decide(
            task.item_id, who, {"accept": ACCEPT, "reject": REJECT}.get(verdict) or fix_of(task)
        )
    assert tasks["ann"].item_id == tasks["bob"].item_id
    before = make_sample(0, "review", modality=modality)
    after = store.get_sample(before.id)
    assert after.status == status
    item = queue.task(tasks["ann"].item_id)
    with store.engine.connect() as connection:
        row = connection.execute(
            select(review_items).where(review_items.c.id == item.item_id)
        ).first()
        recorded = connection.execute(
            select(decisions).where(decisions.c.item_id == item.item_id)
        ).all()
    assert row.final_verdict == final
    if final == "fix":
        labels = after.objects if modality == "image" else after.spans
        expected = fix_of(tasks["ann"])
        assert labels == (expected.objects if modality == "image" else expected.spans)
        original = before.objects if modality == "image" else before.spans
        for decision in recorded:  # the labels a fix replaced stay with the decision
            assert decision.original == [label.model_dump(mode="json") for label in original]
    if final is None:
        assert row.status == "adjudication" and queue.awaiting_adjudication() == [row.id]
        with pytest.raises(InputError, match="another person adjudicates"):
            queue.adjudicate(row.id, "ann", ACCEPT)
        queue.adjudicate(row.id, "lead", REJECT)
        assert store.get_sample(before.id).status == "rejected"
        assert queue.awaiting_adjudication() == []


def test_majority_of_three_decides_without_adjudicator(store: Store) -> None:
    fill(store, review=1, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=3, gold_rate=0.0)
    queue.enqueue_batch("b1")
    for who, decision in (("a", ACCEPT), ("b", REJECT), ("c", ACCEPT)):
        task = queue.next_item(who)
        queue.decide(task.item_id, who, decision)
    assert queue.next_item("d") is None  # three assignments: the item is full
    assert store.get_sample(make_sample(0, "review").id).status == "accepted"
    assert queue.stats()["items"]["final"] == 1


def test_tasks_are_blind_and_gold_is_unannounced(store: Store) -> None:
    fill(store)
    queue = ReviewQueue(store, gold_rate=0.5, seed=1)
    queue.enqueue_batch("b1")
    tasks = []
    while (task := queue.next_item("ann")) is not None:
        tasks.append(task)
        queue.decide(task.item_id, "ann", ACCEPT)
    with store.engine.connect() as connection:
        kinds = dict(connection.execute(select(review_items.c.id, review_items.c.kind)).all())
    assert {kinds[t.item_id] for t in tasks} == {"sample", "gold"}
    for task in tasks:
        # every task looks alike: no status, field or flag tells a gold task apart
        assert set(task.model_dump()) == {"item_id", "sample", "criteria"}
        assert task.sample.status == "review"
        assert task.sample.report.route == "review" or task.sample.report.audit
        assert task.criteria == list(CRITERIA)
    second = queue.next_item("bob")
    assert "ann" not in second.model_dump_json()  # others' decisions are never shown


def test_gold_decisions_score_annotators_and_never_touch_samples(store: Store) -> None:
    fill(store)
    queue = ReviewQueue(store, gold_rate=0.5, seed=2)
    queue.enqueue_batch("b1")
    before = {s.id: s for s in store.iter_samples("b1", "image")}
    work(queue, "careful", lambda t: REJECT)  # rejects every honeypot: always right on gold
    work(queue, "sloppy", lambda t: ACCEPT)  # accepts every honeypot: always wrong on gold
    people = queue.stats()["annotators"]
    assert people["careful"]["gold_decided"] >= 1 and people["careful"]["gold_accuracy"] == 1.0
    assert people["sloppy"]["gold_decided"] >= 1 and people["sloppy"]["gold_accuracy"] == 0.0
    for sample in store.iter_samples("b1", "image"):
        if before[sample.id].status == "accepted" and not before[sample.id].report.audit:
            assert sample == before[sample.id]  # honeypot sources are untouched


def test_gold_rate_is_roughly_kept(store: Store) -> None:
    fill(store, review=60, audit=0, accepted=40)
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.2, seed=3)
    queue.enqueue_batch("b1")
    seen = work(queue, "ann", lambda t: ACCEPT)
    with store.engine.connect() as connection:
        kinds = dict(connection.execute(select(review_items.c.id, review_items.c.kind)).all())
    gold_share = sum(kinds[i] == "gold" for i in seen) / len(seen)
    assert 0.08 <= gold_share <= 0.3
    assert len(seen) == len(set(seen))


def test_next_item_returns_the_open_assignment_again(store: Store) -> None:
    fill(store, review=3, audit=0, accepted=0)
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    first = queue.next_item("ann")
    assert queue.next_item("ann").item_id == first.item_id  # a page reload shows the same task
    queue.decide(first.item_id, "ann", ACCEPT)
    assert queue.next_item("ann").item_id != first.item_id


def test_gold_set_from_database_is_served_and_scored(store: Store) -> None:
    fill(store, review=4, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.5, seed=4)
    queue.enqueue_batch("b1")
    known = make_sample(50, "accepted")
    item = queue.add_gold(known, expected=["accept"])
    assert queue.add_gold(known, expected=["accept"]) == item  # idempotent
    seen = work(queue, "ann", lambda t: ACCEPT)
    assert item in seen
    assert queue.stats()["annotators"]["ann"]["gold_accuracy"] == 1.0


def bad_decisions() -> list:
    return [
        ("unassigned", lambda q, t: q.decide(t.item_id, "zed", ACCEPT), "is not assigned to 'zed'"),
        (
            "twice",
            lambda q, t: [q.decide(t.item_id, "ann", ACCEPT), q.decide(t.item_id, "ann", ACCEPT)],
            "already decided",
        ),
        ("no item", lambda q, t: q.decide(999, "ann", ACCEPT), "no review item 999"),
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


@pytest.mark.parametrize(("k", "gold_rate"), [(0, 0.1), (2, 1.0), (2, -0.1)])
def test_bad_queue_settings(store: Store, k: int, gold_rate: float) -> None:
    with pytest.raises(InputError):
        ReviewQueue(store, annotators_per_item=k, gold_rate=gold_rate)


def test_final_results_survive_a_second_enqueue(store: Store) -> None:
    fill(store, review=2, audit=0, accepted=0)
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    work(queue, "ann", lambda t: REJECT)
    work(queue, "bob", lambda t: REJECT)
    assert queue.enqueue_batch("b1") == 0
    assert queue.stats()["items"] == {"open": 0, "adjudication": 0, "final": 2}
    assert {s.status for s in store.iter_samples("b1", "image") if s.spec.index < 2} == {"rejected"}


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


def test_stale_assignments_are_released_to_someone_else(store: Store) -> None:
    fill(store, review=1, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.0)
    queue.enqueue_batch("b1")
    task = queue.next_item("gone")
    assert queue.next_item("ann") is None  # the only slot is taken
    assert queue.release_stale(3600) == 0  # not stale yet
    assert queue.release_stale(0) == 1
    assert queue.next_item("ann").item_id == task.item_id
    with pytest.raises(InputError, match="not assigned to 'gone'"):
        queue.decide(task.item_id, "gone", ACCEPT)


def test_outside_decisions_respect_k(store: Store) -> None:
    fill(store, review=1, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    queue.enqueue_batch("b1")
    item = queue.next_item("ann").item_id
    queue.next_item("bob")
    with pytest.raises(InputError, match="already has its 2 annotators"):
        queue.decide(item, "cy", ACCEPT, assign=True)
    queue.decide(item, "ann", ACCEPT)
    queue.decide(item, "bob", ACCEPT)
    with pytest.raises(InputError, match="is final: it takes no more decisions"):
        queue.decide(item, "cy", ACCEPT, assign=True)
