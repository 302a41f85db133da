"""What a reviewer sends and sees: `Decision` and `ReviewTask`, and the checks a decision must
pass before the queue records it (decisions are user input: the API passes them straight in).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from synthgate.arguments import type_named
from synthgate.errors import (
    InputError,
    list_indexes,
    lone_surrogate_in,
    quoted,
    string_in,
    validation_message,
)
from synthgate.masks import rle_problem
from synthgate.samples import CRITERIA, ObjectLabel, Sample, Span

Verdict = Literal["accept", "reject", "fix"]
ANNOTATOR_MAX = 200


class Decision(BaseModel):
    """One person's judgement of one item."""

    model_config = ConfigDict(extra="forbid")

    verdict: Verdict
    levels: dict[str, Literal[5, 3, 1]] = Field(default_factory=dict)  # per rubric criterion
    comment: str = Field(default="", max_length=5000)
    objects: list[ObjectLabel] | None = None  # corrected labels of an image when verdict == "fix"
    spans: list[Span] | None = None  # corrected spans of a text when verdict == "fix"


class ReviewTask(BaseModel):
    """What an annotator sees: the sample as shown (never the answer, never others' decisions)."""

    model_config = ConfigDict(extra="forbid")

    item_id: int
    sample: Sample
    criteria: list[str]
    # the labels a fix may use (ReviewQueue.fix_labels), read with the task by `next_item`
    fix_labels: list[str] = Field(default_factory=list)


def criteria_of(sample: Sample) -> list[str]:
    """The rubric criteria a reviewer grades: the report's, else the standard four."""
    if sample.report is not None and sample.report.levels:
        return list(sample.report.levels)
    return list(CRITERIA)


def check_annotator(name: str, field: str = "annotator") -> str:
    """`name` stripped; one of no characters or too many is an `InputError` naming `field`,
    the parameter that gave it (reopen's `by`, adjudicate's `adjudicator`; the CLI its flag)."""
    stripped = name.strip() if isinstance(name, str) else ""
    if not stripped or len(stripped) > ANNOTATOR_MAX:
        raise InputError(
            field=field,
            value=quoted(name),
            problem=f"names an annotator, in 1 to {ANNOTATOR_MAX} characters",
            fix=f"give a name, e.g. {{{field}=lead}}",
            options=(f"{field}=lead",),
        )
    return stripped


def decision_argument(value: Any, field: str = "decision") -> Decision:
    """`value` as a `Decision`: one itself, or a mapping of its fields (the API's JSON body, as
    a dict) validated into one. A mapping that is no decision (a verdict misspelt, a field
    unknown) is an `InputError` naming each field, what it got and what it takes, as a config's
    or a rubric's are; any other type one naming the type to pass."""
    if isinstance(value, Decision):
        return value
    if not isinstance(value, Mapping):
        raise InputError(
            field=field,
            value=quoted(value),
            problem=f"is {type_named(value)}, not a Decision",
            fix="pass a Decision (synthgate.review.queue.Decision) or a dict of its fields, "
            "e.g. {'verdict': 'accept'}",
        )
    try:
        return Decision.model_validate(dict(value))
    except ValidationError as error:
        raise InputError(
            validation_message(
                error, field=field, location=list_indexes("objects", "spans", "bbox")
            )
        ) from None


def check_decision(
    item_id: int, shown: Sample, decision: Decision, *, labels: Collection[str] = ()
) -> None:
    """Refuse a decision the queue must not record. `labels`: the batch's labels of the shown
    sample's modality, object classes for an image and span labels for a text (review/items.py
    `batch_labels`), which, with the sample's own, are those a fix may use: any other would
    become an accepted sample's label."""
    plain = decision.model_dump()
    found = lone_surrogate_in(plain)
    if found is not None:  # valid JSON, but no character: no database or UTF-8 file can keep it
        where, value = found
        raise InputError(
            f"item {item_id}: {where} {value!r} holds a lone surrogate (an unpaired "
            "\\ud800-\\udfff escape), which is no character; fix or drop the escape"
        )
    found = string_in(plain, lambda text: "\x00" in text)
    if found is not None:  # PostgreSQL's text holds no NUL
        where, value = found
        raise InputError(f"item {item_id}: {where} {quoted(value)} holds a NUL character; drop it")
    criteria = criteria_of(shown)
    unknown = sorted(set(decision.levels) - set(criteria))
    if unknown:
        raise InputError(f"item {item_id}: unknown criteria {unknown} in levels; use {criteria}")
    if decision.verdict != "fix":
        if decision.objects is not None or decision.spans is not None:
            raise InputError(
                f"item {item_id}: corrected labels come only with verdict 'fix' (got {decision.verdict!r})"
            )
        return
    if shown.spec.modality == "image":
        if decision.objects is None:
            raise InputError(f"item {item_id}: verdict 'fix' needs the corrected objects")
        allowed = sorted({*labels, *(o.category for o in shown.objects)})
        check_objects(item_id, shown, decision.objects, allowed)
    else:
        if shown.doc_label is not None:
            # a decision carries spans, not a document label: a 'fix' would accept the text
            # with the very label its reviewer found wrong
            raise InputError(
                f"item {item_id}: a fix corrects spans, and this text is judged by its document "
                f"label ({shown.doc_label!r}), which a decision cannot change; reject the text if "
                "that label is wrong, accept it if it is right"
            )
        if decision.spans is None:
            raise InputError(f"item {item_id}: verdict 'fix' needs the corrected spans")
        allowed = sorted({*labels, *(s.label for s in shown.spans)})
        check_spans(item_id, shown, decision.spans, allowed)


def refuse_unchanged_fix(item_id: int, shown: Sample, decision: Decision) -> None:
    """A new 'fix' must change a label: one of nothing would finalise the sample as it stands
    and count as catching a honeypot's defect (gold scores every 'fix' of one as correct), so
    answering 'fix' to every task would game gold accuracy. A Label Studio annotation made
    there is refused the same way (the import lists it as skipped); one that an export brought
    back is compared with the decision recorded instead, and does not come here."""
    if decision.verdict != "fix":
        return
    if shown.spec.modality == "image":
        changed = _object_keys(decision.objects or []) != _object_keys(shown.objects)
    else:
        changed = _span_keys(decision.spans or []) != _span_keys(shown.spans)
    if not changed:
        raise InputError(
            f"item {item_id}: this fix changes no label; accept the sample if its labels are "
            "right, or correct the one that is wrong"
        )


def with_attributes(item_id: int, shown: Sample, decision: Decision) -> Decision:
    """The decision with each object of its fix given back the attributes of the stored object
    its `ref` names (review/gold.py `blind` sends an object's attributes as `{"ref": i}`, i its
    place in `shown`, so that they tell nothing of its source): the fix's class, box and mask
    stay, and the stored attributes come under any others it sends. An object without `ref` (a
    new box, a Label Studio import, an adjudicator's fix taken from a decision) keeps its own.
    A ref that names no object of `shown`, or one named twice, is an `InputError`."""
    if decision.verdict != "fix" or decision.objects is None or shown.spec.modality != "image":
        return decision
    objects: list[ObjectLabel] = []
    taken: dict[int, int] = {}  # ref -> the index of the object that named it
    for index, obj in enumerate(decision.objects):
        if "ref" not in obj.attributes:
            objects.append(obj)
            continue
        sent = dict(obj.attributes)
        ref = sent.pop("ref")
        where = f"item {item_id}: objects[{index}].attributes.ref {ref!r}"
        if type(ref) is not int or not 0 <= ref < len(shown.objects):
            raise InputError(
                f"{where} names no object of the task (it has {len(shown.objects)}, refs 0 to "
                f"{len(shown.objects) - 1}); send an object's ref as the task gave it, a new "
                "object without one"
            )
        if ref in taken:
            raise InputError(
                f"{where} is objects[{taken[ref]}]'s too; each object of the task comes back "
                "once, a new object without a ref"
            )
        taken[ref] = index
        attributes = {**shown.objects[ref].attributes, **sent}
        objects.append(obj.model_copy(update={"attributes": attributes}))
    return decision.model_copy(update={"objects": objects})


def _object_keys(objects: list[ObjectLabel]) -> list[tuple[Any, ...]]:
    """What a fix of objects corrects: each object's class, box and mask, in order."""
    return [(o.category, list(o.bbox), o.mask) for o in objects]


def _span_keys(spans: list[Span]) -> list[tuple[Any, ...]]:
    return [(s.start, s.end, s.label) for s in spans]


def decision_row(
    item_id: int, who: str, decision: Decision, shown: Sample, role: str, now: float
) -> dict[str, Any]:
    fixed = decision.verdict == "fix"
    image = shown.spec.modality == "image"
    original = None
    if fixed:
        # the labels the fix replaces stay with the decision: nothing reviewed is ever lost
        labels = shown.objects if image else shown.spans
        original = [label.model_dump(mode="json") for label in labels]
    return {
        "item_id": item_id,
        "annotator": who,
        "role": role,
        "verdict": decision.verdict,
        "levels": dict(decision.levels),
        "comment": decision.comment,
        "objects": [o.model_dump(mode="json") for o in decision.objects]
        if decision.objects is not None
        else None,
        "spans": [s.model_dump(mode="json") for s in decision.spans]
        if decision.spans is not None
        else None,
        "original": original,
        "decided_at": now,
    }


def _label_problem(label: str, allowed: list[str], kind: str) -> str | None:
    """Why a fix's class or span label (`kind`: what it names) may not be used, or None."""
    if label in allowed:
        return None
    return f"{label!r} is not {kind} of this batch; use one of {allowed}"


def check_objects(
    item_id: int, shown: Sample, objects: list[ObjectLabel], allowed: list[str]
) -> None:
    """A fix's objects must name a class in `allowed`, have an area >= 0 and a visible fraction
    in [0, 1]; boxes must have positive size and lie inside the image; masks must be RLE of
    the image's size whose runs cover it exactly (anything else is refused, never decoded)."""
    for index, obj in enumerate(objects):
        problem = _label_problem(obj.category, allowed, "an object class")
        if problem is not None:
            raise InputError(f"item {item_id}: objects[{index}].category {problem}")
        if not (math.isfinite(obj.area) and obj.area >= 0):
            raise InputError(f"item {item_id}: objects[{index}].area must be >= 0 (got {obj.area})")
        if not 0.0 <= obj.visible_fraction <= 1.0:
            raise InputError(
                f"item {item_id}: objects[{index}].visible_fraction must be in [0, 1] "
                f"(got {obj.visible_fraction})"
            )
        if obj.mask is not None:
            image = (shown.width, shown.height) if shown.width and shown.height else None
            problem = rle_problem(obj.mask, image)
            if problem is not None:
                raise InputError(
                    f"item {item_id}: objects[{index}].mask: {problem}; send this image's mask "
                    "as COCO compressed RLE, or null"
                )
        if len(obj.bbox) != 4:
            raise InputError(f"item {item_id}: objects[{index}].bbox must be [x, y, w, h]")
        x, y, w, h = obj.bbox
        if not all(math.isfinite(v) for v in obj.bbox) or w <= 0 or h <= 0 or x < 0 or y < 0:
            raise InputError(
                f"item {item_id}: objects[{index}].bbox {obj.bbox} needs x, y >= 0 and w, h > 0"
            )
        if (
            shown.width
            and shown.height
            and (x + w > shown.width + 0.5 or y + h > shown.height + 0.5)
        ):
            raise InputError(
                f"item {item_id}: objects[{index}].bbox {obj.bbox} leaves the "
                f"{shown.width}x{shown.height} image"
            )


def check_spans(item_id: int, shown: Sample, spans: list[Span], allowed: list[str]) -> None:
    """A fix's spans must be non-empty character ranges inside the text, labelled from
    `allowed`, and a span's value, when given, must be the text it covers."""
    text = shown.text or ""
    for index, span in enumerate(spans):
        if not span.start < span.end <= len(text):
            raise InputError(
                f"item {item_id}: spans[{index}] [{span.start}, {span.end}) must satisfy "
                f"start < end <= {len(text)} (the text's length)"
            )
        problem = _label_problem(span.label, allowed, "a span label")
        if problem is not None:
            raise InputError(f"item {item_id}: spans[{index}].label {problem}")
        covered = text[span.start : span.end]
        if span.value is not None and span.value != covered:
            raise InputError(
                f"item {item_id}: spans[{index}].value {span.value!r} is not the text it covers "
                f"({covered!r}); send that, or null"
            )
