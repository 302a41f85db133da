"""The report's figures: bar charts as SVG files, the example grid as a PNG.

Each function takes plain data and a path, draws one figure and returns the path:
`class_histogram` (instances per class before/after, log scale), `deficit_filled` (what each
class lacked and how much was filled), `rubric_outcomes` (levels per criterion and routes),
`attribute_balance` (text: group sizes and label rates per attribute group, before/after), all
written by svg.py, and `example_grid` (accepted and rejected images with their boxes drawn,
composed with Pillow; an image it cannot read, one over SYNTHGATE_MAX_IMAGE_PIXELS say, gets a
tile saying why).

The charts are a few hundred bars and labels, so they are written as SVG directly rather than
drawn by a plotting library: a report's charts take milliseconds instead of about a second of a
balance run, matplotlib is not loaded, and a browser or Markdown viewer shows them sharp.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from synthgate.formats.image_files import open_rgb
from synthgate.reports.svg import Panel, Series, write_figure
from synthgate.samples import CRITERIA

BEFORE, AFTER = "#8c9bb0", "#2a7ab9"
LEVEL_COLOURS = {5: "#3c9a5f", 3: "#e0a030", 1: "#c8453a"}
CLASS_LABEL_SIZE = 9  # px: one class per 22 px band


def _before_after(before: list[float], after: list[float]) -> list[Series]:
    """Two bars per category, side by side: before balancing, then after."""
    return [Series(before, BEFORE, "before", -0.2, 0.4), Series(after, AFTER, "after", 0.2, 0.4)]


def _class_rows_height(names: list[str]) -> int:
    """A horizontal bar chart over class names: 22 px a class and room for title and axis."""
    return max(250, 22 * len(names) + 100)


def class_histogram(classes: dict[str, dict[str, Any]], path: Path) -> Path:
    """Instances per class before and after, most frequent first, on a log scale (a class with
    none has no bar)."""
    names = sorted(classes, key=lambda n: (-classes[n]["before"], n))
    panel = Panel(
        "Instances per class, before and after balancing",
        names,
        _before_after([classes[n]["before"] for n in names], [classes[n]["after"] for n in names]),
        horizontal=True,
        log=True,
        value_label="instances (log scale)",
        category_size=CLASS_LABEL_SIZE,
    )
    return write_figure([[panel]], path, width=800, row_height=_class_rows_height(names))


def deficit_filled(classes: dict[str, dict[str, Any]], path: Path) -> Path:
    """For every class that lacked instances: the deficit and how much of it was filled."""
    names = [n for n in classes if classes[n]["deficit"] > 0]
    title = "Deficit per class and how much was filled"
    if not names:
        panel = Panel(title, message="no class was below its target")
        return write_figure([[panel]], path, width=800, row_height=250)
    panel = Panel(
        title,
        names,
        [
            Series([classes[n]["deficit"] for n in names], "#dddddd", "deficit", thickness=0.8),
            Series([max(0, classes[n]["filled"]) for n in names], AFTER, "filled", thickness=0.5),
        ],
        horizontal=True,
        value_label="instances",
        category_size=CLASS_LABEL_SIZE,
    )
    return write_figure([[panel]], path, width=800, row_height=_class_rows_height(names))


def rubric_outcomes(reports: list[dict[str, Any] | None], statuses: list[str], path: Path) -> Path:
    """Levels per rubric criterion (stacked) and the routes samples took."""
    judged = [r for r in reports if r]
    criteria = sorted(
        {c for r in judged for c in r.get("levels", {})},
        key=lambda c: (c not in CRITERIA, CRITERIA.index(c) if c in CRITERIA else 0, c),
    )
    title = "Rubric levels by criterion"
    if criteria:
        stacked, bottom = [], [0.0] * len(criteria)
        for level in (5, 3, 1):
            heights = [
                float(sum(1 for r in judged if r["levels"].get(c) == level)) for c in criteria
            ]
            stacked.append(Series(heights, LEVEL_COLOURS[level], f"level {level}", base=bottom))
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        levels = Panel(title, criteria, stacked, value_label="samples")
    else:
        levels = Panel(title, message="no rubric was applied: samples were accepted as made")
    counted = Counter(statuses)
    order = [s for s in ("accepted", "review", "rejected", "failed", "pending") if counted[s]]
    colours = [
        {"accepted": LEVEL_COLOURS[5], "review": LEVEL_COLOURS[3]}.get(s, LEVEL_COLOURS[1])
        for s in order
    ]
    routes = (
        Panel("Routes", order, [Series([counted[s] for s in order], colours)])
        if order
        else Panel("Routes", message="no sample")
    )
    return write_figure([[levels, routes]], path, width=900, row_height=320, column_ratios=[3, 1.4])


def _thumbnail(
    image_path: Path,
    boxes: list[tuple[list[float], str]],
    colour: str,
    size: int = 256,
    *,
    labelled: tuple[int, int] | None = None,
) -> Image.Image:
    """The image as its boxes were drawn on it (`labelled`: the (width, height) its labels
    give, so an EXIF-turned photo is shown in their frame), boxes on, fit in `size`."""
    # open_rgb as validate reads images: SYNTHGATE_MAX_IMAGE_PIXELS applies, and the frame
    image, why = open_rgb(image_path, size=labelled)
    if image is None:  # the report still comes out: the cell says why it shows no image
        return _unreadable(f"cannot show {image_path.name}: {why}", colour, size)
    draw = ImageDraw.Draw(image)
    for (x, y, w, h), label in boxes:
        draw.rectangle([x, y, x + w, y + h], outline=colour, width=max(1, image.width // 200))
        draw.text((x + 2, y + 1), label, fill=colour)
    image.thumbnail((size, size))
    return image


def _unreadable(message: str, colour: str, size: int) -> Image.Image:
    """A thumbnail-sized tile holding `message` in place of an image that cannot be read."""
    tile = Image.new("RGB", (size, size), "#f2f2f2")
    font = ImageFont.load_default(size=12)
    lines = textwrap.wrap(message, width=36)[: size // 16]
    ImageDraw.Draw(tile).multiline_text((6, 6), "\n".join(lines), fill=colour, font=font)
    return tile


def example_grid(examples: list[dict[str, Any]], path: Path, *, columns: int = 4) -> Path:
    """Example images with their boxes; each example: {path, boxes: [(bbox, label)], status, caption}.

    A grid of thumbnails composed with Pillow, each under its caption in its status colour.
    """
    cell, top = 300, 24  # a 256 px thumbnail and its caption in each cell
    rows = max(1, -(-len(examples) // columns))
    grid = Image.new("RGB", (cell * columns, cell * rows), "white")
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default(size=13)
    if not examples:
        draw.text(
            (cell // 2, cell // 2),
            "no synthetic image to show",
            fill="black",
            font=font,
            anchor="mm",
        )
    for number, example in enumerate(examples):
        x, y = cell * (number % columns), cell * (number // columns)
        colour = "#1f9d55" if example["status"] == "accepted" else "#d64545"
        width, height = example.get("size") or (None, None)
        labelled = (width, height) if isinstance(width, int) and isinstance(height, int) else None
        thumbnail = _thumbnail(Path(example["path"]), example["boxes"], colour, labelled=labelled)
        left = x + (cell - thumbnail.width) // 2
        grid.paste(thumbnail, (left, y + top))
        caption = f"{example['status']}: {example['caption']}"[:48]
        draw.text((x + cell // 2, y + top // 2), caption, fill=colour, font=font, anchor="mm")
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path, compress_level=1)
    return path


def attribute_balance(bias: dict[str, Any], path: Path) -> Path:
    """Per attribute axis: rows per group before/after, and the rate of the gap label."""
    rows: list[list[Panel]] = []
    for axis_name, pair in bias.items():
        before, after = pair["before"], pair["after"]
        groups = sorted(set(before["groups"]) | set(after["groups"]))

        def count(report: dict[str, Any], group: str) -> float:
            return report["groups"].get(group, {}).get("n", 0)

        counts = Panel(
            f"rows per {axis_name} group",
            groups,
            _before_after([count(before, g) for g in groups], [count(after, g) for g in groups]),
            slanted=True,
        )
        label = after["largest_gap"]["label"] or before["largest_gap"]["label"]
        if label is None:
            rows.append([counts, Panel("", message=f"fewer than two {axis_name} groups")])
            continue

        def rate(report: dict[str, Any], group: str, label: str = label) -> float:
            return report["groups"].get(group, {}).get("rates", {}).get(label, 0.0)

        rates = Panel(
            f"rate of label {label!r} per {axis_name}",
            groups,
            _before_after([rate(before, g) for g in groups], [rate(after, g) for g in groups]),
            limits=(0.0, 1.0),
            slanted=True,
        )
        rows.append([counts, rates])
    if not rows:
        rows.append([Panel("Attribute balance", message="no attribute axis")])
    return write_figure(rows, path, width=900, row_height=300)
