"""What people decided reaches the datasets made from a run.

A run writes coco.json, accepted.coco.json and text.jsonl when it finishes; its samples routed
to review are decided later, in its database. `merge --synthetic RUN` and `export RUN` read the
run as the review left it: a sample people accepted is merged and exported, one they rejected is
not (an audited sample the rubric had accepted too), and one they fixed carries their labels.
Before, both read the files as the run wrote them, so every verdict was lost (a text run's too,
until text merge read them).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from balance_fixtures import make_tiny_coco
from factories import SUPPORT_TICKETS, small_config
from test_rubric_pipeline import strict_rubric  # any object less than fully visible: review
from typer.testing import CliRunner

import synthgate as sg
from synthgate.cli import app
from synthgate.review.queue import Decision, ReviewQueue
from synthgate.samples import Span
from synthgate.storage.store import Store, sqlite_url
from synthgate.validators.rubric import RUBRICS_DIR
from synthgate.workflows.reviewed import final_verdicts

runner = CliRunner()


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A run whose review has accepted one sample, rejected one and fixed one (k = 1)."""
    folder = tmp_path_factory.mktemp("reviewed")
    config = small_config(text=None)
    config["image"].update(
        count=12, objects_per_image=[3, 5], rubric=str(strict_rubric(folder, accept_at=4.9))
    )
    run = sg.run(config, out=folder / "run")
    store = Store(sqlite_url(run.out / "synthgate.db"))
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.0)
    queue.enqueue_batch(run.batch_id)
    decided: dict[str, Any] = {}
    for verdict in ("accept", "reject", "fix"):
        task = queue.next_item("alice")
        assert task is not None, "the strict rubric sends at least three samples to review"
        objects = None
        if verdict == "fix":  # one object less, and the first one relabelled
            kept = task.sample.objects[:-1] or task.sample.objects
            objects = [kept[0].model_copy(update={"category": "triangle"}), *kept[1:]]
            decided["fixed_objects"] = [(o.category, o.bbox) for o in objects]
        queue.decide(task.item_id, "alice", Decision(verdict=verdict, objects=objects))
        decided[verdict] = task.sample.id
    store.close()
    decided["run"] = run
    decided["routes"] = {
        image["synthgate"]["sample_id"]: image["synthgate"]["status"]
        for image in json.loads((run.out / "coco.json").read_text())["images"]
    }
    return decided


def _by_sample(coco: dict[str, Any]) -> dict[str, list[tuple[str, list[float]]]]:
    """Each synthetic image's (class, box) labels, by sample id."""
    names = {c["id"]: c["name"] for c in coco["categories"]}
    labels: dict[str, list[tuple[str, list[float]]]] = {}
    ids = {}
    for image in coco["images"]:
        block = image.get("synthgate") or {}
        if "sample_id" in block:
            ids[image["id"]] = block["sample_id"]
            labels[block["sample_id"]] = []
    for annotation in coco["annotations"]:
        if annotation["image_id"] in ids:
            labels[ids[annotation["image_id"]]].append(
                (names[annotation["category_id"]], annotation["bbox"])
            )
    return labels


def test_the_run_files_still_hold_the_rubric_s_routes(reviewed: dict[str, Any]) -> None:
    """The premise: what the run wrote says review for all three; only the database knows."""
    assert {reviewed[v] for v in ("accept", "reject", "fix")} <= {
        s for s, route in reviewed["routes"].items() if route == "review"
    }
    verdicts = final_verdicts(reviewed["run"].out / "synthgate.db")
    assert verdicts == {reviewed[v]: v for v in ("accept", "reject", "fix")}


def test_merge_takes_the_people_s_verdicts_and_fixes(
    reviewed: dict[str, Any], tmp_path: Path
) -> None:
    real, images = make_tiny_coco(tmp_path / "real")
    result = sg.merge(real, reviewed["run"], out=tmp_path / "merged", images=images,
                      add_categories=True)  # fmt: skip
    merged = json.loads((tmp_path / "merged" / "merged.coco.json").read_text())
    labels = _by_sample(merged)
    rubric_accepted = {s for s, route in reviewed["routes"].items() if route == "accepted"}
    assert set(labels) == rubric_accepted | {reviewed["accept"], reviewed["fix"]}
    assert reviewed["reject"] in result.left_out["rejected"]
    assert reviewed["accept"] not in result.left_out.get("review", [])
    assert labels[reviewed["fix"]] == reviewed["fixed_objects"]
    verdicts = {
        i["synthgate"]["sample_id"]: i["synthgate"].get("review_verdict")
        for i in merged["images"]
        if "synthgate" in i
    }
    assert verdicts[reviewed["fix"]] == "fix" and verdicts[reviewed["accept"]] == "accept"


def test_export_takes_them_too(reviewed: dict[str, Any], tmp_path: Path) -> None:
    sg.export(reviewed["run"], format="coco", out=tmp_path / "export")
    exported: dict[str, Any] = {"images": [], "annotations": [], "categories": []}
    for subset in (tmp_path / "export" / "annotations").glob("*.json"):  # train, val
        part = json.loads(subset.read_text())
        exported = {key: exported[key] + part[key] for key in exported}
    labels = _by_sample(exported)
    rubric_accepted = {s for s, route in reviewed["routes"].items() if route == "accepted"}
    assert set(labels) == rubric_accepted | {reviewed["accept"], reviewed["fix"]}
    assert sorted(labels[reviewed["fix"]]) == sorted(reviewed["fixed_objects"])


def test_a_run_nobody_reviewed_reads_as_its_files(tmp_path: Path) -> None:
    run = sg.run(small_config(text=None), out=tmp_path / "run")
    assert final_verdicts(run.out / "synthgate.db") == {}
    sg.export(run, format="coco", out=tmp_path / "export")
    accepted = json.loads((run.out / "accepted.coco.json").read_text())
    exported = {
        i["synthgate"]["sample_id"]
        for path in (tmp_path / "export" / "annotations").glob("*.json")
        for i in json.loads(path.read_text())["images"]
    }
    assert exported == {i["synthgate"]["sample_id"] for i in accepted["images"]}


@pytest.fixture(scope="module")
def reviewed_text(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An NER text run whose review has rejected one sample the rubric had accepted (an
    audit), fixed one it sent to review (its first span relabelled ORG) and accepted every
    other (k = 1)."""
    folder = tmp_path_factory.mktemp("reviewed-text")
    rubric = yaml.safe_load((RUBRICS_DIR / "ner.yaml").read_text())
    for check in rubric["criteria"]["clarity"]["checks"]:
        if check["check"] == "clarity_text_length":  # texts under 135 characters: review
            check["thresholds"]["text_chars"] = {"gold": 135, "acceptable": 5}
    rubric["routing"].update(accept_at=4.9, audit_rate=1.0)  # and every accepted one audited
    (folder / "strict-ner.yaml").write_text(yaml.safe_dump(rubric))
    text = {"generator": "templates", "templates": str(SUPPORT_TICKETS), "count": 8,
            "rubric": str(folder / "strict-ner.yaml")}  # fmt: skip
    run = sg.run({"name": "tickets", "seed": 1, "text": text}, out=folder / "run")
    routes = {
        row["id"]: row["status"]
        for row in map(json.loads, (run.out / "text.jsonl").read_text().splitlines())
    }
    store = Store(sqlite_url(run.out / "synthgate.db"))
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.0)
    queue.enqueue_batch(run.batch_id)
    decided: dict[str, Any] = {"run": run, "routes": routes}
    while (task := queue.next_item("alice")) is not None:
        route = routes[task.sample.id]
        if route == "accepted" and "reject" not in decided:
            decision = Decision(verdict="reject")
        elif route == "review" and "fix" not in decided:
            first = task.sample.spans[0]
            decided["fixed_spans"] = [[first.start, first.end, "ORG"]]
            spans = [Span(start=first.start, end=first.end, label="ORG")]
            decision = Decision(verdict="fix", spans=spans)
        else:  # every other sample accepted
            decision = Decision(verdict="accept")
        queue.decide(task.item_id, "alice", decision)
        if route == "review" or decision.verdict != "accept":
            decided.setdefault(decision.verdict, task.sample.id)
    store.close()
    assert {"accept", "reject", "fix"} <= set(decided), "the rubric routes both ways"
    return decided


def test_text_merge_takes_the_people_s_verdicts_and_fixes(
    reviewed_text: dict[str, Any], tmp_path: Path
) -> None:
    real = tmp_path / "real.jsonl"
    real.write_text(json.dumps({"id": "r1", "text": "Name: Ann", "spans": [[6, 9, "PERSON"]]}))
    result = sg.merge(real, reviewed_text["run"], out=tmp_path / "merged", add_categories=True)
    rows = [json.loads(line) for line in (tmp_path / "merged" / "merged.jsonl").open()]
    merged = {row["synthgate"]["sample_id"]: row for row in rows if "synthgate" in row}
    assert set(merged) == set(reviewed_text["routes"]) - {reviewed_text["reject"]}
    assert result.left_out["rejected"] == [reviewed_text["reject"]]
    assert merged[reviewed_text["fix"]]["spans"] == reviewed_text["fixed_spans"]
    assert merged[reviewed_text["fix"]]["synthgate"]["review_verdict"] == "fix"
    assert merged[reviewed_text["accept"]]["synthgate"]["review_verdict"] == "accept"


@pytest.fixture(scope="module")
def under_review(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A run whose review is under way (k = 2, every accepted sample audited): one sample the
    rubric sent to review both annotators rejected; one audited sample they split on (awaiting
    adjudication); one audited sample one of them accepted (open); the rest untouched."""
    folder = tmp_path_factory.mktemp("under-review")
    rubric = strict_rubric(folder, accept_at=4.9)
    data = yaml.safe_load(rubric.read_text())
    data["routing"]["audit_rate"] = 1.0
    rubric.write_text(yaml.safe_dump(data))
    config = small_config(text=None)
    config["image"].update(count=12, objects_per_image=[3, 5], rubric=str(rubric))
    run = sg.run(config, out=folder / "run")
    store = Store(sqlite_url(run.out / "synthgate.db"))
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    queue.enqueue_batch(run.batch_id)
    with sqlite3.connect(run.out / "synthgate.db") as connection:
        items = connection.execute(
            "SELECT id, sample_id, reason FROM review_items WHERE kind = 'sample' ORDER BY id"
        ).fetchall()
    connection.close()
    review = [(i, s) for i, s, reason in items if reason == "review"]
    audit = [(i, s) for i, s, reason in items if reason == "audit"]
    assert review and len(audit) >= 2, "the strict rubric routes both ways"
    for annotator, (item, verdict) in [
        ("alice", (review[0][0], "reject")),
        ("bob", (review[0][0], "reject")),
        ("alice", (audit[0][0], "accept")),
        ("bob", (audit[0][0], "reject")),
        ("alice", (audit[1][0], "accept")),
    ]:
        queue.decide(item, annotator, Decision(verdict=verdict), assign=True)
    assert queue.awaiting_adjudication() == [audit[0][0]]
    store.close()
    return {
        "run": run,
        "rejected": review[0][1],
        "split": audit[0][1],
        "audited": [s for _, s in audit],
        "review": [s for _, s in review[1:]],
    }


def test_merge_during_review_says_what_it_left_out_and_what_is_undecided(
    under_review: dict[str, Any], tmp_path: Path
) -> None:
    """`merge` merged the audited samples people are still deciding (one whose annotators split)
    without a word, and said "41 sample(s) review and not merged"."""
    real, images = make_tiny_coco(tmp_path / "real")
    result = runner.invoke(app, [
        "merge", "--real", str(real), "--images", str(images), "--synthetic",
        str(under_review["run"].out), "--out", str(tmp_path / "merged"), "--add-categories",
    ])  # fmt: skip
    said = " ".join(result.output.split())
    assert result.exit_code == 0, said
    assert f"1 sample(s) rejected, not merged: {under_review['rejected']}" in said
    assert f"{len(under_review['review'])} sample(s) under review, not merged: " in said
    audited = under_review["audited"]
    assert (
        f"{len(audited)} sample(s) merged as the rubric accepted them while people still "
        "review them: "
    ) in said
    assert (
        "1 of them await adjudication (their annotators split: synthgate review adjudicate "
        f"lists them): {under_review['split']}; merge again once their review is final"
    ) in said
    summary = json.loads((tmp_path / "merged" / "merge.json").read_text())
    assert summary["undecided"]["adjudication"] == [under_review["split"]]
    assert sorted(id for ids in summary["undecided"].values() for id in ids) == sorted(audited)
    merged = _by_sample(json.loads((tmp_path / "merged" / "merged.coco.json").read_text()))
    assert set(audited) <= set(merged), "the rubric's accept stands until people decide"


def test_export_says_what_review_left_out(under_review: dict[str, Any], tmp_path: Path) -> None:
    """`export RUN` left out the sample people rejected (99 of 100 images) without a word."""
    out = tmp_path / "export"
    run = under_review["run"].out
    result = runner.invoke(app, ["export", str(run), "-f", "yolo", "--out", str(out)])
    said = " ".join(result.output.split())
    assert result.exit_code == 0, said
    assert f"1 sample(s) rejected, not exported: {under_review['rejected']}" in said
    assert f"{len(under_review['review'])} sample(s) under review, not exported: " in said
    assert "1 of them await adjudication" in said and under_review["split"] in said
    assert "export again with --force once their review is final" in said
    exported = sg.export(run, format="coco", out=tmp_path / "again")
    assert exported.left_out["rejected"] == [under_review["rejected"]]
    assert exported.left_out["review"] == under_review["review"]
    assert exported.undecided["adjudication"] == [under_review["split"]]


def test_export_of_a_run_says_what_the_rubric_left_out(tmp_path: Path) -> None:
    """Nobody reviewed: the samples the rubric sent to review are named as left out too."""
    config = small_config(text=None)
    config["image"].update(count=6, objects_per_image=[3, 5], rubric=str(strict_rubric(tmp_path)))
    run = sg.run(config, out=tmp_path / "run")
    routes = [
        image["synthgate"]["status"]
        for image in json.loads((run.out / "coco.json").read_text())["images"]
    ]
    exported = sg.export(run, format="coco", out=tmp_path / "export")
    assert {status: len(ids) for status, ids in exported.left_out.items()} == {
        status: routes.count(status) for status in set(routes) - {"accepted"}
    }
    assert exported.counts.images == routes.count("accepted") and exported.undecided == {}
