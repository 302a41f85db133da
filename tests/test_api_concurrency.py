"""Annotators working the queue at the same time over HTTP (a real uvicorn server): nobody gets
an item twice, and every item ends with exactly k decisions."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest
from api_support import bearer, image_sample, make_app, serving, token_for
from sqlalchemy import func, select

from synthgate.storage.tables import decisions, review_items


def work_the_queue(base: str, token: str, start: threading.Barrier) -> list[int]:
    received = []
    with httpx.Client(base_url=base, headers=bearer(token), timeout=30) as client:
        start.wait()
        while (response := client.get("/api/review/next")).status_code == 200:
            item = response.json()["item_id"]
            received.append(item)
            verdict = ("accept", "reject", "fix")[item % 3]
            body: dict = {"verdict": verdict, "levels": {"precision": 5 if item % 2 else 3}}
            if verdict == "fix":  # a real correction: the first box narrower, the last span gone
                sample = response.json()["sample"]
                if sample["spec"]["modality"] == "image":
                    first, *rest = sample["objects"]
                    x, y, w, h = first["bbox"]
                    body["objects"] = [{**first, "bbox": [x, y, w - 1, h], "mask": None}, *rest]
                elif sample["spans"]:
                    body["spans"] = sample["spans"][:-1]
                else:
                    body["verdict"] = "accept"
            saved = client.post(f"/api/review/{item}/decision", json=body)
            assert saved.status_code == 200, saved.text
        assert response.status_code == 204, response.text
    return received


@pytest.mark.parametrize("people", [2, 3])
def test_concurrent_annotators_never_share_a_slot(tmp_path: Path, people: int):
    k = 2
    app = make_app(tmp_path, images=10, texts=6, k=k, gold_rate=0.2)
    for index in range(20, 23):
        app.state.queue.add_gold(image_sample(index, tmp_path / "run"), expected=["reject"])
    tokens = {f"ann{i}": token_for(app, f"ann{i}", "annotator") for i in range(people)}
    results: dict[str, list[int]] = {}
    failures: list[BaseException] = []
    start = threading.Barrier(people)

    def worker(name: str) -> None:
        try:
            results[name] = work_the_queue(base, tokens[name], start)
        except BaseException as error:  # surfaced below, with the thread's name
            failures.append(error)

    with serving(app) as base:
        threads = [threading.Thread(target=worker, args=(name,)) for name in tokens]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert not failures, failures
    for name, items in results.items():
        assert len(items) == len(set(items)), f"{name} received an item twice: {items}"

    with app.state.store.engine.connect() as connection:
        real = set(
            connection.execute(
                select(review_items.c.id).where(review_items.c.kind == "sample")
            ).scalars()
        )
        per_item = dict(
            connection.execute(
                select(decisions.c.item_id, func.count()).group_by(decisions.c.item_id)
            ).all()
        )
        per_person = Counter(connection.execute(select(decisions.c.annotator)).scalars())
    assert len(real) == 16
    assert {item: per_item.get(item, 0) for item in real} == dict.fromkeys(real, k)
    assert all(per_item[item] <= people for item in per_item)  # gold: at most once per person
    assert per_person == {name: len(items) for name, items in results.items()}
    if people == 2:  # with k == 2 people, each of them decides every real item
        internal = app.state.item_ids.internal  # the API shows opaque ids
        assert all(real <= {internal(i) for i in items} for items in results.values())
