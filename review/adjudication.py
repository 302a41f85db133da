"""How an item's decisions become one result: agreement or majority, else an adjudicator.

`resolve(verdicts)` is the verdict a strict majority chose, or None (the item goes to an
adjudicator); where that verdict is fix, `agreed_fix(rows)` is the fix a strict majority made
with the same labels, or None (the fixes differ: the item goes to an adjudicator too, who takes
one with --fix-from). `final_sample(sample, verdict, decisions)` is the sample as it leaves
review: accept -> accepted, reject -> rejected, fix -> accepted with the corrected labels of the
first fix among the deciding decisions (the decision rows keep the labels it replaced). `Awaiting` is
an item awaiting adjudication as an adjudicator reads it (ReviewQueue.awaiting_with_decisions).
`ROUTE_OF_VERDICT` is the rubric's route a human verdict stands for (the agreement report, the
queue's stats and the verdicts a calibration fits on compare routes with it).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from synthgate.samples import ObjectLabel, Sample, Span

STATUS_OF = {"accept": "accepted", "reject": "rejected", "fix": "accepted"}
# the rubric's route a human verdict stands for: where people would have routed the sample
ROUTE_OF_VERDICT = {"accept": "accepted", "fix": "review", "reject": "rejected"}


@dataclass
class Awaiting:
    """An item awaiting adjudication: its sample, how many annotators split on it and every
    decision on it in the order they came (review_decisions rows as dicts)."""

    item_id: int
    sample_id: str
    modality: str
    k: int
    decisions: list[dict[str, Any]]


def resolve(verdicts: Sequence[str]) -> str | None:
    """The verdict more than half the annotators gave; None on a tie or a split."""
    if not verdicts:
        return None
    verdict, votes = Counter(verdicts).most_common(1)[0]
    return verdict if votes * 2 > len(verdicts) else None


def agreed_fix(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The first of the fixes more than half of an item's annotator decisions (`rows`) made with
    the same labels; None when no fix has such a majority. Taking the first fix whatever the
    others said kept its labels and dropped theirs without a word."""
    fixes = [row for row in rows if row["verdict"] == "fix"]
    votes = Counter(map(_labels_key, fixes))
    if not votes:
        return None
    labels, count = votes.most_common(1)[0]
    return next(f for f in fixes if _labels_key(f) == labels) if count * 2 > len(rows) else None


def _labels_key(row: dict[str, Any]) -> str:
    """A fix's corrected labels (objects, else spans) as text to compare."""
    labels = row["objects"] if row["objects"] is not None else row["spans"]
    return json.dumps(labels, sort_keys=True)


def final_sample(sample: Sample, verdict: str, decisions: Sequence[dict[str, Any]]) -> Sample:
    """The sample with the final status and, for a fix, the corrected labels (a new sample;
    fields are replaced, never changed in place, so a shallow copy leaves `sample` as it was)."""
    final = sample.model_copy()
    final.status = STATUS_OF[verdict]  # type: ignore[assignment]
    if verdict == "fix":
        fix = next(d for d in decisions if d["verdict"] == "fix")
        if sample.spec.modality == "image":
            final.objects = [ObjectLabel.model_validate(o) for o in fix["objects"] or []]
        else:
            final.spans = [Span.model_validate(s) for s in fix["spans"] or []]
    return final
