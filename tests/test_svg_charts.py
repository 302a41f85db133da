"""The report's SVG bar charts (reports/svg.py): well-formed files whose bars have the lengths
their values give, on linear, log and fixed axes, stacked or side by side, with every label
escaped, and the same bytes for the same data."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from synthgate.reports.svg import LABEL_CHARACTERS, Panel, Series, write_figure

SVG = "{http://www.w3.org/2000/svg}"


def bars(path: Path) -> dict[str, dict[str, float]]:
    """{tooltip: x, y, width, height} of every bar (the rects that carry a tooltip)."""
    found = {}
    for rect in ElementTree.parse(path).iter(f"{SVG}rect"):
        tip = rect.find(f"{SVG}title")
        if tip is not None:
            found[tip.text or ""] = {
                key: float(rect.get(key, "0")) for key in ("x", "y", "width", "height")
            }
    return found


def tooltips(path: Path) -> list[str]:
    """The tooltip of every bar, in drawing order: what a chart says its bars are."""
    return [t.text or "" for t in ElementTree.parse(path).iter(f"{SVG}title")]


def texts(path: Path) -> list[str]:
    return [t.text or "" for t in ElementTree.parse(path).iter(f"{SVG}text")]


def draw(tmp_path: Path, *panels: Panel, **layout: object) -> Path:
    options = {"width": 600, "row_height": 300, **layout}
    return write_figure([list(panels)], tmp_path / "chart.svg", **options)  # type: ignore[arg-type]


def test_vertical_bars_are_as_tall_as_their_values(tmp_path: Path) -> None:
    path = draw(tmp_path, Panel("counts", ["a", "b", "c"], [Series([1, 2, 4], "#000")]))
    found = bars(path)
    a, b, c = (found[f"{name}: {value}"] for name, value in (("a", 1), ("b", 2), ("c", 4)))
    assert b["height"] == pytest.approx(2 * a["height"], abs=0.2)
    assert c["height"] == pytest.approx(4 * a["height"], abs=0.2)
    assert a["y"] + a["height"] == pytest.approx(c["y"] + c["height"])  # one baseline
    assert a["x"] < b["x"] < c["x"]  # in the order given


def test_ticks_are_round_numbers_that_cover_the_tallest_bar(tmp_path: Path) -> None:
    path = draw(tmp_path, Panel("counts", ["a", "b"], [Series([37, 12], "#000")]))
    labels = texts(path)
    assert [label for label in ("0", "10", "20", "30", "40") if label in labels] == [
        "0",
        "10",
        "20",
        "30",
        "40",
    ]
    assert "50" not in labels


def test_a_log_axis_gives_each_decade_the_same_length(tmp_path: Path) -> None:
    panel = Panel(
        "log",
        ["one", "ten", "hundred", "thousand"],
        [Series([1, 10, 100, 1000], "#000")],
        horizontal=True,
        log=True,
    )
    found = bars(draw(tmp_path, panel))
    widths = [
        found[f"{name}: {value:,}"]["width"]
        for name, value in (("one", 1), ("ten", 10), ("hundred", 100), ("thousand", 1000))
    ]
    assert widths[0] > 0  # a bar of exactly 10^k still shows: the axis starts a decade lower
    steps = [later - earlier for earlier, later in itertools.pairwise(widths)]
    assert steps == pytest.approx([widths[0]] * 3, abs=0.2)
    one, ten = found["one: 1"], found["ten: 10"]
    assert one["y"] < ten["y"]  # horizontal: the first category at the top


def test_a_zero_on_a_log_axis_has_no_bar(tmp_path: Path) -> None:
    found = bars(
        draw(
            tmp_path,
            Panel("log", ["none", "some"], [Series([0, 5], "#000")], horizontal=True, log=True),
        )
    )
    assert list(found) == ["some: 5"]


def test_stacked_bars_start_where_the_one_below_ends(tmp_path: Path) -> None:
    lower, upper = [3.0, 1.0], [2.0, 4.0]
    panel = Panel(
        "stacked",
        ["x", "y"],
        [Series(lower, "#111", "low", base=[0.0, 0.0]), Series(upper, "#222", "high", base=lower)],
    )
    found = bars(draw(tmp_path, panel))
    for name, low, high in (("x", 3, 2), ("y", 1, 4)):
        below, above = found[f"{name}: low: {low}"], found[f"{name}: high: {high}"]
        assert above["y"] + above["height"] == pytest.approx(below["y"], abs=0.2)
        assert above["height"] / below["height"] == pytest.approx(high / low, rel=0.02)
    assert {"low", "high"} <= set(texts(draw(tmp_path, panel)))  # the legend


def test_fixed_limits_place_a_value_on_that_scale(tmp_path: Path) -> None:
    panel = Panel("rates", ["half", "full"], [Series([0.5, 1.0], "#000")], limits=(0.0, 1.0))
    found = bars(draw(tmp_path, panel))
    assert found["full: 1"]["height"] == pytest.approx(2 * found["half: 0.5"]["height"], abs=0.2)
    assert {"0", "0.2", "0.4", "0.6", "0.8", "1"} <= set(texts(draw(tmp_path, panel)))


def test_side_by_side_series_share_a_band_without_overlapping(tmp_path: Path) -> None:
    panel = Panel(
        "pairs",
        ["g"],
        [Series([3], "#111", "before", -0.2, 0.4), Series([5], "#222", "after", 0.2, 0.4)],
    )
    found = bars(draw(tmp_path, panel))
    before, after = found["g: before: 3"], found["g: after: 5"]
    assert before["x"] + before["width"] == pytest.approx(after["x"], abs=0.2)
    assert before["width"] == pytest.approx(after["width"])


def test_labels_are_escaped_and_read_back_as_written(tmp_path: Path) -> None:
    name = '<b>fish & "chips"</b>'
    path = draw(
        tmp_path, Panel("a <title> & more", [name], [Series([2], "#000", "n < 3")], slanted=True)
    )
    assert name in texts(path) and "a <title> & more" in texts(path)
    assert f"{name}: n < 3: 2" in bars(path)


def test_a_message_panel_draws_no_bar(tmp_path: Path) -> None:
    path = draw(
        tmp_path,
        Panel("empty", message="no class was below its target"),
        Panel("full", ["a"], [Series([1], "#000")]),
        column_ratios=[3, 1],
    )
    assert "no class was below its target" in texts(path)
    found = bars(path)
    assert list(found) == ["a: 1"] and found["a: 1"]["x"] > 600 * 3 / 4  # in the second column


DRAW = """
import sys
from pathlib import Path
from synthgate.reports.svg import LABEL_CHARACTERS, Panel, Series, write_figure
panel = Panel("counts", ["a", "b", "c"], [Series([1.5, 7, 2], ["#111", "#222", "#333"], "n"),
              Series([1, 2, 3], "#444", "m", base=[1.5, 7, 2])], value_label="n", slanted=True)
write_figure([[panel, Panel("none", message="empty")]], Path(sys.argv[1]), width=400,
             row_height=200)
"""


def test_the_same_data_writes_the_same_bytes_in_any_process(tmp_path: Path) -> None:
    written = []
    for number, hash_seed in enumerate(("1", "2")):
        path = tmp_path / f"{number}.svg"
        environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", DRAW, str(path)], check=True, env=environment)
        written.append(path.read_bytes())
    assert written[0] == written[1]
    root = ElementTree.fromstring(written[0])
    assert (root.get("width"), root.get("height")) == ("400", "200")


def test_characters_xml_cannot_hold_are_drawn_as_replacements(tmp_path: Path) -> None:
    name = "tri\x0bangle\x00\ud800"  # from a user's COCO file: valid JSON, not valid XML
    path = draw(tmp_path, Panel("odd", [name], [Series([3], "#000")], horizontal=True))
    assert "tri\ufffdangle\ufffd\ufffd" in texts(path)  # the file parses
    assert list(bars(path)) == ["tri\ufffdangle\ufffd\ufffd: 3"]


def test_a_long_name_is_shortened_on_the_axis_and_whole_in_its_tooltip(tmp_path: Path) -> None:
    name = "a category whose name goes on well past what an axis label can hold"
    path = draw(tmp_path, Panel("long", [name, "b"], [Series([3, 4], "#000")], slanted=True))
    shown = [t for t in texts(path) if t.startswith("a category")]
    assert shown and len(shown[0]) == LABEL_CHARACTERS and shown[0].endswith("…")
    found = bars(path)
    assert f"{name}: 3" in found
    assert found[f"{name}: 3"]["height"] > 0  # the bars keep their room


def test_a_value_that_is_not_a_number_has_no_bar(tmp_path: Path) -> None:
    path = draw(tmp_path, Panel("gaps", ["a", "b", "c"], [Series([2, math.nan, math.inf], "#000")]))
    assert list(bars(path)) == ["a: 2"]
