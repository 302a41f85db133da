"""Batches from different requesters share the service fairly: a bounded pool of runner threads
served round robin (the requester served least recently first, at most half the pool each),
rate limits per requester (429 naming the limit), cancel, and a requester's flood answered with
4xx while another requester's batch finishes on time."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import bearer, make_app, token_for
from fastapi.testclient import TestClient

from synthgate.api.batches import BatchRunner, OverLimit
from synthgate.config import RequesterLimits, parse_config
from synthgate.pipeline import batch_id_for
from synthgate.runner import RunResult, Stopped
from synthgate.storage.store import Store


class HeldBackend:
    """A runner backend that records which batch started when, and holds each run until the
    test releases it (or its stop event is set: then it raises Stopped like a real run).
    `in_chunk`: each run is inside a chunk, and sees its stop event only once released."""

    def __init__(self, *, in_chunk: bool = False) -> None:
        self.in_chunk = in_chunk
        self.started: list[str] = []
        self.release: dict[str, threading.Event] = {}
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)

    def run(self, config, *, sinks, progress=None, stop=None) -> RunResult:
        batch_id = batch_id_for(config)
        with self.changed:
            self.started.append(config.name)
            gate = self.release.setdefault(config.name, threading.Event())
            self.changed.notify_all()
        while not gate.wait(0.02):
            if stop is not None and stop.is_set() and not self.in_chunk:
                raise Stopped(f"batch {batch_id}: stopped")
        if self.in_chunk:
            gate.clear()  # the next run of this batch makes a chunk of its own
            if stop is not None and stop.is_set():
                raise Stopped(f"batch {batch_id}: stopped")
        return RunResult(out=None, batch_id=batch_id, counts={})

    def wait_started(self, count: int, timeout: float = 10) -> list[str]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.started) >= count, timeout), self.started
            return list(self.started)

    def finish(self, name: str) -> None:
        with self.lock:
            self.release.setdefault(name, threading.Event()).set()


class NoQueue:
    def enqueue_batch(self, batch_id: str, *, image_root: Any = None) -> int:
        return 0


def config(name: str, count: int = 4) -> Any:
    return parse_config(
        {"name": name, "categories": ["a"], "image": {"count": count, "size": [32, 32]}},
        source=Path("test"),
    )


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[BatchRunner, HeldBackend, Store]]:
    store = Store(f"sqlite:///{tmp_path / 'service.db'}")
    backend = HeldBackend()
    made: list[BatchRunner] = []

    def build(threads: int, **limits: int) -> BatchRunner:
        runner = BatchRunner(
            store,
            NoQueue(),
            tmp_path / "runs",
            backend=backend,
            threads=threads,
            limits=RequesterLimits(**limits),
        )
        made.append(runner)
        return runner

    yield build, backend, store  # type: ignore[misc]
    for runner in made:
        for event in backend.release.values():
            event.set()
        runner.shutdown(grace=5)
    store.close()


def status_of(store: Store, name: str) -> str:
    return store.get_batch(batch_id_for(config(name)))["status"]


def wait_for(check: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_free_thread_serves_the_requester_served_least_recently(held):
    build, backend, _store = held
    runner = build(threads=1)
    runner.submit(config("a1"), "alice")
    backend.wait_started(1)
    for name, who in (("a2", "alice"), ("a3", "alice"), ("b1", "bob"), ("c1", "carol")):
        runner.submit(config(name), who)
    for name in ("a1", "b1", "c1", "a2"):
        backend.finish(name)
    assert backend.wait_started(5) == ["a1", "b1", "c1", "a2", "a3"]


def test_requesters_never_served_go_in_the_order_they_came_to_wait(held):
    build, backend, store = held
    runner = build(threads=1)
    runner.submit(config("a1"), "alice")
    backend.wait_started(1)
    runner.submit(config("b1"), "bob")
    runner.submit(config("c1"), "carol")
    runner.submit(config("d1"), "dan")
    messages = [store.get_batch(batch_id_for(config(n)))["message"] for n in ("b1", "c1", "d1")]
    assert messages == ["queued", "queued: 1 batch ahead", "queued: 2 batches ahead"]
    assert runner.cancel(batch_id_for(config("d1")), by="dan")
    assert runner.cancel(batch_id_for(config("b1")), by="bob")
    runner.submit(config("b2"), "bob")  # bob waits again, now behind carol
    backend.finish("a1")
    backend.finish("c1")
    assert backend.wait_started(3) == ["a1", "c1", "b2"]


def test_one_requester_never_holds_the_whole_pool(held):
    build, backend, store = held
    runner = build(threads=4)  # half the pool each: 2
    for n in range(4):
        runner.submit(config(f"a{n}"), "alice")
    # two pool threads start alice's first two at once, in either order
    assert sorted(backend.wait_started(2)) == ["a0", "a1"]
    time.sleep(0.2)
    assert len(backend.started) == 2  # two threads stay free for others
    assert "queued" in store.get_batch(batch_id_for(config("a2")))["message"]
    runner.submit(config("b0"), "bob")
    assert backend.wait_started(3)[-1] == "b0"  # at once, while alice's two still run
    backend.finish("a0")
    assert backend.wait_started(4)[-1] == "a2"


def test_open_batches_and_samples_per_hour_are_limited_per_requester(held):
    build, backend, store = held
    runner = build(threads=2, open_batches=2, samples_per_hour=10)
    runner.submit(config("a1", count=4), "alice")
    runner.submit(config("a2", count=4), "alice")
    with pytest.raises(OverLimit) as over:
        runner.submit(config("a3", count=1), "alice")
    assert over.value.limit == "open_batches" and "2 batches queued or running" in str(over.value)
    assert runner.submit(config("b1", count=4), "bob")[1]  # bob has his own limits
    assert store.get_batch(batch_id_for(config("a3", count=1))) is None  # nothing recorded
    backend.finish("a1")
    wait_for(lambda: status_of(store, "a1") == "done")
    with pytest.raises(OverLimit) as over:
        runner.submit(config("a4", count=4), "alice")  # 4 + 4 + 4 > 10 in the hour
    assert over.value.limit == "samples_per_hour" and over.value.retry_after > 3000
    assert runner.submit(config("a5", count=2), "alice")[1]  # 10: exactly the limit


def test_cancel_drops_a_waiting_batch_and_stops_a_running_one(held):
    build, backend, store = held
    runner = build(threads=1)
    runner.submit(config("run"), "alice")
    runner.submit(config("wait"), "alice")
    backend.wait_started(1)
    assert runner.cancel(batch_id_for(config("wait")), "alice")
    assert status_of(store, "wait") == "cancelled"
    assert runner.cancel(batch_id_for(config("run")), "alice")
    wait_for(lambda: not runner.in_flight)
    assert status_of(store, "run") == "cancelled"
    assert "cancelled by alice" in store.get_batch(batch_id_for(config("run")))["message"]
    assert backend.started == ["run"]  # the waiting one never ran
    assert not runner.cancel(batch_id_for(config("run")), "alice")  # nothing left to cancel
    # posting a cancelled batch again resumes it
    assert runner.submit(config("wait"), "alice")[1]
    assert backend.wait_started(2)[-1] == "wait"


def test_shutdown_leaves_batches_resumable_and_returns_in_time(held):
    build, backend, store = held
    runner = build(threads=1)
    runner.submit(config("run"), "alice")
    runner.submit(config("wait"), "alice")
    backend.wait_started(1)
    started = time.monotonic()
    runner.shutdown(grace=5)
    assert time.monotonic() - started < 5
    for name in ("run", "wait"):
        batch = store.get_batch(batch_id_for(config(name)))
        assert batch["status"] == "running" and "post it again to resume" in batch["message"]
    assert not runner.in_flight


# ---- the flood, through the API with the real in-process runner ------------------------------


def procedural(name: str, seed: int, count: int, size: int = 96, **section: Any) -> dict:
    return {
        "name": name,
        "seed": seed,
        "categories": ["circle", "square"],
        "image": {"generator": "procedural", "count": count, "size": [size, size], **section},
    }


def run_alone(client: TestClient, token: str, body: dict) -> tuple[dict, float]:
    started = time.monotonic()
    posted = client.post("/api/batches", json=body, headers=bearer(token))
    assert posted.status_code == 202, posted.text
    url = f"/api/batches/{posted.json()['id']}"
    while (batch := client.get(url, headers=bearer(token)).json())["status"] == "running":
        assert time.monotonic() - started < 120, batch
        time.sleep(0.05)
    return batch, time.monotonic() - started


FLOOD = [
    # (what, body, status)
    ("huge count", procedural("huge", 1, 10**6), 422),
    ("huge images", procedural("big", 1, 10, size=8192), 422),
    ("billion objects", procedural("objects", 1, 10, objects_per_image=[10**9, 10**9]), 400),
    ("objects over the limit", procedural("objects", 1, 10, objects_per_image=[1, 500]), 422),
    ("NaN scale", {**procedural("nan", 1, 10), "image": {"count": 1, "object_scale_range": [0.1, float("nan")]}}, 400),
]  # fmt: skip


def test_a_requesters_flood_gets_4xx_while_another_requesters_batch_finishes_on_time(tmp_path):
    limits = RequesterLimits(open_batches=3, samples_per_hour=2000, samples_per_batch=1000)
    app = make_app(tmp_path, images=0, limits=limits)
    small = procedural("small", 7, 12)
    with TestClient(app) as client:
        flooder, other = token_for(app, "flood", "requester"), token_for(app, "bob", "requester")
        run_alone(client, other, procedural("warmup", 8, 12))  # imports, first connections
        _, alone = run_alone(client, other, procedural("alone", 9, 12))

        answers: list[int] = []
        slowest = 0.0
        for seed in range(40):  # 40 posts as fast as the server answers
            started = time.monotonic()
            response = client.post(
                "/api/batches", json=procedural(f"flood{seed}", seed, 300), headers=bearer(flooder)
            )
            slowest = max(slowest, time.monotonic() - started)
            answers.append(response.status_code)
            if response.status_code == 429:
                assert "open_batches" in response.json()["detail"], response.text
        for _what, body, code in FLOOD:
            response = client.post(  # json.dumps writes NaN as the token Python's parser reads
                "/api/batches",
                content=json.dumps(body),
                headers={**bearer(flooder), "Content-Type": "application/json"},
            )
            answers.append(response.status_code)
            assert response.status_code == code, (_what, response.text)
        assert answers[:3] == [202] * 3 and set(answers[3:40]) == {429}, answers
        assert all(400 <= code < 500 for code in answers[3:]), answers

        batch, flooded = run_alone(client, other, small)
        assert batch["status"] == "done" and sum(batch["counts"]["image"].values()) == 12
        still = [b["status"] for b in client.get("/api/batches", headers=bearer(flooder)).json()]
        print(
            f"flood: {len(answers)} posts, {answers.count(202)} accepted, slowest answer "
            f"{slowest:.2f}s; the other requester's 12-image batch: {alone:.2f}s alone, "
            f"{flooded:.2f}s during the flood (flood batches then: {still})"
        )
        assert "running" in still  # the flood's batches were still busy the whole time
        assert slowest < 2.0
        # on time: the flood's three batches share the CPU with it, nothing more
        assert flooded < max(10.0, 6 * alone), (alone, flooded)
        for batch_id in [
            b["id"] for b in client.get("/api/batches", headers=bearer(flooder)).json()
        ]:
            client.delete(f"/api/batches/{batch_id}", headers=bearer(flooder))


def test_delete_cancels_through_the_api(tmp_path):
    app = make_app(tmp_path, images=0)
    with TestClient(app) as client:
        alice, bob = token_for(app, "alice", "requester"), token_for(app, "bob", "requester")
        posted = client.post("/api/batches", json=procedural("long", 1, 400), headers=bearer(alice))
        batch_id = posted.json()["id"]
        assert client.delete(f"/api/batches/{batch_id}", headers=bearer(bob)).status_code == 404
        cancelled = client.delete(f"/api/batches/{batch_id}", headers=bearer(alice))
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        wait_for(lambda: not app.state.runner.in_flight, timeout=30)
        again = client.delete(f"/api/batches/{batch_id}", headers=bearer(alice))
        assert again.status_code == 409 and "cancelled" in again.json()["detail"]
        made = sum(
            client.get(f"/api/batches/{batch_id}", headers=bearer(alice)).json()["counts"]
            .get("image", {}).values()
        )  # fmt: skip
        assert made < 400  # it stopped early
        resumed = client.post(
            "/api/batches", json=procedural("long", 1, 400), headers=bearer(alice)
        )
        assert resumed.status_code == 202 and resumed.json()["id"] == batch_id
        client.delete(f"/api/batches/{batch_id}", headers=bearer(alice))


def test_limits_are_the_accounts_not_the_names(tmp_path: Path) -> None:
    """A user removed and added again under the same name is another account (another token):
    it was refused as over the open-batch limit by the old account's batch, one it cannot see
    or cancel, because the limits were kept per user name."""
    limits = RequesterLimits(open_batches=1, samples_per_hour=8)
    app = make_app(tmp_path, images=0, limits=limits, batch_threads=2)
    backend = HeldBackend()
    app.state.runner.backend = backend
    with TestClient(app) as client:
        old = token_for(app, "bob", "requester")
        body = procedural("old", 1, 4)
        assert client.post("/api/batches", json=body, headers=bearer(old)).status_code == 202
        backend.wait_started(1)
        app.state.users.remove("bob")
        new = token_for(app, "bob", "requester")
        assert client.get("/api/batches", headers=bearer(new)).json() == []
        posted = client.post("/api/batches", json=procedural("new", 2, 4), headers=bearer(new))
        assert posted.status_code == 202, posted.text
        assert backend.wait_started(2) == ["old", "new"]  # a fair share of its own, too
        again = client.post("/api/batches", json=procedural("more", 3, 1), headers=bearer(new))
        assert again.status_code == 429 and "open_batches" in again.json()["detail"]
        for name in ("old", "new"):
            backend.finish(name)
        wait_for(lambda: not app.state.runner.in_flight)


def test_a_batch_posted_again_while_its_cancel_lands_resumes(tmp_path: Path) -> None:
    """DELETE, then POST of the same config while the batch finished the chunk it was inside:
    the post answered 'cancelled' and started nothing (a third post was needed)."""
    store = Store(f"sqlite:///{tmp_path / 'service.db'}")
    backend = HeldBackend(in_chunk=True)
    runner = BatchRunner(store, NoQueue(), tmp_path / "runs", backend=backend, threads=1)
    try:
        batch_id = runner.submit(config("run"), "alice")[0]
        backend.wait_started(1)
        assert runner.cancel(batch_id, "alice")
        assert runner.submit(config("run"), "alice") == (batch_id, True)
        assert "resumes once the chunk" in store.get_batch(batch_id)["message"]
        backend.finish("run")  # the chunk ends: stopped, then queued again
        assert backend.wait_started(2) == ["run", "run"]
        backend.finish("run")
        wait_for(lambda: status_of(store, "run") == "done")
        # cancelled, posted again, cancelled again, all inside one chunk: it stays cancelled
        other = runner.submit(config("other"), "alice")[0]
        backend.wait_started(3)
        assert runner.cancel(other, "alice")
        assert runner.submit(config("other"), "alice") == (other, True)
        assert runner.cancel(other, "alice")
        backend.finish("other")
        wait_for(lambda: not runner.in_flight)
        assert status_of(store, "other") == "cancelled"
        assert backend.started.count("other") == 1
    finally:
        for event in backend.release.values():
            event.set()
        runner.shutdown(grace=5)
        store.close()
