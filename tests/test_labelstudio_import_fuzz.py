"""Label Studio import of exports a fuzzer broke: every bad value is an InputError that names
the file, the task and the field, or a skipped annotation with that reason; never a traceback,
and a file refused for one bad task records none of its decisions."""

from __future__ import annotations

import copy
import json
import re
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from labelstudio_fixtures import decide_everything, open_store, snapshot
from test_labelstudio_import import accepted_once, as_label_studio_exports_it
from typer.testing import CliRunner

from synthgate.cli import app
from synthgate.errors import InputError
from synthgate.review.interop import export_tasks, import_annotations
from synthgate.review.labelstudio import result_decision
from synthgate.review.queue import ReviewQueue
from synthgate.storage.store import Store

DOMAIN = "example.org"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    yield from open_store(tmp_path)


def write(tmp_path: Path, tasks: list[dict]) -> Path:
    path = tmp_path / "label-studio-export.json"
    path.write_text(json.dumps(tasks))  # ensure_ascii: a lone surrogate goes out as \udc80
    return path


# Finding 1: `annotations` was iterated unchecked, after the tasks before it were recorded.
BAD_ANNOTATIONS = [
    (5, r"annotations must be a list of annotations \(got 5\)"),
    ({"result": []}, r"annotations must be a list of annotations \(got \{'result': \[\]\}\)"),
    ("x", r"annotations must be a list of annotations \(got 'x'\)"),
    ([None], r"annotations\[0\] must be an annotation object \(got None\)"),
    ([5], r"annotations\[0\] must be an annotation object \(got 5\)"),
    (["x"], r"annotations\[0\] must be an annotation object \(got 'x'\)"),
    ([[]], r"annotations\[0\] must be an annotation object \(got \[\]\)"),
]


@pytest.mark.parametrize(("annotations", "message"), BAD_ANNOTATIONS)
def test_a_bad_task_refuses_the_whole_file_before_any_decision(
    store: Store, tmp_path: Path, annotations: Any, message: str
) -> None:
    queue, good = accepted_once(store, tmp_path)  # task 0 alone would record a decision
    bad = copy.deepcopy(good)
    bad["annotations"] = annotations
    path = write(tmp_path, [good, bad])
    before = snapshot(store)
    item = bad["data"]["item_id"]
    # named by its id (ours, as Label Studio's export of our task would not be)
    with pytest.raises(InputError, match=rf"export.json: task {item} \(item {item}\): {message}"):
        import_annotations(queue, path)
    assert snapshot(store) == before  # task 0's decision was once committed before the crash


def test_a_fault_in_the_json_is_reported_before_a_bad_task(store: Store, tmp_path: Path) -> None:
    """Tasks are read one at a time, but the file is refused as when it was parsed whole first:
    for broken JSON at its end, not for the bad task before it."""
    queue, good = accepted_once(store, tmp_path)
    bad = copy.deepcopy(good)
    bad["annotations"] = 5
    path = tmp_path / "export.json"
    text = json.dumps([good, bad, good])
    path.write_text(text[:-1] + ",]")  # a trailing comma
    before = snapshot(store)
    with pytest.raises(InputError, match=r"export.json: not valid JSON \(line 1, column"):
        import_annotations(queue, path)
    path.write_text(text)
    with pytest.raises(InputError, match=r"export.json: task (\d+) \(item \1\): annotations must"):
        import_annotations(queue, path)
    assert snapshot(store) == before


def test_an_export_is_not_held_parsed_whole(store: Store, tmp_path: Path) -> None:
    """A large export is read a task at a time: at its peak the import holds the file's bytes
    and text (twice its size), not the whole parse (4-5 times)."""
    queue, task = accepted_once(store, tmp_path)
    task["data"]["padding"] = [{"x": i, "y": [i, i]} for i in range(400)]  # a large task
    path = write(tmp_path, [task] * 300)
    size = path.stat().st_size
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = import_annotations(queue, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (result.decided, result.unchanged) == (1, 299)
    assert peak < 2.6 * size, f"peak {peak / size:.1f}x the file"


def open_text_task(store: Store, tmp_path: Path) -> tuple[ReviewQueue, dict]:
    """The queue of batch b1 and its first text task as exported, before anyone annotated it."""
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    out = tmp_path / "open.json"
    export_tasks(queue, out, modality="text")
    return queue, json.loads(out.read_text())[0]


def verdict(value: str, target: str) -> dict:
    return {
        "from_name": "verdict",
        "to_name": target,
        "type": "choices",
        "value": {"choices": [value]},
    }


def set_value(index: int, key: str, value: Any) -> Callable[[list[dict]], None]:
    def edit(result: list[dict]) -> None:
        result[index]["value"][key] = value

    return edit


# Finding 2: a fix's span offsets went through int(), which raises OverflowError for Infinity.
BAD_GEOMETRY = [
    ("text", set_value(0, "start", float("inf")), r"span value.start must be .* \(got inf\)"),
    ("text", set_value(0, "start", float("-inf")), r"span value.start must be .* \(got -inf\)"),
    ("text", set_value(0, "end", float("nan")), r"span value.end must be .* \(got nan\)"),
    ("text", set_value(1, "end", 20.5), r"span value.end must be .* \(got 20.5\)"),
    ("text", set_value(0, "start", "0"), r"span value.start must be .* \(got '0'\)"),
    ("text", set_value(0, "start", True), r"span value.start must be .* \(got True\)"),
    # an integer beyond any float, as a box coordinate: caught with the other malformed results
    ("image", set_value(1, "x", 10**400), r"malformed annotation result \(OverflowError"),
]


@pytest.mark.parametrize(("modality", "edit", "message"), BAD_GEOMETRY)
def test_a_fix_with_offsets_no_text_has_is_skipped_with_the_field(
    store: Store, tmp_path: Path, modality: str, edit: Callable, message: str
) -> None:
    if modality == "text":
        queue, task = open_text_task(store, tmp_path)
    else:
        queue, task = accepted_once(store, tmp_path)
    result = copy.deepcopy(task["predictions"][0]["result"])
    edit(result)
    result.append(verdict("fix", modality))
    shown = queue.task(task["data"]["item_id"]).sample
    with pytest.raises(InputError, match=rf"task 0: {message}"):
        result_decision(result, shown, where="task 0")
    task["annotations"] = [{"completed_by": {"email": f"carol@{DOMAIN}"}, "result": result}]
    before = snapshot(store)
    imported = import_annotations(queue, write(tmp_path, [task]), email_domain=DOMAIN)
    assert imported.decided == 0 and len(imported.skipped) == 1
    assert f"task {task['id']} (item" in imported.skipped[0], imported.skipped[0]
    assert "annotation by carol" in imported.skipped[0]
    assert snapshot(store) == before


# Finding 3: against a recorded decision, the raw result was compared (canonical) unchecked.
# A region may lack from_name (a relation between regions has none) and carry values of any
# kind: compared, not a crash; a from_name, type or value of the wrong kind: skipped.
EXTRA_REGIONS = [
    (
        {"type": "x", "from_name": "y", "value": 5},
        r"result\[\d+\].value must be an object \(got 5\)",
    ),
    ({"type": "x", "from_name": "y", "value": "v"}, r"result\[\d+\].value must be an object"),
    ({"type": "x", "from_name": 5}, r"result\[\d+\].from_name must be a string \(got 5\)"),
    ({"type": "x", "from_name": ["y"]}, r"result\[\d+\].from_name must be a string"),
    ({"type": ["x"], "from_name": "y"}, r"result\[\d+\].type must be a string"),
    (7, r"result\[\d+\] must be an object \(got 7\)"),
    ({"type": "x"}, None),  # no from_name (ls4.json): sorting None among strings once crashed
    (
        {"type": "relation", "from_id": "o0", "to_id": "o1", "direction": "right", "labels": []},
        None,
    ),
    ({"type": "x", "from_name": "y", "value": {"points": 5}}, None),
    ({"type": "x", "from_name": "y", "value": {"points": [[10**400, 1], None, ["a"]]}}, None),
]


@pytest.mark.parametrize("returned", [False, True], ids=["by-annotator", "by-import-id"])
@pytest.mark.parametrize(("extra", "message"), EXTRA_REGIONS)
def test_odd_regions_against_a_recorded_decision(
    store: Store, tmp_path: Path, extra: Any, message: str | None, returned: bool
) -> None:
    """An export of recorded decisions with one more result entry: the same decision again
    (unchanged), or one skipped for the entry's field; nothing recorded either way."""
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    decide_everything(queue)
    out = tmp_path / "all.json"
    export_tasks(queue, out, include="all", modality="image", email_domain=DOMAIN)
    task = json.loads(out.read_text())[0]
    task["annotations"] = task["annotations"][:1]
    task["annotations"][0]["result"].append(extra)
    if returned:  # Label Studio's export of the imported task: known by its import_id
        users = {f"{name}@{DOMAIN}": n for n, name in enumerate(["ann", "bob", "lead"], 2)}
        task = as_label_studio_exports_it([task], users)[0]
    before = snapshot(store)
    imported = import_annotations(queue, write(tmp_path, [task]), email_domain=DOMAIN)
    if message is None:
        assert (imported.unchanged, imported.skipped, imported.conflicts) == (1, [], [])
    else:
        assert imported.unchanged == 0 and len(imported.skipped) == 1
        assert f"label-studio-export.json: task {task['id']} (item" in imported.skipped[0]
        assert re.search(message, imported.skipped[0]), imported.skipped[0]
    assert imported.decided == 0 and snapshot(store) == before


# Finding 4: a lone surrogate in the annotator's name reached the database's UTF-8 encoder (and
# a NUL reaches PostgreSQL's text, which takes none).
SURROGATE = r"names the annotator '.*\\ud[89a-f][0-9a-f]{2}.*', which holds a lone surrogate"
UNFIT_NAMES = [
    ({"email": f"\udc80@{DOMAIN}"}, SURROGATE),
    ({"username": "ann\ud800"}, SURROGATE),
    ({"email": "\udfff", "id": 3}, SURROGATE),
    ({"email": f"a\x00b@{DOMAIN}"}, r"names the annotator 'a\\x00b@.*', which holds a control"),
    ({"username": "ann\nbob"}, r"names the annotator 'ann\\nbob', which holds a control"),
]


@pytest.mark.parametrize(("completed_by", "message"), UNFIT_NAMES)
def test_an_annotator_name_no_database_can_hold_refuses_the_file(
    store: Store, tmp_path: Path, completed_by: dict, message: str
) -> None:
    queue, good = accepted_once(store, tmp_path)
    bad = copy.deepcopy(good)
    bad["annotations"][0]["completed_by"] = completed_by
    path = write(tmp_path, [good, bad])
    before = snapshot(store)
    with pytest.raises(
        InputError, match=rf"task (\d+) \(item \1\): annotations\[0\].completed_by {message}"
    ):
        import_annotations(queue, path, email_domain=DOMAIN)
    assert snapshot(store) == before


def bad_annotations(task: dict) -> list[dict]:
    bad = copy.deepcopy(task)
    bad["annotations"] = 5
    return [task, bad]


def surrogate_email(task: dict) -> list[dict]:
    bad = copy.deepcopy(task)
    bad["annotations"][0]["completed_by"] = {"email": f"\udc80@{DOMAIN}"}
    return [task, bad]


def infinite_box(task: dict) -> list[dict]:
    bad = copy.deepcopy(task)
    result = bad["annotations"][0]["result"]
    result[0]["value"]["x"] = 10**400
    next(r for r in result if r["from_name"] == "verdict")["value"]["choices"] = ["fix"]
    return [bad]


@pytest.mark.parametrize(
    ("tasks_of", "code", "says"),
    [
        (bad_annotations, 2, "task 1 (item"),
        (surrogate_email, 2, "which holds a lone surrogate"),
        (infinite_box, 0, "skipped 1"),
    ],
)
def test_the_command_exits_2_or_skips_never_a_traceback(
    store: Store, tmp_path: Path, tasks_of: Callable, code: int, says: str
) -> None:
    _queue, task = accepted_once(store, tmp_path)
    path = write(tmp_path, tasks_of(task))
    before = snapshot(store)
    db = f"sqlite:///{tmp_path / 'synthgate.db'}"
    done = CliRunner().invoke(
        app,
        ["review", "import", str(path), "--db", db, "--email-domain", DOMAIN],
        env={"COLUMNS": "400"},
    )
    assert done.exit_code == code, done.output
    assert says in done.output and "Traceback" not in done.output
    assert snapshot(store) == before
