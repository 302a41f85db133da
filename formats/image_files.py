"""Image files read as their labels see them: upright, and as 8-bit RGB.

Photos are stored turned: a camera writes the pixels as its sensor saw them and an EXIF
orientation (2-8) saying how viewers turn them; 5-8 swap width and height. Annotation tools
(Label Studio, CVAT) and EXIF-aware loaders (OpenCV, Detectron2, Ultralytics) show such a photo
turned, so a COCO entry usually gives the turned size and its labels are drawn on the turned
image; an entry that gives the stored size (and not the turned one) was drawn on the stored
pixels. `upright(image, size)` gives the image in the frame its labels' `size` says;
`label_sizes(image)` the sizes an entry may give for it; `stored_frame_turn(path, size)` the
orientation of a file whose labels are on its stored pixels (YOLO and VOC exports turn them),
from `image_header(path)` (orientation, stored size and mode, read once; `header_or_problem`
says why where it cannot be read);
`open_rgb(path, size=)` decodes a file so, as RGB (16-bit grey and float files by their values,
not clipped). validate, balance's checks and copy_paste read images through these, so a dataset
one accepts the others accept too.

`pixel_limit()` is the largest image they decode: Pillow's guard against decompression bombs
(178,956,970 pixels) unless SYNTHGATE_MAX_IMAGE_PIXELS says otherwise, for aerial and
satellite images that are larger and trusted; `too_large(error)` says how to raise it.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from synthgate.errors import InputError

EXIF_ORIENTATION = 0x0112  # 1 as stored; 2-8 how viewers turn the stored pixels
PIXEL_LIMIT_ENV = "SYNTHGATE_MAX_IMAGE_PIXELS"
# What an image file's header says: EXIF orientation, stored (width, height), Pillow mode.
ImageHeader = tuple[int, tuple[int, int], str]


def pixel_limit() -> int:
    """The most pixels an image may have to be decoded: SYNTHGATE_MAX_IMAGE_PIXELS, else the
    number Pillow refuses above. A limit set here is Pillow's from then on, in this process:
    it refuses above it and no longer warns below it."""
    import warnings

    from PIL import Image

    given = os.environ.get(PIXEL_LIMIT_ENV, "").strip()
    if not given:
        return int(2 * Image.MAX_IMAGE_PIXELS) if Image.MAX_IMAGE_PIXELS else 0
    if not (given.isascii() and given.isdigit()) or int(given) < 1:
        raise InputError(
            f"{PIXEL_LIMIT_ENV}={given!r}: not a number of pixels; give a whole number, "
            f"e.g. {PIXEL_LIMIT_ENV}=400000000 for images up to 20000x20000"
        )
    limit = int(given)
    # Pillow refuses above twice its MAX_IMAGE_PIXELS and warns above it
    half = (limit + 1) // 2  # (an odd limit: one pixel more)
    if half != Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = half
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    return limit


def too_large(error: Exception) -> str:
    """Pillow's refusal of a large image, and how to let synthgate decode it."""
    return (
        f"{str(error).rstrip('.')}; if the file is trusted (an aerial or satellite image), "
        f"raise the limit of {pixel_limit():,} pixels to its size or more: "
        f"{PIXEL_LIMIT_ENV}=<pixels>"
    )


def orientation(image: Any) -> int:
    """The image's EXIF orientation (1 where it has none, or a broken EXIF block: the pixels
    are fine). A PNG's pixels are not decoded for it (`exif`)."""
    try:
        found = exif(image).get(EXIF_ORIENTATION, 1)
    except (OSError, ValueError, SyntaxError, struct.error):  # struct: an EXIF block cut short
        return 1
    return found if found in range(1, 9) else 1


def exif(image: Any) -> Any:
    """`image.getexif()`, the same tags, without decoding a PNG's pixels to reach them.

    Pillow's PNG reader stops its header at the pixel data (IDAT), and an eXIf chunk, or a text
    chunk holding EXIF or XMP, may follow it: its `getexif` decodes every pixel (`load`) to read
    those. Here the chunks after the pixel data are read as `load` reads them, by Pillow's own
    chunk readers, the pixel data skipped (its length checked, as `load` would find it cut
    short). What differs: a PNG whose pixel data is there but broken (a damaged zlib stream, or
    a damaged chunk type among its IDAT chunks), which `load` refuses (no tags), keeps the tags
    after it; such a file is no image to train on. An animated PNG (APNG), and every other
    format, is read by `getexif` itself."""
    from PIL import Image, PngImagePlugin

    png = getattr(image, "png", None)
    if (
        not isinstance(image, PngImagePlugin.PngImageFile)
        or "exif" in image.info  # an eXIf chunk before the pixels: getexif reads only it
        or not image.tile  # decoded already
        or png is None
        or png.im_n_frames is not None  # APNG: frames interleave with the chunks
    ):
        return image.getexif()
    try:
        _read_chunks_after_pixels(png, image.tile[0][2])  # the tile's offset (a tuple in 10.x)
    except (AttributeError, TypeError):  # a Pillow whose PNG reader differs: its own getexif
        return image.getexif()
    return Image.Image.getexif(image)  # Pillow's, less the PNG reader's `load`


def _read_chunks_after_pixels(png: Any, pixels_at: int) -> None:
    """What `PngImageFile.load_end` reads into the image's info (its chunks after IDAT), with
    the chunk readers of the image's PngStream `png`, from the IDAT chunk whose data starts at
    `pixels_at`, seeking past IDAT data. OSError where a chunk is cut short, as `load` raises."""
    fp = png.fp
    end = fp.seek(0, os.SEEK_END)
    fp.seek(pixels_at - 8)  # that IDAT chunk's length and type
    while True:
        try:
            cid, pos, length = png.read()
        except (struct.error, SyntaxError):
            return
        if cid == b"IEND":
            return
        if cid != b"IDAT":
            try:
                png.call(cid, pos, length)
            except UnicodeDecodeError:
                return
            except (EOFError, AttributeError):  # image data, or a chunk Pillow does not read
                pass
            else:
                fp.read(4)  # CRC
                continue
        if pos + length > end:
            raise OSError(f"Truncated File Read: PNG chunk {cid!r} ends past the file's end")
        fp.seek(pos + length + 4)  # the data unread, and its CRC


def label_sizes(image: Any) -> set[tuple[int, int]]:
    """The (width, height) an entry may give for `image`: as viewers show it, and as stored."""
    width, height = image.size
    turned = (height, width) if orientation(image) >= 5 else (width, height)
    return {turned, (width, height)}


def stored_frame_turn(path: Path, size: tuple[int, int]) -> int:
    """The EXIF orientation (5-8) of the image file at `path` where labels of `size` (width,
    height) were drawn on its stored pixels, which EXIF-aware loaders (OpenCV, Ultralytics,
    datumaro) decode turned, width and height swapped; 1 where the labels are in the frame those
    loaders show (`upright`'s rule), or the file is no image Pillow can read."""
    return header_turn(image_header(path), size)


def header_turn(header: ImageHeader | None, size: tuple[int, int]) -> int:
    """`stored_frame_turn` from an `image_header` already read (None: 1)."""
    if header is None:
        return 1
    turn, stored, _ = header
    return turn if drawn_on_stored(turn, stored, size) else 1


def image_header(path: Path) -> ImageHeader | None:
    """(EXIF orientation, stored (width, height), Pillow mode) of the image file at `path`, read
    from its header (`pixel_limit` applies); None where it is no image Pillow can read, or one
    over the limit."""
    found = header_or_problem(path)
    return None if isinstance(found, str) else found


def header_or_problem(path: Path) -> ImageHeader | str:
    """`image_header`, or why it cannot be read: the file is not there, is no image Pillow
    reads, or is over the pixel limit (`too_large`: how to raise it)."""
    from PIL import Image

    pixel_limit()
    try:
        with Image.open(path) as image:  # the header only
            return orientation(image), (image.size[0], image.size[1]), image.mode
    except Image.DecompressionBombError as error:
        return too_large(error)
    except FileNotFoundError:
        return "not found"
    except (OSError, ValueError) as error:
        return f"not a readable image ({error})"


def drawn_on_stored(turn: int, stored: tuple[int, ...], size: tuple[int, int] | None) -> bool:
    """Whether labels of `size` were drawn on a photo's stored pixels: it is shown turned
    (orientation 5-8 swaps width and height), and `size` is the stored size, not the turned
    one (a square photo's sizes agree: it is taken as turned, as viewers show it)."""
    return turn >= 5 and size is not None and tuple(size) == stored != stored[::-1]


def upright(image: Any, size: tuple[int, int] | None) -> Any:
    """`image` turned as its EXIF orientation says (2-8), or as it is where the labels' `size`
    is its stored one and the turned one is not."""
    from PIL import ImageOps

    turn = orientation(image)
    if turn == 1 or drawn_on_stored(turn, tuple(image.size), size):
        return image
    return ImageOps.exif_transpose(image)


def open_rgb(path: Path, *, size: tuple[int, int] | None = None) -> tuple[Any, str | None]:
    """(the image file decoded to an RGB Pillow image, None), an RGB file as it is, not copied;
    or (None, why Pillow cannot read it). The file is closed.

    The image is as viewers, annotation tools and EXIF-aware loaders (OpenCV, Detectron2,
    Ultralytics) show it, its EXIF orientation applied, unless `size` (the labels' width,
    height) is that of the stored pixels and not of the turned image: such labels were drawn
    on the stored pixels. A 16-bit grey file keeps its high bytes, as OpenCV reads it and as
    Pillow reads a 16-bit colour PNG (Pillow's own conversion clips it: a photo reads white).
    """
    from PIL import Image

    pixel_limit()
    try:
        with Image.open(path) as image:  # closes the file, keeps the pixels
            image.load()
            return _as_rgb(upright(image, size)), None
    except Image.DecompressionBombError as error:
        return None, too_large(error)
    except (OSError, ValueError) as error:
        return None, str(error)


def _as_rgb(image: Any) -> Any:
    from PIL import Image

    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16"):
        return Image.fromarray((np.asarray(image) >> 8).astype(np.uint8)).convert("RGB")
    if image.mode == "F":  # 32-bit float (a TIFF): values in 0..1 are the whole range
        values = np.nan_to_num(np.asarray(image, dtype=np.float32))
        if values.size and values.min() >= 0.0 and values.max() <= 1.0:
            values = values * 255.0  # Pillow's own conversion clips them: a photo read black
        return Image.fromarray(np.clip(values, 0, 255).round().astype(np.uint8)).convert("RGB")
    return image.convert("RGB")
