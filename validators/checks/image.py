"""Label checks of image samples: taxonomy, box geometry, masks, completeness, duplicates.

Everything works on COCO boxes and compressed RLE masks through pycocotools (`toBbox`, `area`,
`iou`, `merge`), so no mask is decoded except to compare the union of labels with the
generator's foreground. Crowd regions (`attributes["iscrowd"]`) are groups, not instances:
they are left out of the instance checks (duplicates, size, occlusion) and reported as such.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from synthgate.masks import box_edges
from synthgate.samples import ObjectLabel
from synthgate.validators.checks.base import CheckInput, Measure, Measurement, register

GRID_EPS = 1e-6  # float noise in box coordinates written by other tools


def is_crowd(obj: ObjectLabel) -> bool:
    return bool(obj.attributes.get("iscrowd", False))


def annotation_id(obj: ObjectLabel) -> int | None:
    value = obj.attributes.get("annotation_id")
    return int(value) if isinstance(value, int) else None


def _measure(item: CheckInput, index: int, measure: str, value: float, message: str) -> Measurement:
    obj = item.sample.objects[index]
    return Measurement(
        measure, float(value), message, object_index=index, annotation_id=annotation_id(obj)
    )


def mask_problem(obj: ObjectLabel, item: CheckInput) -> str | None:
    """Why an object's mask cannot be used (None when it can, or when there is none)."""
    error = obj.attributes.get("segmentation_error")
    if error:
        return str(error)
    mask = obj.mask
    if mask is None:
        return None
    size = mask.get("size")
    if not isinstance(size, list | tuple) or len(size) != 2 or "counts" not in mask:
        return "mask is not a COCO RLE {size: [h, w], counts}"
    expected = [item.sample.height, item.sample.width]
    if None not in expected and [int(v) for v in size] != expected:
        return f"mask size {list(size)} differs from the image size {expected}"
    return None


def mask_boxes(item: CheckInput) -> dict[int, tuple[float, float, float, float, float]]:
    """Per object with a usable mask: (x0, y0, x1, y1, area) of its pixels, computed once."""
    if "mask_boxes" not in item.cache:
        indices = [
            i
            for i, obj in enumerate(item.sample.objects)
            if obj.mask is not None and mask_problem(obj, item) is None
        ]
        rles = [item.sample.objects[i].mask for i in indices]
        boxes = mask_utils.toBbox(rles) if rles else np.zeros((0, 4))
        areas = mask_utils.area(rles) if rles else np.zeros(0)
        item.cache["mask_boxes"] = {
            i: (b[0], b[1], b[0] + b[2], b[1] + b[3], float(a))
            for i, b, a in zip(indices, boxes, areas, strict=True)
        }
    return item.cache["mask_boxes"]


def foreground_rle(item: CheckInput) -> dict[str, Any]:
    """The generator's foreground as RLE, encoded once per sample."""
    if "foreground_rle" not in item.cache:
        assert item.foreground is not None
        item.cache["foreground_rle"] = mask_utils.encode(
            np.asfortranarray(item.foreground, dtype=np.uint8)
        )
    return item.cache["foreground_rle"]


@register(
    "correctness_category_in_taxonomy",
    measures=[Measure("category_unknown", "object")],
)
def category_in_taxonomy(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Every object's class is one the batch (or file) defines."""
    taxonomy = item.context.categories
    if taxonomy is None:
        return
    for i, obj in enumerate(item.sample.objects):
        if obj.category not in taxonomy:
            yield _measure(
                item, i, "category_unknown", 1, f"class {obj.category!r} not in taxonomy"
            )


@register(
    "correctness_bbox_valid",
    measures=[Measure("bbox_invalid", "object"), Measure("bbox_outside_px", "px")],
)
def bbox_valid(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Boxes are four finite numbers, with positive width and height, inside the image."""
    width, height = item.sample.width, item.sample.height
    for i, obj in enumerate(item.sample.objects):
        edges = box_edges(obj.bbox)
        if edges is None or edges[2] <= edges[0] or edges[3] <= edges[1]:
            yield _measure(item, i, "bbox_invalid", 1, f"box {obj.bbox} is not a positive box")
            continue
        if width is None or height is None:
            continue
        x0, y0, x1, y1 = edges
        outside = max(-x0, -y0, x1 - width, y1 - height, 0.0)
        if outside > 0:
            yield _measure(
                item,
                i,
                "bbox_outside_px",
                outside,
                f"box {obj.bbox} extends {outside:g} px outside the {width}x{height} image",
            )


@register("clarity_min_size", measures=[Measure("min_side_px", "px", worse="lower")])
def min_size(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """The shorter side of each instance box, in px: tiny objects are hard to see and label."""
    for i, obj in enumerate(item.sample.objects):
        edges = box_edges(obj.bbox)
        if edges is None or is_crowd(obj):
            continue
        side = max(min(edges[2] - edges[0], edges[3] - edges[1]), 0.0)
        yield _measure(item, i, "min_side_px", side, f"box {obj.bbox}: shorter side {side:g} px")


@register("precision_box_tightness", measures=[Measure("box_tightness_px", "px")])
def box_tightness(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """How far the box reaches beyond its mask on its loosest side, in px."""
    for i, (mx0, my0, mx1, my1, area) in mask_boxes(item).items():
        obj = item.sample.objects[i]
        edges = box_edges(obj.bbox)
        if edges is None or area == 0:
            continue
        x0, y0, x1, y1 = edges
        loose = max(mx0 - x0, my0 - y0, x1 - mx1, y1 - my1, 0.0)
        yield _measure(
            item,
            i,
            "box_tightness_px",
            round(loose, 3),
            f"box {_fmt(obj.bbox)} is {loose:.3g} px loose around its mask "
            f"{_fmt([mx0, my0, mx1 - mx0, my1 - my0])}",
        )


@register(
    "precision_mask_consistency",
    measures=[
        Measure("mask_empty", "object"),
        Measure("mask_unreadable", "object"),
        Measure("mask_outside_box_px", "px"),
        Measure("mask_outside_foreground_px", "px"),
    ],
)
def mask_consistency(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Masks are readable, non-empty, inside their box and (synthetic) on the drawn object."""
    sample = item.sample
    boxes = mask_boxes(item)
    for i, obj in enumerate(sample.objects):
        problem = mask_problem(obj, item)
        if problem:
            yield _measure(item, i, "mask_unreadable", 1, f"segmentation unusable: {problem}")
            continue
        if i not in boxes:
            continue
        mx0, my0, mx1, my1, area = boxes[i]
        if area == 0:
            yield _measure(item, i, "mask_empty", 1, "mask has no pixels")
            continue
        edges = box_edges(obj.bbox)
        if edges is not None:
            # The box's pixel grid: every pixel the (float) box touches. Real files' polygons are
            # rasterised to whole pixels, so a mask may fill a pixel the box only grazes.
            x0, y0 = math.floor(edges[0] + GRID_EPS), math.floor(edges[1] + GRID_EPS)
            x1, y1 = math.ceil(edges[2] - GRID_EPS), math.ceil(edges[3] - GRID_EPS)
            out = max(x0 - mx0, y0 - my0, mx1 - x1, my1 - y1, 0.0)
            if out > 0:
                yield _measure(
                    item,
                    i,
                    "mask_outside_box_px",
                    round(out, 3),
                    f"mask reaches {out:.3g} px beyond its box {_fmt(obj.bbox)}",
                )
    if item.foreground is not None and boxes and _fits(item.foreground, sample):
        drawn = foreground_rle(item)
        for i, (*_, area) in boxes.items():
            if area == 0:
                continue
            on = mask_utils.merge([sample.objects[i].mask, drawn], intersect=True)
            stray = int(area - mask_utils.area(on))
            if stray:
                yield _measure(
                    item,
                    i,
                    "mask_outside_foreground_px",
                    stray,
                    f"{stray} mask px lie where the generator drew no object",
                )


@register(
    "completeness_unlabelled_foreground",
    measures=[Measure("unlabelled_px", "px"), Measure("unlabelled_percent", "%")],
)
def unlabelled_foreground(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Pixels the generator drew as objects that no label covers (nor the ignore region)."""
    sample, foreground = item.sample, item.foreground
    if foreground is None:
        return
    if not _fits(foreground, sample):
        return
    # In RLE: |drawn| - |drawn ∩ labels|, without decoding any mask.
    if item.ignore is not None and item.ignore.any():
        drawn = foreground & ~item.ignore
        drawn_rle = mask_utils.encode(np.asfortranarray(drawn, dtype=np.uint8))
    else:
        drawn_rle = foreground_rle(item)
    count = int(mask_utils.area(drawn_rle))
    rles = [sample.objects[i].mask for i in mask_boxes(item)]
    if rles and count:
        labelled = mask_utils.merge(rles, intersect=False)
        count -= int(mask_utils.area(mask_utils.merge([drawn_rle, labelled], intersect=True)))
    percent = 100.0 * count / max(foreground.size, 1)
    message = f"{count} px ({percent:.2f} % of the image) of drawn objects carry no label"
    yield Measurement("unlabelled_px", count, message)
    yield Measurement("unlabelled_percent", round(percent, 4), message)


@register(
    "correctness_duplicate_boxes",
    measures=[Measure("duplicate_iou", "IoU")],
)
def duplicate_boxes(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Highest overlap of each instance with an earlier one of its class (mask IoU if both have
    masks, else box IoU): the same object labelled twice."""
    by_class: dict[str, list[int]] = {}
    objects = item.sample.objects
    boxes = mask_boxes(item)
    for i, obj in enumerate(objects):
        if is_crowd(obj) or box_edges(obj.bbox) is None:
            continue
        by_class.setdefault(obj.category, []).append(i)
    for members in by_class.values():
        if len(members) < 2:
            continue
        with_masks = all(i in boxes and boxes[i][4] > 0 for i in members)
        if with_masks:
            rles = [objects[i].mask for i in members]
            iou = mask_utils.iou(rles, rles, [0] * len(members))
        else:
            bbs = [list(objects[i].bbox) for i in members]
            iou = mask_utils.iou(bbs, bbs, [0] * len(members))
        iou = np.asarray(iou, dtype=np.float64)
        for later in range(1, len(members)):
            best = int(np.argmax(iou[later, :later]))
            value = float(iou[later, best])
            kind = "mask" if with_masks else "box"
            other = members[best]
            other_id = annotation_id(objects[other])
            ref = f"annotation {other_id}" if other_id is not None else f"object {other}"
            yield _measure(
                item,
                members[later],
                "duplicate_iou",
                round(value, 4),
                f"{kind} IoU {value:.2f} with {ref} of the same class",
            )


@register(
    "clarity_visible_fraction",
    measures=[Measure("visible_fraction", "fraction", worse="lower")],
)
def visible_fraction(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """How much of each object is visible (occlusion): heavily hidden objects are ambiguous."""
    for i, obj in enumerate(item.sample.objects):
        if not is_crowd(obj):
            yield _measure(
                item,
                i,
                "visible_fraction",
                obj.visible_fraction,
                f"{obj.visible_fraction:.0%} of the object is visible",
            )


@register("clarity_crowd_regions", measures=[Measure("crowd_region", "object")])
def crowd_regions(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Crowd regions label a group as one region: usable, but no instance is separable."""
    for i, obj in enumerate(item.sample.objects):
        if is_crowd(obj):
            yield _measure(
                item,
                i,
                "crowd_region",
                1,
                f"crowd region of {obj.category!r} ({obj.area:g} px): instances not separable",
            )


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def _fits(plane: np.ndarray, sample: Any) -> bool:
    return sample.height is not None and plane.shape == (sample.height, sample.width)


@register(
    "completeness_layout_honoured",
    measures=[Measure("requested_boxes_empty", "boxes")],
)
def layout_honoured(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Requested boxes (layout-to-image, inpainting) in which the model drew nothing.

    A generator that asks a model for objects in given boxes records the boxes it found empty in
    `provenance.params["missing"]`; each one is an object the model was asked for and did not
    draw. Samples from other generators have no requested boxes and measure nothing.
    """
    missing = item.sample.provenance.params.get("missing")
    if not isinstance(missing, list):
        return
    names = ", ".join(str(m.get("category", "?")) for m in missing if isinstance(m, dict))
    yield Measurement(
        "requested_boxes_empty",
        len(missing),
        f"{len(missing)} requested boxes left empty ({names})"
        if missing
        else "every requested box holds an object",
    )


@register(
    "precision_layout_box_iou",
    measures=[Measure("requested_box_iou", "", worse="lower")],
)
def layout_box_iou(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """IoU of each object's tight box with the box the model was asked to fill.

    The label is the object the model actually drew (mask and tight box); how far that strays
    from the requested box tells whether the model honoured the layout.
    """
    for index, obj in enumerate(item.sample.objects):
        value = obj.attributes.get("box_iou")
        if isinstance(value, int | float) and math.isfinite(value):
            yield _measure(
                item,
                index,
                "requested_box_iou",
                value,
                f"{obj.category}: IoU {value:.2f} with the requested box",
            )
