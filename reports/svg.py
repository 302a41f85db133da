"""Bar charts written as SVG: the few shapes a report's figures are made of.

A figure is rows of `Panel`s. A panel is a bar chart over named categories: `Series` of bars side
by side or stacked, vertical or horizontal, on a linear or a log value axis, with a title, a
legend and tick labels. A panel with a `message` shows that text instead, when there is nothing
to chart. `write_figure(rows, path, width=..., row_height=...)` lays the panels out and writes
one SVG file.

The viewer lays out and draws the text, so a chart is sharp at any size and its labels can be
searched and copied. Text widths are only estimated here (an average glyph advance), to leave
room for the labels. The same data writes the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from synthgate.formats.xml_text import NOT_XML

FONT_FAMILY = "DejaVu Sans, Verdana, Arial, sans-serif"
ADVANCE = 0.6  # average width of a sans-serif glyph, in em
INK, GRID = "#333333", "#e4e4e4"
TITLE_SIZE, TICK_SIZE = 13, 10
TITLE_ROOM, LEGEND_ROOM = 26, 18  # px above the plot for the title, and for a legend under it
LABEL_CHARACTERS = 40  # a longer category name is shortened on the axis (whole in its tooltip)
SLANT = 30  # degrees, of slanted category labels


@dataclass(frozen=True)
class Series:
    """One bar per category. A bar is `thickness` of its category's band wide, `offset` bands
    from the band's centre, and starts at `base` (stacked bars) or at the axis."""

    values: Sequence[float]
    colour: str | Sequence[str]  # one for every bar, or one per bar
    label: str | None = None  # its legend entry
    offset: float = 0.0
    thickness: float = 0.8
    base: Sequence[float] | None = None


@dataclass(frozen=True)
class Panel:
    title: str
    categories: Sequence[str] = ()
    series: Sequence[Series] = ()
    horizontal: bool = False  # bars grow rightwards; the first category is at the top
    log: bool = False
    limits: tuple[float, float] | None = None  # of the value axis; from the data when None
    value_label: str = ""
    category_size: float = TICK_SIZE
    slanted: bool = False  # category labels at 30 degrees, for long names under vertical bars
    message: str | None = None  # drawn instead of the chart


@dataclass(frozen=True)
class _Scale:
    """The value axis: where a value lies between `low` and `high`, and its ticks."""

    low: float
    high: float
    log: bool
    step: float  # between ticks, on a linear axis

    @classmethod
    def of(cls, panel: Panel) -> _Scale:
        if panel.limits is not None:
            low, high = panel.limits
            return cls(low, high, panel.log, _step(high - low))
        tops = [
            (series.base[i] if series.base is not None else 0.0) + value
            for series in panel.series
            for i, value in enumerate(series.values)
            if math.isfinite(value)
        ]
        if panel.log:
            positive = [top for top in tops if top > 0] or [1.0]
            # a decade below the smallest bar, so that even a bar of exactly 10^k shows
            low = 10.0 ** (math.ceil(math.log10(min(positive))) - 1)
            return cls(low, max(max(positive) * 1.2, 10 * low), True, 0.0)
        top = max(tops, default=0.0)
        if top <= 0:
            return cls(0.0, 1.0, False, _step(1.0))
        step = _step(top)
        return cls(0.0, step * math.ceil(top / step - 1e-9), False, step)

    def fraction(self, value: float) -> float:
        """Where `value` lies on the axis: 0 at `low`, 1 at `high` (clipped)."""
        if self.log:
            value = max(value, self.low)
            span = math.log10(self.high) - math.log10(self.low)
            share = (math.log10(value) - math.log10(self.low)) / span
        else:
            share = (value - self.low) / (self.high - self.low)
        return min(max(share, 0.0), 1.0)

    def ticks(self) -> list[float]:
        if self.log:
            first, last = round(math.log10(self.low)), math.floor(math.log10(self.high) + 1e-9)
            return [10.0**power for power in range(first, last + 1)]
        count = round((self.high - self.low) / self.step)
        return [self.low + n * self.step for n in range(count + 1)]


def _step(span: float) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about five ticks over `span`."""
    if span <= 0:
        return 1.0
    rough = span / 5
    power = 10.0 ** math.floor(math.log10(rough))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= rough * (1 - 1e-9))


def _label(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:.6g}"


def _width(text: str, size: float) -> float:
    return len(text) * size * ADVANCE


def _xml(text: str) -> str:
    """`text` as XML character data or attribute value: what XML cannot hold (a user's class
    names may) is drawn as U+FFFD."""
    return escape(NOT_XML.sub("\ufffd", text))


def _short(name: str) -> str:
    return name if len(name) <= LABEL_CHARACTERS else name[: LABEL_CHARACTERS - 1] + "…"


def _n(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


class _Canvas:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def rect(self, x: float, y: float, w: float, h: float, fill: str, tip: str = "") -> None:
        shape = f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}" fill="{fill}"'
        if tip:
            self.parts.append(f"{shape}><title>{_xml(tip)}</title></rect>")
        else:
            self.parts.append(shape + "/>")

    def line(self, x1: float, y1: float, x2: float, y2: float, colour: str = INK) -> None:
        self.parts.append(
            f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" stroke="{colour}"/>'
        )

    def text(
        self,
        x: float,
        y: float,
        text: str,
        *,
        size: float = TICK_SIZE,
        anchor: str = "middle",
        rotate: float = 0.0,
        bold: bool = False,
    ) -> None:
        attributes = f'x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}" text-anchor="{anchor}"'
        if rotate:
            attributes += f' transform="rotate({_n(rotate)} {_n(x)} {_n(y)})"'
        if bold:
            attributes += ' font-weight="bold"'
        self.parts.append(f"<text {attributes}>{_xml(text)}</text>")


@dataclass(frozen=True)
class _Plot:
    """A panel's plot area in px, and where its categories' bands lie along it."""

    left: float
    top: float
    right: float
    bottom: float
    horizontal: bool
    categories: int

    @property
    def length(self) -> float:
        """Of the value axis."""
        return (self.right - self.left) if self.horizontal else (self.bottom - self.top)

    @property
    def band(self) -> float:
        """Of one category, along the category axis."""
        across = (self.bottom - self.top) if self.horizontal else (self.right - self.left)
        return across / self.categories

    def centre(self, number: int, offset: float = 0.0) -> float:
        """Of category `number`'s band (moved `offset` bands), along the category axis."""
        return (self.top if self.horizontal else self.left) + (number + 0.5 + offset) * self.band


def _draw_panel(canvas: _Canvas, panel: Panel, x: float, y: float, w: float, h: float) -> None:
    canvas.text(x + w / 2, y + 17, panel.title, size=TITLE_SIZE, bold=True)
    if panel.message is not None or not panel.categories:
        canvas.text(x + w / 2, y + h / 2, panel.message or "nothing to show", size=12)
        return
    legend = [(s.label, s.colour) for s in panel.series if s.label and isinstance(s.colour, str)]
    if legend:
        widths = [18 + _width(label, TICK_SIZE) for label, _ in legend]
        at = x + w - 12 - sum(widths)
        for (label, colour), width in zip(legend, widths, strict=True):
            canvas.rect(at, y + TITLE_ROOM + 1, 10, 10, colour)
            canvas.text(at + 14, y + TITLE_ROOM + 10, label, anchor="start")
            at += width
    scale = _Scale.of(panel)
    ticks = scale.ticks()
    names = [_short(c) for c in panel.categories]
    widest_category = max(_width(name, panel.category_size) for name in names)
    top = y + TITLE_ROOM + (LEGEND_ROOM if legend else 0)
    right = x + w - 12
    axis_room = 16 if panel.value_label else 0
    if panel.horizontal:
        left = x + widest_category + 10
        right = min(right, x + w - 4 - _width(_label(ticks[-1]), TICK_SIZE) / 2)
        bottom = y + h - TICK_SIZE - 8 - axis_room
    else:
        left = x + max(_width(_label(t), TICK_SIZE) for t in ticks) + 10 + axis_room
        if panel.slanted:  # the first label reaches left of its bar by its slanted width
            reach = _width(names[0], panel.category_size) * math.cos(math.radians(SLANT))
            left = max(left, x + 4 + reach)
            bottom = y + h - widest_category * math.sin(math.radians(SLANT))
            bottom -= panel.category_size + 8
        else:
            bottom = y + h - panel.category_size - 10
    plot = _Plot(left, top, right, bottom, panel.horizontal, len(names))
    _draw_axes(canvas, panel, scale, ticks, plot, names)
    _draw_bars(canvas, panel, scale, plot)
    if panel.value_label and panel.horizontal:
        canvas.text((left + right) / 2, y + h - 4, panel.value_label)
    elif panel.value_label:
        canvas.text(x + 12, (top + bottom) / 2, panel.value_label, rotate=-90)


def _draw_axes(
    canvas: _Canvas,
    panel: Panel,
    scale: _Scale,
    ticks: list[float],
    plot: _Plot,
    names: list[str],
) -> None:
    """Grid lines and tick labels of the value axis, the category labels (`names`), the axes."""
    left, top, right, bottom = plot.left, plot.top, plot.right, plot.bottom
    for tick in ticks:
        at = scale.fraction(tick) * plot.length
        if panel.horizontal:
            canvas.line(left + at, top, left + at, bottom, GRID)
            canvas.text(left + at, bottom + TICK_SIZE + 4, _label(tick))
        else:
            canvas.line(left, bottom - at, right, bottom - at, GRID)
            canvas.text(left - 4, bottom - at + TICK_SIZE * 0.35, _label(tick), anchor="end")
    size = panel.category_size
    for number, name in enumerate(names):
        centre = plot.centre(number)
        if panel.horizontal:
            canvas.text(left - 4, centre + size * 0.35, name, size=size, anchor="end")
        elif panel.slanted:
            canvas.text(centre, bottom + size + 2, name, size=size, anchor="end", rotate=-SLANT)
        else:
            canvas.text(centre, bottom + size + 4, name, size=size)
    canvas.line(left, top, left, bottom)
    canvas.line(left, bottom, right, bottom)


def _draw_bars(canvas: _Canvas, panel: Panel, scale: _Scale, plot: _Plot) -> None:
    for series in panel.series:
        thick = series.thickness * plot.band
        for number, (category, value) in enumerate(
            zip(panel.categories, series.values, strict=True)
        ):
            if not math.isfinite(value):
                continue  # nothing to measure: no bar
            if series.base is not None:
                base, reach = series.base[number], series.base[number] + value
            else:  # from the axis: zero, or a log axis' lowest value
                base, reach = (scale.low if panel.log else 0.0), value
            start, end = scale.fraction(base) * plot.length, scale.fraction(reach) * plot.length
            if end <= start:
                continue
            across = plot.centre(number, series.offset)
            colour = series.colour if isinstance(series.colour, str) else series.colour[number]
            tip = f"{category}{': ' + series.label if series.label else ''}: {_label(value)}"
            if panel.horizontal:
                canvas.rect(plot.left + start, across - thick / 2, end - start, thick, colour, tip)
            else:
                canvas.rect(across - thick / 2, plot.bottom - end, thick, end - start, colour, tip)


def write_figure(
    rows: Sequence[Sequence[Panel]],
    path: Path,
    *,
    width: int,
    row_height: int,
    column_ratios: Sequence[float] | None = None,
) -> Path:
    """Lay out `rows` of panels, each row `row_height` px, columns by `column_ratios`, and write
    the SVG file; returns `path`."""
    height = row_height * max(1, len(rows))
    canvas = _Canvas()
    canvas.rect(0, 0, width, height, "white")
    for row_number, row in enumerate(rows):
        ratios = list(column_ratios or [1.0] * len(row))
        x = 0.0
        for panel, ratio in zip(row, ratios, strict=True):
            w = width * ratio / sum(ratios)
            _draw_panel(canvas, panel, x, row_number * row_height, w, row_height)
            x += w
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{FONT_FAMILY}" fill="{INK}">\n'
        + "\n".join(canvas.parts)
        + "\n</svg>\n",
        encoding="utf-8",
    )
    return path
