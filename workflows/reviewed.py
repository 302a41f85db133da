"""A run's COCO file and text rows as its human review left them, for `merge` and `export`.

A run writes coco.json (every sample, its route in `synthgate.status`), accepted.coco.json and
text.jsonl (each row's route in `status`) when it finishes; the samples routed to review are
decided later, by people, in the run's database (synthgate.db). `merge` and `export` read a run
through here, so that a sample people accepted is merged and exported, one they rejected is
not, and one they fixed carries their labels. A run nobody has reviewed reads exactly as its
files, and so does a sample until people finish its review: an audited sample the rubric
accepted stays accepted while its review is open or awaits adjudication (`undecided` says which).

    verdicts = final_verdicts(run / "synthgate.db")          # {sample id: accept|reject|fix}
    coco = reviewed_coco(run, read_coco_streaming(run / "coco.json"), verdicts)
    accepted = accepted_only(coco)                           # what accepted.coco.json holds
    left_out = not_accepted(coco)                            # {status: sample ids} it leaves
    open_items = undecided(run / "synthgate.db", ids)        # {open|adjudication: sample ids}
    rows = reviewed_rows(run, read_jsonl(run / "text.jsonl"), verdicts)
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

from synthgate.errors import InputError
from synthgate.files import reading_sqlite
from synthgate.formats.coco import sample_to_coco_annotations
from synthgate.formats.jsonl import sample_to_jsonl_row
from synthgate.review.adjudication import STATUS_OF


def final_verdicts(database: Path) -> dict[str, str]:
    """Sample id -> the final verdict of its review item, for the samples people decided (an
    audit of an accepted sample too); empty for a database without review tables or none.

    Read with the standard library (`reading_sqlite`): a run folder that was never reviewed
    costs one look at its database, and nothing is created or left beside it."""
    rows = _review_rows(
        database,
        "SELECT sample_id, final_verdict FROM review_items "
        "WHERE kind = 'sample' AND status = 'final' AND final_verdict IS NOT NULL",
    )
    return {str(sample_id): str(verdict) for sample_id, verdict in rows}


def _review_rows(database: Path, query: str) -> list[Any]:
    """The rows of `query` on the run's database; none for a database without review tables
    or none at all; an InputError naming the file for one that cannot be read."""
    if not database.is_file():
        return []
    try:
        with contextlib.closing(reading_sqlite(database)) as connection:
            return connection.execute(query).fetchall()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return []
        raise InputError(f"{database}: cannot read its review results ({error})") from None
    except sqlite3.DatabaseError as error:
        raise InputError(f"{database}: not a readable SQLite database ({error})") from None


def undecided(database: Path, sample_ids: list[str]) -> dict[str, list[str]]:
    """Those of `sample_ids` whose review item people have not finished, by the item's status
    (open; adjudication: its annotators split), in the order given: an audited sample the
    rubric accepted is merged and exported as accepted until then. Empty for a database without
    review tables or none."""
    if not sample_ids:
        return {}
    rows = _review_rows(
        database,
        "SELECT sample_id, status FROM review_items WHERE kind = 'sample' AND status != 'final'",
    )
    status_of = {str(sample_id): str(status) for sample_id, status in rows}
    found: dict[str, list[str]] = {}
    for sample_id in sample_ids:
        if sample_id in status_of:
            found.setdefault(status_of[sample_id], []).append(sample_id)
    return found


def reviewed_coco(run: Path, coco: dict[str, Any], verdicts: dict[str, str]) -> dict[str, Any]:
    """`coco` (the run's coco.json) with each decided sample's status set by its verdict
    (`synthgate.review_verdict` says which) and a fixed sample's annotations replaced by the
    labels people gave (read from the run's database, where the fix was recorded)."""
    if not verdicts:
        return coco
    fixed_ids = [sample_id for sample_id, verdict in verdicts.items() if verdict == "fix"]
    fixed = _samples(run / "synthgate.db", fixed_ids) if fixed_ids else {}
    categories = list(coco["categories"])
    category_ids = {c["name"]: c["id"] for c in categories}
    next_id = max((a["id"] for a in coco["annotations"]), default=0) + 1
    images, replaced, added = [], set(), []
    for image in coco["images"]:
        block = image.get("synthgate") or {}
        verdict = verdicts.get(str(block.get("sample_id")))
        if verdict is None:
            images.append(image)
            continue
        status = STATUS_OF[verdict]
        images.append(
            {**image, "synthgate": {**block, "status": status, "review_verdict": verdict}}
        )
        sample = fixed.get(str(block["sample_id"]))
        if sample is not None:
            for name in sorted({o.category for o in sample.objects} - set(category_ids)):
                # a class of the batch no generated object had (the run lists those it saw)
                category_ids[name] = max(category_ids.values(), default=0) + 1
                categories.append(
                    {"id": category_ids[name], "name": name, "supercategory": "synthetic"}
                )
            replaced.add(image["id"])
            labels = sample_to_coco_annotations(sample, image["id"], category_ids, next_id)
            next_id += len(labels)
            added.extend(labels)
    kept = [a for a in coco["annotations"] if a["image_id"] not in replaced]
    return {**coco, "categories": categories, "images": images, "annotations": kept + added}


def reviewed_rows(
    run: Path, rows: list[dict[str, Any]], verdicts: dict[str, str]
) -> list[dict[str, Any]]:
    """`rows` (the run's text.jsonl) with each decided sample's `status` set by its verdict
    (`review_verdict` says which) and a fixed sample's spans and label those people gave (read
    from the run's database, where the fix was recorded)."""
    if not verdicts:
        return rows
    fixed_ids = [sample_id for sample_id, verdict in verdicts.items() if verdict == "fix"]
    fixed = _samples(run / "synthgate.db", fixed_ids) if fixed_ids else {}
    reviewed = []
    for row in rows:
        verdict = verdicts.get(str(row.get("id")))
        if verdict is None:
            reviewed.append(row)
            continue
        row = {**row, "status": STATUS_OF[verdict], "review_verdict": verdict}
        sample = fixed.get(str(row["id"]))
        if sample is not None:
            labels = sample_to_jsonl_row(sample)
            row.update(spans=labels["spans"], label=labels["label"])
        reviewed.append(row)
    return reviewed


def accepted_only(coco: dict[str, Any]) -> dict[str, Any]:
    """The accepted images of a run's COCO dict and their annotations (accepted.coco.json's
    content, for a run read through `reviewed_coco`)."""
    images = [i for i in coco["images"] if (i.get("synthgate") or {}).get("status") == "accepted"]
    ids = {image["id"] for image in images}
    annotations = [a for a in coco["annotations"] if a["image_id"] in ids]
    return {**coco, "images": images, "annotations": annotations}


def not_accepted(coco: dict[str, Any]) -> dict[str, list[str]]:
    """The sample ids of a run's COCO dict (read through `reviewed_coco`) that are not
    accepted, by status (rejected, review), in the file's order: what `accepted_only` leaves
    out."""
    left_out: dict[str, list[str]] = {}
    for image in coco["images"]:
        block = image.get("synthgate") or {}
        if block.get("status") != "accepted":
            left_out.setdefault(str(block.get("status")), []).append(str(block.get("sample_id")))
    return left_out


def _samples(database: Path, sample_ids: list[str]) -> dict[str, Any]:
    from synthgate.storage.store import Store, sqlite_url  # SQLAlchemy: only for fixed samples

    store = Store(sqlite_url(database))
    try:
        return store.get_samples(sample_ids)
    finally:
        store.close()
