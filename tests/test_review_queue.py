"""The review queue: enqueueing, blind k-way assignment, decisions, adjudication, gold tasks,
and data safety (the sample row gets the final result; a fix keeps the originals).

Bad decisions and settings, and image paths, are in test_review_queue_inputs.py."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from review_fixtures import (
    ACCEPT,
    REJECT,
    SAMPLE_MET_AS_GOLD,
    fill,
    fix_of,
    kept_and_counted,
    make_sample,
    met_as_gold_by_everyone,
    open_store,
    work,
)
from sqlalchemy import select

from synthgate.commands import review_lead
from synthgate.errors import InputError
from synthgate.review.queue import Decision, ReviewQueue
from synthgate.samples import CRITERIA, Span
from synthgate.storage.store import Store
from synthgate.storage.tables import annotator_counts, assignments, decisions, review_items


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The same contract on SQLite and on PostgreSQL (a scratch database: see conftest.py)."""
    made = open_store(request, tmp_path)
    yield made
    made.close()


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


def test_stats_give_the_k_the_items_ask_for_not_the_reading_queues(store: Store) -> None:
    # `review enqueue -k 3`, then `review stats` or `serve` open the queue with their own k (2)
    fill(store, review=3, audit=0, accepted=2)
    assert ReviewQueue(store, annotators_per_item=3, gold_rate=0.0).enqueue_batch("b1") == 3
    assert ReviewQueue(store, annotators_per_item=3).stats()["annotators_per_item"] == 3
    stats = ReviewQueue(store).stats()
    assert stats["annotators_per_item"] == 3 and stats["queue_depth"] == 9
    assert ReviewQueue(store, annotators_per_item=4).stats()["annotators_per_item"] == 3


def test_stats_give_the_k_of_the_open_items_over_that_of_finished_ones(store: Store) -> None:
    """Four items finished at k = 2 did not hide two open ones at k = 3."""
    fill(store, review=4, audit=0, accepted=0)
    first = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    assert first.enqueue_batch("b1") == 4
    for who in ("ann", "bob") * 4:
        task = first.next_item(who)
        assert task is not None
        first.decide(task.item_id, who, ACCEPT)
    fill(store, review=6, audit=0, accepted=0)  # two more samples in review
    assert ReviewQueue(store, annotators_per_item=3, gold_rate=0.0).enqueue_batch("b1") == 2
    assert ReviewQueue(store).stats()["annotators_per_item"] == 3


def test_stats_without_items_give_the_k_new_items_get(store: Store) -> None:
    assert ReviewQueue(store, annotators_per_item=3).stats()["annotators_per_item"] == 3


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


def test_an_adjudicator_reads_the_split_items_and_takes_a_fix(store: Store) -> None:
    """What `review adjudicate` and GET /api/review/{id}/decisions read, from the queue: each
    item awaiting adjudication with every decision in the order they came, an annotator's fix
    to take, and why there is none."""
    fill(store, review=3, audit=0, accepted=0)
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    assert queue.awaiting_with_decisions() == []
    ids = sorted(work(queue, "ann", lambda t: ACCEPT))
    fixes = {}

    def bob(task):  # splits on the first two items: a fix, then a reject
        if task.item_id == ids[2]:
            return ACCEPT
        fixes[task.item_id] = fix_of(task) if task.item_id == ids[0] else REJECT
        return fixes[task.item_id]

    work(queue, "bob", bob)
    waiting = queue.awaiting_with_decisions()
    assert [(w.item_id, w.k, w.modality) for w in waiting] == [(i, 2, "image") for i in ids[:2]]
    for item in waiting:
        assert [(d["annotator"], d["verdict"]) for d in item.decisions] == [
            ("ann", "accept"),
            ("bob", fixes[item.item_id].verdict),
        ]
        assert item.decisions == queue.decisions_on(item.item_id)
        assert item.sample_id == queue.task(item.item_id).sample.id
    objects = [o.model_dump(mode="json") for o in fixes[ids[0]].objects]
    assert queue.fix_of(ids[0], "bob") == {"objects": objects}
    with pytest.raises(InputError, match=f"ann said accept on item {ids[0]}, no fix to take"):
        queue.fix_of(ids[0], "ann")
    with pytest.raises(InputError, match=f"cy made no decision on item {ids[0]}, no fix"):
        queue.fix_of(ids[0], "cy")
    queue.adjudicate(ids[0], "lead", fix_of(queue.task(ids[0])))
    assert [w.item_id for w in queue.awaiting_with_decisions()] == ids[1:2]
    assert [d["role"] for d in queue.decisions_on(ids[0])] == ["annotator"] * 2 + ["adjudicator"]
    with pytest.raises(InputError, match="no review item 999"):
        queue.decisions_on(999)


def test_no_fix_to_take_from_someone_who_made_no_decision_reads_once(store: Store) -> None:
    fill(store, review=1, audit=0, accepted=0)
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    [item] = work(queue, "ann", lambda t: ACCEPT)
    with pytest.raises(InputError) as refused:
        queue.fix_of(item, "cy")
    assert str(refused.value) == f"cy made no decision on item {item}, no fix to take"


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


def test_the_fix_more_than_half_gave_is_final_and_differing_fixes_await_adjudication(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """At k = 3, a's fix came first on both items: it was made final on each, b's and c's
    labels dropped without a word, though b and c gave the same fix on the first and nobody
    else gave a's on the second. The fix more than half the annotators gave is final; with
    none, the item awaits adjudication as a split verdict does, and `review adjudicate` says
    why."""
    fill(store, review=2, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=3, gold_rate=0.0)
    queue.enqueue_batch("b1")

    def moved(task, x: float) -> Decision:
        box = task.sample.objects[0].model_copy(update={"bbox": [x, 5.0, 8.0, 8.0]})
        return Decision(verdict="fix", levels={"precision": 3}, objects=[box])

    first, second = sorted(work(queue, "a", lambda task: moved(task, 6.0)))
    work(queue, "b", lambda task: moved(task, 5.0))
    work(queue, "c", lambda task: moved(task, 5.0) if task.item_id == first else ACCEPT)
    with store.engine.connect() as connection:
        status = dict(connection.execute(select(review_items.c.id, review_items.c.status)).all())
    assert status == {first: "final", second: "adjudication"}
    kept = store.get_sample(queue.task(first).sample.id).objects
    assert [o.bbox for o in kept] == [[5.0, 5.0, 8.0, 8.0]]  # b's and c's, not a's
    review_lead._print_awaiting(queue)
    listed = " ".join(capsys.readouterr().out.split())
    assert f"item {second}: " in listed and "2 of 3 annotators chose fix, with different" in listed


# Fixes of the sample's two objects (circle, square) as people make them: boxes redrawn.
REDRAWN = [("circle", [2.0, 2.0, 36.0, 36.0]), ("square", [40.0, 10.0, 22.0, 30.0])]
NUDGED = [("circle", [3.0, 2.0, 36.0, 37.0]), ("square", [41.0, 11.0, 21.0, 29.0])]  # IoU 0.92
FAR_OFF = [("circle", [12.0, 2.0, 36.0, 36.0]), ("square", [40.0, 10.0, 22.0, 30.0])]  # 0.64


def redrawn(task, boxes: list[tuple[str, list[float]]]) -> Decision:
    """A fix of `task` whose objects are `boxes`, each keeping its object's other fields."""
    shown = {o.category: o for o in task.sample.objects}
    objects = [shown["circle"].model_copy(update={"category": c, "bbox": b}) for c, b in boxes]
    return Decision(verdict="fix", levels={"precision": 3}, objects=objects)


def decided_in_turn(queue: ReviewQueue, choices: list) -> int:
    """The one item of the queue, decided by a, b, c ... in turn, each as `choices` says."""
    items = set()
    for who, choose in zip("abcdef", choices, strict=False):
        task = queue.next_item(who)
        assert task is not None
        items.add(task.item_id)
        queue.decide(task.item_id, who, choose if isinstance(choose, Decision) else choose(task))
    (item,) = items
    return item


@pytest.mark.parametrize(
    ("k", "fixes", "kept"),
    [
        pytest.param(2, [REDRAWN, NUDGED], REDRAWN, id="k2-nudged"),
        pytest.param(3, [REDRAWN, NUDGED, None], REDRAWN, id="k3-nudged-and-accept"),
        pytest.param(3, [REDRAWN, NUDGED[::-1], NUDGED], REDRAWN, id="k3-in-another-order"),
        pytest.param(3, [FAR_OFF, REDRAWN, NUDGED], REDRAWN, id="k3-first-fix-far-off"),
    ],
)
def test_fixes_whose_boxes_are_a_pixel_apart_agree(store: Store, k: int, fixes, kept) -> None:
    """Two people dragging the same box edges never land on the same pixels: fixes with the
    same objects and classes, boxes at IoU >= 0.9 of each other, are one fix, final without an
    adjudicator. The first of the fixes that agree is kept (a's; b's where a's is far off)."""
    fill(store, review=1, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=k, gold_rate=0.0)
    queue.enqueue_batch("b1")
    item = decided_in_turn(
        queue, [ACCEPT if f is None else lambda task, f=f: redrawn(task, f) for f in fixes]
    )
    with store.engine.connect() as connection:
        row = connection.execute(select(review_items).where(review_items.c.id == item)).one()
    assert (row.status, row.final_verdict) == ("final", "fix")
    final = store.get_sample(make_sample(0, "review").id)
    assert final.status == "accepted"
    assert [(o.category, o.bbox) for o in final.objects] == kept


@pytest.mark.parametrize(
    ("k", "fixes"),
    [
        pytest.param(2, [REDRAWN, NUDGED[:1]], id="k2-an-object-fewer"),
        pytest.param(2, [REDRAWN, [NUDGED[0], ("circle", NUDGED[1][1])]], id="k2-another-class"),
        pytest.param(2, [REDRAWN, FAR_OFF], id="k2-a-box-far-off"),
        pytest.param(3, [REDRAWN, FAR_OFF, None], id="k3-a-box-far-off-and-accept"),
    ],
)
def test_fixes_that_differ_beyond_a_nudge_await_adjudication(
    store: Store, capsys: pytest.CaptureFixture[str], k: int, fixes
) -> None:
    """An object more or fewer, another class, or a box moved by more than a hand's slip is a
    different fix: the item awaits adjudication, and `review adjudicate` and `review stats`
    say so."""
    fill(store, review=1, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=k, gold_rate=0.0)
    queue.enqueue_batch("b1")
    item = decided_in_turn(
        queue, [ACCEPT if f is None else lambda task, f=f: redrawn(task, f) for f in fixes]
    )
    assert queue.stats()["items"]["adjudication"] == 1
    assert store.get_sample(make_sample(0, "review").id).objects == make_sample(0, "review").objects
    review_lead._print_awaiting(queue)
    listed = " ".join(capsys.readouterr().out.split())
    assert f"item {item}: " in listed
    assert f"2 of {k} annotators chose fix, with different labels" in listed


def test_text_fixes_with_the_same_spans_in_another_order_agree(store: Store) -> None:
    """Offsets are whole characters: text fixes agree when their spans are the same, whatever
    order they came in; the first fix's spans are kept."""
    fill(store, review=1, audit=0, accepted=0, modality="text")
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    spans = [Span(start=0, end=4, label="PERSON"), Span(start=15, end=24, label="ORG")]
    decided_in_turn(
        queue,
        [
            Decision(verdict="fix", levels={"precision": 3}, spans=spans),
            Decision(verdict="fix", levels={"precision": 3}, spans=spans[::-1]),
        ],
    )
    final = store.get_sample(make_sample(0, "review", modality="text").id)
    assert (final.status, final.spans) == ("accepted", spans)


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
        assert set(task.model_dump()) == {"item_id", "sample", "criteria", "fix_labels"}
        assert task.fix_labels == queue.fix_labels(task.item_id)  # the same for gold and real
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


def test_a_sample_open_as_real_work_is_not_made_gold(store: Store) -> None:
    """Its gold copy and its real item, one after the other, showed an annotator the same sample
    twice (review gold of an open item's sample, served at a high gold rate)."""
    fill(store, review=2, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.5, seed=4)
    queue.enqueue_batch("b1")
    with store.engine.connect() as connection:
        item, sample = connection.execute(
            select(review_items.c.id, review_items.c.sample_id).order_by(review_items.c.id)
        ).first()
    real = store.get_sample(sample)
    with pytest.raises(InputError, match=rf"{sample}: not made gold, .* open .*\(item {item}\)"):
        queue.add_gold(real, expected=["accept"])
    assert queue.stats()["gold_items"] == 0
    for who in ("ann", "bob"):  # decided, it may be gold
        work(queue, who, lambda t: ACCEPT)
    assert queue.add_gold(store.get_sample(sample), expected=["accept"]) > item


def test_gold_of_a_sample_is_not_given_to_who_had_it_as_real_work(store: Store) -> None:
    fill(store, review=8, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.9, seed=4)
    queue.enqueue_batch("b1")
    first = queue.next_item("ann")
    assert first is not None
    queue.decide(first.item_id, "ann", ACCEPT)
    gold = queue.add_gold(store.get_sample(first.sample.id), expected=["accept"])
    seen: dict[str, list[int]] = {"ann": [], "bob": []}
    while True:  # the two take turns until nothing is left
        tasks = {who: queue.next_item(who) for who in seen}
        if not any(tasks.values()):
            break
        for who, task in tasks.items():
            if task is not None:
                seen[who].append(task.item_id)
                queue.decide(task.item_id, who, ACCEPT)
    assert gold not in seen["ann"]  # she decided its sample
    assert gold in seen["bob"]


@pytest.mark.parametrize("made", ["review gold", "honeypot"])
def test_a_sample_met_as_gold_is_not_given_again_as_real_work(store: Store, made: str) -> None:
    """The other order: a sample made gold (review gold, or a honeypot at enqueue) while it was
    not real work, then enqueued as real work (judged again, now for review), was given to the
    annotator who had answered its gold task: the same sample twice."""
    fill(store, review=6, audit=0, accepted=4)
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.9, seed=4)
    if made == "review gold":
        for sample in store.iter_samples("b1", "image"):
            if sample.status == "accepted":
                queue.add_gold(sample, expected=["accept"])
    queue.enqueue_batch("b1")
    met = work(queue, "ann", lambda t: ACCEPT)  # the real work, and gold tasks along with it
    reason = "gold" if made == "review gold" else "honeypot"
    with store.engine.connect() as connection:
        sample = connection.execute(
            select(review_items.c.sample_id)
            .where(review_items.c.id.in_(met), review_items.c.reason == reason)
            .order_by(review_items.c.id)
        ).scalar()
    assert sample is not None, f"ann met no {reason} task"
    store.upsert_samples([make_sample(store.get_sample(sample).spec.index, "review")])
    queue.enqueue_batch("b1")
    with store.engine.connect() as connection:
        real = connection.execute(
            select(review_items.c.id).where(review_items.c.key == f"sample:{sample}")
        ).scalar_one()
    assert real not in work(queue, "ann", lambda t: ACCEPT)  # she answered its gold task
    # nor is her answer made outside the queue recorded (a Label Studio import assigns it)
    with pytest.raises(InputError, match=f"was given sample {sample} as gold item"):
        queue.decide(real, "ann", ACCEPT, assign=True)
    # nor is its gold given while it is open real work: bob, who never met the sample, takes it
    assert real in work(queue, "bob", lambda t: ACCEPT)


def test_an_open_item_others_may_take_is_not_adjudicated(store: Store) -> None:
    fill(store, review=1, audit=0, accepted=0)
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    item = queue.next_item("ann").item_id
    queue.decide(item, "ann", ACCEPT)
    with pytest.raises(InputError, match=f"item {item} is open, not waiting for adjudication"):
        queue.adjudicate(item, "lead", ACCEPT)
    assert queue.stats()["blocked"] == []


@pytest.mark.parametrize("made", ["review gold", "honeypot"])
def test_a_sample_every_annotator_met_as_gold_is_shown_blocked_and_adjudicated(
    store: Store, made: str
) -> None:
    """The blind rule keeps the real item of a sample from all who met it as gold: it stayed
    open, no `next` gave it and nothing said so. Now stats name it blocked (why, and what to
    do), someone new may take it, and a lead may adjudicate it."""
    queue, real = met_as_gold_by_everyone(store, made)
    for who in ("ann", "bob"):
        assert work(queue, who, lambda t: ACCEPT) == []
    stats = queue.stats()
    assert stats["items"] == {"open": 1, "adjudication": 0, "final": 4}
    [blocked] = stats["blocked"]
    assert (blocked["item"], blocked["sample"], blocked["needs"]) == (real, SAMPLE_MET_AS_GOLD, 2)
    assert blocked["met_as_gold"] == ["ann", "bob"]
    assert blocked["why"].startswith("ann, bob met its sample as a gold task")
    assert "new to the queue (2 more)" in blocked["fix"] and "adjudicates" in blocked["fix"]
    assert work(queue, "cy", lambda t: REJECT) == [real]  # an annotator new to the queue
    [blocked] = queue.stats()["blocked"]
    assert blocked["needs"] == 1
    with pytest.raises(InputError, match="another person adjudicates"):
        queue.adjudicate(real, "cy", REJECT)
    queue.adjudicate(real, "lead", REJECT)
    assert store.get_sample(SAMPLE_MET_AS_GOLD).status == "rejected"
    stats = queue.stats()
    assert stats["blocked"] == [] and stats["items"]["final"] == 5


def test_a_blocked_item_someone_holds_is_adjudicated_once_they_decide(store: Store) -> None:
    queue, real = met_as_gold_by_everyone(store)
    assert queue.next_item("cy").item_id == real
    with pytest.raises(InputError, match=f"item {real} is blocked, but 'cy' holds it undecided"):
        queue.adjudicate(real, "lead", ACCEPT)
    queue.decide(real, "cy", ACCEPT)
    queue.adjudicate(real, "lead", ACCEPT)
    assert store.get_sample(SAMPLE_MET_AS_GOLD).status == "accepted"
    assert queue.stats()["blocked"] == []


def test_final_results_survive_a_second_enqueue(store: Store) -> None:
    fill(store, review=2, audit=0, accepted=0)
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    work(queue, "ann", lambda t: REJECT)
    work(queue, "bob", lambda t: REJECT)
    assert queue.enqueue_batch("b1") == 0
    assert queue.stats()["items"] == {"open": 0, "adjudication": 0, "final": 2}
    assert {s.status for s in store.iter_samples("b1", "image") if s.spec.index < 2} == {"rejected"}


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


def given_and_held(store: Store) -> tuple[dict[str, int], dict[str, int]]:
    """Each annotator's kept count of tasks given, and their assignments counted."""
    with store.engine.connect() as connection:
        given = dict(
            connection.execute(select(annotator_counts.c.annotator, annotator_counts.c.given)).all()
        )
        held = Counter(connection.execute(select(assignments.c.annotator)).scalars())
    return given, {who: held[who] for who in given}


def test_one_annotator_s_undecided_assignments_are_released(store: Store) -> None:
    """`review release --annotator gone`: gone's undecided task is taken back, at any age or
    older than a limit; bob's hold and ann's decision stay; the kept counts follow."""
    fill(store, review=3, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.0)
    queue.enqueue_batch("b1")
    first = queue.next_item("ann")
    assert first is not None
    queue.decide(first.item_id, "ann", ACCEPT)
    gone, bob = queue.next_item("gone"), queue.next_item("bob")
    assert gone is not None and bob is not None
    assert queue.release_stale(3600, annotator="gone") == 0  # not that old yet
    assert queue.release_stale(annotator="gone") == 1
    assert queue.next_item("bob").item_id == bob.item_id  # bob's hold stays
    assert queue.next_item("cy").item_id == gone.item_id  # gone's goes to someone else
    with pytest.raises(InputError, match="not assigned to 'gone'"):
        queue.decide(gone.item_id, "gone", ACCEPT)
    assert queue.release_stale(0, annotator="bob") == 1
    assert queue.release_stale(annotator="ann") == 0  # her decision stays
    assert queue.stats()["items"] == {"open": 2, "adjudication": 0, "final": 1}
    given, held = given_and_held(store)
    assert given == held and held["gone"] == 0 and held["bob"] == 0
    kept, counted = kept_and_counted(store)
    assert kept == counted


def test_releasing_an_unknown_annotator_or_nothing_named_is_refused(store: Store) -> None:
    fill(store, review=2, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.0)
    queue.enqueue_batch("b1")
    assert queue.next_item("ann") is not None
    with pytest.raises(InputError, match=r"annotator=Ann: was never handed a task in this review"):
        queue.release_stale(annotator="Ann")
    with pytest.raises(InputError, match=r"older_than_s .*, annotator=NAME \(theirs, of any age\)"):
        queue.release_stale()
    assert given_and_held(store) == ({"ann": 1}, {"ann": 1})


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
