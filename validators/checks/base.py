"""The check contract: what a check sees, what it returns, and the registry of checks by name.

A check is a plain function `(item: CheckInput, params) -> Iterable[Measurement]`, registered
with `@register(name, measures=...)`. It measures; it never decides a level. A check that
measures every object of a sample may yield one `ObjectMeasurements` instead of a `Measurement`
per object: the same rows as columns, each row's message made only when a finding needs it. The rubric maps each
measurement to a level (5 gold, 3 acceptable, 1 needs re-annotation) with the thresholds its
YAML gives, so thresholds live in configs/rubrics/, not in code. A check whose inputs are
missing (no pixels, no generator foreground, no taxonomy) yields nothing: absence of evidence is
not a failure. `run_check` enforces the contract: every value is a finite number of a declared
measure, and every index points at an object or span of the sample.

Checks are named `<criterion>_<what>`; the prefix is the criterion they judge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np

from synthgate.samples import CRITERIA, GeneratedSample, Sample
from synthgate.validators.context import gray_of

Worse = Literal["higher", "lower"]
Scope = Literal["sample", "dataset"]


@dataclass(frozen=True)
class Measure:
    """A quantity a check measures: its unit and which direction is worse."""

    name: str
    unit: str
    worse: Worse = "higher"
    # The largest value it can take (a fraction: 1; a percentage: 100). Every measure is >= 0,
    # so a threshold outside [0, most] could never be crossed and turns the check off unseen.
    most: float = math.inf


@dataclass(frozen=True)
class Measurement:
    """One measured value, about the sample or one of its objects/spans, with what it means."""

    measure: str
    value: float
    message: str
    object_index: int | None = None
    span_index: int | None = None
    annotation_id: int | None = None


@dataclass(frozen=True)
class ObjectMeasurements:
    """Measurements of several objects of one sample at once: row k measures
    `measures[which[k]]` of object `objects[k]` at `values[k]`, rows in the order a loop over the
    objects would have yielded them. Most measurements are gold and never shown, so a row's
    message is made (by `describe(k)`) only when a finding or `rows()` asks for it."""

    measures: tuple[str, ...]
    which: np.ndarray | None  # per row: index into `measures` (None: the one measure)
    values: np.ndarray  # per row: float64
    objects: np.ndarray  # per row: the object's index in the sample
    annotation_ids: Sequence[int | None]  # per object of the sample (not per row)
    describe: Callable[[int], str]

    @classmethod
    def of(
        cls,
        measure: str,
        values: np.ndarray,
        objects: np.ndarray,
        annotation_ids: Sequence[int | None],
        describe: Callable[[int], str],
    ) -> ObjectMeasurements:
        """Rows of one measure."""
        values = np.asarray(values, dtype=np.float64)
        return cls((measure,), None, values, objects, annotation_ids, describe)

    def measure_of(self, k: int) -> str:
        return self.measures[0 if self.which is None else int(self.which[k])]

    def __len__(self) -> int:
        return len(self.values)

    def row(self, k: int) -> Measurement:
        index = int(self.objects[k])
        return Measurement(
            self.measure_of(k),
            float(self.values[k]),
            self.describe(k),
            object_index=index,
            annotation_id=self.annotation_ids[index],
        )

    def rows(self) -> list[Measurement]:
        """Every row as a `Measurement`, messages included."""
        return [self.row(k) for k in range(len(self))]


Found = Measurement | ObjectMeasurements


@dataclass
class CheckInput:
    """What a check sees of one sample. Pixels, foreground and ignore may be None.

    `context` is the batch state shared by every sample of a run (taxonomy, hashes seen so
    far, reference hashes); `cache` is per sample, so checks share work such as RLE areas.
    """

    sample: Sample
    context: Any  # validators.context.ValidationContext
    pixels: np.ndarray | None = None
    foreground: np.ndarray | None = None
    ignore: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, generated: GeneratedSample, context: Any) -> CheckInput:
        return cls(
            sample=generated.sample,
            context=context,
            pixels=generated.pixels,
            foreground=generated.foreground,
            ignore=generated.ignore,
            extras=generated.extras,
        )

    @cached_property
    def gray(self) -> np.ndarray | None:
        """Luminance as float32 HxW (None without pixels), computed once for all pixel checks."""
        if self.pixels is None:
            return None
        return gray_of(np.asarray(self.pixels))


CheckFn = Callable[[CheckInput, Mapping[str, Any]], Iterable[Found]]


@dataclass(frozen=True)
class CheckDef:
    """A registered check: its function, the criterion it judges, its measures and params."""

    name: str
    criterion: str
    scope: Scope
    measures: dict[str, Measure]
    defaults: dict[str, Any]
    fn: Callable[..., Iterable[Found]]
    doc: str
    # Set for an order-dependent batch check (it compares a sample with the earlier ones): what
    # it needs of the sample, computed anywhere (a worker) and put in its `cache` when it runs.
    prepare: Callable[[CheckInput], dict[str, Any]] | None = None
    # Whether the check can measure anything of a sample (its inputs are there: pixels, the
    # generator's foreground); a check that cannot is not called. None: always called.
    applies: Callable[[CheckInput], bool] | None = None


CHECKS: dict[str, CheckDef] = {}


def register(
    name: str,
    *,
    measures: Iterable[Measure],
    defaults: Mapping[str, Any] | None = None,
    scope: Scope = "sample",
    prepare: Callable[[CheckInput], dict[str, Any]] | None = None,
    applies: Callable[[CheckInput], bool] | None = None,
) -> Callable[[Callable[..., Iterable[Found]]], Callable[..., Iterable[Found]]]:
    """Register a check under `<criterion>_<what>`; `defaults` lists every param it accepts.

    `prepare` marks a batch check, whose result depends on the samples judged before: it runs
    per sample (validators/measure.py), the check itself in sample order, reading the cache.
    `applies` says cheaply when the check would measure nothing (its inputs are missing), so
    that it is not run at all: a label-only file never calls the pixel checks.
    """
    criterion = name.split("_", 1)[0]
    if criterion not in CRITERIA or "_" not in name:
        raise ValueError(f"check {name!r}: name it <criterion>_<what>, criterion in {CRITERIA}")

    def decorate(fn: Callable[..., Iterable[Found]]) -> Callable[..., Iterable[Found]]:
        if name in CHECKS:
            raise ValueError(f"check {name!r} is registered twice")
        CHECKS[name] = CheckDef(
            name=name,
            criterion=criterion,
            scope=scope,
            measures={m.name: m for m in measures},
            defaults=dict(defaults or {}),
            fn=fn,
            doc=(fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "",
            prepare=prepare,
            applies=applies,
        )
        return fn

    return decorate


def run_check(
    check: CheckDef, subject: Any, params: Mapping[str, Any], *, objects: int = 0, spans: int = 0
) -> list[Found]:
    """Run a check and hold it to the contract; a broken measurement is a bug, not a finding."""
    found = list(check.fn(subject, params))
    for m in found:
        if isinstance(m, ObjectMeasurements):
            _check_columns(check, m, objects)
            continue
        if m.measure not in check.measures:
            raise RuntimeError(f"check {check.name} measured undeclared {m.measure!r}")
        if not isinstance(m.value, int | float) or not math.isfinite(m.value):
            raise RuntimeError(f"check {check.name}: {m.measure} is not a finite number: {m.value}")
        if m.object_index is not None and not 0 <= m.object_index < objects:
            raise RuntimeError(f"check {check.name}: object_index {m.object_index} out of range")
        if m.span_index is not None and not 0 <= m.span_index < spans:
            raise RuntimeError(f"check {check.name}: span_index {m.span_index} out of range")
    return found


def _check_columns(check: CheckDef, m: ObjectMeasurements, objects: int) -> None:
    """The contract, column by column: the first broken row is named as `run_check` would."""
    undeclared = [name for name in m.measures if name not in check.measures]
    if undeclared:
        raise RuntimeError(f"check {check.name} measured undeclared {undeclared[0]!r}")
    rows = len(m.values)
    which = m.which
    lined_up = len(m.objects) == rows and (
        len(m.measures) == 1 if which is None else len(which) == rows
    )
    if not lined_up or (
        which is not None and rows and (which.min() < 0 or which.max() >= len(m.measures))
    ):
        raise RuntimeError(f"check {check.name}: measurement columns do not line up")
    if not rows:
        return
    if not math.isfinite(m.values.sum()):  # a sum is finite only if every value is (or huge)
        broken = np.flatnonzero(~np.isfinite(m.values))
        if len(broken):
            k = int(broken[0])
            raise RuntimeError(
                f"check {check.name}: {m.measure_of(k)} is not a finite number: {m.values[k]}"
            )
    if m.objects.min() < 0 or m.objects.max() >= objects:
        k = int(np.flatnonzero((m.objects < 0) | (m.objects >= objects))[0])
        raise RuntimeError(f"check {check.name}: object_index {m.objects[k]} out of range")
