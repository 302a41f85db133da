"""Class and attribute deficits of a real dataset, and the synthetic quotas that fill them.

`class_counts(coco)` / `label_counts(rows, …)` count what a dataset holds; `class_targets(counts,
target, …)` says how many each class should hold under a strategy (`max`, `median`, an integer,
a YAML of per-class targets, or LVIS `repeat_factor`); `deficits` is the difference;
`assign_attributes` spreads new samples over attribute values (locale, gender, prompt
attributes) so that each group approaches its target share, or, with `LabelGroups`, so that the
label rate per group draws together first (`attribute_goal="label_parity"`, what text balancing
asks for); `plan_specs` turns all of it into the list of `SampleSpec`s the pipeline runs.
`BalanceConfig` is the `--config` file of `synthgate balance`. Everything here is a pure
function of its inputs.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral
from os import PathLike
from pathlib import Path
from statistics import median
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from synthgate.arguments import home_expanded, path_argument
from synthgate.config import MAX_COUNT, PACKAGE_ROOT, path_as_text
from synthgate.errors import InputError, quoted, validation_message
from synthgate.samples import Modality, SampleSpec, sample_seed
from synthgate.yaml_files import load_yaml, written_as_number

NAMED_TARGETS = ("max", "median", "repeat_factor")


class BalanceConfig(BaseModel):
    """`synthgate balance --config FILE`: how far to raise which classes, and with what."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("balance", min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    seed: int = Field(0, ge=0)
    # max | median | repeat_factor | N | path of a YAML | that YAML's mapping of class: target
    target: str | int | dict[Any, Any] = "median"
    repeat_threshold: float = Field(0.001, gt=0.0, le=1.0)  # LVIS t
    classes: list[str] | None = None  # raise only these (default: every class)
    max_new_per_class: int | None = Field(None, ge=0)
    # Attribute targets: axis -> values (equal shares) or value -> share.
    attributes: dict[str, list[str] | dict[str, float]] = Field(default_factory=dict)
    # Generator sections (a mapping, or a list to mix generators); the plan fills in their count
    # (one of their own is refused: _refuse_section_counts) and copy_paste's inputs.
    image: dict[str, Any] | list[dict[str, Any]] | None = None
    text: dict[str, Any] | list[dict[str, Any]] | None = None
    augment: Path | None = None  # albumentations YAML applied to synthetic images
    # Rubric name (configs/rubrics/<name>.yaml) or path for every generator section that names
    # none [default: the generator's own: detection for images, classification for rewrites].
    rubric: str | None = None
    skip_invalid: bool = False

    @field_validator("seed", "repeat_threshold", "max_new_per_class", mode="before")
    @classmethod
    def _numbers_as_numbers(cls, value: Any) -> Any:
        """`seed: yes` is no seed of 1, nor `max_new_per_class: '3'` a 3 (as in run configs)."""
        return value if value is None else written_as_number(value)

    @field_validator("target", mode="before")
    @classmethod
    def _target_not_a_boolean(cls, value: Any) -> Any:
        """`target: yes` is no target of 1 (a text is a strategy's name, a number or a file);
        a `pathlib.Path` is a file, as `balance(target=...)` takes one; a mapping of class:
        target is checked with the dataset's classes (`class_targets`), as `target=`'s is."""
        if isinstance(value, Mapping):
            return target_mapping(value)
        return written_as_number(value) if isinstance(value, bool) else path_as_text(value)

    @field_validator("rubric", mode="before")
    @classmethod
    def _rubric_path_as_text(cls, value: Any) -> Any:
        return path_as_text(value)


def load_balance_config(source: Any) -> BalanceConfig:
    """The balance config: defaults (None), a YAML path, or the config as a mapping (relative
    paths in a mapping are taken from the working directory)."""
    if source is None:
        return BalanceConfig.model_validate({})
    path = Path("<config>") if isinstance(source, Mapping) else path_argument(source, "config")
    if isinstance(source, Mapping):
        data: Any = dict(source)
    elif not path.is_file():
        raise InputError(
            field="config", value=path, problem="file not found; pass a balance config YAML"
        )
    else:
        data = load_yaml(path, what="balance config") or {}
    _refuse_wrong_shapes(data, path)
    try:
        config = BalanceConfig.model_validate(data)
    except ValidationError as error:
        raise InputError(validation_message(error, source=path)) from None
    for modality in ("image", "text"):
        if getattr(config, modality) == []:  # ran no generator: every class left short, unsaid
            raise InputError(
                f"{path}: {modality}: lists no generator section; list one or more "
                f"({modality}: [{{generator: ...}}]), or leave {modality} out for the default"
            )
        _refuse_section_counts(getattr(config, modality), modality, path)
    try:  # shares that are no shares, before the dataset is read (and said with the file)
        attribute_shares(config.attributes)
    except InputError as error:
        raise InputError(f"{path}: {error}") from None
    if config.augment is not None:
        config.augment = augment_file(config.augment, path if path.is_file() else None)
    return config


def _refuse_section_counts(
    value: dict[str, Any] | list[dict[str, Any]] | None, modality: str, path: Path
) -> None:
    """A generator section's `count`, which a balance never reads: the plan sets each section's
    count from the deficits (a run config's `count: 500` was silently replaced by them)."""
    sections = value if isinstance(value, list) else [] if value is None else [value]
    for turn, section in enumerate(sections):
        if "count" in section:
            where = f"{modality}[{turn}]" if isinstance(value, list) else modality
            raise InputError(
                f"{path}: {where}.count: a balance decides how many samples each generator "
                "section makes (each class's deficit below the target, shared between the "
                "sections); remove count, and set target or max_new_per_class to make more or "
                "fewer"
            )


def _refuse_wrong_shapes(data: Any, path: Path) -> None:
    """A config, a generator section or a target of the wrong kind, said in the user's words:
    pydantic names the members of a union (`image.dict[str,any]`, `target.str`) and its model."""
    if not isinstance(data, Mapping):
        raise InputError(
            f"{path}: a balance config must be a YAML mapping (got {type(data).__name__})"
        )
    for modality in ("image", "text"):
        value = data.get(modality)
        sections = value if isinstance(value, list | tuple) else [value]  # a mapping's tuple
        if value is not None and not all(isinstance(v, Mapping) for v in sections):
            raise InputError(
                f"{path}: {modality}: must be a generator section (a mapping such as "
                f"{{generator: {'copy_paste' if modality == 'image' else 'counterfactual'}}}) or "
                f"a list of them (got {quoted(value)})"
            )
    attributes = data.get("attributes")
    for axis, values in attributes.items() if isinstance(attributes, Mapping) else ():
        if not isinstance(values, list | tuple | Mapping):
            raise InputError(
                f"{path}: attributes.{axis}: must be a list of values (equal shares) or a "
                f"mapping value: share (got {quoted(values)})"
            )
        named = [v for v in values if not isinstance(v, str)]  # age: [18, 30]
        if named:
            first = named[0]
            if isinstance(first, bool):
                fix = "quote it (YAML reads yes, no, on, off, true and false as booleans)"
            elif isinstance(first, int | float):
                fix = f"quote a number, like '{first}'"
            else:
                fix = "write each value as text"
            raise InputError(
                f"{path}: attributes.{axis}: its values are names, written as text (got "
                f"{quoted(first)}); {fix}"
            )
        for value, share in values.items() if isinstance(values, Mapping) else ():
            try:
                written_as_number(share)
            except ValueError as error:
                raise InputError(
                    f"{path}: attributes.{axis}.{value}: {error} (got {quoted(share)})"
                ) from None
    target = data.get("target")
    whole = isinstance(target, Integral) or (isinstance(target, float) and target.is_integer())
    if target is not None and not (isinstance(target, str | PathLike | Mapping) or whole):
        raise InputError(
            f"{path}: target: must be max, median, repeat_factor, a whole number or a mapping "
            f"class: target (or the path of a YAML of one) (got {quoted(target)})"
        )


def augment_file(augment: Path, config_file: Path | None) -> Path:
    """The pipeline file a balance config's `augment` names: a relative path beside the config
    file (from the working directory for a mapping), else a shipped one, from any folder (what
    light.yaml's header says to write: `augment: configs/augment/light.yaml`). Checked here,
    before any work: it was "file not found" once every real image was checked, the plan made."""
    augment = home_expanded(augment)
    found = augment
    if config_file is not None and not augment.is_absolute():
        found = config_file.resolve().parent / augment
    if not found.is_file() and not augment.is_absolute() and (PACKAGE_ROOT / augment).is_file():
        found = PACKAGE_ROOT / augment
    if not found.is_file():
        where = "the config's folder" if config_file is not None else "the working directory"
        raise InputError(
            f"{config_file or '<config>'}: augment: {augment}: "
            + (
                "is a folder"
                if found.is_dir()
                else f"file not found (a relative path is taken from {where})"
            )
            + "; name an albumentations YAML, e.g. configs/augment/light.yaml, or save one "
            "with albumentations.save(transform, path, data_format='yaml')"
        )
    return found


@dataclass(frozen=True)
class ClassCount:
    """How much of a class a dataset holds: instances (or rows) and images holding it."""

    instances: int
    images: int


def class_counts(coco: dict[str, Any]) -> dict[str, ClassCount]:
    """Per category name, in file order: non-crowd instances and images holding one (0s kept)."""
    names = {c["id"]: c["name"] for c in coco["categories"]}
    instances: Counter[str] = Counter()
    images: dict[str, set[Any]] = {name: set() for name in names.values()}
    for annotation in coco["annotations"]:
        if annotation.get("iscrowd", 0):
            continue  # crowd regions are not countable instances (and are never pasted)
        name = names[annotation["category_id"]]
        instances[name] += 1
        images[name].add(annotation["image_id"])
    return {name: ClassCount(instances[name], len(images[name])) for name in names.values()}


def label_counts(rows: list[dict[str, Any]], *, label_field: str) -> dict[str, ClassCount]:
    """Per document label, in order of first appearance: rows holding it (a row is an 'image')."""
    counts = Counter(str(row[label_field]) for row in rows)
    return {label: ClassCount(n, n) for label, n in counts.items()}


def parse_target(value: str | int, *, base: Path | None = None) -> str | int | Path:
    """A CLI/config target: a strategy name, a positive integer, or a YAML path (a relative one
    taken from the folder `base`, else from the working directory)."""
    if isinstance(value, int):
        if value <= 0:
            raise InputError(field="target", value=value, problem="an integer target must be > 0")
        if value > MAX_COUNT:
            raise InputError(
                field="target", value=value, problem=f"is more than a batch holds ({MAX_COUNT})"
            )
        return value
    text = str(value).strip()
    if text in NAMED_TARGETS:
        return text
    digits = text.removeprefix("-")
    if digits.isdecimal():  # what int() reads ("²" is a digit, not a decimal)
        if text.startswith("-"):
            raise InputError(
                field="target", value=text[:20], problem="an integer target must be > 0"
            )
        # int() refuses over 4,300 digits: say why first (leading zeros add nothing)
        if len(digits.lstrip("0")) > len(str(MAX_COUNT)):
            raise InputError(
                field="target",
                value=f"{text[:20]}... ({len(text)} digits)",
                problem=f"is more than a batch holds ({MAX_COUNT})",
            )
        return parse_target(int(digits.lstrip("0") or "0"))
    path = home_expanded(Path(text))  # ~/t.yaml is in the home folder, as a shell reads it
    path = path if base is None else base / path  # an absolute one stays as it is
    if path.suffix in (".yaml", ".yml", ".json") or path.exists():
        if not path.is_file():
            raise InputError(
                field="target",
                value=text if base is None else path,  # where it was looked for
                problem="file not found; give a YAML of class: target",
            )
        return path
    raise InputError(
        field="target",
        value=repr(text),
        problem="choose max, median, repeat_factor, a positive integer, "
        "or the path of a YAML mapping class: target",
    )


Target = str | int | Path | dict[Any, Any]
"""What a balance runs to: a strategy name, an integer, a YAML of class: target, or that
mapping itself (`balance(target={"dog": 50})`), checked as the file's content is."""


def target_mapping(given: Mapping[Any, Any]) -> dict[Any, Any]:
    """A copy of a mapping of class: target, its classes and values checked later with the
    dataset's classes (`class_targets`); a notebook's NumPy counts (value_counts) as Python's
    ints, as a YAML's are."""
    return {
        name: int(value) if isinstance(value, Integral) and not isinstance(value, bool) else value
        for name, value in given.items()
    }


def balance_target(
    given: str | int | Path | Mapping[Any, Any] | None,
    config: BalanceConfig,
    *,
    source: Path | None,
) -> Target:
    """The target a balance runs to: `given` (the `target` argument, a path taken from the working
    directory; a mapping of class: target, a copy kept), else the balance config's `target` key
    (`source`: the config's file; None for a mapping). Errors in the config's name its file and
    key, not a `target` nobody passed, and a relative path is taken from the config's folder, as
    `augment` is."""
    if isinstance(given, Mapping):
        return target_mapping(given)
    if given is not None:
        return parse_target(str(given))
    if isinstance(config.target, dict):
        return dict(config.target)
    try:
        return parse_target(config.target, base=source.resolve().parent if source else None)
    except InputError as error:
        raise InputError(
            f"{source or '<config>'}: target: {error.problem} (got {error.value})"
        ) from None


def target_named(given: Any, source: Path | None) -> str:
    """Where a balance's target came from, as its errors name it: the `target` argument when
    one is `given`, else the balance config's key (`source`: its file; None for a mapping)."""
    return "target" if given is not None else f"{source or '<config>'}: target"


def _targets_from_file(path: Path, counts: dict[str, ClassCount]) -> dict[str, int]:
    data = load_yaml(path, what="per-class targets file")
    if not isinstance(data, dict):
        raise InputError(f"{path}: per-class targets must be a mapping class: target")
    return _checked_targets(data, counts, source=path)


def _checked_targets(
    data: dict[Any, Any], counts: dict[str, ClassCount], *, source: Path | str
) -> dict[str, int]:
    """Per-class targets, a file's content or a `target` mapping (`source`: the file, or
    'target'), refused where a class is not the dataset's or a target no count of instances."""
    unknown = sorted(str(k) for k in data if str(k) not in counts)
    if unknown:
        raise InputError(
            f"{source}: unknown class(es) {unknown}{_written_otherwise(unknown, counts)}; the "
            f"dataset's classes are {sorted(counts)}"
        )
    bad = {k: v for k, v in data.items() if not isinstance(v, int) or isinstance(v, bool) or v < 0}
    if bad:
        raise InputError(f"{source}: targets must be integers >= 0 (got {bad})")
    # as `--target N` is: a plan is held in memory before it runs, and a sample's index is 32-bit
    too_many = {str(k): v for k, v in data.items() if v > MAX_COUNT}
    if too_many:
        raise InputError(
            f"{source}: target(s) {too_many} are more than a batch holds ({MAX_COUNT}); lower them"
        )
    return {str(k): int(v) for k, v in data.items()}


def class_targets(
    counts: dict[str, ClassCount],
    target: Target,
    *,
    image_count: int,
    repeat_threshold: float = 0.001,
    named: str = "target",
) -> dict[str, int]:
    """How many instances each class should hold; classes without a target keep their count.
    `named`: where a mapping of class: target came from, as its errors name it (`target_named`).

    `median` is taken over the classes present (a class with no instance has nothing to say
    about a typical class). `repeat_factor` follows LVIS: with f(c) the fraction of images
    holding c, r(c) = max(1, sqrt(t / f(c))), and the target is ceil(r(c) × instances(c)), the
    instances repeat-factor sampling would show per epoch.
    """
    present = [c.instances for c in counts.values() if c.instances > 0]
    if isinstance(target, Path | dict):
        chosen = (
            _targets_from_file(target, counts)
            if isinstance(target, Path)
            else _checked_targets(target, counts, source=named)
        )
        return {name: chosen.get(name, count.instances) for name, count in counts.items()}
    if isinstance(target, int):
        return dict.fromkeys(counts, target)
    if target == "max":
        return dict.fromkeys(counts, max(present, default=0))
    if target == "median":
        return dict.fromkeys(counts, math.ceil(median(present)) if present else 0)
    targets = {}
    for name, count in counts.items():
        if count.images == 0 or image_count == 0:
            targets[name] = 0
            continue
        factor = max(1.0, math.sqrt(repeat_threshold / (count.images / image_count)))
        targets[name] = math.ceil(factor * count.instances - 1e-9)
    return targets


def check_classes(
    classes: list[str] | None, counts: dict[str, ClassCount], *, source: Path | str
) -> None:
    """Refuse a balance config's `classes` entry the dataset lacks (`source`: the config): a
    misspelt name would otherwise raise nothing and the balance add nothing, exit 0."""
    unknown = sorted({name for name in classes or [] if name not in counts})
    if unknown:
        raise InputError(
            f"{source}: classes: unknown class(es) {unknown}"
            f"{_written_otherwise(unknown, counts)}; the dataset's classes are {sorted(counts)}"
        )


def _written_otherwise(unknown: list[str], counts: Mapping[str, Any]) -> str:
    """How the dataset writes the unknown names that are one of its classes in another case or
    Unicode form: " (the dataset writes 'Bear' as 'bear', 'caf\\xe9' as 'cafe\\u0301')". Forms
    that look the same on screen are shown escaped, so the difference can be seen."""

    def key(name: str) -> str:
        return unicodedata.normalize("NFC", name).casefold()

    known = {key(name): name for name in counts}
    said = []
    for name in unknown:
        theirs = known.get(key(name))
        if theirs is not None:
            same_look = unicodedata.normalize("NFC", name) == unicodedata.normalize("NFC", theirs)
            shown = ascii if same_look else repr
            said.append(f"{shown(name)} as {shown(theirs)}")
    return f" (the dataset writes {', '.join(said)})" if said else ""


def unplanned_reasons(
    names: list[str], *, classes: list[str] | None, max_new_per_class: int | None
) -> dict[str, str]:
    """Per class, why `deficits` gave it less than it lacks, where it did: the config's
    `classes` leave it out, else `max_new_per_class` caps it."""
    return {
        name: "not among the config's classes"
        if classes is not None and name not in classes
        else f"max_new_per_class is {max_new_per_class}"
        for name in names
    }


def deficits(
    counts: dict[str, ClassCount],
    targets: dict[str, int],
    *,
    classes: list[str] | None = None,
    max_new_per_class: int | None = None,
) -> dict[str, int]:
    """Instances each class lacks (0 when at or above target), capped, for the chosen classes."""
    result = {}
    for name, count in counts.items():
        lack = max(0, targets.get(name, 0) - count.instances)
        if classes is not None and name not in classes:
            lack = 0
        if max_new_per_class is not None:
            lack = min(lack, max_new_per_class)
        result[name] = lack
    # Each class may be within a batch and all of them together not (`plan_specs` would build
    # them all in memory first): refused before any work, like a class's own target.
    total = sum(result.values())
    if total > MAX_COUNT:
        largest = dict(sorted(result.items(), key=lambda item: -item[1])[:5])
        raise InputError(
            f"the classes lack {total} instances in all ({largest} the most), more than a batch "
            f"holds ({MAX_COUNT}); lower the target, or set max_new_per_class or classes in the "
            "balance config"
        )
    return result


def attribute_shares(axes: dict[str, list[str] | dict[str, float]]) -> dict[str, dict[str, float]]:
    """Normalised target shares per axis: a list means equal shares."""
    shares = {}
    for axis, values in axes.items():
        weights = dict.fromkeys(values, 1.0) if isinstance(values, list) else dict(values)
        total = sum(weights.values())
        if not weights or total <= 0 or any(w < 0 for w in weights.values()):
            raise InputError(f"attributes.{axis}: give values or positive shares (got {values!r})")
        shares[axis] = {value: weight / total for value, weight in weights.items()}
    return shares


AttributeGoal = Literal["shares", "label_parity"]


class LabelGroups:
    """One attribute axis's rows per group and label (`rows[value][label]`), as the bias report
    counts them: the gap of a label is the largest difference in its rate between two groups.

    `gaps_with_each` weighs every candidate value of one new row in one pass over the labels
    and groups (rows per group and the labels are kept as rows come): a plan of n rows over V
    values and L labels costs O(n V L), where asking per candidate cost O(n V^2 L) (3,000 rows,
    10 locales, 30 labels: 5.4 s).
    """

    def __init__(self, rows: dict[str, Counter[str]]) -> None:
        self.rows = rows
        self.totals = Counter({value: sum(counts.values()) for value, counts in rows.items()})
        self.labels = set().union(*rows.values())

    @classmethod
    def of(cls, existing: Mapping[str, Mapping[str, Counter[str]]], axis: str) -> LabelGroups:
        """The groups of `axis` in `existing[label][axis][value]` (every class's rows)."""
        rows: dict[str, Counter[str]] = {}
        for label, axes in existing.items():
            for value, n in axes.get(axis, Counter()).items():
                if n > 0:
                    rows.setdefault(value, Counter())[label] += n
        return cls(rows)

    def add(self, label: str, value: str) -> None:
        self.rows.setdefault(value, Counter())[label] += 1
        self.totals[value] += 1
        self.labels.add(label)

    def gaps_with_each(self, label: str, values: list[str]) -> dict[str, tuple[float, float]]:
        """For each of `values`: the largest gap, and the sum of every label's gap, were one row
        (`label`, value) added; rounded, so that values equal but for float error tie. Only the
        value's own group moves: each label's other groups are read once, as their two highest
        and two lowest rates."""
        largest = dict.fromkeys(values, 0.0)
        summed = dict.fromkeys(values, 0.0)
        for each in self.labels | {label}:
            rates = sorted(
                (counts[each] / self.totals[value], value) for value, counts in self.rows.items()
            )
            for value in values:
                counts = self.rows.get(value, Counter())
                moved = (counts[each] + (each == label)) / (self.totals[value] + 1)
                others = [rate for rate, group in rates[:2] + rates[-2:] if group != value]
                gap = max([moved, *others]) - min([moved, *others])
                largest[value] = max(largest[value], gap)
                summed[value] += gap
        return {value: (round(largest[value], 9), round(summed[value], 9)) for value in values}


def assign_attributes(
    n: int,
    shares: dict[str, dict[str, float]],
    existing: dict[str, Counter[str]] | None = None,
    *,
    seen: dict[str, Counter[str]] | None = None,
    parity: tuple[str, dict[str, LabelGroups]] | None = None,
    limits: dict[str, dict[str, int]] | None = None,
) -> list[dict[str, str]]:
    """Attribute values for `n` new samples that bring each axis closest to its target shares.

    Greedy per axis: each new sample takes a value a whole sample or more below its share of
    the total so far, counting what the data already holds (`existing[axis][value]`); where
    none is, the value furthest below its share of everything `seen` (this call adds the
    existing and new values to it: a plan passes one across its classes), then the one listed
    first, so the result is deterministic. Each class stays within a sample of its shares, and
    a plan of many classes short of a sample or two does not give them all the first value.
    Without `seen`, the two gaps are the same: the value furthest below its share.

    `parity` (the samples' label, and every class's rows per group of each axis) ranks values
    by the label-rate gap between groups they leave first (the largest, then the sum over
    labels), and by the shares only among values that leave the same gap: a class raised to
    equal shares while a class at its target keeps its own mix moves its rate past the other
    groups' (the gap grows), and rows of one group fill a gap the class's shares never see. The
    new values are added to `parity`'s groups.

    `limits[axis][value]`: at most that many new samples take the value (what the generator can
    make of it: a class whose rows flip only to male); a value without one is not limited, and
    once every value is at its limit, all are open again.
    """
    existing = existing or {}
    seen = {} if seen is None else seen
    assigned: list[dict[str, str]] = [{} for _ in range(n)]
    for axis, targets in shares.items():
        held = existing.get(axis, Counter())
        counts = Counter({v: held.get(v, 0) for v in targets})
        total = sum(held.values())
        overall = seen.setdefault(axis, Counter())
        overall.update(held)
        overall_total = sum(overall.values())
        label, groups = (None, None) if parity is None else (parity[0], parity[1].get(axis))
        limit = (limits or {}).get(axis, {})
        taken: Counter[str] = Counter()
        for item in assigned:
            total += 1
            overall_total += 1
            gaps = {
                v: _gaps(share, total, counts[v], overall_total, overall[v])
                for v, share in targets.items()
            }
            values = [v for v in targets if v not in limit or taken[v] < limit[v]] or list(targets)
            if groups is None or label is None:
                value = max(values, key=gaps.__getitem__)
            else:
                moved = groups.gaps_with_each(label, values)
                value = min(values, key=lambda v: (moved[v], tuple(-g for g in gaps[v])))
                groups.add(label, value)
            taken[value] += 1
            counts[value] += 1
            overall[value] += 1
            item[axis] = value
    return assigned


def _gaps(
    share: float, total: int, count: int, overall_total: int, overall: int
) -> tuple[int, float, float]:
    """How far a value lies below its share: whole samples in its class, then of all seen, then
    in its class (the order `assign_attributes` ranks values in)."""
    gap = share * total - count
    return math.floor(gap + 1e-9), share * overall_total - overall, gap


def plan_specs(
    lacking: dict[str, int],
    *,
    batch_id: str,
    seed: int,
    modality: Modality,
    generator: str,
    instances_per_sample: int = 1,
    shares: dict[str, dict[str, float]] | None = None,
    existing: dict[str, dict[str, Counter[str]]] | None = None,
    attribute_goal: AttributeGoal = "shares",
    limits: dict[str, dict[str, dict[str, int]]] | None = None,
) -> list[SampleSpec]:
    """The balancing plan: one spec per synthetic sample, classes in order, indices 0..n-1.

    An image spec asks for up to `instances_per_sample` instances of its class (params
    `instances`), the last one of a class for the remainder, so the plan adds exactly the
    deficit. Attribute values follow `shares` (`existing[class][axis][value]`: what each class
    holds); with `attribute_goal="label_parity"`, they narrow the gap between the groups' label
    rates first, counting every class, those at their target too (`assign_attributes`).
    `limits[class][axis][value]`: at most that many of the class's samples take the value.
    """
    specs: list[SampleSpec] = []
    seen: dict[str, Counter[str]] = {}  # attribute values of the classes planned so far
    groups = (
        {axis: LabelGroups.of(existing or {}, axis) for axis in shares or {}}
        if attribute_goal == "label_parity"
        else None
    )
    for category, lack in lacking.items():
        sizes = []
        remaining = lack
        while remaining > 0:
            sizes.append(min(instances_per_sample, remaining))
            remaining -= sizes[-1]
        attributes = assign_attributes(
            len(sizes),
            shares or {},
            (existing or {}).get(category, {}),
            seen=seen,
            parity=None if groups is None else (category, groups),
            limits=(limits or {}).get(category),
        )
        for size, chosen in zip(sizes, attributes, strict=True):
            index = len(specs)
            specs.append(
                SampleSpec(
                    batch_id=batch_id,
                    index=index,
                    modality=modality,
                    generator=generator,
                    category=category,
                    attributes=chosen,
                    params={"instances": size} if modality == "image" else {},
                    seed=sample_seed(seed, modality, index),
                )
            )
    return specs


def split_deficits(lacking: dict[str, int], parts: int) -> list[dict[str, int]]:
    """Each class's deficit shared between `parts` generators (the first ones take the rest)."""
    return [
        {name: lack // parts + (1 if turn < lack % parts else 0) for name, lack in lacking.items()}
        for turn in range(parts)
    ]
