"""The `diffusion_layout` generator: boxes + phrases -> image with GLIGEN, labelled per box.

Each sample's rng draws a layout of non-overlapping boxes (the first holds the sample's
category), GLIGEN paints it, and the foreground test inside each box (`foreground_in_box`) gives
that object's mask; its label is the mask's RLE and tight box, with the requested box and how
much of it the object fills kept in the label's attributes, so a rubric can judge whether the
model honoured the layout. A box with no foreground gets no label and is reported as missing;
an object no box could be placed for (the boxes are too large for the count) as unplaced.
The stock GLIGEN pipeline shares one layout across its batch, so each sample is its own call.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from synthgate.config import DiffusionLayoutConfig
from synthgate.errors import InputError, quoted
from synthgate.generators.diffusion.common import (
    DiffusionGenerator,
    boxed_label,
    fill_template,
)
from synthgate.generators.diffusion.models import LoadedModel, run_pipeline
from synthgate.generators.diffusion.segment import Segmenter, foreground_in_box
from synthgate.samples import GeneratedSample, ObjectLabel, SampleSpec

PLACEMENT_TRIES = 50


def sample_layout(
    rng: np.random.Generator,
    *,
    count: int,
    width: int,
    height: int,
    scale_range: tuple[float, float],
) -> list[list[float]]:
    """Up to `count` non-overlapping COCO xywh boxes with sides in `scale_range` × image side."""
    boxes: list[list[float]] = []
    for _ in range(count):
        for _ in range(PLACEMENT_TRIES):
            w = max(2, round(rng.uniform(*scale_range) * width))
            h = max(2, round(rng.uniform(*scale_range) * height))
            x = int(rng.integers(0, width - w + 1))
            y = int(rng.integers(0, height - h + 1))
            if all(not _overlap([x, y, w, h], other) for other in boxes):
                boxes.append([float(x), float(y), float(w), float(h)])
                break
    return boxes


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


class LayoutGenerator(DiffusionGenerator):
    name: ClassVar[str] = "diffusion_layout"
    pipeline_kind: ClassVar[str] = "layout"
    config: DiffusionLayoutConfig

    def __init__(
        self,
        config: DiffusionLayoutConfig,
        *,
        categories: list[str],
        model: LoadedModel | None = None,
        segmenter: Segmenter | None = None,
    ) -> None:
        super().__init__(config, categories=categories, model=model, segmenter=segmenter)
        # Each category's phrase with the longest attribute values, before any image is made;
        # `_generate_one` checks every phrase it sends.
        longest = {name: max(values, key=len) for name, values in config.attributes.items()}
        self._check_phrases(
            [fill_template(config.phrase, {"category": c, **longest}) for c in self.categories]
        )

    def _check_phrases(self, phrases: list[str]) -> None:
        """GLIGEN encodes each phrase whole, never cut short: one longer than the text encoder's
        positions failed inside the pipeline with a ValueError."""
        pipeline = self.model.pipeline
        text_config = getattr(pipeline.text_encoder, "config", None)
        limit = int(getattr(text_config, "max_position_embeddings", 0) or 0)
        limit = limit or int(pipeline.tokenizer.model_max_length)
        for phrase in phrases:
            tokens = len(pipeline.tokenizer(phrase)["input_ids"])
            if tokens > limit:
                raise InputError(
                    f"image.phrase: the phrase {quoted(phrase)} is {tokens} tokens, and the "
                    f"model's text encoder takes at most {limit} (GLIGEN does not cut a phrase "
                    "short); shorten image.phrase, the category name or the attribute values "
                    "it names"
                )

    def generate(self, specs: list[SampleSpec]) -> list[GeneratedSample]:
        return [self._generate_one(spec) for spec in specs]

    def _generate_one(self, spec: SampleSpec) -> GeneratedSample:
        config = self.config
        width, height = config.size
        rng = np.random.default_rng(spec.seed)
        first = self.category_of(spec, rng)
        attributes = self.attributes_of(spec.attributes, rng)
        low, high = config.objects_per_image
        count = int(rng.integers(low, high + 1))
        categories = [first] + [
            self.categories[int(rng.integers(len(self.categories)))] for _ in range(count - 1)
        ]
        boxes = sample_layout(
            rng, count=count, width=width, height=height, scale_range=config.box_scale_range
        )
        # The first box always fits on an empty canvas; one that found no place in
        # PLACEMENT_TRIES draws is named in provenance, never dropped unsaid.
        unplaced = [{"category": c} for c in categories[len(boxes) :]]
        categories = categories[: len(boxes)]
        phrases = [fill_template(config.phrase, {"category": c, **attributes}) for c in categories]
        self._check_phrases(phrases)
        prompt = fill_template(
            config.prompt,
            {"category": first, "categories": _join(phrases), **attributes},
        )
        (image,) = run_pipeline(
            self.model,
            config.model,
            seeds=[spec.seed],
            size=config.size,
            negative_prompt=config.negative_prompt,
            prompt=[prompt],
            gligen_phrases=phrases,
            gligen_boxes=[
                [x / width, y / height, (x + w) / width, (y + h) / height] for x, y, w, h in boxes
            ],
            gligen_scheduled_sampling_beta=config.grounding_fraction,
        )
        objects, foreground, missing = self._labels(image, categories, boxes, attributes)
        provenance = self.provenance(
            spec,
            prompt=prompt,
            params={
                "phrases": phrases,
                "boxes": boxes,
                "missing": missing,
                **({"unplaced": unplaced} if unplaced else {}),
            },
        )
        sample = self.sample(spec, objects=objects, attributes=attributes, provenance=provenance)
        return GeneratedSample(
            sample=sample,
            pixels=image,
            foreground=foreground,
            ignore=np.zeros_like(foreground),
            extras={"hidden": 0, "missing": len(missing)},
        )

    def _labels(
        self,
        image: np.ndarray,
        categories: list[str],
        boxes: list[list[float]],
        attributes: dict[str, str],
    ) -> tuple[list[ObjectLabel], np.ndarray, list[dict[str, Any]]]:
        foreground = np.zeros(image.shape[:2], dtype=bool)
        objects, missing = [], []
        for category, box in zip(categories, boxes, strict=True):
            mask = foreground_in_box(image, box, self.segmenter)
            if not mask.any():
                missing.append({"category": category, "box": box})
                continue
            foreground |= mask
            objects.append(
                boxed_label(
                    category, mask, box, requested_area=box[2] * box[3], attributes=attributes
                )
            )
        return objects, foreground, missing


def _join(phrases: list[str]) -> str:
    if len(phrases) <= 1:
        return "".join(phrases)
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]
