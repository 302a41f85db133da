"""YOLO and Pascal VOC labels from COCO entries: pure functions at the edge.

Inside synthgate every box is COCO [x, y, w, h] in pixels. `bbox_to_yolo` gives YOLO's
normalised [cx, cy, w, h]; `yolo_to_bbox` goes back. `coco_to_yolo_lines` writes the lines of
one image's .txt file (class index = position of the category in `class_names`);
`coco_to_voc_xml` writes one image's VOC XML (xmin/ymin/xmax/ymax, 1-based pixel corners as in
VOC's devkit, from `voc_corners`). Boxes are clipped to the image first: trainers drop labels
that leave it; a box with nothing left (`exported_box` is None) is left out and counted.
`write_yolo` / `write_voc` write a whole COCO mapping as label files, one per image, named by
`export_names` (an image's base name; names whose stems collide get a hash prefix, so no label
overwrites another). `export_dataset` writes a ready-to-train folder: labels plus the images
(hard-linked, else copied), and data.yaml (YOLO) or ImageSets/Main/all.txt (VOC; `image_depth`
reads each XML's <depth> from its image). Crowd regions are left out of both formats, which have
no way to say "ignore this region".
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from xml.sax.saxutils import escape

import yaml
from PIL import Image, ImageMode, UnidentifiedImageError

from synthgate.errors import InputError

ExportFormat = Literal["yolo", "voc"]
# Where each format keeps its images (the folder names its tools look for).
IMAGE_FOLDERS: dict[str, str] = {"yolo": "images", "voc": "JPEGImages"}


def bbox_to_yolo(bbox: list[float], width: int, height: int) -> list[float]:
    """COCO [x, y, w, h] pixels -> YOLO [cx, cy, w, h] as fractions of the image size."""
    x, y, w, h = bbox
    return [(x + w / 2) / width, (y + h / 2) / height, w / width, h / height]


def yolo_to_bbox(box: list[float], width: int, height: int) -> list[float]:
    """YOLO [cx, cy, w, h] fractions -> COCO [x, y, w, h] pixels."""
    cx, cy, w, h = box
    return [(cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height]


def clip_bbox(bbox: list[float], width: int, height: int) -> list[float]:
    """A COCO box cut to the image: real files hold boxes a fraction of a pixel outside it."""
    x, y, w, h = bbox
    x0, y0 = min(max(x, 0.0), width), min(max(y, 0.0), height)
    x1, y1 = min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)
    return [x0, y0, x1 - x0, y1 - y0]


def exported_box(annotation: dict[str, Any], image: dict[str, Any]) -> list[float] | None:
    """The box an annotation is exported as: clipped to its image; None for a crowd region
    (neither format can say "ignore this region") or a box with no area left inside the image."""
    if annotation.get("iscrowd", 0):
        return None
    box = clip_bbox(annotation["bbox"], image["width"], image["height"])
    return box if box[2] > 0 and box[3] > 0 else None


def voc_corners(box: list[float]) -> list[int]:
    """A clipped COCO box (w, h > 0) as VOC [xmin, ymin, xmax, ymax], 1-based inclusive pixels.

    A pixel is in the box when its centre is (pixel i spans [i - 1, i]); a box too thin to hold
    a centre gets the one pixel that holds its middle. So 1 <= min <= max <= the image size.
    """
    x, y, w, h = box
    corners = []
    for start, size in ((x, w), (y, h)):
        first, last = math.ceil(start + 0.5), math.floor(start + size + 0.5)
        if last < first:
            first = last = math.floor(start + size / 2) + 1
        corners.append((first, last))
    (xmin, xmax), (ymin, ymax) = corners
    return [xmin, ymin, xmax, ymax]


def image_depth(path: Path) -> int:
    """VOC's <depth>: 1 for a grayscale image file, else 3 (read from the header, not decoded)."""
    try:
        with Image.open(path) as image:
            return 1 if ImageMode.getmode(image.mode).basemode == "L" else 3
    except UnidentifiedImageError:
        raise InputError(
            f"{path}: not an image file PIL can read; replace it, or leave its entry out of the "
            "COCO file"
        ) from None


def _by_image(coco: dict[str, Any]) -> dict[Any, list[dict[str, Any]]]:
    grouped: dict[Any, list[dict[str, Any]]] = {image["id"]: [] for image in coco["images"]}
    for annotation in coco["annotations"]:
        if not annotation.get("iscrowd", 0):
            grouped.setdefault(annotation["image_id"], []).append(annotation)
    return grouped


def coco_to_yolo_lines(
    image: dict[str, Any],
    annotations: list[dict[str, Any]],
    *,
    category_names: dict[Any, str],
    class_names: list[str],
) -> list[str]:
    """`class cx cy w h` lines for one image (6 decimals, YOLO's usual precision)."""
    index = {name: i for i, name in enumerate(class_names)}
    lines = []
    for annotation in annotations:
        box = exported_box(annotation, image)
        if box is None:
            continue
        values = bbox_to_yolo(box, image["width"], image["height"])
        cls = index[category_names[annotation["category_id"]]]
        lines.append(f"{cls} " + " ".join(f"{v:.6f}" for v in values))
    return lines


def coco_to_voc_xml(
    image: dict[str, Any],
    annotations: list[dict[str, Any]],
    *,
    category_names: dict[Any, str],
    depth: int = 3,
) -> str:
    """One image's Pascal VOC annotation XML (`depth`: 1 grayscale, 3 colour)."""
    objects = []
    for annotation in annotations:
        box = exported_box(annotation, image)
        if box is None:
            continue
        corners = voc_corners(box)
        objects.append(
            "  <object>\n"
            f"    <name>{escape(category_names[annotation['category_id']])}</name>\n"
            "    <pose>Unspecified</pose>\n    <truncated>0</truncated>\n"
            "    <difficult>0</difficult>\n    <bndbox>\n"
            + "".join(
                f"      <{tag}>{value}</{tag}>\n"
                for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), corners, strict=True)
            )
            + "    </bndbox>\n  </object>\n"
        )
    return (
        "<annotation>\n"
        f"  <filename>{escape(PurePosixPath(image['file_name']).name)}</filename>\n"
        f"  <size>\n    <width>{image['width']}</width>\n    <height>{image['height']}</height>\n"
        f"    <depth>{depth}</depth>\n  </size>\n  <segmented>0</segmented>\n"
        + "".join(objects)
        + "</annotation>\n"
    )


def export_names(images: list[dict[str, Any]]) -> dict[Any, str]:
    """Image id -> the file name it gets in an export: the base name of its `file_name`.

    Labels are named by stem, so two images with one stem (a/000001.png and b/000001.png, or
    x.png and X.jpg on a case-insensitive disk) would share a label file: every image of such a
    group gets the first 8 hex digits of its file_name's SHA-1 as a prefix instead.
    """
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for image in images:
        groups[PurePosixPath(image["file_name"]).stem.casefold()].append(image)
    names: dict[Any, str] = {}
    for group in groups.values():
        for image in group:
            name = PurePosixPath(image["file_name"]).name
            if name in ("", ".", ".."):  # would name a folder, not a file in the export
                raise InputError(
                    f"image {image['id']!r}: file_name {image['file_name']!r} ends in no file "
                    "name; give each image the path of its file"
                )
            if len(group) > 1:
                digest = hashlib.sha1(image["file_name"].encode("utf-8")).hexdigest()[:8]
                name = f"{digest}_{name}"
            names[image["id"]] = name
    file_names = {image["id"]: image["file_name"] for image in images}
    taken: dict[str, Any] = {}
    for image_id, name in names.items():
        key = PurePosixPath(name).stem.casefold()
        if key in taken:  # the same file_name twice, or a name that already had such a prefix
            first = taken[key]
            raise InputError(
                f"images {first!r} ({file_names[first]}) and {image_id!r} "
                f"({file_names[image_id]}) would both be exported as {name!r}; "
                "each image needs its own file_name"
            )
        taken[key] = image_id
    return names


def write_yolo(
    coco: dict[str, Any], out: Path, *, names: dict[Any, str] | None = None
) -> list[str]:
    """labels/<stem>.txt per image and classes.txt; returns the class names in index order.

    `names`: image id -> exported file name (default `export_names`)."""
    names = names if names is not None else export_names(coco["images"])
    category_names = {c["id"]: c["name"] for c in coco["categories"]}
    class_names = [c["name"] for c in coco["categories"]]
    (out / "labels").mkdir(parents=True, exist_ok=True)
    (out / "classes.txt").write_text("\n".join(class_names) + "\n", encoding="utf-8")
    images = {image["id"]: image for image in coco["images"]}
    for image_id, entries in _by_image(coco).items():
        image = images[image_id]
        lines = coco_to_yolo_lines(
            image, entries, category_names=category_names, class_names=class_names
        )
        stem = PurePosixPath(names[image_id]).stem
        text = "".join(f"{line}\n" for line in lines)
        (out / "labels" / f"{stem}.txt").write_text(text, encoding="utf-8")
    return class_names


def write_voc(
    coco: dict[str, Any],
    out: Path,
    *,
    names: dict[Any, str] | None = None,
    image_files: dict[Any, Path] | None = None,
) -> None:
    """Annotations/<stem>.xml per image and ImageSets/Main/all.txt listing the stems.

    `names`: image id -> exported file name (default `export_names`); the XML's <filename>.
    `image_files`: image id -> its file, read for <depth> (without them every depth is 3)."""
    names = names if names is not None else export_names(coco["images"])
    category_names = {c["id"]: c["name"] for c in coco["categories"]}
    (out / "Annotations").mkdir(parents=True, exist_ok=True)
    images = {image["id"]: image for image in coco["images"]}
    for image_id, entries in _by_image(coco).items():
        image = {**images[image_id], "file_name": names[image_id]}
        stem = PurePosixPath(names[image_id]).stem
        depth = image_depth(image_files[image_id]) if image_files is not None else 3
        xml = coco_to_voc_xml(image, entries, category_names=category_names, depth=depth)
        (out / "Annotations" / f"{stem}.xml").write_text(xml, encoding="utf-8")
    stems = [PurePosixPath(names[image["id"]]).stem for image in coco["images"]]
    (out / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    (out / "ImageSets" / "Main" / "all.txt").write_text(
        "".join(f"{stem}\n" for stem in stems), encoding="utf-8"
    )


def yolo_data_yaml(folder: Path, class_names: list[str]) -> str:
    """An Ultralytics dataset file for an export folder (train and val: every image)."""
    data = {
        # Absolute: Ultralytics reads a relative `path` from its own datasets folder.
        "path": str(folder.resolve()),
        "train": "images",
        "val": "images",
        "names": dict(enumerate(class_names)),
    }
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def place_image(source: Path, target: Path) -> bool:
    """Hard-link `source` to `target` (True), or copy it where a link cannot be made (False)."""
    try:
        os.link(source, target)
        return True
    except OSError:  # another file system, or one without hard links
        shutil.copy2(source, target)
        return False


@dataclass
class ExportCounts:
    """What an export wrote."""

    images: int = 0
    boxes: int = 0
    classes: int = 0
    crowd_left_out: int = 0
    outside_left_out: int = 0  # boxes with no area inside their image
    linked: int = 0
    copied: int = 0


def export_dataset(
    coco: dict[str, Any],
    folder: Path,
    *,
    fmt: ExportFormat,
    image_files: dict[Any, Path] | None = None,
    published_as: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ExportCounts:
    """Write `coco` as a YOLO or VOC folder into `folder` (which should be new and empty).

    `image_files`: image id -> the image on disk, placed beside the labels; None writes labels
    only (and no data.yaml, which would point at missing images). `published_as`: where the
    folder will live (data.yaml's `path`). `progress(n)` is called as images are placed.
    """
    names = export_names(coco["images"])
    counts = ExportCounts(images=len(coco["images"]), classes=len(coco["categories"]))
    images = {image["id"]: image for image in coco["images"]}
    for annotation in coco["annotations"]:
        if annotation.get("iscrowd", 0):
            counts.crowd_left_out += 1
        elif exported_box(annotation, images[annotation["image_id"]]) is None:
            counts.outside_left_out += 1
        else:
            counts.boxes += 1
    if fmt == "yolo":
        class_names = write_yolo(coco, folder, names=names)
    else:
        write_voc(coco, folder, names=names, image_files=image_files)
    if image_files is None:
        return counts
    images_folder = folder / IMAGE_FOLDERS[fmt]
    images_folder.mkdir(parents=True, exist_ok=True)
    for image in coco["images"]:
        if place_image(image_files[image["id"]], images_folder / names[image["id"]]):
            counts.linked += 1
        else:
            counts.copied += 1
        if progress is not None:
            progress(1)
    if fmt == "yolo":
        text = yolo_data_yaml(published_as or folder, class_names)
        (folder / "data.yaml").write_text(text, encoding="utf-8")
    return counts
