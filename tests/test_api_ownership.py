"""Batch ownership: a requester sees and lists only the batches they posted (the same config is
the same batch, so a batch has a set of requesters), admins see every batch, and batches that
nobody posted through the API (an older database) are the admins' alone. A removed user's
batches are not inherited by a new user of the same name."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from api_support import BATCH, bearer, make_app, token_for
from factories import small_config
from fastapi.testclient import TestClient
from postgres_support import wipe
from sqlalchemy import text

from synthgate.samples import Provenance, Sample, SampleSpec, sample_id
from synthgate.storage import requesters
from synthgate.storage.store import Store, sqlite_url
from synthgate.storage.users import Users

LEGACY = "legacy-0001"  # a batch from before requesters were recorded


def posted_config(seed: int = 3) -> dict[str, Any]:
    """Two small procedural images: a batch that is done in well under a second."""
    config = small_config(name=f"owned-{seed}", seed=seed)
    del config["text"]  # a posted config may name templates only relatively; images suffice
    config["image"]["count"] = 2
    return config


@pytest.fixture
def service(tmp_path: Path):
    app = make_app(tmp_path, images=0)
    app.state.store.put_batch(LEGACY, name="legacy", seed=0, config={"name": "legacy"})
    app.state.store.set_batch_status(LEGACY, "done", "made before requesters were recorded")
    tokens = {
        name: token_for(app, name, role)
        for name, role in (("alice", "requester"), ("bob", "requester"), ("boss", "admin"))
    }
    with TestClient(app) as client:
        yield app, client, tokens


def wait_until_done(client: TestClient, batch_id: str, token: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        batch = client.get(f"/api/batches/{batch_id}", headers=bearer(token)).json()
        if batch["status"] != "running":
            return batch
        time.sleep(0.05)
    raise AssertionError(f"batch still running: {batch}")


def listed(client: TestClient, token: str, query: str = "") -> list[str]:
    response = client.get(f"/api/batches{query}", headers=bearer(token))
    assert response.status_code == 200, response.text
    return [batch["id"] for batch in response.json()]


def seen(client: TestClient, token: str, batch_id: str) -> tuple[int, int]:
    """Status codes of the batch and of its COCO file for the holder of `token`."""
    batch = client.get(f"/api/batches/{batch_id}", headers=bearer(token))
    coco = client.get(f"/api/batches/{batch_id}/coco", headers=bearer(token))
    for response in (batch, coco):
        if response.status_code == 404:  # the same answer as for a batch that does not exist
            assert response.json()["detail"] == f"no batch {batch_id!r}"
    return batch.status_code, coco.status_code


# (who, status of GET and of /coco of alice's batch, in their own list, in ?all=true)
ALICE_ONLY = [
    ("alice", (200, 200), True, None),
    ("bob", (404, 404), False, None),
    ("boss", (200, 200), False, True),
]


def test_a_batch_is_seen_by_who_posted_it_and_by_admins_and_no_one_learns_another_ran_it(
    service,
):
    """Batch ids are per requester: bob posting alice's exact config gets a batch of his own,
    answered exactly as a config nobody ran (202, queued), and still cannot read alice's."""
    app, client, tokens = service
    posted = client.post("/api/batches", json=posted_config(), headers=bearer(tokens["alice"]))
    assert posted.status_code == 202, posted.text
    batch_id = posted.json()["id"]
    done = wait_until_done(client, batch_id, tokens["alice"])
    assert done["status"] == "done" and done["coco_url"], done

    fresh = client.post("/api/batches", json=posted_config(9), headers=bearer(tokens["bob"]))
    same = client.post("/api/batches", json=posted_config(), headers=bearer(tokens["bob"]))
    assert same.status_code == fresh.status_code == 202, same.text
    assert same.json()["id"] != batch_id
    # the same answer (the message says queued or generating, by timing alone)
    hidden = ("id", "name", "message")
    shape = {key: value for key, value in same.json().items() if key not in hidden}
    assert shape == {key: value for key, value in fresh.json().items() if key not in hidden}
    assert shape["status"] == "running" and shape["counts"] == {}
    bobs = same.json()["id"]
    wait_until_done(client, bobs, tokens["bob"])

    for who, codes, in_own_list, in_all in ALICE_ONLY:
        assert seen(client, tokens[who], batch_id) == codes, who
        own = listed(client, tokens[who])
        assert own.count(batch_id) == (1 if in_own_list else 0), (who, own)
        if in_all:
            assert listed(client, tokens[who], "?all=true").count(batch_id) == 1
    assert seen(client, tokens["alice"], bobs) == (404, 404)
    assert app.state.store.requesters.of_batch(batch_id) == {"alice"}
    assert app.state.store.requesters.of_batch(bobs) == {"bob"}
    # posting again is the caller's own batch as it stands: 200, not run again
    again = client.post("/api/batches", json=posted_config(), headers=bearer(tokens["alice"]))
    assert again.status_code == 200 and again.json() == done
    (item,) = [b for b in client.get("/api/batches", headers=bearer(tokens["alice"])).json()]
    assert item == done  # list items are the same BatchOut as GET /api/batches/{id}
    # the same pixels either way: only the ids differ
    alices = Path(app.state.runs_dir / batch_id / "coco.json").read_text()
    assert '"requester"' not in alices  # the key stays in the manifest, not in the dataset


def test_the_requester_key_is_the_services_to_set(service):
    _app, client, tokens = service
    body = {**posted_config(), "requester": "abc"}
    response = client.post("/api/batches", json=body, headers=bearer(tokens["alice"]))
    assert response.status_code == 400 and response.json()["detail"].startswith("requester")


def test_the_list_is_latest_first_and_pages(service):
    _app, client, tokens = service
    alice = bearer(tokens["alice"])
    ids = []
    for seed in (1, 2, 3):
        response = client.post("/api/batches", json=posted_config(seed), headers=alice)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    assert len(set(ids)) == 3
    latest_first = ids[::-1]

    pages = [
        # (query, expected ids)
        ("", latest_first),
        ("?limit=2", latest_first[:2]),
        ("?limit=2&offset=2", latest_first[2:]),
        ("?offset=1&limit=1", latest_first[1:2]),
        ("?offset=3", []),
        ("?limit=500", latest_first),
    ]
    for query, expected in pages:
        assert listed(client, tokens["alice"], query) == expected, query
    assert listed(client, tokens["bob"]) == []

    # posting a batch again moves it to the top of the poster's list
    client.post("/api/batches", json=posted_config(1), headers=alice)
    assert listed(client, tokens["alice"]) == [ids[0], ids[2], ids[1]]
    # every batch for an admin: by the latest post, then those nobody posted (make_app's, ours)
    expected_all = [ids[0], ids[2], ids[1], BATCH, LEGACY]
    assert listed(client, tokens["boss"], "?all=true") == expected_all
    for batch_id in ids:
        wait_until_done(client, batch_id, tokens["alice"])


BAD_PAGES = [
    # (query, the parameter the 422 names)
    ("?limit=0", "query.limit"),
    ("?limit=501", "query.limit"),
    ("?limit=-1", "query.limit"),
    ("?limit=ten", "query.limit"),
    ("?offset=-1", "query.offset"),
    ("?all=maybe", "query.all"),
]


@pytest.mark.parametrize(("query", "field"), BAD_PAGES, ids=[q for q, _ in BAD_PAGES])
def test_bad_paging_is_422_naming_the_parameter(service, query, field):
    _app, client, tokens = service
    response = client.get(f"/api/batches{query}", headers=bearer(tokens["alice"]))
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]


# (who, status of GET /api/batches/legacy, listed without and with ?all=true)
LEGACY_CASES = [
    ("alice", 404, False, 403),
    ("bob", 404, False, 403),
    ("boss", 200, False, 200),
]


@pytest.mark.parametrize(
    ("who", "code", "in_own_list", "all_code"), LEGACY_CASES, ids=[c[0] for c in LEGACY_CASES]
)
def test_a_batch_nobody_posted_is_seen_by_admins_only(service, who, code, in_own_list, all_code):
    _app, client, tokens = service
    token = tokens[who]
    assert client.get(f"/api/batches/{LEGACY}", headers=bearer(token)).status_code == code
    assert (LEGACY in listed(client, token)) == in_own_list
    everything = client.get("/api/batches?all=true", headers=bearer(token))
    assert everything.status_code == all_code, everything.text
    if all_code == 200:
        assert LEGACY in [batch["id"] for batch in everything.json()]
    else:
        assert "all=true" in everything.json()["detail"]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "old.db")
    url: str = request.getfixturevalue("postgres_cluster").database("ownership")
    wipe(url)  # a clean schema per test
    return url


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`add_requester` times 1.0, 2.0, 3.0, ...: the order of asks, never a tie."""
    ticks = iter(float(n) for n in range(1, 1000))
    monkeypatch.setattr(requesters, "time", SimpleNamespace(time=lambda: next(ticks)))
    yield


def test_requesters_are_recorded_once_and_an_older_database_gains_the_table(empty_db_url, clock):
    url = empty_db_url
    store = Store(url)
    for n, batch_id in enumerate(("b1", "b2", "b3")):
        store.put_batch(batch_id, name=batch_id, seed=n, config={"big": "x" * 1000})
    with store.engine.begin() as connection:  # a database from before requesters were recorded
        connection.execute(text("DROP TABLE batch_requesters"))
        connection.execute(text("DROP TABLE alembic_version"))  # and before migrations
    store.close()

    store = Store(url)  # migrates: creates the missing table; the batches stay, no requesters
    try:
        assert store.requesters.of_batch("b1") == set()
        assert [b["id"] for b in store.requesters.batches_of(None)] == ["b1", "b2", "b3"]
        for user in ("alice", "alice", "bob"):  # times 1, 2, 3
            store.requesters.add("b1", user)
        store.requesters.add("b2", "alice")  # time 4
        assert store.requesters.of_batch("b1") == {"alice", "bob"}
        with store.engine.connect() as connection:
            rows = connection.execute(text("SELECT COUNT(*) FROM batch_requesters")).scalar()
        assert rows == 3
        mine = store.requesters.batches_of("alice")
        assert [(b["id"], b["name"], b["requested_at"]) for b in mine] == [
            ("b2", "b2", 4.0),
            ("b1", "b1", 2.0),  # asking again moved alice's time, not a second row
        ]
        assert all("config" not in b for b in mine)  # a list does not read the configs
        assert [b["id"] for b in store.requesters.batches_of("bob")] == ["b1"]
        assert [b["id"] for b in store.requesters.batches_of("alice", limit=1, offset=1)] == ["b1"]
        assert store.requesters.batches_of("carol") == []

        # every batch: by the latest ask of anyone, and the one nobody asked for last on both
        # dialects (PostgreSQL sorts NULL first in DESC; the coalesce puts it last)
        everything = store.requesters.batches_of(None)
        assert [(b["id"], b["requested_at"]) for b in everything] == [
            ("b2", 4.0),
            ("b1", 3.0),  # bob's ask, the later of b1's two requesters
            ("b3", None),
        ]
        store.requesters.add("b1", "alice")  # time 5: b1 moves up, b3 stays last
        assert [b["id"] for b in store.requesters.batches_of(None)] == ["b1", "b2", "b3"]
        assert [b["id"] for b in store.requesters.batches_of(None, limit=1, offset=2)] == ["b3"]
    finally:
        store.close()


def stored_sample(batch_id: str, modality: str, index: int, status: str) -> Sample:
    spec = SampleSpec(batch_id=batch_id, index=index, modality=modality, generator="g", seed=index)
    return Sample(
        id=sample_id(batch_id, modality, index),
        spec=spec,
        text=f"sample {index}" if modality == "text" else None,
        provenance=Provenance(generator="g", generator_version="1", seed=index),
        status=status,  # type: ignore[arg-type]
    )


# (batch, modality, status, how many); b3 has no samples, "other" is not asked for
STORED = [
    ("b1", "image", "accepted", 3),
    ("b1", "image", "review", 1),
    ("b1", "text", "failed", 2),
    ("b2", "text", "accepted", 1),
    ("b2", "text", "rejected", 4),
    ("other", "image", "accepted", 5),
]


def test_counts_of_many_batches_are_each_batch_s_counts_in_one_query(empty_db_url):
    store = Store(empty_db_url)
    try:
        for batch_id in ("b1", "b2", "b3", "other"):
            store.put_batch(batch_id, name=batch_id, seed=0, config={})
        index = 0
        for batch_id, modality, status, n in STORED:
            items = [stored_sample(batch_id, modality, index + i, status) for i in range(n)]
            store.upsert_samples(items)
            index += n

        asked = ["b1", "b2", "b3"]
        counts = store.counts_of(asked)
        assert counts == {
            "b1": {"image": {"accepted": 3, "review": 1}, "text": {"failed": 2}},
            "b2": {"text": {"accepted": 1, "rejected": 4}},
            "b3": {},
        }
        for batch_id in asked:  # the same numbers as asking batch by batch
            one: dict[str, dict[str, int]] = {}
            for (modality, status), n in store.count_by_status(batch_id).items():
                one.setdefault(modality, {})[status] = n
            assert counts[batch_id] == one, batch_id
        assert store.counts_of([]) == {}
        assert store.counts_of(["nope"]) == {"nope": {}}
    finally:
        store.close()


def test_removing_a_user_forgets_their_batches(empty_db_url):
    store = Store(empty_db_url)
    users = Users(store.engine)
    try:
        store.put_batch("b1", name="one", seed=1, config={})
        for user in ("alice", "bob"):
            users.add(user, "requester")
            store.requesters.add("b1", user)
        store.requesters.add("b1", "carol")  # a user removed before `remove` forgot rows

        assert users.remove("alice")
        assert store.requesters.of_batch("b1") == {"bob", "carol"}
        assert not users.remove("alice")  # no user: nothing else changes
        assert store.requesters.of_batch("b1") == {"bob", "carol"}

        # a new account under an old name starts with no batches
        for user in ("alice", "carol"):
            users.add(user, "requester")
            assert store.requesters.batches_of(user) == [], user
        assert store.requesters.of_batch("b1") == {"bob"}
    finally:
        store.close()


def test_a_new_user_under_a_removed_name_does_not_see_the_old_batches(service):
    app, client, tokens = service
    posted = client.post("/api/batches", json=posted_config(), headers=bearer(tokens["alice"]))
    assert posted.status_code == 202, posted.text
    batch_id = posted.json()["id"]
    wait_until_done(client, batch_id, tokens["alice"])

    assert app.state.users.remove("alice")
    new_alice = token_for(app, "alice", "requester")
    assert listed(client, new_alice) == []
    assert seen(client, new_alice, batch_id) == (404, 404)
    assert batch_id in listed(client, tokens["boss"], "?all=true")  # the batch itself stays
