"""Hunt finding: `sg.balance_text(rows, target="max")` where no strategy can make a row of the
short class (no names to swap, no template to mine) reports that class in `summary["classes"]`
(balance.json) as `"planned": 10`, while the same file's per-strategy table and notes say
"0 planned" for every strategy, and nothing was made: two counts of the same plan disagree, and
the class table reads as if ten rows had been attempted and all failed. Marked xfail (strict)
until the class's `planned` counts what its strategies planned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import synthgate as sg


@pytest.mark.xfail(
    strict=True,
    reason="classes[label].planned is the deficit (10) where every strategy planned 0",
)
def test_a_text_class_planned_count_agrees_with_its_strategies(tmp_path: Path) -> None:
    rows = tmp_path / "reviews.jsonl"
    lines = [
        {
            "text": f"This product is {'great' if i % 3 else 'awful'} number {i}, really.",
            "label": "pos" if i % 3 else "neg",
        }
        for i in range(30)
    ]
    rows.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    result = sg.balance_text(rows, out=tmp_path / "balanced", target="max")
    neg = result.summary["classes"]["neg"]
    strategies = result.summary["text"]["strategies"]["neg"]
    assert neg["filled"] == 0 and neg["deficit"] == 10
    assert neg["planned"] == sum(entry["planned"] for entry in strategies), (neg, strategies)
