"""Label Studio export: configs, predictions and annotations pass the label-studio-sdk's own
validator and converter, and export -> import of the same decisions changes nothing.

Decisions made in Label Studio and bad exports are in test_labelstudio_import.py."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import typer
from factories import SUPPORT_TICKETS
from labelstudio_fixtures import decide_everything, make_sample, open_store, snapshot
from sqlalchemy import select
from typer.testing import CliRunner

from synthgate.cli import app
from synthgate.errors import InputError
from synthgate.masks import decode_mask, encode_mask
from synthgate.review import labelstudio
from synthgate.review.decision import Decision
from synthgate.review.interop import export_tasks, import_annotations
from synthgate.review.queue import ReviewQueue
from synthgate.samples import ObjectLabel
from synthgate.storage.store import Store, sqlite_url
from synthgate.storage.tables import decisions, review_items

DOMAIN = "example.org"  # annotators ann, bob, lead are ann@example.org, ... in Label Studio
LabelInterface = pytest.importorskip("label_studio_sdk.label_interface").LabelInterface
Converter = pytest.importorskip("label_studio_sdk.converter").Converter


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    yield from open_store(tmp_path)


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
    result = export_tasks(
        queue, out, include="all", modality=modality, shapes=shapes, email_domain=DOMAIN
    )
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


def test_a_class_name_xml_cannot_hold_is_refused() -> None:
    """A control character is valid JSON in a COCO file, but no XML parser reads a config that
    holds one; export_tasks builds the config before it writes anything."""
    with pytest.raises(InputError, match=r"classes \['ci\\x01rcle'\]: hold characters XML"):
        labelstudio.labeling_config("image", ["ci\x01rcle", "square"], ["precision"])


def test_sdk_converter_reads_the_decisions_back_to_the_same_pixels(
    store: Store, tmp_path: Path
) -> None:
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    decide_everything(queue)
    out = tmp_path / "image.json"
    result = export_tasks(queue, out, include="all", modality="image", email_domain=DOMAIN)
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
    result = export_tasks(queue, out, include="all", modality="text", email_domain=DOMAIN)
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
    queue = ReviewQueue(store, gold_rate=0.25, seed=0)
    queue.enqueue_batch("b1")
    decide_everything(queue)
    before = snapshot(store)
    out = tmp_path / "all.json"
    export_tasks(queue, out, include="all", modality=modality, shapes=shapes, email_domain=DOMAIN)
    result = import_annotations(queue, out, email_domain=DOMAIN)
    assert result.decided == result.adjudicated == 0
    assert result.conflicts == [] and result.skipped == []
    assert result.unchanged > 0
    assert snapshot(store) == before
    again = tmp_path / "again.json"
    export_tasks(queue, again, include="all", modality=modality, shapes=shapes, email_domain=DOMAIN)
    assert again.read_text() == out.read_text()


def test_mixed_modalities_need_a_choice(store: Store, tmp_path: Path) -> None:
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    with pytest.raises(InputError, match="pass modality=image or modality=text"):
        export_tasks(queue, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_tasks_go_out_one_at_a_time_as_one_json_document(store: Store, tmp_path: Path) -> None:
    queue = ReviewQueue(store, gold_rate=0.25, seed=0)
    queue.enqueue_batch("b1")
    decide_everything(queue)
    out = tmp_path / "all.json"
    shown: list[tuple[int, int]] = []
    result = export_tasks(
        queue,
        out,
        include="all",
        modality="image",
        email_domain=DOMAIN,
        progress=lambda *a: shown.append(a),
    )
    assert result.count > 1
    assert shown == [(n, result.count) for n in range(1, result.count + 1)]
    text = out.read_text()
    # the layout of the whole list dumped at once, as before the tasks were streamed
    assert text == json.dumps(json.loads(text), ensure_ascii=False, indent=1) + "\n"
    assert len(json.loads(text)) == result.count
    nothing = tmp_path / "open.json"  # every item is decided: no open task is left
    assert export_tasks(queue, nothing, modality="image").count == 0
    assert nothing.read_text() == "[]\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")) == []


def test_exported_tasks_carry_no_rubric_score(tmp_path: Path) -> None:
    """Label Studio shows a task's data and its prediction's score in the task list: neither may
    tell annotators what the rubric thought (nor single out gold by its score)."""
    store = Store(f"sqlite:///{tmp_path / 'synthgate.db'}")
    store.upsert_samples(
        [make_sample(i, "image") for i in range(3)]
        + [make_sample(10 + i, "image", "accepted") for i in range(4)]
    )
    queue = ReviewQueue(store, gold_rate=0.5, seed=1)
    queue.enqueue_batch("b1")
    out = tmp_path / "tasks.json"
    export_tasks(queue, out, include="all")
    tasks = json.loads(out.read_text())
    assert tasks
    for task in tasks:
        assert set(task["data"]) == {"item_id", "sample_id", "image"}
        assert all("score" not in prediction for prediction in task["predictions"])
    store.close()


def _shapes() -> Iterator[tuple[str, np.ndarray]]:
    """Masks of one part each (no holes) on a 37x53 image: what a polygon can hold exactly."""
    import cv2

    def blank() -> np.ndarray:
        return np.zeros((37, 53), np.uint8)

    yield "one pixel", (one := blank())
    one[5, 7] = 1
    yield "ellipse", cv2.ellipse(blank(), (26, 18), (20, 9), 30.0, 0, 360, 1, -1)
    letter = blank()
    letter[3:30, 4:10] = 1
    letter[24:30, 4:40] = 1
    yield "L", letter
    stairs = blank()
    for step in range(8):  # pixels touching only at their corners: one 8-connected part
        stairs[2 + step, 3 + step] = 1
    yield "diagonal", stairs
    edge = blank()
    edge[0:37, 40:53] = 1  # against the image's right, top and bottom edges
    yield "at the border", edge


@pytest.mark.parametrize(("name", "mask"), list(_shapes()), ids=[s[0] for s in _shapes()])
def test_a_polygon_reads_back_as_the_same_pixels(name: str, mask: np.ndarray) -> None:
    """Exported as a polygon (percent points) and read back through pycocotools, a mask keeps
    every pixel: a contour through the edge pixels' centres lost half a pixel all round."""
    height, width = mask.shape
    region = labelstudio._polygon(
        ObjectLabel(category="c", bbox=[0, 0, 1, 1], area=1, mask=encode_mask(mask.astype(bool))),
        "o0",
        width,
        height,
    )
    assert region is not None
    back = labelstudio._object_from_polygon(region["value"]["points"], "c", width, height)
    assert np.array_equal(decode_mask(back.mask), mask.astype(bool)), name
    assert back.area == mask.sum()


def test_a_text_labeling_config_offers_every_fix_label(tmp_path: Path) -> None:
    """A text run's config offers every span label a fix of its items may use (the API's
    `fix_labels`), as the image config offers every class of the batch, not only those its
    tasks hold: an annotator who finds an unlabelled name must be able to mark it PERSON."""
    runner = CliRunner()
    config = tmp_path / "tickets.yaml"
    config.write_text(
        "name: tickets\nseed: 7\ncategories: [circle]\n"
        f"text: {{generator: templates, templates: {SUPPORT_TICKETS}, count: 10, "
        "locales: [en_US]}\n"
    )
    run = tmp_path / "run"
    assert runner.invoke(app, ["run", str(config), "--out", str(run)]).exit_code == 0
    assert runner.invoke(app, ["review", "enqueue", "--run", str(run)]).exit_code == 0
    out = tmp_path / "ls" / "tasks.json"
    result = runner.invoke(
        app,
        [
            *("review", "export", "--run", str(run), "--modality", "text"),
            *("--include", "all", "--no-annotators", "--out", str(out)),
        ],
    )
    assert result.exit_code == 0, result.output
    offered = set(re.findall(r'<Label value="([^"]+)"', out.with_suffix(".config.xml").read_text()))
    held = {
        s["value"]["labels"][0]
        for t in json.loads(out.read_text())
        for p in t["predictions"]
        for s in p["result"]
        if s.get("type") == "labels"
    }

    store = Store(sqlite_url(run / "synthgate.db"))
    try:
        with store.engine.connect() as connection:
            items = connection.execute(select(review_items.c.id)).scalars().all()
        queue = ReviewQueue(store)
        allowed = {label for item in items for label in queue.fix_labels(item)}
    finally:
        store.close()
    assert held and "PERSON" in allowed - held  # the review page offers it; no task holds it
    assert allowed <= offered, f"Label Studio cannot mark {sorted(allowed - offered)}"


def test_an_open_export_holds_items_with_fewer_than_k_decisions_but_not_them(
    store: Store, tmp_path: Path
) -> None:
    """An item is open until its k-th decision: `--include open` exports it with the decisions
    it already has left out, and its --help says so (it said open items had "no decisions")."""
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    queue.enqueue_batch("b1")
    task = queue.next_item("ann")
    assert task is not None
    queue.decide(task.item_id, "ann", Decision(verdict="accept"))
    out = tmp_path / "open.json"
    export_tasks(queue, out, include="open", modality=task.sample.spec.modality)
    exported = {t["data"]["item_id"]: t for t in json.loads(out.read_text())}
    assert task.item_id in exported
    assert exported[task.item_id].get("annotations", []) == []

    export = typer.main.get_command(app).commands["review"].commands["export"]  # type: ignore[attr-defined]
    (include,) = [p for p in export.params if p.name == "include"]
    assert "no decisions" not in include.help
    assert "fewer than k decisions" in include.help
