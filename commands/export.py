"""`synthgate export`: a run, a balance or merge output or a COCO file as a COCO, YOLO or Pascal
VOC folder, split into train and val (workflows/export.py)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.text import Text

import synthgate
from synthgate.commands import (
    PROGRESS_FROM,
    WRITE_BAR_FROM,
    console,
    count_bar,
    counted,
    errors,
    mib_bar,
    print_left_out,
    print_not_accepted,
    print_undecided,
    progress_bars,
    user_errors,
)

if TYPE_CHECKING:
    from synthgate.workflows.export import ExportCounts


class Format(StrEnum):
    coco = "coco"
    yolo = "yolo"
    voc = "voc"


class Layout(StrEnum):
    coco = "coco"
    fiftyone = "fiftyone"


def export(
    source: Path = typer.Argument(
        ...,
        metavar="SOURCE",
        help=(
            "A run folder (synthgate run: its accepted samples, as its review left them: "
            "people's verdicts over the rubric's), a balance or merge output "
            "(merged.coco.json) or a COCO .json file."
        ),
    ),
    format_: Format = typer.Option(
        ..., "--format", "-f", help="coco, yolo or voc.", show_choices=True
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="Folder to write (new or empty; an earlier export only with --force).",
    ),
    images: Path | None = typer.Option(
        None,
        "--images",
        help=(
            "Folder the COCO file_names are relative to (default: the COCO file's folder, or "
            "SOURCE itself for a run, balance or merge folder)."
        ),
    ),
    split: float = typer.Option(
        0.9,
        "--split",
        help=(
            "Share of the images in train, more than 0 and at most 1; the rest go to val (1: "
            "all in train)."
        ),
    ),
    seed: int = typer.Option(0, "--seed", help="Draws the split: the same seed, the same split."),
    layout: Layout | None = typer.Option(
        None,
        "--layout",
        help="Folder layout, with --format coco only: coco (the default: "
        "annotations/instances_<subset>.json and images/<subset>/, as datumaro, CVAT, "
        "pycocotools and torchvision read it) or fiftyone (<subset>/labels.json and "
        "<subset>/data/, as FiftyOne reads it).",
        show_choices=True,
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
    """Write a dataset as a ready-to-train COCO, YOLO or Pascal VOC folder, split into train and val.

    The images are split by --split (default 0.9 in train) with --seed; the split, its seed and the source are recorded in .synthgate-export.json. Every image is hard-linked (else copied) beside the labels, so the folder loads from its path alone, wherever it is moved.

    [bold]coco[/]: annotations/instances_<subset>.json and images/<subset>/<name> (--layout fiftyone: <subset>/labels.json and <subset>/data/<name>). Every annotation is kept as it is (masks, crowd regions, provenance); file_name is the image's name in its subset folder.

    [bold]yolo[/]: images/<subset>/<name>, labels/<subset>/<stem>.txt (class cx cy w h, fractions of the image size), classes.txt (one name a line, line number = class index) and data.yaml (Ultralytics: train, val, names; no path:, so it is read relative to the file).

    [bold]voc[/]: JPEGImages/<name> (the original files; PNG stays PNG), Annotations/<stem>.xml (1-based pixel corners), ImageSets/Main/<subset>.txt and labelmap.txt (every class, for datumaro and CVAT).

    With --no-copy-images only the labels are written. YOLO and VOC: boxes are clipped to their image; crowd regions (neither format can express them) and boxes wholly outside their image are left out and counted. Images whose names share a stem get a short hash prefix, so no label overwrites another.

    Example: synthgate export runs/quickstart --format yolo --out quickstart-yolo/

    Example: synthgate export annotations.json --images images/ --format voc --out voc/ --split 0.8 --seed 1
    """
    with user_errors(), progress_bars() as bars:
        result = synthgate.export(
            source,
            format=format_.value,
            out=out,
            images=images,
            split=split,
            seed=seed,
            layout=layout.value if layout is not None else None,
            copy_images=copy_images,
            force=force,
            skip_invalid=skip_invalid,
            progress=count_bar(bars, "images", least=PROGRESS_FROM),
            check_progress=count_bar(bars, "checking the dataset", least=PROGRESS_FROM),
            read_progress=mib_bar(bars, "reading the COCO file"),
            write_progress=count_bar(bars, "writing the COCO files", least=WRITE_BAR_FROM),
        )
    counts, skipped, files = result.counts, result.skipped, copy_images
    print_left_out(skipped)
    _warn_of_unread_orientations(counts, format_.value.upper())
    if counts.crowd_left_out:
        console.print(
            f"left out {counts.crowd_left_out} crowd annotation(s): "
            f"{format_.value.upper()} cannot express crowd regions; --format coco keeps them",
            soft_wrap=True,
        )
    if counts.outside_left_out:
        console.print(
            f"left out {counts.outside_left_out} box(es) outside their image "
            "(nothing left after clipping)",
            soft_wrap=True,
        )
    how = ""
    if files:
        how = f", {counted(counts.linked, 'image')} hard-linked" if counts.linked else ""
        how += f", {counted(counts.copied, 'image')} copied" if counts.copied else ""
    parts = ", ".join(f"{n} {subset}" for subset, n in counts.subsets.items() if n)
    console.print(
        f"exported {counted(counts.images, 'image')} ({parts}), {counted(counts.boxes, 'label')}, "
        f"{counted(counts.classes, 'class', 'classes')} as {format_.value.upper()} to "
        f"[bold]{escape(str(out))}[/]{how}",
        soft_wrap=True,
    )
    print_not_accepted(result.left_out, done="exported")
    print_undecided(result.undecided, done="exported", again="export again with --force")


def _warn_of_unread_orientations(counts: ExportCounts, fmt: str) -> None:
    """On stderr: each image whose EXIF orientation could not be read (with --no-copy-images no
    file is checked first), so its labels were exported as if it were upright, the first few
    named (`counts.upright_unread`) and the rest counted; what that means and how to have it
    read."""
    if not counts.upright_unread_total:
        return
    for problem in counts.upright_unread:
        errors.print(
            Text.assemble(("warning", "yellow"), f": {problem}"),
            soft_wrap=True,
        )
    total, named = counts.upright_unread_total, len(counts.upright_unread)
    more = f" (and {total - named} more)" if total > named else ""
    errors.print(
        f"{total} image(s){more} exported as upright: one that its EXIF orientation "
        f"turns and whose entry gives its stored width and height gets {fmt} boxes in the "
        "wrong frame (trainers decode it turned); let synthgate read those files "
        "(SYNTHGATE_MAX_IMAGE_PIXELS for one over the limit, --images for ones not found) and "
        "export again",
        markup=False,
        soft_wrap=True,
    )
