"""A corpus of bad inputs, through the API and the CLI: every one ends in a 4xx (API) or exit 2
(CLI) naming what is wrong, never a traceback or a 5xx, and none takes more than a few seconds.

API: huge and malformed integers in every integer parameter, NUL bytes and over-long strings,
deeply nested JSON, NaN and Infinity, wrong types and shapes, bad decisions and fixes, bad
credentials. Every error body has the shape the OpenAPI schema declares (`{"detail": str}`).
CLI: batch configs (deep YAML, billion laughs, recursive aliases, NaN, NUL, over-long paths, a
copy_paste class the COCO lacks, ...) and COCO files (negative or non-finite areas, wrong image
sizes, broken image files, corrupt RLE, unhashable ids, deep nesting, ...) given to validate,
export, merge and balance, plus users and review import. The counts are printed and asserted.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from api_support import (
    BATCH,
    bearer,
    image_sample,
    make_app,
    seed_batch,
    text_sample,
    token_for,
)
from balance_fixtures import make_tiny_coco
from fastapi.testclient import TestClient
from postgres_support import wipe
from typer.testing import CliRunner

from synthgate.api.app import create_app
from synthgate.api.ids import LIMIT
from synthgate.cli import app as cli_app
from synthgate.runner import run

pytestmark = pytest.mark.timeout(900)
HANG_S = 20.0  # no bad input may take longer than this to be answered
BIG = [2**63, 2**64, 10**30, -(2**63) - 1, -1]
NOT_INTS = ["1e3", "nan", "inf", "-inf", "0x10", "", "１", "1.5", "true", "%00", "9" * 400]
DEEP = 5000


def deep_json(levels: int) -> str:
    return '{"name": "x", "image": ' + "[" * levels + "]" * levels + "}"


# ---- the API -------------------------------------------------------------------------------


def api_cases() -> list[tuple[str, str, str, Any, dict[str, str], str, list[str]]]:
    """(id, method, path, body, extra headers, role, words one of which the detail holds)."""
    cases: list[tuple[str, str, str, Any, dict[str, str], str, list[str]]] = []

    def add(case, method, path, body=None, headers=None, role="admin", words=()):
        cases.append((case, method, path, body, headers or {}, role, list(words)))

    for value in [*BIG, LIMIT, *NOT_INTS]:
        add(f"offset={value}", "GET", f"/api/batches?offset={value}", words=["offset"])
        add(f"limit={value}", "GET", f"/api/batches?limit={value}", words=["limit"])
    item_routes = [
        ("GET", "/api/review/{}/image"),
        ("GET", "/api/review/{}/masks.png"),
        ("GET", "/api/review/{}/decisions"),
        ("POST", "/api/review/{}/decision"),
        ("POST", "/api/review/{}/adjudication"),
    ]
    # in range but no item's: 0, 1, a number, the largest opaque id
    for value in [*BIG, LIMIT, 0, 1, 12345, LIMIT - 1, "1e3", "nan", "", "0x10", "%00", "9" * 400]:
        for method, route in item_routes:
            body = {"verdict": "accept"} if method == "POST" else None
            words = ["item_id"] if value != "" else ["Not Found", "Method Not Allowed"]
            if isinstance(value, int) and 0 <= value < LIMIT:
                words = [f"item {value}"]
            add(f"item {value} {method} {route}", method, route.format(value), body, words=words)
    for value in ["%00", "a" * 300, "..", "%2e%2e", "x%00y", "ü", "-x", ".hidden"]:
        for method, suffix in (("GET", ""), ("GET", "/coco"), ("GET", "/jsonl"), ("DELETE", "")):
            add(f"batch {value!r} {method}{suffix}", method, f"/api/batches/{value}{suffix}",
                words=["batch_id", "Not Found"])  # fmt: skip

    base = {"name": "b", "categories": ["a"], "image": {"count": 1, "size": [64, 64]}}

    def config(**image: Any) -> dict[str, Any]:
        return {**base, "image": {**base["image"], **image}}

    posted = [
        ("nul-name", {**base, "name": "a\x00b"}, ["name"]),
        ("nul-category", {**base, "categories": ["a\x00"]}, ["categories"]),
        ("nul-rubric", config(rubric="x\x00.yaml"), ["image.rubric"]),
        ("nul-templates", {"name": "t", "text": {"count": 1, "templates": "configs/\x00.yaml"}}, ["text.templates"]),
        ("long-path", {"name": "t", "text": {"count": 1, "templates": "a/" * 3000}}, ["text.templates"]),
        ("long-component", {"name": "t", "text": {"count": 1, "templates": "x" * 300 + ".yaml"}}, ["text.templates"]),
        ("long-rubric", config(rubric="r" * 300 + ".yaml"), ["image.rubric"]),
        ("long-name", {**base, "name": "n" * 5000}, ["name"]),
        ("long-category", {**base, "categories": ["c" * 5000]}, ["categories"]),
        ("nan-scale", config(object_scale_range=[0.1, math.nan]), ["object_scale_range"]),
        ("inf-scale", config(object_scale_range=[math.inf, 0.3]), ["object_scale_range"]),
        ("ninf-fraction", config(min_visible_fraction=-math.inf), ["min_visible_fraction"]),
        ("nan-seed", {**base, "seed": math.nan}, ["seed"]),
        ("seed-2^63", {**base, "seed": 2**63}, ["seed"]),
        ("seed-2^100", {**base, "seed": 2**100}, ["seed"]),
        ("seed-negative", {**base, "seed": -1}, ["seed"]),
        ("count-2^63", config(count=2**63), ["image.count"]),
        ("count-huge", config(count=10**40), ["image.count"]),
        ("count-zero", config(count=0), ["image.count"]),
        ("count-float", config(count=1.5), ["image.count"]),
        ("count-string", config(count="many"), ["image.count"]),
        ("size-huge", config(size=[2**40, 2**40]), ["image.size"]),
        ("size-over-limit", config(size=[4096, 4096]), ["image.size", "pixels"]),
        ("size-three", config(size=[64, 64, 64]), ["image.size"]),
        ("size-negative", config(size=[-64, 64]), ["image.size"]),
        ("objects-billion", config(objects_per_image=[10**9, 10**9]), ["image.objects_per_image"]),
        ("objects-over-limit", config(objects_per_image=[1, 200]), ["image.objects_per_image"]),
        ("objects-reversed", config(objects_per_image=[5, 1]), ["image.objects_per_image"]),
        ("unknown-generator", config(generator="nope"), ["generator"]),
        ("unknown-key", {**base, "colour": 1}, ["colour"]),
        ("requester-key", {**base, "requester": "abc"}, ["requester"]),
        ("no-section", {"name": "x"}, ["nothing to make"]),
        ("null-image", {**base, "image": None}, ["nothing to make"]),
        ("image-list", {**base, "image": [1, 2]}, ["image"]),
        ("categories-string", {**base, "categories": "a"}, ["categories"]),
        ("categories-nested", {**base, "categories": [[["a"]]]}, ["categories"]),
        # a copy_paste section of its own keys only: keys and types are checked before paths
        ("absolute-coco", {**base, "image": {"generator": "copy_paste", "count": 1, "coco": "/etc/passwd", "images": "x"}}, ["image.coco"]),
        ("escaping-coco", {**base, "image": {"generator": "copy_paste", "count": 1, "coco": "../../../etc/passwd", "images": "x"}}, ["image.coco"]),
        ("segmenter-function", {**base, "image": {"generator": "diffusion_object_paste", "count": 1, "model": {"path": "m"}, "segmenter": "os:system"}}, ["segmenter", "model.path"]),
        ("nested-500", json.loads(deep_json(500)), ["nested deeper"]),
        ("nested-70-in-category", {**base, "categories": json.loads("[" * 70 + "]" * 70)}, ["nested deeper"]),
        ("total-over-limit", {**config(count=6000), "text": {"count": 6000, "templates": "configs/templates/reviews.yaml"}}, ["samples per batch"]),
    ]  # fmt: skip
    for case, body, words in posted:
        add(f"post {case}", "POST", "/api/batches", body, role="requester", words=words)
    raw = [
        ("deep-json", deep_json(DEEP), ["parsing the body", "nested"]),
        ("deep-json-100k", "[" * 100_000 + "]" * 100_000, ["parsing the body", "body"]),
        ("NaN-token", '{"name": "x", "seed": NaN}', ["seed"]),
        ("Infinity-token", '{"name": "x", "categories": ["a"], "image": {"count": 1, "object_scale_range": [0.1, Infinity]}}', ["object_scale_range"]),
        ("not-json", "name: x", ["body: malformed JSON at character 0"]),  # not "body.0"
        ("truncated", '{"name": "x", "image": {', ["malformed JSON"]),
        ("empty", "", ["body"]),
        ("null", "null", ["body"]),
        ("number", "42", ["body"]),
        ("string", '"config"', ["body"]),
        ("list", "[1, 2]", ["body"]),
        ("bad-utf8", b'{"name": "\xff\xfe"}', ["body", "JSON", "parsing"]),
        ("huge-int-literal", '{"name": "x", "seed": ' + "9" * 4000 + "}", ["seed", "parsing", "JSON"]),
        ("nul-escape", '{"name": "x\\u0000y", "categories": ["a"], "image": {"count": 1}}', ["name"]),
        ("lone-surrogate", '{"name": "x\\ud800", "categories": ["a"], "image": {"count": 1}}', ["name"]),
        ("over-body-limit", '{"name": "' + "x" * (2 << 20) + '"}', ["too large"]),
    ]  # fmt: skip
    for case, body, words in raw:
        add(f"raw {case}", "POST", "/api/batches", ("raw", body), role="requester", words=words)

    decisions = [
        ("bad-verdict", {"verdict": "maybe"}, ["verdict"]),
        ("no-verdict", {}, ["verdict"]),
        ("level-huge", {"verdict": "accept", "levels": {"precision": 2**70}}, ["levels"]),
        ("level-nan", ("raw", '{"verdict": "accept", "levels": {"precision": NaN}}'), ["levels"]),
        ("level-unknown-criterion", {"verdict": "accept", "levels": {"beauty": 5}}, ["beauty"]),
        ("comment-nul", {"verdict": "accept", "comment": "a\x00b"}, ["comment"]),
        ("comment-long", {"verdict": "accept", "comment": "c" * 200_000}, ["comment"]),
        ("fix-no-labels", {"verdict": "fix"}, ["fix"]),
        ("fix-nan-box", ("raw", '{"verdict": "fix", "objects": [{"category": "circle", "bbox": [NaN, 1, 2, 3], "area": 1}]}'), ["bbox"]),
        ("fix-inf-box", ("raw", '{"verdict": "fix", "objects": [{"category": "circle", "bbox": [1, 1, Infinity, 3], "area": 1}]}'), ["bbox"]),
        ("fix-box-outside", {"verdict": "fix", "objects": [{"category": "circle", "bbox": [10, 10, 9000, 9000], "area": 1}]}, ["bbox"]),
        ("fix-box-three", {"verdict": "fix", "objects": [{"category": "circle", "bbox": [1, 2, 3], "area": 1}]}, ["bbox"]),
        ("fix-corrupt-rle", {"verdict": "fix", "objects": [{"category": "circle", "bbox": [1, 1, 5, 5], "area": 25, "mask": {"size": [120, 160], "counts": ")))))))"}}]}, ["mask"]),
        ("fix-rle-overrun", {"verdict": "fix", "objects": [{"category": "circle", "bbox": [1, 1, 5, 5], "area": 25, "mask": {"size": [120, 160], "counts": "0" + "o" * 50}}]}, ["mask"]),
        ("fix-rle-wrong-size", {"verdict": "fix", "objects": [{"category": "circle", "bbox": [1, 1, 5, 5], "area": 25, "mask": {"size": [10, 10], "counts": "0"}}]}, ["mask"]),
        ("fix-rle-size-junk", {"verdict": "fix", "objects": [{"category": "circle", "bbox": [1, 1, 5, 5], "area": 25, "mask": {"size": "big", "counts": "0"}}]}, ["mask"]),
        ("fix-rle-size-huge", {"verdict": "fix", "objects": [{"category": "circle", "bbox": [1, 1, 5, 5], "area": 25, "mask": {"size": [10**400, 1], "counts": "0"}}]}, ["mask"]),
        ("fix-rle-size-fraction", {"verdict": "fix", "objects": [{"category": "circle", "bbox": [1, 1, 5, 5], "area": 25, "mask": {"size": [120.5, 160], "counts": [19200]}}]}, ["mask"]),
        ("fix-category-nul", {"verdict": "fix", "objects": [{"category": "c\x00", "bbox": [1, 1, 5, 5], "area": 25}]}, ["category"]),
        ("fix-area-nan", ("raw", '{"verdict": "fix", "objects": [{"category": "circle", "bbox": [1, 1, 5, 5], "area": NaN}]}'), ["area"]),
        ("fix-spans-on-image", {"verdict": "fix", "spans": [{"start": 0, "end": 2**70, "label": "X"}]}, ["spans", "objects"]),
        ("fix-objects-deep", {"verdict": "fix", "objects": json.loads("[" * 200 + "]" * 200)}, ["objects", "nested"]),
        ("extra-field", {"verdict": "accept", "admin": True}, ["admin"]),
        ("comment-nul", ("raw", '{"verdict": "accept", "comment": "a\\u0000b"}'), ["comment", "NUL"]),
        ("comment-lone-surrogate", ("raw", '{"verdict": "accept", "comment": "a\\ud800b"}'), ["comment"]),
        ("fix-category-lone-surrogate", ("raw", '{"verdict": "fix", "objects": [{"category": "c\\udc00", "bbox": [1, 1, 5, 5], "area": 25}]}'), ["category"]),
    ]  # fmt: skip
    for case, body, words in decisions:
        add(f"decision {case}", "POST", "/api/review/{item}/decision", body, role="annotator",
            words=words)  # fmt: skip

    reopens = [
        *((f"item-{value}", {"items": [value]}, ["items"]) for value in [*BIG, LIMIT, "1", 1.5]),
        ("items-not-a-list", {"items": 1}, ["items"]),
        ("nothing-named", {}, ["name the items to reopen, or annotator=NAME"]),
        ("unknown-item", {"items": [12345]}, ["no review item 12345"]),
        ("annotator-nul", {"annotator": "a\x00"}, ["body.annotator"]),
        ("annotator-long", {"annotator": "a" * 5000}, ["annotator=", "names an annotator, in 1 to 200"]),
        ("annotator-number", {"annotator": 7}, ["annotator"]),
        ("annotator-lone-surrogate", ("raw", '{"annotator": "a\\ud800"}'), ["surrogate"]),
        ("reason-lone-surrogate", ("raw", '{"annotator": "annotator", "reason": "\\udc00"}'), ["reason"]),
        ("reason-long", {"items": [12345], "reason": "r" * 200_000}, ["no review item"]),
        ("extra-field", {"annotator": "annotator", "by": "x"}, ["by"]),
    ]  # fmt: skip
    for case, body, words in reopens:
        add(f"reopen {case}", "POST", "/api/review/reopen", body, words=words)

    for case, headers in [
        ("bearer-garbage", {"Authorization": "Bearer \x01\x02"}),
        ("bearer-long", {"Authorization": "Bearer " + "t" * 10_000}),
        ("basic-auth", {"Authorization": "Basic dXNlcjpwYXNz"}),
        ("cookie-long", {"Cookie": "synthgate_session=" + "s" * 10_000}),
        ("cookie-junk", {"Cookie": "synthgate_session=%00%ff"}),
    ]:
        add(f"auth {case}", "GET", "/api/batches", headers=headers, role="none",
            words=["token", "session", "Not authenticated"])  # fmt: skip
    for name in ("token", "access_token", "session", "api_key"):
        add(f"url {name}", "GET", f"/api/review/next?{name}=x", role="annotator", words=["URL"])
    add("login-long-token", "POST", "/login", ("form", {"token": "t" * 10_000}), role="none",
        words=["token"])  # fmt: skip
    add("login-nul-token", "POST", "/login", ("form", {"token": "a\x00b"}), role="none",
        words=["valid"])  # fmt: skip
    return cases


API_CASES = api_cases()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The service over SQLite and over PostgreSQL (stricter: no NUL in text, no NaN in JSON,
    32-bit integer columns), with a batch of review items."""
    folder = tmp_path_factory.mktemp("corpus")
    if request.param == "sqlite":
        app = make_app(folder, images=3, texts=1, k=3)
    else:
        url = request.getfixturevalue("postgres_cluster").database("corpus")
        wipe(url)
        app = create_app(db_url=url, runs_dir=folder / "runs", annotators_per_item=3)
        made = [image_sample(i, folder / "run") for i in range(3)] + [text_sample(0)]
        seed_batch(app.state.store, folder / "run", made)
        app.state.queue.enqueue_batch(BATCH, image_root=folder / "run")
    tokens = {role: token_for(app, role, role) for role in ("admin", "requester", "annotator")}
    with TestClient(app, raise_server_exceptions=False) as client:
        item = client.get("/api/review/next", headers=bearer(tokens["annotator"])).json()
        yield client, tokens, item["item_id"]


RESULTS: dict[str, list[str]] = {"api": [], "cli": []}


@pytest.mark.parametrize(
    ("case", "method", "path", "body", "headers", "role", "words"),
    API_CASES,
    ids=[c[0] for c in API_CASES],
)
def test_api_bad_input(service, case, method, path, body, headers, role, words):
    client, tokens, item = service
    sent = {**(bearer(tokens[role]) if role in tokens else {}), **headers}
    path = path.replace("{item}", str(item))
    kwargs: dict[str, Any] = {}
    if isinstance(body, tuple) and body[0] == "raw":
        kwargs["content"] = body[1]
        sent["Content-Type"] = "application/json"
    elif isinstance(body, tuple) and body[0] == "form":
        kwargs["data"] = body[1]
    elif body is not None:
        kwargs["content"] = json.dumps(body)
        sent["Content-Type"] = "application/json"
    started = time.monotonic()
    response = client.request(method, path, headers=sent, **kwargs)
    took = time.monotonic() - started
    RESULTS["api"].append(case)
    assert took < HANG_S, f"{case}: {took:.1f}s"
    assert 400 <= response.status_code < 500, (case, response.status_code, response.text[:500])
    if response.headers.get("content-type", "").startswith("application/json"):
        body_out = response.json()
        assert set(body_out) == {"detail"} and isinstance(body_out["detail"], str), body_out
        detail = body_out["detail"]
    else:  # the login page answers with HTML
        detail = response.text
    assert "Traceback" not in detail
    assert any(word in detail for word in words), (case, words, detail[:500])


# ---- the CLI --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small real COCO (images and annotations) and a finished run folder to merge."""
    root = tmp_path_factory.mktemp("cli-corpus")
    coco, images = make_tiny_coco(root / "real")
    run(
        {"name": "synth", "seed": 1, "categories": ["square", "disc"],
         "image": {"count": 3, "size": [64, 64], "objects_per_image": [1, 2]}},
        out=root / "synth",
    )  # fmt: skip
    return {"root": root, "coco": coco, "images": images, "run": root / "synth"}


Mutation = Callable[[dict[str, Any], Path], None]


def _first_annotation(data: dict[str, Any], **fields: Any) -> None:
    data["annotations"][0].update(fields)


def _rle_annotation(data: dict[str, Any]) -> dict[str, Any]:
    return next(a for a in data["annotations"] if isinstance(a.get("segmentation"), dict))


def _break_image(content: bytes) -> Mutation:
    def mutate(data: dict[str, Any], images: Path) -> None:
        (images / data["images"][0]["file_name"]).write_bytes(content)

    return mutate


COCO_MUTATIONS: list[tuple[str, Mutation, list[str]]] = [
    ("negative-area", lambda d, i: _first_annotation(d, area=-5.0), ["area"]),
    ("nan-area", lambda d, i: _first_annotation(d, area=math.nan), ["area"]),
    ("inf-area", lambda d, i: _first_annotation(d, area=math.inf), ["area"]),
    ("string-area", lambda d, i: _first_annotation(d, area="big"), ["area"]),
    ("nan-bbox", lambda d, i: _first_annotation(d, bbox=[math.nan, 1, 2, 3]), ["bbox"]),
    ("negative-bbox", lambda d, i: _first_annotation(d, bbox=[1, 1, -2, 3]), ["bbox"]),
    ("short-bbox", lambda d, i: _first_annotation(d, bbox=[1, 1, 2]), ["bbox"]),
    ("string-bbox", lambda d, i: _first_annotation(d, bbox="1,1,2,2"), ["bbox"]),
    ("wider-entry", lambda d, i: d["images"][0].update(width=999), ["999"]),
    ("taller-entry", lambda d, i: d["images"][0].update(height=7), ["entry says", "RLE size"]),
    ("zero-width", lambda d, i: d["images"][0].update(width=0), ["width"]),
    ("inf-width", lambda d, i: d["images"][0].update(width=math.inf), ["width"]),
    ("garbage-image", _break_image(b"not an image at all"), ["readable"]),
    ("empty-image", _break_image(b""), ["readable"]),
    ("truncated-png", _break_image(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00@"), ["readable"]),
    ("png-bad-crc", lambda d, i: _corrupt_png(i / d["images"][0]["file_name"]), ["readable"]),
    ("missing-image", lambda d, i: (i / d["images"][0]["file_name"]).unlink(), ["missing"]),
    ("nul-file-name", lambda d, i: d["images"][0].update(file_name="a\x00b.png"), ["missing", "file_name"]),
    ("long-file-name", lambda d, i: d["images"][0].update(file_name="f" * 300 + ".png"), ["unusable", "missing"]),
    ("rle-junk-counts", lambda d, i: _rle_annotation(d)["segmentation"].update(counts=")))))"), ["RLE"]),
    ("rle-overrun", lambda d, i: _rle_annotation(d)["segmentation"].update(counts="0" + "o" * 40), ["RLE"]),
    ("rle-wrong-size", lambda d, i: _rle_annotation(d)["segmentation"].update(size=[10, 10]), ["RLE size"]),
    ("rle-size-junk", lambda d, i: _rle_annotation(d)["segmentation"].update(size="big"), ["RLE size"]),
    ("rle-list-short", lambda d, i: _rle_annotation(d)["segmentation"].update(counts=[1, 2, 3]), ["RLE"]),
    ("rle-list-negative", lambda d, i: _rle_annotation(d)["segmentation"].update(counts=[-1, 4097]), ["RLE"]),
    ("rle-no-counts", lambda d, i: _rle_annotation(d)["segmentation"].pop("counts"), ["RLE"]),
    ("polygon-two-points", lambda d, i: _first_annotation(d, segmentation=[[1, 1, 2, 2]]), ["polygon"]),
    ("segmentation-string", lambda d, i: _first_annotation(d, segmentation="mask"), ["segmentation"]),
    ("image-id-list", lambda d, i: d["images"][0].update(id=[1]), ["id"]),
    ("annotation-image-id-dict", lambda d, i: _first_annotation(d, image_id={"a": 1}), ["image_id"]),
    ("category-id-list", lambda d, i: d["categories"][0].update(id=[3]), ["category"]),
    ("category-name-list", lambda d, i: d["categories"][0].update(name=["x"]), ["name"]),
    ("duplicate-image-id", lambda d, i: d["images"][1].update(id=d["images"][0]["id"]), ["duplicate"]),
    ("huge-ids", lambda d, i: _first_annotation(d, id=2**70, image_id=2**70), ["image_id"]),
    ("annotation-not-object", lambda d, i: d["annotations"].append("x"), ["not an object"]),
    # pycocotools would overflow (a crash) or ask for ~24 GB rasterising these
    ("polygon-far-vertex", lambda d, i: _first_annotation(d, segmentation=[[1, 1, 1e9, 1, 1, 1e9]]), ["polygon coordinate"]),
    ("polygon-long-outline", lambda d, i: _first_annotation(d, segmentation=[[0, 0, 3e6, 0, 0, 3e6]]), ["polygon outline"]),
    ("polygon-nan-point", lambda d, i: _first_annotation(d, segmentation=[[1, 1, math.nan, 1, 1, 5]]), ["polygon"]),
    ("image-id-lone-surrogate", lambda d, i: _rename_image(d, "\ud800x"), ["id"]),
]  # fmt: skip


def _rename_image(data: dict[str, Any], new_id: Any) -> None:
    old = data["images"][0]["id"]
    data["images"][0]["id"] = new_id
    for annotation in data["annotations"]:
        if annotation["image_id"] == old:
            annotation["image_id"] = new_id


def _corrupt_png(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[40] ^= 0xFF  # inside the first data chunk: its CRC no longer matches
    path.write_bytes(bytes(data))


RAW_COCO: list[tuple[str, bytes, list[str]]] = [
    ("deep-json", ("[" * 100_000 + "]" * 100_000).encode(), ["nested", "JSON"]),
    ("not-json", b"images: []", ["JSON"]),
    ("empty-file", b"", ["JSON"]),
    ("bad-utf8", b'{"images": [\xff]}', ["UTF-8", "JSON"]),
    ("top-level-list", b"[1, 2, 3]", ["object"]),
    ("images-not-list", b'{"images": 5}', ["images"]),
    ("int-of-5000-digits", b'{"images": [{"id": ' + b"9" * 5000 + b"}]}", ["JSON"]),
]

# export writes boxes only: it leaves polygons out (an unusable one does not stop it)
EXPORT_LEAVES_OUT = {
    "polygon-two-points",
    "segmentation-string",
    "polygon-far-vertex",
    "polygon-long-outline",
    "polygon-nan-point",
}
COCO_COMMANDS = {
    "export": lambda f, i, w, o: ["export", str(f), "--format", "yolo", "--out", str(o), "--images", str(i)],
    "merge": lambda f, i, w, o: ["merge", "--real", str(f), "--synthetic", str(w["run"]), "--out", str(o), "--images", str(i)],
    "balance": lambda f, i, w, o: ["balance", "--coco", str(f), "--images", str(i), "--out", str(o)],
    "validate": lambda f, i, w, o: ["validate", str(f), "--images", str(i)],
}  # fmt: skip

CLI_CASES: list[tuple[str, str, Any, list[str]]] = [
    (f"{command} {name}", command, mutation, words)
    for name, mutation, words in COCO_MUTATIONS + RAW_COCO
    for command in COCO_COMMANDS
]

CONFIG_ROOT = "name: x\ncategories: [circle]\n"
CONFIGS: list[tuple[str, str | bytes, list[str]]] = [
    ("deep-yaml", "a: " + "[" * 5000 + "]" * 5000, ["nested deeper"]),
    ("deep-block-yaml", "".join(f"{' ' * n}k{n}:\n" for n in range(300)) + " " * 300 + "v: 1\n", ["nested deeper"]),
    ("billion-laughs", "l0: &l0 [" + ",".join(['"lol"'] * 9) + "]\n" + "".join(f"l{n}: &l{n} [" + ",".join([f"*l{n - 1}"] * 9) + "]\n" for n in range(1, 10)), ["aliases"]),
    ("laughs-in-a-field", CONFIG_ROOT + "x0: &x0 [1,1,1,1,1,1,1,1,1,1]\n" + "".join(f"x{n}: &x{n} [" + ",".join([f"*x{n - 1}"] * 10) + "]\n" for n in range(1, 6)) + "image: {count: 1, size: *x5}\n", ["aliases"]),
    ("recursive-alias", "a: &a [1, *a]\n", ["refers to itself"]),
    ("nan-scale", CONFIG_ROOT + "image: {count: 1, object_scale_range: [.nan, 0.3]}\n", ["object_scale_range"]),
    ("inf-scale", CONFIG_ROOT + "image: {count: 1, object_scale_range: [0.1, .inf]}\n", ["object_scale_range"]),
    ("nan-fraction", CONFIG_ROOT + "image: {count: 1, min_visible_fraction: .NaN}\n", ["min_visible_fraction"]),
    ("nul-name", 'name: "a\\0b"\ncategories: [c]\nimage: {count: 1}\n', ["name"]),
    ("nul-category", 'name: x\ncategories: ["c\\0"]\nimage: {count: 1}\n', ["categories"]),
    ("nul-rubric", CONFIG_ROOT + 'image: {count: 1, rubric: "r\\0.yaml"}\n', ["image.rubric"]),
    ("long-rubric", CONFIG_ROOT + f"image: {{count: 1, rubric: {'r' * 300}.yaml}}\n", ["image.rubric"]),
    ("long-templates", f"name: t\ntext: {{count: 1, templates: {'t/' * 2500}x.yaml}}\n", ["text.templates"]),
    ("long-component-templates", f"name: t\ntext: {{count: 1, templates: {'t' * 300}.yaml}}\n", ["text.templates"]),
    ("billion-objects", CONFIG_ROOT + "image: {count: 1, objects_per_image: [1000000000, 1000000000]}\n", ["objects_per_image"]),
    ("sexagesimal-count", CONFIG_ROOT + "image: {count: 190:20:30}\n", ["190:20:30 reads as the number 685230"]),
    ("sexagesimal-float", CONFIG_ROOT + "image: {count: 1, object_scale_range: [0.1, 1:30.5]}\n", ["1:30.5 reads as the number 90.5"]),
    ("duplicate-key", CONFIG_ROOT + "seed: 1\nseed: 999\nimage: {count: 1}\n", ["line 4", "'seed' is given twice"]),
    ("impossible-date", CONFIG_ROOT + "text: {count: 1, reference_date: 2026-13-01}\n", ["2026-13-01 reads as a date, which does not exist", "month must be in 1..12", "YYYY-MM-DD"]),
    ("day-31-of-february", CONFIG_ROOT + "text: {count: 1, reference_date: 2026-02-31}\n", ["2026-02-31 reads as a date", "YYYY-MM-DD"]),
    ("masks-beyond-memory", CONFIG_ROOT + "image: {count: 1, size: [8192, 8192], objects_per_image: [1000, 1000]}\n", ["objects_per_image", "GiB of masks", "at most 32"]),
    ("count-2^63", CONFIG_ROOT + f"image: {{count: {2**63}}}\n", ["image.count"]),
    ("seed-2^64", CONFIG_ROOT + f"seed: {2**64}\nimage: {{count: 1}}\n", ["seed"]),
    ("size-huge", CONFIG_ROOT + "image: {count: 1, size: [100000, 100000]}\n", ["image.size"]),
    ("seed-5000-digits", CONFIG_ROOT + "seed: " + "9" * 5000 + "\nimage: {count: 1}\n", ["integer"]),
    ("float-overflow", CONFIG_ROOT + "image: {count: 1, object_scale_range: [1e999, 2]}\n", ["finite"]),
    ("binary-file", b"\x00\x01\x02\xff\xfe", ["UTF-8", "YAML"]),
    ("empty-file", "", ["mapping"]),
    ("top-level-list", "- 1\n- 2\n", ["mapping"]),
    ("yaml-syntax", "name: [unclosed\n", ["YAML"]),
    ("python-tag", "name: !!python/object/apply:os.system ['true']\n", ["YAML"]),
    ("unknown-generator", CONFIG_ROOT + "image: {generator: nope, count: 1}\n", ["generator"]),
    ("copy-paste-missing-class", "name: cp\ncategories: [unicorn]\nimage: {generator: copy_paste, count: 2, coco: {coco}, images: {images}}\n", ["unicorn"]),
    ("copy-paste-negative-area", "name: cp\ncategories: [square]\nimage: {generator: copy_paste, count: 2, coco: {bad_coco}, images: {images}}\n", ["area"]),
    ("templates-deep", "name: t\ntext: {count: 1, templates: {deep_templates}}\n", ["nested deeper"]),
    ("templates-laughs", "name: t\ntext: {count: 1, templates: {laughs_templates}}\n", ["aliases"]),
]  # fmt: skip


def invoke(args: list[str]) -> tuple[Any, float]:
    started = time.monotonic()
    result = CliRunner().invoke(cli_app, args, catch_exceptions=True)
    return result, time.monotonic() - started


def check_cli(case: str, result: Any, took: float, words: list[str], codes: set[int]) -> None:
    RESULTS["cli"].append(case)
    output = result.output
    assert took < HANG_S, f"{case}: {took:.1f}s"
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not crashed, f"{case}: traceback: {result.exception!r}\n{output[-2000:]}"
    assert "Traceback" not in output, output[-2000:]
    assert result.exit_code in codes, (case, result.exit_code, output[-2000:])
    if result.exit_code == 2:
        assert any(word in output for word in words), (case, words, output[-2000:])


@pytest.mark.parametrize(
    ("case", "command", "mutation", "words"), CLI_CASES, ids=[c[0] for c in CLI_CASES]
)
def test_cli_bad_coco(workspace, tmp_path, case, command, mutation, words):
    images = tmp_path / "images"
    shutil.copytree(workspace["images"], images)
    coco = tmp_path / "annotations.json"
    if isinstance(mutation, bytes):
        coco.write_bytes(mutation)
    else:
        data = json.loads(workspace["coco"].read_text())
        mutation(data, images)
        coco.write_text(json.dumps(data))
    result, took = invoke(COCO_COMMANDS[command](coco, images, workspace, tmp_path / "out"))
    # validate judges a file's entries (findings, exit 0/1) and refuses only what it cannot read;
    # export writes boxes only and leaves polygons out (an unusable one does not stop it)
    codes = {0, 1, 2} if command == "validate" else {2}
    if command == "export" and case.split(" ", 1)[1] in EXPORT_LEAVES_OUT:
        codes = {0, 2}
    check_cli(case, result, took, words, codes)
    if result.exit_code == 2:  # refused: nothing was written
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(("case", "text", "words"), CONFIGS, ids=[c[0] for c in CONFIGS])
def test_cli_bad_config(workspace, tmp_path, case, text, words):
    bad = json.loads(workspace["coco"].read_text())
    bad["annotations"][0]["area"] = -1.0
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    (tmp_path / "deep.yaml").write_text("task: ner\nlabels: " + "[" * 3000 + "]" * 3000)
    (tmp_path / "laughs.yaml").write_text(CONFIGS[2][1])  # the billion laughs above
    fields = {
        "coco": str(workspace["coco"]),
        "images": str(workspace["images"]),
        "bad_coco": str(tmp_path / "bad.json"),
        "deep_templates": str(tmp_path / "deep.yaml"),
        "laughs_templates": str(tmp_path / "laughs.yaml"),
    }
    path = tmp_path / "config.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        for key, value in fields.items():
            text = text.replace("{" + key + "}", value)
        path.write_text(text)
    result, took = invoke(["run", str(path), "--out", str(tmp_path / "out")])
    check_cli(f"run {case}", result, took, words, {2})
    assert not (tmp_path / "out").exists()


OTHER_CLI: list[tuple[str, Callable[[Path, dict[str, Path]], list[str]], list[str]]] = [
    ("users add nul name", lambda t, w: ["users", "add", "a\x00b", "--role", "admin", "--db", f"sqlite:///{t / 'u.db'}"], ["user name"]),
    ("users add long name", lambda t, w: ["users", "add", "n" * 500, "--role", "admin", "--db", f"sqlite:///{t / 'u.db'}"], ["user name"]),
    ("users add bad role", lambda t, w: ["users", "add", "x", "--role", "root", "--db", f"sqlite:///{t / 'u.db'}"], ["role"]),
    ("users bad db url", lambda t, w: ["users", "list", "--db", "nosuch://x"], ["--db"]),
    ("users db nul", lambda t, w: ["users", "list", "--db", "sqlite:///a\x00b.db"], ["--db", "database"]),
    ("review import deep json", lambda t, w: ["review", "import", _write(t / "ls.json", "[" * 100_000 + "]" * 100_000), "--run", str(w["run"])], ["JSON", "nested"]),
    ("review import not a list", lambda t, w: ["review", "import", _write(t / "ls.json", '{"a": 1}'), "--run", str(w["run"])], ["list of tasks"]),
    ("review import nan", lambda t, w: ["review", "import", _write(t / "ls.json", '[{"id": NaN}]'), "--run", str(w["run"])], ["task", "id", "NaN"]),
    ("validate deep jsonl", lambda t, w: ["validate", _write(t / "x.jsonl", "[" * 100_000 + "]" * 100_000 + "\n")], ["nested", "JSON"]),
    ("validate jsonl nan", lambda t, w: ["validate", _write(t / "x.jsonl", '{"text": NaN}\n')], ["text"]),
    ("validate jsonl long int", lambda t, w: ["validate", _write(t / "x.jsonl", '{"text": "a", "n": ' + "9" * 5000 + "}\n")], ["JSON"]),
    ("review import long int", lambda t, w: ["review", "import", _write(t / "ls.json", "[" + "9" * 5000 + "]"), "--run", str(w["run"])], ["JSON"]),
    ("review import task item 2^64", lambda t, w: ["review", "import", _write(t / "ls.json", f'[{{"data": {{"item_id": {2**64}}}}}]'), "--run", str(w["run"])], ["no review item"]),
    ("validate long path", lambda t, w: ["validate", "p" * 300 + ".json"], ["not found", "usable", "PATH"]),
    ("balance deep jsonl", lambda t, w: ["balance", "--jsonl", _write(t / "x.jsonl", "[" * 100_000 + "]" * 100_000 + "\n"), "--out", str(t / "out")], ["nested", "JSON"]),
    ("validate jsonl lone surrogate", lambda t, w: ["validate", _write(t / "x.jsonl", '{"text": "a\\ud800 b"}\n')], ["line 1", "surrogate"]),
    ("balance jsonl lone surrogate", lambda t, w: ["balance", "--jsonl", _write(t / "x.jsonl", '{"text": "a b", "label": "x\\udc00"}\n'), "--out", str(t / "out")], ["line 1", "surrogate"]),
    ("export --skip-invalid category id a dict", lambda t, w: ["export", _coco_with(t, w, lambda d: d["categories"][0].update(id={"size": [1]})), "--format", "yolo", "--out", str(t / "out"), "--images", str(w["images"]), "--skip-invalid"], ["id must be an integer"]),
    ("balance --skip-invalid category id a list", lambda t, w: ["balance", "--coco", _coco_with(t, w, lambda d: d["categories"][0].update(id=[0, 0])), "--images", str(w["images"]), "--out", str(t / "out"), "--skip-invalid"], ["id must be an integer"]),
    ("users db mysql without its driver", lambda t, w: ["users", "list", "--db", "mysql://u@localhost/db"], ["--db", "driver is not installed"]),
    ("review stats db name too long", lambda t, w: ["review", "stats", "--db", f"sqlite:///{t}/{'x' * 300}.db"], ["no database at"]),
    ("rubric calibrate negative seed", lambda t, w: ["rubric", "calibrate", "--run", str(w["run"]), "--seed", "-1", "--out", str(t / "c.yaml")], ["--seed"]),
    ("validate --json name too long", lambda t, w: ["validate", str(w["coco"]), "--json", str(t / ("o" * 300 + ".json"))], ["--json", "bytes", "shorter name"]),
    ("export --out name too long", lambda t, w: ["export", str(w["coco"]), "--format", "yolo", "--images", str(w["images"]), "--out", str(t / ("o" * 240))], ["--out", "bytes", "shorter name"]),
    ("run --out name too long", lambda t, w: ["run", _write(t / "c.yaml", CONFIG_ROOT + "image: {count: 1}\n"), "--out", str(t / ("o" * 300))], ["--out", "bytes", "shorter name"]),
    ("run --out .", lambda t, w: ["run", _write(t / "c.yaml", CONFIG_ROOT + "image: {count: 1}\n"), "--out", "."], ["--out", "names no file or folder"]),
    ("run --out x/..", lambda t, w: ["run", _write(t / "c.yaml", CONFIG_ROOT + "image: {count: 1}\n"), "--out", str(t / "x" / "..")], ["--out", "names no file or folder"]),
    ("export --out /", lambda t, w: ["export", str(w["coco"]), "--format", "yolo", "--images", str(w["images"]), "--out", "/"], ["--out", "names no file or folder"]),
    ("review export --image-url unknown field", lambda t, w: ["review", "export", "--run", str(w["run"]), "--out", str(t / "e.json"), "--image-url", "{bogus}"], ["--image-url", "{bogus} is not a field"]),
    ("review export --image-url huge width", lambda t, w: ["review", "export", "--run", str(w["run"]), "--out", str(t / "e.json"), "--image-url", "{uri:>99999999999}"], ["--image-url", "format spec"]),
    ("review export --image-url unclosed", lambda t, w: ["review", "export", "--run", str(w["run"]), "--out", str(t / "e.json"), "--image-url", "{uri"], ["--image-url", "expected '}'"]),
    ("review gold unknown criterion", lambda t, w: ["review", "gold", "x", "--expect", "reject", "--criterion", "fluency", "--run", str(w["run"])], ["--criterion", "fluency"]),
    ("review agreement --accept-at nan", lambda t, w: ["review", "agreement", "--run", str(w["run"]), "--accept-at", "nan"], ["--accept-at", "between 1 and 5"]),
    ("validate --json a fifo", lambda t, w: ["validate", str(w["coco"]), "--json", _fifo(t / "pipe")], ["--json", "is a FIFO"]),
    ("merge deep jsonl", lambda t, w: ["merge", "--real", _write(t / "x.jsonl", "[" * 100_000 + "]" * 100_000 + "\n"), "--synthetic", str(w["run"]), "--out", str(t / "out.jsonl")], ["nested", "JSON", "line"]),
]  # fmt: skip


def _coco_with(folder: Path, workspace: dict[str, Path], change: Callable[[Any], Any]) -> str:
    data = json.loads(workspace["coco"].read_text())
    change(data)
    return _write(folder / "changed.json", json.dumps(data))


def _fifo(path: Path) -> str:
    os.mkfifo(path)  # stands in for /dev/null: an output must never be renamed onto either
    return str(path)


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(("case", "build", "words"), OTHER_CLI, ids=[c[0] for c in OTHER_CLI])
def test_cli_other_bad_input(workspace, tmp_path, case, build, words):
    result, took = invoke(build(tmp_path, workspace))
    # a Label Studio task it cannot use is skipped and counted, not an error
    skipped_task = "import nan" in case or "import task" in case
    check_cli(case, result, took, words, {0, 1, 2} if skipped_task else {2})


def test_the_corpus_is_large(request):
    """At least 200 cases (the counts are printed)."""
    print(
        f"bad-input corpus: {len(API_CASES)} API cases, "
        f"{len(CLI_CASES) + len(CONFIGS) + len(OTHER_CLI)} CLI cases"
    )
    assert len(API_CASES) >= 100
    assert len(CLI_CASES) + len(CONFIGS) + len(OTHER_CLI) >= 100


def test_a_config_from_the_corpus_fixtures_is_otherwise_valid(workspace, tmp_path):
    """The CLI corpus's fixtures are good input apart from the one thing each case breaks."""
    out = tmp_path / "out"
    result, _ = invoke(["validate", str(workspace["coco"]), "--images", str(workspace["images"])])
    assert result.exit_code in (0, 1), result.output
    result, _ = invoke(
        ["export", str(workspace["coco"]), "--format", "yolo", "--out", str(out), "--images",
         str(workspace["images"])]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    path = tmp_path / "ok.yaml"
    path.write_text(
        yaml.safe_dump(
            {"name": "x", "categories": ["circle"], "image": {"count": 1, "size": [32, 32]}}
        )
    )
    result, _ = invoke(["run", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
