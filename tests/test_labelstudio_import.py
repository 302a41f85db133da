"""Label Studio import: decisions made in Label Studio come back as queue decisions, a changed
decision is a conflict rather than an overwrite, and bad exports are refused with a reason."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from factories import SUPPORT_TICKETS
from labelstudio_fixtures import decide_everything, make_sample, open_store, snapshot
from sqlalchemy import func, select
from typer.testing import CliRunner

from synthgate.cli import app
from synthgate.errors import InputError
from synthgate.review import interop, items
from synthgate.review.interop import export_tasks, import_annotations
from synthgate.review.queue import Decision, ReviewQueue
from synthgate.samples import ObjectLabel
from synthgate.storage.store import Store, sqlite_url
from synthgate.storage.tables import assignments, decisions, review_items, samples
from synthgate.storage.users import Users


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    yield from open_store(tmp_path)


def database_url(database: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh database of this kind ("sqlite" or "postgresql") for one test."""
    if database == "postgresql":
        return request.getfixturevalue("postgres_cluster").database("labelstudio_import")
    return f"sqlite:///{tmp_path / 'synthgate.db'}"


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


def test_decisions_made_in_label_studio_come_back(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = []  # an item's decisions read on their own: only after the import recorded one
    # or was refused one (it may have been recorded since the import read them)
    read_item = interop._decision_rows
    monkeypatch.setattr(
        interop, "_decision_rows", lambda queue, item: reads.append(item) or read_item(queue, item)
    )
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
    assert sorted(reads) == sorted([first, first, second, second, second])  # 4 + the 3rd person
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
    # both chose fix, one moving a box 6.4 px, the other relabelling: two fixes, for a lead
    assert store.get_sample(original.id).status == "review"
    assert [item.item_id for item in queue.awaiting_with_decisions()] == [first]
    assert store.get_sample(make_sample(1, "image").id).status == "accepted"
    again = import_annotations(queue, export_path)  # importing the same export twice is harmless
    assert again.decided == 0 and again.unchanged == 4
    assert len(reads) == 6  # nothing recorded: only the refused 3rd person's item read again


def test_an_export_with_a_byte_order_mark_imports_as_the_file_without_it(
    store: Store, tmp_path: Path
) -> None:
    """Imported, the file with the mark records the decisions; the file without it then finds
    each of them recorded as it would have (unchanged), and nothing else."""
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    out = tmp_path / "open.json"
    export_tasks(queue, out, modality="image")
    tasks = json.loads(out.read_text())
    first, second = tasks[0]["data"]["item_id"], tasks[1]["data"]["item_id"]
    exported = label_studio_export(
        tasks,
        {first: [{"verdict": "fix", "edit": move_second_box}], second: [{"verdict": "accept"}]},
    )
    plain, marked = tmp_path / "export.json", tmp_path / "marked.json"
    plain.write_text(json.dumps(exported), encoding="utf-8")
    marked.write_text(json.dumps(exported), encoding="utf-8-sig")
    assert import_annotations(queue, marked).decided == 2
    recorded = snapshot(store)
    again = import_annotations(queue, plain)
    assert (again.decided, again.unchanged, again.conflicts) == (0, 2, [])
    assert snapshot(store) == recorded


@pytest.mark.parametrize("region_id", ["o²", "o" + "1" * 5000, "o01", "o-1", "o１"])
def test_a_region_id_that_is_no_index_of_ours_is_a_new_object(
    store: Store, tmp_path: Path, region_id: str
) -> None:
    """Label Studio keeps region ids as given: one that is not "o" + an index of an exported
    object (a superscript digit, 5,000 digits, ...) is read as a drawn box, not a traceback."""
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    out = tmp_path / "open.json"
    export_tasks(queue, out, modality="image")
    tasks = json.loads(out.read_text())
    item = tasks[0]["data"]["item_id"]

    def rename_first(result: list[dict]) -> None:
        result[0]["id"] = region_id

    exported = label_studio_export(tasks[:1], {item: [{"verdict": "fix", "edit": rename_first}]})
    export_path = tmp_path / "label-studio-export.json"
    export_path.write_text(json.dumps(exported))
    assert import_annotations(queue, export_path).decided == 1
    with store.engine.connect() as connection:
        fix = connection.execute(select(decisions).where(decisions.c.item_id == item)).one()
    first = ObjectLabel.model_validate(fix.objects[0])
    original = make_sample(0, "image").objects[0]
    # a box drawn anew: the original's mask is not carried over
    assert first.mask is None and original.mask is not None
    assert first.bbox == pytest.approx(original.bbox, abs=0.01)


def test_changed_decision_is_a_conflict_not_an_overwrite(store: Store, tmp_path: Path) -> None:
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    decide_everything(queue)
    before = snapshot(store)
    out = tmp_path / "all.json"
    export_tasks(queue, out, include="all", modality="text", email_domain="example.org")
    tasks = json.loads(out.read_text())
    verdict = next(r for r in tasks[0]["annotations"][0]["result"] if r["from_name"] == "verdict")
    verdict["value"]["choices"] = [
        "reject" if verdict["value"]["choices"] != ["reject"] else "accept"
    ]
    out.write_text(json.dumps(tasks))
    result = import_annotations(queue, out, email_domain="example.org")
    (conflict,) = result.conflicts  # our own file, known by id: edited after the export
    assert "edited in Label Studio or in the file after it was exported" in conflict
    assert snapshot(store) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON \\(line 1, column 2"),
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
    with pytest.raises(InputError, match="not a usable path"):  # no file has such a name
        import_annotations(ReviewQueue(store), tmp_path / "a\x00b.json")


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


def test_annotators_need_an_email_or_are_left_out(store: Store, tmp_path: Path) -> None:
    """Label Studio rejects a whole import for one annotator it does not know by email."""
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    decide_everything(queue)
    out = tmp_path / "all.json"
    with pytest.raises(
        InputError, match="annotators ann, bob, lead: Label Studio imports"
    ) as error:
        export_tasks(queue, out, include="all", modality="image")
    shown = str(error.value)  # the library's parameters; the CLI says --annotator-email
    assert "annotator_emails (e.g. ann to" in shown and "with annotators=False" in shown
    assert not out.exists()
    emails = {"ann": "ann.smith@corp.example", "bob": "bob@corp.example"}
    export_tasks(
        queue, out, include="all", modality="image", annotator_emails=emails, email_domain="x.org"
    )
    users = {
        json.dumps(a["completed_by"]) for t in json.loads(out.read_text()) for a in t["annotations"]
    }
    assert users == {
        '{"email": "ann.smith@corp.example"}',
        '{"email": "bob@corp.example"}',
        '{"email": "lead@x.org"}',  # the domain for whoever has no email of their own
    }
    with pytest.raises(InputError, match=r"ann \('ann@' is not an email\)"):
        export_tasks(queue, out, include="all", modality="image", annotator_emails={"ann": "ann@"})
    export_tasks(queue, out, include="all", modality="image", annotators=False)
    annotations = [a for t in json.loads(out.read_text()) for a in t["annotations"]]
    assert annotations and all("completed_by" not in a for a in annotations)


def as_label_studio_exports_it(tasks: list[dict], user_ids: dict[str, int]) -> list[dict]:
    """What Label Studio's JSON export gives back for imported tasks: each annotation has a new
    id, the id it was imported with as `import_id`, and its user as an id (Label Studio 1.23)."""
    exported = copy.deepcopy(tasks)
    for task_number, task in enumerate(exported):
        task["id"] = 1000 + task_number
        for number, annotation in enumerate(task.get("annotations", [])):
            email = annotation.pop("completed_by", {"email": "importer@example.org"})["email"]
            annotation["import_id"] = annotation["id"]
            annotation["id"] = 5000 + 10 * task_number + number
            annotation["completed_by"] = user_ids[email]
    return exported


@pytest.mark.parametrize("annotators", [True, False])
def test_the_label_studio_round_trip_changes_nothing(
    store: Store, tmp_path: Path, annotators: bool
) -> None:
    queue = ReviewQueue(store, gold_rate=0.25, seed=0)
    queue.enqueue_batch("b1")
    decide_everything(queue)
    before = snapshot(store)
    tasks_file = tmp_path / "all.json"
    export_tasks(
        queue,
        tasks_file,
        include="all",
        modality="image",
        annotators=annotators,
        email_domain="example.org",
    )
    tasks = json.loads(tasks_file.read_text())
    count = sum(len(t["annotations"]) for t in tasks)
    users = {f"{n}@example.org": i for i, n in enumerate(["ann", "bob", "lead", "importer"], 2)}
    back = tmp_path / "export.json"
    back.write_text(json.dumps(as_label_studio_exports_it(tasks, users)))
    result = import_annotations(queue, back, email_domain="example.org")
    assert (result.decided, result.adjudicated, result.unchanged) == (0, 0, count)
    assert result.conflicts == [] and result.skipped == []
    assert snapshot(store) == before
    # Edited in Label Studio after the export: reported, and the recorded decision stays.
    edited = as_label_studio_exports_it(tasks, users)
    verdict = next(r for r in edited[0]["annotations"][0]["result"] if r["from_name"] == "verdict")
    verdict["value"]["choices"] = [
        "reject" if verdict["value"]["choices"] != ["reject"] else "accept"
    ]
    back.write_text(json.dumps(edited))
    result = import_annotations(queue, back)
    assert len(result.conflicts) == 1 and "edited in Label Studio" in result.conflicts[0]
    assert result.decided == 0 and snapshot(store) == before


@pytest.mark.parametrize(
    ("annotators", "domain"), [(True, None), (True, "example.org"), (False, None)]
)
def test_our_own_export_imported_as_it_is_changes_nothing(
    store: Store, tmp_path: Path, annotators: bool, domain: str | None
) -> None:
    """`--include all` written and read straight back: every annotation is known by its id and
    time as the decision it is. Without the export's email_domain it named ann@example.org,
    and open and gold items took her decision a second time under that name."""
    queue = ReviewQueue(store, annotators_per_item=3, gold_rate=0.0)  # two of three: all open
    queue.enqueue_batch("b1")
    decide_everything(queue)
    store.upsert_samples([make_sample(9, "image", status="accepted")])
    gold_item = queue.add_gold(store.get_sample(make_sample(9, "image").id), expected=["accept"])
    queue.decide(gold_item, "ann", Decision(verdict="accept"), assign=True)
    before = snapshot(store)
    out = tmp_path / "all.json"
    export_tasks(
        queue,
        out,
        include="all",
        modality="image",
        annotators=annotators,
        email_domain="example.org",
    )
    count = sum(len(t.get("annotations", [])) for t in json.loads(out.read_text()))
    assert count == 9  # 2 on each of 4 image items, 1 on the gold one
    result = import_annotations(queue, out, email_domain=domain)
    assert (result.decided, result.adjudicated, result.unchanged) == (0, 0, count)
    assert result.conflicts == [] and result.skipped == []
    assert snapshot(store) == before
    # An id alone is no decision's: Label Studio numbers its own annotations from 1 too
    tasks = json.loads(out.read_text())
    for task in tasks:
        for annotation in task.get("annotations", []):
            annotation["created_at"] = "2026-01-01T00:00:00.000000Z"
            annotation.setdefault("completed_by", 7)
    out.write_text(json.dumps(tasks))
    again = import_annotations(queue, out, email_domain="example.org")
    assert again.unchanged == (count if annotators else 0)  # ann's own, compared as hers
    assert again.decided == (0 if annotators else 5)  # labelstudio:7 on the open items


def test_imported_decisions_keep_label_studio_times_or_stay_out_of_the_rate(
    store: Store, tmp_path: Path
) -> None:
    """The queue assigns an imported decision when it records it: ~0 s to decide, and stats
    made thousands of decisions an hour of a few annotations. User 1's come with Label Studio's
    times (submitted a minute apart, 30 s on each), user 2's with none."""
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    out = tmp_path / "open.json"
    export_tasks(queue, out, modality="image")
    tasks = json.loads(out.read_text())[:3]
    both = [{"verdict": "accept"}, {"verdict": "accept"}]
    exported = label_studio_export(tasks, {t["data"]["item_id"]: both for t in tasks})
    for minute, task in enumerate(exported):
        first = task["annotations"][0]
        first.update(created_at=f"2026-03-09T10:0{minute}:00.000000Z", lead_time=30.0)
    path = tmp_path / "export.json"
    path.write_text(json.dumps(exported))
    assert import_annotations(queue, path).decided == 6
    people = queue.stats()["annotators"]
    timed, untimed = people["labelstudio:1"], people["labelstudio:2"]
    # 3 decisions from 09:59:30 to 10:02:00
    assert timed["decided"] == 3 and timed["decisions_per_hour"] == 72.0
    assert timed["untimed"] == 0
    assert untimed["decided"] == 3 and untimed["decisions_per_hour"] is None
    assert untimed["untimed"] == 3


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_an_imported_decision_is_recorded_and_timed_in_one_write(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The decision and its assignment's times were two write transactions: twice the writes
    of a large import, and one stopped between them left a task assigned and decided at the
    moment of the import. Counted here: one `queue.write()` per imported decision."""
    url = (
        request.getfixturevalue("postgres_cluster").database("labelstudio_import_timed")
        if database == "postgresql"
        else database_url(database, tmp_path, request)
    )
    store = next(open_store(tmp_path, url))
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    out = tmp_path / "open.json"
    export_tasks(queue, out, modality="image")
    tasks = json.loads(out.read_text())[:2]
    both = [{"verdict": "accept"}, {"verdict": "accept"}]
    exported = label_studio_export(tasks, {t["data"]["item_id"]: both for t in tasks})
    for task in exported:
        task["annotations"][0].update(created_at="2026-03-09T10:00:30Z", lead_time=30)
    path = tmp_path / "export.json"
    path.write_text(json.dumps(exported))
    writes = 0
    write = queue.write

    def counted(*args: object) -> object:
        nonlocal writes
        writes += 1
        return write(*args)  # type: ignore[arg-type]

    queue.write = counted  # type: ignore[method-assign]
    assert import_annotations(queue, path).decided == 4
    assert writes == 4
    with store.engine.connect() as connection:
        times = connection.execute(
            select(
                assignments.c.annotator, assignments.c.assigned_at, assignments.c.decided_at
            ).order_by(assignments.c.annotator)
        ).all()
    timed, untimed = times[:2], times[2:]
    assert {(at, done) for _, at, done in timed} == {(1773050400.0, 1773050430.0)}
    assert all(at == done for _, at, done in untimed)  # no time on the task
    store.close()


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ({"created_at": "2026-03-09T10:00:30Z", "lead_time": 30}, (1773050400.0, 1773050430.0)),
        ({"created_at": "2026-03-09T10:00:30", "lead_time": 2.5}, (1773050427.5, 1773050430.0)),
        ({"created_at": "2026-03-09T10:00:30Z"}, None),  # made through Label Studio's API
        ({"lead_time": 30}, None),
        ({"created_at": "2026-03-09T10:00:30Z", "lead_time": 0}, None),
        ({"created_at": "2026-03-09T10:00:30Z", "lead_time": -4}, None),
        ({"created_at": "2026-03-09T10:00:30Z", "lead_time": True}, None),
        ({"created_at": "2026-03-09T10:00:30Z", "lead_time": "30"}, None),
        ({"created_at": "2026-03-09T10:00:30Z", "lead_time": float("nan")}, None),
        ({"created_at": "2026-03-09T10:00:30Z", "lead_time": 10**400}, None),
        ({"created_at": "yesterday", "lead_time": 30}, None),
        ({"created_at": "2026-03-09\x00", "lead_time": 30}, None),
        ({"created_at": 1773050430, "lead_time": 30}, None),
    ],
)
def test_time_on_task_is_label_studios_or_none(times: dict, expected: object) -> None:
    """Whatever an export says of its times, an annotation is timed or not, never refused."""
    assert interop._time_on_task(times) == expected


def test_image_urls_follow_the_image_root(store: Store, tmp_path: Path) -> None:
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1", image_root=tmp_path / "run")
    out = tmp_path / "tasks.json"
    export_tasks(queue, out, modality="image")
    urls = sorted(t["data"]["image"] for t in json.loads(out.read_text()))
    assert urls[0] == "/data/local-files/?d=images/0.png"  # relative to the run folder
    export_tasks(queue, out, modality="image", image_root=tmp_path)
    urls = sorted(t["data"]["image"] for t in json.loads(out.read_text()))
    assert urls[0] == "/data/local-files/?d=run/images/0.png"  # one document root, many runs
    served = "http://127.0.0.1:8081/{uri}"
    export_tasks(queue, out, modality="image", image_url=served)
    assert sorted(t["data"]["image"] for t in json.loads(out.read_text()))[0] == (
        "http://127.0.0.1:8081/images/0.png"
    )
    (tmp_path / "elsewhere").mkdir()
    before = out.read_text()
    with pytest.raises(InputError, match="does not hold item"):
        export_tasks(queue, out, modality="image", image_root=tmp_path / "elsewhere")
    assert out.read_text() == before  # refused while the tasks were streaming: left as it was
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_item_ids_no_item_can_have_are_skipped(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A task naming an item id beyond the items' column (PostgreSQL's is 32-bit; SQLite takes
    no int beyond 64 bits) is a skipped task, not a database error."""
    store = Store(database_url(database, tmp_path, request))
    try:
        store.upsert_samples([make_sample(0, "image")])
        store.put_batch("b1", name="b1", seed=0, config={"categories": ["circle", "square"]})
        queue = ReviewQueue(store, gold_rate=0.0)
        queue.enqueue_batch("b1")
        path = tmp_path / "export.json"
        odd = [2**31, 2**63, 2**64, 0, -5]
        tasks = [{"data": {"item_id": i}, "annotations": []} for i in [*odd, True]]
        path.write_text(json.dumps(tasks))
        result = import_annotations(queue, path)
    finally:
        store.close()
    places = ["1st", "2nd", "3rd", "4th", "5th"]  # tasks without an id: named by their place
    assert [reason.split(": ", 1)[1] for reason in result.skipped] == [
        *(
            f"the {n} task of the file: no review item {i}"
            for n, i in zip(places, odd, strict=True)
        ),
        "the 6th task of the file: no data.item_id (not a task synthgate exported)",  # true
    ]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_tasks_without_annotations_are_checked_without_reading_their_samples(
    database: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each is refused as `task` refuses it (its sample gone, no such item), a few items to a
    query; a gold task shows its stored copy, so a sample gone does not refuse it."""
    store = next(open_store(tmp_path, database_url(database, tmp_path, request)))
    try:
        queue = ReviewQueue(store, gold_rate=0.0)
        queue.enqueue_batch("b1")
        out = tmp_path / "open.json"
        export_tasks(queue, out, modality="image")
        tasks = json.loads(out.read_text())
        gone = tasks[0]["data"]
        # a copy of its sample under an id of its own, in no samples row (a sample open as real
        # work is not made gold)
        shown = queue.task(gone["item_id"]).sample
        gold = queue.add_gold(shown.model_copy(update={"id": shown.id + "-g"}), expected=["accept"])
        with store.engine.begin() as connection:  # the sample of the first task is not there now
            connection.execute(samples.delete().where(samples.c.id == gone["sample_id"]))
        with pytest.raises(InputError) as refused:
            queue.task(gone["item_id"])  # what an import said of it when it read every task
        queue.task(gold)  # the gold copy of that sample is still shown
        unknown = [999_999, 2**31, 0]  # none in the queue; the last two none can be
        tasks += [{"data": {"item_id": i}, "annotations": []} for i in [gold, *unknown]]
        tasks.append(tasks[0])
        out.write_text(json.dumps(tasks))

        def read(*args: object) -> None:
            raise AssertionError("a task with nothing to import was read")

        monkeypatch.setattr(ReviewQueue, "task", read)
        monkeypatch.setattr(items, "IDS_PER_QUERY", 2)  # items are read a few to a query
        result = import_annotations(queue, out)
    finally:
        store.close()
    assert len(tasks) - 1 - len(unknown) == 5  # the unknown ones are the 6th to 8th
    places = ["6th", "7th", "8th"]  # tasks without an id: named by their place
    assert [reason.split(": ", 1)[1] for reason in result.skipped] == [
        f"task {gone['item_id']}: {refused.value}",  # by the id it was exported with
        *[
            f"the {n} task of the file: no review item {i}"
            for n, i in zip(places, unknown, strict=True)
        ],
        f"task {gone['item_id']}: {refused.value}",  # the first task again
    ]
    assert result.decided == result.unchanged == 0


def accepted_once(store: Store, tmp_path: Path) -> tuple[ReviewQueue, dict]:
    """The queue of batch b1 and its first image task as Label Studio exports it, accepted by
    one person."""
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    out = tmp_path / "open.json"
    export_tasks(queue, out, modality="image")
    task = json.loads(out.read_text())[0]
    return queue, label_studio_export([task], {task["data"]["item_id"]: [{"verdict": "accept"}]})[0]


def test_an_annotator_twice_on_one_item_is_compared_with_their_first(
    store: Store, tmp_path: Path
) -> None:
    """The second annotation by the same person on an item meets the decision the first one
    recorded in this import: the same is unchanged, another is a conflict."""
    queue, twice = accepted_once(store, tmp_path)
    again, other = copy.deepcopy(twice["annotations"][0]), copy.deepcopy(twice["annotations"][0])
    next(r for r in other["result"] if r["from_name"] == "verdict")["value"]["choices"] = ["reject"]
    twice["annotations"] += [again, other]
    path = tmp_path / "twice.json"
    path.write_text(json.dumps([twice]))
    result = import_annotations(queue, path)
    assert (result.decided, result.unchanged, len(result.conflicts)) == (1, 1, 1)
    assert result.skipped == []


def test_a_decision_recorded_since_the_import_read_is_compared_not_skipped(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone records the same person's decision (through the API, say) after the import read
    the item's decisions: the import compares with it, as with any recorded decision."""
    queue, task = accepted_once(store, tmp_path)
    path = tmp_path / "export.json"
    path.write_text(json.dumps([task]))
    first = import_annotations(queue, path)
    assert first.decided == 1
    read_before = interop._decisions_by_item  # what it read, had it read before that decision
    monkeypatch.setattr(
        interop,
        "_decisions_by_item",
        lambda q, ids, *table: {i: [] for i in read_before(q, ids, *table)},
    )
    again = import_annotations(queue, path)
    assert (again.decided, again.unchanged, again.skipped) == (0, 1, [])


def test_a_fix_the_queue_refuses_is_skipped_naming_the_task_and_the_annotator(
    store: Store, tmp_path: Path
) -> None:
    """A box widened past the image's edge in Label Studio: the skip said only "item 1:
    objects[1].bbox [...] leaves the 64x48 image", once per such annotation, not which task
    of the file nor whose annotation it was."""
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    out = tmp_path / "open.json"
    export_tasks(queue, out, modality="image")
    tasks = json.loads(out.read_text())
    first = tasks[0]["data"]["item_id"]

    def widen_second_box(result: list[dict]) -> None:
        result[1]["value"]["width"] += 90.0

    exported = label_studio_export(tasks, {first: [{"verdict": "fix", "edit": widen_second_box}]})
    export_path = tmp_path / "label-studio-export.json"
    export_path.write_text(json.dumps(exported))
    result = import_annotations(queue, export_path)
    assert result.decided == 0
    (skipped,) = result.skipped
    assert skipped.startswith(
        f"{export_path}: task {first} (item {first}), annotation by labelstudio:1"
    )
    assert "leaves the" in skipped


def test_an_admins_annotation_is_skipped_not_counted_as_an_annotators(
    store: Store, tmp_path: Path
) -> None:
    """A lead annotated an open item in Label Studio under their own email, which maps to an
    admin user: the import recorded it as one of the item's k annotator decisions (it finished
    the item, and counted in the agreement and the gold table), which GET /api/review/next and
    POST .../decision refuse an admin. It is skipped, saying what to do; their ground-truth
    annotation adjudicates as before."""
    Users(store.engine).add("boss", role="admin")
    queue, task = accepted_once(store, tmp_path)
    item = task["data"]["item_id"]
    queue.decide(item, "ann", Decision(verdict="accept"), assign=True)  # one of k = 2
    task["annotations"][0]["completed_by"] = {"email": "boss@example.org"}
    path = tmp_path / "export.json"
    path.write_text(json.dumps([task]))
    result = import_annotations(queue, path, email_domain="example.org")
    assert result.decided == 0
    (skipped,) = result.skipped
    assert skipped.startswith(
        f"{path}: task {item} (item {item}), annotation by boss: boss is an admin"
    )
    assert "ground truth" in skipped
    with store.engine.connect() as connection:
        assert (
            connection.execute(
                select(review_items.c.status).where(review_items.c.id == item)
            ).scalar_one()
            == "open"
        )
        assert (
            connection.execute(
                select(func.count()).where(decisions.c.annotator == "boss")
            ).scalar_one()
            == 0
        )
    # an admin adjudicates: their ground-truth annotation on an item awaiting one is recorded
    queue.decide(item, "bob", Decision(verdict="reject"), assign=True)
    task["annotations"][0]["ground_truth"] = True
    path.write_text(json.dumps([task]))
    assert import_annotations(queue, path, email_domain="example.org").adjudicated == 1


def _text_run(tmp_path: Path, name: str, seed: int) -> Path:
    runner = CliRunner()
    config = tmp_path / f"{name}.yaml"
    config.write_text(
        f"name: {name}\nseed: {seed}\ncategories: [circle]\n"
        f"text: {{generator: templates, templates: {SUPPORT_TICKETS}, count: 10, "
        "locales: [en_US]}\n"
    )
    run = tmp_path / name
    assert runner.invoke(app, ["run", str(config), "--out", str(run)]).exit_code == 0
    assert runner.invoke(app, ["review", "enqueue", "--run", str(run)]).exit_code == 0
    return run


def test_an_export_of_another_run_is_refused_naming_both_samples(tmp_path: Path) -> None:
    """A task names its sample (data.sample_id): an export of run A imported into run B must
    not put A's verdicts on B's items of the same number; a hand-made task without a sample id
    is still taken by its item id."""
    runner = CliRunner()
    first = _text_run(tmp_path, "first", 7)
    second = _text_run(tmp_path, "second", 9)  # its queue has an item 1 too
    tasks = tmp_path / "ls" / "tasks.json"
    exported = runner.invoke(
        app,
        ["review", "export", "--run", str(first), "--modality", "text", "--out", str(tasks)],
    )
    assert exported.exit_code == 0, exported.output
    task = json.loads(tasks.read_text())[0]
    task["annotations"] = [
        {
            "id": 601,
            "completed_by": {"email": "gina@example.org"},
            "result": [
                {
                    "id": "v",
                    "from_name": "verdict",
                    "to_name": "text",
                    "type": "choices",
                    "value": {"choices": ["accept"]},
                }
            ],
        }
    ]
    export = tmp_path / "ls" / "export.json"
    export.write_text(json.dumps([task]))
    command = ["review", "import", str(export), "--run", str(second), "--email-domain"]

    def read(query: Any) -> Any:
        store = Store(sqlite_url(second / "synthgate.db"))
        try:
            with store.engine.connect() as connection:
                return connection.execute(query).scalar()
        finally:
            store.close()

    def recorded() -> int:
        return int(read(select(func.count()).select_from(decisions)))

    result = runner.invoke(app, [*command, "example.org"])
    assert recorded() == 0, "gina's verdict on first's sample was recorded on second's item"
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())  # rich wraps lines
    item_id = task["data"]["item_id"]
    held = read(select(review_items.c.sample_id).where(review_items.c.id == item_id))
    assert held != task["data"]["sample_id"]
    assert f"task {task['id']} (item {item_id}) carries sample" in output, output
    assert task["data"]["sample_id"] in output and held in output, output
    assert "Import it into the run it was exported from" in output, output

    del task["data"]["sample_id"]  # a hand-made task: its item id alone, as before
    export.write_text(json.dumps([task]))
    result = runner.invoke(app, [*command, "example.org"])
    assert result.exit_code == 0, result.output
    assert recorded() == 1


def test_a_verdict_choice_synthgate_does_not_know_is_named(tmp_path: Path) -> None:
    """A verdict not among accept, reject, fix (a hand edit, a labeling config changed in Label
    Studio: "Accept") is skipped naming the value it got, not as if no verdict was chosen."""
    runner = CliRunner()
    run = _text_run(tmp_path, "tickets", 7)
    tasks = tmp_path / "tasks.json"
    exported = runner.invoke(
        app, ["review", "export", "--run", str(run), "--modality", "text", "--out", str(tasks)]
    )
    assert exported.exit_code == 0, exported.output
    task = json.loads(tasks.read_text())[0]
    region = {"from_name": "verdict", "to_name": "text", "type": "choices"}
    task["annotations"] = [
        {
            "id": 7,
            "completed_by": {"email": "zed@example.org"},
            "result": [{**region, "value": {"choices": ["Accept"]}}],
        }
    ]
    export = tmp_path / "export.json"
    export.write_text(json.dumps([task]))

    result = runner.invoke(
        app, ["review", "import", str(export), "--run", str(run), "--email-domain", "example.org"]
    )
    output = " ".join(result.output.split())  # rich wraps lines
    assert "verdict 'Accept' is not one of accept, reject, fix" in output, output
    assert "no verdict chosen" not in output, output


def test_a_task_is_named_as_label_studio_shows_it(store: Store, tmp_path: Path) -> None:
    """Label Studio gives every task an id of its own (57, 58 ... in a project under way): a
    skip named 'task 1 (item N)', its place in the file counting from 0, and a lead opening
    task 1 in Label Studio found another item. A task with no id (made by hand) is named by its
    place, said as such."""
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    out = tmp_path / "open.json"
    export_tasks(queue, out, modality="image")
    tasks = json.loads(out.read_text())[:2]
    items_of = [task["data"]["item_id"] for task in tasks]

    def widen_second_box(result: list[dict]) -> None:
        result[1]["value"]["width"] += 90.0

    exported = label_studio_export(
        tasks, {i: [{"verdict": "fix", "edit": widen_second_box}] for i in items_of}
    )
    del exported[0]["id"]  # a task made by hand
    exported[1]["id"] = 58  # Label Studio's own, not the one it was exported with
    path = tmp_path / "label-studio-export.json"
    path.write_text(json.dumps(exported))
    skipped = import_annotations(queue, path).skipped
    assert [reason.split(", annotation by")[0] for reason in skipped] == [
        f"{path}: the 1st task of the file (item {items_of[0]})",
        f"{path}: task 58 (item {items_of[1]})",
    ]


def test_a_removed_users_annotation_is_skipped_naming_how_to_add_them_back(
    store: Store, tmp_path: Path
) -> None:
    """zed was removed (synthgate users remove) while their work sat in Label Studio: the
    import recorded it as an annotator's decision, finishing the item with someone the team no
    longer counts. It is skipped as an admin's is, naming zed and how to add them back; an email
    of someone who was never a user is still credited, and zed added back counts again."""
    Users(store.engine).add("zed", role="annotator")
    Users(store.engine).remove("zed")
    queue, task = accepted_once(store, tmp_path)
    item = task["data"]["item_id"]
    never_a_user = copy.deepcopy(task["annotations"][0])
    never_a_user["completed_by"] = {"email": "yan@example.org"}
    task["annotations"][0]["completed_by"] = {"email": "zed@example.org"}
    task["annotations"].append(never_a_user)
    path = tmp_path / "export.json"
    path.write_text(json.dumps([task]))
    result = import_annotations(queue, path, email_domain="example.org")
    assert result.decided == 1  # yan's
    (skipped,) = result.skipped
    assert skipped.startswith(f"{path}: task {item} (item {item}), annotation by zed: zed was ")
    assert "synthgate users add zed --role annotator" in skipped
    with store.engine.connect() as connection:
        deciders = connection.execute(select(decisions.c.annotator)).scalars().all()
    assert deciders == ["yan"]
    Users(store.engine).add("zed", role="annotator")  # back on the team: their work counts
    assert import_annotations(queue, path, email_domain="example.org").decided == 1


def test_a_removed_users_ground_truth_is_skipped_too(store: Store, tmp_path: Path) -> None:
    """A removed user's ground-truth annotation would adjudicate an item its annotators split on;
    it is skipped as their annotator work is, naming the role that adjudicates."""
    Users(store.engine).add("zed", role="admin")
    Users(store.engine).remove("zed")
    queue, task = accepted_once(store, tmp_path)
    item = task["data"]["item_id"]
    queue.decide(item, "ann", Decision(verdict="accept"), assign=True)
    queue.decide(item, "bob", Decision(verdict="reject"), assign=True)  # awaits adjudication
    task["annotations"][0].update(completed_by={"email": "zed@example.org"}, ground_truth=True)
    path = tmp_path / "export.json"
    path.write_text(json.dumps([task]))
    result = import_annotations(queue, path, email_domain="example.org")
    assert result.adjudicated == 0
    (skipped,) = result.skipped
    assert "zed was removed" in skipped and "users add zed --role admin" in skipped
    assert queue.awaiting_adjudication() == [item]
