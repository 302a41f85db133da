"""COCO files into Samples: `read_coco`, `coco_to_samples`, `segmentation_to_rle`.

Real files are messy: polygons (several per object, some degenerate), uncompressed RLE for crowd
regions, compressed RLE, missing or malformed fields. Everything here is converted through
pycocotools into the one internal form (COCO xywh boxes, compressed RLE with `counts` as str);
what cannot be read is recorded on the object (`attributes["segmentation_error"]`, an empty
`bbox`) for the validators to report, never raised. Each object keeps its COCO `annotation_id`
and `iscrowd` flag in `attributes`. Files this package wrote (`images[].synthgate`) get their
sample ids, seeds and provenance back. Writers live in outputs.py.
At the end: `find_coco_problems` / `check_coco`, the strict checks balancing and merging run
first (dangling or duplicate ids, polygons under 3 points, images missing on disk).
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pycocotools import mask as mask_utils
from pydantic import ValidationError

from synthgate.errors import InputError
from synthgate.samples import ObjectLabel, Provenance, Sample, SampleSpec

COCO_LISTS = ("images", "annotations", "categories")


def read_coco(path: Path | str) -> dict[str, Any]:
    """Load a COCO JSON file; InputError unless it is a mapping with images/annotations/categories."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found; pass the path of a COCO JSON file")
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as error:
        raise InputError(
            f"{path}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a COCO file is a JSON object (got {type(data).__name__})")
    missing = [key for key in COCO_LISTS if not isinstance(data.get(key), list)]
    if "images" in missing:
        raise InputError(
            f"{path}: no `images` list; is this a COCO detection file? "
            f"(keys found: {sorted(data)[:8]})"
        )
    for key in missing:  # annotations/categories may be absent (an unlabelled image list)
        data[key] = []
    return data


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _compressed(rle: dict[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    return {
        "size": [int(v) for v in rle["size"]],
        "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts,
    }


def segmentation_to_rle(segmentation: Any, height: int | None, width: int | None) -> dict[str, Any]:
    """A COCO segmentation (polygons, uncompressed or compressed RLE) -> compressed RLE.

    Raises ValueError with the reason when it cannot be read.
    """
    if isinstance(segmentation, dict):
        size, counts = segmentation.get("size"), segmentation.get("counts")
        if not (isinstance(size, list) and len(size) == 2 and all(_number(v) for v in size)):
            raise ValueError(f"RLE size {size!r} is not [height, width]")
        h, w = int(size[0]), int(size[1])
        if isinstance(counts, list):
            if not all(isinstance(c, int) and c >= 0 for c in counts) or sum(counts) != h * w:
                raise ValueError(f"uncompressed RLE counts do not add up to {h}x{w} pixels")
            return _compressed(mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w))
        if isinstance(counts, str | bytes):
            rle = {"size": [h, w], "counts": counts}
            try:
                area = int(mask_utils.area(rle))  # parses the counts
            except Exception as error:  # pycocotools raises plain Exception types
                raise ValueError(f"compressed RLE does not parse: {error}") from None
            if not 0 <= area <= h * w:  # pycocotools reads garbage strings without complaint
                raise ValueError(f"compressed RLE does not parse: {area} px in a {h}x{w} image")
            return _compressed(rle)
        raise ValueError("RLE counts are neither a list nor a string")
    if isinstance(segmentation, list):
        if height is None or width is None:
            raise ValueError("polygons need the image's width and height")
        polygons = [
            [float(v) for v in p]
            for p in segmentation
            if isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 and all(map(_number, p))
        ]
        if not polygons:
            raise ValueError("no polygon with at least 3 finite points")
        rles = mask_utils.frPyObjects(polygons, height, width)
        return _compressed(mask_utils.merge(rles))
    raise ValueError(f"segmentation of type {type(segmentation).__name__}")


def _object(
    annotation: dict[str, Any],
    category_names: dict[Any, str],
    height: int | None,
    width: int | None,
) -> ObjectLabel:
    attributes: dict[str, Any] = {"iscrowd": bool(annotation.get("iscrowd", 0))}
    if isinstance(annotation.get("id"), int):
        attributes["annotation_id"] = annotation["id"]
    bbox = annotation.get("bbox")
    box = [float(v) for v in bbox] if isinstance(bbox, list) and all(map(_number, bbox)) else []
    mask = None
    segmentation = annotation.get("segmentation")
    if segmentation not in (None, [], {}):
        try:
            mask = segmentation_to_rle(segmentation, height, width)
        except (ValueError, TypeError, OverflowError) as error:
            attributes["segmentation_error"] = str(error)
    category_id = annotation.get("category_id")
    visible: Any = mapping_of(annotation.get("synthgate")).get("visible_fraction", 1.0)
    area: Any = annotation.get("area")
    return ObjectLabel(
        category=category_names.get(category_id, f"<category id {category_id}>"),
        bbox=box,
        mask=mask,
        area=float(area) if _number(area) else 0.0,
        visible_fraction=float(visible) if _number(visible) and 0 <= visible <= 1 else 1.0,
        attributes=attributes,
    )


def mapping_of(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def count_of(value: Any, default: int) -> int:
    """A non-negative int from a file, else `default`."""
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default
    )


def _size(value: Any) -> int | None:
    return int(value) if _number(value) and value > 0 else None


def coco_image_to_sample(
    image: dict[str, Any],
    annotations: list[dict[str, Any]],
    category_names: dict[Any, str],
    *,
    source: str,
    position: int,
) -> Sample:
    """One COCO image and its annotations -> a Sample (ids and provenance kept when present)."""
    image_id = image.get("id")
    height, width = _size(image.get("height")), _size(image.get("width"))
    mark = mapping_of(image.get("synthgate"))
    seed = count_of(mark.get("seed"), count_of(image_id, position))
    spec = SampleSpec(
        batch_id=str(mark.get("batch_id") or source),
        index=count_of(mark.get("index"), position),
        modality="image",
        generator=str(mark.get("generator") or "coco"),
        category=mark.get("category") if isinstance(mark.get("category"), str) else None,
        params={"image_id": image_id, "file_name": image.get("file_name")},
        seed=seed,
    )
    try:
        provenance = Provenance.model_validate(mark["provenance"])
    except (KeyError, ValidationError):
        provenance = Provenance(generator=spec.generator, generator_version="", seed=seed)
    file_name = image.get("file_name")
    return Sample(
        id=str(mark.get("sample_id") or f"coco-{image_id}"),
        spec=spec,
        uri=file_name if isinstance(file_name, str) else None,
        width=width,
        height=height,
        objects=[_object(a, category_names, height, width) for a in annotations],
        provenance=provenance,
    )


def coco_to_samples(coco: dict[str, Any], *, source: str = "coco") -> Iterator[Sample]:
    """Every image of a COCO dict as a Sample, in file order (annotations grouped once)."""
    category_names = {
        c.get("id"): str(c.get("name"))
        for c in coco.get("categories", [])
        if isinstance(c, dict) and "name" in c
    }
    by_image: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for annotation in coco.get("annotations", []):
        if isinstance(annotation, dict):
            by_image[annotation.get("image_id")].append(annotation)
    for position, image in enumerate(coco.get("images", [])):
        if isinstance(image, dict):
            yield coco_image_to_sample(
                image,
                by_image.get(image.get("id"), []),
                category_names,
                source=source,
                position=position,
            )


def category_names(coco: dict[str, Any]) -> list[str]:
    """The class names a COCO dict defines, in file order."""
    return [
        str(c["name"]) for c in coco.get("categories", []) if isinstance(c, dict) and "name" in c
    ]


# --- Strict checks before balancing or merging (synthgate balance / merge) -------------------
# `find_coco_problems(data, images_dir=…)` lists every entry balancing or merging cannot trust:
# dangling image/category ids, duplicate ids, polygons with fewer than 3 points, malformed boxes,
# images missing on disk. `check_coco(…)` raises one InputError naming them, or with
# `skip_invalid` returns the file without them and the list of what was left out.

MAX_LISTED = 20  # problems named in one error message; the rest are counted


@dataclass(frozen=True)
class CocoProblem:
    """One bad entry: which list, its position and id, what is wrong."""

    section: str  # "images" | "annotations" | "categories"
    position: int
    entry_id: Any
    message: str

    def describe(self) -> str:
        return f"{self.section}[{self.position}] (id {self.entry_id!r}): {self.message}"


@dataclass
class CheckedCoco:
    """A COCO mapping that passed the checks (or had its bad entries left out)."""

    data: dict[str, Any]
    skipped: list[CocoProblem] = field(default_factory=list)


def _duplicates(entries: list[dict[str, Any]], section: str) -> list[CocoProblem]:
    """Every entry after the first with the same id."""
    seen: set[Any] = set()
    problems = []
    for position, entry in enumerate(entries):
        key = entry.get("id")
        if key in seen:
            problems.append(CocoProblem(section, position, key, "duplicate id"))
        seen.add(key)
    return problems


def _image_problems(data: dict[str, Any], images_dir: Path | None) -> list[CocoProblem]:
    problems = []
    for position, image in enumerate(data["images"]):
        if not isinstance(image, dict):
            problems.append(CocoProblem("images", position, None, "not an object"))
            continue
        key = image.get("id")
        if not isinstance(key, int) or isinstance(key, bool):
            problems.append(CocoProblem("images", position, key, "id must be an integer"))
        size = (image.get("width"), image.get("height"))
        if not all(isinstance(v, int) and v > 0 for v in size):
            problems.append(
                CocoProblem("images", position, key, f"width/height must be > 0 (got {size})")
            )
        name = image.get("file_name")
        if not isinstance(name, str) or not name:
            problems.append(CocoProblem("images", position, key, "file_name is missing"))
        elif images_dir is not None and not (images_dir / name).is_file():
            problems.append(
                CocoProblem("images", position, key, f"image file missing: {images_dir / name}")
            )
    return problems


def _polygon_problem(segmentation: Any) -> str | None:
    if isinstance(segmentation, dict):
        if "counts" not in segmentation or "size" not in segmentation:
            return "RLE segmentation needs `counts` and `size`"
        return None
    if not isinstance(segmentation, list) or not segmentation:
        return "segmentation must be a list of polygons or an RLE object"
    for part, polygon in enumerate(segmentation):
        if not isinstance(polygon, list) or len(polygon) % 2:
            return f"polygon {part} must be a flat list of x, y pairs"
        if len(polygon) < 6:
            return f"polygon {part} has {len(polygon) // 2} point(s); a polygon needs at least 3"
    return None


def _annotation_problems(
    data: dict[str, Any], image_ids: set[Any], category_ids: set[Any]
) -> list[CocoProblem]:
    problems = []
    for position, annotation in enumerate(data["annotations"]):
        if not isinstance(annotation, dict):
            problems.append(CocoProblem("annotations", position, None, "not an object"))
            continue
        key = annotation.get("id")

        def add(message: str, key: Any = key, position: int = position) -> None:
            problems.append(CocoProblem("annotations", position, key, message))

        if not isinstance(key, int) or isinstance(key, bool):
            add("id must be an integer")
        if annotation.get("image_id") not in image_ids:
            add(f"image_id {annotation.get('image_id')!r} is not the id of any image (dangling)")
        if annotation.get("category_id") not in category_ids:
            add(
                f"category_id {annotation.get('category_id')!r} is not the id of any category "
                "(dangling)"
            )
        bbox = annotation.get("bbox")
        if not (
            isinstance(bbox, list)
            and len(bbox) == 4
            and all(isinstance(v, int | float) for v in bbox)
            and bbox[2] >= 0
            and bbox[3] >= 0
        ):
            add(f"bbox must be [x, y, w, h] with w, h >= 0 (got {bbox!r})")
        if "segmentation" in annotation:
            message = _polygon_problem(annotation["segmentation"])
            if message is not None:
                add(message)
    return problems


def find_coco_problems(data: dict[str, Any], *, images_dir: Path | None) -> list[CocoProblem]:
    """Every entry of a COCO mapping that balancing or merging cannot trust, in file order."""
    problems = []
    for position, category in enumerate(data["categories"]):
        if not isinstance(category, dict) or not isinstance(category.get("name"), str):
            key = category.get("id") if isinstance(category, dict) else None
            problems.append(CocoProblem("categories", position, key, "name is missing"))
    names = Counter(c.get("name") for c in data["categories"] if isinstance(c, dict))
    for position, category in enumerate(data["categories"]):
        if isinstance(category, dict) and names[category.get("name")] > 1:
            problems.append(
                CocoProblem(
                    "categories",
                    position,
                    category.get("id"),
                    f"name {category.get('name')!r} is used by more than one category",
                )
            )
    for section in ("images", "annotations", "categories"):
        entries = [e for e in data[section] if isinstance(e, dict)]
        problems += _duplicates(entries, section)
    problems += _image_problems(data, images_dir)
    image_ids = {i.get("id") for i in data["images"] if isinstance(i, dict)}
    category_ids = {c.get("id") for c in data["categories"] if isinstance(c, dict)}
    problems += _annotation_problems(data, image_ids, category_ids)
    order = {"categories": 0, "images": 1, "annotations": 2}
    return sorted(problems, key=lambda p: (order[p.section], p.position))


def describe_problems(problems: list[CocoProblem]) -> str:
    lines = [f"  - {p.describe()}" for p in problems[:MAX_LISTED]]
    if len(problems) > MAX_LISTED:
        lines.append(f"  … and {len(problems) - MAX_LISTED} more")
    return "\n".join(lines)


def check_coco(
    data: dict[str, Any], *, source: Path, images_dir: Path | None, skip_invalid: bool = False
) -> CheckedCoco:
    """The file as it is if it is clean; else an `InputError` naming every bad entry.

    With `skip_invalid`, bad entries are left out instead (an image takes its annotations with
    it; a duplicate keeps its first occurrence) and returned in `skipped`. Category problems are
    never skipped: dropping a class would silently change what the dataset means.
    """
    problems = find_coco_problems(data, images_dir=images_dir)
    if not problems:
        return CheckedCoco(data=data)
    category_problems = [p for p in problems if p.section == "categories"]
    if not skip_invalid or category_problems:
        fix = (
            "fix the categories (they cannot be skipped)"
            if skip_invalid
            else "fix these entries, or pass --skip-invalid to leave them out (they are listed)"
        )
        raise InputError(
            f"{source}: {len(problems)} problem(s) in the COCO file; nothing was written:\n"
            f"{describe_problems(problems)}\n{fix}"
        )
    bad = {(p.section, p.position) for p in problems}
    images = [e for i, e in enumerate(data["images"]) if ("images", i) not in bad]
    kept_image_ids = {image["id"] for image in images}
    dropped_image_ids = {
        e.get("id") for i, e in enumerate(data["images"]) if ("images", i) in bad
    } - kept_image_ids
    annotations = []
    for position, annotation in enumerate(data["annotations"]):
        if ("annotations", position) in bad:
            continue
        if annotation["image_id"] in dropped_image_ids:
            problems.append(
                CocoProblem(
                    "annotations",
                    position,
                    annotation.get("id"),
                    f"left out with its image {annotation['image_id']!r}",
                )
            )
            continue
        annotations.append(annotation)
    return CheckedCoco(
        data={**data, "images": images, "annotations": annotations}, skipped=problems
    )
