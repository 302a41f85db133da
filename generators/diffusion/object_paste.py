"""The `diffusion_object_paste` generator (X-Paste): diffusion-made objects pasted onto backgrounds.

For each sample, one seeded rng plans everything first: how many objects, their categories and
attribute values, which pool slot each comes from, scale, flip and position, and the background.
The instances come from the `InstancePool` ("a photo of a single {category}" -> segmenter ->
filters), generated in pipeline batches for the whole chunk; then each image is composed with
hard-edged masks, so labels from `labels_from_masks` are exact and occlusion-aware. An instance
slot that failed every attempt is left out and reported in provenance (`missing`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np

from synthgate.config import DiffusionObjectPasteConfig
from synthgate.generators.diffusion.backgrounds import Backgrounds
from synthgate.generators.diffusion.clip import ClipScorer
from synthgate.generators.diffusion.common import DiffusionGenerator, fill_template
from synthgate.generators.diffusion.instances import Instance, InstanceKey, InstancePool
from synthgate.generators.diffusion.models import LoadedModel, check_size
from synthgate.generators.diffusion.segment import Segmenter
from synthgate.generators.labels import PlacedObject, labels_from_masks
from synthgate.masks import blank_mask
from synthgate.samples import GeneratedSample, SampleSpec


@dataclass
class PlannedObject:
    """One object of a sample, decided before any pixel is made."""

    key: InstanceKey
    attributes: dict[str, str]
    scale: float  # longer side of the pasted object / shorter side of the image
    flip: bool
    position: tuple[float, float]  # where in the free range, 0..1 on each axis


@dataclass
class PlannedSample:
    spec: SampleSpec
    objects: list[PlannedObject]
    background: np.ndarray
    background_source: str


class ObjectPasteGenerator(DiffusionGenerator):
    name: ClassVar[str] = "diffusion_object_paste"
    version: ClassVar[str] = "0.2.0"  # 0.2: procedural backgrounds drawn coarse, then resized
    pipeline_kind: ClassVar[str] = "text2image"
    config: DiffusionObjectPasteConfig

    def __init__(
        self,
        config: DiffusionObjectPasteConfig,
        *,
        categories: list[str],
        model: LoadedModel | None = None,
        segmenter: Segmenter | None = None,
    ) -> None:
        super().__init__(config, categories=categories, model=model, segmenter=segmenter)
        if config.instance_size is not None:
            check_size(config.instance_size, self.model, field_name="image.instance_size")
        self.backgrounds = Backgrounds(config.background, size=config.size)
        device = str(self.model.info["device"])
        clip = None if config.clip is None else ClipScorer(config.clip, device=device)
        self.pool = InstancePool(config, model=self.model, segmenter=self.segmenter, clip=clip)

    def generate(self, specs: list[SampleSpec]) -> list[GeneratedSample]:
        plans = [self._plan(spec) for spec in specs]
        instances = self.pool.get([obj.key for plan in plans for obj in plan.objects])
        return [self._compose(plan, instances) for plan in plans]

    def _plan(self, spec: SampleSpec) -> PlannedSample:
        config = self.config
        rng = np.random.default_rng(spec.seed)
        low, high = config.objects_per_image
        count = int(rng.integers(low, high + 1))
        first = self.category_of(spec, rng)
        objects = []
        for index in range(count):
            category = (
                first if index == 0 else self.categories[int(rng.integers(len(self.categories)))]
            )
            attributes = self.attributes_of(spec.attributes if index == 0 else {}, rng)
            prompt = fill_template(config.prompt, {"category": category, **attributes})
            objects.append(
                PlannedObject(
                    key=InstanceKey(category, prompt, int(rng.integers(config.pool_size))),
                    attributes=attributes,
                    scale=float(rng.uniform(*config.object_scale_range)),
                    flip=bool(rng.random() < config.flip_probability),
                    position=(float(rng.random()), float(rng.random())),
                )
            )
        background, source = self.backgrounds.draw(rng)
        return PlannedSample(spec, objects, background, source)

    def _compose(self, plan: PlannedSample, instances: dict[InstanceKey, Any]) -> GeneratedSample:
        canvas = plan.background.copy()
        height, width = canvas.shape[:2]
        placed: list[PlacedObject] = []
        pasted: list[dict[str, Any]] = []
        missing: list[dict[str, Any]] = []
        for obj in plan.objects:
            found = instances[obj.key]
            record = {"category": obj.key.category, "prompt": obj.key.prompt, "slot": obj.key.slot}
            if not isinstance(found, Instance):
                missing.append({**record, **found.facts})
                continue
            rgb, alpha = _fit(found, obj.scale * min(width, height), width, height, obj.flip)
            h, w = alpha.shape
            x = int(obj.position[0] * (width - w))
            y = int(obj.position[1] * (height - h))
            window = canvas[y : y + h, x : x + w]
            window[alpha] = rgb[alpha]
            full_mask = blank_mask(height, width)
            full_mask[y : y + h, x : x + w] = alpha
            placed.append(PlacedObject(obj.key.category, full_mask, dict(obj.attributes)))
            pasted.append({**record, **found.facts, "box": [x, y, w, h], "flip": obj.flip})
        scene = labels_from_masks(
            placed, shape=(height, width), min_visible_fraction=self.config.min_visible_fraction
        )
        primary = plan.objects[0]
        provenance = self.provenance(
            plan.spec,
            prompt=primary.key.prompt,
            params={
                "background": plan.background_source,
                "instances": pasted,
                "missing": missing,
            },
        )
        sample = self.sample(
            plan.spec,
            objects=scene.objects,
            attributes={**primary.attributes, "background": plan.background_source},
            provenance=provenance,
        )
        return GeneratedSample(
            sample=sample,
            pixels=canvas,
            foreground=scene.foreground,
            ignore=scene.ignore,
            extras={"hidden": scene.hidden, "missing": len(missing)},
        )


def _fit(
    instance: Instance, longer_side: float, width: int, height: int, flip: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The instance resized so its longer side is `longer_side` (and it fits), maybe mirrored."""
    h, w = instance.mask.shape
    factor = min(longer_side / max(h, w), width / w, height / h)
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    shrinking = factor < 1
    rgb = cv2.resize(
        instance.rgb, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    )
    soft = cv2.resize(instance.mask.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    alpha = soft >= 0.5
    if not alpha.any():  # a sliver shrunk below half a pixel everywhere: keep its core
        alpha = soft >= soft.max()
    if flip:
        rgb, alpha = rgb[:, ::-1], alpha[:, ::-1]
    return np.ascontiguousarray(rgb), np.ascontiguousarray(alpha)
