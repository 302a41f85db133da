"""`validate_coco(..., images=...)` on image files as cameras and tools write them: JPEGs with an
EXIF orientation, 16-bit grey PNGs. Each case names the file, the size its entry gives, and the
image measurements the judge must make of it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from synthgate.errors import InputError
from synthgate.validators.validate import validate_coco

HEIGHT, WIDTH = 48, 64
SHOWN = (WIDTH, HEIGHT)  # the image as viewers show it, and as its labels were drawn
TURNED = (HEIGHT, WIDTH)  # its stored pixels when a camera turned it (EXIF orientation 5-8)


def photo() -> np.ndarray:
    return np.random.default_rng(0).integers(30, 220, (HEIGHT, WIDTH, 3), dtype=np.uint8)


def jpeg_with_orientation(orientation: int, turn: Image.Transpose | None) -> Callable[[Path], str]:
    def write(folder: Path) -> str:
        exif = Image.Exif()
        exif[0x0112] = orientation
        image = Image.fromarray(photo())
        image = image if turn is None else image.transpose(turn)
        image.save(folder / "photo.jpg", exif=exif, quality=95)
        return "photo.jpg"

    return write


def grey_16bit(low: int, high: int) -> Callable[[Path], str]:
    def write(folder: Path) -> str:
        rng = np.random.default_rng(0)
        pixels = rng.integers(low, high, (HEIGHT, WIDTH), dtype=np.uint16)
        Image.fromarray(pixels).save(folder / "photo.png")  # mode I;16
        return "photo.png"

    return write


def float_tiff(low: float, high: float) -> Callable[[Path], str]:
    def write(folder: Path) -> str:
        pixels = np.random.default_rng(0).uniform(low, high, (HEIGHT, WIDTH)).astype(np.float32)
        Image.fromarray(pixels).save(folder / "photo.tif")  # mode F
        return "photo.tif"

    return write


# image_blank is measured once the size check has passed; image_unreadable only when it fails
SIZE_AGREES = {"image_unreadable": None, "image_blank": 0}
IMAGE_FILE_CASES = [
    # (name, file, entry's width x height, expected measurements)
    (
        "EXIF 6, pixels stored turned, labels as shown",
        jpeg_with_orientation(6, Image.Transpose.ROTATE_90),
        SHOWN,
        SIZE_AGREES,
    ),
    (
        "EXIF 8, pixels stored turned, labels as shown",
        jpeg_with_orientation(8, Image.Transpose.ROTATE_270),
        SHOWN,
        SIZE_AGREES,
    ),
    (
        "EXIF 6, labels drawn on the stored pixels",
        jpeg_with_orientation(6, None),
        SHOWN,
        SIZE_AGREES,
    ),
    (
        "EXIF 6, labels of neither size",
        jpeg_with_orientation(6, Image.Transpose.ROTATE_90),
        (WIDTH, WIDTH),
        {"image_unreadable": 1, "image_blank": None},
    ),
    (
        "EXIF 3 (upside down)",
        jpeg_with_orientation(3, Image.Transpose.ROTATE_180),
        SHOWN,
        SIZE_AGREES,
    ),
    ("16-bit grey photo", grey_16bit(30 * 257, 220 * 257), SHOWN, {"clipped_percent": 0}),
    ("16-bit grey, all white", grey_16bit(65535, 65536), SHOWN, {"image_blank": 1}),
    # a float TIFF of values in 0..1 was read black: Pillow's conversion clips them
    ("float TIFF, 0..1", float_tiff(0.1, 0.9), SHOWN, {"image_blank": 0, "clipped_percent": 0}),
    ("float TIFF, 0..255", float_tiff(30.0, 220.0), SHOWN, {"clipped_percent": 0}),
]


@pytest.mark.parametrize(
    ("write", "size", "expected"),
    [case[1:] for case in IMAGE_FILE_CASES],
    ids=[case[0] for case in IMAGE_FILE_CASES],
)
def test_image_files_are_judged_as_their_labels_see_them(
    tmp_path: Path,
    write: Callable[[Path], str],
    size: tuple[int, int],
    expected: dict[str, float | None],
) -> None:
    name = write(tmp_path)
    coco = {
        "images": [{"id": 1, "file_name": name, "width": size[0], "height": size[1]}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 4, 20, 20]}],
        "categories": [{"id": 1, "name": "thing"}],
    }
    report = validate_coco(coco, images=tmp_path).reports["coco-1"]
    found = {name: report.measurements.get(name) for name in expected}
    assert found == expected, [f.message for f in report.findings]


@pytest.mark.parametrize(
    ("size", "accepted"), [(SHOWN, True), (TURNED, True), ((WIDTH + 1, HEIGHT), False)]
)
def test_balance_and_copy_paste_read_a_turned_photo_as_validate_does(
    tmp_path: Path, size: tuple[int, int], accepted: bool
) -> None:
    """validate took an entry of a photo stored turned (EXIF 6) in the size viewers show; the
    checks balance and merge run first refused it ('is 48x64, the entry says 64x48'), and
    copy_paste read its stored pixels under labels drawn on the turned image."""
    from synthgate.config import CopyPasteImageConfig
    from synthgate.formats.coco_checks import image_file_problem
    from synthgate.generators.copy_paste import CopyPasteGenerator

    name = jpeg_with_orientation(6, Image.Transpose.ROTATE_90)(tmp_path)
    problem = image_file_problem(tmp_path, name, size)
    assert (problem is None) is accepted, problem
    if not accepted:
        return
    entry = {"id": 1, "file_name": name, "width": size[0], "height": size[1]}
    dataset = {
        "images": [entry],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [2, 2, 20, 20],
                "area": 400,
                "iscrowd": 0,
                "segmentation": [[2, 2, 22, 2, 22, 22, 2, 22]],
            }
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }
    config = CopyPasteImageConfig(count=1, coco=tmp_path / "none.json", images=tmp_path)
    generator = CopyPasteGenerator(config, categories=["thing"], dataset=dataset)
    pixels = generator._pixels(1)
    assert pixels.shape[:2] == (size[1], size[0])
    if size == SHOWN:  # upright again: the photo as it was before the camera turned it
        grey = pixels.astype(float).mean(axis=2).ravel()
        assert np.corrcoef(grey, photo().astype(float).mean(axis=2).ravel())[0, 1] > 0.5


def test_a_square_photo_stored_turned_is_read_as_viewers_show_it(tmp_path: Path) -> None:
    """Its stored and turned sizes agree, so its entry's size cannot say the labels were drawn
    on the stored pixels: it is turned, as viewers show it (it was read as stored)."""
    from synthgate.formats.image_files import upright

    exif = Image.Exif()
    exif[0x0112] = 6  # viewers turn the stored pixels 90 degrees clockwise
    stored = np.zeros((4, 4, 3), dtype=np.uint8)
    stored[0, 0] = (255, 0, 0)  # top left as stored: top right as shown
    Image.fromarray(stored).save(tmp_path / "square.png", exif=exif)
    with Image.open(tmp_path / "square.png") as opened:
        for size in (None, (4, 4)):
            assert upright(opened, size).convert("RGB").getpixel((3, 0)) == (255, 0, 0), size


@pytest.mark.parametrize(
    ("on_disk", "named", "hint"),
    [
        ("sub/photo.jpg", "sub\\photo.jpg", "backslashes (a Windows path)"),
        ("Ren\u00e9.jpg", "Rene\u0301.jpg", "another Unicode form (NFC)"),
    ],
)
def test_a_file_named_in_another_spelling_is_named_with_the_fix(
    tmp_path: Path, on_disk: str, named: str, hint: str
) -> None:
    """Only 'not found' was said, for a file that is there under a Windows path or in another
    Unicode form: validate and the checks balance and merge run say which, and the fix."""
    from synthgate.formats.coco_checks import image_file_problem
    from synthgate.validators.validate import validate_coco

    (tmp_path / on_disk).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo()).save(tmp_path / on_disk)
    problem = image_file_problem(tmp_path, named, SHOWN)
    assert problem is not None and hint in problem, problem
    coco = {
        "images": [{"id": 1, "file_name": named, "width": WIDTH, "height": HEIGHT}],
        "annotations": [],
        "categories": [{"id": 1, "name": "thing"}],
    }
    # its only image not found: the folder is refused, with the fix (as balance's check says)
    with pytest.raises(InputError, match="none of the 1 images") as refused:
        validate_coco(coco, images=tmp_path)
    assert hint in str(refused.value), refused.value
    # beside an image that is there: that image's finding says it
    Image.fromarray(photo()).save(tmp_path / "there.png")
    there = {"id": 2, "file_name": "there.png", "width": WIDTH, "height": HEIGHT}
    report = validate_coco({**coco, "images": [*coco["images"], there]}, images=tmp_path)
    [finding] = [f for f in report.rows[0]["findings"] if f["measure"] == "image_unreadable"]
    assert hint in finding["message"], finding


@pytest.fixture
def pillow_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow's own limit as it is now, put back after the test (a set limit stays in force)."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)


@pytest.mark.usefixtures("pillow_limit")
@pytest.mark.parametrize(
    ("setting", "readable"), [(None, False), ("3000", False), ("3072", True), ("5000", True)]
)
def test_an_image_over_the_pixel_limit_is_refused_with_the_setting_that_raises_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str | None, readable: bool
) -> None:
    """An aerial image over Pillow's guard against decompression bombs was 'unreadable' with no
    way to read it: the finding and the checks balance and merge run name the limit and
    SYNTHGATE_MAX_IMAGE_PIXELS, which lets synthgate decode it (this image: 64x48 = 3072)."""
    from synthgate.formats.coco_checks import image_file_problem

    if setting is None:
        monkeypatch.delenv("SYNTHGATE_MAX_IMAGE_PIXELS", raising=False)
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses over 2,000
    else:
        monkeypatch.setenv("SYNTHGATE_MAX_IMAGE_PIXELS", setting)
    Image.fromarray(photo()).save(tmp_path / "aerial.png")
    coco = {
        "images": [{"id": 1, "file_name": "aerial.png", "width": WIDTH, "height": HEIGHT}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 4, 20, 20]}],
        "categories": [{"id": 1, "name": "thing"}],
    }
    report = validate_coco(coco, images=tmp_path).reports["coco-1"]
    problem = image_file_problem(tmp_path, "aerial.png", SHOWN)
    if readable:
        assert report.measurements.get("image_unreadable") is None
        assert problem is None
        return
    limit = "2,000" if setting is None else "3,000"
    unreadable = [f.message for f in report.findings if f.measure == "image_unreadable"]
    assert len(unreadable) == 1, [f.message for f in report.findings]
    for message in (*unreadable, problem):
        assert message is not None and f"limit of {limit} pixels" in message, message
        assert "SYNTHGATE_MAX_IMAGE_PIXELS=<pixels>" in message, message


@pytest.mark.usefixtures("pillow_limit")
def test_a_pixel_limit_that_is_not_a_number_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from synthgate.cli import app

    Image.fromarray(photo()).save(tmp_path / "photo.png")
    coco = {
        "images": [{"id": 1, "file_name": "photo.png", "width": WIDTH, "height": HEIGHT}],
        "annotations": [],
        "categories": [{"id": 1, "name": "thing"}],
    }
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    monkeypatch.setenv("SYNTHGATE_MAX_IMAGE_PIXELS", "400M")
    result = CliRunner().invoke(
        app, ["validate", str(tmp_path / "coco.json"), "--images", str(tmp_path)]
    )
    assert result.exit_code == 2, result.output
    assert "SYNTHGATE_MAX_IMAGE_PIXELS='400M': not a number of pixels" in result.output
    assert "Traceback" not in result.output


def _polygon_file(
    folder: Path, image: dict[str, Any], *, images_first: bool, name: str = "coco.json"
) -> Path:
    """A COCO file of image 1 (`image`) with a polygon reaching x 60 (past the 48 px a photo
    stored turned is wide as stored) and a box leaving a 64 px wide image, its images before
    or after its annotations."""
    annotations = [
        {
            "id": 7,
            "image_id": 1,
            "category_id": 1,
            "bbox": [2, 2, 58, 20],
            "area": 1160,
            "iscrowd": 0,
            "segmentation": [[2, 2, 60, 2, 60, 22, 2, 22]],
        },
        {"id": 8, "image_id": 1, "category_id": 1, "bbox": [50, 30, 20, 10]},  # leaves 64 px
    ]
    members = [("images", [image]), ("annotations", annotations)]
    coco = dict(members if images_first else members[::-1])
    coco["categories"] = [{"id": 1, "name": "thing"}]
    path = folder / name
    path.write_text(json.dumps(coco))
    return path


@pytest.mark.parametrize("images_first", [True, False], ids=["images first", "images last"])
@pytest.mark.parametrize(
    "write",
    [jpeg_with_orientation(1, None), jpeg_with_orientation(6, Image.Transpose.ROTATE_90)],
    ids=["upright", "EXIF 6, stored turned"],
)
def test_an_entry_without_a_size_takes_its_image_files(
    tmp_path: Path, write: Callable[[Path], str], images_first: bool
) -> None:
    """An image entry without width and height: validate blamed each of its polygons
    ("polygons need the image's width and height") although the images folder was given and
    its file tells the size (as viewers show it). Its polygons and boxes are now judged at that
    size, as those of an entry that gives it."""
    name = write(tmp_path)
    sized = {"id": 1, "file_name": name, "width": WIDTH, "height": HEIGHT}
    unsized = {"id": 1, "file_name": name}
    expected = validate_coco(
        _polygon_file(tmp_path, sized, images_first=images_first, name="sized.json"),
        images=tmp_path,
    )
    result = validate_coco(
        _polygon_file(tmp_path, unsized, images_first=images_first), images=tmp_path
    )
    assert result.rows == expected.rows
    measures = {f["measure"] for f in result.rows[0]["findings"]}
    assert "mask_unreadable" not in measures and "bbox_outside_px" in measures, measures
    # the file lacks them still: the schema finding says so
    assert any("1 image lacks one of" in f.message for f in result.summary.dataset), (
        result.summary.dataset
    )


@pytest.mark.parametrize(
    ("entry", "missing"),
    [
        ({}, "no width and height"),
        ({"width": WIDTH}, "no height"),
        ({"width": WIDTH, "height": "48"}, "no height"),
    ],
)
def test_without_the_images_the_entry_lacking_a_size_is_named(
    tmp_path: Path, entry: dict[str, Any], missing: str
) -> None:
    """Without the images folder, the finding on each polygon names the image entry, what it
    lacks and the fix, not the polygons (which are fine)."""
    path = _polygon_file(tmp_path, {"id": 1, "file_name": "a.jpg", **entry}, images_first=True)
    rows = validate_coco(path).rows
    [message] = [f["message"] for f in rows[0]["findings"] if f["measure"] == "mask_unreadable"]
    assert f"the entry of image 1 has {missing} (pixels > 0)" in message, message
    assert "images[]" in message and "images folder" in message, message


def test_with_the_images_but_no_file_the_entry_lacking_a_size_is_named_without_that_fix(
    tmp_path: Path,
) -> None:
    """Given the images folder but no file there, the finding told the user to validate with
    the images folder, which they had done: it says the file told no size."""
    path = _polygon_file(tmp_path, {"id": 1, "file_name": "a.jpg"}, images_first=True)
    coco = json.loads(path.read_text())
    Image.fromarray(photo()).save(tmp_path / "there.png")  # not every image missing: no refusal
    coco["images"].append({"id": 2, "file_name": "there.png", "width": WIDTH, "height": HEIGHT})
    path.write_text(json.dumps(coco))
    rows = validate_coco(path, images=tmp_path).rows
    [message] = [f["message"] for f in rows[0]["findings"] if f["measure"] == "mask_unreadable"]
    assert "the entry of image 1 has no width and height" in message, message
    assert "its file in the images folder is not there" in message, message
    assert "validate with the images folder" not in message, message


@pytest.mark.parametrize("named", ["../photo.jpg", "/etc/photo.jpg", "a/../../photo.jpg"])
def test_a_file_name_leading_out_of_the_folder_is_that_images_finding(
    tmp_path: Path, named: str
) -> None:
    """A file_name that climbs out of the images folder (or is absolute) stopped the whole
    validate at that image: it is data, judged as that image's finding, and the other images
    are still judged (nothing outside the folder is read)."""
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(photo()).save(folder / "fine.jpg")
    Image.fromarray(photo()).save(tmp_path / "photo.jpg")  # there, but outside the folder
    coco = {
        "images": [
            {"id": 1, "file_name": named, "width": WIDTH, "height": HEIGHT},
            {"id": 2, "file_name": "fine.jpg", "width": WIDTH, "height": HEIGHT},
        ],
        "annotations": [],
        "categories": [{"id": 1, "name": "thing"}],
    }
    result = validate_coco(coco, images=folder)
    outside, fine = result.rows
    [finding] = [f for f in outside["findings"] if f["measure"] == "image_unreadable"]
    assert repr(named) in finding["message"] and str(folder) in finding["message"], finding
    assert not [f for f in fine["findings"] if f["measure"] == "image_unreadable"]


def test_an_images_folder_holding_none_of_the_images_is_refused_as_balance_refuses_it(
    tmp_path: Path,
) -> None:
    """images= the dataset's root, or a typo'd sibling: every image was judged unreadable and the
    result had a mean score, as if the dataset were that bad (found by a hunt: 23 of coco-tiny's
    80 rejected). balance, merge and export refuse the same mistake in one line."""
    from balance_fixtures import make_tiny_coco

    import synthgate as sg

    coco, _images = make_tiny_coco(tmp_path / "data")
    wrong = tmp_path / "elsewhere"
    wrong.mkdir()
    with pytest.raises(sg.InputError, match="none of the"):
        sg.balance(coco, images=wrong, out=tmp_path / "balanced", dry_run=True)
    with pytest.raises(sg.InputError, match="none of the") as refused:
        validate_coco(coco, images=wrong)
    assert str(wrong) in str(refused.value)


def test_validate_still_reads_images_by_their_bare_name_in_a_flat_folder(tmp_path: Path) -> None:
    """validate looks an image up by its file_name, else by its bare name in the images folder
    (sources._image_file): file_names "val2017/x.png" with the files flat in images/ were all
    judged. bc907b1's refusal looked only at images/val2017/x.png, so it said none of the
    images is there and refused the dataset validate reads whole."""
    from balance_fixtures import make_tiny_coco

    coco_path, images = make_tiny_coco(tmp_path)
    data = json.loads(coco_path.read_text())
    for image in data["images"]:
        image["file_name"] = f"val2017/{image['file_name']}"
    coco_path.write_text(json.dumps(data))

    result = validate_coco(coco_path, images=images)

    assert result.summary.samples == len(data["images"])
    unreadable = [
        f for row in result.rows for f in row["findings"] if f["measure"] == "image_unreadable"
    ]
    assert unreadable == []


def test_validate_refuses_a_folder_holding_none_of_an_lvis_files_images(tmp_path: Path) -> None:
    """LVIS names its images by coco_url alone (validate reads them as val2017/x.jpg, or x.jpg).
    With images= a folder holding none of them, every image was judged unreadable and the
    result had a mean score: the mistake bc907b1 refuses for file_names, missed because
    refuse_if_no_image_is_there skipped entries without a file_name (a second read found both)."""
    from balance_fixtures import lvis_of, make_tiny_coco

    coco_path, _images = make_tiny_coco(tmp_path / "data")
    coco_path.write_text(json.dumps(lvis_of(json.loads(coco_path.read_text()))))
    wrong = tmp_path / "elsewhere"
    wrong.mkdir()
    with pytest.raises(InputError, match="none of the"):
        validate_coco(coco_path, images=wrong)
