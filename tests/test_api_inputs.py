"""What a posted batch config may name: every path field is confined to the shipped configs or the
server's data root, `count` is bounded by the server, segmenters are registered names only."""

from __future__ import annotations

import ast
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from api_support import bearer, make_app, token_for
from fastapi.testclient import TestClient
from pydantic import BaseModel

from synthgate.api.inputs import PATH_FIELDS, confine_paths
from synthgate.config import IMAGE_CONFIGS, PACKAGE_ROOT, TEXT_CONFIGS, RequesterLimits
from synthgate.errors import InputError

MODEL = {"path": "models/sd"}
DIFFUSION = {"generator": "diffusion_object_paste", "count": 1, "model": MODEL}


def post(client: TestClient, token: str, body: dict) -> tuple[int, str]:
    response = client.post("/api/batches", json=body, headers=bearer(token))
    return response.status_code, response.json().get("detail", "")


@pytest.fixture
def service(tmp_path: Path):
    root = tmp_path / "data"
    (root / "coco" / "images").mkdir(parents=True)
    (root / "coco" / "annotations.json").write_text("{}")
    app = make_app(
        tmp_path,
        images=0,
        data_root=root,
        limits=RequesterLimits(samples_per_batch=50, pixels_per_image=2048 * 2048),
    )
    with TestClient(app) as client:
        yield app, client, token_for(app, "req", "requester")


def image(**section) -> dict:
    return {"name": "b", "categories": ["a"], "image": section}


def text(**section) -> dict:
    return {"name": "b", "text": section}


OUTSIDE = "/etc"
REFUSED = [
    # (id, body, the field the message must name)
    ("copy-paste-coco", image(generator="copy_paste", count=1, coco="/etc/passwd", images="coco/images"), "image.coco"),
    ("copy-paste-images", image(generator="copy_paste", count=1, coco="coco/annotations.json", images=OUTSIDE), "image.images"),
    ("copy-paste-escape", image(generator="copy_paste", count=1, coco="coco/../../../etc/passwd", images="coco/images"), "image.coco"),
    ("counterfactual-source", text(generator="counterfactual", count=1, source="/etc/passwd"), "text.source"),
    ("templates-absolute", text(templates="/etc/passwd", count=1), "text.templates"),
    ("background-folder", image(**DIFFUSION, background={"source": "folder", "folder": OUTSIDE}), "image.background.folder"),
    ("model-path", image(**{**DIFFUSION, "model": {"path": "/root/.cache/x"}}), "image.model.path"),
    ("model-path-home", image(**{**DIFFUSION, "model": {"path": "~/models/sd"}}), "image.model.path"),
    ("clip-path", image(**DIFFUSION, clip={"path": "../clip"}), "image.clip.path"),
    ("pool-dir", image(**DIFFUSION, pool_dir="/tmp/pool"), "image.pool_dir"),
    ("rubric-absolute", image(generator="procedural", count=1, rubric="/etc/x.yaml"), "image.rubric"),
    ("rubric-name-path", image(generator="procedural", count=1, rubric="/etc/passwd"), "image.rubric"),
    ("rubric-missing", text(templates="configs/templates/reviews.yaml", count=1, rubric="nothere.yaml"), "text.rubric"),
    ("segmenter-function", image(**DIFFUSION, segmenter="os:system"), "image.segmenter"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "field"), REFUSED, ids=[c[0] for c in REFUSED])
def test_paths_outside_the_allowed_roots_are_refused(service, case, body, field):
    _app, client, token = service
    code, detail = post(client, token, body)
    assert code == 400, detail
    assert field in detail
    assert "No such file" not in detail and "Traceback" not in detail


SCHEMA_FIRST = [
    # (id, body, words of the message): keys and types are checked before paths
    ("path-key-of-another-generator", image(generator="procedural", count=1, coco="x.json"), ["unknown key 'image.coco'"]),
    ("path-that-is-a-list", text(templates=["a"], count=1), ["text.templates", "not a valid path", "['a']"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "words"), SCHEMA_FIRST, ids=[c[0] for c in SCHEMA_FIRST])
def test_a_path_field_that_does_not_belong_is_named_for_what_is_wrong(service, case, body, words):
    """A `coco:` in a procedural section was refused as "'x.json' is not a relative path to
    anything inside the server's configs folder", and `templates: [a]` as "'['a']' is not a
    relative path ...": the paths were looked at before the keys and types."""
    _app, client, token = service
    code, detail = post(client, token, body)
    assert code in (400, 422), detail
    assert all(word in detail for word in words), detail
    assert "relative path" not in detail


REFUSED_AT_POST = [
    # (id, body, the message): a quoted count was read as the number; the rubric and locale
    # failed the batch once it ran, a locale listed twice weighted the plan
    ("count-in-quotes", image(generator="procedural", count="1"), "POST /api/batches: image.count: is text where a number goes; write the number without quotes (got '1')"),
    ("rubric-of-the-other-modality", image(generator="procedural", count=1, rubric="ner"), "POST /api/batches: image.rubric: ner judges text samples, not image; pick a rubric of this modality"),
    ("unknown-locale", text(templates="configs/templates/reviews.yaml", count=1, locales=["xx_YY"]), "POST /api/batches: text.locales: 'xx_YY' is not a Faker locale"),
    ("locale-twice", text(templates="configs/templates/reviews.yaml", count=1, locales=["en_US", "en_US"]), "POST /api/batches: text.locales: locale 'en_US' is listed twice"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "body", "message"), REFUSED_AT_POST, ids=[c[0] for c in REFUSED_AT_POST]
)
def test_a_config_no_run_could_honour_is_refused_when_posted(service, case, body, message):
    _app, client, token = service
    code, detail = post(client, token, body)
    assert code == 400, detail
    assert detail.startswith(message), detail


def test_paths_inside_the_roots_become_absolute(tmp_path: Path):
    root = tmp_path / "data"
    (root / "coco" / "images").mkdir(parents=True)
    (root / "coco" / "annotations.json").write_text("{}")
    (root / "models" / "sd").mkdir(parents=True)
    body = image(
        **DIFFUSION,
        pool_dir="pools/x",
        background={"source": "folder", "folder": "coco/images"},
        rubric="configs/rubrics/detection.yaml",
        clip={"path": "openai/clip-vit-base-patch32"},  # a Hugging Face id stays an id
    )
    got = confine_paths(body, data_root=root)["image"]
    assert got["model"]["path"] == str((root / "models" / "sd").resolve())
    assert got["pool_dir"] == str((root / "pools" / "x").resolve())
    assert got["background"]["folder"] == str((root / "coco" / "images").resolve())
    assert got["rubric"] == str(PACKAGE_ROOT / "configs" / "rubrics" / "detection.yaml")
    assert got["clip"]["path"] == "openai/clip-vit-base-patch32"
    assert body["image"]["pool_dir"] == "pools/x"  # the posted dict is left alone
    copy = confine_paths(
        image(generator="copy_paste", count=1, coco="coco/annotations.json", images="coco/images"),
        data_root=root,
    )["image"]
    assert copy["coco"] == str((root / "coco" / "annotations.json").resolve())
    # without a data root only the shipped configs are reachable
    with pytest.raises(InputError, match=r"image\.coco"):
        confine_paths(
            image(generator="copy_paste", count=1, coco="coco/annotations.json", images="x"),
            data_root=None,
        )
    # a symlink inside the data root that points out of it is refused
    (root / "escape").symlink_to("/etc")
    with pytest.raises(InputError, match=r"image\.images"):
        confine_paths(
            image(generator="copy_paste", count=1, coco="coco/annotations.json", images="escape"),
            data_root=root,
        )


def _path_fields(model: type[BaseModel], prefix: str = "") -> set[str]:
    found = set()
    for name, info in model.model_fields.items():
        kinds = [info.annotation, *typing.get_args(info.annotation)]
        if Path in kinds:
            found.add(prefix + name)
        for kind in kinds:
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                found |= _path_fields(kind, f"{prefix}{name}.")
    return found


def test_every_path_field_of_the_config_models_is_checked():
    fields = set().union(*(_path_fields(m) for m in IMAGE_CONFIGS + TEXT_CONFIGS))
    assert fields, "the walk found no Path fields at all"
    assert fields <= set(PATH_FIELDS), f"unchecked path fields: {fields - set(PATH_FIELDS)}"
    # string fields that name files or models
    assert {"rubric", "model.path", "clip.path"} <= set(PATH_FIELDS)


OVER_LIMITS = [
    # (id, body, words the 422 must hold: the field and the limit)
    ("image-count", image(generator="procedural", count=51), ["image.count 51", "50 samples per batch"]),
    ("text-count", text(templates="configs/templates/reviews.yaml", count=51), ["text.count 51", "samples_per_batch"]),
    ("both-counts", {**image(generator="procedural", count=30), **text(templates="configs/templates/reviews.yaml", count=30)}, ["image.count 30 + text.count 30", "60 samples"]),
    ("pixels", image(generator="procedural", count=1, size=[4096, 2048]), ["image.size", "4096x2048", "pixels_per_image"]),
    ("instance-pixels", image(**DIFFUSION, instance_size=[8192, 8192]), ["image.instance_size", "SYNTHGATE_MAX_PIXELS"]),
    ("objects", image(generator="procedural", count=1, objects_per_image=[1, 51]), ["image.objects_per_image", "up to 51", "objects_per_image"]),
    ("instances", image(generator="copy_paste", count=1, coco="coco/annotations.json", images="coco/images", instances_per_image=[2, 60]), ["image.instances_per_image", "SYNTHGATE_MAX_OBJECTS"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "words"), OVER_LIMITS, ids=[c[0] for c in OVER_LIMITS])
def test_a_config_over_the_servers_limits_is_422_naming_the_limit(service, case, body, words):
    _app, client, token = service
    code, detail = post(client, token, body)
    assert code == 422, detail
    for word in words:
        assert word in detail, (word, detail)
    assert client.get("/api/batches", headers=bearer(token)).json() == []  # nothing was queued


def test_default_limits(tmp_path: Path):
    app = make_app(tmp_path, images=0)
    with TestClient(app) as client:
        token = token_for(app, "r", "requester")
        code, detail = post(client, token, image(generator="procedural", count=10_001))
        assert code == 422 and "10000 samples per batch" in detail
        code, detail = post(
            client, token, image(generator="procedural", count=1, size=[2049, 2048])
        )
        assert code == 422 and "4194304 pixels" in detail
        code, detail = post(
            client, token, image(generator="procedural", count=1, objects_per_image=[1, 51])
        )
        assert code == 422 and "limit of 50 objects" in detail


def _api_imports() -> dict[str, set[str]]:
    """Which api modules each api module imports, at any depth in its code."""
    graph: dict[str, set[str]] = {}
    for path in (PACKAGE_ROOT / "api").glob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "synthgate.api":
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "synthgate.api."
            ):
                names.add(node.module.rsplit(".", 1)[1])
        graph[path.stem] = names & {p.stem for p in (PACKAGE_ROOT / "api").glob("*.py")}
    return graph


def test_api_modules_import_each_other_without_cycles():
    # api.pages once took API_DIR from api.app, which imports api.pages
    graph = _api_imports()
    assert "pages" in graph["app"]

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            name == goal or (name not in seen and reaches(name, goal, seen | {name}))
            for name in graph.get(start, ())
        )

    cycles = [name for name in graph if reaches(name, name, {name})]
    assert not cycles, f"import cycles through {cycles}"
    result = subprocess.run(
        [sys.executable, "-c", "import synthgate.api.pages as p; print(p.API_DIR)"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == PACKAGE_ROOT / "api"


def test_a_rubric_name_is_a_shipped_rubric_never_a_file_of_the_server(
    service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bare rubric name was looked up in the server's working directory first: a requester
    could have any file there read as a rubric and its contents quoted back in the batch's
    failure message (and a file named like a shipped rubric replaced it for every batch)."""
    from synthgate.validators.rubric import RUBRICS_DIR, rubric_path

    _app, client, token = service
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dbconf").write_text("modality: hunter2-password\n")
    (tmp_path / "detection").write_text("modality: not-the-shipped-one\n")
    code, detail = post(client, token, image(generator="procedural", count=1, rubric="dbconf"))
    assert code == 400 and "image.rubric" in detail and "hunter2" not in detail
    assert "must be a shipped rubric's name (one of classification, detection, ner)" in detail
    assert rubric_path("detection") == RUBRICS_DIR / "detection.yaml"


def test_a_rubric_file_that_is_no_rubric_is_named_by_its_field(service, tmp_path: Path) -> None:
    """A rubric file of the data root that does not load was refused naming the file alone,
    not the field of the request that named it."""
    _app, client, token = service
    (tmp_path / "data" / "rubrics").mkdir()
    (tmp_path / "data" / "rubrics" / "bad.yaml").write_text("modality: sound\n")
    body = text(templates="configs/templates/reviews.yaml", count=1, rubric="rubrics/bad.yaml")
    code, detail = post(client, token, body)
    assert code == 400, detail
    assert detail.startswith("POST /api/batches: text.rubric: rubrics/bad.yaml: "), detail
    assert str(tmp_path) not in detail


def test_a_name_whose_batch_id_would_not_fit_is_refused(service) -> None:
    """A batch id is the name, "-" and 10 hex digits, kept in 64-character columns: a longer
    name was accepted (202) and its batch then failed on PostgreSQL ("value too long") or,
    past 189 characters, could not be named by the API's paths at all."""
    _app, client, token = service
    code, detail = post(client, token, {**image(generator="procedural", count=1), "name": "n" * 54})
    assert code in (400, 422) and "name" in str(detail) and "53" in str(detail), detail
    code, _ = post(client, token, {**image(generator="procedural", count=1), "name": "n" * 53})
    assert code == 202


def test_messages_do_not_show_where_the_server_keeps_its_files(service) -> None:
    """A refused or failed batch quoted the server's absolute paths (its package and data
    root folders); they read as the requester named them now."""
    import time

    from synthgate.config import PACKAGE_ROOT

    app, client, token = service
    refused = client.post(
        "/api/batches",
        json={"name": "t", "text": {"templates": "configs", "count": 1}},
        headers=bearer(token),
    )
    assert refused.status_code == 400
    assert refused.json()["detail"] == (
        "POST /api/batches: text.templates: configs is a folder; give the template file itself "
        "(a YAML file)"
    )
    posted = [
        client.post("/api/batches", json=body, headers=bearer(token)).json()["id"]
        for body in (
            image(
                generator="copy_paste", count=1, coco="coco/annotations.json", images="coco/images"
            ),
        )
    ]
    deadline = time.monotonic() + 30
    messages: list[str] = []
    while time.monotonic() < deadline:
        rows = [client.get(f"/api/batches/{i}", headers=bearer(token)).json() for i in posted]
        if all(row["status"] == "failed" for row in rows):
            messages = [row["message"] for row in rows]
            break
        time.sleep(0.1)
    assert messages[0].startswith("coco/annotations.json: no `images` list")
    for message in [*messages, refused.json()["detail"]]:
        assert str(PACKAGE_ROOT) not in message and str(app.state.data_root) not in message
