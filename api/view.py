"""What the review page shows, built from a `ReviewTask` as plain data for the template.

Pure functions: `review_view(task, public_id, classes=...)` gives the boxes with their colours,
the classes a fix may give them, the text cut into plain and highlighted segments, and the JSON
block the page's script reads (`data`: the labels as stored, masks included, which the page
draws itself so that they follow a fix). It shows the task blind, as the API does: no
validator verdict or findings (they would anchor the annotator and give gold tasks away), and
no sample id, file name or provenance (they differ by batch and source, and gold comes from
anywhere in the gold set): the header names the item by its opaque id. The template escapes
every string it prints.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from synthgate.api.review import category_colors, item_out
from synthgate.review.queue import ReviewTask
from synthgate.samples import Span
from synthgate.validators.checks.image import shown_share


def span_colors(labels: Collection[str]) -> dict[str, int]:
    """The highlight (style.css `.label-N`) of each span label a fix may use: from its place
    among the batch's labels, the same list on every text of the batch, so a label keeps its
    colour from text to text (from the text's own labels, ORG took one colour beside PERSON and
    another beside CUSTOMER) and a span relabelled in a fix takes the new label's."""
    return {label: i % 10 for i, label in enumerate(sorted(labels))}


def text_segments(text: str, spans: list[Span], colors: dict[str, int]) -> list[dict[str, Any]]:
    """The text as consecutive segments, each plain or the part of one span, coloured by its
    label (`colors`, from span_colors).

    Spans are drawn in start order; a span that overlaps an earlier one is shown from where the
    earlier one ends (it is still listed, whole, in the span table).
    """
    order = sorted(range(len(spans)), key=lambda i: (spans[i].start, spans[i].end))
    parts: list[dict[str, Any]] = []
    cursor = 0
    for index in order:
        span = spans[index]
        start, end = max(span.start, cursor), min(span.end, len(text))
        if start >= end:
            continue
        if start > cursor:
            parts.append({"text": text[cursor:start], "span": None})
        parts.append(
            {
                "text": text[start:end],
                "span": index,
                "label": span.label,
                "color": colors.get(span.label, 0),
            }
        )
        cursor = end
    if cursor < len(text):
        parts.append({"text": text[cursor:], "span": None})
    return parts


def review_view(
    task: ReviewTask, public_id: int, *, classes: Collection[str] = ()
) -> dict[str, Any]:
    """The review page of a task under its opaque id, showing what the API's task shows (the
    blind sample: no validator findings, no construction record). `classes`: the batch's
    labels a fix may use (ReviewQueue.fix_labels: object classes for an image, span labels
    for a text); with the sample's own (the task's `fix_labels`), the Fix form offers them,
    as the queue's check_decision accepts them."""
    out = item_out(task, public_id, labels=classes)
    sample = out.sample
    image = sample.spec.modality == "image"
    fix_classes = out.fix_labels if image else []
    # a colour for every class a fix may give a box (the page's script reads them); each from
    # its name alone, so a class keeps its colour from item to item, gold or real
    colors = category_colors(fix_classes)
    objects = [
        {
            "index": i,
            "category": o.category,
            "bbox": o.bbox,
            "bbox_text": json.dumps([round(v, 1) for v in o.bbox]),
            "color": colors[o.category],
            "visible": shown_share(o.visible_fraction),
        }
        for i, o in enumerate(sample.objects)
    ]
    text = sample.text or ""
    highlights = span_colors([] if image else out.fix_labels)
    spans = [
        {
            "index": i,
            "start": s.start,
            "end": s.end,
            "label": s.label,
            "text": text[s.start : s.end],
        }
        for i, s in enumerate(sample.spans)
    ]
    return {
        "item_id": public_id,
        "modality": sample.spec.modality,
        "width": sample.width or 0,
        "height": sample.height or 0,
        "image_url": out.image_url,
        "has_masks": out.masks_url is not None,  # drawn by the page (review.js drawMasks)
        # box labels in image units, so they read the same at any image size once scaled
        "label_size": round(max(sample.width or 0, sample.height or 0, 90) / 45, 2),
        "objects": objects,
        "classes": fix_classes,
        "segments": text_segments(text, sample.spans, highlights),
        "spans": spans,
        "span_labels": [] if image else out.fix_labels,
        "doc_label": sample.doc_label,  # a classification text is judged by it
        "criteria": task.criteria,
        # what review.js reads: the labels a fix starts from, as the API's task shows them
        # (an object's attributes are its ref, which a fix sends back with it)
        "data": {
            "item_id": public_id,
            "modality": sample.spec.modality,
            "width": sample.width or 0,
            "height": sample.height or 0,
            "criteria": task.criteria,
            "objects": [o.model_dump(mode="json") for o in sample.objects],
            "colors": colors,
            "spans": [s.model_dump(mode="json") for s in sample.spans],
            "span_colors": highlights,
        },
    }


def _number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _statistic_row(label: str, found: dict[str, Any]) -> list[str]:
    return [
        label,
        _number(found.get("value")),
        str(found.get("n_items", 0)),
        str(found.get("n_ratings", 0)),
        _number(found.get("observed")),
        found.get("note", ""),
    ]


def _kappa_said(kappa: dict[str, Any]) -> str:
    """The rubric-vs-humans kappa, with why it is what it is where the report says (undefined
    where rubric and people agree on every sample with one route: a "–" alone reads as a
    failure)."""
    said = f"Cohen's kappa {_number(kappa.get('value'))}"
    return f"{said}: {kappa['note']}" if kappa.get("note") else said


def _cutoffs_said(cutoffs: dict[str, Any]) -> str:
    """Which routing cut-offs the suggestions were compared with, or why none."""
    if not cutoffs.get("source"):
        return str(cutoffs.get("note") or "")
    shown = [f"{k} {cutoffs[k]:g}" for k in ("accept_at", "reject_below") if cutoffs[k] is not None]
    return f"compared with {', '.join(shown)} ({cutoffs['source']})"


def agreement_tables(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The agreement report (review/report.py) as titled tables for the admin page."""
    columns = ["statistic", "value", "items", "ratings", "observed agreement", "note"]
    verdicts = report["verdicts"]
    verdict_rows = [
        _statistic_row(f"Cohen's kappa {' × '.join(pair['raters'])}", pair)
        for pair in verdicts["cohen_pairs"]
    ]
    verdict_rows.append(_statistic_row("Fleiss' kappa", verdicts["fleiss"]))
    verdict_rows.append(_statistic_row("Krippendorff's alpha (nominal)", verdicts["alpha_nominal"]))
    tables = [{"title": "Verdicts", "columns": columns, "rows": verdict_rows, "notes": []}]
    if report["levels"]:
        tables.append(
            {
                "title": "Levels per criterion (Krippendorff's alpha, ordinal)",
                "columns": ["criterion", *columns[1:]],
                "rows": [_statistic_row(c, found) for c, found in report["levels"].items()],
                "notes": [],
            }
        )
    if report["gold"]:
        tables.append(
            {
                "title": "Gold accuracy per annotator",
                "columns": ["annotator", "gold decided", "correct", "accuracy", "defects flagged"],
                "rows": [
                    [
                        who,
                        str(row["decided"]),
                        str(row["correct"]),
                        f"{row['accuracy']:.0%}",
                        ", ".join(
                            f"{c} {s['flagged']}/{s['honeypots']}"
                            for c, s in row["sensitivity"].items()
                        ),
                    ]
                    for who, row in report["gold"].items()
                ],
                "notes": [],
            }
        )
    validator = report["validator"]
    per_modality = validator.get("modalities") or {}
    if per_modality:  # image and text both reviewed: one table each, as the CLI prints them
        for modality, part in per_modality.items():
            tables.append(_validator_table(part, f"Validator vs humans ({modality} samples)"))
    else:
        tables.append(_validator_table(validator, "Validator vs humans"))
    return tables


def _validator_table(validator: dict[str, Any], title: str) -> dict[str, Any]:
    """The rubric's routes against people's final verdicts, as a table with its kappa."""
    return {
        "title": title,
        "columns": [
            "rubric route",
            *(f"humans: {r}" for r in ("accepted", "review", "rejected")),
        ],
        "rows": [
            [route, *(str(humans.get(r, 0)) for r in ("accepted", "review", "rejected"))]
            for route, humans in validator["confusion"].items()
        ],
        # one line each, as `review agreement` prints them: run together, they read as one
        # sentence ("... or raise it accept_at 4.4 lets through ...")
        "notes": [
            _kappa_said(validator["kappa"]),
            *filter(None, [_cutoffs_said(validator.get("cutoffs", {}))]),
            *validator["suggestions"].get("notes", []),
        ],
    }
