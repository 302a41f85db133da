"""A PNG's EXIF orientation as `image_header` and `orientation` read it: the same as Pillow's
`getexif` (what Ultralytics and datumaro see), wherever the EXIF is in the file, without
decoding the pixels (Pillow's PNG `getexif` decodes them to reach the chunks after them)."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from synthgate.formats.image_files import EXIF_ORIENTATION, image_header, open_rgb, orientation

SIZE = (40, 24)  # stored width, height


def chunk(cid: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + cid + data + struct.pack(">I", zlib.crc32(cid + data))


def chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of each chunk of `png`."""
    found, at = [], 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        found.append((png[at + 4 : at + 8], png[at + 8 : at + 8 + length]))
        at += 12 + length
    return found


def exif_data(turn: int) -> bytes:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = turn
    return exif.tobytes()[6:]  # an eXIf chunk holds the TIFF block, not the "Exif\0\0" marker


def png_file(
    *, before: Sequence[bytes] = (), after: Sequence[bytes] = (), idat_size: int = 0
) -> bytes:
    """A noisy RGB PNG (so its pixel data is several IDAT chunks where `idat_size` splits it),
    with the chunks `before` its pixel data and `after` it (before IEND)."""
    pixels = np.random.default_rng(0).integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
    written = io.BytesIO()
    Image.fromarray(pixels).save(written, "PNG")
    parts = chunks(written.getvalue())
    head = [chunk(cid, data) for cid, data in parts if cid not in (b"IDAT", b"IEND")]
    stream = b"".join(data for cid, data in parts if cid == b"IDAT")
    step = idat_size or len(stream)
    idat = [chunk(b"IDAT", stream[at : at + step]) for at in range(0, len(stream), step)]
    return b"".join([b"\x89PNG\r\n\x1a\n", *head, *before, *idat, *after, chunk(b"IEND", b"")])


def pillow_orientation(path: Path) -> int | str:
    """What Pillow's getexif gives (decoding the pixels where it does), or the error class."""
    try:
        with Image.open(path) as image:
            found = image.getexif().get(EXIF_ORIENTATION, 1)
    except (OSError, ValueError, SyntaxError, struct.error) as error:
        return type(error).__name__
    return found if found in range(1, 9) else 1


def raw_profile(turn: int) -> bytes:
    """ImageMagick's way: the EXIF block as hex in a zTXt chunk "Raw profile type exif"."""
    block = b"Exif\x00\x00" + exif_data(turn)
    text = f"\nexif\n{len(block):8d}\n{block.hex()}\n".encode()
    return chunk(b"zTXt", b"Raw profile type exif\x00\x00" + zlib.compress(text))


def xmp(turn: int) -> bytes:
    packet = f'<x:xmpmeta><rdf:Description tiff:Orientation="{turn}"/></x:xmpmeta>'.encode()
    return chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + packet)


def exif_chunk(turn: int) -> bytes:
    return chunk(b"eXIf", exif_data(turn))


def between_idat_chunks() -> bytes:
    pixels = png_file(idat_size=500)[:-12]  # IEND cut off
    return pixels + exif_chunk(8) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


CASES: dict[str, Callable[[], bytes]] = {
    "no EXIF": lambda: png_file(),
    "no EXIF, pixels in several IDAT chunks": lambda: png_file(idat_size=500),
    **{f"eXIf {t} before IDAT": partial(png_file, before=[exif_chunk(t)]) for t in range(1, 9)},
    **{f"eXIf {t} after IDAT": partial(png_file, after=[exif_chunk(t)]) for t in range(1, 9)},
    "eXIf after several IDAT chunks and others": lambda: png_file(
        after=[chunk(b"tEXt", b"Comment\x00hi"), chunk(b"prVt", b"x" * 9), exif_chunk(6)],
        idat_size=300,
    ),
    "eXIf before and after IDAT": lambda: png_file(before=[exif_chunk(3)], after=[exif_chunk(6)]),
    "eXIf between IDAT chunks": between_idat_chunks,
    "Raw profile type exif after IDAT": lambda: png_file(after=[raw_profile(5)]),
    "XMP orientation after IDAT": lambda: png_file(after=[xmp(7)]),
    "orientation 9 (out of range)": lambda: png_file(after=[exif_chunk(9)]),
    "eXIf of garbage": lambda: png_file(after=[chunk(b"eXIf", b"MM\x00*garbage")]),
    "eXIf cut short in its TIFF header": lambda: png_file(after=[chunk(b"eXIf", b"MM\x00*\x00")]),
    "cut short in the pixel data": lambda: png_file(after=[exif_chunk(6)])[:300],
    "cut short in the eXIf chunk after IDAT": lambda: png_file(after=[exif_chunk(6)])[:-20],
    "cut short after IDAT": lambda: png_file()[:-12],
    "a broken chunk header after IDAT": lambda: png_file()[:-12] + b"\x00\x00\x00\x04?!?!",
    "an iTXt chunk not UTF-8 before eXIf, after IDAT": lambda: png_file(
        after=[chunk(b"iTXt", b"k\x00\x00\x00\x00\x00\xff\xfe"), exif_chunk(6)]
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_a_png_orientation_is_pillows_and_its_pixels_are_not_decoded(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "image.png"
    path.write_bytes(CASES[name]())
    expected = pillow_orientation(path)

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    header = image_header(path)
    assert header is not None
    assert header[1:] == (SIZE, "RGB")
    # a file Pillow's getexif refuses (cut short) has no orientation: 1, as before
    assert header[0] == (expected if isinstance(expected, int) else 1), expected
    with Image.open(path) as image:
        assert orientation(image) == header[0]


def test_a_png_read_for_its_orientation_still_decodes_whole(tmp_path: Path) -> None:
    path = tmp_path / "image.png"
    path.write_bytes(png_file(after=[chunk(b"eXIf", exif_data(6))], idat_size=500))
    with Image.open(path) as image:
        assert orientation(image) == 6
        image.load()
        assert image.getexif()[EXIF_ORIENTATION] == 6
        decoded = np.asarray(image)
    with Image.open(path) as image:
        assert np.array_equal(np.asarray(image), decoded)


def test_the_pixels_of_other_formats_are_read_as_before(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    Image.new("RGB", SIZE).save(tmp_path / "photo.jpg", exif=exif)
    Image.new("RGB", SIZE).save(tmp_path / "photo.webp", exif=exif)
    assert image_header(tmp_path / "photo.jpg") == (6, SIZE, "RGB")
    assert image_header(tmp_path / "photo.webp") == (6, SIZE, "RGB")


def test_an_exif_block_cut_short_is_no_orientation_and_no_traceback(tmp_path: Path) -> None:
    """Pillow's EXIF parser raises struct.error on a TIFF header of under 8 bytes (its JPEG
    reader swallows it; its PNG reader does not): export and validate stopped with a traceback
    on such a PNG."""
    path = tmp_path / "image.png"
    path.write_bytes(png_file(before=[chunk(b"eXIf", b"MM\x00*\x00")]))  # IFD offset cut off
    with Image.open(path) as image, pytest.raises(struct.error):
        image.getexif()  # what Pillow does with it
    assert image_header(path) == (1, SIZE, "RGB")
    decoded, problem = open_rgb(path, size=SIZE)
    assert problem is None and decoded.size == SIZE


@pytest.mark.parametrize("turn", [None, 6])
def test_an_animated_png_orientation_is_pillows(turn: int | None, tmp_path: Path) -> None:
    path = tmp_path / "animated.png"
    frames = [Image.new("RGB", SIZE, colour) for colour in ("red", "blue")]
    exif = Image.Exif()
    if turn is not None:
        exif[EXIF_ORIENTATION] = turn
    frames[0].save(path, save_all=True, append_images=frames[1:], exif=exif)
    assert pillow_orientation(path) == (turn or 1)
    assert image_header(path) == (turn or 1, SIZE, "RGB")
