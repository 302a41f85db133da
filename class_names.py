"""The one rule for class (category) names, shared by configs, balance and the exports: a name
must be one every export can hold, each naming one class."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from pathlib import Path

LINE_BREAKING = frozenset({"Cc", "Zl", "Zp"})  # control characters, line and paragraph separators


def category_name_problem(name: str) -> str | None:
    """Why `name` cannot name a class in every export, or None: a blank name reads as no class
    at all, and a control character or line break (a tab, a newline, U+0085, U+2028) splits
    YOLO's classes.txt and data.yaml, and VOC's labelmap, into other lines than the classes.
    Spaces around a name are kept: `balance` passes a real dataset's names through as they are.
    """
    if not name.strip():
        return "is blank; name every class"
    if any(unicodedata.category(c) in LINE_BREAKING for c in name):
        return "holds a control character or line break (a tab, a newline, U+2028, ...); remove it"
    return None


def class_name_warning(names: Iterable[str], *, source: Path | str) -> str | None:
    """A warning naming the classes of `source` that tools trimming or lower-casing names read
    as other classes, or as one (' skis ' as 'skis'; 'Dog' and 'dog' as one), or None. Not
    refused: `balance` keeps a real dataset's names as they are, and so do its outputs; a YOLO
    or VOC export, and the trainers reading it, may not."""
    names = list(names)
    spaced = [name for name in names if name != name.strip()]
    folded: dict[str, list[str]] = {}
    for name in names:
        folded.setdefault(name.casefold(), []).append(name)
    cased = [group for group in folded.values() if len(group) > 1]
    said = []
    if spaced:
        one = len(spaced) == 1
        said.append(
            f"{'class' if one else 'classes'} {', '.join(map(repr, spaced))} "
            f"{'has spaces around its name' if one else 'have spaces around their names'}"
        )
    if cased:
        groups = " and ".join(", ".join(map(repr, group)) for group in cased)
        said.append(f"{'' if spaced else 'classes '}{groups} differ only in case")
    if not said:
        return None
    return (
        f"{source}: {', and '.join(said)}: YOLO and VOC exports, and tools that trim or "
        "lower-case class names, would read them as other classes, or as one; rename them in "
        "the dataset (balance keeps them as they are)"
    )
