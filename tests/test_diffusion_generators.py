"""The three diffusion generators on tiny pipelines, called directly: `generate(specs)`.

One contract table (exact labels, provenance, reproducibility, batch independence) over every
generator, then what each one promises of its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tiny_diffusers import CATEGORIES, GENERATORS, KIND_OF_GENERATOR, image_section, specs_for

from synthgate.config import parse_config
from synthgate.errors import InputError
from synthgate.generators import build_generator
from synthgate.generators.diffusion.object_paste import ObjectPasteGenerator
from synthgate.masks import decode_mask, tight_bbox
from synthgate.samples import GeneratedSample

pytest_plugins = ["diffusion_fixtures"]  # tiny_models


def build(generator: str, models: dict[str, Path], **overrides: Any) -> Any:
    components = overrides.pop("components", {})
    section = image_section(generator, models[KIND_OF_GENERATOR[generator]], **overrides)
    data = {"name": "t", "categories": CATEGORIES, "image": section}
    config = parse_config(data, source=Path("test.yaml"))
    return build_generator(config.image, categories=CATEGORIES, **components)


def assert_exact_labels(made: GeneratedSample) -> None:
    sample = made.sample
    assert made.pixels is not None and made.pixels.shape == (64, 64, 3)
    assert made.pixels.dtype == np.uint8
    assert sample.uri == f"images/{sample.id}.png" and (sample.width, sample.height) == (64, 64)
    assert made.foreground is not None and made.foreground.shape == (64, 64)
    for obj in sample.objects:
        assert obj.category in CATEGORIES
        assert obj.mask is not None
        mask = decode_mask(obj.mask)
        assert int(mask.sum()) == obj.area > 0
        assert obj.bbox == tight_bbox(mask)
        assert not (mask & ~made.foreground).any()


@pytest.mark.parametrize("generator", GENERATORS)
def test_labels_are_exact_and_provenance_complete(
    generator: str, tiny_models: dict[str, Path]
) -> None:
    specs = specs_for(generator, 4)
    made = build(generator, tiny_models).generate(specs)
    assert [m.sample.spec for m in made] == specs
    assert sum(len(m.sample.objects) for m in made) > 0, "a tiny model still yields objects"
    for spec, one in zip(specs, made, strict=True):
        assert_exact_labels(one)
        provenance = one.sample.provenance
        assert provenance.generator == generator and provenance.seed == spec.seed
        model = provenance.model or {}
        assert model["path"] == str(tiny_models[KIND_OF_GENERATOR[generator]])
        assert model["revision"].startswith("local-")
        assert (model["steps"], model["guidance"], model["scheduler"]) == (2, 5.0, "DDIMScheduler")
        assert (model["dtype"], model["device"]) == ("float32", "cpu")
        assert provenance.prompt and spec.category in provenance.prompt
        # Package versions are the run's (manifest.json), not the sample's: a sample is the
        # same bytes whichever extras are installed.
        assert provenance.versions == {}


@pytest.mark.parametrize("generator", GENERATORS)
def test_same_specs_give_identical_samples(generator: str, tiny_models: dict[str, Path]) -> None:
    specs = specs_for(generator, 3)
    first = build(generator, tiny_models).generate(specs)
    again = build(generator, tiny_models).generate(specs)  # a fresh generator: no shared pool
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.pixels, b.pixels)
        assert a.sample.model_dump() == b.sample.model_dump()
    other = build(generator, tiny_models).generate(specs_for(generator, 3, seed=8))
    assert not any(np.array_equal(a.pixels, b.pixels) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize("generator", GENERATORS)
@pytest.mark.parametrize(
    "sampling",
    [
        {"model": {"scheduler": "ddim"}},
        # Ancestral sampling draws fresh noise every step: from each sample's own generator.
        {"model": {"scheduler": "euler_a"}, "negative_prompt": "blurry"},
    ],
    ids=["ddim", "euler_a-negative"],
)
def test_a_sample_does_not_depend_on_its_batch(
    generator: str, sampling: dict[str, Any], tiny_models: dict[str, Path]
) -> None:
    specs = specs_for(generator, 4, seed=11)
    model = sampling["model"]
    extra = {k: v for k, v in sampling.items() if k != "model"}
    alone = build(generator, tiny_models, model={**model, "batch_size": 1}, **extra)
    together = build(generator, tiny_models, model={**model, "batch_size": 4}, **extra)
    batched = together.generate(specs)
    for spec, made in zip(specs, batched, strict=True):
        (single,) = alone.generate([spec])
        difference = np.abs(single.pixels.astype(float) - made.pixels.astype(float)).mean()
        assert difference <= 1.0, f"{spec.index}: mean |Δ| = {difference:.3f} / 255"


def test_attribute_slots_take_the_planners_values_or_a_seeded_draw(
    tiny_models: dict[str, Path],
) -> None:
    generator = build(
        "diffusion_inpaint",
        tiny_models,
        prompt="a photo of a {colour} {category}",
        attributes={"colour": ["red", "blue"]},
    )
    planned = specs_for("diffusion_inpaint", 4)
    planned = [
        s.model_copy(update={"attributes": {"colour": "blue"}}) for s in planned[:2]
    ] + planned[2:]
    made = generator.generate(planned)
    for one in made[:2]:
        assert one.sample.attributes["colour"] == "blue"
        assert one.sample.provenance.prompt == f"a photo of a blue {one.sample.spec.category}"
    for one in made[2:]:
        colour = one.sample.attributes["colour"]
        assert colour in {"red", "blue"} and f" {colour} " in (one.sample.provenance.prompt or "")


def test_object_paste_pools_instances_on_disk(
    tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs = specs_for("diffusion_object_paste", 3)
    first = build("diffusion_object_paste", tiny_models, pool_dir=str(tmp_path)).generate(specs)
    pooled = sorted(tmp_path.rglob("*.png"))
    assert pooled and all(Image.open(p).mode == "RGBA" for p in pooled)
    facts = [json.loads(p.read_text()) for p in tmp_path.rglob("*.json")]
    assert {f["category"] for f in facts} <= set(CATEGORIES) and all(
        "seed" in f or "attempts" in f for f in facts
    )

    reader: ObjectPasteGenerator = build(
        "diffusion_object_paste", tiny_models, pool_dir=str(tmp_path)
    )
    calls = []
    pipeline = reader.model.pipeline
    monkeypatch.setattr(
        reader.model, "pipeline", lambda *a, **k: calls.append(k) or pipeline(*a, **k)
    )
    again = reader.generate(specs)
    assert calls == [], "every instance should come from the pool on disk"
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.pixels, b.pixels)
        assert a.sample.objects == b.sample.objects


@pytest.mark.parametrize("damaged", ["*.json", "*.png"])
def test_a_damaged_pool_file_is_named(
    tiny_models: dict[str, Path], tmp_path: Path, damaged: str
) -> None:
    specs = specs_for("diffusion_object_paste", 2)
    build("diffusion_object_paste", tiny_models, pool_dir=str(tmp_path)).generate(specs)
    broken = sorted(tmp_path.rglob(damaged))[0]
    broken.write_bytes(b"{")
    reader = build("diffusion_object_paste", tiny_models, pool_dir=str(tmp_path))
    with pytest.raises(InputError) as error:
        reader.generate(specs)
    message = str(error.value)
    assert "image.pool_dir" in message and str(broken) in message and "delete" in message


def _nothing(image: np.ndarray) -> np.ndarray:
    return np.zeros(image.shape[:2], dtype=bool)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"mask_area_range": [0.99, 1.0]}, "mask covers"),
        ({"clip": {"path": "CLIP", "min_score": 1.0}, "mask_area_range": [0.0, 1.0]}, "CLIP score"),
        ({"components": {"segmenter": _nothing}, "mask_area_range": [0.0, 1.0]}, "no foreground"),
    ],
    ids=["mask-area", "clip", "empty-mask"],
)
def test_object_paste_filters_reject_instances(
    tiny_models: dict[str, Path], overrides: dict[str, Any], reason: str
) -> None:
    if "clip" in overrides:
        overrides = {**overrides, "clip": {**overrides["clip"], "path": str(tiny_models["clip"])}}
    generator = build("diffusion_object_paste", tiny_models, max_attempts=2, **overrides)
    made = generator.generate(specs_for("diffusion_object_paste", 2))
    for one in made:
        assert one.sample.objects == [] and one.extras["missing"] >= 1
        for missing in one.sample.provenance.params["missing"]:
            attempts = missing["attempts"]
            assert len(attempts) == 2 and all(reason in a["rejected"] for a in attempts)


def test_object_paste_records_clip_scores_of_accepted_instances(
    tiny_models: dict[str, Path],
) -> None:
    clip = {"path": str(tiny_models["clip"]), "min_score": -1.0}
    made = build("diffusion_object_paste", tiny_models, clip=clip).generate(
        specs_for("diffusion_object_paste", 2)
    )
    pasted = [i for one in made for i in one.sample.provenance.params["instances"]]
    assert pasted and all(-1.0 <= i["clip_score"] <= 1.0 for i in pasted)


def _centre_square(image: np.ndarray) -> np.ndarray:
    mask = np.zeros(image.shape[:2], dtype=bool)
    h, w = mask.shape
    mask[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = True
    return mask


def test_object_paste_uses_an_injected_segmenter(tiny_models: dict[str, Path]) -> None:
    generator = build(
        "diffusion_object_paste",
        tiny_models,
        min_visible_fraction=0.0,
        components={"segmenter": _centre_square},
    )
    for one in generator.generate(specs_for("diffusion_object_paste", 3)):
        assert_exact_labels(one)
        instances = one.sample.provenance.params["instances"]
        assert all(i["mask_fraction"] == 0.25 for i in instances)
        top = one.sample.objects[-1]  # the last pasted object is not occluded: a full rectangle
        assert top.area == top.bbox[2] * top.bbox[3]


def test_object_paste_makes_images_of_any_size_from_instances_of_their_own(
    tiny_models: dict[str, Path],
) -> None:
    """With instance_size, the pipeline makes only the instances; `size` (the pasted image's)
    was checked against the VAE once the model loaded, and [100, 75] refused."""
    generator = build(
        "diffusion_object_paste",
        tiny_models,
        size=[100, 75],
        instance_size=[64, 64],
        min_visible_fraction=0.0,
        components={"segmenter": _centre_square},  # every instance kept: objects to look at
    )
    for one in generator.generate(specs_for("diffusion_object_paste", 2)):
        assert one.pixels is not None and one.pixels.shape == (75, 100, 3)
        assert (one.sample.width, one.sample.height) == (100, 75)
        assert one.sample.objects


def test_inpaint_changes_only_the_region_and_labels_inside_the_box(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    colour = (12, 200, 90)
    Image.new("RGB", (100, 80), colour).save(tmp_path / "plain.png")
    generator = build(
        "diffusion_inpaint",
        tiny_models,
        background={"source": "folder", "folder": str(tmp_path)},
        components={"segmenter": lambda image: np.ones(image.shape[:2], dtype=bool)},
    )
    for one in generator.generate(specs_for("diffusion_inpaint", 3)):
        (obj,) = one.sample.objects
        x, y, w, h = (int(v) for v in obj.attributes["requested_box"])
        assert obj.bbox == obj.attributes["requested_box"] and obj.attributes["box_iou"] == 1.0
        outside = np.ones((64, 64), dtype=bool)
        outside[y : y + h, x : x + w] = False
        assert (one.pixels[outside] == colour).all()
        assert one.sample.attributes["background"] == "plain.png"


def test_layout_labels_stay_in_their_boxes(tiny_models: dict[str, Path]) -> None:
    generator = build("diffusion_layout", tiny_models, objects_per_image=[2, 3])
    for one in generator.generate(specs_for("diffusion_layout", 3)):
        params = one.sample.provenance.params
        assert len(params["phrases"]) == len(params["boxes"]) >= 2
        assert len(one.sample.objects) + len(params["missing"]) == len(params["boxes"])
        for obj in one.sample.objects:
            x, y, w, h = obj.attributes["requested_box"]
            bx, by, bw, bh = obj.bbox
            assert x <= bx and y <= by and bx + bw <= x + w and by + bh <= y + h
            assert 0 < obj.attributes["box_fill"] <= 1


def test_layout_reports_boxes_the_model_left_empty(tiny_models: dict[str, Path]) -> None:
    nothing = {"segmenter": lambda image: np.zeros(image.shape[:2], dtype=bool)}
    generator = build("diffusion_layout", tiny_models, components=nothing)
    for one in generator.generate(specs_for("diffusion_layout", 2)):
        assert one.sample.objects == [] and not one.foreground.any()
        assert one.extras["missing"] == len(one.sample.provenance.params["boxes"]) >= 1


def test_layout_names_the_objects_it_could_not_place(tiny_models: dict[str, Path]) -> None:
    # Boxes of at least 0.6 of each side leave room for one: four of the five asked for have
    # no place. The sample must say so, not look like a one-object layout that was asked for.
    generator = build(
        "diffusion_layout", tiny_models, objects_per_image=[5, 5], box_scale_range=[0.6, 0.6]
    )
    (one,) = generator.generate(specs_for("diffusion_layout", 1))
    params = one.sample.provenance.params
    assert len(params["boxes"]) == 1
    assert len(params.get("unplaced", [])) == 4
