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
from synthgate.validators.context import perceptual_hash


def _phash(item: CheckInput) -> np.uint64 | None:
    if "phash" not in item.cache:
        gray = item.gray
        usable = gray is not None and gray.size and np.isfinite(gray).all()
        item.cache["phash"] = perceptual_hash(gray) if usable else None
    return item.cache["phash"]


@register(
    "correctness_image_valid",
    measures=[Measure("image_unreadable", "image"), Measure("image_blank", "image")],
    defaults={"black_level": 8},
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


@register(
    "clarity_image_quality",
    measures=[
        Measure("laplacian_variance", "", worse="lower"),
        Measure("clipped_percent", "%"),
    ],
    defaults={"dark_level": 4, "bright_level": 251},
)
def image_quality(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Sharpness (variance of the Laplacian of the luminance; low is blurred) and exposure
    (percentage of pixels crushed to black or burnt to white)."""
    gray = item.gray
    if gray is None or gray.ndim != 2 or min(gray.shape) < 3:
        return
    # NaN/inf pixels show as black (or white): measured like that, not skipped.
    gray = np.nan_to_num(gray, nan=0.0, posinf=255.0, neginf=0.0)
    laplacian = (
        gray[1:-1, :-2] + gray[1:-1, 2:] + gray[:-2, 1:-1] + gray[2:, 1:-1] - 4 * gray[1:-1, 1:-1]
    )
    variance = float(laplacian.var())
    yield Measurement(
        "laplacian_variance", round(variance, 3), f"variance of the Laplacian {variance:.1f}"
    )
    clipped = np.count_nonzero((gray <= params["dark_level"]) | (gray >= params["bright_level"]))
    percent = 100.0 * clipped / gray.size
    yield Measurement(
        "clipped_percent", round(percent, 3), f"{percent:.1f} % of pixels crushed or burnt"
    )


@register(
    "clarity_near_duplicate",
    measures=[Measure("duplicate_hash_bits", "bits", worse="lower")],
)
def near_duplicate(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Hamming distance of the image's perceptual hash to the closest earlier image of the batch;
    a near-copy adds no information and skews the class balance."""
    value = _phash(item)
    if value is None:
        return
    index = item.context.batch_hashes
    nearest = index.nearest(value, before=item.sample.id)
    index.add(item.sample.id, value)
    if nearest is not None:
        bits, other = nearest
        yield Measurement(
            "duplicate_hash_bits", bits, f"{bits} bits from earlier sample {other} (pHash)"
        )


@register(
    "correctness_reference_copy",
    measures=[Measure("reference_hash_bits", "bits", worse="lower")],
    defaults={"reference_images": None},
)
def reference_copy(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Hamming distance to the closest image of the reference (real) dataset: a copy of a real
    image is a failure and a privacy issue. Reference: `reference_images` or the context's."""
    reference = item.context.reference_for(params["reference_images"])
    value = _phash(item)
    if reference is None or value is None:
        return
    nearest = reference.nearest(value)
    if nearest is not None:
        bits, other = nearest
        yield Measurement(
            "reference_hash_bits", bits, f"{bits} bits from reference image {other} (pHash)"
        )
