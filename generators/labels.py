"""Labels by construction: from per-object masks to COCO labels, exactly.

Every image generator ends the same way: it knows each object's full mask (where it was drawn)
and the visible part (what later objects did not cover). `labels_from_masks` turns these into
`ObjectLabel`s with a compressed RLE mask, the tight box of the visible pixels and their count,
and tells which objects are too occluded to label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from synthgate.samples import ObjectLabel


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


@dataclass
class PlacedObject:
    """An object a generator drew: its class, every pixel it covered when drawn, its attributes."""

    category: str
    full_mask: np.ndarray  # HxW bool, before occlusion
    attributes: dict[str, object]


@dataclass
class LabelledScene:
    objects: list[ObjectLabel]
    foreground: np.ndarray  # HxW bool: union of the visible pixels of every object placed
    ignore: np.ndarray  # HxW bool: visible pixels of objects too occluded to label
    hidden: int  # how many objects were too occluded to label


def labels_from_masks(
    placed: Sequence[PlacedObject], *, shape: tuple[int, int], min_visible_fraction: float
) -> LabelledScene:
    """Label objects drawn in order (later ones occlude earlier ones), exactly.

    The visible mask of an object is its full mask minus every later object's full mask. An
    object whose visible fraction is under `min_visible_fraction` is not labelled; its visible
    pixels go to `ignore`, so completeness checks do not count them as missed.
    """
    covered = np.zeros(shape, dtype=bool)
    visible_masks: list[np.ndarray] = [np.zeros(0, bool)] * len(placed)
    for i in range(len(placed) - 1, -1, -1):
        visible_masks[i] = placed[i].full_mask & ~covered
        covered |= placed[i].full_mask
    labels: list[ObjectLabel] = []
    ignore = np.zeros(shape, dtype=bool)
    hidden = 0
    for obj, visible in zip(placed, visible_masks, strict=True):
        full_area = int(obj.full_mask.sum())
        area = int(visible.sum())
        fraction = area / full_area if full_area else 0.0
        if area == 0 or fraction < min_visible_fraction:
            ignore |= visible
            hidden += 1
            continue
        labels.append(
            ObjectLabel(
                category=obj.category,
                bbox=tight_bbox(visible),
                mask=encode_mask(visible),
                area=float(area),
                visible_fraction=round(fraction, 6),
                attributes=dict(obj.attributes),
            )
        )
    return LabelledScene(objects=labels, foreground=covered, ignore=ignore, hidden=hidden)
