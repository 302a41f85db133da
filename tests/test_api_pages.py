"""The server-rendered pages: login by cookie, the review and admin pages, escaping, CSRF."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import pytest
from api_support import (
    BATCH,
    accept_every_task,
    bearer,
    image_sample,
    make_app,
    seed_batch,
    text_sample,
    token_for,
)
from fastapi.testclient import TestClient

from synthgate.api.auth import SESSION_COOKIE
from synthgate.samples import sample_id

XSS = "<script>window.pwned=1</script>"
XSS_PROMPT = '<img src=x onerror="window.pwned=2">'


def login(client: TestClient, token: str) -> None:
    response = client.post("/login", data={"token": token}, follow_redirects=False)
    assert response.status_code == 303, response.text


def csrf_of(page: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', page).group(1)


@pytest.fixture
def app(tmp_path: Path):
    return make_app(tmp_path, images=2, texts=1, k=2)


def test_login_sets_an_httponly_strict_cookie_and_redirects_by_role(app):
    tokens = {role: token_for(app, role, role) for role in ("annotator", "requester", "admin")}
    for role, home in (("annotator", "/review"), ("requester", "/docs"), ("admin", "/admin")):
        with TestClient(app) as client:
            response = client.post("/login", data={"token": tokens[role]}, follow_redirects=False)
            assert response.status_code == 303 and response.headers["location"] == home
            cookie = response.headers["set-cookie"]
            assert cookie.startswith(f"{SESSION_COOKIE}=")
            assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie


def test_the_login_page_sends_someone_logged_in_home(app):
    """Back from the first item lands on /login (the login's redirect replaced the form in the
    history): a logged-in annotator goes on to their items, not to a form asking for a token."""
    with TestClient(app) as client:
        login(client, token_for(app, "ann", "annotator"))
        response = client.get("/login", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/review"


def test_bad_token_and_no_session(app):
    with TestClient(app) as client:
        bad = client.post("/login", data={"token": "nope"})
        assert bad.status_code == 401 and "not valid" in bad.text
        # a paste far longer than a token: the login page again, not a JSON 422 quoting it
        pasted = "created annotator 'ann'; the token is shown only now: " + "x" * 300
        long = client.post("/login", data={"token": pasted})
        assert long.status_code == 401 and "not valid" in long.text
        assert long.headers["content-type"].startswith("text/html") and "xxxxx" not in long.text
        for page in ("/review", "/admin", "/"):
            response = client.get(page, follow_redirects=False)
            assert response.status_code == 303 and response.headers["location"] == "/login"


@pytest.mark.parametrize(("role", "page"), [("requester", "/review"), ("annotator", "/admin")])
def test_pages_refuse_the_wrong_role(app, role, page):
    with TestClient(app) as client:
        login(client, token_for(app, "someone", role))
        response = client.get(page)
        assert response.status_code == 403 and "needs the" in response.text


def test_the_review_page_hands_an_admin_no_item_and_points_to_the_admin_page(app):
    with TestClient(app) as client:
        login(client, token_for(app, "boss", "admin"))
        page = client.get("/review")
        home = client.get("/admin").text
    assert page.status_code == 403
    assert "Reviewing is for annotators" in page.text and "--role annotator" in page.text
    assert '<a href="/admin">Go to the admin page</a>' in page.text
    assert "review-data" not in page.text
    assert 'href="/review"' not in home  # no Review link in an admin's menu
    stats = app.state.queue.stats()
    assert stats["annotators"] == {} and stats["queue_depth"] == 2 * 3  # nothing claimed


def test_review_page_shows_the_image_item(app):
    with TestClient(app) as client:
        login(client, token_for(app, "ann", "annotator"))
        page = client.get("/review")
    assert page.status_code == 200
    html = page.text
    item = app.state.item_ids.public(1)  # the first item, under its opaque id
    assert item != 1
    assert f'src="/api/review/{item}/image"' in html
    # the page draws the masks itself, from the labels in its data, so they follow a fix
    assert '<canvas class="masks" id="masks" width="160" height="120">' in html
    assert html.count('class="box"') == 2  # one per object, drawn over the image
    for criterion in ("correctness", "completeness", "precision", "clarity"):
        assert f'data-criterion="{criterion}" data-level="5"' in html
    assert "box 2 px loose" not in html  # the validator's finding: reviews are blind to it
    # nothing of where the sample came from (it tells gold from real): no sample id, file
    # name or provenance; the header names the item by its opaque id
    assert f"<h1>Item {item} <small>image</small></h1>" in html
    assert not [i for i in range(4) if sample_id(BATCH, "image", i) in html]
    assert "procedural" not in html and "images/" not in html
    data = json.loads(re.search(r'<script id="review-data"[^>]*>(.*?)</script>', html, re.S)[1])
    assert data["item_id"] == item and len(data["objects"]) == 2
    assert page.headers["cache-control"] == "no-store"


def test_review_page_says_when_nothing_is_left(tmp_path):
    app = make_app(tmp_path, images=0)
    with TestClient(app) as client:
        login(client, token_for(app, "ann", "annotator"))
        page = client.get("/review")
    assert page.status_code == 200 and "All done" in page.text and 'href="/review"' in page.text


def test_review_page_highlights_spans_of_a_text_item(tmp_path):
    app = make_app(tmp_path, images=0, texts=1)
    with TestClient(app) as client:
        login(client, token_for(app, "ann", "annotator"))
        html = client.get("/review").text
    assert re.search(
        r'<mark class="span label-\d" data-span="0" title="PERSON">Anna Schmidt</mark>', html
    )
    assert re.search(
        r'<mark class="span label-\d" data-span="1" title="ORG">Acme GmbH</mark>', html
    )
    assert html.count('class="span-label"') == 2


def offered(html: str, select_class: str) -> list[list[str]]:
    """The values each `<select class=...>` of a page offers, in order."""
    return [
        re.findall(r'<option value="([^"]*)"', options)
        for options in re.findall(
            rf'<select class="{select_class}"[^>]*>(.*?)</select>', html, re.S
        )
    ]


def test_the_fix_form_offers_the_batchs_labels_of_the_items_own_kind(tmp_path):
    """In a batch of images and texts, a box's class select offers the batch's object classes
    and a span's label select the batch's span labels (one another text holds included), never
    the other kind's: the server refuses them."""
    app = make_app(tmp_path, images=1, texts=1, k=1)
    app.state.store.upsert_samples([text_sample(1, label="CUSTOMER")])
    app.state.queue.enqueue_batch(BATCH)
    pages = {}
    for who in ("ann", "bob", "cy"):
        with TestClient(app) as client:
            login(client, token_for(app, who, "annotator"))
            html = client.get("/review").text
        modality = re.search(r"<small>(image|text)</small>", html)[1]
        pages.setdefault(modality, []).append(html)
    assert len(pages["image"]) == 1 and len(pages["text"]) == 2
    # each box's, and the one a box drawn in fix mode gets
    assert offered(pages["image"][0], "object-category") == [["circle", "square"]] * 3
    for html in pages["text"]:
        assert offered(html, "span-label") == [["CUSTOMER", "ORG", "PERSON", ""]] * 2


def test_review_page_shows_the_label_of_a_classification_text(tmp_path):
    """The label is what such a text is judged by: without it a reviewer cannot tell a
    wrongly labelled text from a right one."""
    app = make_app(tmp_path, images=0, k=1)
    text = "Still nothing after three weeks."
    review = text_sample(0).model_copy(update={"text": text, "spans": [], "doc_label": "positive"})
    app.state.store.upsert_samples([review])
    app.state.queue.enqueue_batch(BATCH)
    with TestClient(app) as client:
        login(client, token_for(app, "ann", "annotator"))
        html = client.get("/review").text
    assert text in html
    assert '<p class="doc-label">Label: <strong>positive</strong></p>' in html


def test_user_text_is_escaped_in_the_pages(tmp_path):
    app = make_app(tmp_path, images=1, categories=[XSS, "square"], prompt=XSS_PROMPT)
    annotator, admin = token_for(app, "ann", "annotator"), token_for(app, "boss", "admin")
    with TestClient(app) as client:
        login(client, annotator)
        html = client.get("/review").text
        task = client.get("/api/review/next", headers=bearer(annotator)).json()
        client.post(
            f"/api/review/{task['item_id']}/decision",
            json={"verdict": "reject", "comment": XSS},
            headers=bearer(annotator),
        )
    with TestClient(app) as client:
        login(client, admin)
        admin_html = client.get("/admin").text
    for page in (html, admin_html):
        assert "<script>window" not in page and "<img src=x" not in page
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html  # the category, shown as text
    assert "img src=x" not in html  # the prompt is not shown at all (it tells the source)
    assert "\\u003cscript\\u003e" in html  # the JSON block for the script, JSON-escaped
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in admin_html  # the comment


def test_cookie_sessions_need_the_csrf_header_to_change_anything(app):
    with TestClient(app) as client:
        login(client, token_for(app, "ann", "annotator"))
        page = client.get("/review").text
        item = json.loads(re.search(r'id="review-data"[^>]*>(.*?)</script>', page, re.S)[1])[
            "item_id"
        ]
        url = f"/api/review/{item}/decision"
        refused = client.post(url, json={"verdict": "accept"})
        assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
        wrong = client.post(url, json={"verdict": "accept"}, headers={"X-CSRF-Token": "0" * 64})
        assert wrong.status_code == 403
        # reading needs no CSRF token: the page's image loads by cookie alone
        assert client.get(f"/api/review/{item}/image").status_code == 200
        saved = client.post(
            url, json={"verdict": "accept"}, headers={"X-CSRF-Token": csrf_of(page)}
        )
        assert saved.status_code == 200, saved.text


def test_logout_clears_the_session(app):
    with TestClient(app) as client:
        login(client, token_for(app, "ann", "annotator"))
        page = client.get("/review").text
        response = client.post("/logout", data={"csrf": csrf_of(page)}, follow_redirects=False)
        assert response.status_code == 303
        assert client.get("/review", follow_redirects=False).headers["location"] == "/login"


def test_admin_page_shows_depth_throughput_agreement_and_gold_accuracy(tmp_path):
    app = make_app(tmp_path, images=4, k=2, gold_rate=0.5)
    from api_support import image_sample

    for index in (8, 9):
        app.state.queue.add_gold(image_sample(index, tmp_path / "run"), expected=["reject"])
    people = {name: token_for(app, name, "annotator") for name in ("ann", "bob")}
    with TestClient(app) as client:
        for name, token in people.items():
            while (
                response := client.get("/api/review/next", headers=bearer(token))
            ).status_code == 200:
                item = response.json()["item_id"]
                verdict = "accept" if name == "ann" or item % 2 else "reject"
                client.post(
                    f"/api/review/{item}/decision",
                    json={
                        "verdict": verdict,
                        "levels": {"precision": 5 if verdict == "accept" else 1},
                    },
                    headers=bearer(token),
                )
        login(client, token_for(app, "boss", "admin"))
        html = client.get("/admin").text
        report = client.get(
            "/api/review/agreement", headers=bearer(token_for(app, "root", "admin"))
        )
    assert report.status_code == 200 and "verdicts" in report.json()
    assert 'id="queue-depth">0<' in html
    assert re.search(r"<td>ann</td><td>\d+</td><td>\d+</td>", html)
    assert "Gold accuracy per annotator" in html
    for title in (
        "Verdicts",
        "Fleiss&#39; kappa",
        "Krippendorff&#39;s alpha",
        "Validator vs humans",
    ):
        assert title in html, title
    assert "Latest decisions" in html
    # the tab's title is the page's name, not the decisions table as text (it once held it)
    assert re.search(r"<title>(.*?)</title>", html, re.S)[1] == "Admin · synthgate"
    assert html.count('id="recent"') == 1


def test_the_admin_page_and_the_api_leave_an_excluded_annotator_out_of_the_agreement(
    tmp_path,
):
    from sklearn.metrics import cohen_kappa_score  # the review extra, as the report uses it

    app = make_app(tmp_path, images=6, k=3)
    people = {name: token_for(app, name, "annotator") for name in ("ann", "bob", "sloppy")}
    said: dict[str, dict[int, str]] = {name: {} for name in people}
    rejects = {"ann": {0, 1, 4}, "bob": {1, 2, 4}, "sloppy": set()}  # by place in their turn
    with TestClient(app) as client:
        for name, token in people.items():
            while (
                response := client.get("/api/review/next", headers=bearer(token))
            ).status_code == 200:
                item = response.json()["item_id"]
                verdict = "reject" if len(said[name]) in rejects[name] else "accept"
                said[name][item] = verdict
                client.post(
                    f"/api/review/{item}/decision", json={"verdict": verdict}, headers=bearer(token)
                )
        admin = bearer(token_for(app, "root", "admin"))
        report = client.get("/api/review/agreement?exclude=sloppy", headers=admin).json()
        typo = client.get("/api/review/agreement?exclude=slopy", headers=admin)
        login(client, token_for(app, "boss", "admin"))
        html = client.get("/admin?exclude=sloppy").text
        stale = client.get("/admin?exclude=slopy").text
    assert report["excluded"]["decisions"] == {"sloppy": 6} and report["excluded"]["dropped"] == 6
    (pair,) = report["verdicts"]["cohen_pairs"]
    items = sorted(said["ann"])
    expected = cohen_kappa_score([said["ann"][i] for i in items], [said["bob"][i] for i in items])
    assert pair["value"] == pytest.approx(expected, abs=1e-9)
    assert typo.status_code == 400
    assert typo.json()["detail"].startswith("exclude='slopy': no annotator of that name")
    assert "Left out: sloppy (6 decisions): 6 decisions on real items dropped" in html
    assert '<input type="checkbox" name="exclude" value="sloppy" checked>' in html
    assert "Cohen&#39;s kappa ann × bob" in html and "× sloppy" not in html
    assert "&#39;slopy&#39;: no annotator of that name" in stale
    # the suggestions say which cut-offs they were compared with, or why none
    assert "routed batch apitest-0001 (image, rubric &#39;test&#39;) is not found" in html


def test_an_item_the_blind_rule_keeps_from_everyone_is_shown_and_adjudicated(tmp_path):
    """Gold first: ann and ann2 answered a sample's gold task before it was real work, so
    nobody could take its real item and nothing said so. Stats and the admin page name it
    blocked, by its opaque id, and an admin adjudicates it."""
    app = make_app(tmp_path, images=2, k=2, gold_rate=0.9)
    run, queue = tmp_path / "run", app.state.queue
    gold = app.state.item_ids.public(queue.add_gold(image_sample(7, run), expected=["accept"]))
    boss = token_for(app, "boss", "admin")
    admin = bearer(boss)
    people = {name: bearer(token_for(app, name, "annotator")) for name in ("ann", "ann2")}
    with TestClient(app) as client:
        for who in people.values():
            assert gold in accept_every_task(client, who)
        seed_batch(app.state.store, run, [image_sample(7, run)])  # now real work
        assert queue.enqueue_batch(BATCH, image_root=run) == 1
        for who in people.values():
            assert client.get("/api/review/next", headers=who).status_code == 204
        [blocked] = client.get("/api/review/stats", headers=admin).json()["blocked"]
        assert blocked["needs"] == 2 and blocked["met_as_gold"] == ["ann", "ann2"]
        assert "adjudicates" in blocked["fix"]
        login(client, boss)
        page = client.get("/admin").text
        assert 'id="blocked"' in page and str(blocked["item_id"]) in page
        url = f"/api/review/{blocked['item_id']}/adjudication"
        assert client.post(url, json={"verdict": "accept"}, headers=admin).status_code == 200
        assert client.get("/api/review/stats", headers=admin).json()["blocked"] == []


def test_admin_page_and_agreement_without_the_review_extra(tmp_path, monkeypatch):
    """`serve` needs only the serve extra; the agreement report needs the review extra. Without
    it the admin page still shows the queue, saying what to install, and the agreement route
    answers 503 naming the extra (both were a bare 500 Internal Server Error)."""
    import sys

    app = make_app(tmp_path, images=2, k=2)
    people = {name: token_for(app, name, "annotator") for name in ("ann", "bob")}
    with TestClient(app) as client:
        for token in people.values():
            item = client.get("/api/review/next", headers=bearer(token)).json()["item_id"]
            client.post(
                f"/api/review/{item}/decision", json={"verdict": "accept"}, headers=bearer(token)
            )
        for module in ("sklearn.metrics", "statsmodels.stats.inter_rater", "krippendorff"):
            monkeypatch.setitem(sys.modules, module, None)  # import raises ModuleNotFoundError
        report = client.get(
            "/api/review/agreement", headers=bearer(token_for(app, "root", "admin"))
        )
        login(client, token_for(app, "boss", "admin"))
        page = client.get("/admin")
    assert report.status_code == 503, report.text
    assert "pip install 'synthgate[review]'" in report.json()["detail"]
    assert page.status_code == 200
    assert "pip install &#39;synthgate[review]&#39;" in page.text
    assert 'id="queue-depth"' in page.text and "Latest decisions" in page.text
    assert "Not enough decisions yet." not in page.text


def test_admin_page_says_how_items_awaiting_adjudication_are_decided(tmp_path):
    """The page counted items awaiting adjudication and offered no way to decide them."""
    app = make_app(tmp_path, images=2, k=2)
    with TestClient(app) as client:
        for name, verdict in (("ann", "accept"), ("bob", "reject")):
            token = token_for(app, name, "annotator")
            while (
                response := client.get("/api/review/next", headers=bearer(token))
            ).status_code == 200:
                client.post(
                    f"/api/review/{response.json()['item_id']}/decision",
                    json={"verdict": verdict},
                    headers=bearer(token),
                )
        login(client, token_for(app, "boss", "admin"))
        html = client.get("/admin").text
    assert 'id="adjudication-how"' in html and "synthgate review adjudicate" in html
    assert "POST /api/review/{id}/adjudication" in html


def test_the_admin_page_lists_the_latest_decisions_newest_first(app):
    """recent_decisions (the admin page's "Latest decisions"): newest first, at most `limit`,
    each item under its opaque id, adjudications too."""
    from synthgate.api.review import recent_decisions

    people = {name: bearer(token_for(app, name, "annotator")) for name in ("ann", "bob")}
    order = []
    with TestClient(app) as client:
        for name, who in people.items():
            while (task := client.get("/api/review/next", headers=who)).status_code == 200:
                item = task.json()["item_id"]
                verdict = "accept" if name == "ann" else "reject"
                url = f"/api/review/{item}/decision"
                assert client.post(url, json={"verdict": verdict}, headers=who).status_code == 200
                order.append((item, name))
        admin = bearer(token_for(app, "boss", "admin"))
        split = client.get("/api/review/adjudication", headers=admin).json()[0]
        url = f"/api/review/{split}/adjudication"
        assert client.post(url, json={"verdict": "reject"}, headers=admin).status_code == 200
    latest = recent_decisions(app.state.store, app.state.item_ids, limit=4)
    assert [(d.item_id, d.annotator, d.role) for d in latest] == [
        (split, "boss", "adjudicator"),
        *[(item, name, "annotator") for item, name in reversed(order[-3:])],
    ]
    assert len(recent_decisions(app.state.store, app.state.item_ids)) == len(order) + 1


def test_the_review_pages_visible_share_never_reads_as_none_or_all() -> None:
    """The objects table's "visible" column rounded 0.3 % to "0%" and 99.6 % to "100%"."""
    from review_fixtures import make_sample

    from synthgate.api.view import review_view
    from synthgate.review.decision import ReviewTask

    sample = make_sample(0, "review")
    sample.objects[0].visible_fraction = 0.003
    sample.objects[1].visible_fraction = 0.996
    task = ReviewTask(item_id=1, sample=sample, criteria=["precision"])
    view = review_view(task, 7, classes=["circle", "square"])
    assert [o["visible"] for o in view["objects"]] == ["<1%", ">99%"]


def test_admin_page_says_when_open_items_need_more_annotators_than_the_team(tmp_path):
    """Every item needs 2 annotators and one ever asked for work: once she is done, `next` gives
    her nothing and the items stay open. `review stats` and GET /api/review/stats say why and
    name `review set-k`; the admin page showed the open slots and said nothing."""
    app = make_app(tmp_path, images=2, k=2)
    with TestClient(app) as client:
        accept_every_task(client, bearer(token_for(app, "ann", "annotator")))
        login(client, token_for(app, "boss", "admin"))
        html = client.get("/admin").text
    assert 'id="short-of-annotators"' in html
    assert "2 open items need 2 annotators each" in html and "(ann)" in html
    assert "synthgate review set-k 1" in html and "/api/review/annotators-per-item" in html


def validator_notes(app) -> list[str]:
    """The notes under the admin page's "Validator vs humans" table."""
    from synthgate.api.review import agreement_or_missing
    from synthgate.api.view import agreement_tables

    report, missing = agreement_or_missing(app.state.store, exclude=[])
    assert report is not None, missing
    return agreement_tables(report)[-1]["notes"]


def test_the_validator_notes_are_shown_one_a_line(tmp_path):
    """The notes under "Validator vs humans" were joined by a space as they came, one run-on
    sentence: "... keep accept_at (4.4) or raise it accept_at 4.4 lets through ...". Each is
    now a line of its own, as `review agreement` prints them."""
    app = make_app(tmp_path, images=4, k=1)
    with TestClient(app) as client:
        accept_every_task(client, bearer(token_for(app, "ann", "annotator")))
        login(client, token_for(app, "boss", "admin"))
        html = client.get("/admin").text
    notes = validator_notes(app)
    # the kappa's line says why it is 0 (the rubric routed every sample to review)
    assert len(notes) >= 3 and notes[0].startswith("Cohen's kappa 0.00: the rubric"), notes
    validator = html[html.index("<h3>Validator vs humans</h3>") :]
    shown = re.findall(r'<p class="note">(.*?)</p>', validator, re.S)
    assert [unescape(note) for note in shown[: len(notes)]] == notes


def test_the_validator_note_says_no_item_is_final_yet(tmp_path):
    """One annotator of k=2 decided every item: none is final, and each sample carries a rubric
    score. The note said "no reviewed sample has a rubric score yet"."""
    app = make_app(tmp_path, images=2, k=2)
    with TestClient(app) as client:
        accept_every_task(client, bearer(token_for(app, "ann", "annotator")))
    note = " ".join(validator_notes(app))
    assert "rubric score" not in note and "final" in note, note


def test_the_validator_table_says_why_its_kappa_is_undefined(tmp_path):
    """The rubric accepted every sample and so did people: the kappa is undefined, and the
    report says why ("agreement is perfect but Cohen's kappa is undefined"); the admin page
    showed "Cohen's kappa –" alone, as if something had failed."""
    app = make_app(tmp_path, images=3, k=1)
    for item in (1, 2, 3):
        sample = app.state.queue.task(item).sample
        sample.report.route = "accepted"
        app.state.store.upsert_samples([sample.model_copy(update={"status": "review"})])
    with TestClient(app) as client:
        accept_every_task(client, bearer(token_for(app, "ann", "annotator")))
    first = validator_notes(app)[0]
    assert first.startswith("Cohen's kappa –: all 6 ratings are 'accepted'"), first
    assert "agreement is perfect" in first


def test_an_item_without_masks_offers_no_masks_switch(tmp_path):
    """A box-only item (COCO from CVAT or Roboflow, a detector's boxes) has no mask overlay,
    and the toolbar still offered "masks m", a switch that switched nothing."""
    app = make_app(tmp_path, images=1, k=1)
    sample = app.state.queue.task(1).sample
    objects = [o.model_copy(update={"mask": None}) for o in sample.objects]
    app.state.store.upsert_samples(
        [sample.model_copy(update={"status": "review", "objects": objects})]
    )
    with TestClient(app) as client:
        login(client, token_for(app, "ann", "annotator"))
        html = client.get("/review").text
    assert 'id="toggle-boxes"' in html and 'id="masks"' not in html
    assert 'id="toggle-masks"' not in html
