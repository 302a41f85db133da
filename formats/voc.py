"""Pascal VOC labels from COCO entries: pure functions at the edge.

`coco_to_voc_xml` writes one image's VOC XML (xmin/ymin/xmax/ymax, 1-based pixel corners as in
VOC's devkit, from `voc_corners`; `<depth>` from `voc_depth` of the image's mode, `image_depth`
reads it from a file's header);
`write_voc` writes a whole COCO mapping as Annotations/<stem>.xml files, ImageSets/Main/<subset>.txt
(all.txt without subsets) and labelmap.txt (`voc_labelmap`: the classes, which datumaro and CVAT
need for any class outside VOC's 20). Boxes are clipped to the image first (formats/exports.py).
"""

from __future__ import annotations

import math
from pathlib import Path, PurePosixPath
from typing import Any
from xml.sax.saxutils import escape

from PIL import Image, ImageMode, UnidentifiedImageError

from synthgate.class_names import category_name_problem
from synthgate.errors import InputError
from synthgate.formats.exports import by_image, export_names, exported_box
from synthgate.formats.image_files import pixel_limit, too_large
from synthgate.formats.xml_text import UNFIT_FOR_XML, unfit_for_xml


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


def voc_depth(mode: str) -> int:
    """VOC's <depth> of an image of Pillow mode `mode`: 1 grayscale, else 3."""
    return 1 if ImageMode.getmode(mode).basemode == "L" else 3


def image_depth(path: Path) -> int:
    """VOC's <depth> of an image file (read from the header, not decoded; `pixel_limit`
    applies, as wherever synthgate reads an image)."""
    pixel_limit()
    try:
        with Image.open(path) as image:
            return voc_depth(image.mode)
    except UnidentifiedImageError:
        raise InputError(
            f"{path}: not an image file PIL can read; replace it, or leave its entry out of the "
            "COCO file"
        ) from None
    except Image.DecompressionBombError as error:
        raise InputError(f"{path}: too large to read: {too_large(error)}") from None


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


def voc_labelmap(class_names: list[str]) -> str:
    """labelmap.txt as datumaro and CVAT read it: `name:color:parts:actions`, colour left out."""
    bad = unfit_for_xml(class_names)
    if bad:
        raise InputError(
            f"classes {bad[:5]}: {UNFIT_FOR_XML}, as a VOC file is XML; rename these "
            "categories for a VOC export"
        )
    # the class-name rule of configs and balance (class_names.py), and labelmap.txt's ':'
    bad = [name for name in class_names if ":" in name or category_name_problem(name)]
    if bad:
        raise InputError(
            f"classes {bad[:5]}: VOC's labelmap.txt separates its fields with ':' and lines "
            "with line breaks, and these names hold one, or are blank or hold another control "
            "character; rename these categories for a VOC export"
        )
    return "# label:color_rgb:parts:actions\n" + "".join(f"{name}:::\n" for name in class_names)


def write_voc(
    coco: dict[str, Any],
    out: Path,
    *,
    names: dict[Any, str] | None = None,
    depths: dict[Any, int] | None = None,
    subsets: dict[Any, str] | None = None,
) -> None:
    """Annotations/<stem>.xml per image, labelmap.txt, and ImageSets/Main/<subset>.txt listing
    the stems of each subset (`subsets`: image id -> subset; without it, all.txt lists all).

    `names`: image id -> exported file name (default `export_names`); the XML's <filename>.
    `depths`: image id -> its <depth> (`image_depth`, `voc_depth`; without them every depth
    is 3)."""
    names = names if names is not None else export_names(coco["images"])
    bad = unfit_for_xml(names.values())
    if bad:
        raise InputError(
            f"file names {bad[:5]} ({len(bad)} in all): {UNFIT_FOR_XML}, as a VOC file's "
            "<filename> is XML; rename these files for a VOC export"
        )
    labelmap = voc_labelmap([c["name"] for c in coco["categories"]])
    category_names = {c["id"]: c["name"] for c in coco["categories"]}
    (out / "Annotations").mkdir(parents=True, exist_ok=True)
    (out / "labelmap.txt").write_text(labelmap, encoding="utf-8")
    images = {image["id"]: image for image in coco["images"]}
    for image_id, entries in by_image(coco).items():
        image = {**images[image_id], "file_name": names[image_id]}
        stem = PurePosixPath(names[image_id]).stem
        depth = depths[image_id] if depths is not None else 3
        xml = coco_to_voc_xml(image, entries, category_names=category_names, depth=depth)
        (out / "Annotations" / f"{stem}.xml").write_text(xml, encoding="utf-8")
    lists: dict[str, list[str]] = {}
    for image in coco["images"]:
        subset = subsets[image["id"]] if subsets is not None else "all"
        lists.setdefault(subset, []).append(PurePosixPath(names[image["id"]]).stem)
    (out / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    for subset, stems in lists.items():
        (out / "ImageSets" / "Main" / f"{subset}.txt").write_text(
            "".join(f"{stem}\n" for stem in stems), encoding="utf-8"
        )
