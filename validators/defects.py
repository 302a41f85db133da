"""Known defects injected into good samples: the validators' benchmark and gold review items.

Each function takes a `GeneratedSample` and returns a damaged deep copy (the input is left as
it was), or None when the sample cannot carry that defect (no object to drop, no span to
shift). `DEFECTS` maps a defect name to its function and to the criterion that must catch it;
`bench/bench_defects.py` uses the table, and the review queue can use the same functions to make
honeypots (DESIGN.md §6). Random choices come from the `rng` passed in.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from synthgate.samples import GeneratedSample, Span


def _copy(generated: GeneratedSample) -> GeneratedSample:
    return GeneratedSample(
        sample=generated.sample.model_copy(deep=True),
        pixels=None if generated.pixels is None else generated.pixels.copy(),
        foreground=generated.foreground,
        ignore=generated.ignore,
        extras=copy.deepcopy(generated.extras),
    )


def loosen_box(
    generated: GeneratedSample, rng: np.random.Generator, *, k: int
) -> GeneratedSample | None:
    """Grow one box by k px on every side that has room (at least one side must, so the box
    ends exactly k px loose); sides at the image border grow as far as they can."""
    sample = generated.sample
    width, height = sample.width or 0, sample.height or 0
    room = {}
    for i, obj in enumerate(sample.objects):
        x, y, w, h = obj.bbox
        sides = (x, y, width - x - w, height - y - h)
        if max(sides) >= k:
            room[i] = sides
    if not room:
        return None
    out = _copy(generated)
    index = list(room)[int(rng.integers(len(room)))]
    left, top, right, bottom = (min(k, side) for side in room[index])
    x, y, w, h = out.sample.objects[index].bbox
    out.sample.objects[index].bbox = [x - left, y - top, w + left + right, h + top + bottom]
    return out


def drop_label(generated: GeneratedSample, rng: np.random.Generator) -> GeneratedSample | None:
    """Remove one object's label; its pixels stay in the image (and in the foreground)."""
    if not generated.sample.objects:
        return None
    out = _copy(generated)
    del out.sample.objects[int(rng.integers(len(out.sample.objects)))]
    return out


def rename_class(
    generated: GeneratedSample, rng: np.random.Generator, *, name: str = "unicorn"
) -> GeneratedSample | None:
    """Give one object a class outside the taxonomy."""
    if not generated.sample.objects:
        return None
    out = _copy(generated)
    out.sample.objects[int(rng.integers(len(out.sample.objects)))].category = name
    return out


def blank_image(generated: GeneratedSample, rng: np.random.Generator) -> GeneratedSample | None:
    """Replace the pixels with black; the labels stay."""
    if generated.pixels is None:
        return None
    out = _copy(generated)
    assert out.pixels is not None
    out.pixels[...] = 0
    return out


def duplicate_box(generated: GeneratedSample, rng: np.random.Generator) -> GeneratedSample | None:
    """Label one object twice."""
    if not generated.sample.objects:
        return None
    out = _copy(generated)
    index = int(rng.integers(len(out.sample.objects)))
    out.sample.objects.append(out.sample.objects[index].model_copy(deep=True))
    return out


def shift_span(generated: GeneratedSample, rng: np.random.Generator) -> GeneratedSample | None:
    """Move one span one character right (or left, at the end of the text)."""
    sample = generated.sample
    if not sample.spans or sample.text is None:
        return None
    out = _copy(generated)
    span = out.sample.spans[int(rng.integers(len(out.sample.spans)))]
    step = 1 if span.end < len(sample.text) else -1
    if span.start + step < 0:
        return None
    span.start += step
    span.end += step
    return out


def unfill_slot(generated: GeneratedSample, rng: np.random.Generator) -> GeneratedSample | None:
    """Put one span's slot marker (`{LABEL:provider}`) back in place of its value; the span goes
    (nothing was filled) and later spans move with the text."""
    sample = generated.sample
    if not sample.spans or sample.text is None:
        return None
    out = _copy(generated)
    index = int(rng.integers(len(out.sample.spans)))
    span = out.sample.spans.pop(index)
    marker = "{" + span.label + ":value}"
    text = out.sample.text or ""
    out.sample.text = text[: span.start] + marker + text[span.end :]
    delta = len(marker) - (span.end - span.start)
    moved: list[Span] = []
    for other in out.sample.spans:
        if other.start >= span.end:
            other = other.model_copy(
                update={"start": other.start + delta, "end": other.end + delta}
            )
        moved.append(other)
    out.sample.spans = moved
    return out


@dataclass(frozen=True)
class Defect:
    name: str
    modality: str
    inject: Callable[..., GeneratedSample | None]
    criterion: str  # the criterion that must catch it


DEFECTS: dict[str, Defect] = {
    d.name: d
    for d in (
        Defect("loosen_box", "image", loosen_box, "precision"),
        Defect("drop_label", "image", drop_label, "completeness"),
        Defect("rename_class", "image", rename_class, "correctness"),
        Defect("blank_image", "image", blank_image, "correctness"),
        Defect("duplicate_box", "image", duplicate_box, "correctness"),
        Defect("shift_span", "text", shift_span, "correctness"),
        Defect("unfill_slot", "text", unfill_slot, "completeness"),
    )
}
