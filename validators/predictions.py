"""Model predictions judged as labels: pre-labels QA with `synthgate validate RESULTS --coco FILE`.

A COCO results file (what detectors and pycocotools' `loadRes` exchange) is a JSON list of
`{image_id, category_id, bbox, segmentation?, score}`. `read_results(path, coco=...)` checks
every row against the COCO file whose images it predicts on (the image and the category must be
there; the box four finite numbers; the score a finite number) and `predictions_coco` turns the
rows scoring at least `min_score` into that file's annotations (ids in row order, area from the
mask or the box, as pycocotools' loadRes does), so the rubric judges them as it judges any COCO
file; it also gives each annotation's score, for reviewers. `validate_predictions` does both and
validates. `predictions_json` is the `--json` document: validate's, plus what was judged (`predictions`:
the files, the score cut) and each sample's measurements, so `review enqueue --from-validate`
can queue the ones the rubric doubts and order them by value.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from synthgate.errors import InputError
from synthgate.files import json_text, parse_json, readable_file
from synthgate.formats.coco_reader import read_coco_streaming
from synthgate.masks import finite_number, rle_area, segmentation_to_rle
from synthgate.validators.rubric import Rubric
from synthgate.validators.validate import ValidationResult, validate_file


def is_results_file(path: Path) -> bool:
    """Whether a JSON file holds a list of objects (a COCO results file) rather than a COCO
    object: it opens with `[` and then `{` or `]` (a list of numbers or lists is neither),
    after a UTF-8 byte-order mark where it starts with one (as `read_results` reads it)."""
    opening = ""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            while len(opening) < 2 and (character := handle.read(1)):
                if not character.isspace():
                    opening += character
    except (OSError, UnicodeDecodeError):
        return False
    return opening in ("[{", "[]")


def list_file_problem(path: Path) -> str | None:
    """What a JSON list file is when its first object says it is no COCO results file: a Label
    Studio export (tasks with `data`) or text rows (objects with `text`); None otherwise (a
    results file, or an empty list). Reads the file's opening only."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            opening = handle.read(1 << 16)
        start = opening.index("{")
        first, _ = json.JSONDecoder().raw_decode(opening, start)
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(first, dict):
        return None
    if "data" in first:
        return (
            f"{path} is a Label Studio JSON export (a list of tasks with `data`), not a COCO "
            "file: export COCO from Label Studio for images, or texts as JSON-MIN rows written "
            "one a line (e.g. jq -c '.[]' export.json > rows.jsonl); answers to a synthgate "
            "review go back with `synthgate review import`"
        )
    if "text" in first and "image_id" not in first:
        return (
            f"{path} is a JSON list of text rows: validate reads text rows as JSONL, one row a "
            "line (e.g. jq -c '.[]' rows.json > rows.jsonl)"
        )
    return None


def read_results(path: Path, *, coco: dict[str, Any], coco_name: str) -> list[dict[str, Any]]:
    """The rows of a COCO results file, each checked against the COCO file it predicts on."""
    rows = parse_json(readable_file(path, "COCO results file").read_bytes(), source=path)
    if not isinstance(rows, list):
        raise InputError(
            f"{path}: a COCO results file is a JSON list of predictions (got "
            f"{type(rows).__name__}); a COCO file with its own labels is judged without "
            "{coco}",
            options=("coco",),
        )
    images = {image.get("id") for image in coco["images"] if isinstance(image, dict)}
    categories = {c.get("id") for c in coco["categories"] if isinstance(c, dict)}
    for index, row in enumerate(rows):
        where = f"{path}: [{index}]"
        if not isinstance(row, dict):
            raise InputError(f"{where}: a prediction is an object (got {type(row).__name__})")
        missing = [key for key in ("image_id", "category_id", "bbox", "score") if key not in row]
        if missing:
            raise InputError(
                f"{where}: missing {', '.join(missing)}; a prediction is "
                '{"image_id", "category_id", "bbox": [x, y, w, h], "score"}'
            )
        if not _known(row["image_id"], images):
            raise InputError(
                f"{where}: image_id {row['image_id']!r} is not an image of {coco_name}; "
                "pass the COCO file the predictions were made on"
            )
        if not _known(row["category_id"], categories):
            raise InputError(
                f"{where}: category_id {row['category_id']!r} is not a category of {coco_name}"
            )
        box = row["bbox"]
        if not (isinstance(box, list) and len(box) == 4 and all(map(finite_number, box))):
            raise InputError(f"{where}: bbox must be [x, y, w, h] numbers (got {box!r})")
        if not finite_number(row["score"]):
            raise InputError(f"{where}: score must be a number (got {row['score']!r})")
    return rows


def _known(value: Any, ids: set[Any]) -> bool:
    """`value in ids`, False for a value no id can be (a list or an object: unhashable)."""
    return isinstance(value, Hashable) and value in ids


def predictions_coco(
    rows: list[dict[str, Any]], coco: dict[str, Any], *, min_score: float = 0.0
) -> tuple[dict[str, Any], dict[int, float]]:
    """The COCO file with the predictions scoring >= `min_score` as its annotations, and the
    score of each annotation id."""
    annotations: list[dict[str, Any]] = []
    scores: dict[int, float] = {}
    sizes = {
        image.get("id"): (image.get("height"), image.get("width"))
        for image in coco["images"]
        if isinstance(image, dict)
    }
    for row in rows:
        if row["score"] < min_score:
            continue
        annotation_id = len(annotations) + 1
        x, y, w, h = (float(v) for v in row["bbox"])
        annotation: dict[str, Any] = {
            "id": annotation_id,
            "image_id": row["image_id"],
            "category_id": row["category_id"],
            "bbox": [x, y, w, h],
            "area": max(w, 0.0) * max(h, 0.0),
            "iscrowd": 0,
        }
        segmentation = row.get("segmentation")
        if segmentation:
            annotation["segmentation"] = segmentation
            height, width = sizes.get(row["image_id"], (None, None))
            try:
                rle = segmentation_to_rle(segmentation, height, width)
                annotation["area"] = rle_area(rle)
            except (ValueError, TypeError, OverflowError):
                pass  # the rubric reports an unreadable mask; the box area stands
        annotations.append(annotation)
        scores[annotation_id] = float(row["score"])
    merged = {**coco, "annotations": annotations}
    return merged, scores


def validate_predictions(
    results: Path | str,
    coco: Path | str,
    *,
    images: Path | str | None = None,
    rubric: str | Path | Rubric | None = "detection",
    reference: Path | str | None = None,
    min_score: float = 0.0,
    progress: Callable[[int, int | None], None] | None = None,
    reference_progress: Callable[[int, int], None] | None = None,
    read_progress: Callable[[int, int], None] | None = None,
    size_progress: Callable[[int, int], None] | None = None,
) -> ValidationResult:
    """Judge a detector's predictions on the images of a COCO file against a rubric.

    Returns the `ValidationResult` of the COCO file with the predictions as its labels.
    `progress`, `reference_progress` and `size_progress` (with `images`: the headers read for
    entries without a width or height) as for `validate_coco`; `read_progress` with (bytes
    read, bytes in all) from the start to the end of the COCO file as it is read.
    """
    coco_path = Path(coco)
    data = read_coco_streaming(coco_path, progress=read_progress)
    rows = read_results(Path(results), coco=data, coco_name=str(coco_path))
    merged, _ = predictions_coco(rows, data, min_score=min_score)
    return validate_file(
        merged,
        images=images,
        rubric=rubric,
        reference=reference,
        progress=progress,
        reference_progress=reference_progress,
        size_progress=size_progress,
    )


def predictions_json(
    result: ValidationResult,
    *,
    results: Path,
    coco: Path,
    images: Path | None,
    min_score: float,
) -> str:
    """validate's `--json` document with what was judged and each sample's measurements."""
    document = json.loads(result.to_json())
    document["predictions"] = {
        "results": str(results.resolve()),
        "coco": str(coco.resolve()),
        "images": str(images.resolve()) if images is not None else None,
        "min_score": min_score,
    }
    for row in document["samples"]:
        report = result.reports.get(str(row["id"]))
        row["measurements"] = dict(report.measurements) if report is not None else {}
    return json_text(document)
