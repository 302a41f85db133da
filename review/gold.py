"""Gold tasks: honeypots made by injecting a known defect into an accepted sample, what an
annotator is shown of any task, and how a decision on a gold task is scored.

A honeypot must be indistinguishable from a real task in everything an annotator can see, or
it measures nothing. `make_honeypot(sample, categories, seed=..., batch=...)` injects one defect
that keeps the labels self-consistent, learning from the batch (`BatchLooks`) what its real
samples look like:

- shifted_box (precision): an object's mask and box move together by a fifth of its size into
  free pixels, so the box stays the mask's tight box, the area and shape stay the object's and
  masks never overlap (only the pixels show the label is off);
- dropped_label (completeness): an object or span is left out, never below the fewest labels
  a sample of the batch has, nor the last object of the sample's quota class; the `z` order
  of the objects left is renumbered;
- extra_label (correctness): a label where there is nothing: an object of a class of the image,
  its mask a resized mirror of one of them, placed on top in free pixels; or a span over words
  no span covers, labelled with a label whose values look like them; never above the most
  labels a sample of the batch has. Dropped and extra labels are drawn alike, so gold has as
  many labels per sample as real work;
- wrong_class (correctness): an object gets another class together with the attributes every
  object of that class has in the batch (e.g. procedural `shape`), or a span a label whose
  values look like this one's (names stay names, numbers numbers);
- shifted_span (precision): a span gains or loses a whole word, so it still starts and ends on
  word boundaries and its `value` is the text it covers.

`blind(sample)` is the sample as an annotator receives it, real or gold alike: its labels,
pixels or text, and nothing of where it came from. No validator's report (route, score,
findings: a honeypot's would be its source's, accepted), no construction record
(`provenance.params`: objects placed, template index), which would let a script check labels
without looking, and no id, file name, batch, generator, prompt, versions or object attributes:
gold is drawn from the whole gold set, so a prelabelled (`<batch>-<index>`, a `score`) or
COCO-imported (`coco-<image id>`, the original file name, an `annotation_id`) gold sample would
stand out among generated work, and the other way round. Every random choice comes from a
generator seeded by the caller's seed parts, so the same batch gets the same honeypots. The
checks a fix's corrected labels must pass are a decision's (review/decision.py).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from synthgate.masks import decode_mask, encode_mask, tight_bbox
from synthgate.samples import ObjectLabel, Provenance, Sample, SampleSpec, Span

# defect -> the rubric criterion it breaks (DESIGN.md §5)
DEFECTS: dict[str, str] = {
    "shifted_box": "precision",
    "dropped_label": "completeness",
    "extra_label": "correctness",
    "wrong_class": "correctness",
    "shifted_span": "precision",
}
NOT_ACCEPT = ["reject", "fix"]  # either verdict catches a honeypot
WORD = re.compile(r"\w+")
SHAPES_KEPT = 16  # whole object masks kept per class: shapes for an extra label


@dataclass
class Honeypot:
    shown: Sample
    defect: str
    criterion: str
    expected: list[str]


def value_look(value: str) -> str:
    """What a span's text looks like: email, number, name (capitalised words) or phrase."""
    if "@" in value:
        return "email"
    digits = sum(c.isdigit() for c in value)
    if digits and digits >= 0.5 * sum(not c.isspace() for c in value):
        return "number"
    words = WORD.findall(value)
    if words and all(w[0].isupper() for w in words):
        return "name"
    return "phrase"


@dataclass
class BatchLooks:
    """What a batch's samples look like, tallied as they stream by (`add`): for each object
    class, the attributes every object of it shares; for each span label, how its values look.
    A honeypot keeps to them, so nothing in it contradicts the rest of the batch."""

    _attributes: dict[str, dict[str, set[Any]]] = field(default_factory=dict)
    _looks: dict[str, Counter[str]] = field(default_factory=dict)
    _words: dict[str, Counter[int]] = field(default_factory=dict)  # label -> words per span
    _labels: dict[str, tuple[int, int]] = field(default_factory=dict)  # modality: fewest, most
    _shapes: dict[str, list[np.ndarray]] = field(default_factory=dict)  # class -> mask crops
    _lowest_visible: float = 1.0

    def add(self, sample: Sample) -> None:
        modality = sample.spec.modality
        count = len(sample.objects) + len(sample.spans)
        fewest, most = self._labels.get(modality, (count, count))
        self._labels[modality] = (min(fewest, count), max(most, count))
        for obj in sample.objects:
            self._lowest_visible = min(self._lowest_visible, obj.visible_fraction)
            seen = self._attributes.setdefault(obj.category, {})
            for key, value in obj.attributes.items():
                values = seen.setdefault(key, set())
                if len(values) < 2 and isinstance(value, str | int | float | bool):
                    values.add(value)
            shapes = self._shapes.setdefault(obj.category, [])
            if len(shapes) < SHAPES_KEPT and obj.visible_fraction == 1.0 and _has_mask(sample, obj):
                x, y, w, h = (int(v) for v in obj.bbox)
                shapes.append(decode_mask(obj.mask or {})[y : y + h, x : x + w])
        text = sample.text or ""
        for span in sample.spans:
            value = text[span.start : span.end]
            self._looks.setdefault(span.label, Counter())[value_look(value)] += 1
            self._words.setdefault(span.label, Counter())[len(WORD.findall(value))] += 1

    def lowest_visible(self) -> float:
        """The least visible fraction of any object in the batch."""
        return self._lowest_visible

    def classes(self) -> list[str]:
        """Every object class seen."""
        return sorted(self._attributes)

    def shape_of(self, category: str, rng: np.random.Generator) -> np.ndarray | None:
        """The whole mask (cropped to its box) of an object of `category` in the batch."""
        shapes = self._shapes.get(category)
        return shapes[int(rng.integers(len(shapes)))] if shapes else None

    def word_counts(self, label: str) -> Counter[int]:
        """How many spans of `label` have how many words."""
        return self._words.get(label, Counter())

    def class_attributes(self, category: str) -> dict[str, Any]:
        """The attributes with one value across every object of `category` seen."""
        return {
            key: next(iter(values))
            for key, values in self._attributes.get(category, {}).items()
            if len(values) == 1
        }

    def label_range(self, modality: str) -> tuple[int, int]:
        """The fewest and the most labels a sample of `modality` has in the batch."""
        return self._labels.get(modality, (1, 1))

    def labels(self) -> list[str]:
        """Every span label seen."""
        return sorted(self._looks)

    def look_of(self, label: str) -> str | None:
        """How values of `label` usually look (None: no span of it seen)."""
        counts = self._looks.get(label)
        return counts.most_common(1)[0][0] if counts else None


def blind(sample: Sample) -> Sample:
    """The sample as an annotator receives it, gold or real alike: its labels, size, pixels or
    text and modality, and nothing that tells where it came from, since that differs by batch
    and source while gold comes from anywhere in the gold set: no id (`ima-<hash>`,
    `<batch>-<index>`, `coco-<image id>`), no `uri` (the image is the item's image_url), no
    batch, index, generator, quota class or attributes asked for or realised, no provenance
    (generator and version, seed, model, prompt, versions), no validator's report and no
    construction record. What stays is what a decision is judged and posted against: the item
    id names the task. An object's attributes are its source's too (COCO's `annotation_id` and
    `iscrowd`, a prelabel's `score`, a generated object's `shape` and `z`), so each object's
    are `{"ref": i}` alone, i its place in `sample`: a fix posts the ref back with the object,
    and the decision takes the stored attributes again (review/decision.py `with_attributes`).

    The spans, text and each object's class, box and mask are shared with `sample`, not copied
    (a task is read anew for each request and sent at once; a deep copy cost ~75 us of every
    `next`, this ~5 us and ~1.5 us an object): copy the result before changing it. `sample`
    itself is left as it was.
    """
    modality = sample.spec.modality
    objects = [
        o.model_copy(update={"attributes": {"ref": i}}) for i, o in enumerate(sample.objects)
    ]
    return sample.model_copy(
        update={
            "id": "",
            "objects": objects,
            "uri": None,
            "attributes": {},
            "report": None,
            "status": "review",
            "spec": SampleSpec(batch_id="", index=0, modality=modality, generator="", seed=0),
            "provenance": Provenance(generator="", generator_version="", seed=0),
        }
    )


def rng_for(seed: list[Any]) -> np.random.Generator:
    """A generator from seed parts of any type (annotator names, batch ids), stable across runs."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in seed).encode()).digest()
    return np.random.default_rng(
        [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    )


def draw_gold(gold_rate: float, *, seed: list[Any]) -> bool:
    """Whether this assignment is a gold task: one seeded draw per (annotator, position)."""
    return gold_rate > 0 and float(rng_for(seed).random()) < gold_rate


def honeypot_count(review_items: int, gold_rate: float) -> int:
    """Enough honeypots that each annotator can meet gold at `gold_rate` of their items."""
    return math.ceil(review_items * gold_rate / (1.0 - gold_rate)) if review_items else 0


def pick_candidates(sample_ids: list[str], *, seed: list[Any]) -> list[str]:
    """Accepted samples in a seeded order: the caller turns them into honeypots until it has
    enough (some have no label to break)."""
    order = rng_for(seed).permutation(len(sample_ids))
    return [sample_ids[int(i)] for i in order]


Injector = Callable[[Sample, np.random.Generator], Sample | None]


def make_honeypot(
    sample: Sample,
    categories: list[str],
    *,
    seed: list[Any],
    batch: BatchLooks | None = None,
) -> Honeypot | None:
    """The sample with one known defect injected, or None if no defect fits it.

    The defect is drawn among those that fit (a wrong class needs a second class to move to,
    a dropped label a second label to keep, ...); `batch` says what the batch's samples look
    like (default: learnt from this sample alone).
    """
    rng = rng_for(seed)
    image = sample.spec.modality == "image"
    if not (sample.objects if image else sample.spans):
        return None
    looks = batch if batch is not None else _looks_of(sample)
    names = sorted(set(categories))
    fewest, most = looks.label_range(sample.spec.modality)
    defects: dict[str, Injector] = (
        {
            "shifted_box": _shift_object,
            "dropped_label": lambda s, r: _drop_object(s, r) if len(s.objects) > fewest else None,
            "extra_label": lambda s, r: _add_object(s, r, looks) if len(s.objects) < most else None,
            "wrong_class": lambda s, r: _reclass_object(s, r, names, looks),
        }
        if image
        else {
            "shifted_span": _shift_span,
            "dropped_label": lambda s, r: _drop_span(s, r) if len(s.spans) > fewest else None,
            "extra_label": lambda s, r: _add_span(s, r, looks) if len(s.spans) < most else None,
            "wrong_class": lambda s, r: _relabel_span(s, r, names, looks),
        }
    )
    # A label is dropped only from a sample that could as well gain one, and the other way
    # round: gold then has as many labels per sample as real work, on the whole.
    probe = rng_for([*seed, "labels"])
    if any(
        defects[d](sample.model_copy(deep=True), probe) is None
        for d in ("dropped_label", "extra_label")
    ):
        del defects["dropped_label"], defects["extra_label"]
    order = list(defects)
    for index in rng.permutation(len(order)):
        defect = order[int(index)]
        shown = defects[defect](sample.model_copy(deep=True), rng)
        if shown is not None:
            return Honeypot(
                shown=shown, defect=defect, criterion=DEFECTS[defect], expected=NOT_ACCEPT
            )
    return None


def _looks_of(sample: Sample) -> BatchLooks:
    looks = BatchLooks()
    looks.add(sample)
    return looks


# ---- image defects ---------------------------------------------------------------------------


def _masks_of(sample: Sample, skip: int | None = None) -> np.ndarray:
    """Every pixel some object's mask holds (but object `skip`'s)."""
    taken = np.zeros((sample.height or 0, sample.width or 0), dtype=bool)
    for index, obj in enumerate(sample.objects):
        if index != skip and _has_mask(sample, obj):
            taken |= decode_mask(obj.mask or {})
    return taken


def _has_mask(sample: Sample, obj: ObjectLabel) -> bool:
    return bool(obj.mask) and list((obj.mask or {}).get("size", [])) == [
        sample.height,
        sample.width,
    ]


def _moved(mask: np.ndarray, offset: tuple[int, int]) -> np.ndarray | None:
    """`mask` moved by (dx, dy), if every pixel stays inside the image."""
    dx, dy = offset
    height, width = mask.shape
    rows, cols = np.nonzero(mask)
    rows, cols = rows + dy, cols + dx
    if rows.size == 0 or rows.min() < 0 or cols.min() < 0:
        return None
    if rows.max() >= height or cols.max() >= width:
        return None
    moved = np.zeros_like(mask)
    moved[rows, cols] = True
    return moved


def _place(mask: np.ndarray, taken: np.ndarray, offset: tuple[int, int]) -> np.ndarray | None:
    """`mask` moved by (dx, dy), if every pixel stays inside the image and off `taken`."""
    moved = _moved(mask, offset)
    return None if moved is None or (moved & taken).any() else moved


def _shift_object(sample: Sample, rng: np.random.Generator) -> Sample | None:
    """Move one object's mask and box by about a fifth of its size into free pixels; an object
    without a mask has its box moved inside the image."""
    for target in [int(i) for i in rng.permutation(len(sample.objects))]:
        obj = sample.objects[target]
        x, y, w, h = obj.bbox
        step = max(3.0, 0.2 * min(w, h))
        decoded: tuple[np.ndarray, np.ndarray] | None = None  # (its mask, the others' pixels)
        for angle in rng.permutation(8) * (np.pi / 4) + rng.uniform(0, np.pi / 4):
            offset = (round(step * np.cos(angle)), round(step * np.sin(angle)))
            if not _has_mask(sample, obj):
                if obj.mask:
                    break
                moved_box = [x + offset[0], y + offset[1], w, h]
                inside = (
                    moved_box[0] >= 0
                    and moved_box[1] >= 0
                    and (not sample.width or moved_box[0] + w <= sample.width)
                    and (not sample.height or moved_box[1] + h <= sample.height)
                )
                if inside:
                    sample.objects[target] = obj.model_copy(update={"bbox": moved_box})
                    return sample
                continue
            if decoded is None:  # once per object, not once per angle
                decoded = decode_mask(obj.mask or {}), _masks_of(sample, skip=target)
            moved = _place(*decoded, offset)
            if moved is not None:
                sample.objects[target] = obj.model_copy(
                    update={"mask": encode_mask(moved), "bbox": tight_bbox(moved)}
                )
                return sample
    return None


def _add_object(sample: Sample, rng: np.random.Generator, looks: BatchLooks) -> Sample | None:
    """A label where there is nothing: an object of a class of the batch (drawn like any other
    object: any class, with that class's attributes), its mask a resized mirror of a whole
    object of that class elsewhere in the batch, drawn on top: the objects it covers lose those
    pixels and their visible fraction, never below the batch's lowest."""
    if not sample.width or not sample.height:
        return None
    below = [
        (i, decode_mask(o.mask or {})) for i, o in enumerate(sample.objects) if _has_mask(sample, o)
    ]
    classes = looks.classes()
    for category in [classes[int(i)] for i in rng.permutation(len(classes))]:
        crop = looks.shape_of(category, rng)
        if crop is None or not crop.any():
            continue
        # 5-25 % smaller or larger: a new object, never the same size as the one it is from
        scale = 1.0 + float(rng.uniform(0.05, 0.25)) * (1 if rng.random() < 0.5 else -1)
        size = (max(2, round(crop.shape[1] * scale)), max(2, round(crop.shape[0] * scale)))
        if size[0] >= sample.width or size[1] >= sample.height:
            continue
        shape = cv2.resize(crop.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        shape = (shape[:, ::-1] if rng.random() < 0.5 else shape[::-1, :]).astype(bool)
        canvas = np.zeros((sample.height, sample.width), dtype=bool)
        canvas[: size[1], : size[0]] = shape
        for _ in range(40):
            offset = (
                int(rng.integers(0, sample.width - size[0] + 1)),
                int(rng.integers(0, sample.height - size[1] + 1)),
            )
            placed = _moved(canvas, offset)
            covered = (
                _cover(sample, below, placed, looks.lowest_visible())
                if placed is not None
                else None
            )
            if placed is None or covered is None:
                continue
            like = next((o for o in sample.objects if o.category == category), None)
            attributes = dict(like.attributes) if like else {}
            attributes.update(looks.class_attributes(category))
            if all(isinstance(o.attributes.get("z"), int) for o in sample.objects):
                attributes["z"] = max((o.attributes["z"] for o in sample.objects), default=-1) + 1
            sample.objects = covered
            sample.objects.append(
                ObjectLabel(
                    category=category,
                    bbox=tight_bbox(placed),
                    mask=encode_mask(placed),
                    area=float(placed.sum()),
                    visible_fraction=1.0,
                    attributes=attributes,
                )
            )
            return sample
    return None


def _cover(
    sample: Sample, below: list[tuple[int, np.ndarray]], placed: np.ndarray, lowest: float
) -> list[ObjectLabel] | None:
    """The objects with the pixels `placed` covers taken out of their masks (box, area and
    visible fraction follow), or None if one would fall below `lowest` visible."""
    objects = list(sample.objects)
    for index, mask in below:
        covered = int((mask & placed).sum())
        if not covered:
            continue
        left = mask & ~placed
        obj = objects[index]
        visible = round(obj.visible_fraction * float(left.sum()) / float(mask.sum()), 6)
        if not left.any() or visible < lowest:
            return None
        objects[index] = obj.model_copy(
            update={
                "mask": encode_mask(left),
                "bbox": tight_bbox(left),
                "area": float(left.sum()),
                "visible_fraction": visible,
            }
        )
    return objects


def _quota_safe(sample: Sample, target: int) -> bool:
    """Whether changing object `target` leaves an object of the sample's quota class."""
    quota = sample.spec.category
    if quota is None or sample.objects[target].category != quota:
        return True
    return sum(o.category == quota for o in sample.objects) > 1


def _drop_object(sample: Sample, rng: np.random.Generator) -> Sample | None:
    """Leave out one object (never the only one or the last of the quota class); objects drawn
    above it move down one step in `z`, so the order has no gap where it was."""
    if len(sample.objects) < 2:
        return None
    candidates = [i for i in range(len(sample.objects)) if _quota_safe(sample, i)]
    if not candidates:
        return None
    target = candidates[int(rng.integers(len(candidates)))]
    dropped = sample.objects.pop(target)
    z = dropped.attributes.get("z")
    if isinstance(z, int) and all(isinstance(o.attributes.get("z"), int) for o in sample.objects):
        for obj in sample.objects:
            if obj.attributes["z"] > z:
                obj.attributes["z"] -= 1
    return sample


def _reclass_object(
    sample: Sample, rng: np.random.Generator, names: list[str], looks: BatchLooks
) -> Sample | None:
    """Give one object another class of the batch, with the attributes that class's objects
    share (and keep the ones they do not)."""
    for target in [int(i) for i in rng.permutation(len(sample.objects))]:
        obj = sample.objects[target]
        if not _quota_safe(sample, target):
            continue
        own = looks.class_attributes(obj.category)
        others = [n for n in names if n != obj.category]
        for new in [others[int(i)] for i in rng.permutation(len(others))]:
            theirs = looks.class_attributes(new)
            if set(own) - set(theirs):  # an attribute of this class the new one cannot match
                continue
            attributes = {
                **obj.attributes,
                **{k: v for k, v in theirs.items() if k in obj.attributes},
            }
            sample.objects[target] = obj.model_copy(
                update={"category": new, "attributes": attributes}
            )
            return sample
    return None


# ---- text defects ----------------------------------------------------------------------------


def _drop_span(sample: Sample, rng: np.random.Generator) -> Sample | None:
    """Leave out one span (never the only one)."""
    if len(sample.spans) < 2:
        return None
    del sample.spans[int(rng.integers(len(sample.spans)))]
    return sample


def _add_span(sample: Sample, rng: np.random.Generator, looks: BatchLooks) -> Sample | None:
    """A span over words no span covers, as a real span of its label would be: a label of the
    batch the text does not have yet (labels rarely repeat in a text), as many words as that
    label's spans have (drawn by how often), and words that look like its values."""
    text = sample.text or ""
    words = [(m.start(), m.end()) for m in WORD.finditer(text)]
    free = [w for w in words if not any(s.start < w[1] and w[0] < s.end for s in sample.spans)]
    runs: dict[int, list[tuple[int, int]]] = {}  # words -> runs of that many free words
    for length in range(1, 5):
        for group in zip(*(free[i:] for i in range(length)), strict=False):
            if all(text[a[1] : b[0]] == " " for a, b in itertools.pairwise(group)):
                runs.setdefault(length, []).append((group[0][0], group[-1][1]))
    present = {s.label for s in sample.spans}
    labels = [label for label in looks.labels() if label not in present]
    for label in [labels[int(i)] for i in rng.permutation(len(labels))]:
        counts = looks.word_counts(label)
        lengths = [n for n in counts if runs.get(n)]
        if not lengths:
            continue
        weights = np.array([counts[n] for n in lengths], dtype=float)
        length = lengths[int(rng.choice(len(lengths), p=weights / weights.sum()))]
        fitting = [r for r in runs[length] if value_look(text[r[0] : r[1]]) == looks.look_of(label)]
        if fitting:
            start, end = fitting[int(rng.integers(len(fitting)))]
            sample.spans.append(Span(start=start, end=end, label=label, value=text[start:end]))
            sample.spans.sort(key=lambda span: (span.start, span.end))
            return sample
    return None


def _relabel_span(
    sample: Sample, rng: np.random.Generator, names: list[str], looks: BatchLooks
) -> Sample | None:
    """Give one span another label of the batch whose values look like this span's text, one
    the text does not have yet (labels rarely repeat in a text)."""
    text = sample.text or ""
    present = {s.label for s in sample.spans}
    for target in [int(i) for i in rng.permutation(len(sample.spans))]:
        span = sample.spans[target]
        look = value_look(text[span.start : span.end])
        fitting = [n for n in names if n not in present and looks.look_of(n) == look]
        if fitting:
            new = fitting[int(rng.integers(len(fitting)))]
            sample.spans[target] = span.model_copy(update={"label": new})
            return sample
    return None


def _shift_span(sample: Sample, rng: np.random.Generator) -> Sample | None:
    """Move one boundary of a span by a whole word: it loses its first or last word, or takes in
    the word beside it (across one space, not into another span). Only a span that could do
    either is moved, and each is drawn alike, so spans stay as long as real ones on the whole."""
    text = sample.text or ""
    words = [(m.start(), m.end()) for m in WORD.finditer(text)]
    for target in [int(i) for i in rng.permutation(len(sample.spans))]:
        span = sample.spans[target]
        taken = [(s.start, s.end) for i, s in enumerate(sample.spans) if i != target]
        inside = [w for w in words if span.start <= w[0] and w[1] <= span.end]
        shorter: list[tuple[int, int]] = []
        if len(inside) > 1:
            shorter = [(inside[1][0], span.end), (span.start, inside[-2][1])]
        before = [w for w in words if w[1] == span.start - 1 and text[w[1]] == " "]
        after = [w for w in words if w[0] == span.end + 1 and text[span.end] == " "]
        longer = [(w[0], span.end) for w in before] + [(span.start, w[1]) for w in after]
        longer = [
            (start, end)
            for start, end in longer
            if not any(start < e and s < end for s, e in taken)
        ]
        if not shorter or not longer:  # only a span that could go either way
            continue
        options = shorter if rng.random() < 0.5 else longer
        start, end = options[int(rng.integers(len(options)))]
        sample.spans[target] = span.model_copy(
            update={"start": start, "end": end, "value": text[start:end]}
        )
        return sample
    return None


def is_correct(verdict: str, expected: list[str]) -> bool:
    return verdict in expected


def detected(levels: dict[str, int], criterion: str | None) -> bool | None:
    """Whether the decision flagged the defect's criterion (a level below 5); None if no level."""
    if criterion is None or criterion not in levels:
        return None
    return int(levels[criterion]) < 5
