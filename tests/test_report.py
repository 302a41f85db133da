"""The balance report renders: report.html opened in headless Chromium, every image it references
exists, loads and shows something, the charts are well-formed SVG with a bar for every value and
the example grid a non-empty PNG. Under CI=true a missing Chromium fails."""

from __future__ import annotations

import io
import json
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pytest
from balance_fixtures import balance_coco, make_tiny_coco
from PIL import Image
from test_svg_charts import tooltips

from synthgate.reports import plots

SVG = "http://www.w3.org/2000/svg"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium not installed (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def _sync_api():
    if os.environ.get("CI") == "true":
        from playwright import sync_api  # CI installs it: a missing driver is a failure

        return sync_api
    return pytest.importorskip("playwright.sync_api")


class _Sources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs)["src"] or "")


@pytest.fixture(scope="module")
def balance_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    coco, images = make_tiny_coco(folder / "real")
    out = folder / "out"
    result = balance_coco(str(coco), str(images), str(out), "--target", "max")
    assert result.returncode == 0, result.stderr
    return out


def _assert_not_blank(image: Image.Image, name: str) -> None:
    pixels = np.asarray(image.convert("L"))
    assert pixels.shape[0] > 50 and pixels.shape[1] > 50, name
    assert pixels.std() > 5, f"{name} is blank"


def _assert_figure_with_content(path: Path) -> None:
    if path.suffix == ".svg":
        root = ElementTree.parse(path).getroot()  # well-formed, or this raises
        assert root.tag == f"{{{SVG}}}svg", path
        assert int(root.get("width", "0")) > 50 and int(root.get("height", "0")) > 50, path
        assert tooltips(path), f"{path} has no bar"  # a bar carries its value as a tooltip
        assert root.findall(f"{{{SVG}}}text"), f"{path} has no label"
        return
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    with Image.open(path) as image:
        _assert_not_blank(image, path.name)


def test_every_referenced_figure_exists_and_has_content(balance_output: Path) -> None:
    parser = _Sources()
    parser.feed((balance_output / "report.html").read_text())
    assert {
        "plots/class_histogram.svg",
        "plots/deficit_filled.svg",
        "plots/rubric_outcomes.svg",
        "plots/examples.png",
    } <= set(parser.images)
    for source in parser.images:
        _assert_figure_with_content(balance_output / source)
    markdown = (balance_output / "report.md").read_text()
    for source in parser.images:
        assert f"]({source})" in markdown


def test_the_class_histogram_has_a_bar_for_every_count(balance_output: Path) -> None:
    summary = json.loads((balance_output / "balance.json").read_text())
    tips = tooltips(balance_output / "plots" / "class_histogram.svg")  # "class: when: count"
    expected = [
        f"{name}: {when}: {entry[when]:,}"
        for when in ("before", "after")
        for name, entry in summary["classes"].items()
        if entry[when] > 0  # none: no bar on a log scale
    ]
    assert sorted(tips) == sorted(expected)
    assert any(entry["before"] == 0 for entry in summary["classes"].values())  # that case is here


def test_report_renders_in_headless_chromium(balance_output: Path) -> None:
    executable = chromium_path()
    with _sync_api().sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto((balance_output / "report.html").as_uri())
            page.wait_for_load_state("load")
            loaded = page.evaluate(
                "Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth, i.naturalHeight])"
            )
            headings = page.evaluate(
                "Array.from(document.querySelectorAll('h1,h2')).map(h => h.textContent)"
            )
            table_rows = page.evaluate("document.querySelectorAll('tbody tr').length")
            drawn = {
                image.get_attribute("src"): Image.open(io.BytesIO(image.screenshot()))
                for image in page.query_selector_all("img")
            }
        finally:
            browser.close()
    assert len(loaded) >= 4
    for source, complete, width, height in loaded:
        assert complete and width > 0 and height > 0, source
        _assert_not_blank(drawn[source], source)  # what the browser drew of it
    assert headings[0] == "Balance report"
    assert "Classes before and after" in headings and "Rubric outcomes" in headings
    summary = json.loads((balance_output / "balance.json").read_text())
    assert table_rows == sum(1 for c in summary["classes"].values() if c["deficit"] or c["filled"])


def test_every_label_stays_inside_its_figure_in_chromium(tmp_path: Path) -> None:
    """Long, slanted and odd names (control characters from a user's file) as a browser lays
    them out: every chart loads, and no label is cut off at an edge."""
    long_group = "a group name far longer than any axis has room for, cut short"
    groups = ["African American", "Hispanic or Latino", "Asian American", "White", long_group]

    def side(rate: float) -> dict[str, Any]:
        found = {g: {"n": 3 + n, "rates": {"neg": rate}} for n, g in enumerate(groups)}
        return {"groups": found, "largest_gap": {"label": "neg", "groups": groups[:2], "gap": 0.5}}

    classes = {
        name: {"before": before, "after": 9, "deficit": 9 - before, "filled": 9 - before}
        for name, before in (("tri\u000bangle", 1), ("x" * 70, 2), ("person", 0))
    }
    figures = [
        plots.attribute_balance(
            {"ethnicity": {"before": side(0.2), "after": side(0.4)}}, tmp_path / "a.svg"
        ),
        plots.class_histogram(classes, tmp_path / "h.svg"),
        plots.deficit_filled(classes, tmp_path / "d.svg"),
    ]
    with _sync_api().sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1000})
            for figure in figures:
                page.goto(figure.as_uri())
                size = page.evaluate(
                    "[document.documentElement.width.baseVal.value, document.documentElement.height.baseVal.value]"
                )
                labels = page.evaluate(
                    "Array.from(document.querySelectorAll('text')).map(t => {"
                    "const b = t.getBoundingClientRect(); return [t.textContent, b.left, b.right, b.top, b.bottom]})"
                )
                bars = page.evaluate("document.querySelectorAll('rect title').length")
                assert size[0] > 0 and bars > 0, figure.name
                for text, left, right, top, bottom in labels:
                    assert left >= 0 and right <= size[0], (figure.name, text, left, right)
                    assert top >= 0 and bottom <= size[1], (figure.name, text, top, bottom)
        finally:
            browser.close()


# SYNTHGATE_MAX_IMAGE_PIXELS (None: Pillow's own limit, here 2,000 pixels), whether a 160x120
# image (19,200 pixels) is read
PIXEL_LIMIT_CASES = [(None, False), ("5000", False), ("20000", True)]


def _pixel_limit(monkeypatch: pytest.MonkeyPatch, setting: str | None) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses over 2,000 (restored)
    if setting is None:
        monkeypatch.delenv("SYNTHGATE_MAX_IMAGE_PIXELS", raising=False)
    else:
        monkeypatch.setenv("SYNTHGATE_MAX_IMAGE_PIXELS", setting)


@pytest.mark.parametrize(
    ("setting", "readable"), [(None, False), ("110000", False), ("200000", True)]
)
def test_the_example_grid_applies_the_pixel_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str | None, readable: bool
) -> None:
    """An example image over Pillow's limit stopped the report (and the balance writing it)
    with a DecompressionBombError, and SYNTHGATE_MAX_IMAGE_PIXELS did not raise it: the limit
    is the one every image read has, and an image over it is a tile saying so."""
    path = tmp_path / "example.png"
    Image.fromarray(np.full((300, 400, 3), (200, 0, 0), np.uint8)).save(path)  # 120,000 px
    _pixel_limit(monkeypatch, setting)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000)  # Pillow refuses over 100,000
    example = {"path": path, "boxes": [], "status": "accepted", "caption": "red"}
    grid = plots.example_grid([example], tmp_path / "examples.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # the grid itself is 1200x300
    with Image.open(grid) as drawn:
        pixels = np.asarray(drawn.convert("RGB"))
    red = (pixels == (200, 0, 0)).all(axis=2).sum()
    assert (red > 0) == readable


@pytest.mark.parametrize(("setting", "readable"), PIXEL_LIMIT_CASES)
def test_show_applies_the_pixel_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str | None, readable: bool
) -> None:
    """show(sample, image_root=...) of an image over Pillow's limit was a DecompressionBombError
    traceback: an InputError naming the file, the limit and how to raise it."""
    from api_support import image_sample

    import synthgate as sg

    sample = image_sample(0, tmp_path)
    _pixel_limit(monkeypatch, setting)
    if readable:
        sg.show(sample, image_root=tmp_path).savefig(io.BytesIO(), format="png")
        return
    with pytest.raises(sg.InputError) as caught:
        sg.show(sample, image_root=tmp_path)
    message = str(caught.value)
    assert f"{sample.uri}: cannot read the image of sample {sample.id}" in message
    limit = "2,000" if setting is None else "5,000"
    assert f"limit of {limit} pixels" in message
    assert "SYNTHGATE_MAX_IMAGE_PIXELS=<pixels>" in message


def test_the_report_says_which_classes_end_over_target_because_of_backgrounds() -> None:
    from collections import Counter

    from synthgate.reports.render import _markdown, _sections

    def entry(before: int, target: int, planned: int, after: int) -> dict[str, int]:
        return {
            "before": before,
            "after": after,
            "target": target,
            "deficit": max(0, target - before),
            "planned": planned,
            "filled": after - before,
        }

    summary = {
        "kind": "coco",
        "source": "annotations.json",
        "target": "targets.yaml",
        "classes": {
            "person": entry(209, 500, 291, 500),  # its backgrounds' persons stood in: at target
            "bear": entry(2, 3, 1, 7),  # one pasted, four brought by backgrounds
            "airplane": entry(1, 1, 0, 3),
            "toaster": entry(2, 10, 8, 10),
        },
        "added": {"images": 3, "annotations": 9, "rows": 0},
        "left_out": {},
        "waiting_for_review": [],
        "skipped_input": [],
    }
    images = [
        {"status": "accepted", "real": Counter({"bear": 2, "person": 1})},
        {"status": "accepted", "real": Counter({"bear": 2, "airplane": 2})},
        {"status": "rejected", "real": Counter({"toaster": 5})},  # not merged
    ]
    figures = {"histogram": "h.svg", "deficit": "d.svg", "rubric": "r.svg"}
    markdown = _markdown(_sections(summary, figures, images, []))
    assert "| bear | 2 | 3 | 1 | 5 | 7 | yes, 4 over: 4 real objects of backgrounds |" in markdown
    assert (
        "| airplane | 1 | 1 | 0 | 2 | 3 | yes, 2 over: 2 real objects of backgrounds |" in markdown
    )
    assert "| person | 209 | 500 | 291 | 291 | 500 | yes |" in markdown
    assert "| toaster | 2 | 10 | 8 | 8 | 10 | yes |" in markdown
    assert "2 classes end over their target because of the real objects of the backgrounds" in (
        markdown
    )
    assert "- bear: 4 over its target of 3; its backgrounds brought 4" in markdown
    assert "- airplane: 2 over its target of 1; its backgrounds brought 2" in markdown


def test_an_example_is_shown_in_the_frame_its_labels_were_drawn_in(tmp_path: Path) -> None:
    """A photo stored 40x20 with EXIF orientation 6 (viewers show it 20x40) whose labels give
    40x20 was drawn on its stored pixels: its thumbnail, boxes and all, is in that frame, not
    turned under its boxes."""
    path = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (40, 20), "white").save(path, exif=exif)
    stored = plots._thumbnail(path, [([2, 2, 10, 5], "cat")], "#000000", labelled=(40, 20))
    shown = plots._thumbnail(path, [], "#000000", labelled=(20, 40))
    assert stored.width > stored.height and shown.height > shown.width


def test_report_md_shows_a_class_name_holding_html_rather_than_running_it() -> None:
    """report.html escaped a real dataset's class names; report.md kept them raw, and Markdown
    viewers (GitHub, VS Code, Jupyter) render raw HTML: `<img src=x onerror=...>` ran there."""
    from synthgate.reports.render import _html, _markdown, _sections

    name = '<img src=x onerror="alert(1)">'
    summary = {
        "kind": "coco",
        "source": "annotations.json",
        "target": "max",
        "classes": {
            name: {"before": 1, "after": 2, "target": 2, "deficit": 1, "planned": 1, "filled": 1}
        },
        "added": {"images": 1, "annotations": 1, "rows": 0},
        "left_out": {},
        "waiting_for_review": [],
        "skipped_input": [],
    }
    figures = {"histogram": "h.svg", "deficit": "d.svg", "rubric": "r.svg"}
    blocks = _sections(summary, figures, [], [])
    markdown = _markdown(blocks)
    assert "<img" not in markdown and "&lt;img src=x onerror=" in markdown
    assert "<img src=x" not in _html(blocks)  # as report.html already had it


def test_a_class_over_its_target_before_the_balance_is_not_said_to_be_over_because_of_backgrounds() -> (
    None
):
    """coco-tiny at `--target median` (4): report.md said "16 classes end over their target
    because of the real objects of the backgrounds", person among them ("209 over its target
    of 4; its backgrounds brought 4") with bus, cat and banana, all over their target before
    the balance added anything."""
    from collections import Counter

    from synthgate.reports.render import _markdown, _sections

    def entry(before: int, target: int, after: int) -> dict[str, int]:
        deficit = max(0, target - before)
        return {
            "before": before,
            "after": after,
            "target": target,
            "deficit": deficit,
            "planned": deficit,
            "filled": after - before,
        }

    summary = {
        "kind": "coco",
        "source": "annotations.json",
        "target": "median",
        "classes": {
            "person": entry(209, 4, 213),  # over before; its backgrounds brought 4 more
            "airplane": entry(1, 4, 7),  # three pasted, three brought by backgrounds
        },
        "added": {"images": 3, "annotations": 10, "rows": 0},
        "left_out": {},
        "waiting_for_review": [],
        "skipped_input": [],
    }
    images = [
        {"status": "accepted", "real": Counter({"person": 4, "airplane": 3})},
    ]
    figures = {"histogram": "h.svg", "deficit": "d.svg", "rubric": "r.svg"}
    markdown = _markdown(_sections(summary, figures, images, []))
    assert (
        "| airplane | 1 | 4 | 3 | 6 | 7 | yes, 3 over: 3 real objects of backgrounds |" in markdown
    )
    assert "1 class ends over its target because of the real objects" in markdown
    assert "- airplane: 3 over its target of 4; its backgrounds brought 3" in markdown
    assert "- person:" not in markdown
    assert (
        "| person | 209 | 4 | 0 | 4 | 213 | yes, over before the balance; "
        "4 real objects of backgrounds |" in markdown
    )


def test_what_was_left_out_by_status_reads_as_words_and_counts() -> None:
    """A text balance that rejected a rewrite: report.md said "Left out by status:
    {'rejected': 1}.", Python's repr of a dict, where the rest of the line is in words."""
    from synthgate.reports.render import _markdown, _sections

    summary = {
        "kind": "jsonl",
        "source": "tickets.jsonl",
        "target": "max",
        "classes": {
            "login": {
                "before": 8,
                "after": 24,
                "target": 41,
                "deficit": 33,
                "planned": 17,
                "filled": 16,
            }
        },
        "added": {"images": 0, "annotations": 0, "rows": 16},
        "left_out": {"rejected": ["tex-1"], "failed": ["tex-2", "tex-3"]},
        "waiting_for_review": [],
        "skipped_input": [],
    }
    figures = {"histogram": "h.svg", "deficit": "d.svg", "rubric": "r.svg"}
    markdown = _markdown(_sections(summary, figures, [], []))
    assert "Left out by status: rejected 1, failed 2." in markdown, markdown
    assert "{'" not in markdown
