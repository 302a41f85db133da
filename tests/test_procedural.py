"""The procedural generator: exact labels, occlusion bookkeeping, determinism, shapes, PNG."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from synthgate.config import ProceduralImageConfig
from synthgate.errors import InputError
from synthgate.generators import build_generator
from synthgate.generators.png import encode_png
from synthgate.generators.procedural import ProceduralGenerator
from synthgate.generators.shapes import (
    SHAPE_FAMILIES,
    ShapeKind,
    draw_shape_mask,
    shape_for_category,
)
from synthgate.generators.textures import TEXTURES, texture
from synthgate.masks import decode_mask
from synthgate.samples import GeneratedSample, SampleSpec, sample_id

CATEGORIES = ["circle", "star", "ring", "hexagon", "scratch", "dent"]

# name -> (config, seeds): each case makes a different part of the contract bite.
CONFIG_CASES = {
    # The production default, at its real size.
    "default_512": (ProceduralImageConfig(count=1), range(3)),
    # One object per image: the quota object can never be occluded.
    "single_object": (
        ProceduralImageConfig(count=1, size=(96, 80), objects_per_image=(1, 1)),
        range(12),
    ),
    # Many big objects on a small canvas with a strict visibility bar: objects get hidden.
    "crowded_strict": (
        ProceduralImageConfig(
            count=1,
            size=(96, 64),
            objects_per_image=(5, 8),
            object_scale_range=(0.4, 0.8),
            min_visible_fraction=0.9,
        ),
        range(12),
    ),
    # Objects larger than the image: most are clipped at its edges.
    "clipped_edges": (
        ProceduralImageConfig(
            count=1, size=(120, 72), objects_per_image=(1, 3), object_scale_range=(0.8, 1.2)
        ),
        range(10),
    ),
}


def make_spec(index: int, *, seed: int, category: str = "circle", **extra: object) -> SampleSpec:
    return SampleSpec(
        batch_id="batch-test",
        index=index,
        modality="image",
        generator="procedural",
        category=category,
        seed=seed,
        **extra,  # type: ignore[arg-type]
    )


def generate_case(name: str) -> list[tuple[SampleSpec, GeneratedSample]]:
    config, seeds = CONFIG_CASES[name]
    generator = ProceduralGenerator(config, categories=CATEGORIES)
    specs = [
        make_spec(i, seed=1000 + seed, category=CATEGORIES[seed % len(CATEGORIES)])
        for i, seed in enumerate(seeds)
    ]
    return list(zip(specs, generator.generate(specs), strict=True))


def box_of(mask: np.ndarray) -> list[float]:
    """Tight COCO box computed independently of labels.tight_bbox."""
    ys, xs = np.nonzero(mask)
    return [
        float(xs.min()),
        float(ys.min()),
        float(xs.max() - xs.min() + 1),
        float(ys.max() - ys.min() + 1),
    ]


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_masks_are_column_major(case: str) -> None:
    """The order pycocotools encodes in (masks.MASK_ORDER): encoding transposes no mask."""
    for _, generated in generate_case(case):
        assert generated.foreground is not None and generated.ignore is not None
        assert generated.foreground.flags.f_contiguous and generated.ignore.flags.f_contiguous


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_labels_are_exact_and_partition_the_foreground(case: str) -> None:
    config, _ = CONFIG_CASES[case]
    width, height = config.size
    for _, generated in generate_case(case):
        sample = generated.sample
        foreground, ignore = generated.foreground, generated.ignore
        assert foreground is not None and ignore is not None
        assert foreground.shape == ignore.shape == (height, width)
        union = np.zeros((height, width), dtype=bool)
        for obj in sample.objects:
            assert obj.mask is not None
            mask = decode_mask(obj.mask)
            assert mask.shape == (height, width)
            assert int(mask.sum()) == obj.area > 0
            assert obj.bbox == box_of(mask)
            coco_rle = {"size": obj.mask["size"], "counts": obj.mask["counts"].encode()}
            assert obj.bbox == [float(v) for v in mask_utils.toBbox(coco_rle)]
            assert int(mask_utils.area(coco_rle)) == obj.area
            assert not (mask & ~foreground).any(), "a mask leaves the foreground"
            assert not (mask & union).any(), "two visible masks overlap"
            assert not (mask & ignore).any(), "a labelled pixel is also ignored"
            assert obj.visible_fraction >= config.min_visible_fraction
            assert obj.attributes["shape"] == shape_for_category(obj.category).family
            assert obj.category in CATEGORIES
            union |= mask
        # Every placed pixel is either labelled or ignored, never both, never neither.
        assert np.array_equal(union | ignore, foreground)
        assert len(sample.objects) + generated.extras["hidden"] == generated.extras["placed"]
        low, high = config.objects_per_image
        assert low <= generated.extras["placed"] <= high


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_quota_category_is_the_first_object_unless_hidden(case: str) -> None:
    for spec, generated in generate_case(case):
        first = [o for o in generated.sample.objects if o.attributes["z"] == 0]
        if first:
            assert first[0].category == spec.category
        else:
            assert generated.extras["hidden"] >= 1
        if case == "single_object":
            assert [o.category for o in generated.sample.objects] == [spec.category]


def test_crowded_case_hides_objects_and_leaves_them_unlabelled() -> None:
    results = generate_case("crowded_strict")
    hidden = sum(g.extras["hidden"] for _, g in results)
    assert hidden > 0, "the crowded case must hide objects for the checks to mean anything"
    for _, generated in results:
        z_labelled = [o.attributes["z"] for o in generated.sample.objects]
        assert len(set(z_labelled)) == len(z_labelled)
        z_hidden = set(range(generated.extras["placed"])) - set(z_labelled)
        assert len(z_hidden) == generated.extras["hidden"]


def test_clipped_case_has_objects_cut_by_the_image_edge() -> None:
    config, _ = CONFIG_CASES["clipped_edges"]
    width, height = config.size
    touching = 0
    for _, generated in generate_case("clipped_edges"):
        for obj in generated.sample.objects:
            x, y, w, h = obj.bbox
            touching += x == 0 or y == 0 or x + w == width or y + h == height
    assert touching > 0


def test_sample_fields_and_pixels() -> None:
    config = ProceduralImageConfig(count=1, size=(70, 40))
    generator = ProceduralGenerator(config, categories=CATEGORIES)
    spec = make_spec(7, seed=3, category="star")
    (generated,) = generator.generate([spec])
    sample = generated.sample
    assert generated.pixels is not None
    assert generated.pixels.dtype == np.uint8 and generated.pixels.shape == (40, 70, 3)
    assert generated.foreground is not None and generated.foreground.dtype == bool
    assert sample.id == sample_id("batch-test", "image", 7)
    assert sample.uri == f"images/{sample.id}.png"
    assert (sample.width, sample.height) == (70, 40)
    assert sample.status == "pending" and sample.spec == spec
    assert sample.attributes["background"] in TEXTURES
    provenance = sample.provenance
    assert (provenance.generator, provenance.generator_version, provenance.seed) == (
        "procedural",
        "1",
        3,
    )
    assert provenance.params["size"] == [70, 40]
    assert provenance.params["objects_per_image"] == list(config.objects_per_image)
    assert provenance.versions == {}  # the run's manifest.json records package versions
    json.dumps(sample.model_dump(mode="json"))  # labels and provenance are JSON-ready


def test_generator_contract_and_registry() -> None:
    config = ProceduralImageConfig(count=1)
    generator = build_generator(config, categories=["a", "b"])
    assert isinstance(generator, ProceduralGenerator)
    assert (generator.name, generator.version, generator.modality) == ("procedural", "1", "image")
    assert generator.quota_categories() == ["a", "b"]
    with pytest.raises(InputError, match="categories"):
        ProceduralGenerator(config, categories=[])


def test_requested_background_is_honoured() -> None:
    generator = ProceduralGenerator(ProceduralImageConfig(count=1, size=(32, 32)), categories=["x"])
    spec = make_spec(0, seed=5, attributes={"background": "checker"})
    (generated,) = generator.generate([spec])
    assert generated.sample.attributes["background"] == "checker"


def _fingerprint(generated: GeneratedSample) -> tuple[bytes, str, bytes, bytes]:
    assert generated.pixels is not None and generated.foreground is not None
    assert generated.ignore is not None
    return (
        encode_png(generated.pixels),
        json.dumps(generated.sample.model_dump(mode="json"), sort_keys=True),
        generated.foreground.tobytes(),
        generated.ignore.tobytes(),
    )


@pytest.mark.parametrize("case", ["default_512", "crowded_strict"])
def test_same_spec_gives_identical_sample_alone_or_in_a_batch(case: str) -> None:
    config, _ = CONFIG_CASES[case]
    specs = [make_spec(i, seed=40 + i, category=CATEGORIES[i]) for i in range(4)]
    alone = ProceduralGenerator(config, categories=CATEGORIES).generate([specs[2]])[0]
    again = ProceduralGenerator(config, categories=CATEGORIES).generate([specs[2]])[0]
    batch = ProceduralGenerator(config, categories=CATEGORIES).generate(specs)
    assert _fingerprint(alone) == _fingerprint(again) == _fingerprint(batch[2])


def test_different_seeds_give_different_pixels() -> None:
    generator = ProceduralGenerator(
        ProceduralImageConfig(count=1, size=(64, 64)), categories=CATEGORIES
    )
    first, second = generator.generate([make_spec(0, seed=1), make_spec(0, seed=2)])
    assert first.pixels is not None and second.pixels is not None
    assert not np.array_equal(first.pixels, second.pixels)


@pytest.mark.parametrize(
    ("name", "family", "sides"),
    [
        ("circle", "circle", None),
        ("Circles", "circle", None),
        ("red_star", "star", 5),
        ("donut", "ring", None),
        ("pentagon", "polygon", 5),
        ("Hexagon", "polygon", 6),
        ("triangle", "triangle", None),
        ("plus", "cross", None),
        ("big heart", "heart", None),
    ],
)
def test_known_names_map_to_their_shape(name: str, family: str, sides: int | None) -> None:
    kind = shape_for_category(name)
    assert kind.family == family
    if sides is not None:
        assert kind.sides == sides


def test_unknown_names_get_a_stable_shape_across_processes() -> None:
    names = ["scratch", "dent", "person", "traffic light", "zebra"]
    here = {name: shape_for_category(name) for name in names}
    assert all(kind.family in SHAPE_FAMILIES for kind in here.values())
    assert len({(k.family, k.sides, k.aspect, k.inner) for k in here.values()}) == len(names)
    # Another interpreter with another str-hash salt must agree (hashlib, not hash()).
    code = (
        "import json, dataclasses\n"
        "from synthgate.generators.shapes import shape_for_category\n"
        f"print(json.dumps({{n: dataclasses.astuple(shape_for_category(n)) for n in {names!r}}}))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    there = json.loads(out.stdout)
    assert {n: list(v) for n, v in there.items()} == {
        n: [k.family, k.sides, k.aspect, k.inner] for n, k in here.items()
    }


@pytest.mark.parametrize("family", SHAPE_FAMILIES)
def test_every_shape_family_draws_a_binary_non_empty_mask(family: str) -> None:
    kind = ShapeKind(family, sides=5, aspect=0.6, inner=0.45)
    (x0, y0), mask = draw_shape_mask(
        kind, centre=(50.0, 40.0), radius=30.0, angle=0.7, image_size=(100, 80)
    )
    assert mask is not None and mask.mode == "L"
    values = np.asarray(mask)
    assert set(np.unique(values).tolist()) <= {0, 255}
    assert (values > 0).sum() > 0.1 * (60 * 60)
    assert x0 >= 0 and y0 >= 0 and x0 + mask.width <= 100 and y0 + mask.height <= 80
    if family == "ring":
        assert values[40 - y0, 50 - x0] == 0, "a ring has a hole at its centre"


@pytest.mark.parametrize("family", SHAPE_FAMILIES)
def test_every_shape_family_is_labelled_through_the_generator(family: str) -> None:
    config = ProceduralImageConfig(count=1, size=(64, 64), objects_per_image=(1, 1))
    generator = ProceduralGenerator(config, categories=[family])
    (generated,) = generator.generate([make_spec(0, seed=11, category=family)])
    (obj,) = generated.sample.objects
    assert obj.attributes["shape"] == family and obj.area > 0


@pytest.mark.parametrize(
    ("centre", "expect_window"),
    [((0.0, 0.0), True), ((99.0, 79.0), True), ((-200.0, 40.0), False), ((50.0, 500.0), False)],
)
def test_shape_masks_are_clipped_to_the_image(
    centre: tuple[float, float], expect_window: bool
) -> None:
    (x0, y0), mask = draw_shape_mask(
        ShapeKind("square"), centre=centre, radius=20.0, angle=0.3, image_size=(100, 80)
    )
    if not expect_window:
        assert mask is None
        return
    assert mask is not None and np.asarray(mask).any()
    assert x0 + mask.width <= 100 and y0 + mask.height <= 80


@pytest.mark.parametrize("kind", TEXTURES)
def test_textures_fill_the_requested_box(kind: str) -> None:
    colours = np.array([[10, 200, 30], [200, 20, 90]], dtype=np.float32)
    image = texture(np.random.default_rng(0), kind, height=37, width=53, colours=colours)
    assert image.mode == "RGB" and image.size == (53, 37)
    if kind != "solid":
        assert len(np.unique(np.asarray(image).reshape(-1, 3), axis=0)) > 1


def test_unknown_texture_is_an_error() -> None:
    with pytest.raises(ValueError, match="texture"):
        texture(np.random.default_rng(0), "plaid", height=4, width=4, colours=np.zeros((2, 3)))


@pytest.mark.parametrize(
    "pixels",
    [
        np.zeros((1, 1, 3), np.uint8),
        np.random.default_rng(0).integers(0, 256, (17, 23, 3), dtype=np.uint8),
        np.full((8, 5, 3), 255, np.uint8),
    ],
    ids=["one_pixel", "noise", "white"],
)
def test_encode_png_round_trips_exactly(pixels: np.ndarray) -> None:
    data = encode_png(pixels)
    assert data == encode_png(pixels.copy())
    decoded = Image.open(io.BytesIO(data))
    assert decoded.mode == "RGB"
    assert np.array_equal(np.asarray(decoded), pixels)


def test_encode_png_round_trips_a_generated_image() -> None:
    (generated,) = ProceduralGenerator(
        ProceduralImageConfig(count=1), categories=CATEGORIES
    ).generate([make_spec(0, seed=9)])
    assert generated.pixels is not None
    decoded = np.asarray(Image.open(io.BytesIO(encode_png(generated.pixels))))
    assert np.array_equal(decoded, generated.pixels)


@pytest.mark.parametrize(
    "pixels",
    [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8)],
    ids=["float", "grey", "rgba"],
)
def test_encode_png_rejects_other_arrays(pixels: np.ndarray) -> None:
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        encode_png(pixels)
