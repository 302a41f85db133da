"""Label Studio export and import against a ReviewQueue (the formats are in labelstudio.py).

`export_tasks(queue, out)` writes the open items as Label Studio tasks whose `predictions` are
the labels under review, and the labeling config next to them (`<out stem>.config.xml`); with
`include="all"` every item goes out with its decisions as annotations (adjudicators' marked
`ground_truth`). `import_annotations(queue, path)` reads a Label Studio JSON export back as
decisions: a decision already recorded and equal is left alone, so importing an export of the
same decisions changes nothing; one that differs is reported as a conflict, never overwritten.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select

from synthgate.errors import InputError
from synthgate.files import write_atomic
from synthgate.review.decision import Decision, check_decision
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
from synthgate.storage.folders import check_out_file
from synthgate.storage.tables import batches, decisions, review_items

DEFAULT_IMAGE_URL = "/data/local-files/?d={uri}"  # Label Studio local storage, rooted at the run
LS_USER = re.compile(r"^labelstudio:(\d+)$")


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
) -> ExportResult:
    """Write Label Studio tasks and their labeling config; nothing half-written on error."""
    config_path = out.with_name(out.stem + ".config.xml")
    for path in (out, config_path):  # before any work: never a database, never a run's file
        check_out_file(path)
    items = _export_items(queue, include)
    modalities = sorted({m for _, m, _ in items})
    if modality is None and len(modalities) > 1:
        raise InputError(
            "the queue holds image and text items and a Label Studio project has one labeling "
            "config: pass --modality image or --modality text"
        )
    chosen = modality or (modalities[0] if modalities else "image")
    tasks, labels = [], set(_batch_categories(queue)) if chosen == "image" else set()
    for item_id, item_modality, kind in items:
        if item_modality != chosen:
            continue
        shown = queue.task(item_id).sample
        labels.update(o.category for o in shown.objects)
        labels.update(s.label for s in shown.spans)
        annotations = _annotations(queue, item_id, shown, shapes) if include == "all" else []
        for annotation in annotations:
            for region in annotation["result"]:
                value = region.get("value", {})
                labels.update(value.get("rectanglelabels", []) + value.get("polygonlabels", []))
                labels.update(value.get("labels", []))
        tasks.append(_task(item_id, shown, kind, shapes, image_url, annotations))
    criteria = queue.task(items[0][0]).criteria if items else []
    config = labeling_config(chosen, sorted(labels), criteria, shapes=shapes)
    write_atomic(out, json.dumps(tasks, ensure_ascii=False, indent=1) + "\n")
    write_atomic(config_path, config)
    return ExportResult(tasks=out, config=config_path, count=len(tasks), modality=chosen)


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


def _task(
    item_id: int,
    shown: Sample,
    kind: str,
    shapes: Shapes,
    image_url: str,
    annotations: list[dict[str, Any]],
) -> dict[str, Any]:
    data: dict[str, Any] = {"item_id": item_id, "sample_id": shown.id}
    if shown.spec.modality == "image":
        data["image"] = image_url.format(uri=shown.uri, item_id=item_id)
    else:
        data["text"] = shown.text
    report = shown.report
    if report is not None:
        data["rubric_score"] = report.score
    prediction = {
        "model_version": f"synthgate:{report.rubric}" if report else "synthgate",
        # Label Studio wants a score in [0, 1]; rubric scores run from level 1 to level 5
        "score": min(1.0, max(0.0, (report.score - 1.0) / 4.0)) if report else 0.0,
        "result": sample_regions(shown, shapes=shapes),
    }
    task: dict[str, Any] = {"id": item_id, "data": data, "predictions": [prediction]}
    if annotations:
        task["annotations"] = annotations
    return task


def _annotations(
    queue: ReviewQueue, item_id: int, shown: Sample, shapes: Shapes
) -> list[dict[str, Any]]:
    out = []
    for row in _decision_rows(queue, item_id):
        out.append(
            {
                "id": row["id"],
                "completed_by": _ls_user(row["annotator"]),
                "ground_truth": row["role"] == "adjudicator",
                "was_cancelled": False,
                "created_at": datetime.fromtimestamp(row["decided_at"], UTC).isoformat(),
                "result": decision_result(_decision_of(row), shown, shapes=shapes),
            }
        )
    return out


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


def _ls_user(annotator: str) -> Any:
    match = LS_USER.match(annotator)
    return int(match.group(1)) if match else {"email": annotator}


def _annotator(completed_by: Any) -> str | None:
    """Label Studio exports the annotator as a user id or, with details, a dict."""
    if isinstance(completed_by, dict):
        name = completed_by.get("email") or completed_by.get("username")
        if name:
            return str(name)
        completed_by = completed_by.get("id")
    if isinstance(completed_by, int):
        return f"labelstudio:{completed_by}"
    return None


def import_annotations(queue: ReviewQueue, path: Path) -> ImportResult:
    """Read a Label Studio JSON export (a list of tasks) back as decisions."""
    if path.is_dir():
        raise InputError(f"{path}: is a folder; pass the Label Studio JSON export file itself")
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; pass a Label Studio JSON export") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read it ({error.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(
            f"{path}: not JSON ({error}); export the project as JSON from Label Studio"
        ) from None
    if not isinstance(tasks, list):
        raise InputError(
            f"{path}: a Label Studio export is a JSON list of tasks (got a JSON "
            f"{type(tasks).__name__}); export the project as JSON from Label Studio"
        )
    result = ImportResult()
    for position, task in enumerate(tasks):
        where = f"{path}: task {position}"
        data = task.get("data") if isinstance(task, dict) else None
        item_id = data.get("item_id") if isinstance(data, dict) else None
        if not isinstance(item_id, int):
            result.skipped.append(f"{where}: no data.item_id (not a task synthgate exported)")
            continue
        try:
            shown = queue.task(item_id).sample
        except InputError as error:
            result.skipped.append(f"{where}: {error}")
            continue
        for annotation in task.get("annotations") or []:
            _import_one(queue, item_id, shown, annotation, f"{where} (item {item_id})", result)
    return result


def _import_one(
    queue: ReviewQueue,
    item_id: int,
    shown: Sample,
    annotation: dict[str, Any],
    where: str,
    result: ImportResult,
) -> None:
    if annotation.get("was_cancelled") or annotation.get("skipped"):
        return
    who = _annotator(annotation.get("completed_by"))
    if who is None:
        result.skipped.append(f"{where}: annotation without completed_by")
        return
    where = f"{where}, annotation by {who}"
    role = "adjudicator" if annotation.get("ground_truth") else "annotator"
    try:
        decision = result_decision(annotation.get("result") or [], shown, where=where)
        check_decision(item_id, shown, decision)
    except InputError as error:
        result.skipped.append(str(error))
        return
    existing = [
        r for r in _decision_rows(queue, item_id) if (r["annotator"], r["role"]) == (who, role)
    ]
    if existing:
        regions = annotation.get("result") or []
        shapes: Shapes = (
            "polygons" if any(r.get("type") == "polygonlabels" for r in regions) else "rectangles"
        )
        recorded = decision_result(_decision_of(existing[0]), shown, shapes=shapes)
        same_result = canonical(recorded) == canonical(regions)
        same_meaning = canonical(decision_result(_decision_of(existing[0]), shown)) == canonical(
            decision_result(decision, shown)
        )
        if same_result or same_meaning:
            result.unchanged += 1
        else:
            result.conflicts.append(
                f"{where}: differs from the decision already recorded; kept that one"
            )
        return
    try:
        if role == "adjudicator":
            queue.adjudicate(item_id, who, decision)
            result.adjudicated += 1
        else:
            queue.decide(item_id, who, decision, assign=True)
            result.decided += 1
    except InputError as error:
        result.skipped.append(f"{where}: {error}")
