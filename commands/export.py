"""`synthgate export`: a run, a balance output or a COCO file as a YOLO or Pascal VOC folder
(workflows/export.py)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import TaskID
from rich.text import Text

import synthgate
from synthgate.commands import console, errors, progress_bars, user_errors

PROGRESS_FROM = 200  # images


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
    with user_errors(), progress_bars() as bars:
        shown: list[TaskID] = []

        def placed(done: int, total: int) -> None:
            if total < PROGRESS_FROM:  # a bar only for many images: a few are placed in a blink
                return
            if not shown:
                shown.append(bars.add_task("images", total=total))
            bars.update(shown[0], completed=done)

        result = synthgate.export(
            source,
            format=format_.value,
            out=out,
            images=images,
            copy_images=copy_images,
            force=force,
            skip_invalid=skip_invalid,
            progress=placed,
        )
    counts, skipped, files = result.counts, result.skipped, copy_images
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
    how = ""
    if files:
        how = f", {counts.linked} images hard-linked" if counts.linked else ""
        how += f", {counts.copied} images copied" if counts.copied else ""
    console.print(
        f"exported {counts.images} images, {counts.boxes} labels, {counts.classes} classes "
        f"as {format_.value.upper()} to [bold]{escape(str(out))}[/]{how}",
        soft_wrap=True,
    )
