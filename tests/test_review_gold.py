"""Gold tasks: every honeypot defect is injected as described and deterministically; decisions on
gold are scored for accuracy and per-criterion sensitivity; rubric-vs-human kappa equals
scikit-learn's."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from synthgate.masks import decode_mask, encode_mask, tight_bbox
from synthgate.review import gold
from synthgate.review.queue import Decision, ReviewQueue
from synthgate.review.report import ROUTE_OF_VERDICT, agreement_report, validator_vs_human
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

TEXT = "Anna Berg from Acme GmbH called about order 4411."


def sample(modality: str, index: int = 0, *, route: str = "accepted", score: float = 4.0) -> Sample:
    spec = SampleSpec(batch_id="g", index=index, modality=modality, generator="x", seed=index)
    common = {
        "id": sample_id("g", modality, index),
        "spec": spec,
        "provenance": Provenance(generator="x", generator_version="1", seed=index),
        "report": RubricReport(
            rubric="r", score=score, levels={c: 5 for c in CRITERIA}, route=route
        ),
        "status": "review" if route == "review" else route,
    }
    if modality == "image":
        return Sample(
            **common,
            uri="images/a.png",
            width=100,
            height=80,
            objects=[
                ObjectLabel(category="circle", bbox=[10, 10, 20, 20], area=400.0),
                ObjectLabel(category="square", bbox=[60, 40, 30, 30], area=900.0),
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


def batch_of(modality: str) -> gold.BatchLooks:
    """A batch whose samples have 1 to 3 labels: a honeypot may drop or add one."""
    looks = gold.BatchLooks()
    made = sample(modality)
    looks.add(made)
    if modality == "image":
        looks.add(made.model_copy(update={"objects": made.objects[:1]}))
        looks.add(made.model_copy(update={"objects": [*made.objects, made.objects[0]]}))
    else:
        order = Span(start=TEXT.index("4411"), end=TEXT.index("4411") + 4, label="ORDER")
        city = made.spans[1].model_copy(update={"label": "CITY"})  # a third label of names
        looks.add(made.model_copy(update={"spans": made.spans[:1]}))
        looks.add(made.model_copy(update={"spans": [*made.spans, order]}))
        looks.add(made.model_copy(update={"spans": [made.spans[0], city]}))
    return looks


CLASSES = ["circle", "square", "PERSON", "ORG", "CITY"]


def find_seed(modality: str, defect: str) -> int:
    for seed in range(200):
        made = gold.make_honeypot(sample(modality), CLASSES, seed=[seed], batch=batch_of(modality))
        if made.defect == defect:
            return seed
    raise AssertionError(f"no seed makes {defect}")


@pytest.mark.parametrize(
    ("modality", "defect", "criterion"),
    [
        ("image", "shifted_box", "precision"),  # dropped and extra objects: masked() below
        ("image", "wrong_class", "correctness"),
        ("text", "shifted_span", "precision"),
        ("text", "dropped_label", "completeness"),
        ("text", "extra_label", "correctness"),
        ("text", "wrong_class", "correctness"),
    ],
)
def test_each_defect_is_injected_as_described(modality: str, defect: str, criterion: str) -> None:
    original = sample(modality)
    seed = find_seed(modality, defect)
    made = gold.make_honeypot(original, CLASSES, seed=[seed], batch=batch_of(modality))
    assert (made.defect, made.criterion, made.expected) == (defect, criterion, ["reject", "fix"])
    again = gold.make_honeypot(original, CLASSES, seed=[seed], batch=batch_of(modality))
    assert again.shown == made.shown  # deterministic
    assert original == sample(modality)  # the source sample is not touched
    before = original.objects if modality == "image" else original.spans
    after = made.shown.objects if modality == "image" else made.shown.spans
    if defect == "dropped_label":
        assert len(after) == len(before) - 1
        return
    if defect == "extra_label":  # "Anna Berg from Acme GmbH called about order 4411."
        (extra,) = [a for a in after if a not in before]
        assert len(after) == len(before) + 1 and extra.value == TEXT[extra.start : extra.end]
        # the free words that look like the values of a label the text lacks: a number (ORDER)
        assert (extra.value, extra.label) == ("4411", "ORDER")
        return
    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert len(changed) == 1
    b, a = changed[0]
    if defect == "shifted_box":  # no mask here: the box moves, inside the image
        assert a.bbox[2:] == b.bbox[2:] and a.bbox[:2] != b.bbox[:2]
        assert a.bbox[0] >= 0 and a.bbox[1] >= 0
        assert a.bbox[0] + a.bbox[2] <= 100 and a.bbox[1] + a.bbox[3] <= 80
    elif defect == "wrong_class":
        old, new = (b.category, a.category) if modality == "image" else (b.label, a.label)
        assert new != old and new in CLASSES
        if modality == "text":  # a names label the text lacks
            assert new == "CITY"
    else:  # a whole word more or less, on word boundaries
        assert (a.start, a.end) != (b.start, b.end) and a.value == TEXT[a.start : a.end]
        words = {m.span() for m in re.finditer(r"\w+", TEXT)}
        assert a.start in {w[0] for w in words} and a.end in {w[1] for w in words}


def test_labels_are_dropped_only_where_they_could_be_added_too() -> None:
    # no masks: no extra object can be drawn, so none is dropped either
    defects = {
        gold.make_honeypot(sample("image"), CLASSES, seed=[s], batch=batch_of("image")).defect
        for s in range(60)
    }
    assert defects == {"shifted_box", "wrong_class"}
    with_masks = {
        gold.make_honeypot(masked(), CLASSES, seed=[s], batch=masked_batch()).defect
        for s in range(60)
    }
    assert {"dropped_label", "extra_label"} <= with_masks


def test_labels_are_dropped_or_added_only_within_the_batchs_range() -> None:
    alone = {gold.make_honeypot(sample("text"), CLASSES, seed=[s]).defect for s in range(60)}
    # every sample of its batch has 2 spans, and both its labels are in the text already
    assert alone == {"shifted_span"}
    wide = {
        gold.make_honeypot(sample("text"), CLASSES, seed=[s], batch=batch_of("text")).defect
        for s in range(60)
    }
    assert {"dropped_label", "extra_label"} <= wide


def test_nothing_to_break_gives_no_honeypot() -> None:
    empty = sample("image").model_copy(update={"objects": []})
    assert gold.make_honeypot(empty, ["circle"], seed=[0]) is None


def masked(index: int = 0) -> Sample:
    """A procedural-looking image: three objects with disjoint masks, `shape` per class and a
    `z` order, the first of the quota class."""
    height, width = 80, 120
    objects = []
    for z, (category, x0) in enumerate((("circle", 5), ("square", 45), ("circle", 85))):
        mask = np.zeros((height, width), dtype=bool)
        mask[20:50, x0 : x0 + 25] = True
        objects.append(
            ObjectLabel(
                category=category,
                bbox=tight_bbox(mask),
                mask=encode_mask(mask),
                area=float(mask.sum()),
                attributes={"shape": category, "fill": f"f{z}", "z": z},
            )
        )
    base = sample("image", index)
    base.spec.category = "circle"
    return base.model_copy(update={"objects": objects, "width": width, "height": height})


def honeypots_of(defect: str, made: Sample, looks: gold.BatchLooks | None = None) -> list[Sample]:
    found = []
    for seed in range(300):
        pot = gold.make_honeypot(made, ["circle", "square"], seed=[seed], batch=looks)
        if pot.defect == defect:
            found.append(pot.shown)
    assert found, defect
    return found


def masked_batch() -> gold.BatchLooks:
    looks = gold.BatchLooks()
    made = masked()
    for count in (1, 3, 4):
        looks.add(made.model_copy(update={"objects": (made.objects * 2)[:count]}))
    return looks


def test_a_shifted_box_moves_with_its_mask_keeping_shape_area_and_masks_apart() -> None:
    original = masked()
    for shown in honeypots_of("shifted_box", original, masked_batch())[:10]:
        masks = [decode_mask(o.mask) for o in shown.objects]
        changed = [i for i, o in enumerate(shown.objects) if o != original.objects[i]]
        assert len(changed) == 1
        (i,) = changed
        before, after = original.objects[i], shown.objects[i]
        assert after.area == before.area and after.bbox[2:] == before.bbox[2:]
        assert after.bbox[:2] != before.bbox[:2]
        for obj, mask in zip(shown.objects, masks, strict=True):
            assert obj.bbox == tight_bbox(mask) and obj.area == float(mask.sum())
        assert sum(m.astype(int) for m in masks).max() == 1  # no pixel in two masks


def test_an_extra_object_is_a_plausible_new_one_on_top_in_free_pixels() -> None:
    original = masked()
    for shown in honeypots_of("extra_label", original, masked_batch())[:10]:
        assert len(shown.objects) == 4 and shown.objects[:3] == original.objects
        extra = shown.objects[3]
        mask = decode_mask(extra.mask)
        assert extra.bbox == tight_bbox(mask) and extra.area == float(mask.sum())
        assert extra.attributes["shape"] == extra.category  # as every object of its class
        assert extra.attributes["z"] == 3 and extra.visible_fraction == 1.0
        assert extra.area not in {o.area for o in original.objects}  # not a copy
        masks = [decode_mask(o.mask) for o in shown.objects]
        assert sum(m.astype(int) for m in masks).max() == 1


def test_a_dropped_object_leaves_no_gap_in_z_and_keeps_the_quota_class() -> None:
    for shown in honeypots_of("dropped_label", masked(), masked_batch()):
        assert sorted(o.attributes["z"] for o in shown.objects) == [0, 1]
        assert any(o.category == "circle" for o in shown.objects)


def test_a_wrong_class_takes_the_attributes_of_its_new_class() -> None:
    looks = masked_batch()
    for shown in honeypots_of("wrong_class", masked(), looks):
        for obj in shown.objects:
            assert obj.attributes["shape"] == obj.category  # consistent, as in the batch
        assert any(o.category == "circle" for o in shown.objects)  # the quota class stays
    assert looks.class_attributes("circle") == {"shape": "circle"}  # fill and z vary


def test_a_span_is_relabelled_only_to_a_label_whose_values_look_alike() -> None:
    looks = gold.BatchLooks()
    text = "Call Anna Berg at 555 0199 about order 4411."
    looks.add(
        sample("text").model_copy(
            update={
                "text": text,
                "spans": [
                    Span(start=5, end=14, label="PERSON", value="Anna Berg"),
                    Span(start=18, end=26, label="PHONE", value="555 0199"),
                    Span(start=39, end=43, label="ORDER", value="4411"),
                ],
            }
        )
    )
    looks.add(sample("text"))  # ORG looks like names too
    made = sample("text").model_copy(update={"spans": sample("text").spans[:1]})  # PERSON only
    relabelled = 0
    for seed in range(100):
        pot = gold.make_honeypot(
            made, ["PERSON", "ORG", "PHONE", "ORDER"], seed=[seed], batch=looks
        )
        if pot.defect == "wrong_class":
            assert [s.label for s in pot.shown.spans] == ["ORG"]  # names stay names
            relabelled += 1
    assert relabelled
    assert gold.value_look("555 0199") == "number" and gold.value_look("a@b.c") == "email"
    assert gold.value_look("last week") == "phrase" and gold.value_look("Acme GmbH") == "name"


def test_blind_shows_neither_the_verdict_nor_the_construction_record() -> None:
    original = sample("image")
    original.provenance.params = {"objects_placed": 2, "template_index": 4}
    original.spec.params = {"size": [64, 64]}
    before = original.model_copy(deep=True)
    shown = gold.blind(original)
    assert shown.report is None and shown.provenance.params == {} and shown.status == "review"
    assert shown.spec.params == {}
    labels = [
        o.model_copy(update={"attributes": {"ref": i}}) for i, o in enumerate(original.objects)
    ]
    assert shown.objects == labels  # an object's attributes by its place alone
    original.objects[0].attributes["z"] = 7  # the source's (a generated object's z) stay with it
    assert [o.attributes for o in shown.objects] == [{"ref": i} for i in range(len(labels))]
    original.objects[0].attributes.pop("z")
    assert original == before  # the record is left out of the copy, not cleared in place


def test_one_category_never_makes_a_wrong_class() -> None:
    circles = sample("image")
    for obj in circles.objects:
        obj.category = "circle"
    defects = {gold.make_honeypot(circles, ["circle"], seed=[s]).defect for s in range(60)}
    assert defects == {"shifted_box"}  # alone in its batch: no label to drop or add either


@pytest.mark.parametrize(
    ("rate", "items", "expected"),
    [(0.1, 9, 1), (0.2, 8, 2), (0.5, 4, 4), (0.0, 10, 0), (0.1, 0, 0)],
)
def test_honeypot_count(rate: float, items: int, expected: int) -> None:
    assert gold.honeypot_count(items, rate) == expected


def test_gold_accuracy_and_sensitivity_in_the_report(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'synthgate.db'}")
    rows = [sample("image", i, route="review") for i in range(4)] + [
        sample("image", 10 + i) for i in range(6)
    ]
    store.upsert_samples(rows)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.5, seed=7)
    queue.enqueue_batch("g")
    for who in ("sharp", "blunt"):
        while (task := queue.next_item(who)) is not None:
            # no audit items here, so a task that looks like one is a honeypot
            is_gold = task.sample.report.route == "accepted"
            if who == "sharp" and is_gold:
                decision = Decision(verdict="reject", levels={c: 1 for c in CRITERIA})
            else:
                decision = Decision(verdict="accept", levels={c: 5 for c in CRITERIA})
            queue.decide(task.item_id, who, decision)
    report = agreement_report(store)["gold"]
    assert report["sharp"]["accuracy"] == 1.0 and report["blunt"]["accuracy"] == 0.0
    assert report["sharp"]["decided"] >= 1 and report["sharp"]["sensitivity"]
    for criterion, entry in report["sharp"]["sensitivity"].items():
        assert criterion in gold.DEFECTS.values() and entry["rate"] == 1.0
    assert all(entry["rate"] == 0.0 for entry in report["blunt"]["sensitivity"].values())
    store.close()


def _gold_kinds(path: Path, *, first: bool = False) -> list[str]:
    """The kinds of the tasks 'bob' is given on the database at `path` (a store opened anew, as
    a server restart does), worked to the end; `first`: only the first task, left open."""
    from sqlalchemy import select

    from synthgate.storage.tables import review_items

    store = Store(f"sqlite:///{path}")
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.5)  # no seed: as served
    seen = []
    while (task := queue.next_item("bob")) is not None:
        seen.append(task.item_id)
        if first:
            break
        queue.decide(task.item_id, "bob", Decision(verdict="accept", levels={}))
    with store.engine.connect() as connection:
        kinds = dict(connection.execute(select(review_items.c.id, review_items.c.kind)).all())
    store.close()
    return [kinds[item] for item in seen]


def test_gold_positions_are_keyed_by_a_secret_of_the_database(tmp_path: Path) -> None:
    """Who meets gold when cannot be worked out from the annotator's name and the code: two
    databases of the same batch hand 'bob' gold at other positions, while one database hands it
    at the same positions after a restart (here: the same database copied, then reopened)."""
    for name in ("a.db", "b.db"):
        store = Store(f"sqlite:///{tmp_path / name}")
        store.upsert_samples(
            [sample("image", i, route="review") for i in range(20)]
            + [sample("image", 40 + i) for i in range(24)]
        )
        ReviewQueue(store, annotators_per_item=1, gold_rate=0.5).enqueue_batch("g")
        store.close()
    _gold_kinds(tmp_path / "a.db", first=True)  # the first claim keeps the key
    shutil.copy(tmp_path / "a.db", tmp_path / "a-again.db")
    served = _gold_kinds(tmp_path / "a.db")  # the open first task again, then the rest
    assert _gold_kinds(tmp_path / "a-again.db") == served
    assert served.count("gold") >= 5 and served.count("sample") == 20
    assert _gold_kinds(tmp_path / "b.db") != served


def _gold_queue(path: Path) -> ReviewQueue:
    """A queue (its store open at `path`) over a batch of 12 review and 14 accepted images."""
    store = Store(f"sqlite:///{path}")
    store.upsert_samples(
        [sample("image", i, route="review") for i in range(12)]
        + [sample("image", 20 + i) for i in range(14)]
    )
    return ReviewQueue(store, annotators_per_item=2, gold_rate=0.3, seed=3)


def _gold_set(tmp_path: Path, name: str) -> list[tuple[object, ...]]:
    """The gold items and answers the batch of `_gold_queue` enqueues."""
    queue = _gold_queue(tmp_path / name)
    queue.enqueue_batch("g")
    queue.enqueue_batch("g")  # a second time adds nothing
    rows = _gold_rows(queue.store)
    queue.store.close()
    return rows


def _gold_rows(store: Store) -> list[tuple[object, ...]]:
    """The gold items with their answers: ids, keys, places in the gold order."""
    from sqlalchemy import select

    from synthgate.storage.tables import gold_answers, review_items

    query = (
        select(review_items.c.id, review_items.c.key, review_items.c.priority, gold_answers)
        .join(gold_answers, gold_answers.c.item_id == review_items.c.id)
        .order_by(review_items.c.id)
    )
    with store.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]


@pytest.mark.parametrize("chunk", [1, 4])
def test_honeypots_written_in_chunks_are_those_written_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    from synthgate.review import enqueue

    at_once = _gold_set(tmp_path, "once.db")
    # 1: a write transaction per honeypot, as they were written before they were batched
    monkeypatch.setattr(enqueue, "CHUNK", chunk)
    # and the accepted samples read 3 or 6 to a query, not 100
    monkeypatch.setattr(enqueue, "READ_AHEAD", chunk + 2)
    in_chunks = _gold_set(tmp_path, "chunks.db")
    assert len(at_once) == gold.honeypot_count(12, 0.3) == 6
    assert in_chunks == at_once  # the same ids, keys, places in the gold order and answers
    assert len({row[1] for row in at_once}) == len(at_once)  # one answer per item


@pytest.mark.parametrize("sources_added", [0, 8])
def test_enqueue_again_counts_the_honeypots_held_and_makes_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sources_added: int
) -> None:
    """Also when the batch has more accepted samples now (8: a new seeded order of the sources,
    in which held honeypots fell past the 6 wanted and new ones were made)."""
    queue = _gold_queue(tmp_path / "q.db")
    store = queue.store
    queue.enqueue_batch("g")
    first = _gold_rows(store)
    store.upsert_samples([sample("image", 40 + i) for i in range(sources_added)])

    def made_again(*args: object, **kwargs: object) -> None:
        raise AssertionError("a honeypot the gold set holds was made again")

    monkeypatch.setattr(gold, "make_honeypot", made_again)
    made: list[tuple[int, int]] = []
    queue.enqueue_batch("g", gold_progress=lambda *a: made.append(a))
    assert made == [(n, 6) for n in range(1, 7)]  # the 6 held count as made
    assert _gold_rows(store) == first and len(first) == 6
    store.close()


def test_enqueue_after_review_makes_no_honeypot_of_reviewed_samples(tmp_path: Path) -> None:
    """A reviewed sample accepted by people is accepted as the rubric's are, but it was real
    work: enqueueing the batch again made new honeypots (3 became 6 in a reported run), some of
    samples people had decided, as the longer list of sources reshuffled their order."""
    from sqlalchemy import select

    from synthgate.storage.tables import review_items

    queue = _gold_queue(tmp_path / "q.db")
    store = queue.store
    queue.enqueue_batch("g")
    first = _gold_rows(store)
    for who in ("ann", "bea"):
        while (task := queue.next_item(who)) is not None:
            queue.decide(task.item_id, who, Decision(verdict="accept", levels={}))
    with store.engine.connect() as connection:
        real = set(
            connection.execute(
                select(review_items.c.sample_id).where(
                    review_items.c.kind == "sample", review_items.c.status == "final"
                )
            ).scalars()
        )
    assert len(real) == 12  # every real item decided: its sample is accepted now
    assert queue.enqueue_batch("g") == 0
    again = _gold_rows(store)
    assert [row[:3] for row in again] == [row[:3] for row in first] and len(first) == 6
    assert not {row[1].removeprefix("honeypot:") for row in again} & real
    store.close()


def test_enqueue_reports_samples_read_and_gold_tasks_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import func, select

    from synthgate.review import enqueue
    from synthgate.storage.tables import review_items

    monkeypatch.setattr(enqueue, "CHUNK", 4)  # reported a chunk at a time: 4, 8, ..., 24, 26
    store = Store(f"sqlite:///{tmp_path / 'q.db'}")
    store.upsert_samples(
        [sample("image", i, route="review") for i in range(12)]
        + [sample("text", i, route="review") for i in range(2)]
        + [sample("image", 20 + i) for i in range(10)]
        + [sample("text", 20 + i) for i in range(2)]
    )
    read: list[tuple[int, int]] = []
    made: list[tuple[int, int]] = []
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.5, seed=3)
    queue.enqueue_batch(
        "g", progress=lambda *a: read.append(a), gold_progress=lambda *a: made.append(a)
    )
    assert read == [(n, 26) for n in (4, 8, 12, 16, 20, 24, 26)]
    with store.engine.connect() as connection:
        golds = connection.execute(
            select(func.count()).where(review_items.c.kind == "gold")
        ).scalar_one()
    # 12 image items call for 12 honeypots, 2 text items for 2; 10 images were accepted, so
    # fewer are made than wanted and the count ends with what was made as its total
    assert 0 < golds <= 12
    assert made == [(n, 14) for n in range(1, golds + 1)] + [(golds, golds)]
    store.close()


def test_validator_vs_human_kappa_equals_sklearn() -> None:
    verdicts = ["accept", "accept", "reject", "fix", "accept", "reject", "accept", "fix"]
    routes = [
        "accepted",
        "review",
        "review",
        "review",
        "accepted",
        "rejected",
        "review",
        "accepted",
    ]
    finals = [
        (sample("image", i, route=route, score=1 + i / 2), verdict)
        for i, (route, verdict) in enumerate(zip(routes, verdicts, strict=True))
    ]
    result = validator_vs_human(finals, min_items=2)
    expected = cohen_kappa_score(routes, [ROUTE_OF_VERDICT[v] for v in verdicts])
    assert result["kappa"]["value"] == pytest.approx(expected, abs=1e-9)
    assert result["confusion"]["review"] == {"accepted": 2, "rejected": 1, "review": 1}
    # the agreement report streams the reviewed samples from the database: one pass
    assert validator_vs_human(iter(finals), min_items=2) == result


def test_validator_vs_human_says_when_the_rubric_gave_every_sample_one_route() -> None:
    """Audit samples are all routed accepted: kappa is 0 whatever people say, as between
    annotators where one gave a single verdict, and the note says why (a lead read a kappa of
    0 beside 4 of 5 routed as people did and nothing else)."""
    verdicts = ["accept", "accept", "fix", "accept", "accept"]
    finals = [(sample("image", i, route="accepted"), v) for i, v in enumerate(verdicts)]
    kappa = validator_vs_human(finals, min_items=2)["kappa"]
    assert kappa["value"] == pytest.approx(0.0) and kappa["observed"] == pytest.approx(0.8)
    assert kappa["note"].startswith("the rubric gave 'accepted' to every item here: kappa is 0")
    # people varied as well as the rubric: no note, as before
    routes = ["accepted", "review", "accepted", "rejected", "accepted"]
    varied = [
        (sample("image", i, route=r), v)
        for i, (r, v) in enumerate(zip(routes, verdicts, strict=True))
    ]
    assert validator_vs_human(varied, min_items=2)["kappa"]["note"] == ""


def test_an_extra_object_on_top_takes_the_pixels_it_covers_from_those_below() -> None:
    looks = masked_batch()
    half = masked().objects[0].model_copy(update={"visible_fraction": 0.3})
    looks.add(masked().model_copy(update={"objects": [half]}))  # the batch has occlusion
    covering = 0
    for seed in range(300):
        pot = gold.make_honeypot(masked(), ["circle", "square"], seed=[seed], batch=looks)
        if pot.defect != "extra_label":
            continue
        shown, before = pot.shown, masked()
        masks = [decode_mask(o.mask) for o in shown.objects]
        assert sum(m.astype(int) for m in masks).max() == 1  # still no pixel in two masks
        for obj, mask, old in zip(shown.objects, masks, before.objects, strict=False):
            assert obj.bbox == tight_bbox(mask) and obj.area == float(mask.sum())
            assert obj.visible_fraction == pytest.approx(
                old.visible_fraction * obj.area / old.area, abs=1e-6
            )
            assert obj.visible_fraction >= 0.3
            covering += obj.area < old.area
    assert covering  # some extra objects were drawn over others


def test_a_gold_answer_is_corrected_until_someone_was_scored_against_it(tmp_path: Path) -> None:
    """`review gold SAMPLE --expect ...` again on a gold sample: a mistyped answer is replaced
    (it was kept, while the command said 'gold item N'); once a decision was scored against it,
    it is refused, naming the answer it keeps."""
    from sqlalchemy import select

    from synthgate.errors import InputError
    from synthgate.storage.tables import gold_answers

    store = Store(f"sqlite:///{tmp_path / 'synthgate.db'}")
    store.upsert_samples(
        [sample("image", i, route="review") for i in range(3)] + [sample("image", 9)]
    )
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.99, seed=3)
    queue.enqueue_batch("g")
    shown = store.get_sample(sample_id("g", "image", 9))
    assert shown is not None
    item = queue.add_gold(shown, expected=["accept"])

    def expected() -> list[str]:
        with store.engine.connect() as connection:
            query = select(gold_answers.c.expected).where(gold_answers.c.item_id == item)
            return list(connection.execute(query).scalar_one())

    assert queue.add_gold(shown, expected=["reject"]) == item and expected() == ["reject"]
    task = queue.next_item("ann")  # gold rides along with real work; at this rate, at once
    assert task is not None and task.item_id == item
    queue.decide(item, "ann", Decision(verdict="reject"))
    with pytest.raises(InputError, match=r"expecting \['reject'\], and 1 decision was scored"):
        queue.add_gold(shown, expected=["accept"])
    assert expected() == ["reject"]
    assert queue.add_gold(shown, expected=["reject"]) == item  # the same answer: nothing to change
    store.close()
