"""The one rule for class (category) names, shared by configs, balance and the exports: a name
must be one every export can hold, each naming one class."""

from __future__ import annotations

import unicodedata

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
