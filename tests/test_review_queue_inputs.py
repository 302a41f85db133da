"""The review queue refuses what a user can get wrong: bad decisions and queue settings are
input errors; an item's image path stays inside the run folder (or under a blob URL)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from review_fixtures import ACCEPT, corrected, fill, make_sample, open_store
from sqlalchemy import select

from synthgate.errors import InputError, quoted
from synthgate.review.queue import Decision, ReviewQueue
from synthgate.samples import ObjectLabel, Sample, Span
from synthgate.storage.store import Store
from synthgate.storage.tables import gold_answers, review_batches, review_items


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
        ("empty annotator", lambda q, t: q.next_item("  "), "annotator='  ': names an annotator"),
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


@pytest.mark.parametrize(
    ("act", "said"),
    [
        (lambda q, t: q.reopen([t.item_id], by=""), "by=''"),
        (lambda q, t: q.reopen([t.item_id], annotator="  ", by="lead"), "annotator='  '"),
        (lambda q, t: q.adjudicate(t.item_id, "", ACCEPT), "adjudicator=''"),
        (lambda q, t: q.decide(t.item_id, " ", ACCEPT), "annotator=' '"),
        (lambda q, t: q.next_item("x" * 201), f"annotator={quoted('x' * 201)}"),
    ],
    ids=["reopen by", "reopen annotator", "adjudicate", "decide", "next_item"],
)
def test_an_empty_or_long_name_is_refused_naming_its_parameter(act, said: str) -> None:
    """A name of no characters, or too many, was 'annotator name must be 1..200 characters
    (got '')', whichever parameter held it (reopen's `by`, adjudicate's `adjudicator`)."""
    store = Store("sqlite://")
    fill(store, review=1, audit=0, accepted=0)
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    task = queue.next_item("ann")
    with pytest.raises(InputError) as refused:
        act(queue, task)
    name = said.partition("=")[0]
    assert str(refused.value) == (
        f"{said}: names an annotator, in 1 to 200 characters; give a name, e.g. {name}=lead"
    )
    store.close()


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


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"annotators_per_item": "2"}, "annotators_per_item='2': is a str, not a whole number"),
        ({"annotators_per_item": 2.0}, "annotators_per_item=2.0: is a float, not a whole number"),
        ({"annotators_per_item": True}, "annotators_per_item=True: is a bool, not a whole number"),
        (
            {"gold_rate": "0.1"},
            r"gold_rate='0.1': is a str, not a number; pass a float in \[0, 1\)",
        ),
    ],
    ids=["k str", "k float", "k bool", "gold_rate str"],
)
def test_queue_settings_of_another_type_are_input_errors_naming_them(
    sqlite_store: Store, given: dict, named: str
) -> None:
    """A value read from a form or a CLI argument (a str) was a raw TypeError from a
    comparison: now an InputError naming the parameter, the value and what it takes."""
    with pytest.raises(InputError, match=named):
        ReviewQueue(sqlite_store, **given)


def test_decide_takes_a_dict_of_a_decisions_fields_and_refuses_a_bad_one_naming_it(
    sqlite_store: Store,
) -> None:
    """The API's JSON body as a dict is validated into a Decision (it was a raw AttributeError);
    a bad one is an InputError naming the field and what it takes, not pydantic's error."""
    fill(sqlite_store, review=2, audit=0, accepted=0)
    queue = ReviewQueue(sqlite_store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    task = queue.next_item("ann")
    assert task is not None
    refused = [
        ({"verdict": "acept"}, r"decision.verdict: .*'accept', 'reject' or 'fix' \(got 'acept'\)"),
        ({"verdict": "accept", "levels": {"correctness": 4}}, r"decision.levels.correctness: .*5"),
        ({"verdict": "accept", "surprise": 1}, "decision.surprise: unknown field"),
        ({}, "decision.verdict is required"),
        ("accept", "decision='accept': is a str, not a Decision; pass a Decision"),
    ]
    for decision, message in refused:
        with pytest.raises(InputError, match=message):
            queue.decide(task.item_id, "ann", decision)  # type: ignore[arg-type]
    queue.decide(task.item_id, "ann", {"verdict": "reject", "comment": "wrong class"})
    (decided,) = queue.decisions_on(task.item_id)
    assert (decided["verdict"], decided["comment"]) == ("reject", "wrong class")
    other = queue.next_item("bob")
    assert other is not None and other.item_id == task.item_id
    queue.decide(task.item_id, "bob", {"verdict": "accept"})
    lead = ReviewQueue(sqlite_store, gold_rate=0.0)
    with pytest.raises(InputError, match=r"decision\.verdict: "):
        lead.adjudicate(task.item_id, "lead", {"verdict": "acept"})
    lead.adjudicate(task.item_id, "lead", {"verdict": "accept"})
    assert queue.decisions_on(task.item_id)[-1]["role"] != "annotator"


def test_a_decisions_places_in_its_lists_read_as_its_own_messages_write_them(
    sqlite_store: Store,
) -> None:
    """pydantic's places said decision.objects.1.bbox.1 where the decision's own checks say
    objects[1].bbox (item 3: objects[1].bbox must be [x, y, w, h]): an index is written as one."""
    fill(sqlite_store, review=1, audit=0, accepted=0)
    queue = ReviewQueue(sqlite_store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    task = queue.next_item("ann")
    assert task is not None
    box = {"category": "a", "bbox": [1, 2, 3, 4], "area": 12}
    refused = [
        (
            {"verdict": "fix", "objects": [box, {**box, "bbox": [1, "x", 3, 4]}]},
            "decision.objects[1].bbox[1]: Input should be a valid number",
        ),
        (
            {"verdict": "fix", "spans": [{"start": "a", "end": 3, "label": "x"}]},
            "decision.spans[0].start: Input should be a valid integer",
        ),
    ]
    for decision, message in refused:
        with pytest.raises(InputError) as raised:
            queue.decide(task.item_id, "ann", decision)
        assert str(raised.value).startswith(message), raised.value


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
BATCH_CLASSES, BATCH_LABELS = f" of this batch{CLASSES}", f" of this batch{LABELS}"
# a fix's labels become an accepted sample's: each must be one the batch holds, and sane
BAD_FIXES = [
    ("image", {**CIRCLE, "category": ""}, "objects[0].category '' is not an object class of"),
    ("image", {**CIRCLE, "category": "banana"}, f"'banana' is not an object class{BATCH_CLASSES}"),
    ("image", {**CIRCLE, "category": "a\nb"}, f"'a\\nb' is not an object class{BATCH_CLASSES}"),
    ("image", {**CIRCLE, "area": -1}, "objects[0].area must be >= 0 (got -1.0)"),
    ("image", {**CIRCLE, "visible_fraction": 7.0}, "visible_fraction must be in [0, 1] (got 7.0)"),
    ("text", {**PERSON, "label": ""}, f"spans[0].label '' is not a span label{BATCH_LABELS}"),
    ("text", {**PERSON, "label": "BANANA"}, "label 'BANANA' is not a span label of this batch"),
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


def mixed_batch(store: Store, **queue_options: float) -> ReviewQueue:
    """A batch of images (circles and squares) and texts (PERSON and ORG spans), enqueued."""
    fill(store, review=1, audit=0, accepted=12, modality="image")
    fill(store, review=1, audit=0, accepted=12, modality="text")
    queue = ReviewQueue(store, annotators_per_item=1, **queue_options)
    queue.enqueue_batch("b1")
    return queue


def test_a_fix_keeps_to_its_own_modalitys_labels_in_a_mixed_batch(store: Store) -> None:
    """A box may not take a span label, nor a span an object class, though the batch holds
    both: each is refused, named with the labels of its own kind, and nothing is recorded."""
    queue = mixed_batch(store, gold_rate=0.0)
    tasks = {t.sample.spec.modality: t for t in (queue.next_item("ann"), queue.next_item("bob"))}
    image, text = tasks["image"], tasks["text"]
    assert queue.fix_labels(image.item_id) == ["circle", "square"]
    assert queue.fix_labels(text.item_id) == ["ORG", "PERSON"]
    box = image.sample.objects[0].model_copy(update={"category": "PERSON"})
    with pytest.raises(
        InputError, match=re.escape(f"'PERSON' is not an object class{BATCH_CLASSES}")
    ):
        queue.decide(image.item_id, "ann", Decision(verdict="fix", objects=[box]))
    span = text.sample.spans[0].model_copy(update={"label": "circle"})
    with pytest.raises(InputError, match=re.escape(f"'circle' is not a span label{BATCH_LABELS}")):
        queue.decide(text.item_id, "bob", Decision(verdict="fix", spans=[span]))
    for task in (image, text):
        assert store.get_sample(task.sample.id).status == "review"
    square = image.sample.objects[0].model_copy(update={"category": "square"})
    queue.decide(image.item_id, "ann", Decision(verdict="fix", objects=[square]))
    assert store.get_sample(image.sample.id).objects == [square]


def test_a_batch_enqueued_with_one_list_of_labels_keeps_it_for_both_modalities(
    sqlite_store: Store,
) -> None:
    """A batch enqueued before the labels were kept by modality has one list of both kinds:
    its fixes are checked against it as they were then, until `review enqueue` runs again."""
    queue = mixed_batch(sqlite_store, gold_rate=0.0)
    with queue.write() as connection:
        connection.execute(review_batches.update().values(labels=["ORG", "PERSON", "circle"]))
    image, text = queue.next_item("ann"), queue.next_item("bob")
    if text.sample.objects:
        image, text = text, image
    assert queue.fix_labels(image.item_id) == queue.fix_labels(text.item_id)
    assert queue.fix_labels(image.item_id) == ["ORG", "PERSON", "circle"]
    box = image.sample.objects[0].model_copy(update={"category": "PERSON"})
    who = "ann" if queue.next_item("ann").item_id == image.item_id else "bob"
    queue.decide(image.item_id, who, Decision(verdict="fix", objects=[box]))
    queue.enqueue_batch("b1")  # enqueued again: kept by modality from now on
    assert queue.fix_labels(text.item_id) == ["ORG", "PERSON"]
    # (the box fixed to PERSON is the batch's now: a class a fix of an image may use)
    assert queue.fix_labels(image.item_id) == ["PERSON", "circle", "square"]


def test_honeypots_of_a_mixed_batch_keep_to_their_modalitys_labels(sqlite_store: Store) -> None:
    """A honeypot's wrong class is another label of its own kind: a box labelled PERSON in a
    batch of images and texts would tell a gold task from real work at a glance."""
    mixed_batch(sqlite_store, gold_rate=0.9, seed=5)
    with sqlite_store.engine.connect() as connection:
        rows = connection.execute(
            select(review_items.c.modality, gold_answers.c.shown, gold_answers.c.defect).join(
                gold_answers, gold_answers.c.item_id == review_items.c.id
            )
        ).all()
    shown = {
        modality: [Sample.model_validate_json(s) for m, s, _ in rows if m == modality]
        for modality in ("image", "text")
    }
    assert {d for _, _, d in rows} >= {"wrong_class"}
    assert shown["image"] and shown["text"]
    assert {o.category for s in shown["image"] for o in s.objects} <= {"circle", "square"}
    assert {s.label for t in shown["text"] for s in t.spans} <= {"ORG", "PERSON"}


def apart(sample: Sample, **update: object) -> Sample:
    """`sample` as gold put in by hand from a batch never enqueued ("gold-set")."""
    spec = sample.spec.model_copy(update={"batch_id": "gold-set"})
    return sample.model_copy(update={"id": f"gold-set-{sample.id}", "spec": spec, **update})


def test_gold_from_a_batch_never_enqueued_lists_the_labels_real_work_lists(store: Store) -> None:
    """Gold put in apart from a batch (one square; one PERSON span) is tied to the queue's
    batch: it lists the labels of its kind that batch does, as real work of it does, and takes
    a fix to one its sample lacks; with a second batch of other classes, still that batch's
    alone (before, those of both: a list no real task shows). Gold put in untied by an older
    synthgate lists those of both, as it did. A database whose batches keep no labels
    (enqueued before they were kept) lists each sample's own, gold or real."""
    # seeded: which of the two gold tasks each annotator below meets is drawn from the queue's
    # gold key, a random secret per database unless a seed is given (1 run in ~16 none met
    # the image)
    queue = mixed_batch(store, gold_rate=0.0, seed=0)
    square = make_sample(40, "accepted")
    square.objects = square.objects[1:]
    person = make_sample(41, "accepted", modality="text")
    person.spans = person.spans[:1]
    image = queue.add_gold(apart(square), expected=["accept"])
    text = queue.add_gold(apart(person), expected=["accept"])
    assert queue.fix_labels(image) == ["circle", "square"]
    assert queue.fix_labels(text) == ["ORG", "PERSON"]
    with queue.write() as connection:
        labels = [dict(connection.execute(select(review_batches.c.labels)).scalar_one())]
        connection.execute(
            review_batches.insert().values(batch_id="b2", labels={"image": ["dog"], "text": []})
        )
    assert queue.fix_labels(image) == ["circle", "square"]
    assert queue.fix_labels(text) == ["ORG", "PERSON"]
    with queue.write() as connection:  # as an older synthgate left it: its sample's batch
        untie = review_items.update().where(review_items.c.id == image)
        connection.execute(untie.values(batch_id="gold-set"))
    assert queue.fix_labels(image) == ["circle", "dog", "square"]
    with queue.write() as connection:
        connection.execute(untie.values(batch_id="b1"))
    with queue.write() as connection:
        connection.execute(review_batches.update().values(labels=None))
    assert queue.fix_labels(image) == queue.fix_labels(text) == []
    with queue.write() as connection:
        connection.execute(
            review_batches.update()
            .where(review_batches.c.batch_id == "b1")
            .values(labels=labels[0])
        )
        connection.execute(review_batches.delete().where(review_batches.c.batch_id == "b2"))
    queue.gold_rate = 1.0
    who = next(
        name for name in ("ann", "bob", "cy", "dee") if queue.next_item(name).item_id == image
    )
    circle = square.objects[0].model_copy(update={"category": "circle"})
    queue.decide(image, who, Decision(verdict="fix", objects=[circle]))


def tied_batch(queue: ReviewQueue, item: int) -> str:
    with queue.store.engine.connect() as connection:
        return connection.execute(
            select(review_items.c.batch_id).where(review_items.c.id == item)
        ).scalar_one()


def test_hand_gold_is_tied_to_the_batch_whose_labels_it_has(store: Store) -> None:
    """`review gold` on a sample of a batch never enqueued, with batches of other classes in
    the queue: tied to the one batch holding every class of the sample, its Fix form lists that
    batch's labels, read as a real task's are (one row, not one per batch: 0.68 ms against
    0.027 ms with 200 batches). A sample two batches could hold, or one holding a class the
    batch named lacks, or a batch not in the queue, is refused, naming them; gold put in
    untied before is tied when `review gold` runs on it again, keeping its item. Its image is
    found in the batch's folder, as a real task's (before: none, its own batch unknown)."""
    from synthgate.review.items import ITEM_LABELS

    queue = mixed_batch(store, gold_rate=0.0)
    queue.enqueue_batch("b1", image_root="s3://bucket/r1/")
    with queue.write() as connection:
        connection.execute(
            review_batches.insert(),
            [
                {"batch_id": f"x{i}", "labels": {"image": ["circle", f"k{i}"], "text": []}}
                for i in range(3)
            ],
        )
    real = queue.next_item("ann")
    assert real is not None and real.sample.spec.modality == "image"
    both = make_sample(40, "accepted")  # a circle and a square: only b1 holds both
    item = queue.add_gold(apart(both), expected=["accept"])
    assert tied_batch(queue, item) == "b1"
    assert queue.fix_labels(item) == queue.fix_labels(real.item_id) == ["circle", "square"]
    with queue.store.engine.connect() as connection:
        for each in (item, real.item_id):
            assert len(ITEM_LABELS.run(connection, {"item": each}).all()) == 1
    odd = make_sample(41, "accepted")
    odd.objects = [odd.objects[0].model_copy(update={"category": "k2"})]
    assert tied_batch(queue, queue.add_gold(apart(odd), expected=["accept"])) == "x2"
    circle = make_sample(42, "accepted")
    circle.objects = circle.objects[:1]
    with pytest.raises(InputError, match=r"any of the batches b1, x0, x1, x2; .* batch=ID$"):
        queue.add_gold(apart(circle), expected=["accept"])
    assert tied_batch(queue, queue.add_gold(apart(circle), expected=["accept"], batch="x1")) == "x1"
    apiece = make_sample(43, "accepted")  # a square and a k0: no batch has both
    apiece.objects[0].category = "k0"
    with pytest.raises(
        InputError, match=r"labels k0, square, which no batch .* \(b1, x0, x1, x2\)"
    ):
        queue.add_gold(apart(apiece), expected=["accept"])
    with pytest.raises(InputError, match=r"'square', which batch x0 lacks \(it has circle, k0\)"):
        queue.add_gold(apart(make_sample(43, "accepted")), expected=["accept"], batch="x0")
    with pytest.raises(InputError, match=r"batch=nope: no such batch .* one of b1, x0, x1, x2"):
        queue.add_gold(apart(make_sample(43, "accepted")), expected=["accept"], batch="nope")
    with queue.store.engine.connect() as connection:
        keys = connection.execute(select(review_items.c.key).where(review_items.c.kind == "gold"))
        assert set(keys.scalars()) == {f"gold:gold-set-{s.id}" for s in (both, odd, circle)}
    with queue.write() as connection:  # as an older synthgate left it: its sample's batch
        connection.execute(
            review_items.update().where(review_items.c.id == item).values(batch_id="gold-set")
        )
    assert queue.fix_labels(item) == ["circle", "k0", "k1", "k2", "square"]
    assert queue.add_gold(apart(both), expected=["accept"]) == item
    assert tied_batch(queue, item) == "b1" and queue.fix_labels(item) == ["circle", "square"]


def test_hand_gold_before_any_batch_keeps_its_samples_batch(store: Store) -> None:
    """Gold put in before any batch of its kind is enqueued stays with its sample's batch, as
    before: enqueued later, that batch's labels are its."""
    fill(store, review=1, audit=0, accepted=2)
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.0)
    item = queue.add_gold(make_sample(2, "accepted"), expected=["accept"])
    assert tied_batch(queue, item) == "b1"
    queue.enqueue_batch("b1")
    assert queue.fix_labels(item) == ["circle", "square"]


def second_batch(queue: ReviewQueue) -> None:
    """A batch b2 of the same object classes as b1, in the queue beside it."""
    with queue.write() as connection:
        connection.execute(
            review_batches.insert(),
            [{"batch_id": "b2", "labels": {"image": ["circle", "square"], "text": []}}],
        )


def test_correcting_a_gold_answer_keeps_the_batch_it_is_tied_to(store: Store) -> None:
    """`review gold S --expect ...` again, the documented way to correct a mistyped answer,
    keeps the batch the gold is tied to: before, gold tied with `--batch b2` moved back to its
    own batch b1 (its Fix form changing under an annotator holding it), and gold of a batch
    never enqueued tied with `--batch` was refused unless `--batch` was typed again."""
    queue = mixed_batch(store, gold_rate=0.0)
    second_batch(queue)
    own = make_sample(40, "accepted")  # a sample of b1
    item = queue.add_gold(own, expected=["accept"], batch="b2")
    assert queue.add_gold(own, expected=["reject"]) == item
    assert tied_batch(queue, item) == "b2"
    kept = queue.add_gold(apart(own), expected=["accept"], batch="b2")
    assert queue.add_gold(apart(own), expected=["reject"]) == kept
    assert tied_batch(queue, kept) == "b2"
    assert queue.add_gold(own, expected=["reject"], batch="b1") == item  # named: tied anew
    assert tied_batch(queue, item) == "b1"


def test_gold_of_a_batch_keeping_no_labels_of_its_kind_stays_with_its_batch(
    store: Store,
) -> None:
    """A classification-text batch b1 (its texts have no spans: it keeps text labels []) beside
    NER batches: gold of a b1 text lists what b1's real texts list (none), not an NER batch's
    span labels; before, it was tied to the one NER batch, and with two `review gold` refused."""
    fill(store, review=2, audit=0, accepted=4, modality="text")
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.0)
    queue.enqueue_batch("b1")
    with queue.write() as connection:
        connection.execute(
            review_batches.update()
            .where(review_batches.c.batch_id == "b1")
            .values(labels={"image": [], "text": []})  # as a classification batch keeps them
        )
        connection.execute(
            review_batches.insert(),
            [{"batch_id": "b2", "labels": {"image": [], "text": ["ORG", "PERSON"]}}],
        )
    real = queue.next_item("ann")
    assert real is not None and queue.fix_labels(real.item_id) == []
    classification = make_sample(4, "accepted", modality="text")
    classification.spans = []
    item = queue.add_gold(classification, expected=["accept"])
    assert tied_batch(queue, item) == "b1"
    assert queue.fix_labels(item) == queue.fix_labels(real.item_id)
    with queue.write() as connection:
        connection.execute(
            review_batches.insert(),
            [{"batch_id": "b3", "labels": {"image": [], "text": ["DATE"]}}],
        )
    other = make_sample(5, "accepted", modality="text")
    other.spans = []
    assert tied_batch(queue, queue.add_gold(other, expected=["accept"])) == "b1"


def test_enqueue_batch_refuses_a_batch_id_the_database_lacks(tmp_path: Path) -> None:
    """The config's name where its batch id goes (as `review enqueue --batch` refuses it): an
    InputError pointing to the id, and no review batch recorded for it."""
    import synthgate as sg

    shapes = {
        "name": "shapes",
        "seed": 3,
        "categories": ["circle", "square", "triangle"],
        "image": {"generator": "procedural", "count": 4, "size": [64, 64]},
    }
    run = sg.run(shapes, out=tmp_path / "run")
    store = Store(f"sqlite:///{Path(run.out) / 'synthgate.db'}")
    try:
        queue = ReviewQueue(store, seed=1)
        for wrong, fix in (("shapes", f"e.g. {run.batch_id}"), ("nope", "synthgate run CONFIG")):
            with pytest.raises(InputError, match=f"batch={wrong}: no such batch") as refused:
                queue.enqueue_batch(wrong)
            assert fix in str(refused.value)
        with store.engine.connect() as connection:
            kept = list(connection.execute(select(review_batches.c.batch_id)).scalars())
        assert kept == []  # nothing recorded for a batch that is not there
        assert queue.enqueue_batch(run.batch_id) >= 0  # the real id is taken
    finally:
        store.close()
