"""Label checks of image samples: taxonomy, box geometry, masks, completeness, duplicates.

Everything works on COCO boxes and compressed RLE masks through pycocotools (`toBbox`, `area`,
`iou`, `merge`), so no mask is decoded except to compare the union of labels with the
generator's foreground. Crowd regions (`attributes["iscrowd"]`) are groups, not instances:
they are left out of the instance checks (size, occlusion), compared for duplicates only with
the crowd regions of their class, and reported as such.
What every check needs of the objects (box edges, mask boxes and areas) is measured once per
sample (checks/objects.py); checks that measure every object yield `ObjectMeasurements`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from synthgate.validators.checks.base import (
    CheckInput,
    Found,
    Measure,
    Measurement,
    ObjectMeasurements,
    register,
)
from synthgate.validators.checks.objects import ObjectTable, objects_of, round3


def _measure(
    table: ObjectTable, index: int, measure: str, value: float, message: str
) -> Measurement:
    return Measurement(
        measure,
        float(value),
        message,
        object_index=index,
        annotation_id=table.annotation_ids[index],
    )


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
                objects_of(item),
                i,
                "category_unknown",
                1,
                f"class {obj.category!r} not in taxonomy",
            )


@register(
    "correctness_bbox_valid",
    measures=[Measure("bbox_invalid", "object"), Measure("bbox_outside_px", "px")],
)
def bbox_valid(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Boxes are four finite numbers, with positive width and height, inside the image."""
    table = objects_of(item)
    if not table.box_flagged.any():
        return
    width, height = item.sample.width, item.sample.height
    objects = item.sample.objects
    for i in np.flatnonzero(table.box_flagged).tolist():
        x0, y0, x1, y1 = table.edges[i].tolist()
        box = objects[i].bbox
        if math.isnan(x0) or x1 <= x0 or y1 <= y0:
            problem = objects[i].attributes.get("bbox_error") or f"box {box} is not a positive box"
            yield _measure(table, i, "bbox_invalid", 1, str(problem))
            continue
        assert width is not None and height is not None
        outside = max(-x0, -y0, x1 - width, y1 - height, 0.0)
        yield _measure(
            table,
            i,
            "bbox_outside_px",
            outside,
            f"box {box} extends {outside:g} px outside the {width}x{height} image",
        )


@register("clarity_min_size", measures=[Measure("min_side_px", "px", worse="lower")])
def min_size(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Found]:
    """The shorter side of each instance box, in px: tiny objects are hard to see and label."""
    table = objects_of(item)
    chosen = np.flatnonzero(table.sized)
    if not len(chosen):
        return
    sides = table.sides[chosen]
    objects = item.sample.objects

    def describe(k: int) -> str:
        return f"box {objects[chosen[k]].bbox}: shorter side {float(sides[k]):g} px"

    yield ObjectMeasurements.of("min_side_px", sides, chosen, table.annotation_ids, describe)


@register("precision_box_tightness", measures=[Measure("box_tightness_px", "px")])
def box_tightness(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Found]:
    """How far the box reaches beyond its mask on its loosest side, in px."""
    table = objects_of(item)
    chosen = np.flatnonzero(table.tightness)
    if not len(chosen):
        return
    loose = table.loose[chosen]
    objects = item.sample.objects

    def describe(k: int) -> str:
        i = chosen[k]
        left, top, right, bottom = table.mask_boxes[i]
        return (
            f"box {_fmt(objects[i].bbox)} is {loose[k]:.3g} px loose around its mask "
            f"{_fmt([left, top, right - left, bottom - top])}"
        )

    # Rounded by np.round, as round() of the numpy floats these values were: the same values.
    values = table.loose_rounded[chosen]
    yield ObjectMeasurements.of("box_tightness_px", values, chosen, table.annotation_ids, describe)


@register(
    "precision_mask_consistency",
    measures=[
        Measure("mask_empty", "object"),
        Measure("mask_unreadable", "object"),
        Measure("mask_parts_left_out", "object"),
        Measure("mask_outside_box_px", "px"),
        Measure("mask_outside_foreground_px", "px"),
    ],
)
def mask_consistency(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Masks are readable, of every polygon part the file gives, non-empty, inside their box
    and (synthetic) on the drawn object."""
    sample = item.sample
    table = objects_of(item)
    for i, parts in zip(table.left_out_at.tolist(), table.left_out, strict=True):
        yield _measure(
            table,
            i,
            "mask_parts_left_out",
            1,
            f"segmentation parts left out (the mask is measured without them): {parts}; "
            "fix or remove them",
        )
    if table.mask_flagged.any():
        for i in np.flatnonzero(table.mask_flagged).tolist():
            problem = table.mask_problem(i)
            if problem:
                yield _measure(table, i, "mask_unreadable", 1, f"segmentation unusable: {problem}")
            elif table.mask_areas[i] == 0:
                yield _measure(table, i, "mask_empty", 1, "mask has no pixels")
            else:
                out = table.mask_outside[i]
                yield _measure(
                    table,
                    i,
                    "mask_outside_box_px",
                    float(round3(out)),
                    f"mask reaches {out:.3g} px beyond its box {_fmt(sample.objects[i].bbox)}",
                )
    masked = table.masked
    if item.foreground is not None and len(masked) and _fits(item.foreground, sample):
        drawn = foreground_rle(item)
        for i in masked.tolist():
            area = table.mask_areas[i]
            if area == 0:
                continue
            on = mask_utils.merge([sample.objects[i].mask, drawn], intersect=True)
            stray = int(area - mask_utils.area(on))
            if stray:
                yield _measure(
                    table,
                    i,
                    "mask_outside_foreground_px",
                    stray,
                    f"{stray} mask px lie where the generator drew no object",
                )


@register(
    "completeness_unlabelled_foreground",
    measures=[Measure("unlabelled_px", "px"), Measure("unlabelled_percent", "%", most=100)],
    applies=lambda item: item.foreground is not None,
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
    rles = [sample.objects[i].mask for i in objects_of(item).masked.tolist()]
    if rles and count:
        labelled = mask_utils.merge(rles, intersect=False)
        count -= int(mask_utils.area(mask_utils.merge([drawn_rle, labelled], intersect=True)))
    percent = 100.0 * count / max(foreground.size, 1)
    message = f"{count} px ({percent:.2f} % of the image) of drawn objects carry no label"
    yield Measurement("unlabelled_px", count, message)
    yield Measurement("unlabelled_percent", round(percent, 4), message)


@register(
    "correctness_duplicate_boxes",
    measures=[Measure("duplicate_iou", "IoU", most=1)],
)
def duplicate_boxes(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Found]:
    """Highest overlap of each instance with an earlier one of its class (mask IoU if both have
    masks, else box IoU): the same object labelled twice."""
    table = objects_of(item)
    chosen = np.flatnonzero(table.duplicate)
    if not len(chosen):
        return
    # Class by class (in order of first appearance), each in object order.
    chosen = chosen[np.argsort(table.duplicate_rank[chosen], kind="stable")]
    unrounded = table.duplicate_iou[chosen].tolist()

    def describe(k: int) -> str:
        other = int(table.duplicate_of[chosen[k]])
        other_id = table.annotation_ids[other]
        ref = f"annotation {other_id}" if other_id is not None else f"object {other}"
        kind = "mask" if table.duplicate_by_mask[chosen[k]] else "box"
        return f"{kind} IoU {unrounded[k]:.2f} with {ref} of the same class"

    values = np.asarray([round(value, 4) for value in unrounded])
    yield ObjectMeasurements.of("duplicate_iou", values, chosen, table.annotation_ids, describe)


@register(
    "clarity_visible_fraction",
    measures=[Measure("visible_fraction", "fraction", worse="lower", most=1)],
)
def visible_fraction(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Found]:
    """How much of each object is visible (occlusion): heavily hidden objects are ambiguous."""
    table = objects_of(item)
    chosen = np.flatnonzero(table.instances)
    if not len(chosen):
        return
    objects = item.sample.objects
    visible = table.visible[chosen]

    def describe(k: int) -> str:
        return f"{shown_share(objects[chosen[k]].visible_fraction)} of the object is visible"

    yield ObjectMeasurements.of("visible_fraction", visible, chosen, table.annotation_ids, describe)


@register("clarity_crowd_regions", measures=[Measure("crowd_region", "object")])
def crowd_regions(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Crowd regions label a group as one region: usable, but no instance is separable."""
    table = objects_of(item)
    if not table.crowd.any():
        return
    objects = item.sample.objects
    for i in np.flatnonzero(table.crowd).tolist():
        obj = objects[i]
        yield _measure(table, i, "crowd_region", 1, _crowd_message(obj))


def _crowd_message(obj: Any) -> str:
    """Why an object is a crowd region, and what to do: copy_paste writes one for an object
    its pastes left too hidden (`pasted` in its attributes), where the fix of a dataset's
    crowd region (relabel it as an instance) does not apply."""
    region = f"crowd region of {obj.category!r} ({obj.area:g} px)"
    pasted = obj.attributes.get("pasted")
    if pasted is not None:
        what = "a pasted instance that later pastes" if pasted else "a background object pastes"
        return (
            f"{region}: {what} left {shown_share(obj.visible_fraction)} visible, too little to be an "
            "instance; written as a crowd region so that COCOeval and trainers ignore it "
            "rather than learn it as background"
        )
    return (
        f"{region}: instances not separable, and COCOeval ignores crowd regions; if it holds "
        "one instance, label it as one: CVAT's COCO export (datumaro) writes every mask as a "
        "crowd region, datumaro's `-- --segmentation-mode polygons` writes instances"
    )


def shown_share(fraction: float) -> str:
    """A fraction as a whole percentage that never reads as none or all of it when it is
    neither: "<1%" for 0.3 %, ">99%" for 99.6 %. The findings' visible shares use it, and so
    does the review page's (api/view.py)."""
    shown = f"{fraction:.0%}"
    if shown == "0%" and fraction > 0:
        return "<1%"
    if shown == "100%" and fraction < 1:
        return ">99%"
    return shown


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
    measures=[Measure("requested_box_iou", "", worse="lower", most=1)],
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
                objects_of(item),
                index,
                "requested_box_iou",
                value,
                f"{obj.category}: IoU {value:.2f} with the requested box",
            )
