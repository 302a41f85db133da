"""The report's figures, as PNG files (matplotlib's Agg canvas: no display, no pyplot).

Each function takes plain data and a path, draws one figure and returns the path:
`class_histogram` (instances per class before/after, log scale), `deficit_filled` (what each
class lacked and how much was filled), `rubric_outcomes` (levels per criterion and routes),
`example_grid` (accepted and rejected images with their boxes drawn, composed with Pillow) and
`attribute_balance` (text: group sizes and label rates per attribute group, before/after).

A figure is drawn once: its margins are set from the measured width of its labels, rather than
by `bbox_inches="tight"`, which draws every figure twice; PNGs are written at zlib level 1.
This module imports matplotlib, so only drawing a report loads it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextToPath
from PIL import Image, ImageDraw, ImageFont

from synthgate.samples import CRITERIA

BEFORE, AFTER = "#8c9bb0", "#2a7ab9"
LEVEL_COLOURS = {5: "#3c9a5f", 3: "#e0a030", 1: "#c8453a"}
DPI = 100


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _text_width(labels: Iterable[str], size: float) -> float:
    """Width in points of the widest of `labels` at font `size` (laid out, not drawn)."""
    measure, font = TextToPath(), FontProperties(size=size)
    return max(
        (measure.get_text_width_height_descent(label, font, ismath=False)[0] for label in labels),
        default=0.0,
    )


def _margins(figure: Figure, *, left: float, bottom: float, top: float, right: float = 10) -> None:
    """Margins in points around the axes."""
    width, height = figure.get_size_inches() * 72
    figure.subplots_adjust(
        left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height
    )


def _save(figure: Figure, path: Path, *, tight: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {"bbox_inches": "tight"} if tight else {}
    figure.savefig(path, dpi=DPI, pil_kwargs={"compress_level": 1}, **options)
    return path


def _class_bars(figure: Figure, names: list[str]) -> Any:
    """The axes of a horizontal bar chart over class names, with room for the longest name."""
    axis = figure.subplots()
    _margins(figure, left=_text_width(names, 7) + 14, bottom=38, top=24)
    return axis


def class_histogram(classes: dict[str, dict[str, Any]], path: Path) -> Path:
    """Instances per class before and after, most frequent first, on a log scale."""
    names = sorted(classes, key=lambda n: (-classes[n]["before"], n))
    y = np.arange(len(names))
    figure = _figure(8, max(2.5, 0.22 * len(names) + 1))
    axis = _class_bars(figure, names)
    axis.barh(
        y - 0.2, [max(classes[n]["before"], 0.5) for n in names], 0.4, color=BEFORE, label="before"
    )
    axis.barh(
        y + 0.2, [max(classes[n]["after"], 0.5) for n in names], 0.4, color=AFTER, label="after"
    )
    axis.set_xscale("log")
    axis.set_yticks(y, names, fontsize=7)
    axis.invert_yaxis()
    axis.set_xlabel("instances (log scale)")
    axis.set_title("Instances per class, before and after balancing")
    axis.legend(loc="lower right")
    return _save(figure, path)


def deficit_filled(classes: dict[str, dict[str, Any]], path: Path) -> Path:
    """For every class that lacked instances: the deficit and how much of it was filled."""
    names = [n for n in classes if classes[n]["deficit"] > 0]
    figure = _figure(8, max(2.5, 0.22 * len(names) + 1))
    axis = _class_bars(figure, names)
    if not names:
        axis.text(0.5, 0.5, "no class was below its target", ha="center", va="center")
        axis.set_axis_off()
        return _save(figure, path)
    y = np.arange(len(names))
    axis.barh(y, [classes[n]["deficit"] for n in names], 0.8, color="#dddddd", label="deficit")
    axis.barh(y, [max(0, classes[n]["filled"]) for n in names], 0.5, color=AFTER, label="filled")
    axis.set_yticks(y, names, fontsize=7)
    axis.invert_yaxis()
    axis.set_xlabel("instances")
    axis.set_title("Deficit per class and how much was filled")
    axis.legend(loc="lower right")
    return _save(figure, path)


def rubric_outcomes(reports: list[dict[str, Any] | None], statuses: list[str], path: Path) -> Path:
    """Levels per rubric criterion (stacked) and the routes samples took."""
    figure = _figure(9, 3.2)
    left, right = figure.subplots(1, 2, width_ratios=[3, 1.4])
    _margins(figure, left=44, bottom=24, top=22)
    judged = [r for r in reports if r]
    criteria = sorted(
        {c for r in judged for c in r.get("levels", {})},
        key=lambda c: (c not in CRITERIA, CRITERIA.index(c) if c in CRITERIA else 0, c),
    )
    if criteria:
        bottom = np.zeros(len(criteria))
        for level in (5, 3, 1):
            heights = np.array(
                [sum(1 for r in judged if r["levels"].get(c) == level) for c in criteria], float
            )
            left.bar(
                criteria, heights, bottom=bottom, color=LEVEL_COLOURS[level], label=f"level {level}"
            )
            bottom += heights
        left.set_ylabel("samples")
        left.legend(fontsize=7)
        left.set_title("Rubric levels by criterion")
    else:
        left.text(
            0.5,
            0.5,
            "no rubric was applied:\nsamples were accepted as made",
            ha="center",
            va="center",
        )
        left.set_axis_off()
    routes = Counter(statuses)
    order = [s for s in ("accepted", "review", "rejected", "failed", "pending") if routes[s]]
    right.bar(
        order or ["none"],
        [routes[s] for s in order] or [0],
        color=[
            {"accepted": LEVEL_COLOURS[5], "review": LEVEL_COLOURS[3]}.get(s, LEVEL_COLOURS[1])
            for s in order
        ]
        or ["#ccc"],
    )
    right.set_title("Routes")
    right.tick_params(axis="x", labelsize=8)
    return _save(figure, path)


def _thumbnail(
    image_path: Path, boxes: list[tuple[list[float], str]], colour: str, size: int = 256
) -> Image.Image:
    with Image.open(image_path) as opened:
        image = opened.convert("RGB")
    draw = ImageDraw.Draw(image)
    for (x, y, w, h), label in boxes:
        draw.rectangle([x, y, x + w, y + h], outline=colour, width=max(1, image.width // 200))
        draw.text((x + 2, y + 1), label, fill=colour)
    image.thumbnail((size, size))
    return image


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
        thumbnail = _thumbnail(Path(example["path"]), example["boxes"], colour)
        left = x + (cell - thumbnail.width) // 2
        grid.paste(thumbnail, (left, y + top))
        caption = f"{example['status']}: {example['caption']}"[:48]
        draw.text((x + cell // 2, y + top // 2), caption, fill=colour, font=font, anchor="mm")
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path, compress_level=1)
    return path


def attribute_balance(bias: dict[str, Any], path: Path) -> Path:
    """Per attribute axis: rows per group before/after, and the rate of the gap label."""
    axes_names = list(bias)
    figure = _figure(9, 3 * max(1, len(axes_names)))
    axes = figure.subplots(len(axes_names) or 1, 2, squeeze=False)
    for row, axis_name in enumerate(axes_names):
        before, after = bias[axis_name]["before"], bias[axis_name]["after"]
        groups = sorted(set(before["groups"]) | set(after["groups"]))
        x = np.arange(len(groups))
        count_axis, rate_axis = axes[row]
        count_axis.bar(
            x - 0.2,
            [before["groups"].get(g, {}).get("n", 0) for g in groups],
            0.4,
            color=BEFORE,
            label="before",
        )
        count_axis.bar(
            x + 0.2,
            [after["groups"].get(g, {}).get("n", 0) for g in groups],
            0.4,
            color=AFTER,
            label="after",
        )
        count_axis.set_xticks(x, groups, fontsize=8, rotation=30)
        count_axis.set_title(f"rows per {axis_name} group")
        count_axis.legend(fontsize=7)
        label = after["largest_gap"]["label"] or before["largest_gap"]["label"]
        if label is None:
            rate_axis.text(0.5, 0.5, f"fewer than two {axis_name} groups", ha="center", va="center")
            rate_axis.set_axis_off()
            continue

        def rate(report: dict[str, Any], group: str, label: str = label) -> float:
            return report["groups"].get(group, {}).get("rates", {}).get(label, 0.0)

        rate_axis.bar(x - 0.2, [rate(before, g) for g in groups], 0.4, color=BEFORE, label="before")
        rate_axis.bar(x + 0.2, [rate(after, g) for g in groups], 0.4, color=AFTER, label="after")
        rate_axis.set_xticks(x, groups, fontsize=8, rotation=30)
        rate_axis.set_ylim(0, 1)
        rate_axis.set_title(f"rate of label {label!r} per {axis_name}")
    if not axes_names:
        axes[0][0].text(0.5, 0.5, "no attribute axis", ha="center", va="center")
    return _save(figure, path, tight=True)  # rotated group names: measured by a first draw
