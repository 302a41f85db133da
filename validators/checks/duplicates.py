"""The duplicate-label measure of every object at once: its highest IoU with an earlier
instance of its class in the same image (mask IoU when every such instance has a mask, else box
IoU), and which earlier object that is.

Pairs are found with numpy for all images together; pycocotools computes mask IoU only for
pairs whose mask boxes overlap (the others are 0, as pycocotools itself makes them without
reading the masks), one call per class of an image; box IoU is pycocotools' formula (`bbIou`)
over numpy columns, the same operations in the same order, so the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


@dataclass
class Duplicates:
    """Per object (NaN / -1 where it is not measured: no earlier instance of its class)."""

    iou: np.ndarray  # float64: the highest IoU with an earlier instance of the class
    other: np.ndarray  # int64: that instance's index within the image
    with_masks: np.ndarray  # bool: mask IoU (else box IoU)
    rank: np.ndarray  # int64: the class's rank of first appearance within the image


def _pairs(members: np.ndarray, sets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (later, earlier) pair of members of the same set; `members` grouped by set in
    order. Returns positions into `members`."""
    starts = np.flatnonzero(np.r_[True, sets[1:] != sets[:-1]])
    position = np.arange(len(members)) - np.repeat(starts, np.diff(np.r_[starts, len(members)]))
    later = np.repeat(np.arange(len(members)), position)
    first = np.repeat(np.arange(len(members)) - position, position)
    offset = np.arange(len(later)) - np.repeat(np.cumsum(position) - position, position)
    return later, first + offset


CHUNK_ROWS = 1 << 16  # rows measured together: bounds the pair arrays of a huge file


def duplicates(
    *,
    classes: np.ndarray,
    candidates: np.ndarray,
    boxes: np.ndarray,
    mask_edges: np.ndarray,
    mask_areas: np.ndarray,
    segments: np.ndarray,
    rle_of: Callable[[int], Any],
) -> Duplicates:
    """Duplicates among `candidates` (bool: instances with a box) of the same class (`classes`,
    int codes) and the same image (`segments`: where each image's rows start, and the end),
    measured a chunk of whole images at a time."""
    count = len(classes)
    found = Duplicates(
        iou=np.full(count, np.nan),
        other=np.full(count, -1, dtype=np.int64),
        with_masks=np.zeros(count, dtype=bool),
        rank=np.zeros(count, dtype=np.int64),
    )
    first = 0
    while first < len(segments) - 1:
        last = max(
            int(np.searchsorted(segments, segments[first] + CHUNK_ROWS, "right")) - 1, first + 1
        )
        rows = slice(segments[first], segments[last])
        offset = int(segments[first])

        def chunk_rle(row: int, offset: int = offset) -> Any:
            return rle_of(offset + row)

        part = _duplicates(
            classes=classes[rows],
            candidates=candidates[rows],
            boxes=boxes[rows],
            mask_edges=mask_edges[rows],
            mask_areas=mask_areas[rows],
            segments=segments[first : last + 1] - segments[first],
            rle_of=chunk_rle,
        )
        for name in ("iou", "other", "with_masks", "rank"):
            getattr(found, name)[rows] = getattr(part, name)
        first = last
    return found


def _duplicates(
    *,
    classes: np.ndarray,
    candidates: np.ndarray,
    boxes: np.ndarray,
    mask_edges: np.ndarray,
    mask_areas: np.ndarray,
    segments: np.ndarray,
    rle_of: Callable[[int], Any],
) -> Duplicates:
    count = len(classes)
    found = Duplicates(
        iou=np.full(count, np.nan),
        other=np.full(count, -1, dtype=np.int64),
        with_masks=np.zeros(count, dtype=bool),
        rank=np.zeros(count, dtype=np.int64),
    )
    rows = np.flatnonzero(candidates)
    if len(rows) < 2:
        return found
    if len(segments) == 2 and len(set(classes[rows].tolist())) == len(rows):
        return found  # one image, no class twice (a generated sample, mostly): no pair at all
    image = np.repeat(np.arange(len(segments) - 1), np.diff(segments))
    start = segments[image]
    # Sets: (image, class) in the order of first appearance within each image.
    order = np.lexsort((rows, classes[rows], image[rows]))
    members = rows[order]
    key = np.stack([image[members], classes[members]])
    new_set = np.r_[True, (key[:, 1:] != key[:, :-1]).any(axis=0)]
    sets = np.cumsum(new_set) - 1
    set_first = members[new_set]  # the first member of each set: where its class first shows
    # Rank of each set's class within its image, by first appearance (what the loop over
    # `by_class` of one image would see).
    set_image = image[set_first]
    by_appearance = np.lexsort((set_first, set_image))
    image_start = np.r_[True, set_image[by_appearance][1:] != set_image[by_appearance][:-1]]
    rank_sorted = np.arange(len(set_first)) - np.maximum.accumulate(
        np.where(image_start, np.arange(len(set_first)), 0)
    )
    set_rank = np.empty(len(set_first), dtype=np.int64)
    set_rank[by_appearance] = rank_sorted
    found.rank[members] = set_rank[sets]
    set_masks = np.ones(len(set_first), dtype=bool)
    np.logical_and.at(set_masks, sets, mask_areas[members] > 0)  # NaN (no mask) is not > 0
    later, earlier = _pairs(members, sets)
    if not len(later):
        return found
    d, g = members[later], members[earlier]
    masked = set_masks[sets[later]]
    iou = np.zeros(len(later))
    # Box IoU, pycocotools' bbIou: w = min(xd + wd, xg + wg) - max(xd, xg), ..., i / (da + ga - i).
    x, y, w, h = boxes.T
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        wide = np.minimum(w[d] + x[d], w[g] + x[g]) - np.maximum(x[d], x[g])
        high = np.minimum(h[d] + y[d], h[g] + y[g]) - np.maximum(y[d], y[g])
        inter = wide * high
        box_iou = inter / (w[d] * h[d] + w[g] * h[g] - inter)
    iou[~masked] = np.where((wide > 0) & (high > 0), box_iou, 0.0)[~masked]
    mx0, my0, mx1, my1 = mask_edges.T
    overlap = masked & (
        (np.minimum(mx1[d], mx1[g]) - np.maximum(mx0[d], mx0[g]) > 0)
        & (np.minimum(my1[d], my1[g]) - np.maximum(my0[d], my0[g]) > 0)
    )
    for chosen in np.split(
        np.flatnonzero(overlap), np.flatnonzero(np.diff(sets[later[overlap]])) + 1
    ):
        if not len(chosen):
            continue
        dt, gt = np.unique(d[chosen]), np.unique(g[chosen])
        values = np.asarray(
            mask_utils.iou([rle_of(r) for r in dt.tolist()], [rle_of(r) for r in gt.tolist()],
                           [0] * len(gt)),
            dtype=np.float64,
        )  # fmt: skip
        iou[chosen] = values[np.searchsorted(dt, d[chosen]), np.searchsorted(gt, g[chosen])]
    # For each later member: the first earlier one of highest IoU (argmax over the earlier).
    best = np.lexsort((g, -iou, d))
    first = np.r_[True, d[best][1:] != d[best][:-1]]
    chosen_pairs = best[first]
    rows_measured = d[chosen_pairs]
    found.iou[rows_measured] = iou[chosen_pairs]
    found.other[rows_measured] = g[chosen_pairs] - start[g[chosen_pairs]]
    found.with_masks[rows_measured] = masked[chosen_pairs]
    return found
