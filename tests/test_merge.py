"""Merging accepted synthetic samples into real data: ids, categories by name, provenance, refusals."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from balance_fixtures import make_tiny_coco, run_cli
from factories import REVIEWS, SUPPORT_TICKETS
from pycocotools.coco import COCO

from synthgate.errors import InputError
from synthgate.formats.jsonl import text_row_to_sample
from synthgate.workflows.merge import MergeResult, merge, merge_coco, merge_jsonl


def _synthetic(
    statuses: list[str], *, category: str = "tri", category_id: int = 1
) -> dict[str, Any]:
    """A run's coco.json: one image per status, one annotation each, its own category ids."""
    images, annotations = [], []
    for offset, status in enumerate(statuses, start=1):
        images.append(
            {
                "id": offset,
                "file_name": f"images/s{offset}.png",
                "width": 64,
                "height": 64,
                "synthgate": {
                    "synthetic": True,
                    "sample_id": f"ima-{offset}",
                    "batch_id": "b-1",
                    "index": offset - 1,
                    "generator": "copy_paste",
                    "category": category,
                    "seed": 40 + offset,
                    "status": status,
                    "report": {"score": 4.5, "route": status},
                },
            }
        )
        annotations.append(
            {
                "id": offset,
                "image_id": offset,
                "category_id": category_id,
                "bbox": [1.0, 2.0, 3.0, 4.0],
                "area": 12.0,
                "iscrowd": 0,
                "segmentation": {"size": [64, 64], "counts": "0"},
            }
        )
    return {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": category_id, "name": category, "supercategory": "synthetic"}],
    }


@pytest.fixture
def real(tmp_path: Path) -> dict[str, Any]:
    coco, _ = make_tiny_coco(tmp_path)
    return json.loads(coco.read_text())


def test_merge_keeps_real_entries_and_matches_categories_by_name(real: dict[str, Any]) -> None:
    snapshot = json.dumps(real)
    result = MergeResult()
    merged = merge_coco(
        real,
        _synthetic(["accepted", "review", "accepted", "rejected"]),
        result=result,
    )
    assert json.dumps(real) == snapshot  # the input is not modified
    assert (
        merged["images"][:6] == real["images"]
        and merged["annotations"][: len(real["annotations"])] == real["annotations"]
    )
    new_images = merged["images"][6:]
    assert [i["id"] for i in new_images] == [107, 108]  # after the largest real id
    # The run's own names: relative to the dataset folder, like the real ones once placed.
    assert [i["file_name"] for i in new_images] == ["images/s1.png", "images/s3.png"]
    mark = new_images[0]["synthgate"]
    assert list(mark)[:6] == ["synthetic", "sample_id", "batch_id", "generator", "seed", "score"]
    assert mark["synthetic"] is True and mark["sample_id"] == "ima-1" and mark["score"] == 4.5
    new_annotations = merged["annotations"][len(real["annotations"]) :]
    assert [a["category_id"] for a in new_annotations] == [3, 3]  # "tri" is id 3 in the real file
    assert [a["image_id"] for a in new_annotations] == [107, 108]
    first_new = max(a["id"] for a in real["annotations"]) + 1
    assert [a["id"] for a in new_annotations] == [first_new, first_new + 1]
    assert result.left_out == {"review": ["ima-2"], "rejected": ["ima-4"]}
    assert (result.added_images, result.added_annotations) == (2, 2)


REFUSALS = [
    ("merged-twice", "samples already merged", "'ima-1'"),
    ("file-name-taken", "file names already used", "img_101.png"),
    ("unknown-class", "not categories of the real file", "'hexagon'"),
    ("ambiguous-real-class", "appear more than once", "'disc'"),
]


@pytest.mark.parametrize(("case", "words", "named"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_collisions_are_refused_naming_them(
    real: dict[str, Any], case: str, words: str, named: str
) -> None:
    synthetic = _synthetic(["accepted"])
    if case == "merged-twice":
        real = merge_coco(real, synthetic)
    elif case == "file-name-taken":
        synthetic["images"][0]["file_name"] = "img_101.png"
    elif case == "unknown-class":
        synthetic = _synthetic(["accepted"], category="hexagon")
    elif case == "ambiguous-real-class":
        real["categories"].append({"id": 9, "name": "disc"})
    with pytest.raises(InputError) as error:
        merge_coco(real, synthetic)
    assert words in str(error.value) and named in str(error.value)


def test_new_classes_only_when_asked(real: dict[str, Any]) -> None:
    result = MergeResult()
    merged = merge_coco(
        real, _synthetic(["accepted"], category="hexagon"), add_categories=True, result=result
    )
    assert merged["categories"][-1] == {"id": 6, "name": "hexagon", "supercategory": "synthetic"}
    assert merged["annotations"][-1]["category_id"] == 6
    assert result.new_categories == ["hexagon"]


def test_jsonl_merge_copies_real_lines_byte_for_byte() -> None:
    real_lines = [
        '{"id": "r1", "text": "Gr\\u00fc\\u00dfe", "sentiment": "pos",  "x": 1.10}\n',
        '{"id":"r2","text":"meh","sentiment":"neg"}',
    ]
    rows = [
        {
            "id": "txt-a",
            "text": "Lovely",
            "label": "pos",
            "status": "accepted",
            "batch_id": "b",
            "seed": 5,
            "attributes": {"gender": "female"},
            "provenance": {"generator": "counterfactual"},
            "report": {"score": 5.0},
        },
        {
            "id": "txt-b",
            "text": "Awful",
            "label": "neg",
            "status": "review",
            "batch_id": "b",
            "seed": 6,
        },
    ]
    result = MergeResult()
    lines = merge_jsonl(real_lines, rows, label_field="sentiment", result=result)
    assert lines[0] == real_lines[0] and lines[1] == real_lines[1] + "\n"
    assert len(lines) == 3
    added = json.loads(lines[2])
    assert added["id"] == "txt-a" and added["sentiment"] == "pos" and added["text"] == "Lovely"
    assert (
        added["synthgate"]["synthetic"] is True
        and added["synthgate"]["generator"] == "counterfactual"
    )
    assert added["synthgate"]["score"] == 5.0 and added["synthgate"]["sample_id"] == "txt-a"
    assert result.left_out == {"review": ["txt-b"]}
    with pytest.raises(InputError, match="already merged"):
        merge_jsonl(lines, rows, label_field="sentiment")
    with pytest.raises(InputError, match=r"row ids already used.*'r1'"):
        merge_jsonl(real_lines, [{**rows[0], "id": "r1"}], label_field="sentiment")


@pytest.fixture(scope="module")
def text_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two finished text runs: reviews (labels positive, negative, neutral) and support
    tickets (NER: spans, no document label)."""
    folder = tmp_path_factory.mktemp("text-runs")
    runs = {}
    for name, templates in (("reviews", REVIEWS), ("ner", SUPPORT_TICKETS)):
        config = {
            "name": name,
            "seed": 1,
            "text": {"generator": "templates", "templates": str(templates), "count": 3},
        }
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(config))
        made = run_cli("run", str(folder / f"{name}.yaml"), "--out", str(folder / name))
        assert made.returncode == 0, made.stderr
        runs[name] = folder / name
    return runs


def _rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


SHORT_LABELS = [
    {"text": "I love this product.", "label": "pos"},
    {"text": "Terrible, it broke.", "label": "neg"},
]
RUN_LABELS = [
    {"text": "I love this product.", "label": "positive"},
    {"text": "Terrible, it broke.", "label": "negative"},
    {"text": "It is fine.", "label": "neutral"},
]


@pytest.mark.parametrize(
    ("case", "run", "real_rows", "options", "words"),
    [
        # other label names would split each class in two: pos beside positive
        (
            "new-labels",
            "reviews",
            SHORT_LABELS,
            {},
            ["add_categories", "'negative', 'neutral', 'positive'", "('neg', 'pos')"],
        ),
        # an NER run's rows have no class: merged, they would be rows labelled null
        ("ner-into-labelled", "ner", RUN_LABELS, {}, ["carry no document label", "NER", "`label`"]),
        (
            "label-field-absent",
            "reviews",
            RUN_LABELS,
            {"label_field": "sentiment"},
            ["label_field=sentiment", "row(s) 1, 2, 3 lack a label `sentiment`"],
        ),
        (
            "text-field-absent",
            "reviews",
            RUN_LABELS,
            {"text_field": "body"},
            ["text_field=body", "row(s) 1, 2, 3 lack a text `body`"],
        ),
        (
            "a-real-row-unlabelled",
            "reviews",
            [*RUN_LABELS, {"text": "Hm."}],
            {},
            ["label_field=label", "row(s) 4 lack a label"],
        ),
        (
            "a-number-label",
            "reviews",
            [*RUN_LABELS, {"text": "Hm.", "label": 1}],
            {},
            ["row 4: label `label` is 1, not a string"],
        ),
        (  # doccano's one-class list is read (as validate reads it); several labels are not
            "a-multi-label-list",
            "reviews",
            [*RUN_LABELS, {"text": "Hm.", "label": ["positive", "neutral"]}],
            {},
            [
                "row 4: label `label` is ['positive', 'neutral'], a list of 2 labels",
                "multi-label rows are not supported",
            ],
        ),
        # COCO options were silently ignored for a JSONL file; validate refuses them too
        (
            "images-for-text",
            "reviews",
            RUN_LABELS,
            {"images": "/tmp"},
            ["images=/tmp: applies to COCO files", "real.jsonl is a text JSONL file"],
        ),
        (
            "skip-invalid-for-text",
            "reviews",
            RUN_LABELS,
            {"skip_invalid": True},
            ["skip_invalid: applies to COCO files", "real.jsonl is a text JSONL file"],
        ),
    ],
)
def test_text_merge_refuses_labels_and_fields_the_real_rows_lack(
    case: str,
    run: str,
    real_rows: list[dict[str, Any]],
    options: dict[str, Any],
    words: list[str],
    text_runs: dict[str, Path],
    tmp_path: Path,
) -> None:
    real = _rows(tmp_path / "real.jsonl", real_rows)
    with pytest.raises(InputError) as raised:
        merge(real, text_runs[run], out=tmp_path / "merged", **options)
    for word in words:
        assert word in str(raised.value), str(raised.value)
    assert not (tmp_path / "merged").exists()


def test_text_merge_adds_new_labels_only_when_asked(
    text_runs: dict[str, Path], tmp_path: Path
) -> None:
    real = _rows(tmp_path / "real.jsonl", SHORT_LABELS)
    refused = run_cli(*_merge_args(real, text_runs["reviews"], tmp_path / "refused"))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert "--add-categories: synthetic labels" in " ".join(refused.stderr.split())
    result = merge(real, text_runs["reviews"], out=tmp_path / "merged", add_categories=True)
    assert result.new_categories == ["negative", "neutral", "positive"]
    labels = {json.loads(line)["label"] for line in result.merged.read_text().splitlines()}
    assert labels == {"pos", "neg", "negative", "neutral", "positive"}
    # the same labels merge without it; a run of spans merges into rows without labels
    assert (
        merge(
            _rows(tmp_path / "same.jsonl", RUN_LABELS), text_runs["reviews"], out=tmp_path / "same"
        ).added_rows
        == 3
    )
    spans = _rows(tmp_path / "spans.jsonl", [{"text": "Name: Ann", "spans": [[6, 9, "PERSON"]]}])
    merged = merge(spans, text_runs["ner"], out=tmp_path / "spans-merged", add_categories=True)
    assert merged.added_rows == 3 and "PERSON" not in merged.new_categories
    # span labels the real rows lack ('PRODUCT' beside 'PERSON') were merged without a word
    with pytest.raises(InputError, match=r"synthetic labels .*'PRODUCT'.* \('PERSON'\)"):
        merge(spans, text_runs["ner"], out=tmp_path / "spans-refused")
    assert not (tmp_path / "spans-refused").exists()


def test_jsonl_merge_ends_synthetic_lines_as_the_real_file_does() -> None:
    """A real file written on Windows (CRLF) came out of a merge with LF synthetic lines after
    its CRLF real ones: one file, two line endings."""
    real_lines = [
        '{"id": "r1", "text": "ok", "label": "pos"}\r\n',
        '{"id": "r2", "text": "meh", "label": "neg"}',
    ]
    rows = [
        {"id": f"txt-{k}", "text": "Lovely", "label": "pos", "status": "accepted"} for k in "ab"
    ]
    lines = merge_jsonl(real_lines, rows)
    assert lines[0] == real_lines[0]  # byte for byte
    assert lines[1] == real_lines[1] + "\r\n"  # the last line, ended as the others
    assert len(lines) == 4 and all(line.endswith("\r\n") for line in lines)
    assert [json.loads(line)["id"] for line in lines[2:]] == ["txt-a", "txt-b"]
    assert merge_jsonl(['{"text": "a", "label": "pos"}\n'], rows)[1].endswith("}\n")


def test_a_crlf_file_merges_into_a_crlf_file(text_runs: dict[str, Path], tmp_path: Path) -> None:
    real = tmp_path / "real.jsonl"
    real.write_bytes(b"".join(json.dumps(row).encode() + b"\r\n" for row in RUN_LABELS))
    data = merge(real, text_runs["reviews"], out=tmp_path / "merged").merged.read_bytes()
    assert data.startswith(real.read_bytes()) and data.count(b"\r\n") == data.count(b"\n") == 6


def test_a_real_file_with_a_byte_order_mark_merges_into_one_without(
    text_runs: dict[str, Path], tmp_path: Path
) -> None:
    real = tmp_path / "real.jsonl"
    body = b"".join(json.dumps(row).encode() + b"\n" for row in RUN_LABELS)
    real.write_bytes(b"\xef\xbb\xbf" + body)
    data = merge(real, text_runs["reviews"], out=tmp_path / "merged").merged.read_bytes()
    assert data.startswith(body)  # the real rows byte for byte, the mark left out
    assert data.count(b"\n") == len(RUN_LABELS) + 3


def test_doccano_class_lists_merge_and_the_run_rows_take_their_form(
    text_runs: dict[str, Path], tmp_path: Path
) -> None:
    """doccano exports a class as a list of one ("label": ["pos"]), which validate reads as the
    class; merge refused it and asked for the file to be rewritten."""
    doccano = [{**row, "label": [row["label"]]} for row in RUN_LABELS]
    real = _rows(tmp_path / "real.jsonl", doccano)
    result = merge(real, text_runs["reviews"], out=tmp_path / "merged")
    assert result.added_rows == 3 and result.new_categories == []
    lines = result.merged.read_text().splitlines(keepends=True)
    assert "".join(lines[:3]) == real.read_text()
    added = [json.loads(line)["label"] for line in lines[3:]]
    assert len(added) == 3 and all(
        isinstance(label, list)
        and len(label) == 1
        and label[0] in {"positive", "negative", "neutral"}
        for label in added
    ), added
    # a class the real rows lack is still a new class, named as such
    short = _rows(
        tmp_path / "short.jsonl", [{**row, "label": [row["label"]]} for row in SHORT_LABELS]
    )
    with pytest.raises(InputError, match=r"synthetic labels .* \('neg', 'pos'\)"):
        merge(short, text_runs["reviews"], out=tmp_path / "refused")


@pytest.mark.parametrize(
    ("real_row", "field"),
    [
        ({"label": [[6, 9, "PERSON"]]}, "label"),  # doccano's older export
        ({"entities": [{"id": 41, "label": "PERSON", "start_offset": 6, "end_offset": 9}]}, "entities"),
        ({"entities": [[6, 9, "PERSON"]]}, "entities"),  # spaCy-style
        ({"labels": [[6, 9, "PERSON"]]}, "labels"),  # doccano versions that write `labels`
        ({"label": [{"start": 6, "end": 9, "text": "Ann", "labels": ["PERSON"]}]}, "label"),  # Label Studio JSON-MIN
    ],
)  # fmt: skip
def test_a_run_of_spans_merges_into_ner_rows_in_their_own_layout(
    real_row: dict[str, Any], field: str, text_runs: dict[str, Path], tmp_path: Path
) -> None:
    """A run of spans merged into doccano rows was refused as if their `label` lists were
    classes, or merged beside `entities` with its spans under `spans`, which doccano and
    training scripts reading `entities` do not see: the synthetic rows came out unlabelled."""
    real = _rows(tmp_path / "real.jsonl", [{"id": 1, "text": "Name: Ann", **real_row}])
    result = merge(real, text_runs["ner"], out=tmp_path / "merged", add_categories=True)
    first, *added = [json.loads(line) for line in result.merged.read_text().splitlines()]
    assert first == {"id": 1, "text": "Name: Ann", **real_row} and len(added) == 3
    made = (text_runs["ner"] / "text.jsonl").read_text().splitlines()
    run_rows = {r["id"]: r for r in map(json.loads, made)}
    for row in added:
        assert "spans" not in row or field == "spans"
        assert row.get("label", "absent") is not None  # no null class beside the spans
        # in the real rows' own form: the same keys, or lists where they have lists
        shape = [sorted(s) if isinstance(s, dict) else type(s) for s in row[field][:1]]
        assert shape == [sorted(s) if isinstance(s, dict) else type(s) for s in real_row[field][:1]]
        spans = text_row_to_sample(row, source="merged", line=1).spans
        assert [[s.start, s.end, s.label] for s in spans] == run_rows[row["id"]]["spans"]
    if field == "entities" and isinstance(
        real_row[field][0], dict
    ):  # doccano's ids: after the real one
        ids = [entity["id"] for row in added for entity in row[field]]
        assert ids == list(range(42, 42 + len(ids)))


@pytest.mark.parametrize("name", ["real.ndjson", "real.JSONL"])
def test_text_merge_reads_every_text_suffix_validate_reads(
    name: str, text_runs: dict[str, Path], tmp_path: Path
) -> None:
    real = _rows(tmp_path / name, RUN_LABELS)
    result = merge(real, text_runs["reviews"], out=tmp_path / "merged")
    assert result.merged == tmp_path / "merged" / "merged.jsonl" and result.added_rows == 3
    merged = run_cli(*_merge_args(real, text_runs["reviews"], tmp_path / "cli"))
    assert merged.returncode == 0, merged.stderr
    assert len((tmp_path / "cli" / "merged.jsonl").read_text().splitlines()) == 6


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A real COCO file, its images folder and a finished copy-paste run over it."""
    folder = tmp_path_factory.mktemp("merge")
    coco, images = make_tiny_coco(folder / "real")
    config = {
        "name": "cp",
        "seed": 2,
        "categories": ["square", "disc", "tri"],
        "image": {"generator": "copy_paste", "count": 4, "coco": str(coco), "images": str(images)},
    }
    (folder / "cp.yaml").write_text(yaml.safe_dump(config))
    run = run_cli("run", str(folder / "cp.yaml"), "--out", str(folder / "runs" / "cp"))
    assert run.returncode == 0, run.stderr
    return coco, images, folder / "runs" / "cp"


def _placed(real: dict[str, Any]) -> list[dict[str, Any]]:
    """The real images as a merge output holds them: every value kept, the file under images/."""
    return [{**image, "file_name": f"images/{image['file_name']}"} for image in real["images"]]


def test_merge_command_writes_a_self_contained_folder(
    finished_run: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    coco, images, run_dir = finished_run
    out = tmp_path / "merged"
    merged = run_cli(*_merge_args(coco, run_dir, out, "--images", str(images)))
    assert merged.returncode == 0, merged.stderr
    assert str(out / "merged.coco.json") in " ".join(merged.stdout.split())
    data = COCO(str(out / "merged.coco.json")).dataset
    real = json.loads(coco.read_text())
    assert data["images"][:6] == _placed(real)
    assert data["annotations"][: len(real["annotations"])] == real["annotations"]
    synthetic = data["images"][6:]
    assert len(synthetic) == 4
    for image in data["images"]:
        # Relative to the output folder and inside it: hard links of real and run images.
        assert ".." not in Path(image["file_name"]).parts
        assert (out / image["file_name"]).stat().st_nlink >= 2
    for image in synthetic:
        assert image["synthgate"]["synthetic"] is True
        assert (out / image["file_name"]).read_bytes() == (
            run_dir / image["file_name"]
        ).read_bytes()
    summary = json.loads((out / "merge.json").read_text())
    assert summary["merged"] == "merged.coco.json" and summary["added_images"] == 4
    twice = tmp_path / "twice"
    again = run_cli(*_merge_args(out / "merged.coco.json", run_dir, twice))
    assert (
        again.returncode == 2
        and "already merged" in again.stderr
        and "Traceback" not in again.stderr
    )
    assert not twice.exists()
    same = run_cli(*_merge_args(coco, run_dir, coco))
    assert same.returncode == 2 and "is the real file" in same.stderr


def test_a_real_coco_file_with_a_byte_order_mark_merges_as_the_file_without_it(
    finished_run: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    coco, images, run_dir = finished_run
    marked = tmp_path / "marked" / coco.name
    marked.parent.mkdir()
    marked.write_bytes(b"\xef\xbb\xbf" + coco.read_bytes())
    plain_out = merge(coco, run_dir, out=tmp_path / "plain", images=images).out
    marked_out = merge(marked, run_dir, out=tmp_path / "from-marked", images=images).out
    for name in ("merged.coco.json", "merge.json"):
        assert (marked_out / name).read_bytes() == (plain_out / name).read_bytes(), name


def test_a_moved_merge_output_still_loads_from_its_path_alone(
    finished_run: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    coco, images, run_dir = finished_run
    out = tmp_path / "deep" / "er" / "merged"
    assert run_cli(*_merge_args(coco, run_dir, out, "--images", str(images))).returncode == 0
    moved = tmp_path / "elsewhere"
    shutil.move(out, moved)
    count = len(json.loads((moved / "merged.coco.json").read_text())["images"])
    result = run_cli("validate", str(moved / "merged.coco.json"), "--images", str(moved))
    assert result.returncode == 0, result.stderr
    assert f"{count} samples" in result.stdout
    assert "image_unreadable" not in result.stdout, result.stdout
    exported = run_cli("export", str(moved), "-f", "yolo", "-o", str(tmp_path / "yolo"))
    assert exported.returncode == 0, exported.stderr
    # A merge output merges again, into a new folder: its names stay under images/.
    again = run_cli(
        *_merge_args(moved / "merged.coco.json", run_dir, tmp_path / "again"),
        "--images",
        str(moved),
    )
    assert again.returncode == 2 and "already merged" in again.stderr


def test_without_images_the_real_images_are_beside_the_real_file(
    finished_run: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """Without --images, names are relative to the --real file's folder: its real images must
    be there (they are checked: missing, unreadable, of another size), else it refuses."""
    coco, images, run_dir = finished_run
    default = tmp_path / "default"
    refused = run_cli(*_merge_args(coco, run_dir, default))
    # none of its names is beside it: said once, with where they are (not every image)
    assert refused.returncode == 2 and "image file not found (none of the" in refused.stderr
    assert not default.exists()
    beside = tmp_path / "beside"
    beside.mkdir()
    for name in json.loads(coco.read_text())["images"]:
        (beside / name["file_name"]).write_bytes((images / name["file_name"]).read_bytes())
    (beside / "annotations.json").write_bytes(coco.read_bytes())
    merged = run_cli(*_merge_args(beside / "annotations.json", run_dir, default))
    assert merged.returncode == 0, merged.stderr
    for image in json.loads((default / "merged.coco.json").read_text())["images"]:
        assert (default / image["file_name"]).is_file()


def test_merge_reports_reading_checking_placing_then_writing(
    finished_run: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    tiny, shared_images, run_dir = finished_run
    images = shutil.copytree(shared_images, tmp_path / "images")  # one is removed below
    # a file of several of the reader's buffers (64 KiB), so that its bar moves as it is read
    real = json.loads(tiny.read_text())
    for annotation in real["annotations"]:
        annotation["note"] = "x" * (400_000 // len(real["annotations"]))
    coco = tmp_path / "padded.json"
    coco.write_text(json.dumps(real))
    events: list[tuple[str, int, int]] = []

    def checked(done: int, total: int) -> None:
        events.append(("checked", done, total))

    result = merge(
        coco,
        run_dir,
        out=tmp_path / "merged",
        images=images,
        progress=lambda done, total: events.append(("placed", done, total)),
        check_progress=checked,
        read_progress=lambda done, total: events.append(("read", done, total)),
        write_progress=lambda done, total: events.append(("written", done, total)),
    )
    entries = real["images"]
    placed = len(entries) + result.added_images
    reads = [e for e in events if e[0] == "read"]
    checks = [e for e in events if e[0] == "checked"]
    writes = [e for e in events if e[0] == "written"]
    size = coco.stat().st_size
    # the real file is read before its entries are checked, its count moving through the file;
    # every real image file, then every annotation, is checked before the first image is
    # placed, and each image is placed once; then merged.coco.json is written
    placing = [("placed", n, placed) for n in range(1, placed + 1)]
    assert events == [*reads, *checks, *placing, *writes]
    merged = json.loads(result.merged.read_text())
    entries_written = sum(len(merged[key]) for key in ("images", "annotations", "categories"))
    assert writes[0] == ("written", 0, entries_written)
    assert writes[-1] == ("written", entries_written, entries_written)
    assert reads[0] == ("read", 0, size) and reads[-1] == ("read", size, size)
    done = [count for _, count, _ in reads]
    assert len(done) > 5 and done == sorted(set(done)) and {t for *_, t in reads} == {size}
    checked_in_all = len(entries) + len(real["annotations"])
    assert checks[0] == ("checked", 0, checked_in_all)
    assert ("checked", len(entries), checked_in_all) in checks  # the image files, then the rest
    assert checks[-1] == ("checked", checked_in_all, checked_in_all)
    assert [done for _, done, _ in checks] == sorted({done for _, done, _ in checks})
    events.clear()
    (images / entries[-1]["file_name"]).unlink()
    with pytest.raises(InputError, match="image file missing"):
        merge(coco, run_dir, out=tmp_path / "refused", images=images, check_progress=checked)
    assert events[-1] == ("checked", checked_in_all, checked_in_all)
    assert not (tmp_path / "refused").exists()


def test_merge_command_shows_reading_checking_placing_and_writing_bars(
    finished_run: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from synthgate import commands
    from synthgate.cli import app
    from synthgate.commands import balance as balance_commands

    coco, images, run_dir = finished_run
    monkeypatch.setattr(balance_commands, "PROGRESS_FROM", 1)  # bars for 6 images, not 200
    args = _merge_args(coco, run_dir, tmp_path / "merged", "--images", str(images))
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    assert "reading" not in result.output  # a small file is read in a blink: no bar
    real_coco = json.loads(coco.read_text())
    real = len(real_coco["images"]) + len(real_coco["annotations"])  # checked: files, then labels
    placed = len(json.loads((tmp_path / "merged" / "merged.coco.json").read_text())["images"])
    checking = re.search(rf"checking the dataset .* {real}/{real} ", result.output)
    placing = re.search(rf"\n\s*images .* {placed}/{placed} ", result.output)
    assert checking and placing and checking.start() < placing.start(), result.output
    monkeypatch.setattr(commands, "READ_BAR_FROM", 1)  # as for a file of hundreds of MB
    args = _merge_args(coco, run_dir, tmp_path / "again", "--images", str(images))
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    reading = re.search(r"reading the COCO file \(MiB\) .* 1/1 ", result.output)
    checking = re.search(rf"checking the dataset .* {real}/{real} ", result.output)
    assert reading and checking and reading.start() < checking.start(), result.output
    assert "writing" not in result.output  # a small file is written in a blink: no bar
    monkeypatch.setattr(balance_commands, "WRITE_BAR_FROM", 1)  # as for 1M annotations
    args = _merge_args(coco, run_dir, tmp_path / "third", "--images", str(images))
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    merged = json.loads((tmp_path / "third" / "merged.coco.json").read_text())
    entries = sum(len(merged[key]) for key in ("images", "annotations", "categories"))
    placing = re.search(rf"\n\s*images .* {placed}/{placed} ", result.output)
    writing = re.search(rf"writing merged\.coco\.json .* {entries}/{entries} ", result.output)
    assert placing and writing and placing.start() < writing.start(), result.output


def _merge_args(real: Path, run_dir: Path, out: Path, *extra: str) -> tuple[str, ...]:
    return ("merge", "--real", str(real), "--synthetic", str(run_dir), "--out", str(out), *extra)


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("out-in-run", "inside the synthetic run folder"),
        ("out-is-a-file", "is a file; choose a folder"),
        ("out-is-another-folder", "folder exists and is not a synthgate merge output"),
        ("out-holds-the-real-file", "an input, which replacing it would delete"),
        ("missing-jsonl", "not found"),
        ("images-not-a-list", "`images` must be a list (got dict)"),
        ("jsonl-id-a-list", "bad.jsonl: row 1: `id` must be a string or an integer (got [1])"),
        # Python's json reads NaN; written into merged.coco.json, strict readers refuse the file
        ("nan-in-a-real-entry", "images[0] (id 101): license is NaN"),
        ("infinity-in-a-jsonl-row", "bad.jsonl: line 1: `weight` is Infinity, which is not JSON"),
    ],
)
def test_merge_refusals_are_clear_and_write_nothing(
    case: str, words: str, finished_run: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    coco, images, run_dir = finished_run
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    real, out, extra = coco, tmp_path / "merged", []
    if case == "out-in-run":
        out = run_dir / "coco.json"
    elif case == "out-is-a-file":
        out.write_text("keep")
    elif case == "out-is-another-folder":
        out.mkdir()
        (out / "notes.txt").write_text("keep")
    elif case == "out-holds-the-real-file":
        out.mkdir()
        real = out / "real.json"
        shutil.copy(coco, real)
    elif case == "missing-jsonl":
        real = tmp_path / "missing.jsonl"
    elif case == "images-not-a-list":
        real = tmp_path / "odd.json"
        real.write_text(json.dumps({"images": {}, "annotations": [], "categories": []}))
    elif case == "jsonl-id-a-list":  # unhashable: a traceback building the set of real ids
        real = tmp_path / "bad.jsonl"
        real.write_text('{"id": [1], "text": "a", "label": "x"}\n')
    elif case == "nan-in-a-real-entry":
        real = tmp_path / "nan.json"
        data = json.loads(coco.read_text())
        data["images"][0]["license"] = float("nan")
        real.write_text(json.dumps(data))
        extra = ["--images", str(images)]
    elif case == "infinity-in-a-jsonl-row":
        real = tmp_path / "bad.jsonl"
        real.write_text('{"id": 1, "text": "a", "label": "x", "weight": Infinity}\n')
    result = run_cli(*_merge_args(real, run_dir, out, *extra))
    message = " ".join(result.stderr.split())
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert words in message, message
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert left == {
        "out-is-a-file": ["merged"],
        "out-is-another-folder": ["merged", "merged/notes.txt"],
        "out-holds-the-real-file": ["merged", "merged/real.json"],
        "images-not-a-list": ["odd.json"],
        "jsonl-id-a-list": ["bad.jsonl"],
        "nan-in-a-real-entry": ["nan.json"],
        "infinity-in-a-jsonl-row": ["bad.jsonl"],
    }.get(case, [])


def test_merge_refuses_an_out_inside_the_run(finished_run: tuple[Path, Path, Path]) -> None:
    coco, images, run_dir = finished_run
    original = (run_dir / "coco.json").read_bytes()
    with pytest.raises(InputError, match="inside the synthetic run folder"):
        merge(coco, run_dir, out=run_dir / "coco.json", images=images)
    with pytest.raises(InputError, match="inside the synthetic run folder"):
        merge(coco, run_dir, out=run_dir / "images" / "merged.json", images=images)
    assert (run_dir / "coco.json").read_bytes() == original
    assert not (run_dir / "images" / "merged.json").exists()


def test_merge_refuses_an_out_inside_the_images_folder(
    finished_run: tuple[Path, Path, Path],
) -> None:
    """The merged dataset would lie among the images a later merge or balance reads (export and
    balance refused it; merge wrote it there)."""
    coco, images, run_dir = finished_run
    with pytest.raises(InputError, match="lies inside the images folder"):
        merge(coco, run_dir, out=images / "sub", images=images)
    assert not (images / "sub").exists()


def test_new_classes_are_refused_naming_add_categories_as_the_caller_passes_it(
    finished_run: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """One refusal, two callers: a notebook reads the parameter, the command line the flag."""
    coco, images, run_dir = finished_run
    data = json.loads(coco.read_text())
    for category in data["categories"]:
        category["name"] = f"real {category['name']}"  # every class of the run is new
    real = tmp_path / "renamed.json"
    real.write_text(json.dumps(data))
    with pytest.raises(InputError) as raised:
        merge(real, run_dir, out=tmp_path / "library", images=images)
    assert str(raised.value).endswith("or pass add_categories=True to append them")
    refused = run_cli(*_merge_args(real, run_dir, tmp_path / "cli", "--images", str(images)))
    message = " ".join(refused.stderr.split())
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert message.endswith("or pass --add-categories to append them"), message
    assert not (tmp_path / "library").exists() and not (tmp_path / "cli").exists()


def test_merge_skip_invalid_leaves_bad_real_entries_out(
    finished_run: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    coco, images, run_dir = finished_run
    data = json.loads(coco.read_text())
    data["annotations"][0]["image_id"] = 999
    data["images"].append({**data["images"][0], "id": 998, "file_name": "gone\\"})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    out = tmp_path / "merged"
    refused = run_cli(*_merge_args(bad, run_dir, out, "--images", str(images)))
    assert refused.returncode == 2 and "--skip-invalid" in refused.stderr
    assert not out.exists()
    skipped = run_cli(*_merge_args(bad, run_dir, out, "--images", str(images), "--skip-invalid"))
    assert skipped.returncode == 0, skipped.stderr
    assert "annotations[0]" in skipped.stderr and "image_id 999" in skipped.stderr
    # shown as it is: rich's markup escape would double the name's trailing backslash
    unwrapped = "".join(skipped.stderr.splitlines())  # a long path is folded at 80 columns
    assert "gone\\" in unwrapped and "gone\\\\" not in unwrapped
    merged = json.loads((out / "merged.coco.json").read_text())
    assert data["annotations"][0]["id"] not in {a["id"] for a in merged["annotations"]}
    assert len(merged["images"]) == len(data["images"]) - 1 + 4  # gone\\ left out


def test_merge_skip_invalid_that_leaves_no_real_image_is_refused(
    finished_run: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """A real file whose image ids are strings, with --skip-invalid: every real entry was left
    out and merge wrote the run's synthetic images alone as 'merged' into it, exit 0: the real
    dataset was gone from the output."""
    coco, images, run_dir = finished_run
    data = json.loads(coco.read_text())
    for image in data["images"]:
        image["id"] = f"img_{image['id']}"
    for annotation in data["annotations"]:
        annotation["image_id"] = f"img_{annotation['image_id']}"
    bad = tmp_path / "ids.json"
    bad.write_text(json.dumps(data))
    out = tmp_path / "merged"
    result = run_cli(*_merge_args(bad, run_dir, out, "--images", str(images), "--skip-invalid"))
    assert result.returncode == 2, result.stdout + result.stderr
    said = " ".join(result.stderr.split())
    entries = len(data["images"]) + len(data["annotations"])
    assert f"{bad}: no real images to merge into ({entries} entries left out as invalid)" in said
    assert not out.exists()


@pytest.mark.parametrize(
    "change",
    [
        lambda image: image.pop("synthgate"),
        lambda image: image["synthgate"].pop("status"),
        lambda image: image["synthgate"].pop("sample_id"),
    ],
    ids=["no-block", "no-status", "no-sample-id"],
)
def test_images_not_from_a_run_are_refused(
    real: dict[str, Any], change: Callable[[dict[str, Any]], Any]
) -> None:
    synthetic = _synthetic(["accepted", "accepted"])
    change(synthetic["images"][1])
    with pytest.raises(InputError, match=r"not a synthgate run image: images\[1\] \(id 2\)"):
        merge_coco(real, synthetic)


def test_a_merge_result_shows_counts_not_every_id() -> None:
    result = MergeResult(added_images=2, left_out={"rejected": [f"s{i}" for i in range(10_000)]})
    shown = repr(result)
    assert "added_images=2" in shown and "left_out={'rejected': 10000}" in shown
    assert len(shown) < 300


def test_a_folder_that_is_no_run_is_named_as_such_before_the_output(tmp_path: Path) -> None:
    """`--synthetic` a folder that is no run and `--out` inside it blamed --out ('is inside the
    synthetic run folder'); a balance output passed as the run says where its runs are."""
    real, _ = make_tiny_coco(tmp_path)
    folder = tmp_path / "notes"
    folder.mkdir()
    with pytest.raises(InputError, match=r"not a finished synthgate run \(no manifest.json\)$"):
        merge(real, folder, out=folder / "merged")
    (folder / "balance.json").write_text("{}")
    (folder / "runs" / "balance-0-copy_paste").mkdir(parents=True)
    (folder / "runs" / "balance-0-copy_paste" / "manifest.json").write_text("{}")
    with pytest.raises(InputError, match="it is a balance output") as refused:
        merge(real, folder, out=tmp_path / "merged")
    assert str(folder / "runs" / "balance-0-copy_paste") in str(refused.value)
    assert not (tmp_path / "merged").exists()


def test_a_real_region_of_several_labels_counts_each_of_them() -> None:
    # Label Studio's JSON-MIN gives a region every label chosen; span_label names none of
    # them, and sorting the real labels for the message raised TypeError (None beside 'PER')
    real_lines = [
        json.dumps(
            {
                "text": "Ann lives in Berlin",
                "label": [
                    {"start": 0, "end": 3, "text": "Ann", "labels": ["PER"]},
                    {"start": 13, "end": 19, "text": "Berlin", "labels": ["LOC", "GPE"]},
                ],
            }
        )
        + "\n"
    ]
    rows = [
        {"id": "t1", "text": "Bo in Rome", "spans": [[0, 2, "PERSON"], [6, 10, "GPE"]]},
    ]
    with pytest.raises(InputError) as raised:
        merge_jsonl(real_lines, rows)
    message = str(raised.value)
    assert "synthetic labels 'PERSON' are not labels of real rows ('GPE', 'LOC', 'PER')" in message
    result = MergeResult()
    merge_jsonl(real_lines, rows, add_categories=True, result=result)
    assert result.new_categories == ["PERSON"]
