"""Label Studio export and import against a ReviewQueue (the formats are in labelstudio.py).

`export_tasks(queue, out)` writes the open items as Label Studio tasks whose `predictions` are
the labels under review, and the labeling config next to them (`<out stem>.config.xml`); with
`include="all"` every item goes out with its decisions as annotations (adjudicators' marked
`ground_truth`), each annotator given as the email Label Studio knows them by (it rejects the
whole import for one name it does not know: `annotator_emails`, `email_domain`), or left out
(`annotators=False`: Label Studio credits the importing user). Image URLs point at Label
Studio's local file serving, relative to `image_root` (its LOCAL_FILES_DOCUMENT_ROOT; default
the run folder), or follow an `image_url` template for any other server.

`import_annotations(queue, path)` reads a Label Studio JSON export back as decisions: a decision
already recorded and equal is left alone, so importing an export of the same decisions changes
nothing; one that differs is reported as a conflict, never overwritten. Label Studio keeps the
id of every annotation it imported as `import_id`: such an annotation is the synthgate decision
of that id coming back, whoever Label Studio now says made it; so is one of `export_tasks`' own
file imported as it is (its `id` and `created_at` are the decision's).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from string import Formatter
from typing import Any, Literal
from urllib.parse import quote

from sqlalchemy import Table, select

from synthgate.errors import InputError, counted, lone_surrogate_in, quoted
from synthgate.files import (
    NotAJsonList,
    json_list_items,
    not_json,
    too_long,
    write_atomic,
    writing_atomic,
)
from synthgate.outputs import check_out_file
from synthgate.review.decision import Decision, check_decision
from synthgate.review.items import IDS_PER_QUERY, item_number, labels_of
from synthgate.review.labelstudio import (
    Shapes,
    canonical,
    decision_result,
    labeling_config,
    result_decision,
    sample_regions,
)
from synthgate.review.queue import ReviewQueue
from synthgate.samples import Sample
from synthgate.storage.tables import (
    batches,
    decisions,
    review_batches,
    review_items,
    taken_back,
)
from synthgate.storage.users import Users

DEFAULT_IMAGE_URL = "/data/local-files/?d={uri}"  # Label Studio local storage, rooted at the run
LS_USER = re.compile(r"^labelstudio:(\d+)$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class ExportResult:
    tasks: Path
    config: Path
    count: int
    modality: str


@dataclass
class ImportResult:
    decided: int = 0
    adjudicated: int = 0
    unchanged: int = 0
    conflicts: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_tasks(
    queue: ReviewQueue,
    out: Path,
    *,
    include: Literal["open", "all"] = "open",
    modality: str | None = None,
    shapes: Shapes = "rectangles",
    image_url: str = DEFAULT_IMAGE_URL,
    image_root: Path | None = None,
    annotators: bool = True,
    annotator_emails: dict[str, str] | None = None,
    email_domain: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Write Label Studio tasks and their labeling config; nothing half-written on error.

    `image_url`: the image URL template ({uri}: the image's path, {item_id}); `image_root`:
    the folder {uri} is relative to (default: the run folder the samples' uris are relative
    to). `annotators`, `annotator_emails`, `email_domain`: how decisions' annotators are
    named for Label Studio (see module doc); a name that maps to no email is refused.
    `progress(tasks written, tasks in all)` after each task. The tasks go to the file one at
    a time (the bytes of `json.dumps(tasks, indent=1)`): memory does not grow with them."""
    config_path = out.with_name(out.stem + ".config.xml")
    for path in (out, config_path):  # before any work: never a database, never a run's file
        check_out_file(path)
    check_image_url(image_url)
    if image_root is not None and not image_root.is_dir():
        raise InputError(
            field="image_root",
            value=image_root,
            problem="not a folder; pass the folder Label Studio serves local files from "
            "(its LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT)",
        )
    items = _export_items(queue, include)
    modalities = sorted({m for _, m, _ in items})
    if modality is None and len(modalities) > 1:
        raise InputError(
            "the queue holds image and text items and a Label Studio project has one labeling "
            "config: pass {modality=image} or {modality=text}",
            options=("modality=image", "modality=text"),
        )
    chosen = modality or (modalities[0] if modalities else "image")
    chosen_items = [item for item in items if item[1] == chosen]
    decided = _decisions_by_item(queue, [i for i, _, _ in chosen_items]) if include == "all" else {}
    users = None
    if include == "all" and annotators:
        users = _annotator_users(decided, annotator_emails or {}, email_domain)
    labels = set(_batch_categories(queue) if chosen == "image" else _batch_span_labels(queue))
    tasks = queue.tasks(item_id for item_id, _, _ in chosen_items)
    with closing(tasks), writing_atomic(out) as written:  # closed: its connection goes back
        written.write(b"[")
        for done, ((item_id, _item_modality, kind), task) in enumerate(
            zip(chosen_items, tasks, strict=True), start=1
        ):
            shown = task.sample
            labels.update(o.category for o in shown.objects)
            labels.update(s.label for s in shown.spans)
            annotations = _annotations(decided[item_id], shown, shapes, users) if decided else []
            for annotation in annotations:
                for region in annotation["result"]:
                    value = region.get("value", {})
                    labels.update(value.get("rectanglelabels", []) + value.get("polygonlabels", []))
                    labels.update(value.get("labels", []))
            uri = _image_uri(queue, item_id, shown, image_root)
            text = json.dumps(
                _task(item_id, shown, kind, shapes, image_url, uri, annotations),
                ensure_ascii=False,
                indent=1,
            )
            # one element of the list json.dumps(tasks, indent=1) writes: each line one space
            # in (a JSON string holds no line break of its own)
            written.write(((",\n " if done > 1 else "\n ") + text.replace("\n", "\n ")).encode())
            if progress is not None:
                progress(done, len(chosen_items))
        written.write(b"\n]\n" if chosen_items else b"]\n")
        criteria = queue.task(chosen_items[0][0]).criteria if chosen_items else []
        config = labeling_config(chosen, sorted(labels), criteria, shapes=shapes)
        write_atomic(config_path, config)
    return ExportResult(tasks=out, config=config_path, count=len(chosen_items), modality=chosen)


def _image_uri(queue: ReviewQueue, item_id: int, shown: Sample, image_root: Path | None) -> str:
    """The image's path for the URL: its uri in the run folder, or relative to `image_root`."""
    if shown.spec.modality != "image" or not shown.uri or image_root is None:
        return shown.uri or ""
    where = queue.item_image_path(item_id)
    if not isinstance(where, Path):
        raise InputError(
            field="image_root",
            value=image_root,
            problem=f"item {item_id}'s image is not a local file ({where}); leave {{image_root}} "
            "out and give {image_url} for the server that has it",
            options=("image_root", "image_url"),
        )
    root = image_root.resolve()
    if not where.is_relative_to(root):
        raise InputError(
            field="image_root",
            value=image_root,
            problem=f"does not hold item {item_id}'s image {where}; pass a folder above the run "
            "folder (Label Studio serves only files under its document root)",
        )
    return os.path.relpath(where, root)


def _annotator_users(
    decided: dict[int, list[dict[str, Any]]], emails: dict[str, str], domain: str | None
) -> dict[str, Any]:
    """Each annotator of these decisions (`_decisions_by_item`) as Label Studio's
    `completed_by`: a user id for one that came from Label Studio, else {"email": ...};
    refuses names with no email."""
    names = sorted({row["annotator"] for rows in decided.values() for row in rows})
    users: dict[str, Any] = {}
    missing = []
    for name in names:
        match = LS_USER.match(name)
        email = emails.get(name) or (name if EMAIL.match(name) else None)
        if email is None and domain:
            email = f"{name}@{domain}"
        if match:
            users[name] = int(match.group(1))
        elif email is not None and EMAIL.match(email):
            users[name] = {"email": email}
        else:
            missing.append(name if email is None else f"{name} ({email!r} is not an email)")
    if missing:
        raise InputError(
            f"annotators {', '.join(missing)}: Label Studio imports an annotation only with the "
            "email of a user it knows, and refuses the whole file otherwise; map each to an "
            f"email with {{annotator_emails}} (e.g. {names[0]} to someone@example.org) or all "
            "to one domain with {email_domain} (e.g. example.org), create those users in Label "
            "Studio, or leave annotators out with {annotators=False}",
            options=("annotator_emails", "email_domain", "annotators=False"),
        )
    return users


def _export_items(queue: ReviewQueue, include: str) -> list[tuple[int, str, str]]:
    query = select(review_items.c.id, review_items.c.modality, review_items.c.kind)
    if include == "open":
        # gold stays out of an open export: it would reach every Label Studio annotator at once
        query = query.where(review_items.c.status == "open", review_items.c.kind == "sample")
    with queue.store.engine.connect() as connection:
        return [tuple(r) for r in connection.execute(query.order_by(review_items.c.id))]  # type: ignore[misc]


def _batch_categories(queue: ReviewQueue) -> list[str]:
    with queue.store.engine.connect() as connection:
        configs = connection.execute(select(batches.c.config)).scalars().all()
    return [c for config in configs for c in (config or {}).get("categories", [])]


def _batch_span_labels(queue: ReviewQueue) -> list[str]:
    """Every span label a fix of the queue's text items may use (the review page's and the
    API's `fix_labels`): those each batch keeps, not only the ones its samples hold."""
    with queue.store.engine.connect() as connection:
        kept = connection.execute(select(review_batches.c.labels)).scalars().all()
    return [label for labels in kept for label in labels_of(labels, "text")]


def check_image_url(template: str) -> None:
    """Refuse an image URL template `_task` cannot fill: a field other than {uri} and
    {item_id}, a positional or malformed one, or one with a format spec or conversion (a width
    of 10**11 asks str.format for that many characters)."""
    problem = None
    try:
        fields = [part[1:] for part in Formatter().parse(template) if part[1] is not None]
    except ValueError as error:  # an unclosed or stray brace
        problem = str(error)
    else:
        for name, spec, conversion in fields:
            if name not in ("uri", "item_id"):
                problem = f"{{{name}}} is not a field it fills"
            elif spec or conversion:
                problem = f"{{{name}}} takes no format spec or conversion"
            if problem is not None:
                break
    if problem is not None:
        raise InputError(
            field="image_url",
            value=quoted(template),
            problem=f"{problem}; a template fills {{uri}} (the image's path) and {{item_id}}, "
            "e.g. http://host:8081/{uri}",
        )


def _task(
    item_id: int,
    shown: Sample,
    kind: str,
    shapes: Shapes,
    image_url: str,
    uri: str,
    annotations: list[dict[str, Any]],
) -> dict[str, Any]:
    data: dict[str, Any] = {"item_id": item_id, "sample_id": shown.id}
    if shown.spec.modality == "image":
        data["image"] = image_url.format(uri=quote(uri, safe="/"), item_id=item_id)
    else:
        data["text"] = shown.text
    report = shown.report
    # No rubric score, in the data or as the prediction's score: Label Studio shows both in its
    # task list, and annotators stay blind to the rubric (a gold task stood out at 5.0)
    prediction = {
        "model_version": f"synthgate:{report.rubric}" if report else "synthgate",
        "result": sample_regions(shown, shapes=shapes),
    }
    task: dict[str, Any] = {"id": item_id, "data": data, "predictions": [prediction]}
    if annotations:
        task["annotations"] = annotations
    return task


def _annotations(
    rows: list[dict[str, Any]],
    shown: Sample,
    shapes: Shapes,
    users: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """An item's decision rows as annotations; `users`: annotator -> completed_by (None: left
    out). The decision id goes out as the annotation id, which Label Studio keeps as
    `import_id`, so `import_annotations` knows the decision when it comes back."""
    out = []
    for row in rows:
        annotation: dict[str, Any] = {"id": row["id"]}
        if users is not None:
            annotation["completed_by"] = users[row["annotator"]]
        annotation.update(
            ground_truth=row["role"] == "adjudicator",
            was_cancelled=False,
            created_at=_created_at(row),
            result=decision_result(_decision_of(row), shown, shapes=shapes),
        )
        out.append(annotation)
    return out


def _created_at(row: dict[str, Any]) -> str:
    """A decision row's time as its annotation's `created_at`."""
    return datetime.fromtimestamp(row["decided_at"], UTC).isoformat()


def _decisions_by_item(
    queue: ReviewQueue, item_ids: list[int], table: Table = decisions
) -> dict[int, list[dict[str, Any]]]:
    """The decision rows of these items (those `review reopen` took back, with `taken_back`),
    each item's in the order they were made: a query per 500 items on the table's item index,
    not one per item (an export of 100k items made 200k), nor a pass over every decision of the
    database for a few items."""
    decided: dict[int, list[dict[str, Any]]] = {item_id: [] for item_id in item_ids}
    wanted = sorted(i for i in decided if item_number(i) is not None)  # others name no item
    with queue.store.engine.connect() as connection:
        for start in range(0, len(wanted), IDS_PER_QUERY):
            chunk = wanted[start : start + IDS_PER_QUERY]
            query = (
                select(table)
                .where(table.c.item_id.in_(chunk))
                .order_by(table.c.id)  # each item's rows in decision order
            )
            for row in connection.execute(query):
                decided[row.item_id].append(dict(row._mapping))
    return decided


def _taken_back_by_item(queue: ReviewQueue, item_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The decisions `review reopen` took back from these items, each as it was: its `id` the
    decision's (the annotation id an export gave it)."""
    rows = _decisions_by_item(queue, item_ids, taken_back)
    return {
        item_id: [{**row, "id": row["decision_id"]} for row in item_rows]
        for item_id, item_rows in rows.items()
    }


def _decision_rows(queue: ReviewQueue, item_id: int) -> list[dict[str, Any]]:
    with queue.store.engine.connect() as connection:
        rows = connection.execute(
            select(decisions).where(decisions.c.item_id == item_id).order_by(decisions.c.id)
        )
        return [dict(r._mapping) for r in rows]


def _decision_of(row: dict[str, Any]) -> Decision:
    return Decision(
        verdict=row["verdict"],
        levels=row["levels"] or {},
        comment=row["comment"] or "",
        objects=row["objects"],
        spans=row["spans"],
    )


def _annotator(completed_by: Any, names: dict[str, str]) -> str | None:
    """Label Studio exports the annotator as a user id or, with details, a dict; an email
    `names` knows (email -> annotator) is that annotator again."""
    if isinstance(completed_by, dict):
        name = completed_by.get("email") or completed_by.get("username")
        if name:
            return names.get(str(name), str(name))
        completed_by = completed_by.get("id")
    if isinstance(completed_by, int):
        return f"labelstudio:{completed_by}"
    return None


def import_annotations(
    queue: ReviewQueue,
    path: Path,
    *,
    annotator_emails: dict[str, str] | None = None,
    email_domain: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Read a Label Studio JSON export (a list of tasks) back as decisions.

    `annotator_emails` (annotator -> email) and `email_domain` are the export's: an annotation
    by such an email is that annotator's (NAME@DOMAIN is NAME). `progress(tasks read back,
    tasks in all)` after each task, once every task is checked."""
    names = {email: name for name, email in (annotator_emails or {}).items()}
    checked = _read_tasks(path, names, email_domain)
    _check_same_samples(queue, path, checked)
    result = ImportResult()
    # Every task's decisions read up front (not a query per annotation); an item's are read
    # again after this import records one on it
    item_ids = [i for i, _, _, _ in checked if i is not None]
    decided = _decisions_by_item(queue, item_ids)
    # read after the decisions: one a reopen takes back meanwhile is in one or the other
    withdrawn = _taken_back_by_item(queue, item_ids)
    team = Users(queue.store.engine)
    admins = frozenset(user.name for user in team.list() if user.role == "admin")
    removed = team.removed()
    # A task with nothing to record needs only to know its item is there (most tasks of a
    # project under way have no annotation yet): read up front, no sample parsed
    refused = queue.refused(
        i for i, _, annotations, _ in checked if i is not None and not annotations
    )
    for position, (item_id, _, task_annotations, where) in enumerate(checked):
        if item_id is not None and not task_annotations:
            if item_id in refused:
                result.skipped.append(f"{where}: {refused[item_id]}")
        else:
            _import_task(
                queue,
                item_id,
                task_annotations,
                where,
                result,
                decided,
                withdrawn,
                admins,
                removed,
            )
        if progress is not None:
            progress(position + 1, len(checked))
    return result


CheckedTask = tuple[int | None, str | None, list[tuple[dict[str, Any], str | None]], str]


def _read_tasks(path: Path, names: dict[str, str], email_domain: str | None) -> list[CheckedTask]:
    """Every task of the export, checked (`_checked_task`): its item id, sample id and
    annotations, and the task as messages name it (`_task_named`).

    Tasks are parsed one at a time (`json_list_items`): what stays in memory is the file's text
    and each task's annotations, not the whole parse, which is 4-5 times the file (a 149 MB
    export of 100k tasks). Every task is checked before any decision is recorded, so a file with
    a bad task changes nothing; a fault in the JSON anywhere is reported before a bad task, as
    when the whole file was parsed first. A UTF-8 byte-order mark at the start (Windows tools
    write one) is no part of the JSON and is skipped (utf-8-sig).
    """
    if path.is_dir():
        raise InputError(f"{path}: is a folder; pass the Label Studio JSON export file itself")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; pass a Label Studio JSON export") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read it ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise InputError(
            f"{path}: not JSON ({error}); export the project as JSON from Label Studio"
        ) from None
    except ValueError as error:  # a NUL byte or a lone surrogate: no file has such a name
        raise InputError(f"{path}: not a usable path ({error})") from None
    checked = []
    refused: InputError | None = None
    for position, task in enumerate(_export_tasks(path, text)):
        if refused is None:
            try:
                where = f"{path}: {_task_named(task, position)}"
                checked.append((*_checked_task(task, where, names, email_domain), where))
            except InputError as error:
                refused = error  # raised once the rest of the JSON is known to be sound
    if refused is not None:
        raise refused
    return checked


def _task_named(task: Any, position: int) -> str:
    """A task as Label Studio shows it: by its `id` (Label Studio's own, not the one it was
    exported with), else by its place in the file; never its place counting from 0, which a
    lead took for an id and opened another item under."""
    task_id = task.get("id") if isinstance(task, dict) else None
    if type(task_id) is int:  # not a bool
        return f"task {task_id}"
    return f"the {_ordinal(position + 1)} task of the file"


def _ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th ... 11th, 12th, 13th ... 21st."""
    suffix = "th" if number % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(number % 10)
    return f"{number}{suffix or 'th'}"


def _export_tasks(path: Path, text: str) -> Iterator[Any]:
    """The tasks of an export's text, one at a time; a text that is no JSON list of tasks is an
    InputError naming the file."""
    try:
        yield from json_list_items(text)
    except json.JSONDecodeError as error:
        raise InputError(
            f"{path}: {not_json(error)}; export the project as JSON from Label Studio"
        ) from None
    except RecursionError:  # json's decoder recurses per nesting level
        raise InputError(f"{path}: JSON nested too deep to be a Label Studio export") from None
    except ValueError as error:  # an integer of more digits than Python reads
        raise InputError(f"{path}: not JSON ({too_long(error)})") from None
    except NotAJsonList as error:
        raise InputError(
            f"{path}: a Label Studio export is a JSON list of tasks (got a JSON "
            f"{error.kind}); export the project as JSON from Label Studio"
        ) from None


def _import_task(
    queue: ReviewQueue,
    item_id: int | None,
    task_annotations: list[tuple[dict[str, Any], str | None]],
    where: str,
    result: ImportResult,
    decided: dict[int, list[dict[str, Any]]],
    withdrawn: dict[int, list[dict[str, Any]]],
    admins: frozenset[str],
    removed: frozenset[str],
) -> None:
    """One checked task's annotations recorded as its item's decisions (or the task skipped)."""
    if item_id is None:
        result.skipped.append(f"{where}: no data.item_id (not a task synthgate exported)")
        return
    try:
        shown = queue.task(item_id).sample  # an id no item can have is an InputError too
    except InputError as error:
        result.skipped.append(f"{where}: {error}")
        return
    where_item = f"{where} (item {item_id})"
    for annotation, who in task_annotations:
        _import_one(
            queue,
            item_id,
            shown,
            annotation,
            who,
            where_item,
            result,
            decided,
            withdrawn[item_id],
            admins,
            removed,
        )


def _checked_task(
    task: Any, where: str, names: dict[str, str], email_domain: str | None
) -> tuple[int | None, str | None, list[tuple[dict[str, Any], str | None]]]:
    """A task's item id (None: not a task synthgate exported, skipped unread), the sample id
    its data carries (None: a hand-made task without one) and its annotations, each with its
    annotator (`_annotator`, NAME@DOMAIN as NAME). An InputError when the annotations are no
    list of objects, or name an annotator no database can hold."""
    item_id = _task_item_id(task)
    if item_id is None:
        return None, None, []
    sample_id = task["data"].get("sample_id")
    sample_id = sample_id if isinstance(sample_id, str) else None
    where = f"{where} (item {item_id})"
    task_annotations = task.get("annotations")
    if task_annotations is None:
        return item_id, sample_id, []
    if not isinstance(task_annotations, list):
        raise InputError(
            f"{where}: annotations must be a list of annotations (got {quoted(task_annotations)}); "
            "export the project as JSON from Label Studio"
        )
    checked = []
    for index, annotation in enumerate(task_annotations):
        if not isinstance(annotation, dict):
            raise InputError(
                f"{where}: annotations[{index}] must be an annotation object (got "
                f"{quoted(annotation)}); export the project as JSON from Label Studio"
            )
        who = _annotator(annotation.get("completed_by"), names)
        if who is not None:
            _check_name(who, f"{where}: annotations[{index}].completed_by")
            if email_domain and who.endswith(f"@{email_domain}"):
                who = who.removesuffix(f"@{email_domain}")
        checked.append((annotation, who))
    return item_id, sample_id, checked


def _check_same_samples(queue: ReviewQueue, path: Path, checked: list[CheckedTask]) -> None:
    """Refuse an export of another run: a task whose data names a sample its item of this
    queue does not hold (an item number of another run's queue), before anything is recorded.
    The items' samples are read a few hundred to a query; a task without a sample id (made by
    hand), or whose item is not here, is left to the import."""
    carried = {i: s for i, s, _, _ in checked if i is not None and s is not None}
    wanted = sorted(n for n in map(item_number, carried) if n is not None)
    held: dict[int, str] = {}
    with queue.store.engine.connect() as connection:
        for start in range(0, len(wanted), IDS_PER_QUERY):
            query = select(review_items.c.id, review_items.c.sample_id).where(
                review_items.c.id.in_(wanted[start : start + IDS_PER_QUERY])
            )
            held.update((row.id, row.sample_id) for row in connection.execute(query))
    foreign = [
        (where, item_id, sample_id, held[item_id])
        for item_id, sample_id, _, where in checked
        if item_id in held and sample_id is not None and sample_id != held[item_id]
    ]
    if foreign:
        where, item_id, sample_id, own = foreign[0]
        others = len(foreign) - 1
        more = f" (and {counted(others, 'more task')})" if others else ""
        raise InputError(
            f"{where} (item {item_id}) carries sample {quoted(sample_id)}, but item {item_id} "
            f"of this run holds sample {quoted(own)}{more}: the file was exported from another "
            "run; nothing was recorded. Import it into the run it was exported from"
        )


def _check_name(who: str, where: str) -> None:
    """An annotator's name must be one a database can hold: valid JSON may still carry a lone
    surrogate (no character: no UTF-8 text can keep it) or a NUL (PostgreSQL's text takes none)."""
    if lone_surrogate_in(who) is not None:
        raise InputError(
            f"{where} names the annotator {quoted(who)}, which holds a lone surrogate (an "
            "unpaired \\ud800-\\udfff escape) and so is no name; fix or drop the escape"
        )
    if not who.isprintable():
        raise InputError(
            f"{where} names the annotator {quoted(who)}, which holds a control character (NUL, "
            "a tab, a line break ...) no name has; fix the name in the export"
        )


def _task_item_id(task: Any) -> int | None:
    """The synthgate item id a Label Studio task carries (`data.item_id`: an int, not a bool),
    if any."""
    data = task.get("data") if isinstance(task, dict) else None
    item_id = data.get("item_id") if isinstance(data, dict) else None
    return item_id if type(item_id) is int else None


def _import_one(
    queue: ReviewQueue,
    item_id: int,
    shown: Sample,
    annotation: dict[str, Any],
    who: str | None,
    where: str,
    result: ImportResult,
    decided: dict[int, list[dict[str, Any]]],
    withdrawn: list[dict[str, Any]],
    admins: frozenset[str],
    removed: frozenset[str],
) -> None:
    """One annotation recorded as a decision, compared with the one it came from, or skipped.
    `withdrawn`: the item's decisions `review reopen` took back; one coming back (the same
    decision by its id, or made before it was taken back: `_taken_back_as`) is skipped, as
    the reopen found it careless; new work of the same person is recorded. A new annotation of
    one of `admins` is skipped unless it adjudicates (ground truth), as the API refuses an
    admin an annotator's work: it would count as one of the item's k and in the agreement. So is
    a new annotation of one of `removed`, in either role: the API takes no work of theirs, and
    the team no longer counts them; one of a name never a user counts as anyone's."""
    if annotation.get("was_cancelled") or annotation.get("skipped"):
        return
    imported_from = _exported_decision(decided[item_id], annotation)
    if imported_from is not None:
        _compare_returned(imported_from, annotation, shown, where, result)
        return
    gone = _exported_decision(withdrawn, annotation)
    if gone is not None:
        result.skipped.append(f"{where}: {_taken_back_note(gone)}")
        return
    if who is None:
        result.skipped.append(f"{where}: annotation without completed_by")
        return
    where = f"{where}, annotation by {who}"
    role = "adjudicator" if annotation.get("ground_truth") else "annotator"
    try:
        decision = result_decision(annotation.get("result") or [], shown, where=where)
    except InputError as error:  # names `where` itself
        result.skipped.append(str(error))
        return
    try:
        labels = queue.fix_labels(item_id) if decision.verdict == "fix" else []
        check_decision(item_id, shown, decision, labels=labels)
    except InputError as error:  # says "item N: ...", not whose annotation in which task
        result.skipped.append(f"{where}: {error}")
        return
    raw = annotation.get("result") or []
    gone = _taken_back_as(withdrawn, annotation, who, role, raw, decision, shown)
    if gone is not None:
        result.skipped.append(f"{where}: {_taken_back_note(gone)}")
        return
    recorded = _recorded(decided[item_id], who, role)
    if recorded is None and role == "annotator" and who in admins:
        result.skipped.append(
            f"{where}: {who} is an admin, whose annotation would count as one of the item's k "
            "annotators' and in the agreement; credit it to an annotator account (synthgate "
            "users add NAME --role annotator, and its email in Label Studio), or mark it ground "
            "truth to adjudicate the item once its annotators split"
        )
        return
    if recorded is None and who in removed:
        back = "annotator" if role == "annotator" else "admin"
        result.skipped.append(
            f"{where}: {who} was removed (synthgate users remove), whose work no longer counts; "
            f"to count it, add them back (synthgate users add {who} --role {back}) and import "
            "again"
        )
        return
    if recorded is None:
        try:
            if role == "adjudicator":
                queue.adjudicate(item_id, who, decision)
                result.adjudicated += 1
            else:
                times = _time_on_task(annotation)
                queue.decide(item_id, who, decision, assign=True, times=times)
                result.decided += 1
        except InputError as error:
            # recorded since the import read the item's decisions (by the API, say): compared
            # with that one below, as if it had been there from the start
            decided[item_id] = _decision_rows(queue, item_id)
            recorded = _recorded(decided[item_id], who, role)
            if recorded is None:
                result.skipped.append(f"{where}: {error}")
                return
        else:
            decided[item_id] = _decision_rows(queue, item_id)
            return
    if _same_decision(recorded, raw, decision, shown):
        result.unchanged += 1
    else:
        result.conflicts.append(
            f"{where}: differs from the decision already recorded; kept that one"
        )


def _time_on_task(annotation: dict[str, Any]) -> tuple[float, float] | None:
    """When the annotator started and submitted an annotation, by Label Studio's clock: its
    `created_at` less its `lead_time` (the seconds spent on it), and its `created_at`. None
    when it does not say (made through Label Studio's API, or in no Label Studio at all)."""
    submitted, lead = _timestamp(annotation.get("created_at")), annotation.get("lead_time")
    if submitted is None or not isinstance(lead, int | float) or isinstance(lead, bool):
        return None
    try:
        seconds = float(lead)  # an int of 400 digits is no float
    except OverflowError:
        return None
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    return submitted - seconds, submitted


def _timestamp(text: Any) -> float | None:
    """An annotation's ISO time (`created_at`, `updated_at`; UTC unless it says otherwise) as a
    timestamp, None when it is no such time."""
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text)
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    except (OverflowError, ValueError):  # past year 9999 once in UTC, or no date at all
        return None


def _taken_back_as(
    withdrawn: list[dict[str, Any]],
    annotation: dict[str, Any],
    who: str,
    role: str,
    regions: list[dict[str, Any]],
    decision: Decision,
    shown: Sample,
) -> dict[str, Any] | None:
    """The decision of `who` in `role` `review reopen` took back from the item that an
    annotation made in Label Studio is: one last saved (`updated_at`, else `created_at`) before
    it was taken back, work of the time the reopen found careless (a file exported before
    brings it back); or, when the annotation gives no time, one saying the same. Work saved
    after the reopen is new, and counts as anyone's."""
    made = _timestamp(annotation.get("updated_at"))
    if made is None:
        made = _timestamp(annotation.get("created_at"))
    for row in withdrawn:
        if (row["annotator"], row["role"]) != (who, role):
            continue
        if made is None and _same_decision(row, regions, decision, shown):
            return row
        if made is not None and made <= row["taken_back_at"]:
            return row
    return None


def _taken_back_note(row: dict[str, Any]) -> str:
    why = f": {row['reason']}" if row["reason"] else ""
    return (
        f"{row['annotator']}'s decision on item {row['item_id']} was taken back by "
        f"{row['taken_back_by']} (review reopen{why}); not recorded again"
    )


def _recorded(rows: list[dict[str, Any]], who: str, role: str) -> dict[str, Any] | None:
    """The decision among an item's `rows` that `who` made in `role`, if any."""
    return next((r for r in rows if (r["annotator"], r["role"]) == (who, role)), None)


def _exported_decision(
    rows: list[dict[str, Any]], annotation: dict[str, Any]
) -> dict[str, Any] | None:
    """The decision among an item's `rows` an annotation went out as, or None for one made in
    Label Studio. `export_tasks` gives an annotation its decision's id, which Label Studio keeps
    as `import_id`; its own file, imported as it is, has it as `id`, with the decision's time as
    `created_at`. Label Studio's own ids may be any decision's: an `id` is that decision only
    with that time. Known by id, whoever the file names: imported without the export's
    email_domain, ann's decision came back as ann@example.org's, and an open or gold item
    took it a second time."""
    import_id = annotation.get("import_id")
    if type(import_id) is int:  # not a bool
        return next((r for r in rows if r["id"] == import_id), None)
    own_id = annotation.get("id")
    if type(own_id) is not int:
        return None
    row = next((r for r in rows if r["id"] == own_id), None)
    if row is None or annotation.get("created_at") != _created_at(row):
        return None
    return row


def _compare_returned(
    row: dict[str, Any],
    annotation: dict[str, Any],
    shown: Sample,
    where: str,
    result: ImportResult,
) -> None:
    """An exported decision came back: unchanged, or edited in Label Studio (a conflict: the
    recorded decision is kept)."""
    where = f"{where}, decision {row['id']} by {row['annotator']}"
    try:
        decision = result_decision(annotation.get("result") or [], shown, where=where)
    except InputError as error:
        result.skipped.append(str(error))
        return
    if _same_decision(row, annotation.get("result") or [], decision, shown):
        result.unchanged += 1
    else:
        result.conflicts.append(
            f"{where}: edited in Label Studio or in the file after it was exported; kept the "
            "recorded one"
        )


def _same_decision(
    row: dict[str, Any], regions: list[dict[str, Any]], decision: Decision, shown: Sample
) -> bool:
    """Whether an annotation result says what a recorded decision says."""
    shapes: Shapes = (
        "polygons" if any(r.get("type") == "polygonlabels" for r in regions) else "rectangles"
    )
    recorded = decision_result(_decision_of(row), shown, shapes=shapes)
    if canonical(recorded) == canonical(regions):
        return True
    return canonical(decision_result(_decision_of(row), shown)) == canonical(
        decision_result(decision, shown)
    )
