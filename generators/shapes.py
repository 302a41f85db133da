"""Shape families for procedural objects: category name -> shape -> exact binary mask.

`shape_for_category` maps a category to a family ("circle", "ring", "hexagon", … by name or one
of its words; any other name gets a family and parameters from a stable hash of the name) and
`draw_shape_mask` draws it without anti-aliasing, so masks are exact.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

# fmt: off
SHAPE_FAMILIES: tuple[str, ...] = (
    "circle", "ellipse", "square", "rectangle", "triangle", "polygon", "star", "ring", "crescent",
    "diamond", "cross", "heart", "arrow",
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
