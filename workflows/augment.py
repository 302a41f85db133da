"""Albumentations pipelines (from their own YAML serialisation) applied to synthetic samples.

`load_pipeline(path)` reads a pipeline saved with `albumentations.save(..., data_format="yaml")`
(configs/augment/*.yaml); `augment_sample(generated, pipeline, name=…)` runs it on one sample's
pixels together with every object's mask and box (and the foreground/ignore masks validators
use), re-derives each box from its transformed mask (exact, where a transformed box is only an
envelope), drops objects the transform pushed out of the image, and records the pipeline and
its seed in the provenance. The seed comes from the sample's own seed, so a sample is augmented
the same way in any batch or worker. `AugmentedGenerator` wraps any image generator with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import albumentations as A
import numpy as np

from synthgate.errors import InputError
from synthgate.generators import Generator
from synthgate.masks import decode_mask, encode_mask, tight_bbox
from synthgate.samples import GeneratedSample, ObjectLabel, SampleSpec

AUGMENT_STREAM = 0xA06  # keeps the augmentation seed apart from the generator's own draws


def load_pipeline(path: Path) -> A.Compose:
    """A Compose from albumentations' YAML serialisation, made bbox-aware (COCO boxes)."""
    if not path.is_file():
        raise InputError(f"augment: {path}: file not found; save one with albumentations.save")
    try:
        loaded = A.load(str(path), data_format="yaml")
    except Exception as error:  # albumentations raises many types for a bad file
        raise InputError(
            f"augment: {path}: not an albumentations pipeline ({type(error).__name__}: {error}); "
            "write it with albumentations.save(transform, path, data_format='yaml')"
        ) from None
    if not isinstance(loaded, A.Compose):
        raise InputError(f"augment: {path}: the top level must be a Compose")
    return A.Compose(
        list(loaded.transforms),
        bbox_params=A.BboxParams(format="coco", label_fields=["object_index"], clip=True),
        p=loaded.p,
    )


def augment_seed(sample_seed: int) -> int:
    return int(np.random.SeedSequence([sample_seed, AUGMENT_STREAM]).generate_state(1)[0])


def augment_sample(
    generated: GeneratedSample, pipeline: A.Compose, *, name: str
) -> GeneratedSample:
    """The sample with the pipeline applied to pixels, masks and boxes (see module doc)."""
    sample = generated.sample
    if generated.pixels is None:
        return generated
    height, width = generated.pixels.shape[:2]
    empty = np.zeros((height, width), dtype=np.uint8)
    object_masks = [
        decode_mask(obj.mask).astype(np.uint8) if obj.mask is not None else empty
        for obj in sample.objects
    ]
    extra = [
        (m if m is not None else empty).astype(np.uint8)
        for m in (generated.foreground, generated.ignore)
    ]
    seed = augment_seed(sample.spec.seed)
    pipeline.set_random_seed(seed)
    # Zero-sized boxes are invalid to albumentations; such objects keep only their mask.
    boxed = [i for i, obj in enumerate(sample.objects) if obj.bbox[2] > 0 and obj.bbox[3] > 0]
    result = pipeline(
        image=generated.pixels,
        masks=[*object_masks, *extra],
        bboxes=np.array([sample.objects[i].bbox for i in boxed], dtype=np.float32).reshape(-1, 4),
        object_index=boxed,
    )
    masks = [np.asarray(m).astype(bool) for m in result["masks"]]
    boxes = {
        int(i): [float(v) for v in b]
        for i, b in zip(result["object_index"], result["bboxes"], strict=True)
    }
    objects: list[ObjectLabel] = []
    for index, obj in enumerate(sample.objects):
        if obj.mask is not None:
            mask = masks[index]
            if not mask.any():
                continue  # pushed out of the image
            update = {
                "bbox": tight_bbox(mask),
                "mask": encode_mask(mask),
                "area": float(mask.sum()),
            }
        elif index in boxes:
            box = boxes[index]
            update = {"bbox": box, "area": box[2] * box[3]}
        else:
            continue
        objects.append(obj.model_copy(update=update))
    new_height, new_width = result["image"].shape[:2]
    provenance = sample.provenance.model_copy(
        update={"params": {**sample.provenance.params, "augment": {"pipeline": name, "seed": seed}}}
    )
    augmented = sample.model_copy(
        update={
            "objects": objects,
            "width": new_width,
            "height": new_height,
            "provenance": provenance,
        }
    )
    return GeneratedSample(
        sample=augmented,
        pixels=np.ascontiguousarray(result["image"]),
        foreground=masks[len(sample.objects)],
        ignore=masks[len(sample.objects) + 1],
        extras={**generated.extras, "dropped_by_augment": len(sample.objects) - len(objects)},
    )


class AugmentedGenerator:
    """Any image generator, with an augmentation pipeline run on every sample it makes."""

    name: ClassVar[str] = "augmented"  # samples keep their generator's name in their spec
    version: ClassVar[str] = "1"
    modality: ClassVar[str] = "image"

    def __init__(self, inner: Generator, path: Path) -> None:
        self.inner = inner
        self.pipeline = load_pipeline(path)
        self.pipeline_name = path.name
        self.chunk_size = getattr(inner, "chunk_size", 8)

    def quota_categories(self) -> list[str | None]:
        return self.inner.quota_categories()

    def generate(self, specs: list[SampleSpec]) -> list[GeneratedSample]:
        return [
            augment_sample(g, self.pipeline, name=self.pipeline_name)
            for g in self.inner.generate(specs)
        ]

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)
