"""The `procedural` image generator: shapes with textured fills on varied backgrounds, exact masks.

`ProceduralGenerator(config, categories=[...]).generate(specs)` draws one image per `SampleSpec`.
Every category is a shape family (`shape_for_category`: "circle", "ring", "hexagon", … by name;
any other name gets a family and parameters from a stable hash of the name). Masks are drawn
without anti-aliasing and fills are composited exactly where the mask is set, so the labels from
`labels_from_masks` are exact. `encode_png` is the one PNG encoder the pipeline and the benchmark
share.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import zlib
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import PIL
from PIL import Image, ImageChops, ImageDraw

from synthgate.config import ProceduralImageConfig
from synthgate.errors import InputError
from synthgate.generators.labels import PlacedObject, labels_from_masks
from synthgate.samples import GeneratedSample, Provenance, Sample, SampleSpec, sample_id

# fmt: off
SHAPE_FAMILIES: tuple[str, ...] = (
    "circle", "ellipse", "square", "rectangle", "triangle", "polygon", "star", "ring", "crescent",
    "diamond", "cross", "heart", "arrow",
)
TEXTURES: tuple[str, ...] = (
    "solid", "linear_gradient", "radial_gradient", "stripes", "checker", "blotches",
)
# fmt: on


@dataclass(frozen=True)
class ShapeKind:
    """A shape family and the parameters that make it one class: sides, aspect, inner ratio."""

    family: str
    sides: int = 6  # polygon sides, star points
    aspect: float = 1.0  # minor/major axis (ellipse, rectangle, diamond)
    inner: float = 0.5  # star inner radius, ring hole, cross arm half-width


_ALIASES: dict[str, ShapeKind] = {
    **dict.fromkeys(["circle", "disc", "disk", "dot", "ball"], ShapeKind("circle")),
    **dict.fromkeys(["ellipse", "oval", "egg"], ShapeKind("ellipse", aspect=0.55)),
    "square": ShapeKind("square"),
    **dict.fromkeys(["rectangle", "rect", "bar", "brick"], ShapeKind("rectangle", aspect=0.5)),
    "triangle": ShapeKind("triangle", sides=3),
    "pentagon": ShapeKind("polygon", sides=5),
    "hexagon": ShapeKind("polygon", sides=6),
    "heptagon": ShapeKind("polygon", sides=7),
    "octagon": ShapeKind("polygon", sides=8),
    "polygon": ShapeKind("polygon", sides=7),
    "star": ShapeKind("star", sides=5, inner=0.45),
    **dict.fromkeys(["ring", "annulus", "donut", "doughnut"], ShapeKind("ring", inner=0.55)),
    **dict.fromkeys(["crescent", "moon"], ShapeKind("crescent", inner=0.8)),
    **dict.fromkeys(["diamond", "rhombus", "lozenge"], ShapeKind("diamond", aspect=0.6)),
    **dict.fromkeys(["cross", "plus"], ShapeKind("cross", inner=0.3)),
    "heart": ShapeKind("heart"),
    "arrow": ShapeKind("arrow", inner=0.25),
}


def shape_for_category(name: str) -> ShapeKind:
    """The shape a category is drawn as: by its name or one of its words, else by a stable hash."""
    key = name.strip().lower()
    words = [w for w in re.split(r"[^a-z0-9]+", key) if w]
    for word in [key, *words]:
        for candidate in (word, word.removesuffix("s"), word.removesuffix("es")):
            if candidate in _ALIASES:
                return _ALIASES[candidate]
    # sha256, not hash(): Python salts str hashes per process, and a class must keep its shape.
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return ShapeKind(
        family=SHAPE_FAMILIES[digest[0] % len(SHAPE_FAMILIES)],
        sides=5 + digest[1] % 5,
        aspect=round(0.4 + 0.45 * digest[2] / 255, 3),
        inner=round(0.3 + 0.3 * digest[3] / 255, 3),
    )


def _ellipse(aspect: float, count: int) -> np.ndarray:
    t = np.linspace(0.0, 2 * math.pi, count, endpoint=False)
    return np.stack([np.cos(t), aspect * np.sin(t)], axis=1)


def _regular(sides: int) -> np.ndarray:
    t = np.linspace(0.0, 2 * math.pi, sides, endpoint=False) - math.pi / 2
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def shape_outline(kind: ShapeKind, *, radius: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Unit-radius outline (Nx2, x/y) of a shape and its hole (or None), before rotation."""
    # Enough vertices that a curve's facets stay under half a pixel at this radius.
    outline, hole = _unit_outline(kind, round_count=int(np.clip(radius, 32, 256)))
    if kind.family in _SQUASHED:
        # Unknown names that hash to the same family still differ: their aspect squashes it.
        outline = outline * np.array([1.0, kind.aspect])
    return outline, hole


_SQUASHED = frozenset({"triangle", "polygon", "star", "cross", "heart", "arrow"})


def _unit_outline(kind: ShapeKind, *, round_count: int) -> tuple[np.ndarray, np.ndarray | None]:
    family = kind.family
    if family == "circle":
        return _ellipse(1.0, round_count), None
    if family == "ellipse":
        return _ellipse(kind.aspect, round_count), None
    if family in ("square", "rectangle"):
        h = 1.0 if family == "square" else kind.aspect
        return np.array([[-1, -h], [1, -h], [1, h], [-1, h]], float) / math.hypot(1, h), None
    if family == "triangle":
        return _regular(3), None
    if family == "polygon":
        return _regular(kind.sides), None
    if family == "star":
        points = _regular(2 * kind.sides)
        points[1::2] *= kind.inner
        return points, None
    if family == "ring":
        return _ellipse(1.0, round_count), _ellipse(1.0, round_count) * kind.inner
    if family == "crescent":
        bite = _ellipse(1.0, round_count) * kind.inner + np.array([1.0 - kind.inner + 0.35, 0.0])
        return _ellipse(1.0, round_count), bite
    if family == "diamond":
        return np.array([[0, -1], [kind.aspect, 0], [0, 1], [-kind.aspect, 0]], float), None
    if family == "cross":
        a = kind.inner
        arms = [[-a, -1], [a, -1], [a, -a], [1, -a], [1, a], [a, a]]
        arms += [[a, 1], [-a, 1], [-a, a], [-1, a], [-1, -a], [-a, -a]]
        return np.array(arms, float), None
    if family == "heart":
        t = np.linspace(0.0, 2 * math.pi, round_count, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        return np.stack([x, y + 2.5], axis=1) / 17.0, None
    if family == "arrow":
        w = kind.inner
        tip = [[-1, -w], [0.2, -w], [0.2, -0.7], [1, 0], [0.2, 0.7], [0.2, w], [-1, w]]
        return np.array(tip, float), None
    raise ValueError(f"unknown shape family {family!r}; expected one of {SHAPE_FAMILIES}")


def draw_shape_mask(
    kind: ShapeKind,
    *,
    centre: tuple[float, float],
    radius: float,
    angle: float,
    image_size: tuple[int, int],
) -> tuple[tuple[int, int], Image.Image | None]:
    """Mask of a placed shape, clipped to the image: (x0, y0) of its window, and the window.

    The window is an 'L' image holding only 255 (inside) and 0, drawn without anti-aliasing so
    the mask is exactly the pixels a paste through it covers; None if the shape is off the image.
    """
    width, height = image_size
    outline, hole = shape_outline(kind, radius=radius)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])

    def place(points: np.ndarray) -> np.ndarray:
        return points @ rotation.T * radius + np.asarray(centre)

    outer = place(outline)
    x0, y0 = (max(0, math.floor(v)) for v in outer.min(axis=0))
    x1 = min(width, math.ceil(outer[:, 0].max()) + 1)
    y1 = min(height, math.ceil(outer[:, 1].max()) + 1)
    if x1 <= x0 or y1 <= y0:
        return (0, 0), None
    mask = Image.new("L", (x1 - x0, y1 - y0), 0)
    draw = ImageDraw.Draw(mask)
    offset = np.array([x0, y0], float)
    draw.polygon([tuple(p) for p in (outer - offset).tolist()], fill=255)
    if hole is not None:
        draw.polygon([tuple(p) for p in (place(hole) - offset).tolist()], fill=0)
    return (x0, y0), mask


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


def _grain(rng: np.random.Generator, image: Image.Image, amplitude: int) -> Image.Image:
    """The image plus fine grey noise in [-amplitude, amplitude] (rare: PNGs get slower)."""
    noise = rng.integers(0, 2 * amplitude + 1, size=(image.height, image.width), dtype=np.uint8)
    return ImageChops.add(image, Image.fromarray(noise).convert("RGB"), 1.0, -amplitude)


def _colour_pair(rng: np.random.Generator, *, avoid: np.ndarray | None) -> np.ndarray:
    """Two related colours; the first is pushed away from `avoid` so objects stand out."""
    first = rng.integers(0, 256, size=3).astype(np.float32)
    if avoid is not None and float(np.linalg.norm(first - avoid)) < 90.0:
        first = (first + 128.0) % 256.0
    second = np.clip(first + rng.uniform(-120, 120, size=3), 0, 255)
    return np.stack([first, second]).astype(np.float32)


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of an HxWx3 uint8 image: deterministic and fast, readable by any decoder.

    Written directly (every row with PNG's "Up" filter, zlib level 1) rather than through
    Pillow: Pillow tries four filters on every row, which costs about three times as much at
    512x512 for files of the same size, and PNG encoding bounds how fast a run can go.
    """
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"encode_png needs HxWx3 uint8 pixels (got {pixels.dtype} {pixels.shape})")
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, width * 3)
    filtered = np.empty((height, width * 3 + 1), dtype=np.uint8)
    filtered[:, 0] = 2  # filter type "Up": each byte minus the byte above it, modulo 256
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(filtered.tobytes(), 1)),
            _png_chunk(b"IEND", b""),
        ]
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


class ProceduralGenerator:
    """Shapes with textured fills on varied backgrounds; each sample from its own seed."""

    name: ClassVar[str] = "procedural"
    version: ClassVar[str] = "1"
    modality: ClassVar[str] = "image"

    def __init__(self, config: ProceduralImageConfig, *, categories: list[str]) -> None:
        if not categories:
            raise InputError(
                "procedural generator: categories is empty; list the classes the images should hold"
            )
        self.config = config
        self.categories = list(categories)
        self.shapes = {name: shape_for_category(name) for name in self.categories}
        self.versions = {"numpy": np.__version__, "pillow": PIL.__version__}

    def quota_categories(self) -> list[str | None]:
        return list(self.categories)

    def generate(self, specs: list[SampleSpec]) -> list[GeneratedSample]:
        return [self._generate_one(spec) for spec in specs]

    def _generate_one(self, spec: SampleSpec) -> GeneratedSample:
        config = self.config
        width, height = config.size
        rng = np.random.default_rng(spec.seed)
        background_kind = spec.attributes.get("background")
        if background_kind not in TEXTURES:
            background_kind = TEXTURES[int(rng.integers(len(TEXTURES)))]
        background_colours = _colour_pair(rng, avoid=None)
        canvas = texture(
            rng, background_kind, height=height, width=width, colours=background_colours
        )
        if rng.random() < 0.25:
            canvas = _grain(rng, canvas, int(rng.integers(2, 9)))
        # Objects keep away from the background's mean colour (its only colour when solid).
        avoid = background_colours[0] if background_kind == "solid" else background_colours.mean(0)

        low, high = config.objects_per_image
        count = int(rng.integers(low, high + 1))
        first = spec.category or self.categories[int(rng.integers(len(self.categories)))]
        placed: list[PlacedObject] = []
        for z in range(count):
            category = first if z == 0 else self.categories[int(rng.integers(len(self.categories)))]
            placed.append(self._draw_object(rng, canvas, category, z=z, avoid=avoid))

        scene = labels_from_masks(
            placed, shape=(height, width), min_visible_fraction=config.min_visible_fraction
        )
        sample_key = sample_id(spec.batch_id, "image", spec.index)
        sample = Sample(
            id=sample_key,
            spec=spec,
            uri=f"images/{sample_key}.png",
            width=width,
            height=height,
            objects=scene.objects,
            attributes={"background": background_kind},
            provenance=Provenance(
                generator=self.name,
                generator_version=self.version,
                seed=spec.seed,
                params={
                    "size": [width, height],
                    "objects_per_image": list(config.objects_per_image),
                    "object_scale_range": list(config.object_scale_range),
                    "min_visible_fraction": config.min_visible_fraction,
                    "categories": list(self.categories),
                    "objects_placed": count,
                    "background": background_kind,
                },
                versions=dict(self.versions),
            ),
        )
        return GeneratedSample(
            sample=sample,
            pixels=np.array(canvas),
            foreground=scene.foreground,
            ignore=scene.ignore,
            extras={"hidden": scene.hidden, "placed": count},
        )

    def _draw_object(
        self,
        rng: np.random.Generator,
        canvas: Image.Image,
        category: str,
        *,
        z: int,
        avoid: np.ndarray,
    ) -> PlacedObject:
        """Draw one object on top of `canvas` (in place) and return its full, exact mask."""
        width, height = canvas.size
        kind = self.shapes.get(category) or shape_for_category(category)
        low, high = self.config.object_scale_range
        radius = max(2.0, rng.uniform(low, high) * min(width, height) / 2)
        # The centre stays far enough in that at most ~30% of the object's size leaves the image.
        margin_x, margin_y = min(0.4 * radius, width / 2), min(0.4 * radius, height / 2)
        centre = (rng.uniform(margin_x, width - margin_x), rng.uniform(margin_y, height - margin_y))
        angle = rng.uniform(0.0, 2 * math.pi)
        fill_kind = TEXTURES[int(rng.integers(len(TEXTURES)))]
        colours = _colour_pair(rng, avoid=avoid)
        (x0, y0), mask = draw_shape_mask(
            kind, centre=centre, radius=radius, angle=angle, image_size=canvas.size
        )
        full_mask = np.zeros((canvas.height, canvas.width), dtype=bool)
        if mask is not None:
            fill = texture(rng, fill_kind, height=mask.height, width=mask.width, colours=colours)
            if rng.random() < 0.2:
                fill = _grain(rng, fill, int(rng.integers(3, 13)))
            canvas.paste(fill, (x0, y0), mask)
            full_mask[y0 : y0 + mask.height, x0 : x0 + mask.width] = np.asarray(mask) != 0
        return PlacedObject(
            category=category,
            full_mask=full_mask,
            attributes={"shape": kind.family, "fill": fill_kind, "z": z},
        )
