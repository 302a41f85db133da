"""Labels by construction: from per-object masks to COCO labels, exactly.

Every image generator ends the same way: it knows each object's full mask (where it was drawn)
and the visible part (what later objects did not cover). `labels_from_masks` turns these into
`ObjectLabel`s with a compressed RLE mask, the tight box of the visible pixels and their count,
and tells which objects are too occluded to label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synthgate.masks import blank_mask, encode_mask, tight_bbox
from synthgate.samples import ObjectLabel


@dataclass
class PlacedObject:
    """An object a generator drew: its class, every pixel it covered when drawn, its attributes."""

    category: str
    full_mask: np.ndarray  # HxW bool, before occlusion; column-major (masks.blank_mask)
    attributes: dict[str, object]


@dataclass
class LabelledScene:
    objects: list[ObjectLabel]
    foreground: np.ndarray  # HxW bool: union of the visible pixels of every object placed
    ignore: np.ndarray  # HxW bool: visible pixels of objects too occluded to label
    hidden: int  # how many objects were too occluded to label


def crowd_label(
    category: str, visible: np.ndarray, fraction: float, attributes: dict[str, object]
) -> ObjectLabel:
    """A crowd region over an object's visible pixels: too hidden to be an instance, written so
    that evaluation and training ignore it (the judge's `ignore`) rather than count it as
    background."""
    return ObjectLabel(
        category=category,
        bbox=tight_bbox(visible),
        mask=encode_mask(visible),
        area=float(visible.sum()),
        visible_fraction=round(fraction, 6),
        attributes={**attributes, "iscrowd": True},
    )


def labels_from_masks(
    placed: Sequence[PlacedObject],
    *,
    shape: tuple[int, int],
    min_visible_fraction: float,
    hidden_as_crowd: bool = False,
) -> LabelledScene:
    """Label objects drawn in order (later ones occlude earlier ones), exactly.

    The visible mask of an object is its full mask minus every later object's full mask. An
    object whose visible fraction is under `min_visible_fraction` is not labelled as an
    instance; its visible pixels go to `ignore`, so completeness checks do not count them as
    missed. With `hidden_as_crowd` they are labelled as a crowd region (`iscrowd`: exactly its
    visible pixels), which COCOeval and trainers ignore as the judge does: pixels of a real
    object (copy_paste) left unlabelled would teach a detector that it is background.
    """
    covered = blank_mask(*shape)
    visible_masks: list[np.ndarray] = [np.zeros(0, bool)] * len(placed)
    for i in range(len(placed) - 1, -1, -1):
        visible_masks[i] = placed[i].full_mask & ~covered
        covered |= placed[i].full_mask
    labels: list[ObjectLabel] = []
    ignore = blank_mask(*shape)
    hidden = 0
    for obj, visible in zip(placed, visible_masks, strict=True):
        full_area = int(obj.full_mask.sum())
        area = int(visible.sum())
        fraction = area / full_area if full_area else 0.0
        if area == 0 or fraction < min_visible_fraction:
            ignore |= visible
            hidden += 1
            if hidden_as_crowd and area:
                labels.append(crowd_label(obj.category, visible, fraction, obj.attributes))
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
