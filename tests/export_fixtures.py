"""What the `synthgate export` tests share: a small COCO file with its PNGs (two images share a
stem, one box is sub-pixel, one region is a crowd, one image is grayscale), what it must export
as, and the command run through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from synthgate.cli import app

runner = CliRunner()
CATEGORIES = [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog & co"}]
# file_name, width, height, [(category id, bbox, iscrowd)]. Two images share the stem 000001,
# so both get the first 8 hex digits of their file_name's SHA-1 as a prefix.
IMAGES: list[tuple[str, int, int, list[tuple[int, list[float], int]]]] = [
    ("a/000001.png", 100, 50, [(3, [10, 5, 20, 10], 0), (7, [50, 20, 40, 25], 0)]),
    ("b/000001.png", 80, 40, [(7, [0, 0, 8, 4], 0), (3, [4, 4, 16, 8], 1)]),
    ("c/other.png", 100, 50, [(3, [30.5, 10.25, 12.5, 7.75], 0)]),
    ("c/empty.png", 100, 50, []),
]


# What the fixture exports as: file_name -> exported name, YOLO lines, VOC corners, VOC depth.
EXPECTED: dict[str, tuple[str, list[str], list[list[int]], int]] = {
    "a/000001.png": (
        "47f10bf6_000001.png",
        ["0 0.200000 0.200000 0.200000 0.200000", "1 0.700000 0.650000 0.400000 0.500000"],
        [[11, 6, 30, 15], [51, 21, 90, 45]],
        3,
    ),
    "b/000001.png": (
        "8967309d_000001.png",
        ["1 0.050000 0.050000 0.100000 0.100000"],  # its crowd region is left out
        [[1, 1, 8, 4]],
        3,
    ),
    "c/other.png": (
        "other.png",  # only colliding names get a prefix
        ["0 0.367500 0.282500 0.125000 0.155000"],
        [[31, 11, 43, 18]],
        3,
    ),
    "c/empty.png": ("empty.png", [], [], 1),  # grayscale
}


def write_coco(folder: Path, images: list[Any] = IMAGES) -> Path:
    """PNGs under folder/images/ and folder/coco.json naming them relative to images/
    (c/empty.png is grayscale, the others RGB)."""
    coco: dict[str, Any] = {"images": [], "annotations": [], "categories": CATEGORIES}
    for image_id, (name, width, height, boxes) in enumerate(images, start=1):
        path = folder / "images" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = Image.fromarray(np.full((height, width, 3), image_id * 40, np.uint8))
        (pixels.convert("L") if name == "c/empty.png" else pixels).save(path)
        coco["images"].append({"id": image_id, "file_name": name, "width": width, "height": height})
        for category_id, bbox, crowd in boxes:
            coco["annotations"].append(
                {
                    "id": len(coco["annotations"]) + 1,
                    "image_id": image_id,
                    "category_id": category_id,
                    "bbox": bbox,
                    "area": bbox[2] * bbox[3],
                    "iscrowd": crowd,
                    "segmentation": [[1, 1, 2]] if crowd else [],  # unusable, not exported
                }
            )
    path = folder / "coco.json"
    path.write_text(json.dumps(coco))
    return path


def export(*args: str) -> Any:
    return runner.invoke(app, ["export", *args])


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}
