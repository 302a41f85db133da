"""Exports: a run, a balance output or a COCO file as a ready-to-train YOLO or Pascal VOC folder.

`export(source, format=..., out=...)` finds the COCO file a folder holds, checks it and every
image before writing anything (formats/coco_checks.py; `skip_invalid` leaves bad entries out),
then writes the export under a temporary name beside `out` and renames it at the end
(storage/folders.py), so a failure leaves no half-written folder: a file that cannot be read or
written part-way (a full disk, an unreadable image) is an InputError naming it, and the
temporary folder goes. Exports carry a marker file: only a folder with one is ever replaced, and
only with `force`. The label formats themselves are formats/yolo.py's and formats/voc.py's.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from synthgate.errors import InputError
from synthgate.formats.coco import read_coco
from synthgate.formats.coco_checks import check_coco
from synthgate.formats.exports import export_names, exported_box, place_image
from synthgate.formats.paths import confined_path, confinement_problem
from synthgate.formats.voc import write_voc
from synthgate.formats.yolo import write_yolo, yolo_data_yaml
from synthgate.storage.folders import prepare_out, publish_out

ExportFormat = Literal["yolo", "voc"]
FORMATS: tuple[str, ...] = ("yolo", "voc")
# Where each format keeps its images (the folder names its tools look for).
IMAGE_FOLDERS: dict[str, str] = {"yolo": "images", "voc": "JPEGImages"}
EXPORT_MARKER = ".synthgate-export.json"
# Folder kinds a source may be: the file that marks the kind, its COCO file, what wrote it.
FOLDER_KINDS = [
    ("balance.json", "merged.coco.json", "synthgate balance"),
    ("merge.json", "merged.coco.json", "synthgate merge"),
    ("manifest.json", "accepted.coco.json", "synthgate run"),
]
Progress = Callable[[int, int], None]  # (images placed so far, images in all)


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
    progress: Progress | None = None,
) -> ExportCounts:
    """Write `coco` as a YOLO or VOC folder into `folder` (which should be new and empty).

    `image_files`: image id -> the image on disk, placed beside the labels; None writes labels
    only (and no data.yaml, which would point at missing images). `published_as`: where the
    folder will live (data.yaml's `path`). `progress(placed, total)` is called as images are
    placed.
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
            progress(counts.linked + counts.copied, counts.images)
    if fmt == "yolo":
        text = yolo_data_yaml(published_as or folder, class_names)
        (folder / "data.yaml").write_text(text, encoding="utf-8")
    return counts


@dataclass
class ExportResult:
    """An export folder: where it is, its format, what it wrote (`counts`: images, boxes,
    classes, crowd regions and outside boxes left out, images linked or copied) and the bad
    entries `skip_invalid` left out."""

    out: Path
    format: str
    source: Path
    counts: ExportCounts
    skipped: list[str] = field(default_factory=list)


def export(
    source: Path | str,
    *,
    format: str,
    out: Path | str,
    images: Path | str | None = None,
    copy_images: bool = True,
    force: bool = False,
    skip_invalid: bool = False,
    progress: Progress | None = None,
) -> ExportResult:
    """Write a dataset as a ready-to-train YOLO or Pascal VOC folder.

    Args:
        source: a run folder (its accepted.coco.json), a balance output (merged.coco.json) or
            a COCO .json file.
        format: "yolo" (images/, labels/<stem>.txt, classes.txt, data.yaml) or "voc"
            (JPEGImages/, Annotations/<stem>.xml, ImageSets/Main/all.txt).
        out: the folder to write (new or empty; an earlier export only with `force`).
        images: the folder the COCO file_names are relative to (default: the COCO file's).
        copy_images: put the images beside the labels (hard links, else copies).
        force: replace an earlier export at `out`.
        skip_invalid: leave bad COCO entries out (listed in `.skipped`) instead of stopping.
        progress: called with (images placed, images in all).

    Returns:
        An `ExportResult`: `.out`, `.counts`, `.skipped`.

    Example:
        >>> export("runs/quickstart", format="yolo", out="quickstart-yolo/")
    """
    if format not in FORMATS:
        raise InputError(
            field="format", value=format, problem=f"choose one of {', '.join(FORMATS)}"
        )
    source, out = Path(source), Path(out)
    coco_path, root = find_coco(source, Path(images) if images else None)
    coco, skipped = read_checked(
        coco_path, images_dir=root if copy_images else None, skip_invalid=skip_invalid
    )
    export_names(coco["images"])  # refuses two images that would share a name, up front
    files = None
    if copy_images:  # check_coco has seen every one of them on disk
        files = {image["id"]: confined_path(root, image["file_name"]) for image in coco["images"]}
    target = guard_out(out, source=coco_path, force=force)
    temporary = prepare_out(target, marker=EXPORT_MARKER, what="export")
    try:
        counts = export_dataset(
            coco,
            temporary,
            fmt=format,  # type: ignore[arg-type]
            image_files=files,
            published_as=target,
            progress=progress,
        )
        marker = {"format": format, "source": str(coco_path.resolve())}
        (temporary / EXPORT_MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
        publish_out(temporary, target)
    except BaseException as error:
        shutil.rmtree(temporary, ignore_errors=True)
        if isinstance(error, OSError):
            raise InputError(
                f"{_failed_path(error, temporary, target)}: {error.strerror or error} "
                f"while exporting to {out}; nothing was written (check that the images "
                "can be read and that the disk of the export has room, then run again)"
            ) from None
        raise
    return ExportResult(out=target, format=format, source=coco_path, counts=counts, skipped=skipped)


def find_coco(source: Path, images: Path | None) -> tuple[Path, Path]:
    """The COCO file SOURCE stands for and the folder its file_names are relative to."""
    expected = ", ".join(f"{coco} ({tool})" for _, coco, tool in FOLDER_KINDS)
    if not source.exists():
        raise InputError(
            f"{source}: not found; pass a run folder, a balance output or a COCO .json file"
        )
    if images is not None and not images.is_dir():
        raise InputError(
            field="images", value=images, problem="folder not found; pass the folder of the images"
        )
    if source.is_file():
        return source, images if images is not None else source.parent
    for mark, coco, tool in FOLDER_KINDS:
        if (source / mark).is_file():
            if not (source / coco).is_file():
                raise InputError(
                    f"{source}: a folder written by {tool} but without {coco} "
                    "(a text-only run has no images to export); pass a COCO .json file instead"
                )
            return source / coco, images if images is not None else source
    for _, coco, _ in FOLDER_KINDS:  # a copied folder that lost its marker file
        if (source / coco).is_file():
            return source / coco, images if images is not None else source
    raise InputError(
        f"{source}: no COCO file found; expected one of {expected}, or pass a COCO .json file"
    )


def read_checked(
    path: Path, *, images_dir: Path | None, skip_invalid: bool
) -> tuple[dict[str, Any], list[str]]:
    """The COCO file with every box-level check passed and, given `images_dir`, every image
    file there (segmentations are not exported, so a bad polygon does not stop an export);
    the descriptions of entries left out."""

    coco = read_coco(path)
    if images_dir is not None:
        refuse_if_no_image_is_there(coco["images"], images_dir)
    boxes_only = {
        **coco,
        "annotations": [
            {k: v for k, v in a.items() if k != "segmentation"} if isinstance(a, dict) else a
            for a in coco["annotations"]
        ],
    }
    checked = check_coco(boxes_only, source=path, images_dir=images_dir, skip_invalid=skip_invalid)
    return checked.data, [p.describe() for p in checked.skipped]


def refuse_if_no_image_is_there(images: list[Any], root: Path) -> None:
    """Not one image under `root` means the wrong folder, not bad entries: say so (check_coco
    would list every image and suggest skip_invalid, which would export nothing)."""
    names = [
        image["file_name"]
        for image in images
        if isinstance(image, dict) and confinement_problem(image.get("file_name")) is None
    ]
    if names and not any(confined_path(root, name).is_file() for name in names):
        raise InputError(
            f"{root / names[0]}: image file not found (none of the {len(names)} images is "
            f"under {root}); pass the folder the file_names are relative to with --images DIR, "
            "or --no-copy-images to write the labels only"
        )


def guard_out(out: Path, *, source: Path, force: bool) -> Path:
    """`out` as a path that has a name; refuse to replace an export without `force`, or one
    that holds SOURCE (prepare_out refuses folders that are not exports)."""
    target = out.resolve() if out.name in ("", "..") else out
    if target.is_dir() and any(target.iterdir()) and (target / EXPORT_MARKER).is_file():
        if not force:
            raise InputError(
                field="out",
                value=out,
                problem="holds an earlier export; replace it with force (--force), "
                "or choose a new folder",
            )
        if source.resolve().is_relative_to(target.resolve()):
            raise InputError(
                field="out",
                value=out,
                problem=f"holds {source}, which replacing it would delete; choose a new folder",
            )
    return target


def _failed_path(error: OSError, temporary: Path, target: Path) -> Path:
    """The file an OSError is about, named as it will be in `out` (not the temporary folder)."""
    if not isinstance(error.filename, str | bytes | os.PathLike):
        return target
    path = Path(os.fsdecode(error.filename))
    return target / path.relative_to(temporary) if path.is_relative_to(temporary) else path
