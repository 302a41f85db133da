"""Helpers for the API tests: a review database with real image and text samples, users, and a
uvicorn server on a free port in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI
from PIL import Image

from synthgate.api.app import create_app
from synthgate.masks import encode_mask, tight_bbox
from synthgate.samples import (
    Finding,
    ObjectLabel,
    Provenance,
    RubricReport,
    Sample,
    SampleSpec,
    Span,
    sample_id,
)
from synthgate.storage.store import Store

BATCH = "apitest-0001"
CATEGORIES = ["circle", "square"]


def _provenance(index: int, prompt: str | None) -> Provenance:
    return Provenance(
        generator="procedural",
        generator_version="1",
        seed=index,
        params={"index": index},
        prompt=prompt,
        versions={"synthgate": "0.1.0"},
    )


def _report(route: str = "review") -> RubricReport:
    return RubricReport(
        rubric="test",
        score=3.0,
        levels={"correctness": 5, "completeness": 3, "precision": 3, "clarity": 5},
        route=route,  # type: ignore[arg-type]
        findings=[
            Finding(criterion="precision", level=3, check="precision_box", message="box 2 px loose")
        ],
    )


def image_sample(
    index: int, folder: Path, *, categories: list[str] = CATEGORIES, prompt: str | None = None
) -> Sample:
    """An image with one object per category (a filled box each), exact masks, PNG on disk."""
    width, height = 160, 120
    rng = np.random.default_rng(index)
    pixels = np.full((height, width, 3), 235, dtype=np.uint8)
    objects = []
    for k, category in enumerate(categories):
        mask = np.zeros((height, width), dtype=bool)
        x0, y0 = 10 + 70 * (k % 2), 15 + 45 * (k // 2)
        mask[y0 : y0 + 30 + index % 5, x0 : x0 + 40] = True
        pixels[mask] = rng.integers(0, 200, size=3, dtype=np.uint8)
        objects.append(
            ObjectLabel(
                category=category,
                bbox=tight_bbox(mask),
                mask=encode_mask(mask),
                area=float(mask.sum()),
            )
        )
    sid = sample_id(BATCH, "image", index)
    uri = f"images/{sid}.png"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(folder / uri)
    return Sample(
        id=sid,
        spec=SampleSpec(
            batch_id=BATCH, index=index, modality="image", generator="procedural", seed=index
        ),
        uri=uri,
        width=width,
        height=height,
        objects=objects,
        provenance=_provenance(index, prompt),
        report=_report(),
        status="review",
    )


def text_sample(index: int, *, label: str = "PERSON") -> Sample:
    text = f"Ticket {index}: Anna Schmidt from Acme GmbH cannot log in."
    spans = [
        Span(start=text.index(value), end=text.index(value) + len(value), label=name, value=value)
        for value, name in (("Anna Schmidt", label), ("Acme GmbH", "ORG"))
    ]
    return Sample(
        id=sample_id(BATCH, "text", index),
        spec=SampleSpec(
            batch_id=BATCH, index=index, modality="text", generator="templates", seed=index
        ),
        text=text,
        spans=spans,
        provenance=_provenance(index, None),
        report=_report(),
        status="review",
    )


def seed_batch(store: Store, folder: Path, samples: list[Sample]) -> None:
    store.put_batch(BATCH, name="apitest", seed=0, config={"name": "apitest"})
    store.upsert_samples(samples)


def make_app(
    tmp_path: Path,
    *,
    images: int = 4,
    texts: int = 0,
    k: int = 2,
    gold_rate: float = 0.0,
    categories: list[str] = CATEGORIES,
    prompt: str | None = None,
    **options: Any,
) -> FastAPI:
    """An app over a fresh database holding a batch of review items (no gold unless asked)."""
    run = tmp_path / "run"
    app = create_app(
        db_url=f"sqlite:///{tmp_path / 'service.db'}",
        runs_dir=tmp_path / "runs",
        annotators_per_item=k,
        gold_rate=gold_rate,
        **{"review_seed": 0, **options},  # the gold draws fixed: tests see the same ones
    )
    made = [image_sample(i, run, categories=categories, prompt=prompt) for i in range(images)]
    made += [text_sample(i) for i in range(texts)]
    seed_batch(app.state.store, run, made)
    app.state.queue.enqueue_batch(BATCH, image_root=run)
    return app


def token_for(app: FastAPI, name: str, role: str) -> str:
    return app.state.users.add(name, role)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def accept_every_task(client: Any, headers: dict[str, str]) -> list[int]:
    """Take and accept tasks over HTTP until `next` has none (204); the item ids, in order."""
    seen = []
    while (task := client.get("/api/review/next", headers=headers)).status_code == 200:
        seen.append(task.json()["item_id"])
        url = f"/api/review/{seen[-1]}/decision"
        assert client.post(url, json={"verdict": "accept"}, headers=headers).status_code == 200
    return seen


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run `app` under uvicorn on a free port in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
