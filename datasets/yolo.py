"""YOLO and Pascal VOC labels from COCO entries: pure functions at the edge.

Inside synthgate every box is COCO [x, y, w, h] in pixels. `bbox_to_yolo` gives YOLO's
normalised [cx, cy, w, h]; `yolo_to_bbox` goes back. `coco_to_yolo_lines` writes the lines of
one image's .txt file (class index = position of the category in `class_names`);
`coco_to_voc_xml` writes one image's VOC XML (xmin/ymin/xmax/ymax, 1-based pixel corners as in
VOC's devkit). `write_yolo` / `write_voc` write a whole COCO mapping as label files. Crowd
regions are left out of both formats, which have no way to say "ignore this region".
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any
from xml.sax.saxutils import escape


def bbox_to_yolo(bbox: list[float], width: int, height: int) -> list[float]:
    """COCO [x, y, w, h] pixels -> YOLO [cx, cy, w, h] as fractions of the image size."""
    x, y, w, h = bbox
    return [(x + w / 2) / width, (y + h / 2) / height, w / width, h / height]


def yolo_to_bbox(box: list[float], width: int, height: int) -> list[float]:
    """YOLO [cx, cy, w, h] fractions -> COCO [x, y, w, h] pixels."""
    cx, cy, w, h = box
    return [(cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height]


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
        if annotation.get("iscrowd", 0):
            continue
        values = bbox_to_yolo(annotation["bbox"], image["width"], image["height"])
        cls = index[category_names[annotation["category_id"]]]
        lines.append(f"{cls} " + " ".join(f"{v:.6f}" for v in values))
    return lines


def coco_to_voc_xml(
    image: dict[str, Any], annotations: list[dict[str, Any]], *, category_names: dict[Any, str]
) -> str:
    """One image's Pascal VOC annotation XML."""
    objects = []
    for annotation in annotations:
        if annotation.get("iscrowd", 0):
            continue
        x, y, w, h = annotation["bbox"]
        corners = [round(x) + 1, round(y) + 1, round(x + w), round(y + h)]
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
        "    <depth>3</depth>\n  </size>\n  <segmented>0</segmented>\n"
        + "".join(objects)
        + "</annotation>\n"
    )


def write_yolo(coco: dict[str, Any], out: Path) -> list[str]:
    """labels/<stem>.txt per image and classes.txt; returns the class names in index order."""
    names = {c["id"]: c["name"] for c in coco["categories"]}
    class_names = [c["name"] for c in coco["categories"]]
    (out / "labels").mkdir(parents=True, exist_ok=True)
    (out / "classes.txt").write_text("\n".join(class_names) + "\n", encoding="utf-8")
    images = {image["id"]: image for image in coco["images"]}
    for image_id, entries in _by_image(coco).items():
        image = images[image_id]
        lines = coco_to_yolo_lines(image, entries, category_names=names, class_names=class_names)
        stem = PurePosixPath(image["file_name"]).stem
        (out / "labels" / f"{stem}.txt").write_text("".join(f"{line}\n" for line in lines))
    return class_names


def write_voc(coco: dict[str, Any], out: Path) -> None:
    """Annotations/<stem>.xml per image."""
    names = {c["id"]: c["name"] for c in coco["categories"]}
    (out / "Annotations").mkdir(parents=True, exist_ok=True)
    images = {image["id"]: image for image in coco["images"]}
    for image_id, entries in _by_image(coco).items():
        image = images[image_id]
        stem = PurePosixPath(image["file_name"]).stem
        xml = coco_to_voc_xml(image, entries, category_names=names)
        (out / "Annotations" / f"{stem}.xml").write_text(xml, encoding="utf-8")
