"""`sg.show` of a sample whose mask was edited by hand into something no RLE of its image: one
InputError naming the sample, the object and what is wrong, not pycocotools' bare ValueError
(or a KeyError, or garbage drawn from counts cut short)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import matplotlib
import pytest

import synthgate as sg
from synthgate.errors import InputError

SHAPES = {
    "name": "shapes",
    "seed": 3,
    "categories": ["circle", "square"],
    "image": {
        "generator": "procedural",
        "count": 1,
        "size": [96, 64],
        "objects_per_image": [2, 2],
    },
}


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda mask: mask.__setitem__(key, value)


# name, how the mask of object 1 is spoilt, words the message holds
CORRUPTIONS: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("another image's size", _set("size", [10, 10]), "is not its image's [height, width] [64, 96]"),
    ("counts cut short", lambda m: m.__setitem__("counts", m["counts"][:-3]), "corrupt RLE"),
    ("counts of nothing", _set("counts", "zz"), "corrupt RLE"),
    ("no size", lambda m: m.pop("size"), "RLE size must be [height, width] (got None)"),
    ("no counts", lambda m: m.pop("counts"), "corrupt RLE: RLE segmentation needs `counts`"),
]


@pytest.mark.parametrize(("name", "spoil", "words"), CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_a_hand_edited_corrupt_mask_is_named(
    name: str, spoil: Callable[[dict[str, Any]], Any], words: str
) -> None:
    matplotlib.use("Agg")
    generated = sg.generate(SHAPES, limit=1)[0]
    sample = generated.sample
    assert sample.objects[1].mask is not None
    spoil(sample.objects[1].mask)
    with pytest.raises(InputError) as raised:
        sg.show(generated)
    message = str(raised.value)
    assert message.startswith(f"sample={sample.id}: object 1 ({sample.objects[1].category!r})")
    assert words in message and "set its mask to None" in message


def test_a_mask_that_is_no_dict_is_named() -> None:
    generated = sg.generate(SHAPES, limit=1)[0]
    generated.sample.objects[0].mask = "RLE"  # type: ignore[assignment]  # assigned by hand
    with pytest.raises(InputError, match=r"object 0 .*a mask is a COCO RLE dict, not str"):
        sg.show(generated)


def test_sound_masks_and_none_still_draw() -> None:
    generated = sg.generate(SHAPES, limit=1)[0]
    generated.sample.objects[0].mask = None
    figure = sg.show(generated)
    assert len(figure.axes[0].patches) == 2
