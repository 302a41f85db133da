"""What the label checks measure of a sample's objects, computed once as columns.

`objects_of(item)` is the sample's `ObjectTable`, kept in `item.cache`: per object its box
edges, crowd flag, annotation id and visible fraction, whether its mask can be used (and why not)
and which polygon parts it was made without,
the tight box and pixel count pycocotools reads from the mask (`toBbox`, `area`; no mask is
decoded), and the measures several checks share: the box's shorter side, how loose it sits
around its mask, how far the mask reaches past the box's pixel grid, whether the box is broken
or leaves the image. Every label check of image.py reads the table, so nothing is measured
twice.

A sample from a generator gets its table from its objects (`ObjectTable.of`). A COCO file gets
one table for all its annotations at once (`ObjectTable.of_columns`, numpy over every row), and
each image a slice of it (`view`), handed over in `extras["object_table"]`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from synthgate.formats.coco_annotations import ObjectColumns
from synthgate.masks import box_edges, rle_areas
from synthgate.samples import ObjectLabel
from synthgate.validators.checks.base import CheckInput
from synthgate.validators.checks.duplicates import duplicates

GRID_EPS = 1e-6  # float noise in box coordinates written by other tools
NOT_RLE = "mask is not a COCO RLE {size: [h, w], counts}"


def annotation_id(obj: ObjectLabel) -> int | None:
    value = obj.attributes.get("annotation_id")
    return int(value) if isinstance(value, int) else None


def is_crowd(obj: ObjectLabel) -> bool:
    return bool(obj.attributes.get("iscrowd", False))


def _mask_problem(obj: ObjectLabel) -> str | None:
    """Why an object's mask cannot be used, the image size aside (None: usable or none)."""
    error = obj.attributes.get("segmentation_error")
    if error:
        return str(error)
    mask = obj.mask
    if mask is None:
        return None
    size = mask.get("size")
    if not isinstance(size, list | tuple) or len(size) != 2 or "counts" not in mask:
        return NOT_RLE
    return None


def round3(values: np.ndarray) -> np.ndarray:
    """`round(v, 3)` of numpy floats (np.round), without the overflow of huge values (which
    have no digits to round)."""
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = np.round(values, 3)
    return np.where(np.abs(values) < 1e15, rounded, values)


class _AnnotationIds(Sequence[int | None]):
    """Annotation ids of a table's objects, read only when a finding names one."""

    def __init__(self, table: ObjectTable) -> None:
        self.table = table

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: Any) -> Any:
        return self.table.annotation_id(int(index))


@dataclass
class ObjectTable:
    """Objects as columns (index = object index in the sample, or row in a file)."""

    edges: np.ndarray  # (n, 4) x0, y0, x1, y1; NaN rows: not four finite numbers
    crowd: np.ndarray  # bool
    visible: np.ndarray  # float64
    ids: np.ndarray  # int64 annotation id (where `has_id`)
    has_id: np.ndarray  # bool
    other_id_at: np.ndarray  # int64 indices whose id is an int outside int64 (or a bool)
    other_ids: list[Any]  # those ids, read with `int`
    mask_boxes: np.ndarray  # (n, 4) x0, y0, x1, y1 of the mask's pixels; NaN: no usable mask
    mask_areas: np.ndarray  # pixel count; NaN: no usable mask
    problem_at: np.ndarray  # int64 indices whose mask cannot be used, ascending
    problems: list[str]  # why, for each of `problem_at`
    left_out_at: np.ndarray  # int64 indices whose polygons hold parts that are no polygon
    left_out: list[str]  # which parts and why, for each of `left_out_at` (the rest measured)
    image_sizes: np.ndarray  # (n, 2) h, w of the object's image; NaN: unknown
    # Measured from the above (NaN where the measure does not apply):
    instances: np.ndarray  # bool: not a crowd region
    sides: np.ndarray  # shorter box side, instances with a box
    sized: np.ndarray  # bool: where `sides` is measured
    loose: np.ndarray  # how far the box reaches past its mask (unrounded)
    loose_rounded: np.ndarray  # the same to 3 decimals, as the measurement reports it
    tightness: np.ndarray  # bool: where `loose` is measured
    mask_outside: np.ndarray  # how far the mask reaches past the box's pixel grid
    box_flagged: np.ndarray  # bool: no positive box, or one leaving the image
    mask_flagged: np.ndarray  # bool: unusable or empty mask, or one leaving its box
    duplicate: np.ndarray  # bool: an earlier instance of the class is in the image
    duplicate_iou: np.ndarray  # the highest IoU with one (unrounded)
    duplicate_of: np.ndarray  # int64: which (index in the image)
    duplicate_by_mask: np.ndarray  # bool: mask IoU (else box IoU)
    duplicate_rank: np.ndarray  # int64: rank of the object's class by first appearance

    def __len__(self) -> int:
        return len(self.crowd)

    @property
    def masked(self) -> np.ndarray:
        """Indices of the objects with a usable mask, ascending."""
        return np.flatnonzero(~np.isnan(self.mask_areas))

    @property
    def annotation_ids(self) -> Sequence[int | None]:
        return _AnnotationIds(self)

    def annotation_id(self, index: int) -> int | None:
        if not self.has_id[index]:
            return None
        other = _lookup(self.other_id_at, self.other_ids, index)
        return int(self.ids[index]) if other is None else int(other)

    def mask_problem(self, index: int) -> str | None:
        return _lookup(self.problem_at, self.problems, index)

    def parts_left_out(self, index: int) -> str | None:
        return _lookup(self.left_out_at, self.left_out, index)

    def view(self, start: int, stop: int) -> ObjectTable:
        """Rows start..stop as a table of their own (numpy views: nothing copied)."""
        chosen = slice(start, stop)
        view = object.__new__(ObjectTable)  # a copy of fields, each sliced: no checks to rerun
        fields = view.__dict__
        for name in ROW_COLUMNS:
            fields[name] = self.__dict__[name][chosen]
        lo, hi = np.searchsorted(self.problem_at, (start, stop)).tolist()
        fields["problem_at"] = self.problem_at[lo:hi] - start
        fields["problems"] = self.problems[lo:hi]
        lo, hi = np.searchsorted(self.other_id_at, (start, stop)).tolist()
        fields["other_id_at"] = self.other_id_at[lo:hi] - start
        fields["other_ids"] = self.other_ids[lo:hi]
        lo, hi = np.searchsorted(self.left_out_at, (start, stop)).tolist()
        fields["left_out_at"] = self.left_out_at[lo:hi] - start
        fields["left_out"] = self.left_out[lo:hi]
        return view

    @classmethod
    def of(cls, objects: list[ObjectLabel], height: int | None, width: int | None) -> ObjectTable:
        """The table of one sample's objects, in an image of `height` x `width`."""
        count = len(objects)
        edges = np.full((count, 4), np.nan)
        problems: dict[int, str] = {}
        masked: list[int] = []
        for i, obj in enumerate(objects):
            found = box_edges(obj.bbox)
            if found is not None:
                edges[i] = found
            problem = _mask_problem(obj)
            if problem is None and obj.mask is not None:
                size = obj.mask["size"]
                if (
                    height is not None
                    and width is not None
                    and [int(v) for v in size]
                    != [
                        height,
                        width,
                    ]
                ):
                    problem = (
                        f"mask size {list(size)} differs from the image size {[height, width]}"
                    )
            if problem is not None:
                problems[i] = problem
            elif obj.mask is not None:
                masked.append(i)
        mask_boxes = np.full((count, 4), np.nan)
        mask_areas = np.full(count, np.nan)
        if masked:
            rles = [mask for i in masked if (mask := objects[i].mask) is not None]  # each one
            found_boxes = mask_utils.toBbox(rles)
            mask_boxes[masked, :2] = found_boxes[:, :2]
            mask_boxes[masked, 2:] = found_boxes[:, :2] + found_boxes[:, 2:]
            mask_areas[masked] = rle_areas(rles)
        ids = [annotation_id(obj) for obj in objects]
        left_out = {
            i: str(note)
            for i, obj in enumerate(objects)
            if i not in problems and (note := obj.attributes.get("segmentation_parts_left_out"))
        }
        codes: dict[str, int] = {}
        return cls._measured(
            classes=np.array(
                [codes.setdefault(o.category, len(codes)) for o in objects], dtype=np.int64
            ),
            boxes=np.array(
                [
                    o.bbox if not np.isnan(edges[i, 0]) else [np.nan] * 4
                    for i, o in enumerate(objects)
                ],
                dtype=np.float64,
            ).reshape(-1, 4),
            segments=np.array([0, count], dtype=np.int64),
            rle_of=lambda i: objects[i].mask,
            edges=edges,
            crowd=np.array([is_crowd(obj) for obj in objects], dtype=bool),
            visible=np.array([obj.visible_fraction for obj in objects], dtype=np.float64),
            ids=np.array([0 if v is None or not _int64(v) else v for v in ids], dtype=np.int64),
            has_id=np.array([v is not None for v in ids], dtype=bool),
            other_id_at=np.array(
                [i for i, v in enumerate(ids) if v is not None and not _int64(v)], dtype=np.int64
            ),
            other_ids=[v for v in ids if v is not None and not _int64(v)],
            mask_boxes=mask_boxes,
            mask_areas=mask_areas,
            problem_at=np.array(sorted(problems), dtype=np.int64),
            problems=[problems[i] for i in sorted(problems)],
            left_out_at=np.array(sorted(left_out), dtype=np.int64),
            left_out=[left_out[i] for i in sorted(left_out)],
            image_sizes=np.tile(
                [np.nan if height is None else height, np.nan if width is None else width],
                (count, 1),
            ),
        )

    @classmethod
    def of_columns(cls, columns: ObjectColumns) -> ObjectTable:
        """The table of a whole file's annotations (rows as in `columns`)."""
        boxes = columns.boxes
        edges = np.where(
            columns.box_ok[:, None],
            np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1),
            np.nan,
        )
        problems = dict(columns.errors)
        heights, widths = columns.image_sizes.T
        known = ~np.isnan(heights) & ~np.isnan(widths)
        wrong = (
            columns.has_mask
            & known
            & ((columns.mask_sizes[:, 0] != heights) | (columns.mask_sizes[:, 1] != widths))
        )
        for row in np.flatnonzero(wrong).tolist():
            size = columns.mask_sizes[row].tolist()
            expected = [int(heights[row]), int(widths[row])]
            problems[row] = f"mask size {size} differs from the image size {expected}"
        usable = columns.has_mask & ~wrong
        usable[list(columns.errors)] = False
        mask_boxes = np.where(
            usable[:, None],
            np.concatenate(
                [columns.mask_boxes[:, :2], columns.mask_boxes[:, :2] + columns.mask_boxes[:, 2:]],
                axis=1,
            ),
            np.nan,
        )
        at = np.array(sorted(problems), dtype=np.int64)
        other_at = sorted(row for row in columns.other_ids if columns.has_id[row])
        left_out_at = sorted(row for row in columns.parts_left_out if row not in problems)
        return cls._measured(
            classes=columns.classes,
            boxes=columns.boxes,
            segments=columns.segments,
            rle_of=columns.rle,
            edges=edges,
            crowd=columns.crowd,
            visible=columns.visible,
            ids=columns.ids,
            has_id=columns.has_id,
            other_id_at=np.array(other_at, dtype=np.int64),
            other_ids=[columns.other_ids[row] for row in other_at],
            mask_boxes=mask_boxes,
            mask_areas=np.where(usable, columns.mask_areas, np.nan),
            problem_at=at,
            problems=[problems[row] for row in at.tolist()],
            left_out_at=np.array(left_out_at, dtype=np.int64),
            left_out=[columns.parts_left_out[row] for row in left_out_at],
            image_sizes=columns.image_sizes,
        )

    @classmethod
    def _measured(
        cls,
        *,
        classes: np.ndarray,
        boxes: np.ndarray,
        segments: np.ndarray,
        rle_of: Callable[[int], Any],
        **columns: Any,
    ) -> ObjectTable:
        """The table with the shared measures worked out, for every object at once: `classes`
        (int codes), `boxes` (x, y, w, h) and `rle_of` (a row's mask) feed the duplicates,
        found within each image (`segments`: where each image's rows start, and the end)."""
        edges, crowd = columns["edges"], columns["crowd"]
        mask_boxes, mask_areas = columns["mask_boxes"], columns["mask_areas"]
        x0, y0, x1, y1 = edges.T
        boxed = ~np.isnan(x0)
        with np.errstate(invalid="ignore", over="ignore"):
            boxed &= np.isfinite(x1) & np.isfinite(y1)  # x + w past the float range: no box
            edges[~boxed] = np.nan
            sides = np.where(boxed & ~crowd, np.maximum(np.minimum(x1 - x0, y1 - y0), 0.0), np.nan)
            mx0, my0, mx1, my1 = mask_boxes.T
            measured = boxed & (mask_areas != 0) & ~np.isnan(mask_areas)
            zero = np.zeros(len(x0))
            loose = np.maximum.reduce([mx0 - x0, my0 - y0, x1 - mx1, y1 - my1, zero])
            loose = np.where(measured, loose, np.nan)
            # The box's pixel grid: every pixel the (float) box touches. Real files' polygons
            # are rasterised to whole pixels, so a mask may fill a pixel the box only grazes.
            gx0, gy0 = np.floor(x0 + GRID_EPS), np.floor(y0 + GRID_EPS)
            gx1, gy1 = np.ceil(x1 - GRID_EPS), np.ceil(y1 - GRID_EPS)
            right, bottom = mx1 - gx1, my1 - gy1
            # COCO's crowd regions (and CVAT's, through datumaro) box the mask to its last
            # pixel, [x0, y0, x1 - x0, y1 - y0]: 1 px short of it on the right and the bottom.
            right = np.where(crowd & (right == 1), 0.0, right)
            bottom = np.where(crowd & (bottom == 1), 0.0, bottom)
            outside = np.maximum.reduce([gx0 - mx0, gy0 - my0, right, bottom, zero])
            outside = np.where(measured, outside, np.nan)
            heights, widths = columns["image_sizes"].T
            beyond = np.maximum.reduce([-x0, -y0, x1 - widths, y1 - heights]) > 0
            box_flagged = ~boxed | (x1 <= x0) | (y1 <= y0) | beyond
            mask_flagged = (mask_areas == 0) | (outside > 0)
        mask_flagged[columns["problem_at"]] = True
        # A crowd region is no instance: it is compared with the crowd regions of its class
        # (the same region labelled twice), never with the instances it holds.
        found = duplicates(
            classes=classes * 2 + crowd,
            candidates=boxed,
            boxes=boxes,
            mask_edges=mask_boxes,
            mask_areas=mask_areas,
            segments=segments,
            rle_of=rle_of,
        )
        return cls(
            **columns,
            duplicate=~np.isnan(found.iou),
            duplicate_iou=found.iou,
            duplicate_of=found.other,
            duplicate_by_mask=found.with_masks,
            duplicate_rank=found.rank,
            instances=~crowd,
            sides=sides,
            sized=~np.isnan(sides),
            loose=loose,
            loose_rounded=round3(loose),
            tightness=measured,
            mask_outside=outside,
            box_flagged=box_flagged,
            mask_flagged=mask_flagged,
        )


# The table's per-row columns: every field but the sparse lookups, sliced by `view`.
ROW_COLUMNS = tuple(
    f.name
    for f in dataclasses.fields(ObjectTable)
    if f.name
    not in {"problem_at", "problems", "other_id_at", "other_ids", "left_out_at", "left_out"}
)


def _int64(value: int) -> bool:
    return type(value) is int and -(2**63) <= value < 2**63


def _lookup(at: np.ndarray, values: list[Any], index: int) -> Any:
    """values[k] where at[k] == index (`at` ascending), else None."""
    k = int(np.searchsorted(at, index))
    return values[k] if k < len(at) and at[k] == index else None


def objects_of(item: CheckInput) -> ObjectTable:
    """The sample's object table: handed over by its source, else made on first use."""
    table: Any = item.cache.get("objects")
    if table is None:
        table = item.extras.get("object_table")
        if table is None:
            sample = item.sample
            table = ObjectTable.of(sample.objects, sample.height, sample.width)
        item.cache["objects"] = table
    return table
