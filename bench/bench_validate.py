"""How fast `synthgate validate` judges a COCO file, against the floor of merely reading it.

Writes a COCO file shaped like a real one (default 5,000 640x480 images, 30,000 annotations:
polygon masks with float coordinates, one uncompressed-RLE crowd region every 50 images, a few
tiny objects), then times
- the floor: pycocotools loading the file (`COCO(path)`) plus decoding every mask (`annToMask`);
- the full rubric: `validate_file` with detection.yaml (every label and dataset check; no pixel
  checks, as no images are given), including reading the file and building the JSON rows.
Prints annotations/s of both and their ratio (target: rubric time <= 3x the floor).
Usage: python bench/bench_validate.py [--images 5000] [--per-image 6] [--seed 0]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO

from synthgate.validators.validate import validate_file

WIDTH, HEIGHT = 640, 480
CATEGORIES = ["person", "car", "dog", "bicycle", "cup", "chair", "bird", "boat"]


def polygon(rng: np.random.Generator) -> list[float]:
    """A wobbly ellipse of 12-24 float vertices, clipped to the image, like a COCO polygon."""
    tiny = rng.random() < 0.03
    radius = rng.uniform(1.5, 4) if tiny else rng.uniform(8, 90)
    centre = rng.uniform([radius, radius], [WIDTH - radius, HEIGHT - radius])
    count = int(rng.integers(12, 25))
    angles = np.sort(rng.uniform(0, 2 * math.pi, count))
    radii = radius * rng.uniform(0.6, 1.0, count) * np.array([1.0, rng.uniform(0.5, 1.5)])[:, None]
    xs = np.clip(centre[0] + radii[0] * np.cos(angles), 0, WIDTH)
    ys = np.clip(centre[1] + radii[1] * np.sin(angles), 0, HEIGHT)
    return [round(float(v), 2) for pair in zip(xs, ys, strict=True) for v in pair]


def crowd_rle(rng: np.random.Generator) -> tuple[dict[str, Any], list[float], int]:
    """An uncompressed RLE crowd region (a filled rectangle), as COCO stores crowds."""
    x0, y0 = int(rng.integers(0, WIDTH // 2)), int(rng.integers(0, HEIGHT // 2))
    w, h = int(rng.integers(40, WIDTH // 2)), int(rng.integers(30, HEIGHT // 2))
    counts: list[int] = [x0 * HEIGHT + y0]
    for column in range(w):
        counts += [h, HEIGHT - h if column < w - 1 else HEIGHT * (WIDTH - x0 - w) + HEIGHT - y0 - h]
    return {"size": [HEIGHT, WIDTH], "counts": counts}, [x0, y0, w, h], w * h


def make_coco(images: int, per_image: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    coco: dict[str, Any] = {
        "images": [],
        "annotations": [],
        "categories": [{"id": i, "name": n} for i, n in enumerate(CATEGORIES, 1)],
    }
    next_id = 1
    for image_id in range(1, images + 1):
        coco["images"].append(
            {"id": image_id, "file_name": f"{image_id:012d}.jpg", "width": WIDTH, "height": HEIGHT}
        )
        for n in range(per_image):
            category = int(rng.integers(1, len(CATEGORIES) + 1))
            if n == 0 and image_id % 50 == 0:
                segmentation, bbox, area = crowd_rle(rng)
                crowd = 1
            else:
                points = polygon(rng)
                xs, ys = points[0::2], points[1::2]
                bbox = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
                area = 0.5 * abs(float(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))))
                segmentation, crowd = [points], 0
            coco["annotations"].append(
                {
                    "id": next_id,
                    "image_id": image_id,
                    "category_id": category,
                    "segmentation": segmentation,
                    "area": round(area, 2),
                    "bbox": [round(v, 2) for v in bbox],
                    "iscrowd": crowd,
                }
            )
            next_id += 1
    return coco


def floor_seconds(path: Path) -> float:
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        coco = COCO(str(path))
    for annotation in coco.dataset["annotations"]:
        coco.annToMask(annotation)
    return time.perf_counter() - started


def rubric_seconds(path: Path) -> tuple[float, Any]:
    started = time.perf_counter()
    result = validate_file(path)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--per-image", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=2, help="best of N rounds, interleaved")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.coco.json"
        coco = make_coco(args.images, args.per_image, args.seed)
        path.write_text(json.dumps(coco))
        annotations = len(coco["annotations"])
        del coco
        size_mib = path.stat().st_size / 2**20
        print(f"{args.images} images, {annotations} annotations, {size_mib:.1f} MiB")
        floors, rubrics = [], []
        for _ in range(args.rounds):
            floors.append(floor_seconds(path))
            seconds, result = rubric_seconds(path)
            rubrics.append(seconds)
        floor, rubric = min(floors), min(rubrics)
        print(f"floor (load + decode every mask): {annotations / floor:10.0f} annotations/s")
        print(f"full rubric (synthgate validate): {annotations / rubric:10.0f} annotations/s")
        print(f"ratio rubric/floor time:          {rubric / floor:10.2f}   (target <= 3)")
        summary = result.summary
        print(
            f"mean score {summary.mean_score:.2f}; "
            + ", ".join(
                f"{g.check}.{g.measure} (level {g.level}): {g.count}" for g in summary.ranked()[:4]
            )
        )


if __name__ == "__main__":
    main()
