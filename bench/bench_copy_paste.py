"""copy_paste at scale, and `synthgate balance` against the floor of the pastes it makes.

1. Per-sample CPU of the copy_paste generator with 1k and 100k source images: COCO files made by
   replicating ../shared/data/coco-tiny-val2017 (new image and annotation ids, the same 80
   files). Every file is decoded before the timed samples, so both sizes paste from the same
   pixels and what could grow with the dataset is the bookkeeping (background choice, pools).
   Target: 100k within 1.3x of 1k.
2. The image cache: decodes for 291 samples from an 800-image dataset of distinct files (links
   to the 80 under ten names each), with the cache sized to the dataset and with one of 16
   images (what the generator had before).
3. `synthgate balance --target median` on coco-tiny against a floor that replays the same pastes
   (the same instances, scales, flips and places on the same backgrounds, read from the balance
   output, each file decoded once) and encodes each image with the same PNG encoder: no rubric,
   no labels of the background, no database, no report. Fresh processes timed by the kernel
   (wall, CPU of every thread), best of `--rounds`, interleaved. Target: CPU ratio <= 2.
Usage: python bench/bench_copy_paste.py [--samples 60] [--rounds 3] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _support import measure, shared_data

from synthgate.config import CopyPasteImageConfig
from synthgate.generators.copy_paste import IMAGE_CACHE_BYTES, CopyPasteGenerator
from synthgate.samples import SampleSpec

FLOOR = """
import json, sys
from pathlib import Path
import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from synthgate.generators.png import encode_png

real = json.loads(Path(sys.argv[1]).read_text())
images, out = Path(sys.argv[2]), Path(sys.argv[4])
entries = {i["id"]: i for i in real["images"]}
annotations = {a["id"]: a for a in real["annotations"]}
decoded = {}

def pixels(image_id):
    if image_id not in decoded:
        with Image.open(images / entries[image_id]["file_name"]) as image:
            decoded[image_id] = np.asarray(image.convert("RGB"))
    return decoded[image_id]

def mask_of(annotation, height, width):
    segmentation = annotation["segmentation"]
    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation["counts"], list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    return mask_utils.decode(rle).astype(bool), rle

for run in sys.argv[3].split(","):
    for image in json.loads(Path(run).read_text())["images"]:
        params = image["synthgate"]["provenance"]["params"]
        canvas = pixels(params["background_image_id"]).copy()
        for paste in params["pasted"]:
            annotation = annotations[paste["source_annotation_id"]]
            source = entries[annotation["image_id"]]
            mask, rle = mask_of(annotation, source["height"], source["width"])
            x, y, w, h = (int(v) for v in mask_utils.toBbox(rle))
            w, h = max(w, 1), max(h, 1)
            crop = pixels(annotation["image_id"])[y : y + h, x : x + w]
            size = (max(1, round(w * paste["scale"])), max(1, round(h * paste["scale"])))
            patch = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BILINEAR))
            alpha = Image.fromarray(mask[y : y + h, x : x + w]).resize(size, Image.Resampling.NEAREST)
            alpha = np.asarray(alpha)
            if paste["flip"]:
                patch, alpha = patch[:, ::-1], alpha[:, ::-1]
            left, top = paste["position"]
            region = canvas[top : top + size[1], left : left + size[0]]
            fit = alpha[: region.shape[0], : region.shape[1]]
            region[fit] = patch[: region.shape[0], : region.shape[1]][fit]
        (out / Path(image["file_name"]).name).write_bytes(encode_png(canvas))
"""


def replicated(data: dict[str, Any], images: int, *, rename: bool = False) -> dict[str, Any]:
    """`images` entries cycling through the dataset's, with new ids (annotations follow their
    image); `rename`: the k-th copy of a file is named `k-<file_name>` (a link made by `links`)."""
    by_image: dict[Any, list[dict[str, Any]]] = {}
    for annotation in data["annotations"]:
        by_image.setdefault(annotation["image_id"], []).append(annotation)
    out_images, out_annotations = [], []
    for number in range(images):
        entry = data["images"][number % len(data["images"])]
        copy = number // len(data["images"])
        name = f"{copy}-{entry['file_name']}" if rename else entry["file_name"]
        out_images.append({**entry, "id": number + 1, "file_name": name})
        for annotation in by_image.get(entry["id"], []):
            out_annotations.append(
                {**annotation, "id": len(out_annotations) + 1, "image_id": number + 1}
            )
    return {**data, "images": out_images, "annotations": out_annotations}


def links(data: dict[str, Any], source: Path, folder: Path) -> None:
    """Every renamed file of `data` as a link to its original in `source`."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in data["images"]:
        original = entry["file_name"].split("-", 1)[1]
        (folder / entry["file_name"]).symlink_to(source / original)


def specs(generator: CopyPasteGenerator, count: int, first: int = 0) -> list[SampleSpec]:
    classes = generator.quota_categories()
    return [
        SampleSpec(
            batch_id="bench",
            index=index,
            modality="image",
            generator="copy_paste",
            category=classes[index % len(classes)],
            seed=1000 + index,
        )
        for index in range(first, first + count)
    ]


def per_sample(data: dict[str, Any], root: Path, images: Path, samples: int) -> tuple[float, float]:
    """(set-up CPU s, CPU s per sample) of the generator on `data`, every file decoded first."""
    config = CopyPasteImageConfig(count=1, coco=root / "annotations.json", images=images)
    started = time.process_time()
    generator = CopyPasteGenerator(config, categories=[], dataset=data)
    built = time.process_time() - started
    seen: set[str] = set()
    for image_id, entry in generator.images.items():  # decode each file once, untimed
        if entry["file_name"] not in seen:
            seen.add(entry["file_name"])
            generator._pixels(image_id)
    generator.generate(specs(generator, 5))  # warm
    started = time.process_time()
    generator.generate(specs(generator, samples, first=5))
    return built, (time.process_time() - started) / samples


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=shared_data())
    args = parser.parse_args()
    coco, images = args.data / "annotations.json", args.data / "images"
    data = json.loads(coco.read_text())

    print("1. copy_paste CPU per sample (every file decoded before timing):")
    costs = {}
    for count in (1_000, 100_000):
        built, cost = per_sample(replicated(data, count), args.data, images, args.samples)
        costs[count] = cost
        print(
            f"  {count:>7,} source images: {1e3 * cost:6.1f} ms per sample "
            f"(set-up {built:.2f} s, {args.samples} samples)"
        )
    print(f"  ratio 100k / 1k: {costs[100_000] / costs[1_000]:.2f}   (target <= 1.3)")

    print("2. image cache: 291 samples from 800 distinct image files")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        many = replicated(data, 800, rename=True)
        links(many, images, folder / "images")
        config = CopyPasteImageConfig(count=1, coco=coco, images=folder / "images")
        largest = max(e["width"] * e["height"] * 3 for e in many["images"])
        for title, budget in (("sized to the dataset", None), ("16 images", 16 * largest)):
            generator = CopyPasteGenerator(
                config, categories=[], dataset=many, cache_bytes=budget or IMAGE_CACHE_BYTES
            )
            started = time.process_time()
            generator.generate(specs(generator, 291))
            cpu = time.process_time() - started
            print(
                f"  cache {title:>20}: {generator.decoded:4} decodes, "
                f"{1e3 * cpu / 291:5.1f} ms CPU per sample"
            )

    print(f"3. balance --target median on {args.data.name} against its floor:")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        balance = [
            sys.executable, "-m", "synthgate", "balance", "--coco", str(coco),
            "--images", str(images), "--out", str(folder / "balanced"), "--target", "median",
        ]  # fmt: skip
        measure(balance)  # the pastes the floor replays
        runs = sorted((folder / "balanced" / "runs").glob("*/coco.json"))
        pasted = sum(len(json.loads(r.read_text())["images"]) for r in runs)
        (folder / "floor").mkdir()
        floor = [
            sys.executable, "-c", FLOOR, str(coco), str(images),
            ",".join(str(r) for r in runs), str(folder / "floor"),
        ]  # fmt: skip
        rounds = [(measure(floor), measure(balance)) for _ in range(args.rounds)]
        floor_best = min((f for f, _ in rounds), key=lambda m: m.cpu)
        balance_best = min((b for _, b in rounds), key=lambda m: m.cpu)
        print(f"  {pasted} images made, best of {args.rounds}:")
        for name, m in (("floor (replay + PNG)", floor_best), ("synthgate balance", balance_best)):
            print(f"  {name:22} wall {m.wall:6.2f} s  CPU {m.cpu:6.2f} s")
        print(f"  CPU ratio balance/floor: {balance_best.cpu / floor_best.cpu:.2f}   (target <= 2)")


if __name__ == "__main__":
    main()
