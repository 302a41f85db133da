"""Real rows a text generator draws from, named as the copy check's findings show them.

`reference_rows(rows, text_field=…, source=…)` gives the (name, text) pairs a generator hands
over with every sample (`GeneratedSample.extras["text_reference"]`), so the rubric's copy check
(validators/checks/text.py) compares each synthetic text with the rows it was made from and
names the one it copies: `reviews.jsonl row 17 (id r17)`. A tuple, built once per generator:
the judge indexes it once, by identity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def reference_rows(
    rows: Iterable[Mapping[str, Any]], *, text_field: str, source: str
) -> tuple[tuple[str, str], ...]:
    """(name, text) of every row with a text; the name is the file, line and id of the row."""
    named = []
    for number, row in enumerate(rows, start=1):
        text = row.get(text_field)
        if isinstance(text, str):
            known = f" (id {row['id']})" if row.get("id") is not None else ""
            named.append((f"{source} row {number}{known}", text))
    return tuple(named)
