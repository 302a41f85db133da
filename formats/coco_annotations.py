"""A COCO file's annotations as columns, and the file's images as Samples built from them.

`AnnotationColumns` takes annotations one at a time, as a streamed file hands them over
(coco_reader.py), and keeps of each only what a `Sample` needs, converted once: ids in int64
columns (other values aside), the box in a float64 column, area, crowd flag and visible fraction,
the mask as compressed RLE (polygons rasterised by pycocotools as they arrive), or why it cannot
be read. A million annotations take a few hundred megabytes instead of the gigabytes of their
parsed JSON. Whole columns are checked with numpy (finite boxes and areas, every polygon
coordinate), never one Python call per number.

`finish(images)` groups the rows by image and measures every mask once (pycocotools `toBbox`
and `area`, in bulk); `samples(categories, source=...)` then yields one `Sample` per image, in
file order, with its annotations in file order: the Samples `coco_to_samples` has always made of
a COCO dict (which it now makes through these columns). Polygons whose image size was not known
when they were read (images after the annotations) are rasterised in `finish`; those of an id
two images of different sizes share, with each image.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from synthgate.errors import quoted
from synthgate.formats.coco import coco_image_to_sample, mapping_of, size_of, whole_id
from synthgate.masks import (
    finite_number,
    finite_numbers,
    mask_size_problem,
    polygon_part_problem,
    polygon_problem,
    segmentation_to_rle,
)
from synthgate.samples import Sample

INT64 = (-(2**63), 2**63 - 1)
NUMBER = {int, float}
FLOAT = {float}
AMBIGUOUS = (-1, -1)  # an image id shared by images of different sizes
MEASURE_CHUNK = 255  # masks per pycocotools call: its `area` cannot count more (numpy 2)
Size = tuple[int | None, int | None]
# (height, width) an image entry's file has, None where unknown (validate reads it with --images)
SizeReader = Callable[[dict[str, Any]], tuple[int, int] | None]


def _hashable_get(mapping: Mapping[Any, Any], key: Any) -> Any:
    try:
        return mapping.get(key)
    except TypeError:  # an unhashable id names nothing
        return None


def _in_int64(value: int | float) -> bool:
    return bool(INT64[0] <= value <= INT64[1])


def _box(bbox: Any) -> list[float]:
    """The box as floats, or [] unless it is a list of finite numbers."""
    try:
        if isinstance(bbox, list) and all(map(finite_number, bbox)):
            return [float(v) for v in bbox]
    except OverflowError:  # an int too large for a float
        pass
    return []


def _visible(mark: Any) -> float:
    visible = mapping_of(mark).get("visible_fraction", 1.0)
    try:
        return float(visible) if finite_number(visible) and 0 <= visible <= 1 else 1.0
    except OverflowError:
        return 1.0


def _polygon(points: Any) -> list[float] | None:
    """A polygon's coordinates, or None unless it is a flat list of at least three finite
    (x, y) pairs (floats as they are, ints as floats)."""
    if not isinstance(points, list) or len(points) < 6 or len(points) % 2:
        return None
    if not finite_numbers(points):
        return None
    return points if set(map(type, points)) == FLOAT else [float(v) for v in points]


def _polygons(segmentation: list[Any]) -> list[list[float]] | str:
    """The usable polygons of a polygon segmentation, or why it cannot be read."""
    try:
        return [p for p in map(_polygon, segmentation) if p is not None]
    except OverflowError as error:
        return str(error)


def _parts_left_out(segmentation: list[Any]) -> str:
    """The parts of a polygon segmentation that are no polygon, each with why ("polygon 1 has
    2 point(s); a polygon needs at least 3")."""
    found = []
    for part, points in enumerate(segmentation):
        problem = polygon_part_problem(points)
        if problem is not None:
            found.append(f"polygon {part} {problem}")
    return ", ".join(found)


def _rasterise(
    polygons: Any, size: Size, image_id: Any, *, file_read: bool = False
) -> tuple[str, list[int]] | str:
    """(counts, [h, w]) of the polygons' union in image `image_id` of `size`, or why not
    (`file_read`: the image's file was looked for to tell a size the entry lacks)."""
    height, width = size
    if height is None or width is None:
        return _no_size(size, image_id, file_read=file_read)
    if isinstance(polygons, str):
        return polygons
    if not len(polygons):
        return "no polygon with at least 3 finite points"
    # what pycocotools would crash on, or need gigabytes for (masks.py): ~2 us a polygon
    problem = mask_size_problem(height, width) or next(
        filter(None, map(polygon_problem, polygons)), None
    )
    if problem is not None:
        return problem
    rles = mask_utils.frPyObjects(polygons, height, width)
    # The union of one polygon is itself: merge would decode and re-encode the same counts.
    rle = rles[0] if len(rles) == 1 else mask_utils.merge(rles)
    return rle["counts"].decode("ascii"), [int(rle["size"][0]), int(rle["size"][1])]


def _no_size(size: Size, image_id: Any, *, file_read: bool = False) -> str:
    """Why polygons of an image entry without a size cannot be drawn: the entry's fault, not
    theirs (`file_read`: its file, looked for in the images folder, told none either)."""
    height, width = size
    sides = " and ".join(name for name, side in (("width", width), ("height", height)) if not side)
    where = (
        f"give its {sides} in images[] (its file in the images folder is not there or is "
        "no readable image, so it tells none)"
        if file_read
        else f"give its {sides} in images[], or validate with the images folder, whose file "
        "tells the size"
    )
    return (
        f"the entry of image {quoted(image_id)} has no {sides} (pixels > 0), the size its "
        f"polygons are drawn at; {where}"
    )


@dataclass
class ObjectColumns:
    """Every annotation of a file as columns, rows grouped by image (`AnnotationColumns.order`):
    what label checks measure, without a Python object per annotation."""

    boxes: np.ndarray  # (n, 4) float64 x, y, w, h
    box_ok: np.ndarray  # bool: four finite numbers
    crowd: np.ndarray  # bool
    visible: np.ndarray  # float64
    ids: np.ndarray  # int64 annotation ids
    has_id: np.ndarray  # bool: the id is an int (a whole float read as one; bool, huge ints too)
    has_mask: np.ndarray  # bool: the segmentation is a mask (RLE counts)
    mask_sizes: np.ndarray  # (n, 2) int64 h, w of the mask
    mask_boxes: np.ndarray  # (n, 4) float64 toBbox (NaN: no mask)
    mask_areas: np.ndarray  # (n,) float64 pixel count (NaN: no mask)
    image_sizes: np.ndarray  # (n, 2) float64 h, w of the row's image (NaN: unknown)
    classes: np.ndarray  # int64: equal where the category names are equal
    segments: np.ndarray  # where each image id's rows start (rows of no image first), and n
    errors: dict[int, str]  # row -> why the segmentation cannot be read
    parts_left_out: dict[int, str]  # row -> its polygon parts that are no polygon, and why
    other_ids: dict[int, Any]  # row -> an id that is not an int64 value
    counts: list[str | None]  # compressed RLE counts (None: no mask)

    def rle(self, row: int) -> dict[str, Any]:
        """The row's mask as pycocotools reads it."""
        return {"size": self.mask_sizes[row].tolist(), "counts": self.counts[row]}


@dataclass
class Group:
    """The rows of one image id, in file order, and the size its rows' masks were made for
    (None: its images differ in size, each rasterises its waiting polygons itself)."""

    start: int  # into `AnnotationColumns.order`
    stop: int
    size: Size | None


class AnnotationColumns:
    """Annotations as columns, one row per annotation object, in file order.

    `read_size`: the (height, width) of an image entry's file (validate reads its header when
    given an images folder): an entry without a usable width or height gets its file's, for
    its polygons and its Sample, and entries that have one never call it."""

    def __init__(self, *, read_size: SizeReader | None = None) -> None:
        self.read_size = read_size
        self.clear()

    def clear(self) -> None:
        """Forget every annotation (the file is read again from the start)."""
        self.rows = 0
        # Ids: the int64 value, else 0 with the value kept aside (None: absent).
        self.ids = array("q")
        self.other_ids: dict[int, Any] = {}
        self.image_ids = array("q")
        self.other_image_ids: dict[int, Any] = {}
        self.category_ids = array("q")
        self.other_category_ids: dict[int, Any] = {}
        self.boxes = array("d")  # four per row; rows in `other_boxes` hold their own list
        self.other_boxes: dict[int, list[float]] = {}
        self.box_errors: dict[int, str] = {}  # why a row's bbox is no box, in the file's words
        self.areas = array("d")
        self.crowd = bytearray()
        self.visible = array("d")
        self.counts: list[str | None] = []  # compressed RLE counts; None: no mask
        self.mask_sizes = array("q")  # (h, w) per row
        self.errors: dict[int, str] = {}  # why the segmentation cannot be read
        # polygon parts that are no polygon, beside ones that are (measured without them)
        self.parts_left_out: dict[int, str] = {}
        self.waiting: dict[int, list[Any] | str] = {}  # polygons without an image size
        self._sizes: dict[Any, Size] | None = None
        self.file_sizes: dict[int, tuple[int, int]] = {}  # image position -> `read_size`'s
        # Made by `finish`:
        self.images: list[Any] = []
        self.names: dict[Any, str] = {}  # category id -> name
        self.groups: dict[Any, Group] = {}
        self.order: np.ndarray = np.zeros(0, dtype=np.int64)  # rows, grouped by image id
        self.mask_boxes = np.zeros((0, 4))  # toBbox of each row's mask (NaN: no mask)
        self.mask_areas = np.zeros(0)

    def know_images(self, images: list[Any]) -> None:
        """The file's images, when they come before the annotations: polygons are rasterised
        as they are read (and annotations of no image are not rasterised at all)."""
        self._sizes = self._image_sizes(images)

    def _image_sizes(self, images: list[Any]) -> dict[Any, Size]:
        """(height, width) per image id (`_sizes`), the file's where an entry lacks one."""
        sizes, self.file_sizes = _sizes(images, self.read_size)
        return sizes

    def add(self, annotation: Any) -> bool:
        """Keep one annotation (entries that are not objects are no annotation: skipped).
        True when its id, image_id and category_id are int64 values and it has a bbox: the
        plain entries a dataset tally can count in bulk."""
        if not isinstance(annotation, dict):
            return False
        row = self.rows
        self.rows += 1
        get = annotation.get
        plain = "bbox" in annotation
        key = get("id")
        if type(key) is int and INT64[0] <= key <= INT64[1]:
            self.ids.append(key)
        else:
            self.ids.append(0)
            self.other_ids[row] = key
            plain = False
        image_id = get("image_id")
        if type(image_id) is int and INT64[0] <= image_id <= INT64[1]:
            self.image_ids.append(image_id)
        else:
            self.image_ids.append(0)
            self.other_image_ids[row] = image_id
            plain = False
        category = get("category_id")
        if type(category) is int and INT64[0] <= category <= INT64[1]:
            self.category_ids.append(category)
        else:
            self.category_ids.append(0)
            self.other_category_ids[row] = category
            plain = False
        bbox = get("bbox")
        if type(bbox) is list and len(bbox) == 4 and set(map(type, bbox)) <= NUMBER:
            try:
                self.boxes.fromlist(bbox)  # finite or not: checked for all rows at once
            except OverflowError:
                self.boxes.fromlist([0.0, 0.0, 0.0, 0.0])
                self._keep_other_box(row, bbox)
        else:
            self.boxes.fromlist([0.0, 0.0, 0.0, 0.0])
            self._keep_other_box(row, bbox)
        area: Any = get("area")
        try:
            self.areas.append(float(area) if type(area) in NUMBER else 0.0)  # NaN: at the end
        except OverflowError:
            self.areas.append(0.0)
        self.crowd.append(bool(get("iscrowd", 0)))
        mark = get("synthgate")
        self.visible.append(1.0 if mark is None else _visible(mark))
        segmentation = get("segmentation")
        if segmentation in (None, []):  # none, as has_segmentation reads it; `{}` is unreadable
            self.counts.append(None)
            self.mask_sizes.fromlist([0, 0])
        elif isinstance(segmentation, list):
            points = segmentation[0]
            if (  # one polygon of floats, all finite (inf and NaN propagate through a sum): most
                len(segmentation) == 1
                and type(points) is list
                and len(points) >= 6
                and not len(points) % 2
                and set(map(type, points)) == FLOAT
                and (total := sum(points)) - total == 0
            ):
                self._keep_polygons(row, segmentation, image_id)
            else:
                polygons = _polygons(segmentation)
                if not isinstance(polygons, str) and 0 < len(polygons) < len(segmentation):
                    self.parts_left_out[row] = _parts_left_out(segmentation)
                self._keep_polygons(row, polygons, image_id)
        else:
            try:
                rle = segmentation_to_rle(segmentation, None, None)
            except (ValueError, TypeError, OverflowError) as error:
                self.errors[row] = str(error)
                rle = None
            self.counts.append(None if rle is None else rle["counts"])
            self.mask_sizes.fromlist([0, 0] if rle is None else rle["size"])
        return plain

    def _keep_other_box(self, row: int, bbox: Any) -> None:
        """A bbox that is not four numbers: its floats, and what it is in the file when it is
        no box at all (the Sample's `[]` would say nothing of `["10", "20", "5", "5"]`)."""
        box = self.other_boxes[row] = _box(bbox)
        if len(box) != 4:
            self.box_errors[row] = (
                "bbox is missing"
                if bbox is None
                else f"bbox {quoted(bbox)} is not four finite numbers [x, y, w, h]"
            )

    def _keep_polygons(self, row: int, polygons: list[Any] | str, image_id: Any) -> None:
        """The row's mask from its checked polygons (or why they cannot be read): rasterised now
        if its image's size is known, kept as coordinate arrays until it is."""
        sizes = self._sizes
        size = None if sizes is None else _hashable_get(sizes, image_id)
        if size is not None and size != AMBIGUOUS:
            found = _rasterise(polygons, size, image_id, file_read=self.read_size is not None)
            if isinstance(found, str):
                self.errors[row] = found
            else:
                self.counts.append(found[0])
                self.mask_sizes.fromlist(found[1])
                return
        elif sizes is None or size == AMBIGUOUS:  # rasterised once the image's size is known
            self.waiting[row] = (
                polygons if isinstance(polygons, str) else [np.array(p) for p in polygons]
            )
        # else the annotation belongs to no image: no Sample needs its mask
        self.counts.append(None)
        self.mask_sizes.fromlist([0, 0])

    def finish(self, images: list[Any], categories: list[Any]) -> None:
        """Group the rows by image, rasterise the polygons that waited for their image's size,
        and measure every mask (its tight box and pixel count)."""
        self.images = images
        self.names = {}
        for category in categories:
            if isinstance(category, dict) and "name" in category:
                try:
                    self.names[category.get("id")] = str(category.get("name"))
                except TypeError:
                    continue
        codes, groups = self._group(images)
        for row in list(self.waiting):
            group = groups[codes[row]] if codes[row] >= 0 else None
            if group is None or group.size is None:
                continue  # no image, or images of different sizes: each rasterises its own
            found = _rasterise(
                self.waiting.pop(row),
                group.size,
                self.image_id(row),
                file_read=self.read_size is not None,
            )
            if isinstance(found, str):
                self.errors[row] = found
            else:
                self.counts[row] = found[0]
                self.mask_sizes[2 * row : 2 * row + 2] = array("q", found[1])
        self.mask_boxes = np.full((self.rows, 4), np.nan)
        self.mask_areas = np.full(self.rows, np.nan)
        masked = [row for row, counts in enumerate(self.counts) if counts is not None]
        sizes = np.frombuffer(self.mask_sizes, dtype=np.int64).reshape(-1, 2)
        for start in range(0, len(masked), MEASURE_CHUNK):
            rows = masked[start : start + MEASURE_CHUNK]
            rles = [
                {"size": size, "counts": self.counts[row]}
                for row, size in zip(rows, sizes[rows].tolist(), strict=True)
            ]
            self.mask_boxes[rows] = mask_utils.toBbox(rles)
            self.mask_areas[rows] = mask_utils.area(rles)

    def _group(self, images: list[Any]) -> tuple[np.ndarray, list[Group]]:
        """Group the rows by image id: `order`, `groups`; returns each row's group number
        (-1: no image) and the groups by number."""
        # `know_images` saw these same images when they came first: their sizes are known
        sizes = self._sizes if self._sizes is not None else self._image_sizes(images)
        groups: dict[Any, int] = {}
        for image in images:
            if isinstance(image, dict):
                try:
                    groups.setdefault(image.get("id"), len(groups))
                except TypeError:
                    continue
        codes: np.ndarray = np.full(self.rows, -1, dtype=np.int64)
        # int64 image ids in bulk; a dict matches 1 with 1.0 and True as well, so do these.
        numeric = {}
        for key, group in groups.items():
            if isinstance(key, int | float) and _in_int64(key) and float(key).is_integer():
                numeric[int(key)] = group
        if numeric and self.rows:
            keys = np.array(sorted(numeric), dtype=np.int64)
            values = np.array([numeric[k] for k in sorted(numeric)], dtype=np.int64)
            ids = np.frombuffer(self.image_ids, dtype=np.int64)
            at = np.minimum(np.searchsorted(keys, ids), len(keys) - 1)
            codes = np.where(keys[at] == ids, values[at], -1)
        for row, value in self.other_image_ids.items():
            group = _hashable_get(groups, value)
            codes[row] = -1 if group is None else group
        self.order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[self.order], np.arange(len(groups) + 1)).tolist()
        self.groups = {}
        for key, group in groups.items():
            size = sizes[key]
            self.groups[key] = Group(
                bounds[group], bounds[group + 1], None if size == AMBIGUOUS else size
            )
        return codes, list(self.groups.values())

    def object_columns(self) -> ObjectColumns:
        """The columns in group order (row k is `order[k]`)."""
        order = self.order
        position = np.empty(self.rows, dtype=np.int64)
        position[order] = np.arange(len(order))
        boxes = np.frombuffer(self.boxes, dtype=np.float64).reshape(-1, 4)[order]
        box_ok = np.asarray(np.isfinite(boxes).all(axis=1))
        other = list(self.other_boxes)
        if other:  # boxes of another length, or of values a float cannot hold: no box
            box_ok[position[other]] = False
        ids = np.frombuffer(self.ids, dtype=np.int64)[order]
        has_id = np.ones(self.rows, dtype=bool)
        other_ids = {int(position[row]): whole_id(value) for row, value in self.other_ids.items()}
        if other_ids:
            has_id[list(other_ids)] = [isinstance(v, int) for v in other_ids.values()]
        image_sizes = np.full((self.rows, 2), np.nan)
        for group in self.groups.values():
            if group.size is not None:
                image_sizes[group.start : group.stop] = [
                    np.nan if side is None else side for side in group.size
                ]
        names = [self.category_name(row) for row in self.other_category_ids]
        codes: dict[str, int] = {}
        classes = np.empty(self.rows, dtype=np.int64)
        category_ids = np.frombuffer(self.category_ids, dtype=np.int64)
        values, inverse = np.unique(category_ids, return_inverse=True)
        value_codes = [
            codes.setdefault(self.category_name_of(v), len(codes)) for v in values.tolist()
        ]
        classes[:] = np.asarray(value_codes, dtype=np.int64)[inverse]
        for row, name in zip(self.other_category_ids, names, strict=True):
            classes[row] = codes.setdefault(name, len(codes))
        starts = sorted({group.start for group in self.groups.values()} | {0, self.rows})
        return ObjectColumns(
            boxes=boxes,
            box_ok=box_ok,
            crowd=np.frombuffer(self.crowd, dtype=np.uint8)[order].astype(bool),
            visible=np.frombuffer(self.visible, dtype=np.float64)[order],
            ids=ids,
            has_id=has_id,
            has_mask=np.array([c is not None for c in self.counts], dtype=bool)[order]
            if self.rows
            else np.zeros(0, dtype=bool),
            mask_sizes=np.frombuffer(self.mask_sizes, dtype=np.int64).reshape(-1, 2)[order],
            mask_boxes=self.mask_boxes[order],
            mask_areas=self.mask_areas[order],
            image_sizes=image_sizes,
            classes=classes[order],
            segments=np.asarray(starts, dtype=np.int64),
            errors={int(position[row]): error for row, error in self.errors.items()},
            parts_left_out={int(position[row]): v for row, v in self.parts_left_out.items()},
            other_ids=other_ids,
            counts=[self.counts[row] for row in order.tolist()],
        )

    def category_name_of(self, category: Any) -> str:
        """The class name a category id stands for (`<category id X>` for an unknown id)."""
        name = _hashable_get(self.names, category)
        return f"<category id {category}>" if name is None else name

    def image_id(self, row: int) -> Any:
        """The row's image_id, as the file gives it."""
        return self.other_image_ids.get(row, self.image_ids[row])

    def category_name(self, row: int) -> str:
        category = self.other_category_ids.get(row, self.category_ids[row])
        return self.category_name_of(category)

    def samples(self, *, source: str) -> Iterator[tuple[Sample, Group | None]]:
        """Per image object, in file order: its Sample (annotations in file order) and its
        group of rows, None when it has no annotation."""
        boxes = np.frombuffer(self.boxes, dtype=np.float64).reshape(-1, 4)
        areas = np.frombuffer(self.areas, dtype=np.float64)
        columns: tuple[np.ndarray, ...] = (
            boxes,
            np.asarray(np.isfinite(boxes).all(axis=1)),
            np.where(np.isfinite(areas), areas, 0.0),
            np.frombuffer(self.category_ids, dtype=np.int64),
            np.frombuffer(self.crowd, dtype=np.uint8),
            np.frombuffer(self.visible, dtype=np.float64),
            np.frombuffer(self.ids, dtype=np.int64),
        )
        for position, image in enumerate(self.images):
            if not isinstance(image, dict):
                continue
            group = _hashable_get(self.groups, image.get("id"))
            objects: list[dict[str, Any]] = []
            read = self.file_sizes.get(position)
            if read is not None:  # the file's size, where the entry gives none
                image = {**image, "height": read[0], "width": read[1]}
            if group is not None and group.stop > group.start:
                rows = self.order[group.start : group.stop]
                size = (size_of(image.get("height")), size_of(image.get("width")))
                objects = self._objects(rows, columns, size)
            else:
                group = None
            yield coco_image_to_sample(image, objects, source=source, position=position), group

    def _objects(
        self, rows: np.ndarray, columns: tuple[np.ndarray, ...], size: Size
    ) -> list[dict[str, Any]]:
        """The fields of each row's ObjectLabel (the Sample validates them all in one call)."""
        objects = []
        for row, box, box_ok, area, category, crowd, visible, key in zip(
            rows.tolist(), *(column[rows].tolist() for column in columns), strict=True
        ):
            attributes: dict[str, Any] = {"iscrowd": bool(crowd)}
            if row in self.other_ids:
                key = whole_id(self.other_ids[row])
            if isinstance(key, int):
                attributes["annotation_id"] = key
            mask = None
            if row in self.waiting:
                found = _rasterise(
                    self.waiting[row],
                    size,
                    self.image_id(row),
                    file_read=self.read_size is not None,
                )
                if isinstance(found, str):
                    attributes["segmentation_error"] = found
                else:
                    mask = {"size": list(found[1]), "counts": found[0]}
            elif row in self.errors:
                attributes["segmentation_error"] = self.errors[row]
            elif self.counts[row] is not None:
                mask = {
                    "size": self.mask_sizes[2 * row : 2 * row + 2].tolist(),
                    "counts": self.counts[row],
                }
            if row in self.parts_left_out and "segmentation_error" not in attributes:
                attributes["segmentation_parts_left_out"] = self.parts_left_out[row]
            if row in self.box_errors:
                attributes["bbox_error"] = self.box_errors[row]
            if row in self.other_category_ids:
                category = self.other_category_ids[row]
            objects.append(
                {
                    "category": self.category_name_of(category),
                    "bbox": self.other_boxes.get(row, box if box_ok else []),
                    "mask": mask,
                    "area": area,
                    "visible_fraction": visible,
                    "attributes": attributes,
                }
            )
        return objects


def _sizes(
    images: list[Any], read_size: SizeReader | None
) -> tuple[dict[Any, Size], dict[int, tuple[int, int]]]:
    """(height, width) per image id, AMBIGUOUS where images of different sizes share it; and
    by position, the sizes `read_size` gave entries without a usable width or height."""
    sizes: dict[Any, Size] = {}
    read: dict[int, tuple[int, int]] = {}
    for position, image in enumerate(images):
        if not isinstance(image, dict):
            continue
        size: Size = (size_of(image.get("height")), size_of(image.get("width")))
        if None in size and read_size is not None:
            found = read_size(image)
            if found is not None:
                size = read[position] = found
        try:
            if sizes.setdefault(image.get("id"), size) != size:
                sizes[image.get("id")] = AMBIGUOUS
        except TypeError:
            continue
    return sizes, read


def coco_to_samples(coco: dict[str, Any], *, source: str = "coco") -> Iterator[Sample]:
    """Every image of a COCO dict as a Sample, in file order, its annotations in file order."""
    columns = AnnotationColumns()
    columns.know_images(coco.get("images", []))
    for annotation in coco.get("annotations", []):
        columns.add(annotation)
    columns.finish(coco.get("images", []), coco.get("categories", []))
    for sample, _ in columns.samples(source=source):
        yield sample
