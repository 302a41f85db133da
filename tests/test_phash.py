"""validators/phash.py gives imagehash's pHash bit for bit, on images of every kind: noise,
drawn scenes, and the flat, graded and symmetric ones whose coefficients tie with the median
(there imagehash itself decides); ordinary images never load scipy."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

from synthgate.config import parse_config
from synthgate.generators import build_generator
from synthgate.pipeline import batch_id_for, chunk_size, plan
from synthgate.validators import phash as phash_module
from synthgate.validators.phash import phash


def imagehash_uint64(image: Image.Image) -> np.uint64:
    return np.packbits(imagehash.phash(image).hash.ravel()).view(">u8")[0].astype(np.uint64)


def drawn(count: int) -> list[Image.Image]:
    """Procedural scenes, 64x64 as fingerprint hands them over."""
    config = parse_config(
        {
            "name": "phash",
            "seed": 5,
            "categories": ["circle", "square", "triangle", "star", "ring"],
            "image": {"count": count, "size": [128, 128], "objects_per_image": [1, 5]},
        },
        source=Path("test"),
    )
    generator = build_generator(config.image, categories=config.categories)
    specs = plan(
        config,
        "image",
        batch_id=batch_id_for(config),
        quota_categories=generator.quota_categories(),
    )
    images = []
    while chunk := list(itertools.islice(specs, chunk_size(generator, "image"))):
        for generated in generator.generate(chunk):
            small = Image.fromarray(generated.pixels).resize((64, 64), Image.Resampling.BOX)
            images.append(small)
    return images


def made(kind: str, rng: np.random.Generator) -> Image.Image:
    """One 64x64 image of a kind that ties (flat, graded, symmetric) or does not (noise)."""
    if kind == "noise":
        pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    elif kind == "flat":
        pixels = np.full((64, 64, 3), rng.integers(0, 256), np.uint8)
    elif kind == "graded":
        ramp = np.linspace(0, rng.integers(1, 256), 64).astype(np.uint8)
        pixels = np.repeat(ramp[None, :, None], 64, axis=0).repeat(3, axis=2)
    elif kind == "symmetric":
        pixels = np.zeros((64, 64, 3), np.uint8)
        centre, half = int(rng.integers(8, 56)), int(rng.integers(2, 8))
        pixels[centre - half : centre + half, centre - half : centre + half] = rng.integers(
            0, 256, 3
        )
    elif kind == "halves":
        pixels = np.full((64, 64, 3), rng.integers(0, 256), np.uint8)
        pixels[:, 32:] = rng.integers(0, 256)
    else:  # blocks
        pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    return Image.fromarray(pixels)


@pytest.mark.parametrize("kind", ["noise", "flat", "graded", "symmetric", "halves", "blocks"])
def test_the_same_bits_as_imagehash(kind: str) -> None:
    rng = np.random.default_rng(list(kind.encode()))
    for _ in range(150):
        image = made(kind, rng)
        assert phash(image) == imagehash_uint64(image), kind


def test_drawn_scenes_hash_as_imagehash_without_asking_it(monkeypatch) -> None:
    images = drawn(120)
    expected = [imagehash_uint64(image) for image in images]
    asked = []
    monkeypatch.setattr(imagehash, "phash", lambda image: asked.append(image))
    assert [phash(image) for image in images] == expected
    assert asked == []  # no coefficient near its median: the matrix products decide every bit


def test_a_flat_image_is_left_to_imagehash(monkeypatch) -> None:
    flat = Image.fromarray(np.full((64, 64, 3), 90, np.uint8))
    expected = imagehash_uint64(flat)
    asked = []
    real = imagehash.phash
    monkeypatch.setattr(imagehash, "phash", lambda image: asked.append(1) or real(image))
    assert phash(flat) == expected and asked == [1]
    assert phash_module.TIE > 0


def test_hashing_an_ordinary_image_does_not_load_scipy() -> None:
    code = (
        "import sys, numpy as np\n"
        "from synthgate.validators.context import fingerprint\n"
        "rng = np.random.default_rng(1)\n"
        "fingerprint(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8))\n"
        "print('scipy' in sys.modules)\n"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"
