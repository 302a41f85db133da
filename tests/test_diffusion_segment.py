"""The model-free parts of the diffusion generators: segmenter, box test, layouts, backgrounds."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from synthgate.config import BackgroundConfig
from synthgate.errors import InputError
from synthgate.generators.diffusion.backgrounds import Backgrounds, procedural_background
from synthgate.generators.diffusion.layout import sample_layout
from synthgate.generators.diffusion.segment import (
    apply_segmenter,
    border_segmenter,
    fill_holes,
    foreground_in_box,
    largest_component,
    segmenter_by_name,
)
from synthgate.masks import box_iou


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def _scene(
    background: str, shape: str, *, size: int = 96, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if background == "plain":
        image = np.full((size, size, 3), (200, 190, 180), dtype=np.uint8)
    elif background == "gradient":
        ramp = np.linspace(150, 220, size, dtype=np.float32)
        image = np.stack([np.tile(ramp, (size, 1))] * 3, axis=2).astype(np.uint8)
    else:  # grain
        image = np.clip(rng.normal(180, 6, (size, size, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((size, size), dtype=np.uint8)
    if shape == "disc":
        cv2.circle(mask, (size // 2, size // 2), size // 4, 1, thickness=-1)
    elif shape == "ring":  # a hole the segmenter fills: objects are solid
        cv2.circle(mask, (size // 2, size // 2), size // 3, 1, thickness=-1)
        cv2.circle(mask, (size // 2, size // 2), size // 8, 0, thickness=-1)
    else:  # bar
        mask[size // 3 : size // 3 + size // 5, size // 8 : size - size // 8] = 1
    image[mask.astype(bool)] = (40, 60, 150)
    return image, mask.astype(bool)


@pytest.mark.parametrize("background", ["plain", "gradient", "grain"])
@pytest.mark.parametrize("shape", ["disc", "bar"])
def test_border_segmenter_finds_the_object(background: str, shape: str) -> None:
    image, truth = _scene(background, shape)
    found = largest_component(border_segmenter(image))
    assert _iou(found, truth) > 0.95


def test_border_segmenter_fills_holes_and_finds_nothing_on_a_plain_image() -> None:
    image, ring = _scene("plain", "ring")
    assert _iou(border_segmenter(image), fill_holes(ring)) > 0.95
    assert not border_segmenter(np.full((64, 64, 3), 128, dtype=np.uint8)).any()


def test_largest_component_keeps_only_the_biggest_blob() -> None:
    mask = np.zeros((20, 20), dtype=bool)
    mask[1:4, 1:4] = True
    mask[10:18, 10:18] = True
    kept = largest_component(mask)
    assert kept.sum() == 64 and kept[12, 12] and not kept[2, 2]
    assert not largest_component(np.zeros((5, 5), dtype=bool)).any()


def test_foreground_in_box_stays_inside_the_box() -> None:
    image, truth = _scene("plain", "disc", size=96)
    box = [40.0, 16.0, 40.0, 64.0]  # holds the right half of the disc (centre 48, radius 24)
    found = foreground_in_box(image, box, border_segmenter)
    inside = np.zeros_like(truth)
    inside[16:80, 40:80] = True
    assert found.any() and not (found & ~inside).any()
    assert _iou(found, truth & inside) > 0.9
    assert not foreground_in_box(image, [0.0, 0.0, 16.0, 16.0], border_segmenter).any()


def test_segmenters_by_name_and_by_import_path() -> None:
    assert segmenter_by_name("border") is border_segmenter
    assert (
        segmenter_by_name("synthgate.generators.diffusion.segment:border_segmenter")
        is border_segmenter
    )
    with pytest.raises(InputError, match="unknown segmenter 'sam'"):
        segmenter_by_name("sam")
    with pytest.raises(InputError, match="cannot import segmenter"):
        segmenter_by_name("synthgate.nowhere:segment")


def test_a_segmenter_returning_the_wrong_shape_is_refused() -> None:
    image = np.zeros((32, 48, 3), dtype=np.uint8)
    assert apply_segmenter(lambda im: np.ones(im.shape[:2], dtype=np.uint8), image).dtype == bool
    with pytest.raises(InputError, match=r"shape \(48, 32\)"):
        apply_segmenter(lambda im: np.ones((48, 32), dtype=bool), image)


@pytest.mark.parametrize("seed", range(20))
def test_layouts_do_not_overlap_and_fit_the_image(seed: int) -> None:
    rng = np.random.default_rng(seed)
    boxes = sample_layout(rng, count=4, width=96, height=64, scale_range=(0.2, 0.5))
    assert 1 <= len(boxes) <= 4
    for i, (x, y, w, h) in enumerate(boxes):
        assert x >= 0 and y >= 0 and x + w <= 96 and y + h <= 64 and w >= 2 and h >= 2
        assert all(box_iou(boxes[i], other) == 0 for other in boxes[i + 1 :])


def test_backgrounds_are_seeded_and_sized(tmp_path: Path) -> None:
    one = procedural_background(np.random.default_rng(3), width=80, height=48)
    assert one.shape == (48, 80, 3) and one.dtype == np.uint8
    assert np.array_equal(one, procedural_background(np.random.default_rng(3), width=80, height=48))
    for i, size in enumerate([(200, 100), (50, 300)]):
        Image.new("RGB", size, (10 * i, 100, 200)).save(tmp_path / f"bg{i}.jpg")
    folder = Backgrounds(BackgroundConfig(source="folder", folder=tmp_path), size=(64, 32))
    for seed in range(4):
        image, name = folder.draw(np.random.default_rng(seed))
        assert image.shape == (32, 64, 3) and name in {"bg0.jpg", "bg1.jpg"}


def test_an_empty_background_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="holds no images"):
        Backgrounds(BackgroundConfig(source="folder", folder=tmp_path), size=(64, 64))
    with pytest.raises(InputError, match="is not a folder"):
        Backgrounds(BackgroundConfig(source="folder", folder=tmp_path / "nope"), size=(64, 64))
