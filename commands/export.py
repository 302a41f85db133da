"""`synthgate export`: a run, a balance output or a COCO file as a YOLO or Pascal VOC folder.

The command finds the COCO file a folder holds, checks it and every image before writing
anything (coco_checks.check_coco; --skip-invalid leaves bad entries out), then writes the export
under a temporary name beside --out and renames it at the end (assembly.prepare_out /
publish_out), so a failure leaves no half-written folder: a file that cannot be read or written
part-way (a full disk, an unreadable image) is an InputError naming it, and the temporary folder
goes. Exports carry a marker file: only a folder with one is ever replaced, and only with
--force. The conversions themselves are datasets/yolo.py's.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import nullcontext
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.text import Text

from synthgate.commands import console, errors, progress_bars, user_errors
from synthgate.errors import InputError

EXPORT_MARKER = ".synthgate-export.json"
PROGRESS_FROM = 200  # images
# Folder kinds SOURCE may be: the file that marks the kind, its COCO file, what wrote it.
FOLDER_KINDS = [
    ("balance.json", "merged.coco.json", "synthgate balance"),
    ("manifest.json", "accepted.coco.json", "synthgate run"),
]


class Format(StrEnum):
    yolo = "yolo"
    voc = "voc"


def export(
    source: Path = typer.Argument(
        ...,
        metavar="SOURCE",
        help=(
            "A run folder (synthgate run: exports accepted.coco.json), a balance output "
            "(synthgate balance: merged.coco.json) or a COCO .json file."
        ),
    ),
    format_: Format = typer.Option(..., "--format", "-f", help="yolo or voc.", show_choices=True),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write (new or empty)."),
    images: Path | None = typer.Option(
        None,
        "--images",
        help=(
            "Folder the COCO file_names are relative to (default: the COCO file's folder). "
            "A balance output needs the --images it was made with."
        ),
    ),
    copy_images: bool = typer.Option(
        True,
        "--copy-images/--no-copy-images",
        help="Put the images beside the labels (hard links where possible, else copies).",
    ),
    force: bool = typer.Option(False, "--force", help="Replace an earlier export at --out."),
    skip_invalid: bool = typer.Option(
        False,
        "--skip-invalid",
        help="Leave bad COCO entries out (they are listed) instead of stopping.",
    ),
) -> None:
    """Write a dataset as a ready-to-train YOLO or Pascal VOC folder.

    [bold]yolo[/]: images/<name>, labels/<stem>.txt (class cx cy w h, fractions of the image size), classes.txt (one name a line, line number = class index) and data.yaml (Ultralytics: path, train, val, names).

    [bold]voc[/]: JPEGImages/<name> (the original files; PNG stays PNG), Annotations/<stem>.xml (1-based pixel corners) and ImageSets/Main/all.txt (every stem).

    With --no-copy-images only labels, classes.txt (yolo) and ImageSets (voc) are written. Boxes are clipped to their image; crowd regions (neither format can express them) and boxes wholly outside their image are left out and counted. Images whose names share a stem get a short hash prefix, so no label overwrites another.
    """
    from synthgate.formats.yolo import export_dataset, export_names
    from synthgate.storage.folders import prepare_out, publish_out

    with user_errors():
        coco_path, root = find_coco(source, images, need_images=copy_images)
        coco, skipped = read_checked(
            coco_path, images_dir=root if copy_images else None, skip_invalid=skip_invalid
        )
        export_names(coco["images"])  # refuses two images that would share a name, up front
        files = None
        if copy_images:  # check_coco has seen every one of them on disk
            files = {image["id"]: root / image["file_name"] for image in coco["images"]}
        target = guard_out(out, source=coco_path, force=force)
        temporary = prepare_out(target, marker=EXPORT_MARKER, what="export")
        try:
            # A bar only for many images: a few are placed in a blink.
            placing = len(files) if files is not None else 0
            bars = progress_bars() if placing >= PROGRESS_FROM else None
            with bars if bars is not None else nullcontext():
                advance = None
                if bars is not None:
                    advance = partial(bars.advance, bars.add_task("images", total=placing))
                counts = export_dataset(
                    coco,
                    temporary,
                    fmt=format_.value,
                    image_files=files,
                    published_as=target,
                    progress=advance,
                )
            marker = {"format": format_.value, "source": str(coco_path.resolve())}
            (temporary / EXPORT_MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
            publish_out(temporary, target)
        except BaseException as error:
            shutil.rmtree(temporary, ignore_errors=True)
            if isinstance(error, OSError):
                raise InputError(
                    f"{_failed_path(error, temporary, target)}: {error.strerror or error} "
                    f"while exporting to --out {out}; nothing was written (check that the images "
                    "can be read and that --out's disk has room, then run again)"
                ) from None
            raise
    for problem in skipped:
        errors.print(Text("left out: ", style="yellow") + Text(problem), soft_wrap=True)
    if counts.crowd_left_out:
        console.print(
            f"left out {counts.crowd_left_out} crowd annotation(s): "
            f"{format_.value.upper()} cannot express crowd regions",
            soft_wrap=True,
        )
    if counts.outside_left_out:
        console.print(
            f"left out {counts.outside_left_out} box(es) outside their image "
            "(nothing left after clipping)",
            soft_wrap=True,
        )
    placed = ""
    if files is not None:
        placed = f", {counts.linked} images hard-linked" if counts.linked else ""
        placed += f", {counts.copied} images copied" if counts.copied else ""
    console.print(
        f"exported {counts.images} images, {counts.boxes} labels, {counts.classes} classes "
        f"as {format_.value.upper()} to [bold]{escape(str(out))}[/]{placed}",
        soft_wrap=True,
    )


def find_coco(source: Path, images: Path | None, *, need_images: bool) -> tuple[Path, Path]:
    """The COCO file SOURCE stands for and the folder its file_names are relative to."""
    expected = ", ".join(f"{coco} ({tool})" for _, coco, tool in FOLDER_KINDS)
    if not source.exists():
        raise InputError(
            f"{source}: not found; pass a run folder, a balance output or a COCO .json file"
        )
    if images is not None and not images.is_dir():
        raise InputError(f"--images {images}: folder not found; pass the folder of the images")
    if source.is_file():
        return source, images if images is not None else source.parent
    for mark, coco, tool in FOLDER_KINDS:
        if (source / mark).is_file():
            if not (source / coco).is_file():
                raise InputError(
                    f"{source}: a folder written by {tool} but without {coco} "
                    "(a text-only run has no images to export); pass a COCO .json file instead"
                )
            if mark == "balance.json" and images is None and need_images:
                raise InputError(
                    f"{source / coco}: names real images relative to the folder given to "
                    "`synthgate balance --images`; pass that folder again with --images DIR "
                    "(or --no-copy-images for labels only)"
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
    from synthgate.formats.coco import read_coco
    from synthgate.formats.coco_checks import check_coco

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
    would list every image and suggest --skip-invalid, which would export nothing)."""
    names = [
        image["file_name"]
        for image in images
        if isinstance(image, dict) and isinstance(image.get("file_name"), str)
    ]
    if names and not any((root / name).is_file() for name in names):
        raise InputError(
            f"{root / names[0]}: image file not found (none of the {len(names)} images is "
            f"under {root}); pass the folder the file_names are relative to with --images DIR, "
            "or --no-copy-images to write the labels only"
        )


def guard_out(out: Path, *, source: Path, force: bool) -> Path:
    """--out as a path that has a name; refuse to replace an export without --force, or one
    that holds SOURCE (prepare_out refuses folders that are not exports)."""
    target = out.resolve() if out.name in ("", "..") else out
    if target.is_dir() and any(target.iterdir()) and (target / EXPORT_MARKER).is_file():
        if not force:
            raise InputError(
                f"--out {out}: holds an earlier export; pass --force to replace it, "
                "or choose a new folder"
            )
        if source.resolve().is_relative_to(target.resolve()):
            raise InputError(
                f"--out {out}: holds {source}, which replacing it would delete; choose a new folder"
            )
    return target


def _failed_path(error: OSError, temporary: Path, target: Path) -> Path:
    """The file an OSError is about, named as it would be in --out (not the temporary folder)."""
    if not isinstance(error.filename, str | bytes | os.PathLike):
        return target
    path = Path(os.fsdecode(error.filename))
    return target / path.relative_to(temporary) if path.is_relative_to(temporary) else path
