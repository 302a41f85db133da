"""Checks of a whole COCO dataset: it loads in pycocotools, ids are unique, references resolve,
and the class distribution meets the requested quotas.

These run once per file (scope "dataset") on the COCO dict, not per sample; their findings go
into the dataset part of a validation summary. They never raise on malformed entries: every
problem is counted and named.
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pycocotools.coco import COCO

from synthgate.validators.checks.base import Measure, Measurement, register

REQUIRED = {
    "images": ("id", "width", "height", "file_name"),
    "annotations": ("id", "image_id", "category_id", "bbox"),
    "categories": ("id", "name"),
}


@dataclass
class DatasetInput:
    """A COCO dict and the batch context (quotas)."""

    coco: dict[str, Any]
    context: Any


def _entries(coco: dict[str, Any], key: str) -> list[Any]:
    value = coco.get(key)
    return value if isinstance(value, list) else []


def _examples(values: list[Any], limit: int = 5) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f" … (+{len(values) - limit})" if len(values) > limit else "")


@register(
    "correctness_coco_schema",
    measures=[Measure("schema_errors", "entries")],
    scope="dataset",
)
def coco_schema(item: DatasetInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """The file loads in pycocotools and every entry has the fields COCO requires."""
    coco = item.coco
    missing_lists = [key for key in REQUIRED if not isinstance(coco.get(key), list)]
    if missing_lists:
        yield Measurement(
            "schema_errors", len(missing_lists), f"missing or not a list: {missing_lists}"
        )
    for key, fields in REQUIRED.items():
        broken = [
            entry.get("id", f"#{n}") if isinstance(entry, dict) else f"#{n}"
            for n, entry in enumerate(_entries(coco, key))
            if not isinstance(entry, dict) or any(f not in entry for f in fields)
        ]
        if broken:
            yield Measurement(
                "schema_errors",
                len(broken),
                f"{len(broken)} {key} lack one of {list(fields)}: {_examples(broken)}",
            )
    if missing_lists:
        return
    try:
        index = COCO()
        index.dataset = coco
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            index.createIndex()
    except Exception as error:  # pycocotools raises bare KeyError/TypeError on bad entries
        yield Measurement(
            "schema_errors", 1, f"pycocotools cannot index the file: {type(error).__name__} {error}"
        )


@register(
    "correctness_unique_ids",
    measures=[Measure("duplicate_ids", "ids")],
    scope="dataset",
)
def unique_ids(item: DatasetInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Image, annotation and category ids (and category names) are unique."""
    for key, field in (
        ("images", "id"),
        ("annotations", "id"),
        ("categories", "id"),
        ("categories", "name"),
    ):
        counts = Counter(
            e.get(field) for e in _entries(item.coco, key) if isinstance(e, dict) and field in e
        )
        repeated = [value for value, n in counts.items() if n > 1]
        if repeated:
            yield Measurement(
                "duplicate_ids",
                len(repeated),
                f"{key} {field}s used more than once: {_examples(repeated)}",
            )


@register(
    "correctness_dangling_references",
    measures=[Measure("dangling_references", "annotations")],
    scope="dataset",
)
def dangling_references(item: DatasetInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Every annotation names an image and a category the file defines."""
    image_ids = {e.get("id") for e in _entries(item.coco, "images") if isinstance(e, dict)}
    category_ids = {e.get("id") for e in _entries(item.coco, "categories") if isinstance(e, dict)}
    annotations = [a for a in _entries(item.coco, "annotations") if isinstance(a, dict)]
    for field, known, what in (
        ("image_id", image_ids, "image"),
        ("category_id", category_ids, "category"),
    ):
        dangling = [a.get("id") for a in annotations if a.get(field) not in known]
        if dangling:
            yield Measurement(
                "dangling_references",
                len(dangling),
                f"{len(dangling)} annotations name an unknown {what}: ids {_examples(dangling)}",
            )


def class_counts(coco: dict[str, Any]) -> Counter[str]:
    """Samples per quota category (images[].synthgate.category), else annotations per class."""
    images = [i for i in _entries(coco, "images") if isinstance(i, dict)]
    by_quota = Counter(
        i["synthgate"]["category"]
        for i in images
        if isinstance(i.get("synthgate"), dict) and i["synthgate"].get("category")
    )
    if by_quota:
        return by_quota
    names = {
        c.get("id"): c.get("name") for c in _entries(coco, "categories") if isinstance(c, dict)
    }
    return Counter(
        str(names.get(a.get("category_id"), a.get("category_id")))
        for a in _entries(coco, "annotations")
        if isinstance(a, dict)
    )


@register(
    "completeness_class_quotas",
    measures=[Measure("quota_shortfall_percent", "%")],
    scope="dataset",
)
def class_quotas(item: DatasetInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """How far each requested class falls short of its quota (percent of the quota)."""
    quotas = item.context.quotas
    if not quotas:
        return
    counts = class_counts(item.coco)
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
