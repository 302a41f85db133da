"""COCO files into Samples: `read_coco`, `coco_to_samples`, `segmentation_to_rle`.

Real files are messy: polygons (several per object, some degenerate), uncompressed RLE for crowd
regions, compressed RLE, missing or malformed fields. Everything here is converted through
pycocotools into the one internal form (COCO xywh boxes, compressed RLE with `counts` as str);
what cannot be read is recorded on the object (`attributes["segmentation_error"]`, an empty
`bbox`) for the validators to report, never raised. Each object keeps its COCO `annotation_id`
and `iscrowd` flag in `attributes`. Files this package wrote (`images[].synthgate`) get their
sample ids, seeds and provenance back. Writers live in outputs.py; the strict checks balancing
and merging run first are in coco_checks.py.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterator
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
    if "images" not in data:
        raise InputError(
            f"{path}: no `images` list; is this a COCO detection file? "
            f"(keys found: {sorted(data)[:8]})"
        )
    for key in COCO_LISTS:
        if key != "images" and data.get(key) is None:
            data[key] = []  # annotations/categories may be absent (an unlabelled image list)
        elif not isinstance(data[key], list):
            raise InputError(f"{path}: `{key}` must be a list (got {type(data[key]).__name__})")
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
