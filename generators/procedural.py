"""The `procedural` image generator: shapes with textured fills on varied backgrounds, exact masks.

`ProceduralGenerator(config, categories=[...]).generate(specs)` draws one image per `SampleSpec`.
Every category is a shape family (`shape_for_category`: "circle", "ring", "hexagon", … by name;
any other name gets a family and parameters from a stable hash of the name). Masks are drawn
without anti-aliasing and fills are composited exactly where the mask is set, so the labels from
`labels_from_masks` are exact. Shapes live in shapes.py, fills in textures.py.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from PIL import Image

from synthgate.config import ProceduralImageConfig
from synthgate.errors import InputError
from synthgate.generators.labels import PlacedObject, labels_from_masks
from synthgate.generators.shapes import (
    draw_shape_mask,
    shape_for_category,
)
from synthgate.generators.textures import TEXTURES, colour_pair, grain, texture
from synthgate.masks import blank_mask
from synthgate.samples import GeneratedSample, Provenance, Sample, SampleSpec, sample_id


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
        background_colours = colour_pair(rng, avoid=None)
        canvas = texture(
            rng, background_kind, height=height, width=width, colours=background_colours
        )
        if rng.random() < 0.25:
            canvas = grain(rng, canvas, int(rng.integers(2, 9)))
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
        colours = colour_pair(rng, avoid=avoid)
        (x0, y0), mask = draw_shape_mask(
            kind, centre=centre, radius=radius, angle=angle, image_size=canvas.size
        )
        full_mask = blank_mask(canvas.height, canvas.width)
        if mask is not None:
            fill = texture(rng, fill_kind, height=mask.height, width=mask.width, colours=colours)
            if rng.random() < 0.2:
                fill = grain(rng, fill, int(rng.integers(3, 13)))
            canvas.paste(fill, (x0, y0), mask)
            full_mask[y0 : y0 + mask.height, x0 : x0 + mask.width] = np.asarray(mask) != 0
        return PlacedObject(
            category=category,
            full_mask=full_mask,
            attributes={"shape": kind.family, "fill": fill_kind, "z": z},
        )
