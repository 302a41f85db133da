"""Blind review that stays blind: a classifier trained on what an annotator receives cannot tell
gold tasks (honeypots) from real ones.

A real batch (procedural images and support-ticket texts) is run, queued with honeypots, and
served over the API to an annotator; every task's JSON goes through `features` (what a prober
looks at: item ids, label counts, attributes against the class, boxes against their masks,
areas, mask overlaps, z order, span boundaries and values, label plausibility, the validator's
report, the construction record) and a logistic regression (scikit-learn), cross-validated on
150 gold and 150 real tasks (5-fold, repeated 5 times), must stay within chance + 5 points. The same classifier on the same
tasks as they were served before (the queue's sequential ids and full samples) and on
honeypots made the old way (boxes loosened without their masks, classes changed without their
attributes, spans moved by characters) tells them apart easily: the features can see leaks.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from api_support import BATCH, bearer, image_sample, make_app, token_for
from factories import SUPPORT_TICKETS
from fastapi.testclient import TestClient
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sqlalchemy import select

from synthgate.api.app import create_app
from synthgate.api.ids import LIMIT, ItemIds
from synthgate.api.review import category_color, item_out
from synthgate.config import PACKAGE_ROOT
from synthgate.formats.coco import coco_image_to_sample, sample_to_coco_annotations
from synthgate.formats.coco_annotations import coco_to_samples
from synthgate.masks import decode_mask, tight_bbox
from synthgate.review import gold
from synthgate.runner import run
from synthgate.samples import Sample, sample_id
from synthgate.storage.tables import decisions, gold_answers, review_items

pytestmark = pytest.mark.timeout(600)
PER_CLASS = 150
CHANCE_PLUS = 0.05
WORD = re.compile(r"\w+")


def rubric_with_audit(tmp_path: Path, name: str, audit_rate: float) -> str:
    """A shipped rubric with a higher audit rate: more accepted samples go to review, so one
    small batch gives enough real tasks."""
    data = yaml.safe_load((PACKAGE_ROOT / "configs" / "rubrics" / f"{name}.yaml").read_text())
    data["routing"]["audit_rate"] = audit_rate
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every task of a real batch as the API served it, with which were gold."""
    folder = tmp_path_factory.mktemp("blind")
    config = {
        "name": "blind",
        "seed": 11,
        "categories": ["circle", "square", "triangle"],
        "image": {
            "generator": "procedural",
            "count": 240,
            "size": [128, 96],
            "objects_per_image": [1, 5],
            "rubric": rubric_with_audit(folder, "detection", 0.6),
        },
        "text": {
            "generator": "templates",
            "templates": str(SUPPORT_TICKETS),
            "count": 240,
            "locales": ["en_US", "de_DE"],
            "rubric": rubric_with_audit(folder, "ner", 0.6),
        },
    }
    result = run(config, out=folder / "run")
    app = create_app(
        db_url=f"sqlite:///{folder / 'run' / 'synthgate.db'}",
        runs_dir=folder,
        annotators_per_item=1,
        gold_rate=0.5,
        review_seed=0,  # the gold draws fixed too, for the same reason as the ids below
    )
    # the service makes a random key per database; a fixed one keeps this test's ids (and so
    # its figure) the same on every run
    app.state.item_ids = ItemIds(hashlib.sha256(b"blindness test").digest())
    app.state.queue.enqueue_batch(result.batch_id, image_root=folder / "run")
    tasks: dict[int, dict[str, Any]] = {}
    with TestClient(app) as client:
        who = bearer(token_for(app, "ann", "annotator"))
        while (response := client.get("/api/review/next", headers=who)).status_code == 200:
            task = response.json()
            tasks.setdefault(task["item_id"], task)
            saved = client.post(
                f"/api/review/{task['item_id']}/decision", json={"verdict": "accept"}, headers=who
            )
            assert saved.status_code == 200, saved.text
        assert response.status_code == 204
        admin = bearer(token_for(app, "boss", "admin"))
        gold_ids = {g["item_id"] for g in client.get("/api/review/gold", headers=admin).json()}
    with app.state.store.engine.connect() as connection:
        kinds = dict(connection.execute(select(review_items.c.id, review_items.c.kind)).all())
        answers = dict(
            connection.execute(select(gold_answers.c.item_id, gold_answers.c.answer)).all()
        )
    return {
        "app": app,
        "tasks": tasks,
        "gold": gold_ids,
        "kinds": kinds,
        "answers": answers,
    }


# ---- what a prober computes from one task's JSON ---------------------------------------------


def value_look(text: str) -> str:
    return gold.value_look(text)


class Prober:
    """Features of task JSON; learns from all tasks what each class and label usually looks
    like (as an annotator would after a few dozen tasks)."""

    def __init__(self, tasks: list[dict[str, Any]]) -> None:
        self.shape_of: dict[str, Counter[str]] = {}
        self.looks: dict[str, Counter[str]] = {}
        self.fill: dict[str, list[float]] = {}
        for task in tasks:
            sample = task["sample"]
            for obj in sample["objects"]:
                self.shape_of.setdefault(obj["category"], Counter())[
                    str(obj["attributes"].get("shape"))
                ] += 1
                if obj["mask"]:
                    box = obj["bbox"]
                    self.fill.setdefault(obj["category"], []).append(
                        obj["area"] / max(1.0, box[2] * box[3])
                    )
            text = sample["text"] or ""
            for span in sample["spans"]:
                self.looks.setdefault(span["label"], Counter())[
                    value_look(text[span["start"] : span["end"]])
                ] += 1

    def features(self, task: dict[str, Any]) -> list[float]:
        sample = task["sample"]
        image = sample["spec"]["modality"] == "image"
        item = task["item_id"]
        report = sample.get("report") or {}
        common = [
            float(image),
            item / LIMIT,
            float(item % 2),
            float(np.log10(item + 1)),
            float(bool(report)),
            float(report.get("route") == "accepted"),
            float(report.get("audit", False)),
            float(report.get("score", 0.0)),
            float(len(report.get("findings", []))),
            float(len(sample["provenance"].get("params") or {})),
            float(len(task["criteria"])),
            float(sample["status"] == "review"),
        ]
        return (
            common
            + (self._image(sample) if image else [0.0] * 14)
            + ([0.0] * 9 if image else self._text(sample))
        )

    def _image(self, sample: dict[str, Any]) -> list[float]:
        objects = sample["objects"]
        width, height = sample["width"], sample["height"]
        masks = [decode_mask(o["mask"]) for o in objects if o["mask"]]
        union = sum(m.astype(int) for m in masks) if masks else np.zeros((height, width))
        loose = [
            max(abs(a - b) for a, b in zip(o["bbox"], tight_bbox(m), strict=True))
            for o, m in zip(objects, masks, strict=False)
        ]
        area_off = [abs(o["area"] - float(m.sum())) for o, m in zip(objects, masks, strict=False)]
        shape_off = sum(
            self.shape_of[o["category"]].most_common(1)[0][0] != str(o["attributes"].get("shape"))
            for o in objects
        )
        zs = sorted(o["attributes"].get("z", 0) for o in objects)
        z_gaps = sum(b - a - 1 for a, b in itertools.pairwise(zs))
        placed = sample["provenance"].get("params", {}).get("objects_placed", len(objects))
        quota = sample["spec"]["category"]
        fills = [
            o["area"] / max(1.0, o["bbox"][2] * o["bbox"][3])
            - float(np.mean(self.fill.get(o["category"], [0.0])))
            for o in objects
            if o["mask"]
        ]
        return [
            float(len(objects)),
            float(len({o["category"] for o in objects})),
            float(sum(o["category"] == quota for o in objects)),
            float(max(loose, default=0.0)),
            float(max(area_off, default=0.0)),
            float((union > 1).sum()),
            float(shape_off),
            float(z_gaps),
            float(zs[-1] - len(zs) + 1 if zs else 0),
            float(placed - len(objects)),
            float(min((o["visible_fraction"] for o in objects), default=1.0)),
            float(np.mean([o["area"] for o in objects]) / (width * height)),
            float(max(fills, default=0.0)),
            float(np.mean(fills) if fills else 0.0),
        ]

    def _text(self, sample: dict[str, Any]) -> list[float]:
        text = sample["text"] or ""
        spans = sample["spans"]
        starts = {m.start() for m in WORD.finditer(text)}
        ends = {m.end() for m in WORD.finditer(text)}
        off_word = sum(s["start"] not in starts or s["end"] not in ends for s in spans)
        value_off = sum(s.get("value") not in (None, text[s["start"] : s["end"]]) for s in spans)
        implausible = sum(
            self.looks[s["label"]].most_common(1)[0][0] != value_look(text[s["start"] : s["end"]])
            for s in spans
        )
        words = [len(WORD.findall(text[s["start"] : s["end"]])) for s in spans]
        uncovered_names = sum(
            1
            for m in re.finditer(r"\b[A-Z][a-z]+ [A-Z][a-z]+\b", text)
            if not any(s["start"] <= m.start() and m.end() <= s["end"] for s in spans)
        )
        return [
            float(len(spans)),
            float(len({s["label"] for s in spans})),
            float(len(text)),
            float(off_word),
            float(value_off),
            float(implausible),
            float(np.mean(words) if words else 0.0),
            float(max(words, default=0)),
            float(uncovered_names),
        ]


def accuracy(gold_tasks: list[dict], real_tasks: list[dict], *, seed: int = 0) -> float:
    """Cross-validated accuracy of a logistic regression telling gold from real, on
    PER_CLASS of each (so chance is 0.5)."""
    rng = np.random.default_rng(seed)
    picked_gold = [gold_tasks[i] for i in rng.permutation(len(gold_tasks))[:PER_CLASS]]
    picked_real = [real_tasks[i] for i in rng.permutation(len(real_tasks))[:PER_CLASS]]
    prober = Prober(picked_gold + picked_real)
    x = np.array([prober.features(t) for t in picked_gold + picked_real])
    y = np.array([1] * len(picked_gold) + [0] * len(picked_real))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    # 5-fold cross-validation repeated 5 times: the figure does not hang on one split
    folds = RepeatedStratifiedKFold(n_splits=5, n_repeats=5, random_state=seed)
    return float(cross_val_score(model, x, y, cv=folds, scoring="accuracy").mean())


def split(served: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    tasks = served["tasks"]
    gold_tasks = [t for i, t in tasks.items() if i in served["gold"]]
    real_tasks = [t for i, t in tasks.items() if i not in served["gold"]]
    return gold_tasks, real_tasks


def test_a_classifier_cannot_tell_gold_from_real_tasks(served):
    gold_tasks, real_tasks = split(served)
    assert len(gold_tasks) >= PER_CLASS and len(real_tasks) >= PER_CLASS, (
        len(gold_tasks),
        len(real_tasks),
    )
    mix = Counter(t["sample"]["spec"]["modality"] for t in gold_tasks)
    found = accuracy(gold_tasks, real_tasks)
    print(
        f"gold vs real: {len(gold_tasks)} gold ({dict(mix)}), {len(real_tasks)} real tasks; "
        f"logistic regression on {PER_CLASS}+{PER_CLASS}: accuracy {found:.3f} "
        f"(chance 0.5, limit {0.5 + CHANCE_PLUS})"
    )
    assert found <= 0.5 + CHANCE_PLUS


def test_a_task_lists_the_same_fix_labels_gold_or_real(served):
    """The labels a fix may use come with every task: the batch's of the task's modality, the
    same list for a gold task as for real work (a honeypot's wrong class is one of them)."""
    gold_tasks, real_tasks = split(served)
    for modality, labels in (
        ("image", ["circle", "square", "triangle"]),
        ("text", sorted({s["label"] for t in real_tasks for s in t["sample"]["spans"]})),
    ):
        for tasks in (gold_tasks, real_tasks):
            listed = {
                tuple(t["fix_labels"]) for t in tasks if t["sample"]["spec"]["modality"] == modality
            }
            assert listed == {tuple(labels)}, (modality, listed)


def test_the_same_classifier_sees_the_leaks_blindness_removed(served):
    """Controls: the features have power. The tasks as served before (sequential item ids, the
    validator's report, the construction record) and honeypots made the old way are told
    apart easily."""
    app = served["app"]
    ids = app.state.item_ids
    queue = app.state.queue
    gold_tasks, real_tasks = split(served)

    def unblinded(task: dict) -> dict:
        internal = ids.internal(task["item_id"])
        full = queue.task(internal)
        shown = item_out(full, internal).model_dump(mode="json")
        shown["sample"] = full.sample.model_dump(mode="json")  # report and params included
        return shown

    before = accuracy([unblinded(t) for t in gold_tasks], [unblinded(t) for t in real_tasks])

    def old_honeypot(task: dict) -> dict:
        """The honeypot's source sample with the old defects: a box grown without its mask, a
        class changed without its attributes, a span moved by two characters."""
        source = Sample.model_validate_json(served["answers"][ids.internal(task["item_id"])])
        rng = np.random.default_rng(len(source.id))
        if source.objects:
            target = source.objects[int(rng.integers(len(source.objects)))]
            if rng.random() < 0.5:
                x, y, w, h = target.bbox
                target.bbox = [max(0.0, x - 4), max(0.0, y - 4), w + 8, h + 8]
            else:
                target.category = "square" if target.category != "square" else "circle"
        elif source.spans:
            span = source.spans[int(rng.integers(len(source.spans)))]
            if span.end + 2 <= len(source.text or ""):
                span.start, span.end = span.start + 2, span.end + 2
                span.value = (source.text or "")[span.start : span.end]
        return {**task, "sample": gold.blind(source).model_dump(mode="json")}

    old = accuracy([old_honeypot(t) for t in gold_tasks], real_tasks)
    print(f"controls: as served before {before:.3f}; old-style honeypots {old:.3f}")
    assert before >= 0.9
    assert old >= 0.8


def page_view(html: str) -> dict[str, Any]:
    """What the review page shows of a task: its item and boxes, the classes its Fix form offers
    (each box's, then a new box's), the colour each box is drawn in, and the colours its script
    reads."""
    data = json.loads(re.search(r'<script id="review-data"[^>]*>(.*?)</script>', html, re.S)[1])
    offered = [
        re.findall(r'<option value="([^"]*)"', options)
        for options in re.findall(
            r'<select class="object-category"[^>]*>(.*?)</select>', html, re.S
        )
    ]
    strokes = re.findall(r'<rect class="outline"[^>]*stroke="([^"]+)"', html)
    drawn = dict(zip((o["category"] for o in data["objects"]), strokes, strict=True))
    return {
        "item_id": data["item_id"],
        "objects": data["objects"],
        "offered": offered,
        "drawn": drawn,
        "colors": data["colors"],
    }


def mask_colors(png: bytes) -> set[str]:
    """The colours of the opaque pixels of a masks.png overlay."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")).reshape(-1, 4)
    return {"#{:02x}{:02x}{:02x}".format(*p[:3]) for p in pixels if p[3]}


def test_gold_put_in_apart_from_a_batch_shows_the_classes_and_colours_of_real_work(tmp_path):
    """A gold task from a batch never enqueued (`review gold`: a sample of "gold-set" holding one
    square) is served beside a batch of circles, squares and triangles: its Fix form offers the
    batch's three classes, its square is drawn in the real tasks' colour (page, script data
    and masks.png), the API lists the same `fix_labels`, and a fix to a class the batch has is
    taken as on real work. Before, it offered ['square'] alone, in the first colour."""
    classes = ["circle", "square", "triangle"]
    app = make_app(tmp_path, images=4, k=2, gold_rate=0.9, categories=classes)
    shown = image_sample(40, tmp_path / "run", categories=["square"])
    shown = shown.model_copy(
        update={
            "id": sample_id("gold-set", "image", 40),
            "spec": shown.spec.model_copy(update={"batch_id": "gold-set"}),
            "status": "accepted",
        }
    )
    hand_gold = app.state.queue.add_gold(shown, expected=["accept"])
    ids = app.state.item_ids
    pages: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    listed: dict[bool, set[tuple[str, ...]]] = {True: set(), False: set()}
    masks: dict[bool, set[str]] = {True: set(), False: set()}
    admin = bearer(token_for(app, "boss", "admin"))
    with TestClient(app) as pager, TestClient(app) as api:
        token = token_for(app, "bob", "annotator")
        pager.post("/login", data={"token": token}, follow_redirects=False)
        who = bearer(token_for(app, "ann", "annotator"))
        while (response := api.get("/api/review/next", headers=who)).status_code == 200:
            task = response.json()
            is_gold = ids.internal(task["item_id"]) == hand_gold
            listed[is_gold].add(tuple(task["fix_labels"]))
            png = api.get(f"/api/review/{task['item_id']}/masks.png", headers=admin).content
            masks[is_gold] |= mask_colors(png)
            url = f"/api/review/{task['item_id']}/decision"
            assert api.post(url, json={"verdict": "accept"}, headers=who).status_code == 200
        while "review-data" in (html := pager.get("/review").text):
            view = page_view(html)
            is_gold = ids.internal(view["item_id"]) == hand_gold
            pages[is_gold].append(view)
            # a fix to a class the form offers and the sample lacks: taken, gold or real
            first = view["objects"][0]
            other = next(c for c in classes if c not in view["drawn"]) if is_gold else "circle"
            fix = {"verdict": "fix", "objects": [{**first, "category": other}]}
            url = f"/api/review/{view['item_id']}/decision"
            answer = api.post(url, json=fix, headers=bearer(token))
            assert answer.status_code == 200, answer.text
    assert len(pages[True]) == 1 and len(pages[False]) == 4, pages
    assert listed == {True: {tuple(classes)}, False: {tuple(classes)}}
    real_square = {v["drawn"]["square"] for v in pages[False]}
    (gold_view,) = pages[True]
    assert gold_view["offered"] == [classes, classes]
    assert {gold_view["drawn"]["square"]} == real_square
    assert all(v["colors"] == gold_view["colors"] for v in pages[False])
    assert gold_view["colors"] == {c: category_color(c) for c in classes}
    assert masks[True] == {category_color("square")} and masks[True] < masks[False]


def test_gold_tied_to_another_batch_names_no_batch_of_its_own(tmp_path):
    """Gold of another batch (`review gold`: a sample of "gold-set", and one of batch "b0"
    tied with --batch) served beside a batch's real tasks: every task's JSON names the same
    batch and index (none), so neither the batch nor an id checked against
    `sample_id(batch, modality, index)` tells the gold apart. Before, the gold named its own
    batch ("gold-set", "b0") where every real task named the batch served."""
    app = make_app(tmp_path, images=4, k=1, gold_rate=0.9)
    queue = app.state.queue
    hand_gold = set()
    for index, batch, tie in ((40, "gold-set", None), (41, "b0", BATCH)):
        shown = image_sample(index, tmp_path / "run")
        shown = shown.model_copy(
            update={
                "id": sample_id(batch, "image", index),
                "spec": shown.spec.model_copy(update={"batch_id": batch}),
                "status": "accepted",
            }
        )
        hand_gold.add(queue.add_gold(shown, expected=["accept"], batch=tie))
    ids = app.state.item_ids
    specs: dict[bool, set[tuple[str, int, bool]]] = {True: set(), False: set()}
    served = Counter[bool]()
    with TestClient(app) as client:
        who = bearer(token_for(app, "ann", "annotator"))
        while (response := client.get("/api/review/next", headers=who)).status_code == 200:
            task = response.json()
            spec, shown_id = task["sample"]["spec"], task["sample"]["id"]
            checked = sample_id(spec["batch_id"], spec["modality"], spec["index"]) == shown_id
            is_gold = ids.internal(task["item_id"]) in hand_gold
            specs[is_gold].add((spec["batch_id"], spec["index"], checked))
            served[is_gold] += 1
            url = f"/api/review/{task['item_id']}/decision"
            assert client.post(url, json={"verdict": "accept"}, headers=who).status_code == 200
    assert served == {True: 2, False: 4}
    assert specs == {True: {("", 0, False)}, False: {("", 0, False)}}


def coco_imported(sample: Sample, image_id: int, *, batch: str = "instances_val") -> Sample:
    """`sample`'s labels as a COCO file a user brings is read (formats/coco.py): id
    `coco-<image id>`, the original file name as its uri, generator "coco", no prompt."""
    image = {
        "id": image_id,
        "file_name": f"IMG_{image_id:04d}.jpg",
        "width": sample.width,
        "height": sample.height,
    }
    read = coco_image_to_sample(image, sample.objects, source=batch, position=image_id)
    return read.model_copy(update={"report": sample.report, "status": sample.status})


def prelabelled(sample: Sample, batch: str, index: int) -> Sample:
    """`sample`'s labels as `review prelabels` puts a validated COCO file's image in the queue
    (review/prelabels.py): id `<batch>-<index>`, its batch and index in the spec."""
    read = coco_imported(sample, index, batch=batch)
    return read.model_copy(update={"id": f"{batch}-{index}"})


# What a task shows of the work to judge, different from task to task: everything else an
# annotator is sent must be the same on every task, or it tells where the task came from.
JUDGED = (
    "item_id",
    "image_url",
    "masks_url",
    "sample.objects",
    "sample.width",
    "sample.height",
    "sample.text",
    "sample.spans",
    "sample.doc_label",
)


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted path, value) of a JSON value; the objects of a list share its path + [],
    a list of plain values is one value."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from leaves(inner, f"{path}.{key}" if path else key)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for inner in value:
            yield from leaves(inner, f"{path}[]")
    else:
        yield path, value


def page_item(html: str) -> str:
    """The opaque id of the item a review page shows."""
    return re.search(r'data-item="(\d+)"', html)[1]


@pytest.mark.parametrize("imported", ["gold", "real"])
def test_gold_and_real_tasks_of_different_sources_send_and_show_the_same(tmp_path, imported):
    """Gold from anywhere in the gold set beside a batch's real tasks: a prelabelled and a
    COCO-imported sample as gold among generated work, or generated gold among a batch of
    prelabelled and COCO-imported work. Over HTTP, every task's JSON has the same keys, gold or
    real, and every field but the labels and pixels it is judged by (JUDGED) holds one value
    on every task: no sample id, uri, batch, generator or prompt tells the source; the review
    page names no sample id or file name either. Before, `coco-41`, `pre-3`, `IMG_0041.jpg`,
    generator "coco" and a missing prompt stood beside `ima-…`, `images/….png` and
    "procedural", in the JSON and the page's header and provenance card."""
    run = tmp_path / "run"
    app = make_app(tmp_path, images=0 if imported == "real" else 4, k=2, gold_rate=0.9)
    store, queue = app.state.store, app.state.queue
    generated = [image_sample(i, run, prompt="a red circle and a blue square") for i in range(6)]
    others = [coco_imported(generated[0], 41), prelabelled(generated[1], "pre", 3)]
    hand_gold = set()
    if imported == "gold":
        gold_samples = others
    else:
        store.put_batch("pre", name="imported", seed=0, config={"name": "imported"})
        store.upsert_samples(
            [coco_imported(s, 50 + i, batch="pre") for i, s in enumerate(generated[:2])]
            + [prelabelled(s, "pre", i) for i, s in enumerate(generated[2:4])]
        )
        queue.enqueue_batch("pre", image_root=run)
        gold_samples = [generated[4], generated[5]]
    for shown in gold_samples:
        shown = shown.model_copy(update={"status": "accepted"})
        tie = BATCH if imported == "gold" else "pre"
        hand_gold.add(queue.add_gold(shown, expected=["reject", "fix"], batch=tie))
    stored: list[Sample] = []  # every task's sample, as the queue holds it
    ids = app.state.item_ids
    tasks: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    pages: list[str] = []
    with TestClient(app) as api, TestClient(app) as pager:
        who = bearer(token_for(app, "ann", "annotator"))
        while (response := api.get("/api/review/next", headers=who)).status_code == 200:
            task = response.json()
            internal = ids.internal(task["item_id"])
            tasks[internal in hand_gold].append(task)
            stored.append(queue.task(internal).sample)
            url = f"/api/review/{task['item_id']}/decision"
            assert api.post(url, json={"verdict": "accept"}, headers=who).status_code == 200
        bob = token_for(app, "bob", "annotator")
        pager.post("/login", data={"token": bob}, follow_redirects=False)
        while "review-data" in (html := pager.get("/review").text):
            pages.append(html)
            url = f"/api/review/{page_item(html)}/decision"
            assert api.post(url, json={"verdict": "accept"}, headers=bearer(bob)).status_code == 200
    assert [len(tasks[True]), len(tasks[False]), len(pages)] == [2, 4, 6], tasks
    sources = {s.spec.generator for s in stored}
    assert sources == {"procedural", "coco"}  # the queue mixes sources
    keys = {kind: {p for t in kinds for p, _ in leaves(t)} for kind, kinds in tasks.items()}
    assert keys[True] == keys[False]
    told: dict[str, set[str]] = {}
    for task in tasks[True] + tasks[False]:
        for path, value in leaves(task):
            if not path.startswith(JUDGED):
                told.setdefault(path, set()).add(json.dumps(value))
    assert {path: values for path, values in told.items() if len(values) > 1} == {}
    named = [s.id for s in stored] + [s.uri or "" for s in stored] + sorted(sources)
    for shown in [json.dumps(t) for t in tasks[True] + tasks[False]] + pages:
        assert [name for name in named if name in shown] == []
    for html in pages:  # the header names the item by its opaque id
        assert f"<h1>Item {page_item(html)} <small>image</small></h1>" in html


def read_from_coco(sample: Sample, image_id: int) -> Sample:
    """`sample` written as a user's COCO file (no synthgate marks) and read back as `synthgate
    validate` reads one (formats/coco_annotations.py): its objects as the reader makes them."""
    categories = {
        name: k + 1 for k, name in enumerate(sorted({o.category for o in sample.objects}))
    }
    annotations = sample_to_coco_annotations(sample, image_id, categories, 1)
    for annotation in annotations:
        annotation.pop("synthgate")
    coco = {
        "images": [
            {"id": image_id, "file_name": f"IMG_{image_id:04d}.jpg"}
            | {"width": sample.width, "height": sample.height}
        ],
        "annotations": annotations,
        "categories": [{"id": k, "name": name} for name, k in categories.items()],
    }
    (read,) = coco_to_samples(coco, source="instances_val")
    return read.model_copy(update={"status": "accepted"})


def test_the_objects_of_a_coco_imported_gold_task_carry_the_attributes_of_real_work(tmp_path):
    app = make_app(tmp_path, images=4, k=1, gold_rate=0.9)
    queue, ids = app.state.queue, app.state.item_ids
    hand_gold = queue.add_gold(
        read_from_coco(image_sample(40, tmp_path / "run"), 40), expected=["reject"], batch=BATCH
    )
    keys: dict[bool, set[str]] = {True: set(), False: set()}
    with TestClient(app) as client:
        who = bearer(token_for(app, "ann", "annotator"))
        while (response := client.get("/api/review/next", headers=who)).status_code == 200:
            task = response.json()
            is_gold = ids.internal(task["item_id"]) == hand_gold
            keys[is_gold] |= {k for o in task["sample"]["objects"] for k in o["attributes"]}
            url = f"/api/review/{task['item_id']}/decision"
            assert client.post(url, json={"verdict": "accept"}, headers=who).status_code == 200
    assert keys[True] == keys[False]


def coco_item_app(tmp_path: Path, k: int = 1) -> tuple[Any, Sample]:
    """An app whose one item is a sample read from a user's COCO file, three objects."""
    categories = ["circle", "square", "circle"]
    made = image_sample(0, tmp_path / "run", categories=categories)
    read = read_from_coco(made, 7)
    sample = read.model_copy(
        update={
            "status": "review",
            "spec": read.spec.model_copy(update={"batch_id": BATCH}),
            "objects": [  # as a prelabel's: each with a score
                o.model_copy(update={"attributes": {**o.attributes, "score": 0.5 + i / 10}})
                for i, o in enumerate(read.objects)
            ],
        }
    )
    app = create_app(
        db_url=f"sqlite:///{tmp_path / 'service.db'}",
        runs_dir=tmp_path / "runs",
        annotators_per_item=k,
        review_seed=0,
    )
    store = app.state.store
    store.put_batch(BATCH, name="coco", seed=0, config={"name": "coco"})
    store.upsert_samples([sample])
    app.state.queue.enqueue_batch(BATCH, image_root=tmp_path / "run")
    return app, sample


BAD_REFS = [  # (the refs of the objects posted, what the refusal names)
    ([0, 5], "objects[1].attributes.ref 5 names no object of the task (it has 3"),
    ([-1], "objects[0].attributes.ref -1 names no object"),
    (["0"], "objects[0].attributes.ref '0' names no object"),
    ([True], "objects[0].attributes.ref True names no object"),
    ([2, 0, 2], "objects[2].attributes.ref 2 is objects[0]'s too"),
]


def test_a_fix_of_a_coco_item_keeps_its_objects_attributes_by_their_refs(tmp_path):
    """A task's objects carry `{"ref": i}` alone, whatever their source; a fix that reorders,
    deletes, moves, reclassifies and adds objects gets the stored attributes back by ref (its
    class and box stay), a new box none, in the final sample and in the decision recorded. A
    ref out of range, not a number or used twice is refused, naming it, and nothing is kept."""
    app, stored = coco_item_app(tmp_path)
    assert {"annotation_id", "iscrowd", "score"} <= set(stored.objects[0].attributes)
    who = bearer(token_for(app, "ann", "annotator"))
    with TestClient(app) as client:
        task = client.get("/api/review/next", headers=who).json()
        shown = task["sample"]["objects"]
        assert [o["attributes"] for o in shown] == [{"ref": 0}, {"ref": 1}, {"ref": 2}]
        url = f"/api/review/{task['item_id']}/decision"
        for refs, named in BAD_REFS:
            posted = [{**shown[0], "attributes": {"ref": ref}} for ref in refs]
            refused = client.post(url, json={"verdict": "fix", "objects": posted}, headers=who)
            assert refused.status_code == 400 and named in refused.json()["detail"], refs
        x, y, w, h = shown[2]["bbox"]
        moved = {**shown[2], "bbox": [x + 2, y + 1, w, h], "mask": None}
        reclassified = {**shown[0], "category": "square"}
        drawn = {"category": "circle", "bbox": [1.0, 1.0, 8.0, 8.0], "area": 64.0}
        fix = {"verdict": "fix", "objects": [moved, reclassified, drawn | {"attributes": {}}]}
        assert client.post(url, json=fix, headers=who).status_code == 200
        # reading their decision back tells the annotator no source either; an admin sees all
        mine = client.get(f"/api/review/{task['item_id']}/decisions", headers=who).json()
        assert [o["attributes"] for o in mine[0]["objects"]] == [{}, {}, {}]
        admin = bearer(token_for(app, "lead", "admin"))
        theirs = client.get(f"/api/review/{task['item_id']}/decisions", headers=admin).json()
        assert theirs[0]["objects"][0]["attributes"] == stored.objects[2].attributes
    final = app.state.store.get_sample(stored.id)
    assert final.status == "accepted"
    assert [(o.category, o.bbox, o.attributes) for o in final.objects] == [
        ("circle", [x + 2, y + 1, w, h], stored.objects[2].attributes),
        ("square", stored.objects[0].bbox, stored.objects[0].attributes),
        ("circle", [1.0, 1.0, 8.0, 8.0], {}),
    ]
    with app.state.store.engine.connect() as connection:
        (row,) = connection.execute(select(decisions)).all()  # the refused ones left nothing
    assert [o["attributes"] for o in row.objects] == [o.attributes for o in final.objects]
    assert row.original == [o.model_dump(mode="json") for o in stored.objects]


def test_an_adjudicators_fix_keeps_the_objects_attributes_by_their_refs(tmp_path):
    """An admin adjudicating a split item sees it as its annotators did (objects by ref) and
    posts a fix the same way: the final sample keeps the stored attributes of each object."""
    app, stored = coco_item_app(tmp_path, k=2)
    with TestClient(app) as client:
        for name, verdict in [("ann", "accept"), ("ann2", "reject")]:
            who = bearer(token_for(app, name, "annotator"))
            task = client.get("/api/review/next", headers=who).json()
            url = f"/api/review/{task['item_id']}/decision"
            assert client.post(url, json={"verdict": verdict}, headers=who).status_code == 200
        admin = bearer(token_for(app, "lead", "admin"))
        shown = client.get(f"/api/review/{task['item_id']}", headers=admin).json()
        objects = shown["sample"]["objects"]
        assert [o["attributes"] for o in objects] == [{"ref": 0}, {"ref": 1}, {"ref": 2}]
        fix = {"verdict": "fix", "objects": [{**objects[2], "category": "square"}, objects[0]]}
        url = f"/api/review/{task['item_id']}/adjudication"
        assert client.post(url, json=fix, headers=admin).status_code == 200
    final = app.state.store.get_sample(stored.id)
    assert [(o.category, o.attributes) for o in final.objects] == [
        ("square", stored.objects[2].attributes),
        ("circle", stored.objects[0].attributes),
    ]
