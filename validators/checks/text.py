"""Checks of text samples: a text to judge at all, span alignment and boundaries, labels,
overlaps, unfilled slots, copies of real rows and of earlier samples, and length bounds.

Spans are character offsets, end exclusive. A span's edges must not be whitespace, punctuation
or a symbol (the templates generator's own rule, generators/text/slots.py), except characters a
rubric allows (currency signs, by default). Unfilled slot markers are found by a regular
expression the rubric gives (default: the templates generator's `{LABEL:provider}` syntax).

A copy is measured as the Jaccard similarity of word 5-grams with the closest real row and the
closest earlier sample (validators/context.py `TextIndex`). The real rows are those a generator
hands over with each sample (`extras["text_reference"]`: (name, text) pairs of the rows it
rewrote, mined or prompted with, indexed once by the context) and the context's
`text_reference`; the closest real row is found when the
sample is measured (anywhere, in any order), the closest earlier sample in sample order.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from synthgate.samples import Span, kept_first_edge, kept_last_edge
from synthgate.validators.checks.base import CheckInput, Measure, Measurement, register
from synthgate.validators.context import TextIndex, text_digest

DEFAULT_SLOT_PATTERN = r"\{[A-Za-z0-9_-]*:@?[A-Za-z_][A-Za-z0-9_]*\}"


def _in_bounds(span: Span, text: str) -> bool:
    return 0 <= span.start < span.end <= len(text)


@register("correctness_text_present", measures=[Measure("text_blank", "text")])
def text_present(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """The text is not empty or only whitespace: labels of no text are wrong, as boxes on a
    blank image are (correctness_image_valid)."""
    text = item.sample.text
    if text is not None and not text.strip():
        shown = "empty" if not text else f"only whitespace ({len(text)} characters)"
        yield Measurement("text_blank", 1, f"text is {shown}")


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
    defaults={"allowed_edge_chars": "$€£¥%"},  # what the templates generator keeps (EDGE_SIGNS)
)
def span_boundaries(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Spans neither swallow whitespace or punctuation at their edges nor cut a word in two.
    A phone number's leading '+' before a digit and a bracket of a pair the span holds are
    part of it ('+34 612 345', '(0113) 496 0123')."""
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
        cut_before = span.start > 0 and _in_word(text[span.start - 1]) and _in_word(covered[0])
        cut_after = span.end < len(text) and _in_word(text[span.end]) and _in_word(covered[-1])
        if (cut_before or cut_after) and not _unspaced_script(covered):
            yield Measurement(
                "span_cuts_word",
                1,
                f"span {span.label} {covered!r} cuts a word "
                f"(context {text[max(span.start - 8, 0) : span.end + 8]!r})",
                span_index=i,
            )


def _in_word(char: str) -> bool:
    """A letter or digit, or a combining mark (U+0301 after "e" in a decomposed "é", a vowel
    sign): a mark belongs to the letter before it, so a span edge beside one cuts a word."""
    return char.isalnum() or unicodedata.category(char)[0] == "M"


def _lstrip(value: str, allowed: str) -> str:
    index = 0
    while (
        index < len(value)
        and _bad_edge(value[index], allowed)
        and not kept_first_edge(value, index, len(value))
    ):
        index += 1
    return value[index:]


def _rstrip(value: str, allowed: str) -> str:
    index = len(value)
    while (
        index > 0 and _bad_edge(value[index - 1], allowed) and not kept_last_edge(value, 0, index)
    ):
        index -= 1
    return value[:index]


def _unspaced_script(value: str) -> bool:
    """Scripts written without spaces (CJK, kana, Thai) have no word edges to cut."""
    return any(
        unicodedata.name(c, "").startswith(("CJK", "HIRAGANA", "KATAKANA", "THAI", "HANGUL"))
        for c in value[:1] + value[-1:]
    )


@register(
    "correctness_label_in_taxonomy",
    measures=[Measure("label_unknown", "label")],
    defaults={"document_label": "optional"},
)
def label_in_taxonomy(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """Span labels and the document label are ones the task defines; with `document_label:
    required` (classification) a text has one: a real row nobody labelled (`"label": null`,
    doccano's `[]`, an empty cell's `""`) is not gold."""
    label = item.sample.doc_label
    missing = params["document_label"] == "required" and (label is None or not label.strip())
    if missing:
        yield Measurement("label_unknown", 1, "no document label; give the text its class")
    taxonomy = item.context.categories
    if taxonomy is None:
        return
    for i, span in enumerate(item.sample.spans):
        if span.label not in taxonomy:
            yield Measurement(
                "label_unknown", 1, f"span label {span.label!r} not in taxonomy", span_index=i
            )
    if label is not None and not missing and label not in taxonomy:  # a blank one is told
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


def _closest_real_row(item: CheckInput) -> dict[str, Any]:
    """The closest real row (order-independent: done when the sample is measured), and the
    text's digest for the exact-copy measure."""
    text = item.sample.text
    if text is None:
        return {"text_digest": None, "real_row": None, "real_row_jaccard": None}
    best: tuple[float, str] | None = None
    handed = item.extras.get("text_reference")
    references = [item.context.text_reference]
    if handed is not None:
        references.append(item.context.text_reference_for(handed))
    for reference in references:
        found = reference.nearest(text) if isinstance(reference, TextIndex) else None
        if found is not None and (best is None or found[0] > best[0]):
            best = found
    return {
        "text_digest": text_digest(text),
        "real_row": None if best is None else best[1],
        "real_row_jaccard": None if best is None else best[0],
    }


def _prepare_copies(item: CheckInput) -> dict[str, Any]:
    # Both copy checks prepare the same thing: work it out once per sample.
    if "_copies_prepared" not in item.cache:
        item.cache["_copies_prepared"] = _closest_real_row(item)
    return dict(item.cache["_copies_prepared"])


def _closest_sample(item: CheckInput) -> tuple[float, str] | None:
    """The closest earlier sample of the batch; remembers this one (once per sample: both copy
    checks ask, and the second must not find the first's entry)."""
    if "_closest_sample" not in item.cache:
        text = item.sample.text or ""
        batch = item.context.batch_texts
        item.cache["_closest_sample"] = batch.nearest(text, before=item.sample.id)
        batch.add(item.sample.id, text)
    found: tuple[float, str] | None = item.cache["_closest_sample"]
    return found


@register(
    "correctness_text_copy",
    measures=[Measure("real_row_jaccard", "", most=1), Measure("sample_jaccard", "", most=1)],
    prepare=_prepare_copies,
)
def text_copy(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """The text is new: no exact or near copy (Jaccard of word 5-grams) of a real row, which
    would pass a real row off as synthetic, or of an earlier sample, which adds nothing."""
    if item.sample.text is None:
        return
    similarity, row = item.cache.get("real_row_jaccard"), item.cache.get("real_row")
    if similarity is not None:
        yield Measurement(
            "real_row_jaccard",
            float(similarity),
            f"shares {similarity:.0%} of its word 5-grams with real {row}",
        )
    found = _closest_sample(item)
    if found is not None:
        yield Measurement(
            "sample_jaccard",
            found[0],
            f"shares {found[0]:.0%} of its word 5-grams with earlier sample {found[1]}",
        )


@register(
    "clarity_duplicate_text",
    measures=[Measure("duplicate_text", "sample"), Measure("duplicate_jaccard", "", most=1)],
    prepare=_prepare_copies,
)
def duplicate_text(item: CheckInput, params: Mapping[str, Any]) -> Iterator[Measurement]:
    """The text is not a copy of another: an earlier sample of the batch with the same text
    (case and whitespace folded), or the closest real row or earlier sample by Jaccard."""
    text = item.sample.text
    if text is None:
        return
    digest = item.cache.get("text_digest") or text_digest(text)
    first = item.context.first_with_digest(item.sample.id, digest)
    found = _closest_sample(item)
    if first is not None:
        yield Measurement("duplicate_text", 1, f"same text as earlier sample {first}")
        return  # an exact copy is one finding, not two
    closest = [(found[0], f"earlier sample {found[1]}")] if found is not None else []
    if item.cache.get("real_row_jaccard") is not None:
        closest.append((float(item.cache["real_row_jaccard"]), f"real {item.cache['real_row']}"))
    if closest:
        similarity, other = max(closest, key=lambda c: c[0])
        yield Measurement(
            "duplicate_jaccard",
            similarity,
            f"shares {similarity:.0%} of its word 5-grams with {other}",
        )


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
