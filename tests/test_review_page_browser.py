"""The review page in a real browser (Debian's headless Chromium driven by Playwright): an
annotator logs in, reviews three items with the keyboard, fixes one box by dragging its edge,
and the database holds exactly those decisions. A `<script>` in a category name never runs."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np
from api_support import BATCH, CATEGORIES, make_app, serving, text_sample, token_for
from browser import chromium
from PIL import Image
from sqlalchemy import select

from synthgate.api.review import mask_overlay
from synthgate.masks import decode_mask
from synthgate.review.queue import Decision
from synthgate.samples import ObjectLabel, Span
from synthgate.storage.tables import decisions, review_batches

XSS_CATEGORY = "<script>window.pwned=1</script>"
XSS_PROMPT = '<img src=x onerror="window.pwned=2">'


def current_item(page) -> int:
    return int(page.locator("#review").get_attribute("data-item"))


def as_stored(stored: list[ObjectLabel], objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The page's objects with the attributes of the `stored` objects their refs name (the
    page shows `{"ref": i}` alone, review/gold.py `blind`): as a fix of them is recorded."""
    return [{**o, "attributes": stored[o["attributes"]["ref"]].attributes} for o in objects]


def test_annotator_reviews_three_items_with_the_keyboard_and_fixes_a_box(tmp_path: Path):
    app = make_app(tmp_path, images=3, k=2, categories=[XSS_CATEGORY, "square"], prompt=XSS_PROMPT)
    token = token_for(app, "ann", "annotator")
    with serving(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "console",
            lambda message: errors.append(message.text) if message.type == "error" else None,
        )

        page.goto(f"{base}/login")
        page.fill("#token", token)
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert page.url.endswith("/review")

        # item 1: four levels by keyboard (focus moves down by itself), then accept
        first = current_item(page)
        assert page.locator("svg.boxes g.box").count() == 2
        assert page.evaluate("window.pwned") is None  # the category name did not run
        assert XSS_CATEGORY in page.locator("table.objects").inner_text()  # shown as text
        # no provenance: the prompt, like the sample id, tells where a task came from
        assert page.locator(".provenance").count() == 0 and "onerror" not in page.content()
        page.wait_for_function("document.getElementById('photo').naturalWidth === 160")
        page.keyboard.press("b")  # boxes toggle off and on
        assert page.locator("#boxes").is_hidden()
        page.keyboard.press("b")
        assert page.locator("#boxes").is_visible()
        for key in ("5", "3", "5", "1"):
            page.keyboard.press(key)
        assert page.locator("button.level.chosen").count() == 4
        with page.expect_navigation():
            page.keyboard.press("a")

        # item 2: a comment, one level, reject
        second = current_item(page)
        assert second != first
        page.fill("#comment", "blurry <b>edges</b>")
        page.keyboard.press("Escape")  # leave the text box: keys are shortcuts again
        page.keyboard.press("1")
        with page.expect_navigation():
            page.keyboard.press("r")

        # item 3: fix mode, drag the right edge of box 0 ten image pixels to the right, save
        third = current_item(page)
        assert third not in (first, second)
        page.keyboard.press("f")
        assert page.locator("#review.fixing").count() == 1
        original = page.evaluate("JSON.parse(document.getElementById('review-data').textContent)")
        x, y, w, h = original["objects"][0]["bbox"]
        edge = page.locator('g.box[data-index="0"] line.edge-right').bounding_box()
        photo = page.locator("#photo").bounding_box()
        scale = photo["width"] / original["width"]
        start_x, start_y = edge["x"] + edge["width"] / 2, edge["y"] + edge["height"] / 2
        page.mouse.move(start_x, start_y)
        page.mouse.down()
        page.mouse.move(start_x + 5 * scale, start_y, steps=3)
        page.mouse.move(start_x + 10 * scale, start_y, steps=3)
        page.mouse.up()
        with page.expect_navigation():
            page.keyboard.press("f")
        assert "All done" in page.content()
        assert not errors, errors

    with app.state.store.engine.connect() as connection:
        rows = {  # by the opaque id the page showed
            app.state.item_ids.public(r.item_id): r
            for r in connection.execute(
                select(decisions).where(decisions.c.annotator == "ann").order_by(decisions.c.id)
            )
        }
    assert set(rows) == {first, second, third}
    assert rows[first].verdict == "accept"
    assert rows[first].levels == {"correctness": 5, "completeness": 3, "precision": 5, "clarity": 1}
    assert rows[second].verdict == "reject"
    assert rows[second].levels == {"correctness": 1}
    assert rows[second].comment == "blurry <b>edges</b>"
    fixed = rows[third]
    assert fixed.verdict == "fix" and len(fixed.objects) == 2
    new_x, new_y, new_w, new_h = fixed.objects[0]["bbox"]
    assert (new_x, new_y, new_h) == (x, y, h)
    assert abs((new_w - w) - 10) <= 1, (w, new_w)
    assert fixed.objects[0]["mask"] is None  # the old mask no longer matches the moved edge
    held = app.state.queue.task(app.state.item_ids.internal(third)).sample  # k=2: not final
    shown = as_stored(held.objects, original["objects"])
    assert fixed.objects[0]["attributes"] == shown[0]["attributes"]
    assert fixed.objects[1] == shown[1]  # the other box is untouched
    assert fixed.original == shown  # the replaced labels are kept


def test_annotator_fixes_a_span_label_on_a_text_item(tmp_path: Path, monkeypatch):
    """Its first span's stored value is not the text it covers (what the text check flags and
    sends to review): the page sent it back, and the fix was refused."""
    import api_support

    made = api_support.text_sample

    def misaligned(index: int, **options):
        sample = made(index, **options)
        sample.spans[0] = sample.spans[0].model_copy(update={"value": "Anna Schmid"})
        return sample

    monkeypatch.setattr(api_support, "text_sample", misaligned)
    app = make_app(tmp_path, images=0, texts=1)
    token = token_for(app, "ann", "annotator")
    with serving(app) as base, chromium() as browser:
        page = browser.new_page()
        page.goto(f"{base}/login")
        page.fill("#token", token)
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert page.locator('mark[data-span="0"]').inner_text() == "Anna Schmidt"
        assert page.locator('select[data-span="0"]').is_disabled()
        page.keyboard.press("f")
        page.select_option('select[data-span="0"]', "ORG")  # the select hands keys back
        assert page.locator('mark[data-span="0"]').get_attribute("title") == "ORG"
        with page.expect_navigation():
            page.keyboard.press("f")
        assert "All done" in page.content()
    with app.state.store.engine.connect() as connection:
        row = connection.execute(select(decisions)).one()
    assert row.verdict == "fix"
    assert [(s["start"], s["end"], s["label"]) for s in row.spans] == [
        (s["start"], s["end"], label) for s, label in zip(row.original, ["ORG", "ORG"], strict=True)
    ]


def test_a_span_takes_a_label_another_text_of_the_batch_holds(tmp_path: Path):
    """The span-label select offers the batch's span labels, not only the text's own: one only
    another text holds is chosen in the browser, saved, and recorded."""
    app = make_app(tmp_path, images=1, texts=1, k=1)
    app.state.store.upsert_samples([text_sample(1, label="CUSTOMER")])
    app.state.queue.enqueue_batch(BATCH)
    token = token_for(app, "ann", "annotator")
    with serving(app) as base, chromium() as browser:
        page = browser.new_page()
        log_in(page, base, token)
        while page.locator('mark[data-span="0"]').count() == 0:  # the image item: accept it
            with page.expect_navigation():
                page.keyboard.press("a")
        own = page.locator('mark[data-span="0"]').get_attribute("title")
        other = {"PERSON": "CUSTOMER", "CUSTOMER": "PERSON"}[own]
        options = page.locator('select[data-span="0"] option').all_inner_texts()
        assert options == ["CUSTOMER", "ORG", "PERSON", "(not a span)"]
        page.keyboard.press("f")
        page.select_option('select[data-span="0"]', other)
        with page.expect_navigation():
            page.keyboard.press("f")
    with app.state.store.engine.connect() as connection:
        row = connection.execute(select(decisions).where(decisions.c.verdict == "fix")).one()
    assert [s["label"] for s in row.spans] == [other, "ORG"]


def log_in(page, base: str, token: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#token", token)
    with page.expect_navigation():
        page.click("button[type=submit]")


def two_tabs(browser, base: str, token: str) -> tuple[Any, Any, int]:
    """Two tabs of one login, both on the review page: (first, second, the item they show)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page, other = context.new_page(), context.new_page()
    log_in(page, base, token)
    other.goto(f"{base}/review")
    return page, other, current_item(page)


def test_shortcuts_work_after_the_masks_checkbox_is_clicked(tmp_path: Path):
    """A click on the boxes or masks checkbox leaves the focus on it: the keys that follow are
    still shortcuts (they were taken for typing, and nothing happened)."""
    app = make_app(tmp_path, images=2, k=1)
    token = token_for(app, "ann", "annotator")
    with serving(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        log_in(page, base, token)
        first = current_item(page)
        page.click("#toggle-masks")
        assert page.locator("#masks").is_hidden()
        page.keyboard.press("5")
        assert page.locator("button.level.chosen").count() == 1
        page.click("#toggle-boxes")
        with page.expect_navigation():
            page.keyboard.press("a")
        assert current_item(page) != first
    with app.state.store.engine.connect() as connection:
        row = connection.execute(select(decisions)).one()
    assert app.state.item_ids.public(row.item_id) == first
    assert (row.verdict, row.levels) == ("accept", {"correctness": 5})


def test_a_decision_after_logging_out_in_another_tab_says_to_log_in_again(tmp_path: Path):
    """Logged out in a second tab, the first tab's accept is not saved and says so in the page's
    words, with a link to log in (it said "missing token; send 'Authorization: Bearer
    <token>'"); logged in anew, the old page says to reload it; the item waits, undecided."""
    app = make_app(tmp_path, images=2, k=1)
    token = token_for(app, "ann", "annotator")
    with serving(app) as base, chromium() as browser:
        page, other, item = two_tabs(browser, base, token)
        with other.expect_navigation():
            other.click("form.logout button")

        page.keyboard.press("a")
        page.wait_for_selector("#status a", timeout=5000)
        assert "logged out" in page.locator("#status").inner_text()
        assert "Bearer" not in page.locator("#status").inner_text()
        assert page.locator("#status a").get_attribute("href") == "/login"

        log_in(other, base, token)  # a new session: the old page's CSRF token is stale
        page.keyboard.press("a")
        page.wait_for_selector("#status a[href='/review']", timeout=5000)
        assert "earlier login" in page.locator("#status").inner_text()
        with page.expect_navigation():
            page.click("#status a")
        assert current_item(page) == item
        with page.expect_navigation():
            page.keyboard.press("a")
    with app.state.store.engine.connect() as connection:
        row = connection.execute(select(decisions)).one()
    assert (app.state.item_ids.public(row.item_id), row.verdict) == (item, "accept")


def test_an_item_decided_in_another_tab_offers_the_next_one(tmp_path: Path):
    """Decided in one tab, the same item in a second tab said "not saved: 'ann' already decided
    item N" to every key, with no way on but a reload; it now links to the next item."""
    app = make_app(tmp_path, images=2, k=1)
    token = token_for(app, "ann", "annotator")
    with serving(app) as base, chromium() as browser:
        page, other, item = two_tabs(browser, base, token)
        assert current_item(other) == item  # the annotator's open item, in both tabs
        with page.expect_navigation():
            page.keyboard.press("a")
        other.keyboard.press("r")
        other.wait_for_selector("#status a[href='/review']", timeout=5000)
        assert "already decided" in other.locator("#status").inner_text()
        with other.expect_navigation():
            other.click("#status a")
        assert current_item(other) != item
    with app.state.store.engine.connect() as connection:
        rows = connection.execute(select(decisions)).all()
    assert [row.verdict for row in rows] == ["accept"]  # the second tab's reject was not saved


def test_a_narrow_window_stacks_the_image_above_the_rubric(tmp_path: Path):
    """At a phone's width the image keeps the window's width and nothing lies under the
    rubric (side by side, the image was 44 px wide and its table spilled under the rubric)."""
    app = make_app(tmp_path, images=1, k=1)
    token = token_for(app, "ann", "annotator")
    with serving(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 420, "height": 800})
        log_in(page, base, token)
        page.wait_for_function("document.getElementById('photo').naturalWidth === 160")
        photo = page.locator("#photo").bounding_box()
        sample = page.locator("section.sample").bounding_box()
        rubric = page.locator("#rubric").bounding_box()
        assert photo["width"] >= 300, photo
        assert sample["y"] + sample["height"] <= rubric["y"], (sample, rubric)
        assert page.evaluate(
            "[...document.querySelectorAll('section.sample *')].every("
            "e => e.getBoundingClientRect().right <= innerWidth)"
        )


def test_a_long_unbroken_word_stays_inside_the_text_card(tmp_path: Path, monkeypatch):
    """A text with a 400-character URL (and a span over it): it wraps inside the card, where
    it ran thousands of pixels past it, under the rubric and out of the window."""
    import api_support

    made = api_support.text_sample
    url = "https://example.com/" + "a" * 400

    def with_url(index: int, **options):
        sample = made(index, **options)
        start = len(sample.text) + 1
        sample.text = f"{sample.text} {url}"
        sample.spans.append(Span(start=start, end=start + len(url), label="ORG", value=url))
        return sample

    monkeypatch.setattr(api_support, "text_sample", with_url)
    app = make_app(tmp_path, images=0, texts=1, k=1)
    token = token_for(app, "ann", "annotator")
    with serving(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        log_in(page, base, token)
        assert url in page.locator("#text").inner_text()
        assert page.evaluate(
            "(() => { const card = document.querySelector('section.sample');"
            " const right = card.getBoundingClientRect().right;"
            " return card.scrollWidth <= card.clientWidth && [...card.querySelectorAll('*')]"
            ".every(e => e.getBoundingClientRect().right <= right); })()"
        )


def test_a_classification_text_offers_no_fix(tmp_path: Path):
    """A text judged by its document label cannot be fixed (a decision carries spans, not a
    label, and the API refuses the fix): the page offered Fix, and f, f ended in a 400 after
    the annotator had chosen it. Now there is no Fix button, f says what to do instead, and
    the accept that follows is recorded."""
    app = make_app(tmp_path, images=0, k=1)
    review = text_sample(0).model_copy(
        update={"text": "Still nothing after three weeks.", "spans": [], "doc_label": "positive"}
    )
    app.state.store.upsert_samples([review])
    app.state.queue.enqueue_batch(BATCH)
    token = token_for(app, "ann", "annotator")
    with serving(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        requests: list[str] = []
        page.on("request", lambda request: requests.append(f"{request.method} {request.url}"))
        log_in(page, base, token)
        assert page.locator("p.doc-label").inner_text() == "Label: positive"
        assert page.locator("#fix").count() == 0
        page.keyboard.press("f")
        page.keyboard.press("f")
        assert "reject it if not" in page.locator("#status").inner_text()
        assert page.locator("#review.fixing").count() == 0
        assert not [r for r in requests if r.startswith("POST") and "/api/" in r]  # none sent
        with page.expect_navigation():
            page.keyboard.press("r")
    with app.state.store.engine.connect() as connection:
        row = connection.execute(select(decisions)).one()
    assert row.verdict == "reject"


def test_a_fix_that_changes_nothing_is_not_sent(tmp_path: Path):
    """f, f (fix mode, then save) with no label changed recorded a 'fix' of the very labels
    shown, which counts as flagging a defect; the page now says to change something first."""
    app = make_app(tmp_path, images=1, k=1)
    token = token_for(app, "ann", "annotator")
    with serving(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        log_in(page, base, token)
        page.keyboard.press("f")
        page.keyboard.press("f")
        assert "nothing changed" in page.locator("#status").inner_text()
        assert page.locator("#review.fixing").count() == 1  # still fixing
        page.keyboard.press("Escape")
        with page.expect_navigation():
            page.keyboard.press("a")
    with app.state.store.engine.connect() as connection:
        row = connection.execute(select(decisions)).one()
    assert row.verdict == "accept"


# The mask overlay as the annotator sees it: #masks drawn at the image's size, whatever element
# it is (a server-drawn <img> once, a <canvas> now), as [height, width, RGBA].
OVERLAY_JS = """async () => {
  const el = document.getElementById("masks");
  if (el.decode) await el.decode();
  const data = JSON.parse(document.getElementById("review-data").textContent);
  const canvas = document.createElement("canvas");
  canvas.width = data.width;
  canvas.height = data.height;
  const context = canvas.getContext("2d");
  context.drawImage(el, 0, 0, data.width, data.height);
  return Array.from(context.getImageData(0, 0, data.width, data.height).data);
}"""


def shown_overlay(page) -> np.ndarray:
    data = page.evaluate("JSON.parse(document.getElementById('review-data').textContent)")
    pixels = np.array(page.evaluate(OVERLAY_JS), dtype=np.int16)
    return pixels.reshape(data["height"], data["width"], 4)


def assert_overlay(shown: np.ndarray, expected: np.ndarray) -> None:
    """Alpha exactly; colour up to the rounding of a translucent canvas (premultiplied)."""
    assert (shown[..., 3] == expected[..., 3]).all()
    drawn = expected[..., 3] > 0
    assert np.abs(shown[drawn][:, :3] - expected[drawn][:, :3]).max() <= 2


def drag_right_edge(page, index: int, by_px: float) -> None:
    """Drag the right edge of box `index` by `by_px` image pixels (fix mode)."""
    width = page.evaluate("JSON.parse(document.getElementById('review-data').textContent).width")
    scale = page.locator("#photo").bounding_box()["width"] / width
    edge = page.locator(f'g.box[data-index="{index}"] line.edge-right').bounding_box()
    x, y = edge["x"] + edge["width"] / 2, edge["y"] + edge["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + by_px * scale, y, steps=4)
    page.mouse.up()


def test_the_mask_overlay_follows_the_fix(tmp_path: Path):
    """The masks were one server-drawn image: after a box edge moved (the fix drops that
    box's mask), a box was deleted or given another class, the page still showed the old
    masks. The page now draws them from the labels as the fix has them: the moved box's mask
    is gone, a new class brings its colour, a deleted box takes its mask along, and Escape
    brings back the overlay the server draws."""
    app = make_app(tmp_path, images=1, k=1)
    token = token_for(app, "ann", "annotator")
    with serving(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        log_in(page, base, token)
        task = app.state.queue.task(app.state.item_ids.internal(current_item(page)))
        served = np.array(Image.open(io.BytesIO(mask_overlay(task.sample))), dtype=np.int16)
        first, second = (decode_mask(o.mask) for o in task.sample.objects)
        assert_overlay(shown_overlay(page), served)  # as masks.png draws them

        page.keyboard.press("f")
        drag_right_edge(page, 0, 6)
        shown = shown_overlay(page)
        assert (shown[first & ~second][..., 3] == 0).all()  # the moved box's mask is gone
        assert_overlay(shown, np.where(first[..., None], 0, served))  # the other one stays

        page.select_option('select.object-category[data-index="1"]', "circle")
        assert page.locator('g.box[data-index="1"] text').text_content() == "circle"
        colors = page.evaluate("JSON.parse(document.getElementById('review-data').textContent)")
        circle = colors["colors"]["circle"]
        assert page.locator('g.box[data-index="1"] rect').get_attribute("stroke") == circle
        shown = shown_overlay(page)
        rgb = [int(circle[i : i + 2], 16) for i in (1, 3, 5)]
        assert np.abs(shown[second][:, :3] - rgb).max() <= 2  # the new class's colour

        page.click('button.object-delete[data-index="1"]')
        assert page.locator('g.box[data-index="1"]').is_hidden()
        assert (shown_overlay(page)[..., 3] == 0).all()  # no box left with its mask

        page.keyboard.press("Escape")  # the fix is dropped: the labels as stored again
        assert page.locator('g.box[data-index="1"]').is_visible()
        assert page.locator('g.box[data-index="1"] text').text_content() == "square"
        assert_overlay(shown_overlay(page), served)
        assert not errors, errors


def test_a_fix_deletes_a_box_and_changes_a_class(tmp_path: Path):
    """The Fix form could only move edges. Each box now has a class select, offering the
    batch's classes (a class no sample of it holds yet included), and a delete button (pressed
    again, it restores the box); the fix sends the boxes left, as the queue checks them."""
    app = make_app(tmp_path, images=1, k=1)
    with app.state.store.engine.begin() as connection:  # a class the batch's config names
        connection.execute(review_batches.update().values(labels=["circle", "square", "star"]))
    stored = app.state.queue.task(1).sample  # as read from COCO: attributes the page never shows
    for i, obj in enumerate(stored.objects):
        obj.attributes = {"annotation_id": 11 + i, "iscrowd": False}
    app.state.store.upsert_samples([stored.model_copy(update={"status": "review"})])
    token = token_for(app, "ann", "annotator")
    with serving(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        log_in(page, base, token)
        classes = page.locator('select.object-category[data-index="0"]')
        delete = page.locator('button.object-delete[data-index="1"]')
        assert classes.is_disabled() and delete.is_disabled()  # until Fix is pressed
        options = classes.locator("option").all_inner_texts()
        assert options == ["circle", "square", "star"]
        original = page.evaluate("JSON.parse(document.getElementById('review-data').textContent)")

        page.keyboard.press("f")
        page.select_option('select.object-category[data-index="0"]', "star")
        assert page.locator('g.box[data-index="0"] text').text_content() == "star"
        delete.click()
        assert page.locator('g.box[data-index="1"]').is_hidden()
        assert page.locator('tr.object[data-index="1"].removed').count() == 1
        delete.click()  # restored
        assert page.locator('g.box[data-index="1"]').is_visible()
        delete.click()
        assert delete.inner_text() == "restore"
        page.keyboard.press("5")  # the keys are shortcuts still
        assert page.locator("button.level.chosen").count() == 1
        with page.expect_navigation():
            page.keyboard.press("f")
        assert "All done" in page.content()
        assert not errors, errors
    with app.state.store.engine.connect() as connection:
        row = connection.execute(select(decisions)).one()
    assert row.verdict == "fix" and row.levels == {"correctness": 5}
    assert [o["attributes"] for o in original["objects"]] == [{"ref": 0}, {"ref": 1}]
    shown = as_stored(stored.objects, original["objects"])
    assert shown[0]["attributes"] == {"annotation_id": 11, "iscrowd": False}
    assert row.objects == [{**shown[0], "category": "star"}]  # mask and attributes kept
    assert row.original == shown


def drag_across(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Drag across the image from one image point to another."""
    width = page.evaluate("JSON.parse(document.getElementById('review-data').textContent).width")
    photo = page.locator("#photo").bounding_box()
    scale = photo["width"] / width
    (x0, y0), (x1, y1) = ((photo["x"] + x * scale, photo["y"] + y * scale) for x, y in (start, end))
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=3)
    page.mouse.move(x1, y1, steps=3)
    page.mouse.up()


def test_a_fix_draws_a_new_box_in_a_narrow_window(tmp_path: Path):
    """A box the sample lacks could not be added: in fix mode a drag across the image now
    draws one, of the class chosen in the hint (changeable in its row, like any box), with no
    mask; Escape takes it away again. At a phone's width the fix controls stay in the window."""
    app = make_app(tmp_path, images=1, k=1)
    stored = app.state.queue.task(1).sample
    token = token_for(app, "ann", "annotator")
    with serving(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 420, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        log_in(page, base, token)
        page.wait_for_function("document.getElementById('photo').naturalWidth === 160")
        original = page.evaluate("JSON.parse(document.getElementById('review-data').textContent)")
        drag_across(page, (20, 70), (60, 100))  # not in fix mode: draws nothing
        assert page.locator("svg.boxes g.box").count() == 2

        page.keyboard.press("f")
        drag_across(page, (20, 70), (60, 100))
        assert page.locator("svg.boxes g.box").count() == 3
        page.keyboard.press("Escape")  # the fix dropped: the new box too
        assert page.locator("svg.boxes g.box").count() == 2
        assert page.locator("table.objects tr.object").count() == 2

        page.keyboard.press("f")
        page.select_option("#new-class", "square")
        drag_across(page, (60, 100), (20, 70))  # any direction
        row = page.locator('tr.object[data-index="2"]')
        assert row.locator(".object-category").input_value() == "square"
        assert page.locator('g.box[data-index="2"] text').text_content() == "square"
        assert page.evaluate(
            "[...document.querySelectorAll('section.sample *')].every("
            "e => e.getBoundingClientRect().right <= innerWidth)"
        )
        with page.expect_navigation():
            page.keyboard.press("f")
        assert "All done" in page.content()
        assert not errors, errors
    with app.state.store.engine.connect() as connection:
        row = connection.execute(select(decisions)).one()
    assert row.objects[:2] == as_stored(stored.objects, original["objects"])
    added = row.objects[2]
    assert added["category"] == "square" and added["mask"] is None and added["attributes"] == {}
    assert all(abs(a - b) <= 1 for a, b in zip(added["bbox"], [20, 70, 40, 30], strict=True))
    assert added["area"] == added["bbox"][2] * added["bbox"][3]


def test_an_admin_is_sent_to_the_admin_page_and_leaves_an_annotator_out_there(tmp_path: Path):
    """An admin on /review is handed no item (a claim would count as an annotator's): the page
    says why and links to the admin page, whose checkboxes leave an annotator out of the
    agreement."""
    app = make_app(tmp_path, images=3, k=3)
    queue = app.state.queue
    for who in ("ann", "bob", "sloppy"):
        while (task := queue.next_item(who)) is not None:
            verdict = "accept" if who == "sloppy" or task.item_id % 2 else "reject"
            queue.decide(task.item_id, who, Decision(verdict=verdict))
    token = token_for(app, "boss", "admin")
    with serving(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{base}/login")
        page.fill("#token", token)
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert page.url.endswith("/admin")
        assert page.locator("nav a[href='/review']").count() == 0
        page.goto(f"{base}/review")
        assert "Reviewing is for annotators" in page.locator("h1").inner_text()
        assert "--role annotator" in page.locator("main").inner_text()
        with page.expect_navigation():
            page.click("text=Go to the admin page")
        assert page.url.endswith("/admin")
        page.check("#exclude-form input[value=sloppy]")
        with page.expect_navigation():
            page.click("#exclude-form button[type=submit]")
        assert page.url.endswith("/admin?exclude=sloppy")
        assert "Left out: sloppy (3 decisions)" in page.locator("#excluded").inner_text()
        assert page.locator("#exclude-form input[value=sloppy]").is_checked()
        assert "sloppy" not in page.locator("table.agreement").first.inner_text()
    assert queue.stats()["annotators"].keys() == {"ann", "bob", "sloppy"}  # boss took nothing


def stored_as(app, item: int, **update: Any) -> None:
    """Item `item`'s sample stored again with `update` (its status review, as the queue keeps
    it)."""
    stored = app.state.queue.task(item).sample
    app.state.store.upsert_samples([stored.model_copy(update={"status": "review", **update})])


def test_a_box_at_the_top_of_the_image_shows_its_class(tmp_path: Path):
    """Each box's class is written just above its top edge: a box touching the image's top had
    its tag drawn above the image, cut away, and nothing on the image said its class. A long
    class name on a box at the right edge ran past the image, cut there too."""
    app = make_app(tmp_path, images=1, k=1, categories=["circle", "square-with-rounded-corners"])
    objects = app.state.queue.task(1).sample.objects
    x, _, w, h = objects[0].bbox
    objects[0] = objects[0].model_copy(update={"bbox": [x, 0.0, w, h], "mask": None})
    _, y, w, h = objects[1].bbox
    objects[1] = objects[1].model_copy(update={"bbox": [160 - w, y, w, h], "mask": None})
    stored_as(app, 1, objects=objects)
    token = token_for(app, "ann", "annotator")
    with serving(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        log_in(page, base, token)
        photo = page.locator("#photo").bounding_box()
        for index in (0, 1):
            tag = page.locator(f'g.box[data-index="{index}"] text.tag').bounding_box()
            assert tag["height"] > 5, tag
            assert (
                photo["y"] <= tag["y"] and tag["y"] + tag["height"] <= photo["y"] + photo["height"]
            ), (index, tag, photo)
            assert (
                photo["x"] <= tag["x"] and tag["x"] + tag["width"] <= photo["x"] + photo["width"]
            ), (index, tag, photo)
        for key in ("b", "f", "Escape", "b"):  # redrawn while the boxes were off, then shown
            page.keyboard.press(key)
        assert page.locator('g.box[data-index="0"] text.tag').bounding_box()["y"] >= photo["y"]
        page.keyboard.press("f")  # a box moved to the top in a fix keeps its tag in view too
        drag_across(page, (100, 0), (140, 20))
        tag = page.locator('g.box[data-index="2"] text.tag').bounding_box()
        assert photo["y"] <= tag["y"], (tag, photo)


def test_every_control_of_the_review_page_has_a_name_that_says_what_it_sets(tmp_path: Path):
    """A screen reader read the rubric as sixteen buttons named "5", "3" and "1" (which
    criterion they set was nowhere in their names, nor that they are toggles), and a text's
    span-label selects had no name at all."""
    app = make_app(tmp_path, images=1, texts=1, k=1)
    token = token_for(app, "ann", "annotator")
    with serving(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        log_in(page, base, token)
        for _ in range(2):  # the image item, then the text item
            tree = page.locator("main").aria_snapshot()
            unnamed = re.findall(
                r"^\s*- (?:combobox|button|checkbox|textbox)(?: \[.*)?:?$", tree, re.M
            )
            assert not unnamed, tree
            assert not re.search(r'button "\d"', tree), tree
            level = page.get_by_role("button", name="precision 3", exact=True)
            assert level.get_attribute("aria-pressed") == "false"
            level.click()
            assert level.get_attribute("aria-pressed") == "true"
            if page.locator("#text").count():
                assert page.get_by_role("combobox", name="label of span 1").is_disabled()
                break
            with page.expect_navigation():
                page.keyboard.press("a")
        else:
            raise AssertionError("no text item")


def test_an_image_that_does_not_load_is_said_and_not_accepted_or_fixed(tmp_path: Path):
    """Its file gone (a run folder moved, a blob store down), the item showed the boxes over a
    blank, a broken-image icon at most, and 'a' accepted labels nobody could see. The page now
    says the image did not load and what to do, and sends no accept or fix."""
    app = make_app(tmp_path, images=1, k=1)
    (tmp_path / "run" / app.state.queue.task(1).sample.uri).unlink()
    token = token_for(app, "ann", "annotator")
    with serving(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        log_in(page, base, token)
        sent: list[str] = []
        page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
        page.wait_for_selector("#status.error", timeout=5000)
        said = page.locator("#status").inner_text()
        assert "image did not load" in said and "reload" in said, said
        assert "reject the item" in said, said
        for key in ("a", "f"):
            page.keyboard.press(key)
        page.click("#accept")
        page.wait_for_timeout(300)
        assert not sent, sent
        assert "image did not load" in page.locator("#status").inner_text()
    with app.state.store.engine.connect() as connection:
        assert connection.execute(select(decisions)).first() is None


def mark_colors(page) -> dict[str, str]:
    """The background of each highlighted span, by its label as the page shows it."""
    return page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('mark.span')].map("
        "m => [m.title, getComputedStyle(m).backgroundColor]))"
    )


def test_a_span_label_keeps_its_colour_on_every_text_and_after_a_fix(tmp_path: Path):
    """A span's colour came from its label's place among the labels of its own text: ORG was
    one colour on a text with PERSON and another on a text with CUSTOMER, and a span
    relabelled in a fix kept its old label's colour."""
    app = make_app(tmp_path, images=0, texts=1, k=1)
    app.state.store.upsert_samples([text_sample(1, label="CUSTOMER")])
    app.state.queue.enqueue_batch(BATCH)
    token = token_for(app, "ann", "annotator")
    with serving(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        log_in(page, base, token)
        first = mark_colors(page)
        with page.expect_navigation():
            page.keyboard.press("a")
        second = mark_colors(page)
        assert first["ORG"] == second["ORG"], (first, second)
        assert len({*first.values(), *second.values()}) == 3  # ORG, PERSON, CUSTOMER
        page.keyboard.press("f")
        page.select_option('select[data-span="0"]', "ORG")
        colors = page.evaluate(
            "[...document.querySelectorAll('mark.span')].map(m => getComputedStyle(m)"
            ".backgroundColor)"
        )
        assert colors == [first["ORG"], first["ORG"]], colors


def test_a_held_key_decides_one_item(tmp_path: Path):
    """'a' held a moment too long: the key's auto-repeat reached the next item as soon as it
    loaded and accepted it too, unseen. A repeated key press now decides nothing."""
    app = make_app(tmp_path, images=3, k=1)
    token = token_for(app, "ann", "annotator")
    with serving(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        log_in(page, base, token)
        first = current_item(page)
        with page.expect_navigation():
            page.keyboard.down("a")
        second = current_item(page)
        # still held: Playwright sends it again with repeat set, as a keyboard does
        page.keyboard.down("a")
        page.wait_for_timeout(500)
        assert current_item(page) == second
        page.keyboard.up("a")
        with page.expect_navigation():
            page.keyboard.press("r")  # a fresh press decides
    with app.state.store.engine.connect() as connection:
        rows = connection.execute(select(decisions).order_by(decisions.c.id)).all()
    shown = [(app.state.item_ids.public(r.item_id), r.verdict) for r in rows]
    assert shown == [(first, "accept"), (second, "reject")]


def test_the_admin_page_fits_a_narrow_window(tmp_path: Path):
    """At a phone's width the admin page's tables (the agreement's six columns, the latest
    decisions with their comments) ran 200 px past the window: the whole page scrolled
    sideways, the cards with it. Each card now keeps its table, scrolling it alone."""
    app = make_app(tmp_path, images=3, k=2)
    queue = app.state.queue
    for who, verdict in (("ann", "accept"), ("bob", "reject")):
        while (task := queue.next_item(who)) is not None:
            queue.decide(task.item_id, who, Decision(verdict=verdict, comment="edges " * 20))
    token = token_for(app, "boss", "admin")
    with serving(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 420, "height": 900})
        log_in(page, base, token)
        assert page.locator("table.agreement").count() >= 2
        assert page.evaluate("document.documentElement.scrollWidth") <= 420
        assert page.evaluate(
            "[...document.querySelectorAll('main > .card, main > section')].every("
            "e => e.getBoundingClientRect().right <= innerWidth)"
        )


def test_an_error_goes_once_the_next_step_works(tmp_path: Path):
    """'2' said "levels are 5 (gold), 3 ... or 1" in red; the '5' that followed set its level,
    and the red message stayed, as if that had failed too; so did "nothing changed yet" once a
    box was given another class."""
    app = make_app(tmp_path, images=1, k=1)
    token = token_for(app, "ann", "annotator")
    with serving(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        log_in(page, base, token)
        status = page.locator("#status")
        page.keyboard.press("2")
        assert "levels are" in status.inner_text()
        page.keyboard.press("5")
        assert status.inner_text() == "" and page.locator("#status.error").count() == 0
        page.keyboard.press("f")
        page.keyboard.press("f")
        assert "nothing changed" in status.inner_text()
        page.select_option('select.object-category[data-index="0"]', "square")
        assert status.inner_text() == ""


def test_fix_mode_is_left_by_a_button_too(tmp_path: Path):
    """Fix mode said "Esc to cancel", and Esc was the only way out short of a reload, which a
    touch screen has not: a Cancel button now shows while fixing, and drops the fix as Esc."""
    app = make_app(tmp_path, images=1, k=1)
    token = token_for(app, "ann", "annotator")
    with serving(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 360, "height": 900})
        log_in(page, base, token)
        cancel = page.get_by_role("button", name="Cancel fix")
        assert cancel.count() == 0 or cancel.is_hidden()
        page.click("#fix")
        assert page.locator("#review.fixing").count() == 1
        card = page.locator("section.decide").bounding_box()
        for button in ("#accept", "#reject", "#fix", "#cancel-fix"):  # none past the card
            shown = page.locator(button).bounding_box()
            assert shown["x"] + shown["width"] <= card["x"] + card["width"], (button, shown, card)
        page.click('button.object-delete[data-index="1"]')
        assert page.locator('g.box[data-index="1"]').is_hidden()
        cancel.click()
        assert page.locator("#review.fixing").count() == 0 and cancel.is_hidden()
        assert page.locator('g.box[data-index="1"]').is_visible()
        with page.expect_navigation():
            page.click("#accept")
    with app.state.store.engine.connect() as connection:
        assert connection.execute(select(decisions.c.verdict)).scalar_one() == "accept"


def test_an_annotator_is_not_held_on_an_item_whose_image_is_missing(tmp_path: Path):
    """The image file of the item an annotator is given is gone. The page blocked every
    verdict, and its 'Reload' handed them the same item (their open task comes first): they
    judged nothing else, the other open item waiting, until a lead ran review release. They
    may reject it, the comment saying why, and go on to the next item."""
    app = make_app(tmp_path, images=2, k=1)
    token = token_for(app, "ann", "annotator")
    with serving(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        log_in(page, base, token)
        held = current_item(page)
        task = app.state.queue.task(app.state.item_ids.internal(held))
        (tmp_path / "run" / task.sample.uri).unlink()
        page.reload()
        page.wait_for_selector("#status.error", timeout=5000)
        with page.expect_navigation():
            page.keyboard.press("r")
        assert current_item(page) != held
    with app.state.store.engine.connect() as connection:
        rows = connection.execute(select(decisions.c.verdict, decisions.c.comment)).all()
    assert [tuple(row) for row in rows] == [("reject", "the image did not load")]


def test_a_fix_with_unsaved_edits_is_not_dropped_by_a_reload_unasked(tmp_path: Path):
    """A reload or a link away in fix mode dropped the fix's edits without a word, and every
    row's delete button was named "delete" alone: a screen reader did not say which box it
    deletes. Each is now named with its box and class, and the browser asks before a page
    holding edits not saved is left; a page without edits (or saved) is left unasked."""
    app = make_app(tmp_path, images=2, k=1)
    token = token_for(app, "ann", "annotator")
    with serving(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        asked: list[str] = []

        def answer(dialog) -> None:
            asked.append(dialog.type)
            if len(asked) == 1:
                dialog.dismiss()  # stay: the edits are kept
            else:
                dialog.accept()

        page.on("dialog", answer)
        log_in(page, base, token)
        item = current_item(page)
        stored = app.state.queue.task(app.state.item_ids.internal(item)).sample
        names = [f"delete box {i}: {o.category}" for i, o in enumerate(stored.objects)]
        for name in names:
            assert page.get_by_role("button", name=name, exact=True).count() == 1

        page.keyboard.press("f")  # fix mode, nothing changed yet: a reload asks nothing
        with page.expect_navigation():
            page.reload()
        assert asked == [] and current_item(page) == item

        page.keyboard.press("f")
        other = next(c for c in CATEGORIES if c != stored.objects[0].category)
        page.select_option('select.object-category[data-index="0"]', other)
        page.get_by_role("button", name=names[1], exact=True).click()
        assert page.get_by_role("button", name=f"delete box 0: {other}", exact=True).count() == 1
        restore = page.get_by_role("button", name=names[1].replace("delete", "restore"))
        assert restore.count() == 1 and restore.inner_text() == "restore"

        with page.expect_event("dialog", timeout=5_000):  # what the old page never showed
            page.evaluate("setTimeout(() => location.reload(), 0)")
        assert asked == ["beforeunload"]  # dismissed: the page and its edits stay
        assert page.locator("#review.fixing").count() == 1
        assert page.locator('g.box[data-index="1"]').is_hidden()

        with page.expect_navigation():
            page.evaluate("setTimeout(() => location.reload(), 0)")
        assert asked == ["beforeunload", "beforeunload"]  # left, as asked
        assert page.locator("#review.fixing").count() == 0

        page.keyboard.press("f")
        page.get_by_role("button", name=names[1], exact=True).click()
        with page.expect_navigation():
            page.keyboard.press("f")  # saved: the next item loads unasked
        assert len(asked) == 2 and current_item(page) != item
        assert not errors, errors
    with app.state.store.engine.connect() as connection:
        row = connection.execute(select(decisions)).one()
    assert row.verdict == "fix" and len(row.objects) == len(stored.objects) - 1
