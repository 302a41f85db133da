"""Fills for procedural objects and backgrounds: gradients, stripes, checkers, blotches, grain."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageChops

# fmt: off
TEXTURES: tuple[str, ...] = (
    "solid", "linear_gradient", "radial_gradient", "stripes", "checker", "blotches",
)
# fmt: on


def texture(
    rng: np.random.Generator, kind: str, *, height: int, width: int, colours: np.ndarray
) -> Image.Image:
    """An RGB pattern between two colours (`colours` is 2x3); its sizes scale with the box.

    The pattern is one channel of levels 0..top coloured through a palette by Pillow; each
    full-size numpy step is a broadcast of a row and a column (no float math on three
    interleaved channels, which would cost several times more).
    """
    first, second = colours[0].astype(np.float32), colours[1].astype(np.float32)
    if kind == "solid":
        return Image.new("RGB", (width, height), tuple(int(v) for v in first))
    xs = np.arange(width, dtype=np.float32)[None, :]
    ys = np.arange(height, dtype=np.float32)[:, None]
    extent = float(max(height, width))
    angle = rng.uniform(0.0, 2 * math.pi)
    cos, sin = math.cos(angle), math.sin(angle)
    # A shift of 2 * extent keeps rotated coordinates positive, so int truncation is floor.
    shift = 2 * extent
    top = 1
    if kind == "linear_gradient":
        low = min(0.0, (width - 1) * cos) + min(0.0, (height - 1) * sin)
        high = max(0.0, (width - 1) * cos) + max(0.0, (height - 1) * sin)
        step = 255.0 / max(high - low, 1.0)
        levels = xs * np.float32(cos * step) + (ys * np.float32(sin * step) - low * step)
        top = 255
    elif kind == "radial_gradient":
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        reach = extent * rng.uniform(0.5, 1.2)
        levels = np.sqrt((xs - np.float32(cx)) ** 2 + (ys - np.float32(cy)) ** 2)
        levels *= np.float32(255.0 / reach)
        np.minimum(levels, np.float32(255.0), out=levels)
        top = 255
    elif kind == "stripes":
        # Phase in 1/256 of a period, as an integer: cheaper than a float modulo.
        step = 256.0 / max(4.0, extent * rng.uniform(0.06, 0.25))
        along = xs * np.float32(cos * step) + (ys * np.float32(sin * step) + shift * step)
        phase = along.astype(np.int32) & 255
        levels = phase < int(256 * rng.uniform(0.3, 0.7))
    elif kind == "checker":
        step = 1.0 / max(3.0, extent * rng.uniform(0.05, 0.2))
        along = xs * np.float32(cos * step) + (ys * np.float32(sin * step) + shift * step)
        across = ys * np.float32(cos * step) + (shift * step - xs * np.float32(sin * step))
        levels = (along.astype(np.int32) ^ across.astype(np.int32)) & 1
    elif kind == "blotches":
        # Smooth value noise: a coarse random grid, bilinearly upsampled.
        cells = rng.uniform(3, 10)
        grid_h = max(2, int(cells * height / extent))
        grid_w = max(2, int(cells * width / extent))
        grid = (rng.random((grid_h, grid_w)) * 255).astype(np.uint8)
        levels = np.asarray(
            Image.fromarray(grid).resize((width, height), Image.Resampling.BILINEAR)
        )
        top = 255
    else:
        raise ValueError(f"unknown texture {kind!r}; expected one of {TEXTURES}")
    weights = np.minimum(np.arange(256, dtype=np.float32) / top, 1.0)[:, None]
    palette = np.clip(first + weights * (second - first), 0, 255).astype(np.uint8)
    image = Image.fromarray(np.ascontiguousarray(levels, dtype=np.uint8))
    image.putpalette(palette.tobytes())
    return image.convert("RGB")


def grain(rng: np.random.Generator, image: Image.Image, amplitude: int) -> Image.Image:
    """The image plus fine grey noise in [-amplitude, amplitude] (rare: PNGs get slower)."""
    noise = rng.integers(0, 2 * amplitude + 1, size=(image.height, image.width), dtype=np.uint8)
    return ImageChops.add(image, Image.fromarray(noise).convert("RGB"), 1.0, -amplitude)


def colour_pair(rng: np.random.Generator, *, avoid: np.ndarray | None) -> np.ndarray:
    """Two related colours; the first is pushed away from `avoid` so objects stand out."""
    first = rng.integers(0, 256, size=3).astype(np.float32)
    if avoid is not None and float(np.linalg.norm(first - avoid)) < 90.0:
        first = (first + 128.0) % 256.0
    second = np.clip(first + rng.uniform(-120, 120, size=3), 0, 255)
    return np.stack([first, second]).astype(np.float32)
