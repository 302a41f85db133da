"""Masks and boxes, over pycocotools: the one home of RLE, polygon and box helpers.

Inside synthgate a mask is COCO compressed RLE with `counts` as str (`{"size": [h, w],
"counts": "..."}`, JSON-ready) and a box is COCO [x, y, w, h] in pixels.

- `encode_mask` / `decode_mask`: bool HxW <-> compressed RLE.
- `segmentation_to_rle`: any COCO segmentation (polygons, uncompressed or compressed RLE) ->
  compressed RLE, or ValueError naming why it cannot be read (`rle_runs` checks a compressed
  string's runs cover the image exactly before pycocotools decodes it); `rle_problem`: why an
  RLE is not the mask of its image (a COCO file's annotation, a reviewer's fix), or None;
  `polygon_problem`: why pycocotools cannot rasterise a polygon safely, or None;
  `polygon_part_problem`: why one part of a polygon segmentation is no polygon, or None.
- `annotation_mask`: a COCO annotation's segmentation as a bool HxW mask.
- `tight_bbox`, `box_edges`, `box_iou`: box geometry.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pycocotools import mask as mask_utils


def finite_number(value: Any) -> bool:
    """A real int or float (not a bool), finite as a float: what a coordinate read from a file
    must be (an int too large for any float is not)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def finite_numbers(values: list[Any]) -> bool:
    """`all(map(finite_number, values))` in C passes for a list of floats and ints (a
    polygon's coordinates: a Python call per number cost seconds on a file of 1M annotations);
    any other list, and one whose sum is not finite, is looked at number by number."""
    types = set(map(type, values))
    if types <= {int, float}:  # bool is a type of its own here: looked at below
        try:
            total = sum(values) if types == {float} else math.fsum(values)
        except (OverflowError, ValueError):  # an int too large for a float; inf - inf
            total = math.nan
        if total - total == 0:  # finite: so is every number (inf and NaN would propagate)
            return True
    return all(map(finite_number, values))


# COCO RLE counts are 32-bit (pycocotools computes a mask's pixel count and its pixel indices in
# 32-bit integers, sides in C ints): a mask beyond these limits would be garbage or a crash.
MASK_PIXEL_LIMIT = 2**32 - 1
MASK_SIDE_LIMIT = 2**31 - 1


def mask_size_problem(height: int, width: int) -> str | None:
    """Why no COCO mask can be `height` x `width`: a negative side, or more pixels than RLE
    counts hold; None for any real image."""
    if height < 0 or width < 0:
        return f"a mask cannot be {width}x{height} (width x height): sides are not negative"
    if max(height, width) > MASK_SIDE_LIMIT or height * width > MASK_PIXEL_LIMIT:
        return (
            f"a {width}x{height} image (width x height) has more pixels than a COCO mask can "
            f"hold ({MASK_PIXEL_LIMIT}: RLE counts are 32-bit)"
        )
    return None


def polygon_part_problem(polygon: Any) -> str | None:
    """Why one part of a COCO polygon segmentation is no polygon ("has 2 point(s); ..."), to
    follow "polygon <part> "; None for a flat list of at least three finite (x, y) pairs."""
    if not isinstance(polygon, list) or len(polygon) % 2:
        return "must be a flat list of x, y pairs"
    if len(polygon) < 6:
        return f"has {len(polygon) // 2} point(s); a polygon needs at least 3"
    if not finite_numbers(polygon):
        return "holds a coordinate that is not a finite number"
    return None


# pycocotools rasterises a polygon by walking its outline in steps of a fifth of a pixel, each
# coordinate times 5 held in a C int, and keeps ~16 bytes per step: a coordinate past 2**31 / 5
# overflows (the process crashes), and a long outline takes memory in proportion (one vertex 1e8
# px away asks for ~24 GB). Polygons of real images are nowhere near either limit.
POLYGON_COORDINATE_LIMIT = 2**24  # px, either sign: times 5 stays well inside a C int
POLYGON_OUTLINE_LIMIT = 2**21  # px of outline, as pycocotools steps it: ~170 MB of steps


def polygon_problem(points: list[float]) -> str | None:
    """Why pycocotools cannot rasterise this polygon (flat x, y, ... finite floats) safely: a
    coordinate beyond POLYGON_COORDINATE_LIMIT or an outline longer than POLYGON_OUTLINE_LIMIT;
    None for any polygon of a real image (the check is two C passes over its coordinates)."""
    low, high = min(points), max(points)
    if low < -POLYGON_COORDINATE_LIMIT or high > POLYGON_COORDINATE_LIMIT:
        far = low if -low > high else high
        return (
            f"polygon coordinate {far:g} is beyond +-{POLYGON_COORDINATE_LIMIT} px: "
            "polygon coordinates are pixels of the image"
        )
    vertices = len(points) // 2
    if vertices * (high - low) <= POLYGON_OUTLINE_LIMIT:  # no edge steps more than high - low
        return None
    xs, ys = points[0::2], points[1::2]
    # pycocotools steps each edge max(|dx|, |dy|) times (closing the polygon)
    outline = sum(
        max(abs(x1 - x0), abs(y1 - y0))
        for x0, y0, x1, y1 in zip(xs, ys, xs[1:] + xs[:1], ys[1:] + ys[:1], strict=True)
    )
    if outline > POLYGON_OUTLINE_LIMIT:
        return (
            f"polygon outline is {outline:.0f} px long, over the {POLYGON_OUTLINE_LIMIT} px "
            "that can be rasterised: polygon coordinates are pixels of the image"
        )
    return None


# The memory order of the masks generators make (numpy's order="F", column-major): the order
# pycocotools encodes RLE in, so `encode_mask` converts them to uint8 with a straight copy, not
# a transposing one (which, for a 640x480 mask, costs more than the encoding), and what they
# are combined into (visible parts, foreground, ignore) keeps it.
MASK_ORDER: Literal["F"] = "F"


def blank_mask(height: int, width: int) -> np.ndarray:
    """An empty HxW bool mask in MASK_ORDER, for a generator to draw objects into."""
    return np.zeros((height, width), dtype=bool, order=MASK_ORDER)


def encode_mask(mask: np.ndarray) -> dict[str, object]:
    """COCO compressed RLE of a bool/uint8 HxW mask, with `counts` as str (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_mask(rle: dict[str, Any]) -> np.ndarray:
    """Bool HxW mask of a compressed RLE dict (counts as str or bytes)."""
    counts = rle["counts"]
    as_bytes = {
        "size": list(rle["size"]),
        "counts": counts.encode() if isinstance(counts, str) else counts,
    }  # type: ignore[union-attr, arg-type]
    return mask_utils.decode(as_bytes).astype(bool)


# pycocotools' area() counts the RLEs it is given in a uint8: 256 or more at once overflow it
# (2.0.x with numpy 2), while toBbox, merge and decode take any number.
AREA_BATCH = 255


def rle_areas(rles: list[dict[str, Any]]) -> np.ndarray:
    """`mask_utils.area` of any number of compressed RLEs, in batches it can take."""
    if len(rles) <= AREA_BATCH:
        return mask_utils.area(rles)
    batches = range(0, len(rles), AREA_BATCH)
    return np.concatenate([mask_utils.area(rles[i : i + AREA_BATCH]) for i in batches])


def rle_area(rle: dict[str, Any]) -> float:
    """Pixels of a compressed RLE mask, counted on its runs (nothing decoded)."""
    return float(mask_utils.area(_compressed(rle)))


def _compressed(rle: dict[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    return {
        "size": [int(v) for v in rle["size"]],
        "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts,
    }


def _whole_counts(counts: list[Any]) -> bool:
    """Whether every count is an int (bools too, as isinstance has it) and none is negative.
    A crowd region has thousands of counts: the usual case (plain ints) is checked by C loops
    (their types as a set, their minimum), not one Python call per count."""
    if set(map(type, counts)) <= {int, bool}:
        return min(counts, default=0) >= 0
    return all(isinstance(c, int) and c >= 0 for c in counts)


def segmentation_to_rle(segmentation: Any, height: int | None, width: int | None) -> dict[str, Any]:
    """A COCO segmentation (polygons, uncompressed or compressed RLE) -> compressed RLE.

    Raises ValueError with the reason when it cannot be read.
    """
    if isinstance(segmentation, dict):
        if "counts" not in segmentation or "size" not in segmentation:  # `{}` too: not "none"
            raise ValueError("RLE segmentation needs `counts` and `size`")
        size, counts = segmentation["size"], segmentation["counts"]
        if not (isinstance(size, list) and len(size) == 2 and all(map(finite_number, size))):
            raise ValueError(f"RLE size {size!r} is not [height, width]")
        h, w = int(size[0]), int(size[1])
        problem = mask_size_problem(h, w)
        if problem is not None:
            raise ValueError(problem)
        if isinstance(counts, list):
            if not _whole_counts(counts) or sum(counts) != h * w:
                raise ValueError(f"uncompressed RLE counts do not add up to {h}x{w} pixels")
            return _compressed(mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w))
        if isinstance(counts, str | bytes):
            rle = {"size": [h, w], "counts": counts}
            runs = rle_runs(counts)
            # pycocotools reads garbage strings without complaint, and decoding runs that add up
            # to more than the image writes past its buffer: check the runs first
            if runs is None or any(r < 0 for r in runs) or sum(runs) != h * w:
                raise ValueError(f"compressed RLE does not parse as the runs of {h}x{w} pixels")
            try:
                mask_utils.area(rle)
            except Exception as error:  # pycocotools raises plain Exception types
                raise ValueError(f"compressed RLE does not parse: {error}") from None
            return _compressed(rle)
        raise ValueError("RLE counts are neither a list nor a string")
    if isinstance(segmentation, list):
        if height is None or width is None:
            raise ValueError("polygons need the image's width and height")
        polygons = [
            [float(v) for v in p]
            for p in segmentation
            if isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 and finite_numbers(p)
        ]
        if not polygons:
            raise ValueError("no polygon with at least 3 finite points")
        problem = mask_size_problem(height, width) or next(
            filter(None, map(polygon_problem, polygons)), None
        )
        if problem is not None:
            raise ValueError(problem)
        rles = mask_utils.frPyObjects(polygons, height, width)
        return _compressed(mask_utils.merge(rles))
    raise ValueError(f"segmentation of type {type(segmentation).__name__}")


def rle_problem(rle: dict[str, Any], image_size: tuple[Any, Any] | None) -> str | None:
    """An RLE segmentation that is not the mask of its image: a size other than the image's
    [height, width], or counts that do not cover exactly that many pixels (pycocotools would
    read past its buffer decoding them). `image_size`: (width, height), or None if unknown."""
    size = rle.get("size")
    if not (
        isinstance(size, list)
        and len(size) == 2
        and all(finite_number(v) and float(v).is_integer() for v in size)
    ):
        return f"RLE size must be [height, width] (got {size!r})"
    if image_size is not None and all(isinstance(v, int) for v in image_size):
        width, height = image_size
        if [int(size[0]), int(size[1])] != [height, width]:
            return f"RLE size {size} is not its image's [height, width] [{height}, {width}]"
    try:
        segmentation_to_rle(rle, int(size[0]), int(size[1]))
    except (ValueError, TypeError, OverflowError) as error:
        return f"corrupt RLE: {error}"
    return None


def rle_runs(counts: str | bytes) -> list[int] | None:
    """The run lengths of a compressed RLE string, decoded as pycocotools' rleFrString does
    (6-bit groups of 5 value bits, a continuation bit, sign extension, runs after the second
    stored as differences), so they can be checked before pycocotools trusts them; None when
    the string is not ASCII or ends inside a number.

    Vectorised: every run of a real mask fits in a few characters. A string with a number of
    more than 6 characters (over 2**30, no image's run) goes through `_rle_runs_one_by_one`,
    whose Python integers cannot overflow.
    """
    if isinstance(counts, str):
        if not counts.isascii():
            return None
        counts = counts.encode("ascii")
    codes = np.frombuffer(counts, dtype=np.uint8).astype(np.int64) - 48
    if codes.size == 0:
        return []
    if codes.min() < 0 or codes.max() >= 64:  # bytes over 127 land here too
        return None
    ends = np.flatnonzero((codes & 0x20) == 0)  # the last character of each number
    if ends.size == 0 or ends[-1] != codes.size - 1:
        return None
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > 6:
        return _rle_runs_one_by_one(counts)
    place = np.arange(codes.size) - np.repeat(starts, lengths)  # character's place in its number
    values = np.add.reduceat((codes & 0x1F) << (5 * place), starts)
    negative = (codes[ends] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * lengths[negative])  # sign extension
    values[3::2] = np.cumsum(values[1::2])[1:]  # runs after the second: differences
    values[4::2] = np.cumsum(values[2::2])[1:]
    return list(values.tolist())


def _rle_runs_one_by_one(counts: str | bytes) -> list[int] | None:
    """`rle_runs`, a character at a time: the definition, for numbers too long for int64."""
    text = counts.decode("ascii", "replace") if isinstance(counts, bytes) else counts
    runs: list[int] = []
    position = 0
    while position < len(text):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(text):
                return None
            code = ord(text[position]) - 48
            if not 0 <= code < 64:
                return None
            value |= (code & 0x1F) << (5 * shift)
            more = bool(code & 0x20)
            position += 1
            shift += 1
            if not more and code & 0x10:
                value |= -1 << (5 * shift)
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def has_segmentation(annotation: dict[str, Any]) -> bool:
    """Whether a COCO annotation has a segmentation: box-only files (CVAT's, Roboflow's) write
    `"segmentation": []` where others leave the key out, and both mean none."""
    return annotation.get("segmentation") not in (None, [])


def annotation_mask(annotation: dict[str, Any], height: int, width: int) -> np.ndarray:
    """Bool HxW mask of a COCO annotation's segmentation: polygons, RLE or compressed RLE."""
    return decode_mask(segmentation_to_rle(annotation["segmentation"], height, width))


def tight_bbox(mask: np.ndarray) -> list[float]:
    """COCO [x, y, w, h] of the smallest box holding every pixel of `mask` ([0,0,0,0] if empty)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    cols = np.flatnonzero(mask.any(axis=0))
    return [
        float(cols[0]),
        float(rows[0]),
        float(cols[-1] - cols[0] + 1),
        float(rows[-1] - rows[0] + 1),
    ]


def box_edges(bbox: list[float]) -> tuple[float, float, float, float] | None:
    """(x0, y0, x1, y1) of a well-formed COCO box, else None."""
    if len(bbox) != 4 or not all(isinstance(v, int | float) and math.isfinite(v) for v in bbox):
        return None
    x, y, w, h = bbox
    return x, y, x + w, y + h


def box_iou(a: list[float], b: list[float]) -> float:
    """Intersection over union of two COCO xywh boxes."""
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, right - left) * max(0.0, bottom - top)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union else 0.0
