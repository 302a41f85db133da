"""Checks of text samples: span alignment and boundaries, labels, overlaps, unfilled slots,
duplicates within the batch and length bounds.

Spans are character offsets, end exclusive. A span's edges must not be whitespace, punctuation
or a symbol (the templates generator's own rule, generators/text/slots.py), except characters a
rubric allows (currency signs, by default). Unfilled slot markers are found by a regular
expression the rubric gives (default: the templates generator's `{LABEL:provider}` syntax).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from synthgate.samples import Span
from synthgate.validators.checks.base import CheckInput, Measure, Measurement, register
from synthgate.validators.context import text_digest

DEFAULT_SLOT_PATTERN = r"\{[A-Za-z0-9_-]*:@?[A-Za-z_][A-Za-z0-9_]*\}"


def _in_bounds(span: Span, text: str) -> bool:
    return 0 <= span.start < span.end <= len(text)


@register(
    "correctness_span_alignment",
    measures=[Measure("span_out_of_bounds", "span"), Measure("span_misaligned", "span")],
)
def span_alignment(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Each span lies inside the text, is not empty, and covers exactly its recorded value."""
    text = item.sample.text
    if text is None:
        return
    for i, span in enumerate(item.sample.spans):
        if not _in_bounds(span, text):
            yield Measurement(
                "span_out_of_bounds",
                1,
                f"span [{span.start}, {span.end}) {span.label} is empty or outside the "
                f"{len(text)}-character text",
                span_index=i,
            )
        elif span.value is not None and text[span.start : span.end] != span.value:
            yield Measurement(
                "span_misaligned",
                1,
                f"span {span.label} covers {text[span.start : span.end]!r}, "
                f"recorded value is {span.value!r}",
                span_index=i,
            )


def _bad_edge(char: str, allowed: str) -> bool:
    if char in allowed:
        return False
    return char.isspace() or unicodedata.category(char)[0] in "PSZC"


@register(
    "precision_span_boundaries",
    measures=[Measure("span_edge_chars", "chars"), Measure("span_cuts_word", "span")],
    defaults={"allowed_edge_chars": "$€£¥%"},
)
def span_boundaries(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Spans neither swallow whitespace or punctuation at their edges nor cut a word in two."""
    text = item.sample.text
    if text is None:
        return
    allowed = str(params["allowed_edge_chars"])
    for i, span in enumerate(item.sample.spans):
        if not _in_bounds(span, text):
            continue
        covered = text[span.start : span.end]
        lead = len(covered) - len(_lstrip(covered, allowed))
        trail = len(covered) - len(_rstrip(covered, allowed))
        edge = min(lead + trail, len(covered))
        if edge:
            yield Measurement(
                "span_edge_chars",
                edge,
                f"span {span.label} {covered!r} includes {edge} whitespace/punctuation "
                "character(s) at its edges",
                span_index=i,
            )
        cut_before = span.start > 0 and text[span.start - 1].isalnum() and covered[0].isalnum()
        cut_after = span.end < len(text) and text[span.end].isalnum() and covered[-1].isalnum()
        if (cut_before or cut_after) and not _unspaced_script(covered):
            yield Measurement(
                "span_cuts_word",
                1,
                f"span {span.label} {covered!r} cuts a word "
                f"(context {text[max(span.start - 8, 0) : span.end + 8]!r})",
                span_index=i,
            )


def _lstrip(value: str, allowed: str) -> str:
    index = 0
    while index < len(value) and _bad_edge(value[index], allowed):
        index += 1
    return value[index:]


def _rstrip(value: str, allowed: str) -> str:
    index = len(value)
    while index > 0 and _bad_edge(value[index - 1], allowed):
        index -= 1
    return value[:index]


def _unspaced_script(value: str) -> bool:
    """Scripts written without spaces (CJK, kana, Thai) have no word edges to cut."""
    return any(
        unicodedata.name(c, "").startswith(("CJK", "HIRAGANA", "KATAKANA", "THAI", "HANGUL"))
        for c in value[:1] + value[-1:]
    )


@register("correctness_label_in_taxonomy", measures=[Measure("label_unknown", "label")])
def label_in_taxonomy(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Span labels and the document label are ones the task defines."""
    taxonomy = item.context.categories
    if taxonomy is None:
        return
    for i, span in enumerate(item.sample.spans):
        if span.label not in taxonomy:
            yield Measurement(
                "label_unknown", 1, f"span label {span.label!r} not in taxonomy", span_index=i
            )
    label = item.sample.doc_label
    if label is not None and label not in taxonomy:
        yield Measurement("label_unknown", 1, f"document label {label!r} not in taxonomy")


@register("precision_span_overlap", measures=[Measure("span_overlap_chars", "chars")])
def span_overlap(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Entity spans do not overlap one another (flat NER)."""
    spans = sorted(enumerate(item.sample.spans), key=lambda pair: (pair[1].start, pair[1].end))
    reach, owner = -1, -1
    for i, span in spans:
        if owner >= 0 and span.start < reach:
            overlap = min(span.end, reach) - span.start
            other = item.sample.spans[owner]
            yield Measurement(
                "span_overlap_chars",
                overlap,
                f"span {span.label} [{span.start}, {span.end}) overlaps {other.label} "
                f"[{other.start}, {other.end}) by {overlap} character(s)",
                span_index=i,
            )
        if span.end > reach:
            reach, owner = span.end, i


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@register(
    "completeness_unfilled_slots",
    measures=[Measure("unfilled_slots", "slots")],
    defaults={"slot_pattern": DEFAULT_SLOT_PATTERN},
)
def unfilled_slots(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """No template slot marker is left in the text (a value that was never filled in)."""
    text = item.sample.text
    if text is None:
        return
    found = _compiled(str(params["slot_pattern"])).findall(text)
    if found:
        shown = ", ".join(repr(f) for f in found[:3])
        yield Measurement("unfilled_slots", len(found), f"unfilled slot marker(s) {shown}")


def _prepare_digest(item: CheckInput) -> dict[str, Any]:
    text = item.sample.text
    return {"text_digest": None if text is None else text_digest(text)}


@register(
    "clarity_duplicate_text",
    measures=[Measure("duplicate_text", "sample")],
    prepare=_prepare_digest,
)
def duplicate_text(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """The text (case and whitespace folded) is not a copy of an earlier sample of the batch."""
    text = item.sample.text
    if text is None:
        return
    digest = item.cache.get("text_digest") or text_digest(text)
    first = item.context.first_with_digest(item.sample.id, digest)
    if first is not None:
        yield Measurement("duplicate_text", 1, f"same text as earlier sample {first}")


@register(
    "clarity_text_length",
    measures=[
        Measure("text_chars", "chars", worse="lower"),
        Measure("text_overlength_chars", "chars"),
    ],
    defaults={"max_chars": 2000},
)
def text_length(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Length in characters (too short to carry meaning) and how far it runs past `max_chars`."""
    text = item.sample.text
    if text is None:
        return
    length = len(text.strip())
    yield Measurement("text_chars", length, f"text has {length} characters")
    over = max(length - int(params["max_chars"]), 0)
    if over:
        yield Measurement(
            "text_overlength_chars", over, f"text runs {over} characters past {params['max_chars']}"
        )
