"""Photos stored turned: a camera writes the pixels as its sensor saw them and an EXIF
orientation (2-8) saying how viewers turn them; 5-8 swap width and height.

Annotation tools (Label Studio, CVAT) and EXIF-aware loaders (OpenCV, Detectron2, Ultralytics)
show such a photo turned, so a COCO entry usually gives the turned size and its labels are drawn
on the turned image; an entry that gives the stored size (and not the turned one) was drawn on
the stored pixels. `upright(image, size)` gives the image in the frame its labels' `size` says;
`label_sizes(image)` the sizes an entry may give for it. validate, balance's checks and
copy_paste read images through these, so a dataset one accepts the others accept too.
"""

from __future__ import annotations

from typing import Any

EXIF_ORIENTATION = 0x0112  # 1 as stored; 2-8 how viewers turn the stored pixels


def orientation(image: Any) -> int:
    """The image's EXIF orientation (1 where it has none, or a broken EXIF block: the pixels
    are fine)."""
    try:
        found = image.getexif().get(EXIF_ORIENTATION, 1)
    except (OSError, ValueError, SyntaxError):
        return 1
    return found if found in range(1, 9) else 1


def label_sizes(image: Any) -> set[tuple[int, int]]:
    """The (width, height) an entry may give for `image`: as viewers show it, and as stored."""
    width, height = image.size
    turned = (height, width) if orientation(image) >= 5 else (width, height)
    return {turned, (width, height)}


def upright(image: Any, size: tuple[int, int] | None) -> Any:
    """`image` turned as its EXIF orientation says (2-8), or as it is where the labels' `size`
    is its stored one and the turned one is not."""
    from PIL import ImageOps

    turn = orientation(image)
    stored, turned = tuple(image.size), tuple(image.size[::-1])
    if turn == 1 or (turn >= 5 and size is not None and size == stored != turned):
        return image  # (a square photo's sizes agree: it is turned, as viewers show it)
    return ImageOps.exif_transpose(image)
