"""How an item's decisions become one result: agreement or majority, else an adjudicator.

`resolve(verdicts)` is the verdict a strict majority chose, or None (the item goes to an
adjudicator); where that verdict is fix, `agreed_fix(rows)` is the first fix a strict majority
agrees with (`same_fix`: the same objects and classes with boxes at IoU >= `FIX_BOX_IOU`, or the
same spans), or None (the fixes differ: the item goes to an adjudicator too, who takes one with
--fix-from). `final_sample(sample, verdict, decisions)` is the sample as it leaves review:
accept -> accepted, reject -> rejected, fix -> accepted with the corrected labels of the first
fix among the deciding decisions (the decision rows keep the labels it replaced). `Awaiting` is
an item awaiting adjudication as an adjudicator reads it (ReviewQueue.awaiting_with_decisions).
`ROUTE_OF_VERDICT` is the rubric's route a human verdict stands for (the agreement report, the
queue's stats and the verdicts a calibration fits on compare routes with it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from synthgate.masks import box_iou
from synthgate.samples import ObjectLabel, Sample, Span

STATUS_OF = {"accept": "accepted", "reject": "rejected", "fix": "accepted"}
# the rubric's route a human verdict stands for: where people would have routed the sample
ROUTE_OF_VERDICT = {"accept": "accepted", "fix": "review", "reject": "rejected"}
# Two people's boxes of one object at this IoU or more are one box: people dragging the same
# edges land a pixel or two apart (a 40 px box may move 2 px; a 10 px one not 1, IoU 0.82).
FIX_BOX_IOU = 0.9


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
    """The first fix that more than half of an item's annotator decisions (`rows`) agree with
    (`same_fix`, itself among them); None when no fix has such a majority. Agreement within a
    tolerance is not transitive (a ~ b ~ c, a !~ c), so it is the first fix with a majority
    that is kept, in the order the fixes came. Taking the first fix whatever the others said
    kept its labels and dropped theirs without a word; comparing them exactly sent nearly
    every item all its annotators fixed to adjudication."""
    fixes = [row for row in rows if row["verdict"] == "fix"]
    return next(
        (fix for fix in fixes if sum(same_fix(fix, other) for other in fixes) * 2 > len(rows)),
        None,
    )


def same_fix(fix: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether two fixes (review_decisions rows) correct a sample alike. Image fixes hold as
    many objects, and each object of `fix` pairs with one of `other` of its class whose box
    overlaps it at IoU >= FIX_BOX_IOU (the unpaired one it overlaps most: objects may come in
    any order; this greedy pairing can miss only where one fix has two boxes of a class at IoU
    >= 0.8 of each other, a duplicate label, whose item then goes to adjudication). Masks and
    attributes are not compared: they come with the fix kept. Text fixes hold the same spans
    in any order: offsets are whole characters, so no tolerance is needed."""
    if fix["objects"] is None:
        return _span_keys(fix["spans"]) == _span_keys(other["spans"])
    unpaired = list(other["objects"] or [])
    if len(fix["objects"]) != len(unpaired):
        return False
    for obj in fix["objects"]:
        alike = [i for i, o in enumerate(unpaired) if o["category"] == obj["category"]]
        iou = {i: box_iou(obj["bbox"], unpaired[i]["bbox"]) for i in alike}
        best = max(alike, key=iou.__getitem__, default=None)
        if best is None or iou[best] < FIX_BOX_IOU:
            return False
        del unpaired[best]
    return True


def _span_keys(spans: list[dict[str, Any]] | None) -> list[tuple[Any, ...]]:
    """What a fix of spans says, in offset order: each span's offsets and label."""
    return sorted((s["start"], s["end"], s["label"]) for s in spans or [])


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
