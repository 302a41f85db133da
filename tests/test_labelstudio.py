"""Label Studio interop: exported configs, predictions and annotations pass the
label-studio-sdk's own validator and converter; export -> import of the same decisions changes
nothing; decisions made in Label Studio come back as queue decisions; bad exports are refused
with a reason."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from synthgate.errors import InputError
from synthgate.generators.labels import encode_mask
from synthgate.review import labelstudio
from synthgate.review.interop import export_tasks, import_annotations
from synthgate.review.queue import Decision, ReviewQueue
from synthgate.review.tables import assignments, decisions, gold_answers, review_items
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
from synthgate.store import Store, samples

LabelInterface = pytest.importorskip("label_studio_sdk.label_interface").LabelInterface
Converter = pytest.importorskip("label_studio_sdk.converter").Converter

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


@pytest.fixture
def store(tmp_path: Path) -> Store:
    made = Store(f"sqlite:///{tmp_path / 'synthgate.db'}")
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


def test_box_percent_coordinates() -> None:
    sample = make_sample(0, "image")
    region = labelstudio.sample_regions(sample)[1]
    assert region["value"]["x"] == pytest.approx(100 * 30.5 / 64)
    assert region["value"]["y"] == pytest.approx(100 * 20.25 / 48)
    assert region["value"]["width"] == pytest.approx(100 * 12 / 64)
    assert region["value"]["height"] == pytest.approx(100 * 12 / 48)
    assert (region["original_width"], region["original_height"]) == (64, 48)


@pytest.mark.parametrize(
    ("modality", "shapes"), [("image", "rectangles"), ("image", "polygons"), ("text", "rectangles")]
)
def test_export_is_accepted_by_label_studio_sdk(
    store: Store, tmp_path: Path, modality: str, shapes: str
) -> None:
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    decide_everything(queue)
    out = tmp_path / f"{modality}.json"
    result = export_tasks(queue, out, include="all", modality=modality, shapes=shapes)
    config = result.config.read_text()
    interface = LabelInterface(config)
    interface.validate()  # raises on a config Label Studio would refuse
    tasks = json.loads(out.read_text())
    assert len(tasks) == result.count == 4
    for task in tasks:
        # validate_task itself calls validate_annotation() without its argument (an SDK bug in
        # 2.1.2), so the data keys are checked alone and each prediction/annotation on its own
        assert interface.validate_task({"data": task["data"]}) is True
        for prediction in task["predictions"]:
            assert interface.validate_prediction(prediction, return_errors=True) == []
        for annotation in task["annotations"]:
            assert interface.validate_prediction(annotation, return_errors=True) == []
    if shapes == "polygons":
        types = {r["type"] for t in tasks for r in t["predictions"][0]["result"]}
        assert types == {
            "polygonlabels",
            "rectanglelabels",
        }  # the mask as polygon, the box without one


def test_sdk_rejects_a_broken_config() -> None:
    """The validator is not a rubber stamp: a control pointing at a missing object fails."""
    broken = labelstudio.labeling_config("image", ["circle"], ["precision"]).replace(
        'toName="image"', 'toName="picture"', 1
    )
    with pytest.raises(Exception):  # noqa: B017 - the SDK raises its own exception types
        LabelInterface(broken).validate()


def test_sdk_converter_reads_the_decisions_back_to_the_same_pixels(
    store: Store, tmp_path: Path
) -> None:
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    decide_everything(queue)
    out = tmp_path / "image.json"
    result = export_tasks(queue, out, include="all", modality="image")
    converter = Converter(
        result.config.read_text(), project_dir=str(tmp_path), download_resources=False
    )
    converter.convert_to_coco(str(out), str(tmp_path / "coco"), is_dir=False)
    coco = json.loads((tmp_path / "coco" / "result.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    got = sorted(
        (names[a["category_id"]], *(round(v, 9) for v in a["bbox"])) for a in coco["annotations"]
    )
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(decisions, review_items.c.modality).join(review_items)
        ).all()
    want = []
    for row in rows:
        if row.modality != "image":
            continue
        shown = queue.task(row.item_id).sample
        objects = row.objects if row.verdict == "fix" else [o.model_dump() for o in shown.objects]
        want += [(o["category"], *(round(v, 9) for v in o["bbox"])) for o in objects]
    assert got == sorted(want)


def test_sdk_converter_reads_text_spans(store: Store, tmp_path: Path) -> None:
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    decide_everything(queue)
    out = tmp_path / "text.json"
    result = export_tasks(queue, out, include="all", modality="text")
    converter = Converter(
        result.config.read_text(), project_dir=str(tmp_path), download_resources=False
    )
    converter.convert_to_json_min(str(out), str(tmp_path / "min"), is_dir=False)
    rows = json.loads((tmp_path / "min" / "result.json").read_text())
    spans = {
        (s["start"], s["end"], s["labels"][0], s["text"]) for row in rows for s in row["label"]
    }
    assert (0, 4, "PERSON", "Anna") in spans and (15, 24, "ORG", "Acme GmbH") in spans


@pytest.mark.parametrize(
    ("modality", "shapes"), [("image", "rectangles"), ("image", "polygons"), ("text", "rectangles")]
)
def test_export_then_import_of_the_same_decisions_changes_nothing(
    store: Store, tmp_path: Path, modality: str, shapes: str
) -> None:
    queue = ReviewQueue(store, gold_rate=0.25)
    queue.enqueue_batch("b1")
    decide_everything(queue)
    before = snapshot(store)
    out = tmp_path / "all.json"
    export_tasks(queue, out, include="all", modality=modality, shapes=shapes)
    result = import_annotations(queue, out)
    assert result.decided == result.adjudicated == 0
    assert result.conflicts == [] and result.skipped == []
    assert result.unchanged > 0
    assert snapshot(store) == before
    again = tmp_path / "again.json"
    export_tasks(queue, again, include="all", modality=modality, shapes=shapes)
    assert again.read_text() == out.read_text()


def label_studio_export(tasks: list[dict], choices: dict[int, list[dict]]) -> list[dict]:
    """What Label Studio exports after people annotated our tasks: each annotation starts from
    the prediction (same region ids) plus the choices they clicked."""
    exported = []
    for task in tasks:
        done = copy.deepcopy(task)
        done["annotations"] = []
        for user, edits in enumerate(choices.get(task["data"]["item_id"], []), start=1):
            result = copy.deepcopy(task["predictions"][0]["result"])
            edits.get("edit", lambda r: None)(result)
            result.append(
                {
                    "from_name": "verdict",
                    "to_name": "image",
                    "type": "choices",
                    "value": {"choices": [edits["verdict"]]},
                }
            )
            result.append(
                {
                    "from_name": "precision",
                    "to_name": "image",
                    "type": "choices",
                    "value": {"choices": ["3"]},
                }
            )
            done["annotations"].append(
                {"id": 100 + user, "completed_by": user, "result": result, "was_cancelled": False}
            )
        done["annotations"].append(
            {"id": 99, "completed_by": 9, "result": [], "was_cancelled": True}
        )
        exported.append(done)
    return exported


def move_second_box(result: list[dict]) -> None:
    result[1]["value"]["x"] += 10.0


def relabel_first(result: list[dict]) -> None:
    result[0]["value"]["rectanglelabels"] = ["triangle"]


def test_decisions_made_in_label_studio_come_back(store: Store, tmp_path: Path) -> None:
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    out = tmp_path / "open.json"
    export_tasks(queue, out, modality="image")
    tasks = json.loads(out.read_text())
    first, second = tasks[0]["data"]["item_id"], tasks[1]["data"]["item_id"]
    exported = label_studio_export(
        tasks,
        {
            first: [
                {"verdict": "fix", "edit": move_second_box},
                {"verdict": "fix", "edit": relabel_first},
            ],
            second: [{"verdict": "accept"}, {"verdict": "accept"}, {"verdict": "reject"}],
        },
    )
    export_path = tmp_path / "label-studio-export.json"
    export_path.write_text(json.dumps(exported))
    result = import_annotations(queue, export_path)
    assert result.decided == 4
    assert any("is final: it takes no more decisions" in s for s in result.skipped)  # 3rd person
    with store.engine.connect() as connection:
        fixes = connection.execute(
            select(decisions).where(decisions.c.item_id == first).order_by(decisions.c.annotator)
        ).all()
    original = make_sample(0, "image")
    moved, relabelled = (
        ObjectLabel.model_validate(o) for o in (fixes[0].objects[1], fixes[1].objects[0])
    )
    assert moved.bbox[0] == pytest.approx(30.5 + 6.4) and moved.mask is None
    assert (
        relabelled.category == "triangle" and relabelled.mask == original.objects[0].mask
    )  # untouched box keeps its mask
    assert ObjectLabel.model_validate(fixes[0].objects[0]) == original.objects[0]
    assert store.get_sample(original.id).status == "accepted"  # two fixes agree on the verdict
    assert store.get_sample(make_sample(1, "image").id).status == "accepted"
    again = import_annotations(queue, export_path)  # importing the same export twice is harmless
    assert again.decided == 0 and again.unchanged == 4


def test_changed_decision_is_a_conflict_not_an_overwrite(store: Store, tmp_path: Path) -> None:
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    decide_everything(queue)
    before = snapshot(store)
    out = tmp_path / "all.json"
    export_tasks(queue, out, include="all", modality="text")
    tasks = json.loads(out.read_text())
    verdict = next(r for r in tasks[0]["annotations"][0]["result"] if r["from_name"] == "verdict")
    verdict["value"]["choices"] = [
        "reject" if verdict["value"]["choices"] != ["reject"] else "accept"
    ]
    out.write_text(json.dumps(tasks))
    result = import_annotations(queue, out)
    assert len(result.conflicts) == 1 and "kept that one" in result.conflicts[0]
    assert snapshot(store) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ('"a string"', "a Label Studio export is a JSON list of tasks"),
        # one task object, not a list: once counted as "skipped 1" with exit 0
        ('{"id": 1, "data": {"item_id": 1}}', "a Label Studio export is a JSON list of tasks"),
    ],
)
def test_unreadable_exports_are_input_errors(
    store: Store, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "export.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        import_annotations(ReviewQueue(store), path)
    with pytest.raises(InputError, match="no such file"):
        import_annotations(ReviewQueue(store), tmp_path / "missing.json")
    with pytest.raises(InputError, match="is a folder"):  # once an IsADirectoryError
        import_annotations(ReviewQueue(store), tmp_path)


def choice(name: str, value: str) -> dict:
    return {"from_name": name, "to_name": "image", "type": "choices", "value": {"choices": [value]}}


def test_bad_tasks_are_skipped_with_a_reason(store: Store, tmp_path: Path) -> None:
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    path = tmp_path / "export.json"
    item = queue.next_item("ann").item_id
    path.write_text(
        json.dumps(
            [
                {"id": 1, "data": {"image": "x.png"}, "annotations": []},
                {"id": 2, "data": {"item_id": 9999}, "annotations": []},
                {
                    "id": 3,
                    "data": {"item_id": item},
                    "annotations": [{"completed_by": 1, "result": []}],
                },
                {"id": 4, "data": {"item_id": item}, "annotations": [{"result": []}]},
                {
                    "id": 5,
                    "data": {"item_id": item},
                    "annotations": [
                        {
                            "completed_by": 2,
                            "result": [choice("verdict", "accept"), choice("precision", "4")],
                        }
                    ],
                },
                {
                    "id": 6,
                    "data": {"item_id": item},
                    "annotations": [
                        {
                            "completed_by": 3,
                            "result": [
                                choice("verdict", "fix"),
                                {
                                    "type": "rectanglelabels",
                                    "value": {"rectanglelabels": ["circle"]},
                                },
                            ],
                        }
                    ],
                },
                {
                    "id": 7,
                    "data": {"item_id": item},
                    "annotations": [
                        {
                            "completed_by": 4,
                            "result": [
                                choice("verdict", "fix"),
                                {
                                    "type": "polygonlabels",
                                    "id": "new",
                                    "value": {
                                        "points": [[1, 1], [2, 2]],
                                        "polygonlabels": ["circle"],
                                    },
                                },
                            ],
                        }
                    ],
                },
            ]
        )
    )
    result = import_annotations(queue, path)
    assert result.decided == 0
    reasons = "\n".join(result.skipped)
    for expected in (
        "no data.item_id",
        "no review item 9999",
        "no verdict chosen",
        "without completed_by",
        "level '4' for 'precision'",
        "malformed annotation result (KeyError",
        "malformed annotation result (ValueError: a polygon needs at least 3 points",
    ):
        assert expected in reasons


def test_mixed_modalities_need_a_choice(store: Store, tmp_path: Path) -> None:
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    with pytest.raises(InputError, match="--modality image or --modality text"):
        export_tasks(queue, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()
