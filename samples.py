"""The central types every stage passes along: SampleSpec -> Sample (+ RubricReport).

Generators return `GeneratedSample` (a `Sample` plus the pixels and the foreground they know by
construction); validators read it; the store, the review queue and the merger keep `Sample`.
One box format everywhere: COCO xywh in pixels. Masks are COCO compressed RLE dicts
(`{"size": [h, w], "counts": "<str>"}`), the form pycocotools encodes and decodes.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

Modality = Literal["image", "text"]
Route = Literal["accepted", "review", "rejected"]
Status = Literal["accepted", "review", "rejected", "failed", "pending"]
Level = Literal[5, 3, 1]
CRITERIA: tuple[str, ...] = ("correctness", "completeness", "precision", "clarity")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SampleSpec(_Model):
    """What to make: one sample of a batch, with its own seed."""

    batch_id: str
    index: int = Field(ge=0)
    modality: Modality
    generator: str
    category: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int = Field(ge=0)


class ObjectLabel(_Model):
    """One labelled object of an image sample."""

    category: str
    bbox: list[float]  # COCO [x, y, w, h] in pixels
    mask: dict[str, Any] | None = None  # COCO compressed RLE
    area: float
    visible_fraction: float = 1.0
    attributes: dict[str, Any] = Field(default_factory=dict)

    def __repr_args__(self) -> Any:
        # The mask by its size, not its RLE counts: hundreds of characters an object, so a
        # notebook showing a sample (`samples[0].sample`) showed kilobytes of them.
        for name, value in super().__repr_args__():
            yield name, _MaskShown(value) if name == "mask" and isinstance(value, dict) else value


class _MaskShown:
    """A COCO RLE mask as a repr shows it: `<RLE 512x512>`."""

    def __init__(self, mask: dict[str, Any]) -> None:
        self.size = mask.get("size")

    def __repr__(self) -> str:
        size = self.size
        if isinstance(size, list | tuple) and len(size) == 2:
            return f"<RLE {size[0]}x{size[1]}>"
        return "<RLE>"


class Span(_Model):
    """A labelled character span of a text sample; `end` is exclusive."""

    start: int = Field(ge=0)
    end: int = Field(ge=0)
    label: str
    value: str | None = None  # the string the generator put there, to check alignment


class Provenance(_Model):
    """Everything needed to explain and reproduce a sample."""

    generator: str
    generator_version: str
    seed: int
    params: dict[str, Any] = Field(default_factory=dict)
    model: dict[str, Any] | None = None  # id, revision, dtype, device, scheduler, steps, guidance
    prompt: str | None = None
    negative_prompt: str | None = None
    versions: dict[str, str] = Field(default_factory=dict)


class Finding(_Model):
    """One thing a check found, at the level it deserves."""

    criterion: str
    level: Level
    check: str
    message: str
    measure: str | None = None  # what the check measured, e.g. box_tightness_px
    annotation_id: int | None = None  # COCO annotation id, for files read by `validate`
    object_index: int | None = None  # index into Sample.objects
    span_index: int | None = None  # index into Sample.spans


class RubricReport(_Model):
    """A sample's score against a rubric, with every finding kept."""

    rubric: str
    score: float
    levels: dict[str, Level]
    route: Route
    audit: bool = False  # accepted, but also sent to review as part of the audit sample
    findings: list[Finding] = Field(default_factory=list)
    measurements: dict[str, float] = Field(default_factory=dict)

    def __repr_args__(self) -> Any:
        # The findings counted, with the worst few: every finding in full is kilobytes for one
        # COCO image (one per loose box), and a notebook prints a report (`result.reports[id]`,
        # `sample.report`) whole; `.findings` lists them all.
        for name, value in super().__repr_args__():
            yield name, _FindingsShown(value) if name == "findings" else value


class _FindingsShown:
    """A report's findings as a repr shows them: `<9 findings, worst first: 1 check: message; …>`."""

    SHOWN = 3
    MESSAGE_CHARS = 80

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings

    def __repr__(self) -> str:
        total = len(self.findings)
        if total == 0:
            return "[]"
        worst = sorted(self.findings, key=lambda f: f.level)[: self.SHOWN]  # stable: file order
        shown = []
        for finding in worst:
            message = finding.message
            if len(message) > self.MESSAGE_CHARS:
                message = message[: self.MESSAGE_CHARS - 1] + "…"
            shown.append(f"{finding.level} {finding.check}: {message}")
        more = f"; … {total - len(worst)} more" if total > len(worst) else ""
        noun = "finding" if total == 1 else "findings"
        return f"<{total} {noun}, worst first: {'; '.join(shown)}{more}>"


class Sample(_Model):
    """What was made: labels by construction, provenance, and (once validated) the report."""

    id: str
    spec: SampleSpec
    uri: str | None = None  # image: path of the PNG relative to the run folder
    width: int | None = None
    height: int | None = None
    objects: list[ObjectLabel] = Field(default_factory=list)
    text: str | None = None
    spans: list[Span] = Field(default_factory=list)
    doc_label: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)  # as realised: locale, gender, …
    provenance: Provenance
    report: RubricReport | None = None
    status: Status = "pending"

    def __repr_args__(self) -> Any:
        # The objects and spans counted by category and label, the text cut short: every
        # object in full was 12 KB for a COCO image of 90 (masks shown by size already), and a
        # notebook prints a sample (`next(run.samples())`) whole; `.objects` lists them all.
        for name, value in super().__repr_args__():
            if name == "objects" and value:
                yield name, _LabelsShown("object", [o.category for o in value])
            elif name == "spans" and value:
                yield name, _LabelsShown("span", [s.label for s in value])
            elif name == "text" and isinstance(value, str) and len(value) > _TEXT_CHARS:
                yield name, value[: _TEXT_CHARS - 1] + "…"
            else:
                yield name, value


_TEXT_CHARS = 80


class _LabelsShown:
    """A sample's objects (or spans) as a repr shows them: `<90 objects: 60 circle, 30 square>`,
    the most common few categories (labels) with their counts."""

    SHOWN = 3

    def __init__(self, noun: str, labels: list[str]) -> None:
        self.noun = noun
        self.labels = labels

    def __repr__(self) -> str:
        total = len(self.labels)
        common = Counter(self.labels).most_common(self.SHOWN)  # ties: first met first
        shown = [f"{count} {label}" for label, count in common]
        rest = total - sum(count for _, count in common)
        more = f", … {rest} more" if rest else ""
        noun = self.noun if total == 1 else self.noun + "s"
        return f"<{total} {noun}: {', '.join(shown)}{more}>"


@dataclass
class GeneratedSample:
    """A generator's output: the sample plus what only the generator knows.

    `foreground` is the union of every object the generator placed (bool HxW), `ignore` the
    pixels of objects too occluded to label; validators use both to judge completeness.
    """

    sample: Sample
    pixels: np.ndarray | None = None  # HxWx3 uint8
    foreground: np.ndarray | None = None  # HxW bool
    ignore: np.ndarray | None = None  # HxW bool
    extras: dict[str, Any] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        """The same sample, pixels, masks and extras: `generate(c) == generate(c)` says whether
        a seed makes the same samples (the dataclass's == asked NumPy whether an array was true,
        a ValueError)."""
        if not isinstance(other, GeneratedSample):
            return NotImplemented
        return self.sample == other.sample and all(
            _same(getattr(self, name), getattr(other, name))
            for name in ("pixels", "foreground", "ignore", "extras")
        )

    def __repr__(self) -> str:
        # The sample by id, arrays by dtype and shape, extras by name: the full reprs (masks'
        # RLE counts, three full-size arrays) are kilobytes a sample, and a notebook prints a
        # list of samples whole; `.sample` shows the labels.
        def array(value: Any) -> str:
            if isinstance(value, np.ndarray):
                return f"{value.dtype}{list(value.shape)}"
            return "None" if value is None else type(value).__name__

        sample = self.sample
        what = [sample.spec.category] if sample.spec.category else []
        what.append(f"objects={len(sample.objects)}" if sample.text is None else "text")
        return (
            f"GeneratedSample(sample=<Sample {sample.id} {' '.join(what)}>, "
            f"pixels={array(self.pixels)}, foreground={array(self.foreground)}, "
            f"ignore={array(self.ignore)}, extras={list(self.extras)})"
        )


def _same(first: Any, second: Any) -> bool:
    """Equal values, arrays by dtype, shape and every element, in mappings and lists too."""
    if isinstance(first, np.ndarray) or isinstance(second, np.ndarray):
        return (
            isinstance(first, np.ndarray)
            and isinstance(second, np.ndarray)
            and first.dtype == second.dtype
            and np.array_equal(first, second)
        )
    if isinstance(first, dict) and isinstance(second, dict):
        return first.keys() == second.keys() and all(_same(first[k], second[k]) for k in first)
    if isinstance(first, list | tuple) and isinstance(second, list | tuple):
        return (
            type(first) is type(second)
            and len(first) == len(second)
            and all(map(_same, first, second))
        )
    return bool(first == second)


def kept_first_edge(value: str, start: int, end: int) -> bool:
    """Whether value[start], first of value[start:end], is part of a span though punctuation:
    a country code's '+' before a digit, or a '(' closed inside before more of the span
    ('+34 612', '(0113) 496'; not '(IBM)', a name in brackets, not of them).
    The templates generator keeps it when it trims a value (generators/text/slots.py), and
    the ner rubric takes it at a span's edge (validators/checks/text.py)."""
    if value[start] == "+":
        return start + 1 < end and value[start + 1].isdigit()
    return value[start] == "(" and _closed_before_more(value[start:end])


def kept_last_edge(value: str, start: int, end: int) -> bool:
    """Whether value[end - 1], last of value[start:end], is part of a span though punctuation:
    a ')' opened inside after more of the span (`kept_first_edge`)."""
    return value[end - 1] == ")" and _closed_before_more(
        value[start:end][::-1].translate(_MIRRORED)
    )


_MIRRORED = str.maketrans("()", ")(")


def _closed_before_more(text: str) -> bool:
    """True when the '(' that `text` starts with is closed inside it and a letter or digit
    follows the ')': '(0)30' and '(0113) 496', not '(IBM)' or '(0113).', a pair that wraps."""
    depth = 0
    for index, char in enumerate(text):
        depth += 1 if char == "(" else -1 if char == ")" else 0
        if depth == 0:
            return any(c.isalnum() for c in text[index + 1 :])
    return False


def sample_id(batch_id: str, modality: str, index: int) -> str:
    """Deterministic id: a re-run or a redelivered task writes the same row."""
    digest = hashlib.sha1(f"{batch_id}/{modality}/{index}".encode()).hexdigest()
    return f"{modality[:3]}-{digest[:16]}"


def sample_seed(batch_seed: int, modality: str, index: int) -> int:
    """The seed of one sample, derived from the batch seed, so it is the same in any worker."""
    modality_code = {"image": 1, "text": 2}.get(modality, 3)
    state = np.random.SeedSequence([batch_seed, modality_code, index]).generate_state(1)
    return int(state[0])
