"""Foreground masks for generated images: a segmenter is `RGB HxWx3 uint8 -> bool HxW`.

The default, `border_segmenter`, needs no model: a generated "photo of a single X" sits on a
plain-ish background, so the background colour is estimated from the border pixels, a pixel is
foreground when its colour is far from it (threshold by Otsu, never below the border's own
spread), and morphology, hole filling and a minimum blob size clean the mask. Others plug in by
name (`SEGMENTERS`) or as "module:function". `foreground_in_box` runs a segmenter on a box and
the ring of context around it, so layout and inpaint labels come from the same test.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import cv2
import numpy as np

from synthgate.errors import InputError

Segmenter = Callable[[np.ndarray], np.ndarray]


def border_segmenter(image: np.ndarray, *, border_fraction: float = 0.05) -> np.ndarray:
    """Pixels whose colour differs from the border's: the object on a generated background."""
    height, width = image.shape[:2]
    lab = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB).astype(np.float32)
    band = max(1, round(border_fraction * min(height, width)))
    ring = np.ones((height, width), dtype=bool)
    ring[band:-band, band:-band] = False
    background = np.median(lab[ring], axis=0)
    distance = np.linalg.norm(lab - background, axis=2)
    scaled = np.clip(distance * (255.0 / max(float(distance.max()), 1e-6)), 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # The border itself varies (texture, vignetting): stay well above its typical spread, which
    # the upper quartile measures even when the object touches a quarter of the border.
    floor = 2.0 * float(np.percentile(distance[ring], 75))
    threshold = max(otsu * max(float(distance.max()), 1e-6) / 255.0, floor)
    mask = distance > threshold
    return clean_mask(mask, min_fraction=0.002)


def clean_mask(mask: np.ndarray, *, min_fraction: float) -> np.ndarray:
    """Open away speckle, close small gaps, fill holes, drop blobs under `min_fraction`."""
    height, width = mask.shape
    size = max(3, (min(height, width) // 64) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    # Typed loosely: OpenCV's stubs take no uint8-typed array.
    as_u8: np.ndarray = mask.astype(np.uint8)
    as_u8 = cv2.morphologyEx(as_u8, cv2.MORPH_OPEN, kernel)
    as_u8 = cv2.morphologyEx(as_u8, cv2.MORPH_CLOSE, kernel)
    filled = fill_holes(as_u8.astype(bool))
    binary: np.ndarray = filled.astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    keep = np.zeros(count, dtype=bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= max(1, min_fraction * height * width)
    return keep[labels]


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask with every background region not reachable from the image border filled."""
    outside = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), dtype=np.uint8)
    outside[1:-1, 1:-1] = mask
    flood_mask = np.zeros((outside.shape[0] + 2, outside.shape[1] + 2), dtype=np.uint8)
    cv2.floodFill(outside, flood_mask, (0, 0), 2)
    return (outside[1:-1, 1:-1] != 2) | mask


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of `mask` (empty if `mask` is)."""
    binary: np.ndarray = mask.astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count <= 1:
        return np.zeros(mask.shape, dtype=bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def apply_segmenter(segmenter: Segmenter, image: np.ndarray) -> np.ndarray:
    """The segmenter's mask of `image` as bool HxW; a plug-in that returns another shape is refused."""
    mask = np.asarray(segmenter(image))
    if mask.shape != image.shape[:2]:
        raise InputError(
            f"image.segmenter: returned a mask of shape {mask.shape} for an image of shape "
            f"{image.shape}; a segmenter must return a bool HxW mask"
        )
    return mask.astype(bool, copy=False)


def foreground_in_box(
    image: np.ndarray, box: list[float], segmenter: Segmenter, *, margin: float = 0.25
) -> np.ndarray:
    """The largest foreground component inside `box` (COCO xywh), full-image sized.

    The segmenter sees the box plus a ring of `margin` × its size around it, so the border it
    reads the background from is the scene around the object, not the object itself.
    """
    height, width = image.shape[:2]
    x, y, w, h = box
    pad_x, pad_y = round(w * margin), round(h * margin)
    x0, y0 = max(0, int(x) - pad_x), max(0, int(y) - pad_y)
    x1, y1 = min(width, int(x + w) + pad_x), min(height, int(y + h) + pad_y)
    found = np.zeros((height, width), dtype=bool)
    found[y0:y1, x0:x1] = apply_segmenter(segmenter, image[y0:y1, x0:x1])
    inside = np.zeros_like(found)
    inside[int(y) : int(y + h), int(x) : int(x + w)] = True
    return largest_component(found & inside)


SEGMENTERS: dict[str, Segmenter] = {"border": border_segmenter}


def segmenter_by_name(name: str, *, field: str = "image.segmenter") -> Segmenter:
    """A registered segmenter, or a function named "package.module:function"."""
    if name in SEGMENTERS:
        return SEGMENTERS[name]
    module_name, _, attr = name.partition(":")
    if not attr:
        raise InputError(
            f"{field}: unknown segmenter {name!r}; use one of {sorted(SEGMENTERS)} or "
            "'package.module:function' (RGB HxWx3 uint8 -> bool HxW)"
        )
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise InputError(f"{field}: cannot import segmenter {name!r}: {error}") from None
    if not callable(found):
        raise InputError(f"{field}: {name!r} is not a function")
    return found
