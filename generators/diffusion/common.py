"""What the three diffusion generators share: model loading, prompts, attributes, provenance.

`DiffusionGenerator` is built like every generator (`Cls(config, categories=...)`), loads its
pipeline through `models.load_model` (so a missing or wrong model fails before anything is
written), and gives subclasses the prompt, attribute and provenance plumbing. Subclasses write
`generate`. `boxed_label` turns the mask a model drew for a requested box into an ObjectLabel
that keeps how well it fills that box (`box_iou`, the xywh IoU, is the measure).
"""

from __future__ import annotations

import string
from typing import Any, ClassVar

import numpy as np

from synthgate.errors import InputError
from synthgate.generators.diffusion.models import LoadedModel, check_size, load_model
from synthgate.generators.diffusion.segment import Segmenter, segmenter_by_name
from synthgate.masks import box_iou, encode_mask, tight_bbox
from synthgate.samples import (
    GeneratedSample,
    ObjectLabel,
    Provenance,
    Sample,
    SampleSpec,
    sample_id,
)


def boxed_label(
    category: str,
    mask: np.ndarray,
    box: list[float],
    *,
    requested_area: float,
    attributes: dict[str, str],
) -> ObjectLabel:
    """The label of an object a model drew where it was asked to: the foreground `mask` found in
    the requested `box` (xywh), with that box and how well the object fills it kept as attributes
    so the rubric can judge whether the model honoured the layout."""
    bbox = tight_bbox(mask)
    area = float(mask.sum())
    return ObjectLabel(
        category=category,
        bbox=bbox,
        mask=encode_mask(mask),
        area=area,
        attributes={
            **attributes,
            "requested_box": box,
            "box_fill": round(area / requested_area, 4),
            "box_iou": round(box_iou(bbox, box), 4),
        },
    )


def fill_template(template: str, values: dict[str, str]) -> str:
    """`template` with its slots filled; config validation already checked every slot is known."""
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    return template.format_map({name: values[name] for name in names})


class DiffusionGenerator:
    """Base of the diffusion generators: one loaded pipeline, one segmenter, seeded choices."""

    name: ClassVar[str]
    version: ClassVar[str] = "0.1.0"
    modality: ClassVar[str] = "image"
    pipeline_kind: ClassVar[str]
    overlaps_judging: ClassVar[bool] = True  # the model runs in torch, the GIL released

    def __init__(
        self,
        config: Any,
        *,
        categories: list[str],
        model: LoadedModel | None = None,
        segmenter: Segmenter | None = None,
    ) -> None:
        if not categories:
            raise InputError("categories is empty; list the classes the images should hold")
        self.config = config
        self.categories = list(categories)
        self.model = model if model is not None else load_model(config.model, self.pipeline_kind)
        # The config refused a size off config.VAE_BLOCK; a VAE with more levels than Stable
        # Diffusion's needs a larger multiple, which only its loaded pipeline tells. An image
        # object_paste pastes instances of their own size into is made by no pipeline.
        if getattr(config, "instance_size", None) is None:
            check_size(config.size, self.model)
        self.segmenter = segmenter if segmenter is not None else segmenter_by_name(config.segmenter)
        # The runner hands over this many specs at a time: one pipeline batch's worth.
        self.chunk_size = config.model.batch_size

    def quota_categories(self) -> list[str | None]:
        return list(self.categories)

    def generate(self, specs: list[SampleSpec]) -> list[GeneratedSample]:
        raise NotImplementedError

    def category_of(self, spec: SampleSpec, rng: np.random.Generator) -> str:
        if spec.category is not None:
            return spec.category
        return self.categories[int(rng.integers(len(self.categories)))]

    def attributes_of(self, given: dict[str, str], rng: np.random.Generator) -> dict[str, str]:
        """A value for every attribute slot: the planner's if it gave one, else a seeded draw.

        Every axis draws from `rng` either way, so what follows does not shift with `given`.
        """
        chosen = {}
        for name, values in self.config.attributes.items():
            drawn = values[int(rng.integers(len(values)))]
            chosen[name] = given.get(name, drawn)
        return chosen

    def provenance(self, spec: SampleSpec, *, prompt: str, params: dict[str, Any]) -> Provenance:
        settings = self.config.model_dump(mode="json", exclude={"model", "count"})
        return Provenance(
            generator=self.name,
            generator_version=self.version,
            seed=spec.seed,
            params={**settings, **params},
            model=dict(self.model.info),
            prompt=prompt,
            negative_prompt=self.config.negative_prompt,
        )

    def sample(
        self,
        spec: SampleSpec,
        *,
        objects: list[ObjectLabel],
        attributes: dict[str, str],
        provenance: Provenance,
    ) -> Sample:
        key = sample_id(spec.batch_id, spec.modality, spec.index)
        width, height = self.config.size
        return Sample(
            id=key,
            spec=spec,
            uri=f"images/{key}.png",
            width=width,
            height=height,
            objects=objects,
            attributes=attributes,
            provenance=provenance,
        )
