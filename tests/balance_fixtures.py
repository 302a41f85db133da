"""The tiny COCO fixture the balance, merge, copy-paste and report tests share, and `run_cli`.

`make_tiny_coco` writes six 64x64 images with polygon, RLE and crowd annotations of an imbalanced
taxonomy (square 8, disc 3, tri 1, blob 0; one crowd region of squares); `lvis_of` lays such a
file out as LVIS does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils

SIZE = 64
CATEGORIES = [
    {"id": 1, "name": "square", "supercategory": "shape"},
    {"id": 2, "name": "disc", "supercategory": "shape"},
    {"id": 3, "name": "tri", "supercategory": "shape"},
    {"id": 5, "name": "blob", "supercategory": "shape"},
]
# image id -> [(category id, kind, x, y, size)]
LAYOUT: dict[int, list[tuple[int, str, int, int, int]]] = {
    101: [(1, "square", 4, 4, 14), (1, "square", 36, 36, 16), (2, "disc", 40, 6, 14)],
    102: [(1, "square", 8, 30, 18), (3, "tri", 30, 8, 24)],
    103: [(1, "square", 6, 6, 12), (2, "disc", 30, 30, 20)],
    104: [(1, "square", 40, 8, 14), (1, "square", 10, 40, 14)],
    105: [(2, "disc", 20, 20, 18)],
    106: [(1, "square", 34, 34, 20)],
}
CROWD_IMAGE = 106


# Review rows whose only gendered words are female terms (no name): a rewrite can only flip
# them to male, one text each.
FEMALE_TERMS_ONLY = [
    "She returned it because her kettle leaked.",
    "She hated the noise and her son did too.",
    "Her blender broke after a week, she said.",
    "She wants her money back.",
    "My sister says her fan is loud.",
    "She gave it to her mother.",
]


def _shape_mask(kind: str, x: int, y: int, size: int) -> tuple[np.ndarray, list[float] | None]:
    image = Image.new("L", (SIZE, SIZE), 0)
    draw = ImageDraw.Draw(image)
    polygon = None
    if kind == "square":
        polygon = [x, y, x + size, y, x + size, y + size, x, y + size]
    elif kind == "tri":
        polygon = [x, y + size, x + size / 2, y, x + size, y + size]
    if polygon is not None:
        draw.polygon(polygon, fill=1)
        # Mask as pycocotools rasterises the polygon, so labels and pixels agree exactly.
        rle = mask_utils.merge(mask_utils.frPyObjects([polygon], SIZE, SIZE))
        return mask_utils.decode(rle).astype(bool), [float(v) for v in polygon]
    draw.ellipse([x, y, x + size, y + size], fill=1)
    return np.asarray(image).astype(bool), None


def make_tiny_coco(folder: Path) -> tuple[Path, Path]:
    """Write images/ and annotations.json under `folder`; returns (coco path, images dir)."""
    images_dir = folder / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    colours = {1: (200, 40, 40), 2: (40, 160, 60), 3: (40, 60, 200)}
    images, annotations = [], []
    next_annotation = 1000
    for image_id, objects in LAYOUT.items():
        pixels = np.full((SIZE, SIZE, 3), rng.integers(90, 170, size=3), dtype=np.uint8)
        for category_id, kind, x, y, size in objects:
            mask, polygon = _shape_mask(kind, x, y, size)
            pixels[mask] = colours[category_id]
            if polygon is not None:
                segmentation: Any = [polygon]
            else:
                rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
                segmentation = {"size": [SIZE, SIZE], "counts": rle["counts"].decode("ascii")}
            x0, y0, w, h = mask_utils.toBbox(
                mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            )
            annotations.append(
                {
                    "id": next_annotation,
                    "image_id": image_id,
                    "category_id": category_id,
                    "segmentation": segmentation,
                    "area": float(mask.sum()),
                    "bbox": [float(x0), float(y0), float(w), float(h)],
                    "iscrowd": 0,
                }
            )
            next_annotation += 1
        if image_id == CROWD_IMAGE:  # a crowd of squares, as uncompressed RLE
            crowd = np.zeros((SIZE, SIZE), dtype=bool)
            crowd[2:12, 2:30] = True
            pixels[crowd] = colours[1]
            counts = mask_utils.frPyObjects(
                {"size": [SIZE, SIZE], "counts": _uncompressed(crowd)}, SIZE, SIZE
            )
            annotations.append(
                {
                    "id": next_annotation,
                    "image_id": image_id,
                    "category_id": 1,
                    "segmentation": {"size": [SIZE, SIZE], "counts": _uncompressed(crowd)},
                    "area": float(mask_utils.area(counts)),
                    "bbox": [2.0, 2.0, 28.0, 10.0],
                    "iscrowd": 1,
                }
            )
            next_annotation += 1
        name = f"img_{image_id}.png"
        Image.fromarray(pixels).save(images_dir / name)
        images.append(
            {"id": image_id, "file_name": name, "width": SIZE, "height": SIZE, "license": 0}
        )
    coco = {
        "info": {"description": "tiny balance fixture"},
        "images": images,
        "annotations": annotations,
        "categories": CATEGORIES,
    }
    path = folder / "annotations.json"
    path.write_text(json.dumps(coco))
    return path, images_dir


def _uncompressed(mask: np.ndarray) -> list[int]:
    """COCO uncompressed RLE counts (column-major runs, starting with a run of zeros)."""
    flat = mask.flatten(order="F").astype(np.uint8)
    counts, current, run = [], 0, 0
    for value in flat:
        if value != current:
            counts.append(run)
            current, run = value, 0
        run += 1
    counts.append(run)
    return counts


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synthgate", *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=cwd,
    )


def balance_coco(
    coco: Path, images: Path, out: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    """`synthgate balance --coco COCO --images IMAGES --out OUT ...extra` in a subprocess."""
    return run_cli(
        "balance", "--coco", str(coco), "--images", str(images), "--out", str(out), *extra
    )


def balance_reviews(source: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`synthgate balance` of a reviews JSONL (label `sentiment`, text `review`) into OUT."""
    return run_cli(
        "balance",
        "--jsonl",
        str(source),
        "--label-field",
        "sentiment",
        "--text-field",
        "review",
        "--out",
        str(out),
        *extra,
    )


def lvis_of(data: dict[str, Any]) -> dict[str, Any]:
    """LVIS v1: images named by `coco_url` alone (no `file_name`), with the category lists LVIS
    adds; categories with synonyms and frequency; annotations without `iscrowd` (LVIS has no
    crowd regions)."""
    images = []
    for image in data["images"]:
        entry = {k: v for k, v in image.items() if k != "file_name"}
        entry["coco_url"] = f"http://images.cocodataset.org/val2017/{image['file_name']}"
        entry.update(not_exhaustive_category_ids=[1], neg_category_ids=[3])
        images.append(entry)
    categories = [
        {**c, "synset": f"{c['name']}.n.01", "synonyms": [c["name"]], "frequency": "f"}
        for c in data["categories"]
    ]
    annotations = [
        {k: v for k, v in a.items() if k != "iscrowd"}
        for a in data["annotations"]
        if not a["iscrowd"]
    ]
    # in LVIS's order: the annotations before the images (polygons wait for their image's size)
    return {
        "info": data["info"],
        "annotations": annotations,
        "images": images,
        "licenses": [],
        "categories": categories,
    }
