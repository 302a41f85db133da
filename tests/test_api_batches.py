"""Requesters' batch routes: POST a config, it runs in the background, its samples reach the
review queue, its COCO file comes back; bad configs get 400 with the field named."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from api_support import bearer, make_app, token_for
from factories import small_config
from fastapi.testclient import TestClient
from pycocotools.coco import COCO

from synthgate import pipeline, runner
from synthgate.errors import InputError
from synthgate.masks import encode_mask, tight_bbox
from synthgate.samples import (
    GeneratedSample,
    ObjectLabel,
    Provenance,
    RubricReport,
    Sample,
    SampleSpec,
    sample_id,
)
from synthgate.storage.store import Store

CONFIG = {
    "name": "posted",
    "seed": 5,
    "categories": ["circle", "square"],
    "image": {"generator": "procedural", "count": 4, "size": [64, 48]},
}


class TinyGenerator:
    """A stand-in image generator: one filled box per image, exact mask; waits for `gate`."""

    name: ClassVar[str] = "procedural"
    version: ClassVar[str] = "test"
    modality: ClassVar[str] = "image"
    gate = threading.Event()

    def __init__(self, categories: list[str]) -> None:
        self.categories = categories

    def quota_categories(self) -> list[str | None]:
        return list(self.categories)

    def generate(self, specs: list[SampleSpec]) -> list[GeneratedSample]:
        assert self.gate.wait(30)
        made = []
        for spec in specs:
            mask = np.zeros((48, 64), dtype=bool)
            mask[8 : 20 + spec.index, 10:30] = True
            sid = sample_id(spec.batch_id, "image", spec.index)
            sample = Sample(
                id=sid,
                spec=spec,
                uri=f"images/{sid}.png",
                width=64,
                height=48,
                objects=[
                    ObjectLabel(
                        category=spec.category or "circle",
                        bbox=tight_bbox(mask),
                        mask=encode_mask(mask),
                        area=float(mask.sum()),
                    )
                ],
                provenance=Provenance(
                    generator="procedural", generator_version="test", seed=spec.seed
                ),
            )
            pixels = np.where(mask[..., None], 40, 220).astype(np.uint8).repeat(3, axis=2)
            made.append(GeneratedSample(sample=sample, pixels=pixels, foreground=mask))
        return made


def route_odd_to_review(generated: GeneratedSample, judge_sample: object = None) -> GeneratedSample:
    """Stands in for pipeline.judge: odd samples to review, whatever the rubric says."""
    sample = generated.sample
    route = "review" if sample.spec.index % 2 else "accepted"
    sample.status = route
    sample.report = RubricReport(
        rubric="test", score=3.0 if route == "review" else 5.0, levels={"precision": 3}, route=route
    )
    return generated


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(
        runner, "build_generators", lambda config: {"image": TinyGenerator(config.categories)}
    )
    monkeypatch.setattr(pipeline, "judge", route_odd_to_review)
    TinyGenerator.gate.clear()
    app = make_app(tmp_path, images=0)
    with TestClient(app) as client:
        yield app, client
    TinyGenerator.gate.set()


def wait_until_done(client: TestClient, url: str, token: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        batch = client.get(url, headers=bearer(token)).json()
        if batch["status"] != "running":
            return batch
        time.sleep(0.1)
    raise AssertionError(f"batch still running: {batch}")


def test_posted_batch_runs_and_reaches_the_review_queue(service, tmp_path):
    app, client = service
    requester = token_for(app, "req", "requester")
    response = client.post("/api/batches", json=CONFIG, headers=bearer(requester))
    assert response.status_code == 202, response.text
    batch = response.json()
    assert batch["status"] == "running" and batch["name"] == "posted"
    url = f"/api/batches/{batch['id']}"
    early = client.get(f"{url}/coco", headers=bearer(requester))
    assert early.status_code == 409 and "running" in early.json()["detail"]
    TinyGenerator.gate.set()
    done = wait_until_done(client, url, requester)
    assert done["status"] == "done", done
    assert done["counts"] == {"image": {"accepted": 2, "review": 2}}
    assert done["message"] == "2 new items queued for review"
    assert (tmp_path / "runs" / batch["id"] / "manifest.json").is_file()

    coco_response = client.get(done["coco_url"], headers=bearer(requester))
    assert coco_response.status_code == 200
    coco_file = tmp_path / "got.coco.json"
    coco_file.write_bytes(coco_response.content)
    coco = COCO(str(coco_file))
    assert len(coco.getImgIds()) == 4 and len(coco.getAnnIds()) == 4

    annotator = token_for(app, "ann", "annotator")
    task = client.get("/api/review/next", headers=bearer(annotator)).json()
    assert task["sample"]["spec"]["batch_id"] == batch["id"]
    image = client.get(task["image_url"], headers=bearer(annotator))
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")

    again = client.post("/api/batches", json=CONFIG, headers=bearer(requester))
    assert again.status_code == 200 and again.json()["id"] == batch["id"]  # same config: same batch


BAD_CONFIGS = [
    # (id, body, status, words the message must hold)
    ("no-name", {"image": {"count": 2}, "categories": ["a"]}, 400, ["name", "required"]),
    ("unknown-key", {**CONFIG, "colour": "red"}, 400, ["unknown key", "colour"]),
    ("bad-count", {**CONFIG, "image": {"count": -3}}, 400, ["image.count", "-3"]),
    ("no-section", {"name": "x"}, 400, ["nothing to make"]),
    ("absolute-templates", {"name": "t", "text": {"templates": "/etc/passwd", "count": 1}}, 400, ["relative path"]),
    ("escaping-templates", {"name": "t", "text": {"templates": "../../x.yaml", "count": 1}}, 400, ["relative path"]),
    ("not-an-object", [1, 2], 422, ["body"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "body", "code", "words"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS]
)
def test_bad_configs_are_refused_with_the_field_named(service, case, body, code, words):
    app, client = service
    response = client.post(
        "/api/batches", json=body, headers=bearer(token_for(app, "req", "requester"))
    )
    assert response.status_code == code, response.text
    for word in words:
        assert word in response.json()["detail"]


def test_unknown_batch_is_404(service):
    app, client = service
    token = token_for(app, "req", "requester")
    for url in ("/api/batches/nope", "/api/batches/nope/coco"):
        response = client.get(url, headers=bearer(token))
        assert response.status_code == 404 and "nope" in response.json()["detail"]


def test_a_batch_that_fails_says_why(service, monkeypatch):
    app, client = service

    def no_model(config):
        raise InputError("image.model: /models/x not found; fetch it on a connected machine")

    monkeypatch.setattr(runner, "build_generators", no_model)
    token = token_for(app, "req", "requester")
    batch = client.post("/api/batches", json=CONFIG, headers=bearer(token)).json()
    failed = wait_until_done(client, f"/api/batches/{batch['id']}", token)
    assert failed["status"] == "failed" and "/models/x not found" in failed["message"]
    # a failed batch can be posted again once fixed
    monkeypatch.setattr(
        runner, "build_generators", lambda config: {"image": TinyGenerator(config.categories)}
    )
    TinyGenerator.gate.set()
    again = client.post("/api/batches", json=CONFIG, headers=bearer(token))
    assert again.status_code == 202
    assert wait_until_done(client, f"/api/batches/{batch['id']}", token)["status"] == "done"


class GatedBackend:
    """A runner backend that holds every run until `gate` is set, then makes nothing."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.runs: list[str] = []

    def run(self, config, *, sinks, progress=None, stop=None):
        self.runs.append(pipeline.batch_id_for(config))
        self.gate.wait(30)
        raise runner.Stopped("held")


def test_identical_posts_at_once_start_one_run_and_both_find_the_batch(tmp_path: Path) -> None:
    """The claim and the batch row happen under one lock: a second POST of the same config
    arriving together with the first neither starts it again nor finds no batch."""
    from synthgate.api.batches import BatchRunner
    from synthgate.config import parse_config

    config = parse_config(small_config(), source=tmp_path / "c.yaml")
    for attempt in range(20):
        store = Store(f"sqlite:///{tmp_path / f'race-{attempt}.db'}")
        backend = GatedBackend()
        batches = BatchRunner(store, None, tmp_path / "runs", backend=backend, threads=2)
        start = threading.Barrier(4)

        def submit(batches: BatchRunner = batches, start: threading.Barrier = start) -> bool:
            start.wait()
            batch_id, started = batches.submit(config, "req")
            # a POST that did not start the batch reads it at once: the row is already there
            assert started or batches.store.get_batch(batch_id) is not None
            return started

        with ThreadPoolExecutor(max_workers=4) as pool:
            starts = list(pool.map(lambda _: submit(), range(4)))
        assert starts.count(True) == 1, starts
        assert store.get_batch(pipeline.batch_id_for(config)) is not None
        backend.gate.set()
        batches.shutdown()
        assert backend.runs in ([], [pipeline.batch_id_for(config)])
        store.close()


def test_a_cancelled_batch_offers_no_coco_link() -> None:
    """A cancelled batch's run folder is never published: its coco_url answered 409."""
    from synthgate.api.batches import _batch_out

    row = {"id": "b-0123456789", "name": "b", "status": "cancelled", "message": ""}
    made = {"image": {"accepted": 3}}
    assert _batch_out(row, made).coco_url is None
    assert _batch_out({**row, "status": "done"}, made).coco_url == "/api/batches/b-0123456789/coco"
