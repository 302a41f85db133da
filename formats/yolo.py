"""YOLO labels from COCO entries, and back: pure functions at the edge.

Inside synthgate every box is COCO [x, y, w, h] in pixels. `bbox_to_yolo` gives YOLO's
normalised [cx, cy, w, h]; `yolo_to_bbox` goes back. `coco_to_yolo_lines` writes the lines of
one image's .txt file (class index = position of the category in `class_names`); `write_yolo`
writes a whole COCO mapping as labels/[<subset>/]<stem>.txt files and classes.txt, and
`yolo_data_yaml` the Ultralytics dataset file; `yolo_unloadable` the image names it would pass
over. Boxes are clipped to the image first
(formats/exports.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from synthgate.class_names import category_name_problem
from synthgate.errors import InputError
from synthgate.formats.exports import by_image, export_names, exported_box

# The image files Ultralytics finds in a data.yaml's folders (ultralytics.data.utils.IMG_FORMATS,
# 8.4): any other file there is passed over, its labels with it, without a word.
YOLO_IMAGE_SUFFIXES = frozenset(
    [
        ".avif",
        ".bmp",
        ".dng",
        ".heic",
        ".heif",
        ".jp2",
        ".jpeg",
        ".jpg",
        ".mpo",
        ".png",
        ".tif",
        ".tiff",
        ".webp",
    ]
)


def yolo_unloadable(names: Iterable[str]) -> list[str]:
    """The image file names (exported names) Ultralytics would pass over: no suffix it reads."""
    return [name for name in names if PurePosixPath(name).suffix.lower() not in YOLO_IMAGE_SUFFIXES]


def bbox_to_yolo(bbox: list[float], width: int, height: int) -> list[float]:
    """COCO [x, y, w, h] pixels -> YOLO [cx, cy, w, h] as fractions of the image size."""
    x, y, w, h = bbox
    return [(x + w / 2) / width, (y + h / 2) / height, w / width, h / height]


def yolo_to_bbox(box: list[float], width: int, height: int) -> list[float]:
    """YOLO [cx, cy, w, h] fractions -> COCO [x, y, w, h] pixels."""
    cx, cy, w, h = box
    return [(cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height]


def yolo_number(value: float) -> str:
    """One YOLO value with 6 decimals, YOLO's usual precision; a value above 0 that would read
    0.000000 (a box narrower than 5e-7 of its image, which Ultralytics drops as empty) with as
    many more as keep 6 significant digits, still in fixed notation every reader parses."""
    text = f"{value:.6f}"
    if value > 0 and float(text) == 0:
        text = f"{value:.{5 - math.floor(math.log10(value))}f}"
    return text


def coco_to_yolo_lines(
    image: dict[str, Any],
    annotations: list[dict[str, Any]],
    *,
    category_names: dict[Any, str],
    class_names: list[str],
) -> list[str]:
    """`class cx cy w h` lines for one image (`yolo_number`: 6 decimals, more for a value
    they would round to 0)."""
    index = {name: i for i, name in enumerate(class_names)}
    lines = []
    for annotation in annotations:
        box = exported_box(annotation, image)
        if box is None:
            continue
        values = bbox_to_yolo(box, image["width"], image["height"])
        cls = index[category_names[annotation["category_id"]]]
        lines.append(f"{cls} " + " ".join(yolo_number(v) for v in values))
    return lines


def write_yolo(
    coco: dict[str, Any],
    out: Path,
    *,
    names: dict[Any, str] | None = None,
    subsets: dict[Any, str] | None = None,
) -> list[str]:
    """labels/<stem>.txt per image (labels/<subset>/<stem>.txt given `subsets`: image id ->
    subset) and classes.txt; returns the class names in index order.

    `names`: image id -> exported file name (default `export_names`)."""
    names = names if names is not None else export_names(coco["images"])
    category_names = {c["id"]: c["name"] for c in coco["categories"]}
    class_names = [c["name"] for c in coco["categories"]]
    # classes.txt holds one class a line, and data.yaml's reader breaks lines at U+0085,
    # U+2028, ... too (what str.splitlines splits at); a blank line reads as no class at all
    bad = [n for n in class_names if category_name_problem(n) is not None]
    if bad:
        raise InputError(
            f"classes {bad[:5]}: YOLO's classes.txt holds one class a line, and these names "
            "are blank or hold a control character or line break (a tab, a newline, U+2028, "
            "...); rename these categories for a YOLO export"
        )
    (out / "labels").mkdir(parents=True, exist_ok=True)
    (out / "classes.txt").write_text("\n".join(class_names) + "\n", encoding="utf-8")
    images = {image["id"]: image for image in coco["images"]}
    for image_id, entries in by_image(coco).items():
        image = images[image_id]
        lines = coco_to_yolo_lines(
            image, entries, category_names=category_names, class_names=class_names
        )
        folder = out / "labels" / (subsets[image_id] if subsets is not None else "")
        folder.mkdir(parents=True, exist_ok=True)
        stem = PurePosixPath(names[image_id]).stem
        text = "".join(f"{line}\n" for line in lines)
        (folder / f"{stem}.txt").write_text(text, encoding="utf-8")
    return class_names


def yolo_data_yaml(class_names: list[str], *, subsets: dict[str, int], note: str = "") -> str:
    """An Ultralytics dataset file: train and val image folders (images/<subset>), names.

    `subsets`: subset -> images in it; with no val images, val is the training images (said in
    a comment). There is no `path:` key: Ultralytics then reads train and val relative to the
    file's own folder (a relative `path:` it would read relative to the current directory, an
    absolute one breaks when the folder moves), as FiftyOne and datumaro do."""
    has_val = subsets.get("val", 0) > 0
    data = {
        "train": "images/train",
        "val": "images/val" if has_val else "images/train",
        "names": dict(enumerate(class_names)),
    }
    comments = [note] if note else []
    comments.append(
        "no `path:` key: train and val are read relative to this file, wherever the folder lies"
    )
    if not has_val:
        comments.append("val is the training images: the export was made with --split 1")
    header = "".join(f"# {line}\n" for line in comments)
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
