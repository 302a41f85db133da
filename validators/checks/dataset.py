"""Checks of a whole COCO dataset: it loads in pycocotools, ids are unique, references resolve,
and the class distribution meets the requested quotas.

They run once per dataset (scope "dataset"), not per sample, over a `DatasetTally`: what the
checks need of a COCO file, accumulated entry by entry as the file is read or written (ids seen,
missing fields, references, class counts), so a run folder is judged while it is streamed out
and a file larger than memory while it is streamed in, never by reading a written file back.
`DatasetTally.of(coco)` tallies a COCO dict at once. Findings go into the dataset part of a
validation summary; malformed entries are counted and named, never raised.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthgate.errors import counted, quoted
from synthgate.formats.coco import image_file_name, size_of, whole_id
from synthgate.validators.checks.base import Measure, Measurement, register

SECTIONS = ("images", "annotations", "categories")
REQUIRED = {
    "images": ("id", "width", "height", "file_name"),
    "annotations": ("id", "image_id", "category_id", "bbox"),
    "categories": ("id", "name"),
}
# The keys pycocotools' COCO.createIndex looks up in every entry: a missing or unhashable one
# stops it from indexing the file.
INDEXED = {
    "images": ("id",),
    "annotations": ("image_id", "id", "category_id"),
    "categories": ("id",),
}
EXAMPLES = 5


# The singular of each section's name, for a count of one ("1 image has", "2 images have").
SINGULAR = {"images": "image", "annotations": "annotation", "categories": "category"}


def _examples(values: list[Any], total: int | None = None) -> str:
    total = len(values) if total is None else total
    shown = ", ".join(str(v) for v in values[:EXAMPLES])
    return shown + (f" … (+{total - EXAMPLES})" if total > EXAMPLES else "")


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


INT64 = (-(2**63), 2**63 - 1)


def _int64(value: Any) -> bool:
    return type(value) is int and INT64[0] <= value <= INT64[1]


class _Values:
    """A multiset of hashable values, compact for what COCO ids nearly always are: int64s go
    into an array (8 bytes each), anything else into a Counter."""

    def __init__(self) -> None:
        self.ints = array("q")
        self.others: Counter[Any] = Counter()
        self._sorted: np.ndarray | None = None

    def add(self, value: Any) -> None:
        value = whole_id(value)  # 3.0 is 3, as pycocotools indexes it: a repeat of 3
        if _int64(value):
            self.ints.append(value)
        else:
            self.others[value] += 1
        self._sorted = None

    def extend(self, values: np.ndarray) -> None:
        """Many int64 values at once."""
        self.ints.frombytes(np.ascontiguousarray(values, dtype=np.int64).tobytes())
        self._sorted = None

    def repeated(self) -> list[Any]:
        """The values seen more than once."""
        values, counts = np.unique(np.frombuffer(self.ints, dtype=np.int64), return_counts=True)
        twice = [int(v) for v in values[counts > 1]]
        return twice + [value for value, n in self.others.items() if n > 1]

    def holds(self, values: np.ndarray) -> np.ndarray:
        """Which of the int64 `values` were seen (vectorised)."""
        if self._sorted is None:
            self._sorted = np.unique(np.frombuffer(self.ints, dtype=np.int64))
        found = np.isin(values, self._sorted)
        if self.others:  # 1.0 == 1: a float id still names the int
            found |= np.array([int(v) in self.others for v in values], dtype=bool)
        return found

    def __contains__(self, value: Any) -> bool:
        if value in self.others:
            return True
        if isinstance(value, float) and value.is_integer():  # 1.0 == 1, as in a dict
            value = int(value)
        return _int64(value) and bool(self.holds(np.array([value], dtype=np.int64))[0])


@dataclass
class _Section:
    """What the checks keep of one list of a COCO file."""

    present: bool = False
    count: int = 0
    broken: list[Any] = field(default_factory=list)  # entries lacking a required field
    broken_count: int = 0
    ids: _Values = field(default_factory=_Values)
    # ids there but not integers ("7", 7.0, true): pycocotools indexes them, yet no annotation's
    # int image_id finds "7", and balance, merge and export refuse them (coco_checks.py)
    other_ids: list[Any] = field(default_factory=list)  # the first few
    other_id_count: int = 0


class _References:
    """Each annotation's (id, image_id, category_id): three int64 arrays, and a list for the
    triples that are not all int64."""

    def __init__(self) -> None:
        self.columns = (array("q"), array("q"), array("q"))
        self.others: list[tuple[Any, Any, Any]] = []

    def add(self, triple: tuple[Any, Any, Any]) -> None:
        if all(_int64(v) for v in triple):
            for column, value in zip(self.columns, triple, strict=True):
                column.append(value)
        else:
            self.others.append(triple)

    def extend(self, ids: np.ndarray, image_ids: np.ndarray, category_ids: np.ndarray) -> None:
        """Many all-int64 triples at once, as three columns."""
        for column, values in zip(self.columns, (ids, image_ids, category_ids), strict=True):
            column.frombytes(np.ascontiguousarray(values, dtype=np.int64).tobytes())

    def dangling(self, position: int, known: _Values) -> list[Any]:
        """Ids of the annotations whose value at `position` (1 image, 2 category) is unknown."""
        values = np.frombuffer(self.columns[position], dtype=np.int64)
        ids = np.frombuffer(self.columns[0], dtype=np.int64)
        found = [int(v) for v in ids[~known.holds(values)]] if len(values) else []
        return found + [
            t[0] for t in self.others if not _hashable(t[position]) or t[position] not in known
        ]


@dataclass
class DatasetTally:
    """The dataset checks' view of a COCO file, fed section by section in any order."""

    sections: dict[str, _Section] = field(
        default_factory=lambda: {key: _Section() for key in SECTIONS}
    )
    category_names: Counter[str] = field(default_factory=Counter)
    names_by_id: dict[Any, Any] = field(default_factory=dict)
    # Why pycocotools could not index the file: the first reason of each section.
    index_errors: dict[str, str] = field(default_factory=dict)
    references: _References = field(default_factory=_References)
    quota_classes: Counter[str] = field(default_factory=Counter)  # images[].synthgate.category
    # Images whose width or height is there but no number of pixels ("640", null, 0): their
    # polygons cannot be rasterised nor their boxes held to the border, and loaders that
    # compare or divide by the size fail (pycocotools' frPyObjects, Detectron2, FiftyOne).
    bad_sizes: list[tuple[Any, Any]] = field(default_factory=list)  # (id, value), the first few
    bad_size_count: int = 0
    # An image_id or category_id that is a float (7.0): pycocotools finds id 7 by it, readers
    # that type ids as integers refuse it. "image_id 7.0 (annotation 3)", the first few.
    float_references: list[str] = field(default_factory=list)
    float_reference_count: int = 0
    annotation_classes: Counter[Any] = field(default_factory=Counter)  # by category id

    @classmethod
    def of(cls, coco: Mapping[str, Any]) -> DatasetTally:
        """The tally of a whole COCO dict."""
        tally = cls()
        for key in SECTIONS:
            value = coco.get(key)
            if isinstance(value, list):
                tally.add(key, value)
        return tally

    @property
    def index_error(self) -> str | None:
        """Why pycocotools could not index the file: the first reason, sections in file order
        as pycocotools reads them (images, annotations, categories), whatever order they were
        tallied in."""
        return next((self.index_errors[key] for key in SECTIONS if key in self.index_errors), None)

    def add(self, key: str, entries: Iterable[Any]) -> None:
        """Tally entries of one section (`images`, `annotations` or `categories`)."""
        section = self.sections[key]
        section.present = True
        required = REQUIRED[key]
        for entry in entries:
            section.count += 1
            if not isinstance(entry, dict):
                self._index_failed(key, f"TypeError {type(entry).__name__} entry in {key}")
                self._broken(section, f"#{section.count - 1}")
                continue
            missing = [name for name in required if name not in entry]
            if missing == ["file_name"] and image_file_name(entry) is not None:
                missing = []  # LVIS names its images by `coco_url` alone
            if missing:
                self._broken(section, entry.get("id", f"#{section.count - 1}"))
            for name in INDEXED[key]:
                if name not in entry:
                    self._index_failed(key, f"KeyError {name!r}")
                elif not _hashable(entry[name]):
                    self._index_failed(key, f"TypeError unhashable {key} {name}")
            if "id" in entry:
                key_id = entry["id"]
                if type(key_id) is not int:  # bool is a type of its own
                    section.other_id_count += 1
                    if len(section.other_ids) < EXAMPLES:
                        section.other_ids.append(key_id)
                if _hashable(key_id):
                    section.ids.add(key_id)
            getattr(self, f"_{key}")(entry)

    def _broken(self, section: _Section, name: Any) -> None:
        section.broken_count += 1
        if len(section.broken) < EXAMPLES:
            section.broken.append(name)

    def _index_failed(self, key: str, reason: str) -> None:
        self.index_errors.setdefault(key, reason)

    def add_plain_annotations(
        self, ids: np.ndarray, image_ids: np.ndarray, category_ids: np.ndarray
    ) -> None:
        """Tally annotations in bulk, given as int64 columns: entries that are objects with
        every required field whose id, image_id and category_id are int64 values (what `add`
        would find of each, without looking at them one by one)."""
        section = self.sections["annotations"]
        section.present = True
        section.count += len(ids)
        section.ids.extend(ids)
        self.references.extend(ids, image_ids, category_ids)
        values, counts = np.unique(category_ids, return_counts=True)
        for value, count in zip(values.tolist(), counts.tolist(), strict=True):
            self.annotation_classes[value] += count

    def _images(self, image: dict[str, Any]) -> None:
        width, height = image.get("width"), image.get("height")
        if not (type(width) is int and type(height) is int and width > 0 and height > 0):
            bad = [
                image[k] for k in ("width", "height") if k in image and size_of(image[k]) is None
            ]
        else:
            bad = []  # the usual case, without size_of's look at each (100k images: 80 ms)
        if bad:
            self.bad_size_count += 1
            if len(self.bad_sizes) < EXAMPLES:
                self.bad_sizes.append((image.get("id"), bad[0]))
        mark = image.get("synthgate")
        if isinstance(mark, dict) and mark.get("category"):
            self.quota_classes[str(mark["category"])] += 1

    def _annotations(self, annotation: dict[str, Any]) -> None:
        category, image_id = annotation.get("category_id"), annotation.get("image_id")
        self.references.add((annotation.get("id"), image_id, category))
        if type(image_id) is float or type(category) is float:
            self._float_references(annotation)
        self.annotation_classes[category if _hashable(category) else repr(category)] += 1

    def _float_references(self, annotation: dict[str, Any]) -> None:
        for name in ("image_id", "category_id"):
            value = annotation.get(name)
            if type(value) is float:
                self.float_reference_count += 1
                if len(self.float_references) < EXAMPLES:
                    where = quoted(annotation.get("id"))
                    self.float_references.append(f"{name} {value!r} (annotation {where})")

    def _categories(self, category: dict[str, Any]) -> None:
        if "name" in category and _hashable(category["name"]):
            self.category_names[category["name"]] += 1
        if _hashable(category.get("id")):
            self.names_by_id[category.get("id")] = category.get("name")

    def class_counts(self) -> Counter[str]:
        """Samples per quota category (images[].synthgate.category), else annotations per
        class name."""
        if self.quota_classes:
            return Counter(self.quota_classes)
        return Counter(
            {str(self.names_by_id.get(cid, cid)): n for cid, n in self.annotation_classes.items()}
        )


@dataclass
class DatasetInput:
    """What a dataset check sees: the tally of the file and the batch context (quotas)."""

    tally: DatasetTally
    context: Any


@register(
    "correctness_coco_schema",
    measures=[Measure("schema_errors", "entries")],
    scope="dataset",
)
def coco_schema(item: DatasetInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """The file loads in pycocotools and every entry has the fields COCO requires."""
    tally = item.tally
    missing_lists = [key for key in REQUIRED if not tally.sections[key].present]
    if missing_lists:
        yield Measurement(
            "schema_errors", len(missing_lists), f"missing or not a list: {missing_lists}"
        )
    for key, fields in REQUIRED.items():
        section = tally.sections[key]
        if section.broken_count:
            yield Measurement(
                "schema_errors",
                section.broken_count,
                f"{counted(section.broken_count, SINGULAR[key] + ' lacks', key + ' lack')} one of "
                f"{list(fields)}: "
                f"{_examples(section.broken, section.broken_count)}",
            )
    for key in SECTIONS:
        section = tally.sections[key]
        if section.other_id_count:
            shown = [quoted(value) for value in section.other_ids]
            yield Measurement(
                "schema_errors",
                section.other_id_count,
                f"{counted(section.other_id_count, SINGULAR[key] + ' has', key + ' have')} an id "
                "that is not an integer: "
                f"{_examples(shown, section.other_id_count)}; write each as a whole number "
                '(7, not "7" or 7.0): balance, merge and export refuse any other id',
            )
    if tally.float_reference_count:
        yield Measurement(
            "schema_errors",
            tally.float_reference_count,
            counted(
                tally.float_reference_count,
                "image_id or category_id value is not an integer",
                "image_id or category_id values are not integers",
            )
            + ": "
            f"{_examples(tally.float_references, tally.float_reference_count)}; write each "
            "as a whole number (7, not 7.0): pycocotools finds id 7 by 7.0, readers that type "
            "ids as integers refuse it",
        )
    if tally.bad_size_count:
        shown = [f"{key} ({value!r})" for key, value in tally.bad_sizes]
        yield Measurement(
            "schema_errors",
            tally.bad_size_count,
            f"{counted(tally.bad_size_count, 'image has', 'images have')} a width or height "
            "that is not a number of "
            f"pixels > 0: ids {_examples(shown, tally.bad_size_count)}; write each as a whole "
            'number (640, not "640")',
        )
    if missing_lists:
        return
    if tally.index_error is not None:
        yield Measurement(
            "schema_errors", 1, f"pycocotools cannot index the file: {tally.index_error}"
        )


@register(
    "correctness_unique_ids",
    measures=[Measure("duplicate_ids", "ids")],
    scope="dataset",
)
def unique_ids(item: DatasetInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Image, annotation and category ids (and category names) are unique."""
    tally = item.tally
    names = tally.category_names
    for key, field_name, repeated in (
        ("images", "id", tally.sections["images"].ids.repeated()),
        ("annotations", "id", tally.sections["annotations"].ids.repeated()),
        ("categories", "id", tally.sections["categories"].ids.repeated()),
        ("categories", "name", [name for name, n in names.items() if n > 1]),
    ):
        if repeated:
            yield Measurement(
                "duplicate_ids",
                len(repeated),
                f"{key} {field_name}s used more than once: {_examples(repeated)}",
            )


@register(
    "correctness_dangling_references",
    measures=[Measure("dangling_references", "annotations")],
    scope="dataset",
)
def dangling_references(item: DatasetInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Every annotation names an image and a category the file defines."""
    tally = item.tally
    known = {1: tally.sections["images"].ids, 2: tally.sections["categories"].ids}
    for position, what in ((1, "image"), (2, "category")):
        dangling = tally.references.dangling(position, known[position])
        if dangling:
            yield Measurement(
                "dangling_references",
                len(dangling),
                f"{counted(len(dangling), 'annotation names', 'annotations name')} an unknown "
                f"{what}: ids {_examples(dangling)}",
            )


@register(
    "completeness_class_quotas",
    measures=[Measure("quota_shortfall_percent", "%", most=100)],
    scope="dataset",
)
def class_quotas(item: DatasetInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """How far each requested class falls short of its quota (percent of the quota)."""
    quotas = item.context.quotas
    if not quotas:
        return
    counts = item.tally.class_counts()
    for category, wanted in sorted(quotas.items()):
        if wanted <= 0:
            continue
        have = counts.get(category, 0)
        shortfall = max(wanted - have, 0) / wanted * 100.0
        yield Measurement(
            "quota_shortfall_percent",
            round(shortfall, 3),
            f"class {category!r}: {have} of {wanted} requested ({shortfall:.1f} % short)",
        )
