"""Requesters' batch routes: POST a config, it runs in the background, its samples reach the
review queue, its COCO file comes back; bad configs get 400 with the field named."""

from __future__ import annotations

import errno
import json
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import sqlalchemy.exc
from api_support import bearer, make_app, token_for
from factories import small_config
from fastapi import HTTPException
from fastapi.testclient import TestClient
from pycocotools.coco import COCO

from synthgate import pipeline, runner, sinks
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
from synthgate.storage.tables import batch_rubrics

TICKETS = "configs/templates/support_tickets.yaml"  # a shipped file: posted configs may name it
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
        runner, "build_generators", lambda config, **_: {"image": TinyGenerator(config.categories)}
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
    for download in ("coco", "jsonl"):
        early = client.get(f"{url}/{download}", headers=bearer(requester))
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
    # each image's pixels at the path its file_name gives under the batch
    for entry in coco.dataset["images"]:
        png = client.get(f"{url}/{entry['file_name']}", headers=bearer(requester))
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content == (tmp_path / "runs" / batch["id"] / entry["file_name"]).read_bytes()
    for name, code in (("nope.png", 404), ("..%2F..%2Fmanifest.json", 404), ("x.json", 422)):
        refused = client.get(f"{url}/images/{name}", headers=bearer(requester))
        assert refused.status_code == code, (name, refused.text)
    # a link in the images folder is not followed (the route's own guard: the name is fine)
    (tmp_path / "runs" / batch["id"] / "images" / "link.png").symlink_to(tmp_path / "got.coco.json")
    linked = client.get(f"{url}/images/link.png", headers=bearer(requester))
    assert linked.status_code == 404, linked.text
    other = token_for(app, "other", "requester")
    first = coco.dataset["images"][0]["file_name"]
    assert client.get(f"{url}/{first}", headers=bearer(other)).status_code == 404
    assert done["jsonl_url"] is None  # no texts asked for
    no_texts = client.get(f"{url}/jsonl", headers=bearer(requester))
    assert no_texts.status_code == 404 and "has no texts" in no_texts.json()["detail"]

    annotator = token_for(app, "ann", "annotator")
    task = client.get("/api/review/next", headers=bearer(annotator)).json()
    # a sample of the posted batch (the task itself names no sample or batch: gold.blind)
    shown = app.state.queue.task(app.state.item_ids.internal(task["item_id"])).sample
    assert shown.spec.batch_id == batch["id"] and task["sample"]["id"] == ""
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

    def no_model(config, **_):
        raise InputError("image.model: /models/x not found; fetch it on a connected machine")

    monkeypatch.setattr(runner, "build_generators", no_model)
    token = token_for(app, "req", "requester")
    batch = client.post("/api/batches", json=CONFIG, headers=bearer(token)).json()
    failed = wait_until_done(client, f"/api/batches/{batch['id']}", token)
    assert failed["status"] == "failed" and "/models/x not found" in failed["message"]
    # a failed batch can be posted again once fixed
    monkeypatch.setattr(
        runner, "build_generators", lambda config, **_: {"image": TinyGenerator(config.categories)}
    )
    TinyGenerator.gate.set()
    again = client.post("/api/batches", json=CONFIG, headers=bearer(token))
    assert again.status_code == 202
    assert wait_until_done(client, f"/api/batches/{batch['id']}", token)["status"] == "done"


def test_a_run_folder_refusal_tells_the_requester_to_post_again_not_to_run_again(service, tmp_path):
    """A batch posted again (it failed) whose run folder now holds a file synthgate did not
    write is refused with the run's refusal: it said "then run again", the CLI's advice, to a
    caller who never ran anything; it says to post the config again (`synthgate run` keeps its
    words: test_out_foreign_files.py)."""
    app, client = service
    token = token_for(app, "req", "requester")
    TinyGenerator.gate.set()
    batch = client.post("/api/batches", json=CONFIG, headers=bearer(token)).json()
    url = f"/api/batches/{batch['id']}"
    assert wait_until_done(client, url, token)["status"] == "done"
    app.state.store.set_batch_status(batch["id"], "failed", "as a run that failed")
    (tmp_path / "runs" / batch["id"] / "notes.txt").write_text("mine")
    assert client.post("/api/batches", json=CONFIG, headers=bearer(token)).status_code == 202
    refused = wait_until_done(client, url, token)
    said = refused["message"]
    assert refused["status"] == "failed", said
    assert said.startswith(
        f"run folder runs/{batch['id']}: holds 1 file synthgate did not write (notes.txt)"
    ), said
    assert said.endswith(f"move it out of runs/{batch['id']}, then post the config again"), said
    assert "then run again" not in said and "out=" not in said


def test_a_run_folder_refusal_keeps_the_names_of_the_files_it_names(tmp_path: Path) -> None:
    """said_to_requester put "post the config again" for "then run again" anywhere in the
    message: in the name of a file in the run folder, or of a folder above it, too, which it
    then named wrong. The refusal now gives the server's advice where it is made."""
    from synthgate.api.batch_runner import RUN_FOLDER_ADVICE, said_to_requester
    from synthgate.foreign_files import refuse_foreign_files

    out = tmp_path / "then run again" / "runs" / "b-1"  # a server's folder may be named so too
    out.mkdir(parents=True)
    (out / "manifest.json").write_text("{}")
    (out / "fix it, then run again.txt").write_text("mine")
    with pytest.raises(InputError) as refused:
        refuse_foreign_files(out, marker="manifest.json", what="run", advice=RUN_FOLDER_ADVICE)
    said = said_to_requester(refused.value)
    assert "(fix it, then run again.txt)" in said, said
    assert said.endswith(f"move it out of {out}, then post the config again"), said


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


LINKS = [
    # (batch status, {modality: {status: samples}}, coco_url, jsonl_url)
    ("cancelled", {"image": {"accepted": 3}, "text": {"accepted": 3}}, None, None),
    ("running", {"image": {"accepted": 3}, "text": {"accepted": 3}}, None, None),
    ("done", {"image": {"accepted": 3}, "text": {"review": 3}}, "/coco", "/jsonl"),
    ("failed", {"image": {"failed": 3}, "text": {"accepted": 1, "failed": 2}}, None, "/jsonl"),
    ("done", {"image": {"rejected": 3}}, "/coco", None),
    ("done", {"text": {"rejected": 3}}, None, "/jsonl"),
]


@pytest.mark.parametrize(("status", "counts", "coco", "jsonl"), LINKS)
def test_a_batch_links_only_the_files_it_has(status, counts, coco, jsonl) -> None:
    """A cancelled batch's run folder is never published: its links answered 409. A running
    one has no files yet; a finished one has a file for each modality it made samples of."""
    from synthgate.api.batches import _batch_out

    row = {"id": "b-0123456789", "name": "b", "status": status, "message": ""}
    batch = _batch_out(row, counts)
    base = "/api/batches/b-0123456789"
    assert batch.coco_url == (base + coco if coco else None)
    assert batch.jsonl_url == (base + jsonl if jsonl else None)


DOWNLOADS = [
    # (batch status, files in its run folder, route, status code, words the answer holds)
    ("running", [], "jsonl", 409, "is running; try when done"),
    ("cancelled", [], "jsonl", 409, "stopped before writing its texts: why"),
    ("failed", [], "jsonl", 409, "stopped before writing its texts: why"),
    ("failed", ["text.jsonl"], "jsonl", 200, '{"id": "t"}'),
    ("done", ["coco.json"], "jsonl", 404, "has no texts"),
    ("done", ["text.jsonl"], "jsonl", 200, '{"id": "t"}'),
    ("cancelled", [], "coco", 409, "stopped before writing its images: why"),
    ("done", ["text.jsonl"], "coco", 404, "has no images"),
    ("done", ["coco.json"], "coco", 200, '"images"'),
]


@pytest.mark.parametrize(("status", "files", "route", "code", "words"), DOWNLOADS)
def test_a_batchs_files_follow_its_status(tmp_path, status, files, route, code, words) -> None:
    """The COCO and the JSONL download answer alike: 409 while running or once stopped without
    the file, 404 for a modality the batch did not make, else the file."""
    app = make_app(tmp_path, images=0)
    batch_id = "b-0123456789"
    app.state.store.put_batch(batch_id, name="b", seed=0, config={"name": "b"})
    app.state.store.set_batch_status(batch_id, status, "why")
    token = token_for(app, "req", "requester")  # first: a new user starts with no batches
    app.state.store.requesters.add(batch_id, "req")
    folder = tmp_path / "runs" / batch_id
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"batch_id": batch_id}))
    contents = {"coco.json": '{"images": []}', "text.jsonl": '{"id": "t"}\n'}
    for name in files:
        (folder / name).write_text(contents[name])
    with TestClient(app) as client:
        response = client.get(f"/api/batches/{batch_id}/{route}", headers=bearer(token))
    assert response.status_code == code, response.text
    assert words in (response.text if code == 200 else response.json()["detail"])
    if code == 200:
        types = {"coco": "application/json", "jsonl": "application/x-ndjson"}
        assert response.headers["content-type"] == types[route]


def test_a_posted_text_batch_hands_back_its_jsonl(tmp_path) -> None:
    """A text batch's results could not be downloaded: it offered no link, as an image batch
    offers its COCO file, and no route served its text.jsonl."""
    app = make_app(tmp_path, images=0)
    body = {"name": "tickets", "seed": 1, "text": {"templates": TICKETS, "count": 5}}
    with TestClient(app) as client:
        requester = token_for(app, "req", "requester")
        posted = client.post("/api/batches", json=body, headers=bearer(requester))
        assert posted.status_code == 202, posted.text
        url = f"/api/batches/{posted.json()['id']}"
        done = wait_until_done(client, url, requester)
        assert done["status"] == "done" and done["coco_url"] is None, done
        assert done["jsonl_url"] == f"{url}/jsonl"
        response = client.get(done["jsonl_url"], headers=bearer(requester))
        assert response.status_code == 200
        assert f"{posted.json()['id']}.text.jsonl" in response.headers["content-disposition"]
        rows = [json.loads(line) for line in response.text.splitlines()]
        assert len(rows) == 5 and sum(done["counts"]["text"].values()) == 5
        assert all(row["text"] and "spans" in row for row in rows)
        other = token_for(app, "bob", "requester")
        hidden = client.get(done["jsonl_url"], headers=bearer(other))
        assert hidden.status_code == 404 and hidden.json()["detail"].startswith("no batch")


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'"categories": ["\\ud800"]', "categories[0]"),
        (b'"categories": ["circle"], "note": {"a": "x\\udfffy"}', "note.a"),
    ],
)
def test_a_lone_surrogate_in_a_posted_config_is_refused_at_once(service, body, where) -> None:
    """Valid JSON that no UTF-8 output can hold: refused naming its place, never a batch that
    fails later with a UnicodeEncodeError."""
    app, client = service
    raw = b'{"name": "odd", "seed": 1, ' + body
    raw += b', "image": {"generator": "procedural", "count": 1, "size": [64, 48]}}'
    response = client.post(
        "/api/batches",
        content=raw,
        headers={**bearer(token_for(app, "req", "requester")), "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert where in detail and "lone surrogate" in detail
    batches = app.state.store.requesters.batches_of(None, limit=10, offset=0)
    assert [b for b in batches if b["name"] == "odd"] == []


def test_a_batch_posted_again_with_another_rubric_is_refused_not_answered_with_its_verdicts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rubric is not part of a batch's id (it judges what is made, it does not change it):
    the same config posted again with a stricter rubric was answered 200 with the batch as
    it stood, every verdict the first rubric's, and nothing said. Now it is 409, naming both
    rubrics and what to do; the same rubric posted again is answered as before."""
    from synthgate.config import PACKAGE_ROOT

    monkeypatch.setattr(
        runner, "build_generators", lambda config, **_: {"image": TinyGenerator(config.categories)}
    )
    monkeypatch.setattr(pipeline, "judge", route_odd_to_review)
    TinyGenerator.gate.set()
    detection = (PACKAGE_ROOT / "configs" / "rubrics" / "detection.yaml").read_text()
    strict = tmp_path / "strict.yaml"
    strict.write_text(
        detection.replace("name: detection", "name: strict").replace(
            "accept_at: 4.4", "accept_at: 4.8"
        )
    )
    app = make_app(tmp_path, images=0, data_root=tmp_path)
    with TestClient(app) as client:
        token = token_for(app, "req", "requester")
        batch = client.post("/api/batches", json=CONFIG, headers=bearer(token)).json()
        url = f"/api/batches/{batch['id']}"
        assert wait_until_done(client, url, token)["status"] == "done"
        assert client.post("/api/batches", json=CONFIG, headers=bearer(token)).status_code == 200
        stricter = {**CONFIG, "image": {**CONFIG["image"], "rubric": "strict.yaml"}}
        refused = client.post("/api/batches", json=stricter, headers=bearer(token))
        assert refused.status_code == 409, refused.text
        said = refused.json()["detail"]
        assert said.startswith(
            f"image.rubric: batch {batch['id']} was made and judged with rubric detection, "
            "not strict"
        ), said
        assert "give the config another name" in said, said
        assert str(tmp_path) not in said  # the data root stays the server's
        assert client.get(url, headers=bearer(token)).json()["status"] == "done"


@pytest.mark.parametrize("case", ["template default", "rubric file moved"])
def test_a_batch_whose_first_rubric_file_moved_is_compared_or_refused_in_words_that_fit(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files a batch's first post named moved (the same content: the batch id is the
    same). A text batch judged by its template file's task, posted again naming that task's
    rubric, was refused as made with "rubric None"; a batch whose rubric file moved, posted
    again with it from its new place, as made with "rubric strict, not strict". With the
    digest of the rubric it was judged with kept, both are the same rubric: nothing to refuse."""
    from synthgate.api.batch_runner import refuse_other_rubric
    from synthgate.config import PACKAGE_ROOT, parse_config
    from synthgate.pipeline import batch_id_for, rubric_digest, section_rubric

    monkeypatch.chdir(tmp_path)
    (tmp_path / "moved").mkdir()
    if case == "template default":
        (tmp_path / "t.yaml").write_bytes((PACKAGE_ROOT / TICKETS).read_bytes())
        text = {"generator": "templates", "count": 2, "templates": "t.yaml"}
        first = {"name": "t", "seed": 1, "text": text}
        again = {**first, "text": {**text, "templates": "moved/t.yaml", "rubric": "ner"}}
        moved = "t.yaml"
    else:
        detection = (PACKAGE_ROOT / "configs" / "rubrics" / "detection.yaml").read_text()
        (tmp_path / "strict.yaml").write_text(detection.replace("name: detection", "name: strict"))
        first = {**CONFIG, "image": {**CONFIG["image"], "rubric": "strict.yaml"}}
        again = {**CONFIG, "image": {**CONFIG["image"], "rubric": "moved/strict.yaml"}}
        moved = "strict.yaml"
    stored = parse_config(first, source=Path("body"))
    batch_id = batch_id_for(stored)
    modality = "text" if case == "template default" else "image"
    judged_with = {modality: rubric_digest(section_rubric(stored, modality))}
    (tmp_path / moved).rename(tmp_path / "moved" / moved)
    config = parse_config(again, source=Path("body"))
    assert batch_id_for(config) == batch_id  # its files count by content
    # with the digest of the rubric it was judged with kept, the same content is the same
    refuse_other_rubric(stored.model_dump(mode="json"), config, batch_id, judged_with=judged_with)
    if case == "template default":  # ner, as the template file's task was: nothing to refuse
        refuse_other_rubric(stored.model_dump(mode="json"), config, batch_id)
        return
    with pytest.raises(HTTPException) as refused:
        refuse_other_rubric(stored.model_dump(mode="json"), config, batch_id)
    said = refused.value.detail
    assert refused.value.status_code == 409 and "strict, not strict" not in said, said
    assert said.startswith(
        f"image.rubric: batch {batch_id} was made and judged with rubric strict from a file "
        "that can no longer be read, so whether strict judges as it did is unknown;"
    ), said
    assert str(tmp_path) not in said


def test_a_batch_that_made_nothing_may_be_posted_again_with_another_rubric(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that failed before it made any sample holds no verdict: posted again with
    another rubric (the fix for what stopped it, say), it was refused as "made and judged with
    rubric detection". It runs with the new rubric, which a later post is held to."""
    from synthgate.config import PACKAGE_ROOT

    made = iter([False, True])

    def generators(config: Any, **_: Any) -> dict[str, Any]:
        if not next(made):
            raise InputError("image.model.path: no model at 'sd' (the first try)")
        return {"image": TinyGenerator(config.categories)}

    monkeypatch.setattr(runner, "build_generators", generators)
    monkeypatch.setattr(pipeline, "judge", route_odd_to_review)
    TinyGenerator.gate.set()
    detection = (PACKAGE_ROOT / "configs" / "rubrics" / "detection.yaml").read_text()
    (tmp_path / "strict.yaml").write_text(detection.replace("name: detection", "name: strict"))
    stricter = {**CONFIG, "image": {**CONFIG["image"], "rubric": "strict.yaml"}}
    app = make_app(tmp_path, images=0, data_root=tmp_path)
    with TestClient(app) as client:
        token = token_for(app, "req", "requester")
        batch = client.post("/api/batches", json=CONFIG, headers=bearer(token)).json()
        url = f"/api/batches/{batch['id']}"
        failed = wait_until_done(client, url, token)
        assert failed["status"] == "failed" and failed["counts"] == {}, failed
        again = client.post("/api/batches", json=stricter, headers=bearer(token))
        assert again.status_code == 202, again.text
        assert wait_until_done(client, url, token)["status"] == "done"
        refused = client.post("/api/batches", json=CONFIG, headers=bearer(token))
        assert refused.status_code == 409, refused.text
        assert "judged with rubric strict, not detection" in refused.json()["detail"]


def test_a_batch_posted_again_after_its_rubric_file_was_edited_in_place_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rubric file a batch was judged with, edited in place (the same name and path, a
    stricter accept_at), and the config posted again: it was answered 200 with the batch as it
    stood, every verdict the old thresholds'. Now it is 409, saying the file changed since the
    batch was judged and to give the config another name; posted unchanged it is 200, and so
    is a batch judged before the digest of its rubric was kept (compared by name, as before)."""
    from synthgate.config import PACKAGE_ROOT

    monkeypatch.setattr(
        runner, "build_generators", lambda config, **_: {"image": TinyGenerator(config.categories)}
    )
    monkeypatch.setattr(pipeline, "judge", route_odd_to_review)
    TinyGenerator.gate.set()
    detection = (PACKAGE_ROOT / "configs" / "rubrics" / "detection.yaml").read_text()
    strict = tmp_path / "strict.yaml"
    strict.write_text(detection.replace("name: detection", "name: strict"))
    posted = {**CONFIG, "image": {**CONFIG["image"], "rubric": "strict.yaml"}}
    app = make_app(tmp_path, images=0, data_root=tmp_path)
    with TestClient(app) as client:
        token = token_for(app, "req", "requester")
        batch = client.post("/api/batches", json=posted, headers=bearer(token)).json()
        url = f"/api/batches/{batch['id']}"
        assert wait_until_done(client, url, token)["status"] == "done"
        assert client.post("/api/batches", json=posted, headers=bearer(token)).status_code == 200
        strict.write_text(strict.read_text().replace("accept_at: 4.4", "accept_at: 4.8"))
        refused = client.post("/api/batches", json=posted, headers=bearer(token))
        assert refused.status_code == 409, refused.text
        said = refused.json()["detail"]
        assert said.startswith(
            f"image.rubric: batch {batch['id']} was made and judged with rubric strict, whose "
            "file has changed since"
        ), said
        assert "give the config another name" in said, said
        assert str(tmp_path) not in said  # the data root stays the server's
        assert client.get(url, headers=bearer(token)).json()["status"] == "done"
        with app.state.store.engine.begin() as connection:  # judged before digests were kept
            connection.execute(batch_rubrics.delete())
        assert client.post("/api/batches", json=posted, headers=bearer(token)).status_code == 200


class SecondChunkFails(TinyGenerator):
    """TinyGenerator whose second chunk fails as a missing model would: its batch fails with
    the first chunk's samples judged."""

    def __init__(self, categories: list[str]) -> None:
        super().__init__(categories)
        self.chunks = 0

    def generate(self, specs: list[SampleSpec]) -> list[GeneratedSample]:
        self.chunks += 1
        if self.chunks == 2:
            raise InputError("image.model.path: no model at 'sd' (the first try)")
        return super().generate(specs)


def test_a_rubric_file_edited_after_a_post_again_was_let_through_stops_the_resumed_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A post again is held to the digest of the rubric the batch was judged with, but the run
    it starts loads the rubric file when it starts: after a wait in the queue, or once the
    chunk it was cancelled in ends. The file edited in between (here: as the resumed run builds
    its generators), the run judged with the edited file and recorded its digest over the
    first, so the batch held verdicts of both and a later post of the edited file was let
    through. The run fails before it judges anything, saying the file changed; the batch
    keeps its first rubric's digest, and its verdicts."""
    from synthgate.config import PACKAGE_ROOT
    from synthgate.pipeline import rubric_digest
    from synthgate.validators.rubric import load_rubric

    detection = (PACKAGE_ROOT / "configs" / "rubrics" / "detection.yaml").read_text()
    strict = tmp_path / "strict.yaml"
    strict.write_text(detection.replace("name: detection", "name: strict"))
    first = rubric_digest(load_rubric(strict))
    runs = iter([False, True])

    def generators(config: Any, **_: Any) -> dict[str, Any]:
        if next(runs):  # edited once the post again was let through
            strict.write_text(strict.read_text().replace("accept_at: 4.4", "accept_at: 4.8"))
            return {"image": TinyGenerator(config.categories)}
        return {"image": SecondChunkFails(config.categories)}

    monkeypatch.setattr(runner, "build_generators", generators)
    monkeypatch.setattr(pipeline, "judge", route_odd_to_review)
    TinyGenerator.gate.set()
    posted = {**CONFIG, "image": {**CONFIG["image"], "count": 16, "rubric": "strict.yaml"}}
    app = make_app(tmp_path, images=0, data_root=tmp_path)
    with TestClient(app) as client:
        token = token_for(app, "req", "requester")
        batch = client.post("/api/batches", json=posted, headers=bearer(token)).json()
        url = f"/api/batches/{batch['id']}"
        failed = wait_until_done(client, url, token)
        assert failed["status"] == "failed", failed
        assert failed["counts"] == {"image": {"accepted": 4, "review": 4}}, failed
        again = client.post("/api/batches", json=posted, headers=bearer(token))
        assert again.status_code == 202, again.text
        stopped = wait_until_done(client, url, token)
        assert stopped["status"] == "failed", stopped
        assert stopped["message"].startswith(
            f"image.rubric: batch {batch['id']} was judged with rubric strict, whose file has "
            "changed since"
        ), stopped["message"]
        assert "give the config another name" in stopped["message"]
        assert str(tmp_path) not in stopped["message"]  # the data root stays the server's
        assert stopped["counts"] == failed["counts"]
        assert app.state.store.rubric_digests(batch["id"]) == {"image": first}
        refused = client.post("/api/batches", json=posted, headers=bearer(token))
        assert refused.status_code == 409, refused.text


def test_a_run_folder_the_server_cannot_write_is_the_operators_to_fix(service, tmp_path):
    """A batch whose run folder cannot be made (the server's runs folder is no folder it can
    write in) told its requester "choose a folder you can write to": the requester chose no
    folder, the server's operator did (serve --runs-dir). `synthgate run --out` keeps its
    words (test_out_in_use.py)."""
    app, client = service
    token = token_for(app, "req", "requester")
    runs = tmp_path / "runs"
    if runs.exists():
        runs.rmdir()
    runs.write_text("a file where the runs folder should be")
    TinyGenerator.gate.set()
    batch = client.post("/api/batches", json=CONFIG, headers=bearer(token)).json()
    refused = wait_until_done(client, f"/api/batches/{batch['id']}", token)
    said = refused["message"]
    assert refused["status"] == "failed", said
    assert said.startswith(f"run folder runs/{batch['id']}: cannot write there ("), said
    assert "choose" not in said, said
    assert said.endswith(
        "; tell the server's operator (who chose its runs folder: serve --runs-dir), then post "
        "the config again"
    ), said


def _png_disk_full(pixels: object) -> bytes:
    raise OSError(errno.ENOSPC, "No space left on device")


def _publish_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Renaming a finished run folder into place fails (its runs folder's mode changed)."""
    real_rename = Path.rename

    def rename(self: Path, target: Path) -> Path:
        if self.name.endswith(".partial"):
            raise PermissionError(errno.EACCES, "Permission denied", str(self), None, str(target))
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)


def _database_io_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run folder's database (not the service's) gets SQLite's disk I/O error, as a disk
    quota used up gives it (EDQUOT is SQLITE_IOERR_WRITE; only ENOSPC is SQLITE_FULL)."""
    real_add = sinks.DatabaseSink.add

    def add(self: sinks.DatabaseSink, chunk: list[Any]) -> None:
        if not self.record_batch:  # the service's database
            return real_add(self, chunk)
        error = sqlite3.OperationalError("disk I/O error")
        error.sqlite_errorcode = sqlite3.SQLITE_IOERR_WRITE  # type: ignore[attr-defined]
        error.sqlite_errorname = "SQLITE_IOERR_WRITE"  # type: ignore[attr-defined]
        raise sqlalchemy.exc.OperationalError("INSERT INTO samples ...", {}, error)

    monkeypatch.setattr(sinks.DatabaseSink, "add", add)


# what fails once the run started, what the message says failed, and the fix it asks for
WRITE_FAILURES = [
    (
        "disk full writing a PNG",
        lambda monkeypatch: monkeypatch.setattr(sinks, "encode_png", _png_disk_full),
        "No space left on device while writing images/",
        "to free space on its disk",
    ),
    (
        "final rename refused",
        _publish_refused,
        "Permission denied while putting the finished run in place",
        "to make it writable",
    ),
    (
        "disk I/O error writing synthgate.db",
        _database_io_error,
        "disk I/O error (a disk quota, a full or failing disk) while writing synthgate.db",
        "to check its disk for room, quota and errors",
    ),
]


@pytest.mark.parametrize(
    ("fail", "failed", "action"),
    [case[1:] for case in WRITE_FAILURES],
    ids=[case[0] for case in WRITE_FAILURES],
)
def test_a_run_folder_that_fails_while_written_is_the_operators_to_fix(
    service, tmp_path, monkeypatch, caplog, fail, failed, action
):
    """An OSError of the run folder once the run started (a full disk, the final rename) failed
    the batch with "OSError: ..." (SQLite's disk I/O error, "OperationalError: ...") and was
    logged as a bug, and left the folder's .partial behind
    (its lock held, so posting again was refused as "another command is writing it"): it is
    the run folder's refusal, the operator's to fix, nothing published."""
    app, client = service
    token = token_for(app, "req", "requester")
    fail(monkeypatch)
    TinyGenerator.gate.set()
    batch = client.post("/api/batches", json=CONFIG, headers=bearer(token)).json()
    refused = wait_until_done(client, f"/api/batches/{batch['id']}", token)
    said = refused["message"]
    assert refused["status"] == "failed", said
    assert said.startswith(f"run folder runs/{batch['id']}: {failed}"), said
    assert "nothing was published" in said, said
    assert said.endswith(
        "; tell the server's operator (who chose its runs folder: serve --runs-dir) "
        f"{action}, then post the config again"
    ), said
    assert "OSError" not in said and str(tmp_path) not in said, said
    assert not [r for r in caplog.records if r.exc_info], "logged as a bug"
    runs = tmp_path / "runs"  # made for the batch, and taken away with what it left
    assert not runs.exists() or not any(runs.iterdir())
