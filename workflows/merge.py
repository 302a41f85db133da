"""Accepted synthetic samples merged into a copy of a real dataset, with their provenance.

`merge_coco(real, synthetic, …)` returns a new COCO mapping: every real entry kept as it was
(the same values, in the same order), synthetic categories matched to real ones by name, and
accepted synthetic images and annotations appended with fresh ids, each image marked
`synthgate: {synthetic: true, sample_id, batch_id, generator, seed, score, …}`. `merge_jsonl`
does the same for text rows (real lines are copied byte for byte). Collisions (a sample merged
twice, a file name or row id already taken, a class the real file lacks) are refused with an
`InputError` that names them. `merge` reads a finished run folder and writes the merged
file atomically, synthetic file names relative to the real images folder (one `--images` finds
every image). Samples not accepted (waiting for review, rejected) are never merged; images
that do not come from a run (no `synthgate` status and sample id) are refused.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthgate.errors import InputError
from synthgate.files import dumps, write_atomic
from synthgate.formats.coco import read_coco
from synthgate.formats.coco_checks import check_coco
from synthgate.formats.jsonl import read_jsonl

MAX_NAMED = 10


@dataclass
class MergeResult:
    """What a merge added and what it left out (not accepted), by sample id."""

    added_images: int = 0
    added_annotations: int = 0
    added_rows: int = 0
    left_out: dict[str, list[str]] = field(default_factory=dict)  # status -> sample ids
    new_categories: list[str] = field(default_factory=list)
    skipped_input: list[str] = field(default_factory=list)  # bad real entries left out


def _named(values: list[Any]) -> str:
    shown = ", ".join(repr(v) for v in values[:MAX_NAMED])
    return shown + (f" … and {len(values) - MAX_NAMED} more" if len(values) > MAX_NAMED else "")


def synthgate_mark(block: dict[str, Any]) -> dict[str, Any]:
    """The provenance block a merged synthetic entry carries: the required keys first."""
    report = block.get("report") or {}
    provenance = block.get("provenance") or {}
    mark = {
        "synthetic": True,
        "sample_id": block.get("sample_id"),
        "batch_id": block.get("batch_id"),
        "generator": block.get("generator") or provenance.get("generator"),
        "seed": block.get("seed"),
        "score": report.get("score"),
    }
    return {**mark, **{k: v for k, v in block.items() if k not in mark}}


def _max_id(entries: list[dict[str, Any]]) -> int:
    return max((e["id"] for e in entries if isinstance(e.get("id"), int)), default=0)


def merge_coco(
    real: dict[str, Any],
    synthetic: dict[str, Any],
    *,
    file_prefix: str = "",
    add_categories: bool = False,
    result: MergeResult | None = None,
) -> dict[str, Any]:
    """A copy of `real` with the accepted images of `synthetic` appended (see module doc).

    `file_prefix` is put before synthetic file names, so they resolve from the folder the real
    file names are relative to (see `relative_prefix`).
    """
    result = result if result is not None else MergeResult()
    real_ids = Counter(c["name"] for c in real["categories"])
    ambiguous = sorted(name for name, n in real_ids.items() if n > 1)
    if ambiguous:
        raise InputError(
            f"real COCO file: categories {_named(ambiguous)} appear more than once by name, so "
            "synthetic classes cannot be matched; make category names unique"
        )
    category_id = {c["name"]: c["id"] for c in real["categories"]}
    synthetic_names = {c["id"]: c["name"] for c in synthetic["categories"]}
    categories = list(real["categories"])

    accepted = []
    for position, image in enumerate(synthetic["images"]):
        block = image.get("synthgate") if isinstance(image, dict) else None
        if not (isinstance(block, dict) and block.get("status") and block.get("sample_id")):
            # Only a run's own images say whether they were accepted; never guess it.
            key = image.get("id") if isinstance(image, dict) else None
            raise InputError(
                f"not a synthgate run image: images[{position}] (id {key!r}) has no "
                "`synthgate` block with `status` and `sample_id`; --synthetic must be a run "
                "folder written by synthgate run"
            )
        status = str(block["status"])
        if status != "accepted":
            result.left_out.setdefault(status, []).append(str(block["sample_id"]))
        else:
            accepted.append(image)
    accepted_ids = {image["id"] for image in accepted}
    annotations = [a for a in synthetic["annotations"] if a["image_id"] in accepted_ids]

    used = sorted({synthetic_names[a["category_id"]] for a in annotations} - set(category_id))
    if used and not add_categories:
        raise InputError(
            f"synthetic classes {_named(used)} are not categories of the real file; add them "
            "to the real file, or pass --add-categories to append them"
        )
    for name in used:
        category_id[name] = _max_id(categories) + 1
        categories.append({"id": category_id[name], "name": name, "supercategory": "synthetic"})
        result.new_categories.append(name)

    _refuse_collisions(real, accepted, file_prefix)

    image_id = {}
    next_image = _max_id(real["images"]) + 1
    images = list(real["images"])
    for image in accepted:
        image_id[image["id"]] = next_image
        entry = {k: v for k, v in image.items() if k != "synthgate"}
        entry.update(id=next_image, file_name=file_prefix + image["file_name"])
        entry["synthgate"] = synthgate_mark(image.get("synthgate") or {})
        images.append(entry)
        next_image += 1
    next_annotation = _max_id(real["annotations"]) + 1
    merged_annotations = list(real["annotations"])
    for annotation in annotations:
        entry = dict(annotation)
        entry.update(
            id=next_annotation,
            image_id=image_id[annotation["image_id"]],
            category_id=category_id[synthetic_names[annotation["category_id"]]],
        )
        merged_annotations.append(entry)
        next_annotation += 1
    result.added_images += len(accepted)
    result.added_annotations += len(annotations)
    return {**real, "categories": categories, "images": images, "annotations": merged_annotations}


def _refuse_collisions(
    real: dict[str, Any], accepted: list[dict[str, Any]], file_prefix: str
) -> None:
    merged_before = {
        (i.get("synthgate") or {}).get("sample_id")
        for i in real["images"]
        if isinstance(i.get("synthgate"), dict)
    }
    sample_ids = [str((i.get("synthgate") or {}).get("sample_id")) for i in accepted]
    twice = sorted({s for s in sample_ids if s in merged_before})
    repeated = sorted(s for s, n in Counter(sample_ids).items() if n > 1)
    taken = {i.get("file_name") for i in real["images"]}
    clashing = sorted(
        file_prefix + i["file_name"] for i in accepted if file_prefix + i["file_name"] in taken
    )
    problems = []
    if twice:
        problems.append(f"samples already merged into the real file: {_named(twice)}")
    if repeated:
        problems.append(f"sample ids repeated in the synthetic file: {_named(repeated)}")
    if clashing:
        problems.append(f"file names already used by real images: {_named(clashing)}")
    if problems:
        raise InputError(
            "merge refused, nothing was written: " + "; ".join(problems) + ". Merge each run "
            "once, into the real file (not into an earlier merge of the same run)."
        )


def synthetic_row(
    row: dict[str, Any], *, text_field: str, label_field: str, id_field: str = "id"
) -> dict[str, Any]:
    """A run's text.jsonl row as a row of the real dataset, marked synthetic."""
    block = {k: v for k, v in row.items() if k not in ("id", "text", "label", "spans")}
    block["sample_id"] = row["id"]
    entry = {id_field: row["id"], text_field: row["text"], label_field: row["label"]}
    if row.get("spans"):
        entry["spans"] = row["spans"]
    if row.get("attributes"):
        entry["attributes"] = row["attributes"]
    entry["synthgate"] = synthgate_mark(block)
    return entry


def merge_jsonl(
    real_lines: list[str],
    synthetic_rows: list[dict[str, Any]],
    *,
    text_field: str = "text",
    label_field: str = "label",
    id_field: str = "id",
    result: MergeResult | None = None,
) -> list[str]:
    """Real lines unchanged, then the accepted synthetic rows (see module doc)."""
    result = result if result is not None else MergeResult()
    real_rows = [json.loads(line) for line in real_lines if line.strip()]
    real_ids = {r.get(id_field) for r in real_rows if r.get(id_field) is not None}
    merged_before = {(r.get("synthgate") or {}).get("sample_id") for r in real_rows}
    accepted = []
    for row in synthetic_rows:
        if row.get("status", "accepted") != "accepted":
            result.left_out.setdefault(str(row.get("status")), []).append(str(row.get("id")))
        else:
            accepted.append(row)
    ids = [row["id"] for row in accepted]
    problems = []
    if clashing := sorted({i for i in ids if i in real_ids}):
        problems.append(f"row ids already used in the real file: {_named(clashing)}")
    if twice := sorted({i for i in ids if i in merged_before}):
        problems.append(f"samples already merged into the real file: {_named(twice)}")
    if repeated := sorted(i for i, n in Counter(ids).items() if n > 1):
        problems.append(f"sample ids repeated in the synthetic rows: {_named(repeated)}")
    if problems:
        raise InputError("merge refused, nothing was written: " + "; ".join(problems))
    lines = [line if line.endswith("\n") else line + "\n" for line in real_lines if line.strip()]
    for row in accepted:
        entry = synthetic_row(
            row, text_field=text_field, label_field=label_field, id_field=id_field
        )
        lines.append(dumps(entry) + "\n")
    result.added_rows += len(accepted)
    return lines


def merge(
    real: Path | str,
    synthetic: Path | str,
    *,
    out: Path | str,
    images: Path | str | None = None,
    text_field: str = "text",
    label_field: str = "label",
    add_categories: bool = False,
    skip_invalid: bool = False,
) -> MergeResult:
    """Merge the accepted samples of a finished run into a copy of a real dataset.

    Args:
        real: the real COCO file or JSONL (read only).
        synthetic: a finished run folder (`run`).
        out: the merged file to write, atomically (never the real file, nor inside the run).
        images: COCO: the folder the real file_names are in (default: the real file's folder);
            synthetic file names are written relative to it.
        text_field, label_field: JSONL: the fields of each row's text and label.
        add_categories: append synthetic classes the real file lacks (else refused).
        skip_invalid: COCO: leave bad real entries out (listed) instead of stopping.

    Returns:
        A `MergeResult`: images, annotations or rows added, and samples left out by status.

    Example:
        >>> merge("annotations.json", "runs/mybatch", out="merged.json", images="images/")
    """
    real_path, run_dir, out = Path(real), Path(synthetic), Path(out)
    images_dir = Path(images) if images is not None else None
    result = MergeResult()
    if out.resolve() == real_path.resolve():
        raise InputError(
            field="out", value=out, problem="is the real file; write the merge to a new file"
        )
    if out.resolve().is_relative_to(run_dir.resolve()):
        raise InputError(
            field="out",
            value=out,
            problem=f"is inside the synthetic run folder {run_dir}; write the merge "
            "outside it (it would overwrite or mix with the run's own files)",
        )
    if out.is_dir():
        raise InputError(field="out", value=out, problem="is a folder; give a file name")
    if not (run_dir / "manifest.json").is_file():
        raise InputError(
            field="synthetic",
            value=run_dir,
            problem="not a finished synthgate run (no manifest.json)",
        )
    if real_path.suffix == ".jsonl":
        read_jsonl(real_path, what="real JSONL file")  # refuse a broken file before writing
        if not (run_dir / "text.jsonl").is_file():
            raise InputError(
                field="synthetic", value=run_dir, problem="the run made no text (no text.jsonl)"
            )
        real_lines = real_path.read_text(encoding="utf-8").splitlines(keepends=True)
        lines = merge_jsonl(
            real_lines,
            read_jsonl(run_dir / "text.jsonl"),
            text_field=text_field,
            label_field=label_field,
            result=result,
        )
        write_atomic(out, "".join(lines))
        return result
    synthetic_path = run_dir / "coco.json"
    if not synthetic_path.is_file():
        raise InputError(
            field="synthetic", value=run_dir, problem="the run made no images (no coco.json)"
        )
    images_dir = images_dir if images_dir is not None else real_path.parent
    if not images_dir.is_dir():
        raise InputError(
            field="images",
            value=images_dir,
            problem="folder not found; pass the folder the real file_names are in",
        )
    # the real images are checked too: missing, unreadable or not the size their entry says
    checked = check_coco(
        read_coco(real_path), source=real_path, images_dir=images_dir, skip_invalid=skip_invalid
    )
    result.skipped_input = [p.describe() for p in checked.skipped]
    merged = merge_coco(
        checked.data,
        read_coco(synthetic_path),
        file_prefix=relative_prefix(run_dir, images_dir),
        add_categories=add_categories,
        result=result,
    )
    write_atomic(out, dumps(merged) + "\n")
    return result


def relative_prefix(run_dir: Path, images_dir: Path) -> str:
    """What to put before a run's file names so they resolve from `images_dir`."""
    return os.path.relpath(run_dir.resolve(), images_dir.resolve()) + "/"
