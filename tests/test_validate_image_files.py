"""`validate_coco(..., images=...)` on image files as cameras and tools write them:
16-bit grey PNGs. Each case names the file, the size its entry gives, and the
image measurements the judge must make of it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthgate.validators.validate import validate_coco

HEIGHT, WIDTH = 48, 64
SHOWN = (WIDTH, HEIGHT)  # the image as viewers show it, and as its labels were drawn


def grey_16bit(low: int, high: int) -> Callable[[Path], str]:
    def write(folder: Path) -> str:
        rng = np.random.default_rng(0)
        pixels = rng.integers(low, high, (HEIGHT, WIDTH), dtype=np.uint16)
        Image.fromarray(pixels).save(folder / "photo.png")  # mode I;16
        return "photo.png"

    return write


IMAGE_FILE_CASES = [
    # (name, file, entry's width x height, expected measurements)
    ("16-bit grey photo", grey_16bit(30 * 257, 220 * 257), SHOWN, {"clipped_percent": 0}),
    ("16-bit grey, all white", grey_16bit(65535, 65536), SHOWN, {"image_blank": 1}),
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
