"""Gold tasks: honeypots made by injecting a known defect into an accepted sample, and how a
decision on a gold task is scored.

`make_honeypot(sample, categories, seed=...)` returns the sample as the annotator will see it
(one defect injected: a loosened box, a dropped label, a wrong class, a shifted span), the
criterion the defect hits and the verdicts that count as catching it. Every random choice comes
from a generator seeded by the caller's seed parts, so the same batch gets the same honeypots.
Also here: the checks a fix's corrected labels must pass (they are user input).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthgate.errors import InputError
from synthgate.samples import ObjectLabel, Sample, Span

# defect -> the rubric criterion it breaks (DESIGN.md §5)
DEFECTS: dict[str, str] = {
    "loosened_box": "precision",
    "dropped_label": "completeness",
    "wrong_class": "correctness",
    "shifted_span": "precision",
}
NOT_ACCEPT = ["reject", "fix"]  # either verdict catches a honeypot


@dataclass
class Honeypot:
    shown: Sample
    defect: str
    criterion: str
    expected: list[str]


def rng_for(seed: list[Any]) -> np.random.Generator:
    """A generator from seed parts of any type (annotator names, batch ids), stable across runs."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in seed).encode()).digest()
    return np.random.default_rng(
        [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    )


def draw_gold(gold_rate: float, *, seed: list[Any]) -> bool:
    """Whether this assignment is a gold task: one seeded draw per (annotator, position)."""
    return gold_rate > 0 and float(rng_for(seed).random()) < gold_rate


def choose(item_ids: list[int], *, seed: list[Any]) -> int:
    """One gold item among those the annotator has not seen, in a seeded order per annotator."""
    order = rng_for(seed).permutation(len(item_ids))
    return int(item_ids[int(order[0])])


def honeypot_count(review_items: int, gold_rate: float) -> int:
    """Enough honeypots that each annotator can meet gold at `gold_rate` of their items."""
    return math.ceil(review_items * gold_rate / (1.0 - gold_rate)) if review_items else 0


def pick_candidates(sample_ids: list[str], *, seed: list[Any]) -> list[str]:
    """Accepted samples in a seeded order: the caller turns them into honeypots until it has
    enough (some have no label to break)."""
    order = rng_for(seed).permutation(len(sample_ids))
    return [sample_ids[int(i)] for i in order]


def make_honeypot(sample: Sample, categories: list[str], *, seed: list[Any]) -> Honeypot | None:
    """The sample with one known defect injected, or None if it has nothing to break."""
    rng = rng_for(seed)
    image = sample.spec.modality == "image"
    labels = sample.objects if image else sample.spans
    if not labels:
        return None
    options = ["loosened_box" if image else "shifted_span", "dropped_label"]
    names = sorted(set(categories))
    if len(names) > 1:
        options.append("wrong_class")
    defect = options[int(rng.integers(len(options)))]
    target = int(rng.integers(len(labels)))
    shown = sample.model_copy(deep=True)
    if defect == "dropped_label":
        if image:
            del shown.objects[target]
        else:
            del shown.spans[target]
    elif defect == "wrong_class":
        current = shown.objects[target].category if image else shown.spans[target].label
        others = [n for n in names if n != current]
        new = others[int(rng.integers(len(others)))]
        if image:
            shown.objects[target].category = new
        else:
            shown.spans[target].label = new
    elif defect == "loosened_box":
        shown.objects[target] = _loosen(shown.objects[target], sample.width, sample.height)
    else:
        shown.spans[target] = _shift(shown.spans[target], sample.text or "", rng)
    return Honeypot(shown=shown, defect=defect, criterion=DEFECTS[defect], expected=NOT_ACCEPT)


def _loosen(obj: ObjectLabel, width: int | None, height: int | None) -> ObjectLabel:
    """Grow the box by a quarter of its size (at least 4 px) on every side, inside the image."""
    x, y, w, h = obj.bbox
    pad_x, pad_y = max(4.0, 0.25 * w), max(4.0, 0.25 * h)
    x0, y0 = max(0.0, x - pad_x), max(0.0, y - pad_y)
    x1 = min(float(width), x + w + pad_x) if width else x + w + pad_x
    y1 = min(float(height), y + h + pad_y) if height else y + h + pad_y
    return obj.model_copy(update={"bbox": [x0, y0, x1 - x0, y1 - y0]})


def _shift(span: Span, text: str, rng: np.random.Generator) -> Span:
    """Move the span by 2-4 characters, left or right, staying inside the text."""
    length = span.end - span.start
    step = int(rng.integers(2, 5))
    start = span.start + step if span.end + step <= len(text) else max(0, span.start - step)
    if start == span.start:  # nowhere to move: shrink instead, which is also a precision defect
        return span.model_copy(update={"end": max(span.start + 1, span.end - 1)})
    end = start + length
    return span.model_copy(update={"start": start, "end": end, "value": text[start:end]})


def is_correct(verdict: str, expected: list[str]) -> bool:
    return verdict in expected


def detected(levels: dict[str, int], criterion: str | None) -> bool | None:
    """Whether the decision flagged the defect's criterion (a level below 5); None if no level."""
    if criterion is None or criterion not in levels:
        return None
    return int(levels[criterion]) < 5


def check_objects(item_id: int, shown: Sample, objects: list[ObjectLabel]) -> None:
    """A fix's boxes must have positive size and lie inside the image."""
    for index, obj in enumerate(objects):
        if len(obj.bbox) != 4:
            raise InputError(f"item {item_id}: objects[{index}].bbox must be [x, y, w, h]")
        x, y, w, h = obj.bbox
        if not all(math.isfinite(v) for v in obj.bbox) or w <= 0 or h <= 0 or x < 0 or y < 0:
            raise InputError(
                f"item {item_id}: objects[{index}].bbox {obj.bbox} needs x, y >= 0 and w, h > 0"
            )
        if (
            shown.width
            and shown.height
            and (x + w > shown.width + 0.5 or y + h > shown.height + 0.5)
        ):
            raise InputError(
                f"item {item_id}: objects[{index}].bbox {obj.bbox} leaves the "
                f"{shown.width}x{shown.height} image"
            )


def check_spans(item_id: int, shown: Sample, spans: list[Span]) -> None:
    """A fix's spans must be non-empty character ranges inside the text."""
    size = len(shown.text or "")
    for index, span in enumerate(spans):
        if not span.start < span.end <= size:
            raise InputError(
                f"item {item_id}: spans[{index}] [{span.start}, {span.end}) must satisfy "
                f"start < end <= {size} (the text's length)"
            )
