"""What every export format shares: the name each image gets (`export_names`), the box each
annotation becomes (`exported_box`: clipped to its image; None for a crowd region, which YOLO and
VOC cannot express, or for a box with nothing left inside the image; `as_shown` first turns the
boxes of a photo labelled on its stored pixels into the frame its EXIF orientation shows),
annotations grouped by image, the seeded train/val split (`split_subsets`), one split of a COCO
mapping as a COCO file of its own (`coco_subset`), and placing an image file beside its labels
(`place_image`: a hard link, else a copy).
"""

from __future__ import annotations

import hashlib
import numbers
import os
import shutil
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Any

from synthgate.errors import InputError

SUBSETS = ("train", "val")


def clip_bbox(bbox: list[float], width: int, height: int) -> list[float]:
    """A COCO box cut to the image: real files hold boxes a fraction of a pixel outside it."""
    x, y, w, h = bbox
    x0, y0 = min(max(x, 0.0), width), min(max(y, 0.0), height)
    x1, y1 = min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)
    return [x0, y0, x1 - x0, y1 - y0]


def turned_box(bbox: list[float], turn: int, stored_size: tuple[int, int]) -> list[float]:
    """A COCO box on an image's stored pixels (`stored_size`: width, height), in the frame its
    EXIF orientation `turn` (5-8, the ones that swap width and height) shows it."""
    x, y, w, h = bbox
    width, height = stored_size
    if turn == 5:  # transposed
        return [y, x, h, w]
    if turn == 6:  # shown turned 90 degrees clockwise
        return [height - y - h, x, h, w]
    if turn == 7:  # transposed across the other diagonal
        return [height - y - h, width - x - w, h, w]
    if turn == 8:  # shown turned 90 degrees counter-clockwise
        return [y, width - x - w, h, w]
    raise ValueError(f"EXIF orientation {turn}: only 5-8 swap width and height")


def as_shown(coco: dict[str, Any], turns: dict[Any, int]) -> dict[str, Any]:
    """`coco` with the labels of each image of `turns` (image id -> EXIF orientation 5-8, its
    labels drawn on its stored pixels) put into the frame the image is shown in: its width and
    height swapped, its annotations' boxes turned (`turned_box`). Other entries are kept as
    they are; segmentations of the turned annotations are dropped (boxes-only formats)."""
    if not turns:
        return coco
    images = []
    for image in coco["images"]:
        if image["id"] in turns:
            image = {**image, "width": image["height"], "height": image["width"]}
        images.append(image)
    sizes = {image["id"]: (image["width"], image["height"]) for image in coco["images"]}
    annotations = []
    for annotation in coco["annotations"]:
        turn = turns.get(annotation["image_id"])
        if turn is not None:
            box = turned_box(annotation["bbox"], turn, sizes[annotation["image_id"]])
            annotation = {
                **{k: v for k, v in annotation.items() if k != "segmentation"},
                "bbox": box,
            }
        annotations.append(annotation)
    return {**coco, "images": images, "annotations": annotations}


def exported_box(annotation: dict[str, Any], image: dict[str, Any]) -> list[float] | None:
    """The box an annotation is exported as: clipped to its image; None for a crowd region
    (neither format can say "ignore this region") or a box with no area left inside the image.

    VOC's <difficult>1</difficult> is no crowd flag: the devkit's evaluation ignores such an
    object as COCOeval ignores a crowd, but detectron2's VOC loader trains on it (a box around
    a whole crowd as one person) and datumaro and FiftyOne load it as an object like any other;
    datumaro's own COCO to VOC conversion keeps crowd masks out of Annotations/ too."""
    if annotation.get("iscrowd", 0):
        return None
    box = clip_bbox(annotation["bbox"], image["width"], image["height"])
    return box if box[2] > 0 and box[3] > 0 else None


def by_image(coco: dict[str, Any]) -> dict[Any, list[dict[str, Any]]]:
    grouped: dict[Any, list[dict[str, Any]]] = {image["id"]: [] for image in coco["images"]}
    for annotation in coco["annotations"]:
        if not annotation.get("iscrowd", 0):
            grouped.setdefault(annotation["image_id"], []).append(annotation)
    return grouped


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


def place_image(source: Path, target: Path) -> bool:
    """Hard-link `source` to `target` (True), or copy it where a link cannot be made (False).
    A symlink is followed: os.link on Linux links the symlink itself, which would put a pointer
    in the output (dangling once a relative one sits elsewhere, outside the folder if absolute),
    not the image."""
    try:
        os.link(os.path.realpath(source), target)
        return True
    except OSError:  # another file system, or one without hard links
        shutil.copy2(source, target)
        return False


def check_split(train_share: Any) -> float:
    """`train_share` as the share of images in train, or an InputError: a number in (0, 1]
    (one wording for 0, 1.5 and NaN; a bool or a string is no number)."""
    problem = "is the share of images in train: a number in (0, 1], e.g. 0.9"
    if isinstance(train_share, bool) or not isinstance(train_share, numbers.Real):
        raise InputError(field="split", value=repr(train_share), problem=problem)
    share = float(train_share)
    if not 0 < share <= 1:  # NaN fails it too
        raise InputError(field="split", value=share, problem=problem)
    return share


def split_subsets(images: list[dict[str, Any]], *, train_share: float, seed: int) -> dict[Any, str]:
    """Image id -> "train" or "val": `train_share` of the images (rounded) in train, the rest
    in val, drawn by `seed`. Each image's place comes from a hash of the seed and its file_name,
    so it does not depend on the order of the file, nor on the numpy version. With a share
    below 1 and two images or more, each subset gets at least one image."""
    check_split(train_share)
    count = len(images)
    train = round(train_share * count)
    if train_share < 1 and count >= 2:
        train = min(max(train, 1), count - 1)

    def draw(image: dict[str, Any]) -> bytes:
        return hashlib.sha256(f"{seed}\0{image['file_name']}\0{image['id']}".encode()).digest()

    ordered = sorted(images, key=draw)
    return {image["id"]: "train" if rank < train else "val" for rank, image in enumerate(ordered)}


def coco_subset(coco: dict[str, Any], image_ids: set[Any], names: dict[Any, str]) -> dict[str, Any]:
    """The images of `image_ids` and their annotations as a COCO mapping of their own, every
    entry as it was but `file_name`, which becomes the exported name (relative to the subset's
    images folder); other top-level keys (info, licenses, categories) are kept."""
    images = [
        {**image, "file_name": names[image["id"]]}
        for image in coco["images"]
        if image["id"] in image_ids
    ]
    annotations = [a for a in coco["annotations"] if a["image_id"] in image_ids]
    return {**coco, "images": images, "annotations": annotations}
