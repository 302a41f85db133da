"""The HTTP API: tokens and roles, the review flow, blindness, image serving, body limits and
the OpenAPI schema, against the real app over a SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_support import (
    BATCH,
    accept_every_task,
    bearer,
    image_sample,
    make_app,
    seed_batch,
    token_for,
)
from fastapi.testclient import TestClient
from sqlalchemy import select

from synthgate.api import batches, pages, reopen, review, set_k
from synthgate.review.stats import blocked_items
from synthgate.storage.tables import decisions
from synthgate.storage.users import hash_token


@pytest.fixture
def app(tmp_path: Path):
    return make_app(tmp_path, images=3, texts=2, k=2)


@pytest.fixture
def client(app):
    with TestClient(app) as client:
        yield client


@pytest.fixture
def tokens(app) -> dict[str, str]:
    return {
        role: token_for(app, name, role)
        for name, role in (("ann", "annotator"), ("req", "requester"), ("boss", "admin"))
    } | {"annotator2": token_for(app, "ann2", "annotator")}


ENDPOINTS = [
    # (method, path, body, roles allowed besides admin)
    ("GET", "/api/review/next", None, {"annotator"}),
    ("POST", "/api/review/1/decision", {"verdict": "accept"}, {"annotator"}),
    ("GET", "/api/review/1/image", None, {"annotator"}),
    ("GET", "/api/review/1/decisions", None, {"annotator"}),
    ("GET", "/api/review/1", None, {"annotator"}),
    ("GET", "/api/review/stats", None, set()),
    ("GET", "/api/review/agreement", None, set()),
    ("GET", "/api/review/gold", None, set()),
    ("GET", "/api/review/adjudication", None, set()),
    ("POST", "/api/review/1/adjudication", {"verdict": "accept"}, set()),
    ("POST", "/api/review/reopen", {"annotator": "ann"}, set()),
    ("GET", "/api/batches", None, {"requester"}),
    ("GET", f"/api/batches/{BATCH}", None, {"requester"}),
    ("GET", f"/api/batches/{BATCH}/coco", None, {"requester"}),
    ("GET", f"/api/batches/{BATCH}/jsonl", None, {"requester"}),
    ("POST", "/api/batches", {"name": "x"}, {"requester"}),
]


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ENDPOINTS)
def test_no_token_is_401_and_wrong_role_is_403(client, tokens, method, path, body, allowed):
    response = client.request(method, path, json=body)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert "token" in response.json()["detail"]
    response = client.request(method, path, json=body, headers=bearer("not-a-token"))
    assert response.status_code == 401
    for role in ("annotator", "requester"):
        response = client.request(method, path, json=body, headers=bearer(tokens[role]))
        refused = response.status_code == 403 and "needs role" in response.json()["detail"]
        assert refused == (role not in allowed), (role, response.text)


def test_tokens_are_stored_hashed(app, tokens):
    with app.state.store.engine.connect() as connection:
        dump = "\n".join(connection.connection.iterdump())
    for token in tokens.values():
        assert token not in dump
        assert hash_token(token) in dump


def test_review_flow_next_decide_until_empty(client, tokens):
    seen = []
    while (
        response := client.get("/api/review/next", headers=bearer(tokens["annotator"]))
    ).status_code == 200:
        task = response.json()
        assert set(task) == {
            "item_id",
            "criteria",
            "sample",
            "image_url",
            "masks_url",
            "fix_labels",
        }
        # what a fix may name: the batch's labels of the task's own kind, never the other's
        image = task["sample"]["spec"]["modality"] == "image"
        assert task["fix_labels"] == (["circle", "square"] if image else ["ORG", "PERSON"])
        # asking again before deciding gives the same open item, not a new one
        again = client.get("/api/review/next", headers=bearer(tokens["annotator"])).json()
        assert again["item_id"] == task["item_id"]
        seen.append(task["item_id"])
        decision = {"verdict": "reject", "levels": {"precision": 1}, "comment": "loose"}
        saved = client.post(
            f"/api/review/{task['item_id']}/decision",
            json=decision,
            headers=bearer(tokens["annotator"]),
        )
        assert saved.status_code == 200, saved.text
        assert saved.headers["content-type"] == "application/json"
        assert saved.json() == {"item_id": task["item_id"], "saved": True}
    assert response.status_code == 204
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 5
    stats = client.get("/api/review/stats", headers=bearer(tokens["admin"])).json()
    assert stats["annotators"]["ann"]["decided"] == 5
    assert stats["decisions"] == 5


def test_an_admin_is_handed_no_items_and_decides_none_as_an_annotator(client, tokens, app):
    """Admins pass the annotator routes' role check (to look at items and decisions), but the
    queue must not hand them items: a claim under an admin's name counted as one of an item's
    k decisions and in the agreement."""
    admin = bearer(tokens["admin"])
    refused = client.get("/api/review/next", headers=admin)
    assert refused.status_code == 403, refused.text
    detail = refused.json()["detail"]
    assert "admin 'boss'" in detail and "--role annotator" in detail and "adjudicat" in detail
    task = client.get("/api/review/next", headers=bearer(tokens["annotator"])).json()
    decided = client.post(
        f"/api/review/{task['item_id']}/decision", json={"verdict": "accept"}, headers=admin
    )
    assert decided.status_code == 403 and f"item {task['item_id']}" in decided.json()["detail"]
    stats = client.get("/api/review/stats", headers=admin).json()
    assert "boss" not in stats["annotators"] and stats["decisions"] == 0
    with app.state.store.engine.connect() as connection:
        assert connection.execute(select(decisions)).first() is None
    # the annotator works on as before, and the admin still reads the item
    assert client.get(f"/api/review/{task['item_id']}", headers=admin).status_code == 200
    who = bearer(tokens["annotator"])
    ok = client.post(
        f"/api/review/{task['item_id']}/decision", json={"verdict": "accept"}, headers=who
    )
    assert ok.status_code == 200


def test_an_admin_handed_items_before_they_were_refused_is_not_counted_in_the_team(tmp_path):
    """k = 2, one annotator, and an admin the server handed an item before it refused admins:
    the admin stayed in the team (review_annotators), so `short_of_annotators` said nothing
    while only ann may take the items, and set-k said the team was two. The 403 says how the
    admin's hold is given back."""
    app = make_app(tmp_path, images=3, k=2)
    ann = bearer(token_for(app, "ann", "annotator"))
    admin = bearer(token_for(app, "boss", "admin"))
    held = app.state.queue.next_item("boss")  # as the server did before `refuse_admin`
    assert held is not None
    with TestClient(app) as client:
        accept_every_task(client, ann)
        refused = client.get("/api/review/next", headers=admin).json()["detail"]
        stats = client.get("/api/review/stats", headers=admin).json()
        body = {"k": 2}
        change = client.post("/api/review/annotators-per-item", json=body, headers=admin).json()
    assert "synthgate review release --annotator boss" in refused
    [short] = stats["short_of_annotators"]
    assert short["items"] == 3 and short["team"] == 1 and short["names"] == ["ann"]
    assert "review set-k 1" in short["fix"]
    assert change["team"] == ["ann"]


def test_an_admin_handed_items_before_is_not_free_to_take_a_blocked_item(tmp_path):
    """ann met a sample as gold before it was real work; ann2 and the admin boss (handed an
    item before admins were refused) did not. The item needs 2: ann2 alone may take it, so it
    is blocked (the admin counted as free, and it was not)."""
    app = make_app(tmp_path, images=2, k=2, gold_rate=0.9)
    run, queue = tmp_path / "run", app.state.queue
    token_for(app, "boss", "admin")
    token_for(app, "ann2", "annotator")  # a user: the team is the users given work
    assert queue.next_item("ann2") is not None and queue.next_item("boss") is not None
    gold = app.state.item_ids.public(queue.add_gold(image_sample(7, run), expected=["accept"]))
    ann = bearer(token_for(app, "ann", "annotator"))
    with TestClient(app) as client:
        assert gold in accept_every_task(client, ann)
    seed_batch(app.state.store, run, [image_sample(7, run)])  # now real work
    assert queue.enqueue_batch(BATCH, image_root=run) == 1
    with app.state.store.engine.connect() as connection:
        [blocked] = blocked_items(connection)
    assert blocked["met_as_gold"] == ["ann"] and blocked["needs"] == 2
    assert "1 could take it" in blocked["why"]


def test_decision_misuse_is_400_with_a_clear_message(client, tokens):
    who = bearer(tokens["annotator"])
    task = client.get("/api/review/next", headers=who).json()
    other = client.post("/api/review/999/decision", json={"verdict": "accept"}, headers=who)
    assert other.status_code == 400 and "999" in other.json()["detail"]
    unknown = client.post(
        f"/api/review/{task['item_id']}/decision",
        json={"verdict": "accept", "levels": {"beauty": 5}},
        headers=who,
    )
    assert unknown.status_code == 400 and "beauty" in unknown.json()["detail"]
    ok = client.post(
        f"/api/review/{task['item_id']}/decision", json={"verdict": "accept"}, headers=who
    )
    assert ok.status_code == 200
    twice = client.post(
        f"/api/review/{task['item_id']}/decision", json={"verdict": "accept"}, headers=who
    )
    assert twice.status_code == 400 and "already" in twice.json()["detail"]


def test_a_fix_may_delete_boxes_and_change_classes_to_the_batchs_own(tmp_path):
    """What the review page's Fix form sends: the boxes left, some with another class. A class
    that is not the batch's is refused, named along with the classes to use, and nothing is
    recorded; one of the batch's is taken, as is a box deleted."""
    app = make_app(tmp_path, images=1, k=1)
    who = bearer(token_for(app, "ann", "annotator"))
    with TestClient(app) as client:
        task = client.get("/api/review/next", headers=who).json()
        first, _second = task["sample"]["objects"]
        url = f"/api/review/{task['item_id']}/decision"
        unknown = {"verdict": "fix", "objects": [{**first, "category": "banana"}]}
        refused = client.post(url, json=unknown, headers=who)
        assert refused.status_code == 400
        assert "objects[0].category 'banana' is not an object class of this batch" in refused.text
        assert "['circle', 'square']" in refused.text
        fixed = {"verdict": "fix", "objects": [{**first, "category": "square"}]}
        assert client.post(url, json=fixed, headers=who).status_code == 200
    with app.state.store.engine.connect() as connection:
        row = connection.execute(select(decisions)).one()
    # the stored object's attributes back by its ref (blind sends `{"ref": i}` alone)
    assert row.objects == [{**first, "category": "square", "attributes": {}}]
    assert row.original == [{**o, "attributes": {}} for o in task["sample"]["objects"]]


def test_a_fix_keeps_to_the_labels_of_its_own_modality_in_a_mixed_batch(tmp_path):
    """A batch of images and texts: a box may take an object class, never a span label, and a
    span a span label, never an object class; each task says which it may use."""
    app = make_app(tmp_path, images=1, texts=1, k=1)
    who = bearer(token_for(app, "ann", "annotator"))
    with TestClient(app) as client:
        tasks = {}
        while (response := client.get("/api/review/next", headers=who)).status_code == 200:
            task = response.json()
            modality = task["sample"]["spec"]["modality"]
            tasks[modality] = task
            url = f"/api/review/{task['item_id']}/decision"
            if modality == "image":
                assert task["fix_labels"] == ["circle", "square"]
                first, _second = task["sample"]["objects"]
                wrong = {"verdict": "fix", "objects": [{**first, "category": "PERSON"}]}
                refused = client.post(url, json=wrong, headers=who)
                assert refused.status_code == 400, refused.text
                assert "objects[0].category 'PERSON' is not an object class" in refused.text
                assert "['circle', 'square']" in refused.text
                right = {"verdict": "fix", "objects": [{**first, "category": "square"}]}
            else:
                assert task["fix_labels"] == ["ORG", "PERSON"]
                person, org = task["sample"]["spans"]
                wrong = {"verdict": "fix", "spans": [{**person, "label": "circle"}, org]}
                refused = client.post(url, json=wrong, headers=who)
                assert refused.status_code == 400, refused.text
                assert "spans[0].label 'circle' is not a span label" in refused.text
                assert "['ORG', 'PERSON']" in refused.text
                right = {"verdict": "fix", "spans": [{**person, "label": "ORG"}, org]}
            assert client.post(url, json=right, headers=who).status_code == 200
        assert response.status_code == 204
    assert set(tasks) == {"image", "text"}
    with app.state.store.engine.connect() as connection:
        fixed = connection.execute(select(decisions).order_by(decisions.c.id)).all()
    assert len(fixed) == 2  # the refused fixes recorded nothing


def test_an_item_shown_again_lists_the_labels_a_fix_may_use(tmp_path, monkeypatch):
    """GET /api/review/{id} (an adjudicator reading the item) lists the batch's fix labels as
    the task did, not only the sample's own."""
    app = make_app(tmp_path, images=1, k=1)
    batch_labels = ["circle", "square", "triangle"]  # a class no sample of the batch holds yet
    monkeypatch.setattr(  # what the task and GET /{id} read, each through the queue
        "synthgate.review.queue.item_labels", lambda connection, item_id: batch_labels
    )
    with TestClient(app) as client:
        task = client.get("/api/review/next", headers=bearer(token_for(app, "ann", "annotator")))
        item_id = task.json()["item_id"]
        admin = bearer(token_for(app, "boss", "admin"))
        seen = client.get(f"/api/review/{item_id}", headers=admin).json()
    assert task.json()["fix_labels"] == seen["fix_labels"] == batch_labels


def test_an_item_is_shown_to_an_annotator_only_while_they_hold_it_gold_or_real(tmp_path):
    """GET /api/review/{id} (and masks.png) answers an annotator while they hold the item
    undecided, then 404, gold and real alike. Once final, a real item's sample carries the
    labels others fixed it to (ann read bob's and cy's fix); and a rule of "404 once final"
    told real items (final) from gold ones (never final) to anyone who looked again."""
    from api_support import image_sample

    app = make_app(tmp_path, images=1, k=3, gold_rate=0.5)
    for index in range(10, 14):
        app.state.queue.add_gold(
            image_sample(index, tmp_path / "run"), expected=["reject"], criterion="precision"
        )
    gold_ids = {g["item_id"] for g in _admin_gold(app)}
    who = {name: bearer(token_for(app, name, "annotator")) for name in ("ann", "bob", "cy")}
    with TestClient(app) as client:
        seen: dict[int, dict] = {}
        while (response := client.get("/api/review/next", headers=who["ann"])).status_code == 200:
            task = response.json()
            item = task["item_id"]
            seen[item] = task
            assert client.get(f"/api/review/{item}", headers=who["ann"]).status_code == 200
            url = f"/api/review/{item}/decision"
            assert client.post(url, json={"verdict": "accept"}, headers=who["ann"]).is_success
            for path in (f"/api/review/{item}", f"/api/review/{item}/masks.png"):
                assert client.get(path, headers=who["ann"]).status_code == 404, path
        [real] = set(seen) - gold_ids
        assert set(seen) & gold_ids  # gold was among them, answered alike
        first = seen[real]["sample"]["objects"][0]
        for name in ("bob", "cy"):
            while (task := client.get("/api/review/next", headers=who[name]).json())[
                "item_id"
            ] != real:
                url = f"/api/review/{task['item_id']}/decision"
                assert client.post(url, json={"verdict": "accept"}, headers=who[name]).is_success
            fix = {"verdict": "fix", "objects": [first]}  # the second box dropped
            url = f"/api/review/{real}/decision"
            assert client.post(url, json=fix, headers=who[name]).status_code == 200
        assert client.get(f"/api/review/{real}", headers=who["ann"]).status_code == 404
        admin = bearer(token_for(app, "boss", "admin"))
        final = client.get(f"/api/review/{real}", headers=admin).json()
    assert len(final["sample"]["objects"]) == 1  # the admin sees the final labels


def test_annotators_stay_blind_to_each_other(client, tokens):
    first, second = bearer(tokens["annotator"]), bearer(tokens["annotator2"])
    task = client.get("/api/review/next", headers=first).json()
    comment = "first annotator's secret comment"
    client.post(
        f"/api/review/{task['item_id']}/decision",
        json={"verdict": "reject", "comment": comment},
        headers=first,
    )
    shown = client.get("/api/review/next", headers=second)
    assert shown.json()["item_id"] == task["item_id"]  # started items are finished first
    assert comment not in shown.text and "reject" not in shown.text
    early = client.get(f"/api/review/{task['item_id']}/decisions", headers=second)
    assert early.status_code == 403 and "blind" in early.json()["detail"]
    client.post(
        f"/api/review/{task['item_id']}/decision", json={"verdict": "accept"}, headers=second
    )
    after = client.get(f"/api/review/{task['item_id']}/decisions", headers=second).json()
    assert [d["annotator"] for d in after] == ["ann2"]  # their own only: others stay hidden
    assert comment not in str(after)
    admin = client.get(f"/api/review/{task['item_id']}/decisions", headers=bearer(tokens["admin"]))
    assert len(admin.json()) == 2


def test_admins_adjudicate_items_annotators_disagree_on(client, tokens):
    verdicts = {"annotator": "accept", "annotator2": "reject"}
    task = client.get("/api/review/next", headers=bearer(tokens["annotator"])).json()
    for who, verdict in verdicts.items():
        assert client.get("/api/review/next", headers=bearer(tokens[who])).json() == task
        client.post(
            f"/api/review/{task['item_id']}/decision",
            json={"verdict": verdict},
            headers=bearer(tokens[who]),
        )
    admin = bearer(tokens["admin"])
    assert client.get("/api/review/adjudication", headers=admin).json() == [task["item_id"]]
    # the adjudicator sees the item as its annotators did: its labels (or text), not only the
    # decisions on it (there was no route for it)
    shown = client.get(f"/api/review/{task['item_id']}", headers=admin)
    assert shown.status_code == 200 and shown.json() == task
    url = f"/api/review/{task['item_id']}/adjudication"
    assert client.post(url, json={"verdict": "reject"}, headers=admin).status_code == 200
    assert client.get("/api/review/adjudication", headers=admin).json() == []
    again = client.post(url, json={"verdict": "reject"}, headers=admin)
    assert again.status_code == 400 and "not waiting for adjudication" in again.json()["detail"]


def test_an_item_is_shown_to_its_annotators_and_admins_only(client, tokens):
    task = client.get("/api/review/next", headers=bearer(tokens["annotator"])).json()
    own = client.get(f"/api/review/{task['item_id']}", headers=bearer(tokens["annotator"]))
    assert own.status_code == 200 and own.json() == task
    other = client.get(f"/api/review/{task['item_id']}", headers=bearer(tokens["annotator2"]))
    assert other.status_code == 404  # as for an item that does not exist: nothing to learn
    missing = client.get("/api/review/12345", headers=bearer(tokens["admin"]))
    assert missing.status_code == 404
    # the named routes still answer as themselves, not as item ids
    stats = client.get("/api/review/stats", headers=bearer(tokens["admin"]))
    assert stats.status_code == 200 and "queue_depth" in stats.json()


def test_gold_answers_stay_hidden_from_annotators(tmp_path):
    app = make_app(tmp_path, images=0)
    from api_support import image_sample

    shown = image_sample(7, tmp_path / "run")
    app.state.queue.add_gold(shown, expected=["reject"], criterion="precision")
    admin, annotator = token_for(app, "boss", "admin"), token_for(app, "ann", "annotator")
    with TestClient(app) as client:
        assert client.get("/api/review/gold", headers=bearer(annotator)).status_code == 403
        gold = client.get("/api/review/gold", headers=bearer(admin)).json()
        assert gold and gold[0]["expected"] == ["reject"]
        # gold rides only along with real work: with no real items, nothing is handed out
        assert client.get("/api/review/next", headers=bearer(annotator)).status_code == 204


def test_gold_tasks_look_like_real_ones(tmp_path):
    app = make_app(tmp_path, images=6, gold_rate=0.5)
    from api_support import image_sample

    for index in range(10, 16):
        app.state.queue.add_gold(
            image_sample(index, tmp_path / "run"), expected=["reject"], criterion="precision"
        )
    token = token_for(app, "ann", "annotator")
    gold_ids = {g["item_id"] for g in _admin_gold(app)}
    kinds = {"gold": [], "real": []}
    with TestClient(app) as client:
        while (
            response := client.get("/api/review/next", headers=bearer(token))
        ).status_code == 200:
            task = response.json()
            kinds["gold" if task["item_id"] in gold_ids else "real"].append(task)
            client.post(
                f"/api/review/{task['item_id']}/decision",
                json={"verdict": "accept"},
                headers=bearer(token),
            )
    assert kinds["gold"] and kinds["real"]
    for task in kinds["gold"] + kinds["real"]:
        assert task["sample"]["status"] == "review"
        assert "expected" not in str(task) and "honeypot" not in str(task)


def _admin_gold(app):
    with TestClient(app) as client:
        return client.get(
            "/api/review/gold", headers=bearer(token_for(app, "root", "admin"))
        ).json()


def test_images_are_served_by_item_to_its_annotators_only(client, tokens):
    task = client.get("/api/review/next", headers=bearer(tokens["annotator"])).json()
    image = client.get(task["image_url"], headers=bearer(tokens["annotator"]))
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")
    masks = client.get(task["masks_url"], headers=bearer(tokens["annotator"]))
    assert masks.status_code == 200 and masks.content.startswith(b"\x89PNG")
    # someone the item was not handed to gets nothing, not even its existence
    stranger = client.get(task["image_url"], headers=bearer(tokens["annotator2"]))
    assert stranger.status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/api/review/..%2F..%2Fetc%2Fpasswd/image",
        "/api/review/1/image/../../../../etc/passwd",
        "/api/review/%2e%2e/image",
        "/static/../../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/app.py",
        "/static/..%2Fapp.py",
    ],
)
def test_image_serving_refuses_path_traversal(client, tokens, path):
    response = client.get(path, headers=bearer(tokens["admin"]))
    assert response.status_code in (404, 422), (path, response.status_code)
    assert b"root:" not in response.content and b"create_app" not in response.content


def test_an_image_uri_that_leaves_the_run_folder_is_refused(tmp_path):
    app = make_app(tmp_path, images=1)
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG secret")
    sample = app.state.store.get_sample(next(iter(_sample_ids(app))))
    sample.uri = "../secret.png"
    app.state.store.upsert_samples([sample])
    token = token_for(app, "boss", "admin")
    with TestClient(app) as client:
        response = client.get("/api/review/1/image", headers=bearer(token))
    assert response.status_code == 404 and b"PNG secret" not in response.content


def _sample_ids(app):
    return [s.id for s in app.state.store.iter_samples(BATCH, "image")]


BAD_BODIES = [
    # (id, raw body, content type, status, words the message must hold)
    ("malformed-json", b'{"verdict": "accept",', "application/json", 422, ["malformed JSON"]),
    ("not-an-object", b"[1, 2]", "application/json", 422, ["body"]),
    ("bad-verdict", b'{"verdict": "maybe"}', "application/json", 422, ["verdict", "maybe"]),
    ("bad-level", b'{"verdict": "accept", "levels": {"precision": 4}}', "application/json", 422, ["precision"]),
    ("unknown-field", b'{"verdict": "accept", "score": 1}', "application/json", 422, ["score", "unknown field"]),
    ("oversized", b'{"verdict": "accept", "comment": "' + b"x" * (1 << 20) + b'"}', "application/json", 413, ["too large", "1048576"]),
    ("form-encoded", b"verdict=accept", "application/x-www-form-urlencoded", 422, ["Content-Type: application/json"]),
    ("no-content-type", b'{"verdict": "accept"}', "text/plain", 422, ["Content-Type: application/json"]),
    ("not-utf-8", b'{"verdict": "accept", "comment": "caf\xe9"}', "application/json", 400, ["not UTF-8", "byte 37"]),
    ("too-deep", b'{"comment": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json", 400, ["nested too deep"]),
    ("huge-integer", b'{"verdict": "accept", "levels": {"precision": ' + b"9" * 5000 + b"}}", "application/json", 400, ["not valid JSON", "4300 digits"]),
    ("key-twice", b'{"verdict": "accept", "comment": "a", "verdict": "reject"}', "application/json", 400, ["key 'verdict' is given twice"]),
    ("key-twice-any-case", b'{"verdict": "accept", "verdict": "reject"}', "Application/JSON", 400, ["key 'verdict' is given twice"]),
    ("bad-fix-box", b'{"verdict": "fix", "objects": [{"category": "circle", "bbox": [0, 0, -5, 3], "area": 1}]}', "application/json", 400, ["bbox"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "body", "kind", "code", "words"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES]
)
def test_bad_bodies_get_4xx_with_a_clear_message(client, tokens, case, body, kind, code, words):
    who = bearer(tokens["annotator"])
    item = client.get("/api/review/next", headers=who).json()["item_id"]
    response = client.post(
        f"/api/review/{item}/decision", content=body, headers={**who, "Content-Type": kind}
    )
    assert response.status_code == code, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "Traceback" not in detail
    for word in words:
        assert word in detail, detail


def test_streamed_body_without_length_is_limited(client, tokens):
    def chunks():
        for _ in range(40):
            yield b"x" * 65536

    response = client.post(
        "/api/batches",
        content=chunks(),
        headers={**bearer(tokens["requester"]), "Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_security_headers_are_set(client):
    response = client.get("/login")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    docs = client.get("/docs")  # Swagger UI needs its inline script; it shows no user data
    assert "content-security-policy" not in docs.headers
    assert docs.headers["x-content-type-options"] == "nosniff"


def test_openapi_schema_matches_the_routes(app):
    schema = app.openapi()
    declared = {(path, method.upper()) for path, ops in schema["paths"].items() for method in ops}
    routes = {
        (route.path, method)
        for router in (batches.router, review.router, set_k.router, reopen.router, pages.router)
        for route in router.routes
        if route.include_in_schema
        for method in route.methods
    }
    assert declared == routes
    assert {p for p, _ in declared} >= {
        "/api/batches",
        "/api/batches/{batch_id}",
        "/api/batches/{batch_id}/coco",
        "/api/batches/{batch_id}/jsonl",
        "/api/review/next",
        "/api/review/{item_id}/decision",
        "/api/review/agreement",
        "/api/review/stats",
    }
    for path, method in declared:
        operation = schema["paths"][path][method.lower()]
        assert {"HTTPBearer": []} in operation["security"], (path, method)
    components = schema["components"]
    assert set(components["securitySchemes"]) == {"HTTPBearer", "APIKeyCookie"}
    decision = components["schemas"]["Decision"]
    assert decision["properties"]["verdict"]["enum"] == ["accept", "reject", "fix"]
    assert decision["additionalProperties"] is False
    next_ok = schema["paths"]["/api/review/next"]["get"]["responses"]
    assert next_ok["200"]["content"]["application/json"]["schema"]["$ref"].endswith("ReviewItemOut")
    assert "204" in next_ok
    batch = schema["paths"]["/api/batches"]["post"]
    assert batch["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "BatchOut"
    )
    # every error is {"detail": str}, as the service sends it; 401 and 403 are documented
    assert "HTTPValidationError" not in components["schemas"]
    for path, method in declared:
        responses = schema["paths"][path][method.lower()]["responses"]
        assert {"401", "403", "422"} <= set(responses), (path, method)
        for code, response in responses.items():
            if code.startswith(("4", "5")):
                shape = response["content"]["application/json"]["schema"]["$ref"]
                assert shape.endswith("/ErrorOut"), (path, method, code)


def test_real_responses_fit_their_declared_schemas(client, tokens, app):
    """Every key a response carries is one its schema declares, and every required one is there."""
    schemas = app.openapi()["components"]["schemas"]
    task = client.get("/api/review/next", headers=bearer(tokens["annotator"])).json()
    _fits(task, schemas["ReviewItemOut"])
    _fits(task["sample"], schemas["Sample"])
    saved = client.post(
        f"/api/review/{task['item_id']}/decision",
        json={"verdict": "accept"},
        headers=bearer(tokens["annotator"]),
    ).json()
    _fits(saved, schemas["Saved"])
    # make_app's batch was posted by nobody: only an admin sees it
    batch = client.get(f"/api/batches/{BATCH}", headers=bearer(tokens["admin"])).json()
    _fits(batch, schemas["BatchOut"])
    (listed,) = client.get("/api/batches?all=true", headers=bearer(tokens["admin"])).json()
    _fits(listed, schemas["BatchOut"])
    stats = client.get("/api/review/stats", headers=bearer(tokens["admin"])).json()
    _fits(stats, schemas["QueueStats"])
    _fits(stats["annotators"]["ann"], schemas["AnnotatorStats"])


def _fits(value: dict, schema: dict) -> None:
    assert set(value) <= set(schema["properties"]), set(value) - set(schema["properties"])
    assert set(schema.get("required", [])) <= set(value)


def test_an_item_image_is_sent_as_its_own_type() -> None:
    """Pre-labels' images are the user's files, JPEGs as often as PNGs (they were all sent as
    image/png); a name that is no image is sent as bytes, never as a type a browser runs."""
    from synthgate.api.review import image_type

    assert image_type(Path("a/IMG_1.JPG")) == "image/jpeg"
    assert image_type(Path("x.png")) == "image/png"
    assert image_type(Path("x.svg")) == image_type(Path("x.html")) == "application/octet-stream"
