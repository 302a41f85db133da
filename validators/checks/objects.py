"""What the label checks measure of a sample's objects, computed once per sample as columns.

`objects_of(item)` is the sample's `ObjectTable`, kept in `item.cache`: per object its box
edges (NaN where the box is not four finite numbers), crowd flag, annotation id and visible
fraction, why its mask cannot be used (None when it can), and for every usable mask the tight box
and pixel count pycocotools reads from the RLE (`toBbox`, `area`: one call each for the whole
sample, no mask decoded). Every label check of image.py reads it, so a box is parsed and a mask
measured once per sample, whatever the number of checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from synthgate.samples import ObjectLabel
from synthgate.validators.checks.base import CheckInput


def annotation_id(obj: ObjectLabel) -> int | None:
    value = obj.attributes.get("annotation_id")
    return int(value) if isinstance(value, int) else None


def is_crowd(obj: ObjectLabel) -> bool:
    return bool(obj.attributes.get("iscrowd", False))


def _edges(bbox: list[float]) -> tuple[float, float, float, float] | None:
    """(x0, y0, x1, y1) of a box of four finite numbers whose far edges are finite too."""
    if len(bbox) != 4 or not all(isinstance(v, int | float) and math.isfinite(v) for v in bbox):
        return None
    x, y, w, h = bbox
    x1, y1 = x + w, y + h
    if not (math.isfinite(x1) and math.isfinite(y1)):  # 1e308 + 1e308: no box either
        return None
    return x, y, x1, y1


def mask_problem(obj: ObjectLabel, height: int | None, width: int | None) -> str | None:
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
    expected = [height, width]
    if None not in expected and [int(v) for v in size] != expected:
        return f"mask size {list(size)} differs from the image size {expected}"
    return None


@dataclass
class ObjectTable:
    """A sample's objects as columns (index = object index)."""

    boxes: list[list[float]]  # as labelled, for messages
    edges: np.ndarray  # (n, 4) float64 x0, y0, x1, y1; NaN rows: not a box
    boxed: np.ndarray  # (n,) bool: the box has edges
    crowd: np.ndarray  # (n,) bool
    annotation_ids: list[int | None]
    mask_problems: list[str | None]
    masked: np.ndarray  # int64 indices of the objects with a usable mask, in order
    mask_edges: np.ndarray  # (n, 4) float64 of the mask's pixels; NaN rows: no usable mask
    mask_areas: np.ndarray  # (n,) float64 pixel count; NaN: no usable mask

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def of(cls, objects: list[ObjectLabel], height: int | None, width: int | None) -> ObjectTable:
        count = len(objects)
        edges = np.full((count, 4), np.nan)
        boxed = np.zeros(count, dtype=bool)
        crowd = np.zeros(count, dtype=bool)
        problems: list[str | None] = []
        masked: list[int] = []
        for i, obj in enumerate(objects):
            found = _edges(obj.bbox)
            if found is not None:
                edges[i] = found
                boxed[i] = True
            crowd[i] = is_crowd(obj)
            problem = mask_problem(obj, height, width)
            problems.append(problem)
            if obj.mask is not None and problem is None:
                masked.append(i)
        mask_edges = np.full((count, 4), np.nan)
        mask_areas = np.full(count, np.nan)
        if masked:
            rles = [objects[i].mask for i in masked]
            found_boxes = mask_utils.toBbox(rles)
            mask_edges[masked, :2] = found_boxes[:, :2]
            mask_edges[masked, 2:] = found_boxes[:, :2] + found_boxes[:, 2:]
            mask_areas[masked] = mask_utils.area(rles)
        return cls(
            boxes=[obj.bbox for obj in objects],
            edges=edges,
            boxed=boxed,
            crowd=crowd,
            annotation_ids=[annotation_id(obj) for obj in objects],
            mask_problems=problems,
            masked=np.asarray(masked, dtype=np.int64),
            mask_edges=mask_edges,
            mask_areas=mask_areas,
        )


def objects_of(item: CheckInput) -> ObjectTable:
    """The sample's object table, computed on first use and shared by every check."""
    table: Any = item.cache.get("objects")
    if table is None:
        sample = item.sample
        table = item.cache["objects"] = ObjectTable.of(sample.objects, sample.height, sample.width)
    return table
