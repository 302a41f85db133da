"""Pixel checks of image samples: blank or unreadable images, blur, exposure, near-duplicates.

Every check here needs pixels and yields nothing without them (a COCO file validated without
`--images`). Near-duplicates are found by a 64-bit perceptual hash: within the batch against
every earlier image (the context keeps one uint64 per image, never the pixels), and against an
optional reference dataset whose images are hashed once. A copy of a real image in a synthetic
batch is a correctness failure and a privacy issue.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from synthgate.validators.checks.base import CheckInput, Measure, Measurement, register
from synthgate.validators.context import (
    DECODED_IMAGE,
    fingerprint,
    gray_8bit,
    is_rgb_8bit,
    rgb_image,
)

SHRINK_MIN_SIDE = 8  # images smaller than twice this are measured at full size


def _fingerprint(item: CheckInput) -> tuple[np.uint64, np.ndarray] | None:
    """(pHash, mean colour) of the image, computed once for both duplicate checks."""
    if "fingerprint" not in item.cache:
        item.cache["fingerprint"] = None
        pixels = item.pixels
        if (
            pixels is not None
            and pixels.size
            and (pixels.dtype.kind in "ui" or np.isfinite(pixels).all())
        ):
            image = _rgb_image(item) if is_rgb_8bit(pixels) else None
            item.cache["fingerprint"] = fingerprint(pixels, image)
    return item.cache["fingerprint"]


def _rgb_image(item: CheckInput) -> Any:
    """The sample's 8-bit RGB pixels as a Pillow image, made once for the fingerprint and the
    luminance (each made its own copy: about 0.4 ms of a 640x480 image), or the image they were
    decoded from when the reader handed it over with these very pixels."""
    if "rgb_image" not in item.cache:
        decoded = item.extras.get(DECODED_IMAGE)
        if decoded is not None and decoded[0] is item.pixels:
            item.cache["rgb_image"] = decoded[1]
        else:
            item.cache["rgb_image"] = rgb_image(np.asarray(item.pixels))
    return item.cache["rgb_image"]


def _has_pixels(item: CheckInput) -> bool:
    return item.pixels is not None


@register(
    "correctness_image_valid",
    measures=[Measure("image_unreadable", "image"), Measure("image_blank", "image")],
    defaults={"black_level": 8},
    applies=lambda item: item.pixels is not None or bool(item.extras.get("image_error")),
)
def image_valid(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """The image can be read, has the declared size, holds finite values and is not blank
    (constant, or no pixel brighter than `black_level`): labels on a blank image are wrong."""
    error = item.extras.get("image_error")
    if error:
        yield Measurement("image_unreadable", 1, f"image unreadable: {error}")
        return
    if item.pixels is None:
        return
    pixels = np.asarray(item.pixels)
    sample = item.sample
    if pixels.ndim not in (2, 3) or pixels.size == 0:
        yield Measurement("image_unreadable", 1, f"image array has shape {pixels.shape}")
        return
    if sample.width is not None and pixels.shape[:2] != (sample.height, sample.width):
        yield Measurement(
            "image_unreadable",
            1,
            f"image is {pixels.shape[1]}x{pixels.shape[0]}, "
            f"labels say {sample.width}x{sample.height}",
        )
        return
    if pixels.dtype.kind == "f" and not np.isfinite(pixels).all():
        yield Measurement("image_blank", 1, "image holds NaN or infinite values")
        return
    low, high = pixels.min(), pixels.max()
    if high <= params["black_level"]:
        yield Measurement("image_blank", 1, f"image is black (brightest value {high})")
    elif low == high:
        yield Measurement("image_blank", 1, f"image is one constant value ({high})")
    else:
        yield Measurement("image_blank", 0, "image has content")


def edge_laplacian_variance(channel: np.ndarray, *, edge_level: float, min_edge_px: int) -> float:
    """Variance of the 4-neighbour Laplacian over the pixels where the image has structure
    (|dx| + |dy| >= edge_level); the whole image when fewer than `min_edge_px` pixels do.

    Restricting to edges keeps flat synthetic scenes (a solid background, one crisp shape) from
    reading as blurred: sharpness is how abrupt the edges are, not how many there are.
    """
    if channel.dtype == np.uint8 and channel.ndim == 2 and min(channel.shape) >= 3:
        return _integer_edge_laplacian_variance(channel, edge_level, min_edge_px)
    values = channel.astype(np.float32)
    centre = values[1:-1, 1:-1]
    left, right = values[1:-1, :-2], values[1:-1, 2:]
    up, down = values[:-2, 1:-1], values[2:, 1:-1]
    laplacian = left + right + up + down - 4 * centre
    edges = np.abs(right - left) + np.abs(down - up) >= edge_level
    enough = np.count_nonzero(edges) >= max(min_edge_px, 1)  # none: the whole image
    chosen = laplacian[edges] if enough else laplacian.ravel()
    chosen = chosen.astype(np.float64)
    mean = chosen.mean()
    # einsum, not np.dot: BLAS threads contend on a busy machine and run 100x slower.
    return float(np.einsum("i,i->", chosen, chosen) / chosen.size - mean * mean)


def _integer_edge_laplacian_variance(
    channel: np.ndarray, edge_level: float, min_edge_px: int
) -> float:
    """`edge_laplacian_variance` of 8-bit values, with OpenCV's kernels and no copy of the
    chosen pixels (`sharpness` of a 640x480 image: 1.54 -> 1.23 ms), the same float to the
    last bit as the general path.

    Every Laplacian here is an integer (|x| <= 1020), so the sum and the sum of squares over
    the chosen pixels are exact in any order (below 2**53); the numpy path's float64 sums of
    the same integers are exact too, and the variance is formed from them the same way.
    """
    import cv2

    channel = np.ascontiguousarray(channel)
    laplacian = cv2.Laplacian(channel, cv2.CV_16S, ksize=1)[1:-1, 1:-1]  # [0 1 0; 1 -4 1; 0 1 0]
    dx = cv2.absdiff(channel[1:-1, 2:], channel[1:-1, :-2])
    dy = cv2.absdiff(channel[2:, 1:-1], channel[:-2, 1:-1])
    edges = cv2.add(dx, dy, dtype=cv2.CV_16U) >= edge_level
    count = int(np.count_nonzero(edges))
    if count >= max(min_edge_px, 1):
        laplacian = laplacian * edges  # zero off the edges: they add nothing to either sum
    else:
        count = laplacian.size
    total = int(laplacian.sum(dtype=np.int64))
    squares = int(np.square(laplacian, dtype=np.int32).sum(dtype=np.int64))  # <= 1020**2 each
    mean = total / count
    return float(squares / count - mean * mean)


def sharpness(pixels: np.ndarray, *, edge_level: float, min_edge_px: int) -> float:
    """`edge_laplacian_variance` of the sharpest colour channel (so shapes that differ from their
    background in colour only count), read on the image shrunk 2x by pixel-area averaging.

    Half the resolution is a quarter of the pixels; the edges that make an image sharp survive
    the shrink, mild blur (under a pixel's width at full size) no longer shows, and the rubric's
    thresholds are set for this scale (configs/rubrics/detection.yaml).
    """
    import cv2  # only pixel checks use it: a label-only run does not load it (~20 ms)

    height, width = pixels.shape[:2]
    if min(height, width) >= 2 * SHRINK_MIN_SIDE:
        shrunk = cv2.resize(pixels, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
        pixels = shrunk.reshape(height // 2, width // 2, *pixels.shape[2:])  # 1 channel stays 3-D
    if pixels.ndim == 2:
        channels = [pixels]
    elif pixels.dtype == np.uint8:
        channels = list(cv2.split(np.ascontiguousarray(pixels[..., :3])))
    else:
        channels = [pixels[..., c] for c in range(3)]
    return max(
        edge_laplacian_variance(channel, edge_level=edge_level, min_edge_px=min_edge_px)
        for channel in channels
    )


def _grey(item: CheckInput, pixels: np.ndarray) -> np.ndarray | None:
    """Luminance, as 8-bit values for 8-bit RGB (what `item.gray` holds, without its float copy)."""
    if is_rgb_8bit(pixels):
        return gray_8bit(pixels, _rgb_image(item))
    return item.gray


@register(
    "clarity_image_quality",
    measures=[
        Measure("laplacian_variance", "", worse="lower"),
        Measure("clipped_percent", "%", most=100),
    ],
    defaults={"edge_level": 8, "min_edge_px": 16, "dark_level": 4, "bright_level": 251},
    applies=_has_pixels,
)
def image_quality(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Sharpness (variance of the Laplacian at edges, in the sharpest colour channel of the image
    at half size: `sharpness`) and exposure (percentage of pixels crushed to black or burnt to
    white)."""
    if item.pixels is None:
        return
    pixels = np.asarray(item.pixels)
    gray = _grey(item, pixels)
    if gray is None or gray.ndim != 2 or min(gray.shape) < 3:
        return
    if pixels.dtype != np.uint8:
        # NaN/inf pixels show as black (or white): measured like that, not skipped.
        pixels = np.nan_to_num(pixels.astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)
    variance = sharpness(pixels, edge_level=params["edge_level"], min_edge_px=params["min_edge_px"])
    yield Measurement(
        "laplacian_variance",
        round(variance, 3),
        f"variance of the Laplacian at edges {variance:.1f}",
    )
    if pixels.dtype.kind == "f":
        gray = np.nan_to_num(gray, nan=0.0, posinf=255.0, neginf=0.0)
    clipped = np.count_nonzero(gray <= params["dark_level"])
    clipped += np.count_nonzero(gray >= params["bright_level"])
    percent = 100.0 * clipped / gray.size
    yield Measurement(
        "clipped_percent", round(percent, 3), f"{percent:.1f} % of pixels crushed or burnt"
    )


def _prepare_fingerprint(item: CheckInput) -> dict[str, Any]:
    return {"fingerprint": _fingerprint(item)}


@register(
    "clarity_near_duplicate",
    measures=[Measure("duplicate_hash_bits", "bits", worse="lower")],
    defaults={"colour_tolerance": 16},
    prepare=_prepare_fingerprint,
)
def near_duplicate(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Hamming distance of the image's perceptual hash to the closest earlier image of the batch
    of about the same mean colour; a near-copy adds no information and skews the class balance."""
    found = _fingerprint(item)
    if found is None:
        return
    index = item.context.batch_hashes
    nearest = index.nearest(
        *found, colour_tolerance=params["colour_tolerance"], before=item.sample.id
    )
    index.add(item.sample.id, *found)
    if nearest is not None:
        bits, other = nearest
        yield Measurement(
            "duplicate_hash_bits", bits, f"{bits} bits from earlier sample {other} (pHash)"
        )


@register(
    "correctness_reference_copy",
    measures=[Measure("reference_hash_bits", "bits", worse="lower")],
    defaults={"reference_images": None, "colour_tolerance": 24},
    applies=_has_pixels,
)
def reference_copy(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Hamming distance to the closest image of the reference (real) dataset: a copy of a real
    image is a failure and a privacy issue. Reference: `reference_images` or the context's."""
    reference = item.context.reference_for(params["reference_images"])
    found = _fingerprint(item)
    if reference is None or found is None:
        return
    nearest = reference.nearest(*found, colour_tolerance=params["colour_tolerance"])
    if nearest is not None:
        bits, other = nearest
        yield Measurement(
            "reference_hash_bits", bits, f"{bits} bits from reference image {other} (pHash)"
        )
