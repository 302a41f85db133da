"""The `diffusion_inpaint` generator: paint one object into a background inside a chosen box.

Each sample's rng picks the background (procedural or from a folder) and a box; the inpainting
pipeline repaints the box (or the ellipse inside it) from the prompt, and everything outside that
region is copied back from the background, so only the painted region changed. The label's mask
is the foreground found inside the box (`foreground_in_box`), with its tight box; the requested
box is kept in the label's attributes. Samples of a chunk share pipeline batches; each has its
own seeded generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np
from PIL import Image

from synthgate.config import DiffusionInpaintConfig
from synthgate.generators.diffusion.backgrounds import Backgrounds
from synthgate.generators.diffusion.common import DiffusionGenerator, boxed_label, fill_template
from synthgate.generators.diffusion.models import LoadedModel, run_pipeline
from synthgate.generators.diffusion.segment import Segmenter, foreground_in_box
from synthgate.samples import GeneratedSample, SampleSpec


@dataclass
class PlannedPaint:
    spec: SampleSpec
    category: str
    attributes: dict[str, str]
    prompt: str
    box: list[float]  # COCO xywh
    region: np.ndarray  # HxW bool: the pixels the pipeline may repaint
    background: np.ndarray
    background_source: str


class InpaintGenerator(DiffusionGenerator):
    name: ClassVar[str] = "diffusion_inpaint"
    version: ClassVar[str] = "0.2.0"  # 0.2: procedural backgrounds drawn coarse, then resized
    pipeline_kind: ClassVar[str] = "inpaint"
    config: DiffusionInpaintConfig

    def __init__(
        self,
        config: DiffusionInpaintConfig,
        *,
        categories: list[str],
        model: LoadedModel | None = None,
        segmenter: Segmenter | None = None,
    ) -> None:
        super().__init__(config, categories=categories, model=model, segmenter=segmenter)
        self.backgrounds = Backgrounds(config.background, size=config.size)

    def generate(self, specs: list[SampleSpec]) -> list[GeneratedSample]:
        plans = [self._plan(spec) for spec in specs]
        made: list[GeneratedSample] = []
        batch = self.config.model.batch_size
        for start in range(0, len(plans), batch):
            chunk = plans[start : start + batch]
            images = run_pipeline(
                self.model,
                self.config.model,
                seeds=[plan.spec.seed for plan in chunk],
                size=self.config.size,
                negative_prompt=self.config.negative_prompt,
                prompt=[plan.prompt for plan in chunk],
                image=[Image.fromarray(plan.background) for plan in chunk],
                mask_image=[Image.fromarray(plan.region.astype(np.uint8) * 255) for plan in chunk],
                strength=self.config.strength,
            )
            made.extend(self._label(plan, image) for plan, image in zip(chunk, images, strict=True))
        return made

    def _plan(self, spec: SampleSpec) -> PlannedPaint:
        config = self.config
        width, height = config.size
        rng = np.random.default_rng(spec.seed)
        category = self.category_of(spec, rng)
        attributes = self.attributes_of(spec.attributes, rng)
        w = max(2, round(rng.uniform(*config.box_scale_range) * width))
        h = max(2, round(rng.uniform(*config.box_scale_range) * height))
        x = int(rng.integers(0, width - w + 1))
        y = int(rng.integers(0, height - h + 1))
        region = np.zeros((height, width), dtype=np.uint8)
        if config.mask_shape == "ellipse":
            centre = (x + w // 2, y + h // 2)
            cv2.ellipse(region, centre, (w // 2, h // 2), 0, 0, 360, 1, thickness=-1)
        else:
            region[y : y + h, x : x + w] = 1
        background, source = self.backgrounds.draw(rng)
        return PlannedPaint(
            spec=spec,
            category=category,
            attributes=attributes,
            prompt=fill_template(config.prompt, {"category": category, **attributes}),
            box=[float(x), float(y), float(w), float(h)],
            region=region.astype(bool),
            background=background,
            background_source=source,
        )

    def _label(self, plan: PlannedPaint, painted: np.ndarray) -> GeneratedSample:
        # Outside the region the VAE round trip would blur the background: keep it as it was.
        image = np.where(plan.region[..., None], painted, plan.background)
        mask = foreground_in_box(image, plan.box, self.segmenter) & plan.region
        objects = []
        if mask.any():
            objects.append(
                boxed_label(
                    plan.category,
                    mask,
                    plan.box,
                    requested_area=float(plan.region.sum()),
                    attributes=plan.attributes,
                )
            )
        missing = [] if objects else [{"category": plan.category, "box": plan.box}]
        provenance = self.provenance(
            plan.spec,
            prompt=plan.prompt,
            params={"box": plan.box, "background": plan.background_source, "missing": missing},
        )
        sample = self.sample(
            plan.spec,
            objects=objects,
            attributes={**plan.attributes, "background": plan.background_source},
            provenance=provenance,
        )
        return GeneratedSample(
            sample=sample,
            pixels=image,
            foreground=mask,
            ignore=np.zeros_like(mask),
            extras={"hidden": 0, "missing": len(missing)},
        )
