"""`synthgate validate` on COCO files (with and without images) and text JSONL: output, JSON
document, exit codes 0 / 1 (--fail-under) / 2 (bad input)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from synthgate.cli import app
from synthgate.commands import count_bar, progress_bars
from synthgate.errors import InputError
from synthgate.formats.jsonl import text_row_to_sample
from synthgate.masks import encode_mask
from synthgate.validators.checks import quality
from synthgate.validators.rubric import RUBRICS_DIR
from synthgate.validators.validate import validate_coco, validate_file

runner = CliRunner()


def square(y: int, x: int, side: int, shape: tuple[int, int] = (48, 64)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[y : y + side, x : x + side] = True
    return mask


@pytest.fixture
def coco_file(tmp_path: Path) -> Path:
    """Three images: a clean one, one with a 7 px loose box, one black; images on disk."""
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for image_id, (loose, black) in enumerate([(0, False), (7, False), (0, True)], start=1):
        pixels = (
            np.zeros((48, 64, 3), np.uint8)
            if black
            else rng.integers(30, 220, (48, 64, 3), dtype=np.uint8)
        )
        Image.fromarray(pixels).save(tmp_path / f"{image_id}.png")
        images.append({"id": image_id, "file_name": f"{image_id}.png", "width": 64, "height": 48})
        mask = square(15, 20, 12)
        annotations.append({
            "id": 100 + image_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
            "bbox": [20 - loose, 15 - loose, 12 + 2 * loose, 12 + 2 * loose],
            "area": 144, "segmentation": encode_mask(mask),
        })  # fmt: skip
    path = tmp_path / "labels.json"
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "box"}]}
    path.write_text(json.dumps(coco))
    return path


def invoke(*args: str) -> Any:
    return runner.invoke(app, ["validate", *map(str, args)])


def test_validate_coco_with_images_writes_the_json_document(
    coco_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report.json"
    result = invoke(coco_file, "--images", tmp_path, "--json", out)
    assert result.exit_code == 0, result.output
    assert "rubric detection: 3 samples" in result.output
    assert re.search(r"judging .* 3/3 ", result.stderr)  # the progress bar, as samples are judged
    assert result.stdout.startswith("rubric detection: 3 samples")  # stdout: the summary alone
    assert "precision_box_tightness" in result.output and "correctness_image_valid" in result.output
    document = json.loads(out.read_text())
    assert document["rubric"] == "detection"
    summary = document["summary"]
    assert summary["samples"] == 3
    assert summary["routes"] == {"accepted": 1, "review": 1, "rejected": 1}
    assert summary["levels"]["precision"] == {"5": 2, "3": 0, "1": 1}
    rows = {row["image_id"]: row for row in document["samples"]}
    assert rows[1]["route"] == "accepted" and rows[1]["findings"] == []
    loose = rows[2]["findings"][0]
    assert loose["criterion"] == "precision" and loose["level"] == 1
    assert loose["check"] == "precision_box_tightness" and loose["annotation_id"] == 102
    assert rows[3]["route"] == "rejected" and rows[3]["levels"]["correctness"] == 1
    assert set(rows[2]) >= {"id", "image_id", "score", "route", "levels", "findings"}


def test_each_image_file_is_decoded_once_for_pixels_and_checks(
    coco_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks take the Pillow image the file was decoded to (no copy of the pixels back
    into one), whatever the file's mode, and judge exactly as with a copy of their own."""
    Image.open(tmp_path / "1.png").convert("L").save(tmp_path / "1.png")  # grey: converted
    Image.open(tmp_path / "2.png").convert("P").save(tmp_path / "2.png")  # palette: converted
    made: list[tuple[int, ...]] = []

    def counted(pixels: np.ndarray) -> Image.Image:
        made.append(pixels.shape)
        return own_copy(pixels)

    own_copy = quality.rgb_image
    monkeypatch.setattr(quality, "rgb_image", counted)
    handed = validate_file(coco_file, images=tmp_path)
    assert made == []
    monkeypatch.setattr(quality, "DECODED_IMAGE", "not handed over")
    copied = validate_file(coco_file, images=tmp_path)
    assert len(made) == 3  # the checks made their own image of each sample's pixels
    assert handed.rows == copied.rows
    assert handed.reports["coco-1"].measurements["clipped_percent"] >= 0


def test_without_images_pixel_checks_are_silent(coco_file: Path) -> None:
    result = invoke(coco_file)
    assert result.exit_code == 0 and "correctness_image_valid" not in result.output


def test_missing_image_file_is_a_finding(coco_file: Path, tmp_path: Path) -> None:
    (tmp_path / "1.png").unlink()
    result = invoke(coco_file, "--images", tmp_path)
    assert result.exit_code == 0
    assert "correctness_image_valid.image_unreadable" in result.output


def test_fail_under_exits_1(coco_file: Path) -> None:
    assert invoke(coco_file, "--fail-under", "1.5").exit_code == 0
    result = invoke(coco_file, "--fail-under", "4.9")
    assert result.exit_code == 1 and "under --fail-under 4.9" in result.output


def test_stdout_holds_the_summary_alone(coco_file: Path, tmp_path: Path) -> None:
    """`validate x.json > summary.txt` held 'wrote report.json' and the --fail-under line too:
    what was written and why the status is 1 go to stderr, each on one line however long
    the path (rich wrapped it at 80 columns: "wrote \n/tmp/...")."""
    report = tmp_path / ("a-long-folder-name-" * 4) / "report.json"
    report.parent.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "synthgate", "validate", str(coco_file), "--json", str(report),
         "--fail-under", "4.9"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"wrote {report}" in done.stderr and "under --fail-under 4.9" in done.stderr
    assert "wrote" not in done.stdout and "fail-under" not in done.stdout
    assert done.stdout.startswith("rubric detection:")


def test_reference_copy_is_reported(coco_file: Path, tmp_path: Path) -> None:
    reference = tmp_path / "real"
    reference.mkdir()
    (reference / "real-7.png").write_bytes((tmp_path / "1.png").read_bytes())
    (reference / "real-8.png").write_bytes(b"not an image: skipped, and counted as done")
    result = invoke(coco_file, "--images", tmp_path, "--reference", reference)
    assert result.exit_code == 0 and "correctness_reference_copy" in result.output
    assert re.search(r"hashing the reference images .* 2/2 ", result.output)
    hashed: list[tuple[int, int]] = []
    found = validate_file(
        coco_file,
        images=tmp_path,
        reference=reference,
        reference_progress=lambda *p: hashed.append(p),
    )
    assert hashed == [(1, 2), (2, 2)] and found.summary.samples == 3


def test_a_text_that_copies_a_real_row_of_the_reference_jsonl_is_named(tmp_path: Path) -> None:
    copied = "The quick brown fox jumps over the lazy dog near the river bank today."
    texts = tmp_path / "texts.jsonl"
    texts.write_text(
        json.dumps({"id": "s1", "text": copied, "label": "news"})
        + "\n"
        + json.dumps({"id": "s2", "text": "Markets rose again as rates fell.", "label": "news"})
        + "\n"
    )
    real = tmp_path / "real.jsonl"
    real.write_text("\n\n" + json.dumps({"id": "r9", "text": copied, "label": "news"}) + "\n")
    out = tmp_path / "t.json"

    def copy_findings(*args: Any) -> list[list[str]]:
        result = invoke(texts, "--json", out, *args)
        assert result.exit_code == 0, result.output
        samples = json.loads(out.read_text())["samples"]
        return [
            [f["message"] for f in s["findings"] if f["check"] == "correctness_text_copy"]
            for s in samples
        ]

    assert copy_findings() == [[], []]  # no reference: nothing to copy
    first, second = copy_findings("--reference", real)
    assert len(first) == 1 and "real.jsonl line 3 (id r9)" in first[0] and second == []
    refused = invoke(texts, "--reference", tmp_path)  # a folder is a reference for images
    assert refused.exit_code == 2
    assert "--reference" in refused.output and "JSONL file of the real rows" in refused.output
    missing = invoke(texts, "--reference", tmp_path / "nowhere.jsonl")
    assert (
        missing.exit_code == 2 and "nowhere.jsonl: reference JSONL file not found" in missing.output
    )


def test_validate_text_jsonl_picks_ner_or_classification(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "text": "Hi, Ada Lovelace, here.", "spans": [[4, 17, "PERSON"]]},
        {"id": "b", "text": "Call Grace Hopper today.", "spans": [{"start": 5, "end": 17, "label": "PERSON"}]},
    ]  # fmt: skip
    path = tmp_path / "texts.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    out = tmp_path / "t.json"
    result = invoke(path, "--json", out)
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert document["rubric"] == "ner"
    first, second = document["samples"]
    assert first["line"] == 1 and first["findings"][0]["check"] == "precision_span_boundaries"
    assert second["line"] == 2 and second["findings"] == []
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"text": "Love it, works great!", "label": "positive"}) + "\n")
    assert "rubric classification" in invoke(labels).output


SENTIMENT_ROWS = [
    {"id": f"r{k}", "text": text, "sentiment": sentiment}
    for k, (text, sentiment) in enumerate([
        ("Love it, works great!", "pos"),
        ("Broke after a day.", "neg"),
        ("Does what it says.", "pos"),
        ("Never again.", "neg"),
        ("Fine for the price.", "pos"),
    ])
]  # fmt: skip


def test_class_rows_under_another_field_are_refused_naming_it(tmp_path: Path) -> None:
    """Rows holding their class under `sentiment`, validated without --label-field: no row
    holds spans or a `label`, so the file was judged with the ner rubric, every row accepted."""
    path = tmp_path / "reviews.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in SENTIMENT_ROWS))
    result = invoke(path)
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "reviews.jsonl: no row holds spans or a label `label`" in message, message
    assert "`sentiment` holds short strings, as a class does" in message, message
    assert "--label-field sentiment" in message and "--rubric ner" in message, message
    assert "Traceback" not in result.output
    with pytest.raises(InputError, match="label_field=sentiment"):
        validate_file(path)
    named = invoke(path, "--label-field", "sentiment")
    assert named.exit_code == 0 and "rubric classification" in named.output, named.output


@pytest.mark.parametrize(
    "tags", [["urgent", "billing", "refund"], ["urgent"] * 3, ["urgent"]], ids=["3", "1x3", "1"]
)
def test_a_few_rows_whose_short_strings_do_not_repeat_are_judged_as_ner(
    tmp_path: Path, tags: list[str]
) -> None:
    """Under five rows the check took any short string for a class: a tag on each of three
    rows, or one tag they share, tells no class, and the rows are judged as before the check
    (ner, texts without entities)."""
    path = tmp_path / "tickets.jsonl"
    rows = [
        {"id": row["id"], "text": row["text"], "tag": tag}
        for row, tag in zip(SENTIMENT_ROWS, tags, strict=False)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = invoke(path)
    assert result.exit_code == 0, result.output
    assert result.stdout == invoke(path, "--rubric", "ner").stdout
    assert validate_file(path).rubric.name == "ner"


def test_a_few_rows_whose_short_strings_repeat_and_differ_are_refused(tmp_path: Path) -> None:
    """A value naming two rows beside another value is a class's mark whatever the row count:
    three rows of `pos`, `neg`, `pos` are refused as five are."""
    path = tmp_path / "reviews.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in SENTIMENT_ROWS[:3]))
    refused = invoke(path)
    assert refused.exit_code == 2, refused.output
    assert "`sentiment` holds short strings, as a class does" in " ".join(refused.output.split())
    with pytest.raises(InputError, match="label_field=sentiment"):
        validate_file(path)


def test_ner_rows_without_entities_are_judged_as_ner(tmp_path: Path) -> None:
    """Texts with no entity are NER data too: rows that keep an empty span list (`spans`,
    doccano's `entities`), or named with --rubric ner, are judged with the ner rubric, whatever
    short strings they hold beside their text."""
    for field in ("spans", "entities"):
        path = tmp_path / f"{field}.jsonl"
        rows = [{**row, field: []} for row in SENTIMENT_ROWS]
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        assert validate_file(path).rubric.name == "ner"
    path = tmp_path / "plain.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in SENTIMENT_ROWS))
    result = invoke(path, "--rubric", "ner")
    assert result.exit_code == 0 and "rubric ner" in result.output, result.output
    bare = tmp_path / "bare.jsonl"  # a text and an id: nothing to take for a class
    bare.write_text(
        "".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in SENTIMENT_ROWS)
    )
    assert validate_file(bare).rubric.name == "ner"


def test_rows_whose_short_strings_are_metadata_are_judged_as_ner(tmp_path: Path) -> None:
    """What every row of a file shares, or what says who or when, is no class: rows beside
    their text holding one language, one split, the annotator of a Label Studio JSON-MIN export
    with no region drawn, were refused as holding a class under `lang` or `annotator` (a71d334),
    though they are NER texts without entities."""
    rows = [
        {
            "id": f"r{k}",
            "text": row["text"],
            "lang": "en",
            "split": "train",
            "annotator": "ann@example.com" if k % 2 else "bob@example.com",
            "annotation_id": f"a{k % 2}",
            "created_at": "2026-12-01T10:00:00Z",
        }
        for k, row in enumerate(SENTIMENT_ROWS * 2)
    ]
    path = tmp_path / "export.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert validate_file(path).rubric.name == "ner"
    classes = [{**row, "topic": "billing" if k % 3 else "refund"} for k, row in enumerate(rows)]
    path.write_text("".join(json.dumps(row) + "\n" for row in classes))
    with pytest.raises(InputError, match="label_field=topic"):
        validate_file(path)


def test_judging_a_jsonl_file_counts_toward_its_rows(tmp_path: Path) -> None:
    """The judging bar of a JSONL file stood at "200/?": it has the file's row count as its
    total (blank and whitespace lines left out, a lone CR a line break, as the rows are read)."""
    rows = [
        json.dumps({"id": f"r{k}", "text": f"Row {k} is fine.", "label": "ok"}) for k in range(5)
    ]
    path = tmp_path / "texts.jsonl"
    path.write_text(f"{rows[0]}\n\n{rows[1]}\r{rows[2]}\r\n  \n{rows[3]}\n{rows[4]}", newline="")
    seen: list[tuple[int, int | None]] = []
    validate_file(path, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(k, 5) for k in range(1, 6)]
    result = invoke(path)
    assert result.exit_code == 0, result.output
    assert re.search(r"judging .* 5/5 ", result.stderr), result.stderr


def test_a_jsonl_file_with_a_byte_order_mark_is_read_as_utf8(tmp_path: Path) -> None:
    rows = "".join(
        json.dumps({"id": f"r{k}", "text": f"Row {k} is fine.", "label": "ok"}) + "\n"
        for k in range(3)
    )
    plain, marked = tmp_path / "plain.jsonl", tmp_path / "marked.jsonl"
    plain.write_text(rows, encoding="utf-8")
    marked.write_text(rows, encoding="utf-8-sig")
    assert marked.read_bytes().startswith(b"\xef\xbb\xbf")
    judged = invoke(marked)
    assert judged.exit_code == 0, judged.output
    assert judged.stdout == invoke(plain).stdout
    assert validate_file(marked).summary.samples == 3


def test_a_coco_file_with_a_byte_order_mark_is_judged_as_the_file_without_it(
    coco_file: Path, tmp_path: Path
) -> None:
    (tmp_path / "marked").mkdir()
    marked = tmp_path / "marked" / coco_file.name
    marked.write_bytes(b"\xef\xbb\xbf" + coco_file.read_bytes())
    plain_out, marked_out = tmp_path / "plain-report.json", tmp_path / "marked-report.json"
    judged = invoke(marked, "--images", tmp_path, "--json", marked_out)
    assert judged.exit_code == 0, judged.output
    assert judged.stdout == invoke(coco_file, "--images", tmp_path, "--json", plain_out).stdout
    assert marked_out.read_bytes() == plain_out.read_bytes()
    library = validate_coco(marked, images=tmp_path)
    assert library.to_json() == validate_coco(coco_file, images=tmp_path).to_json()


@pytest.mark.parametrize(
    ("content", "name", "args", "message"),
    [
        ("{not json", "x.json", [], "not valid JSON"),
        ('{"annotations": []}', "x.json", [], "no `images` list"),
        ('{"text": "ok"}\nnot json\n', "x.jsonl", [], "x.jsonl: line 2: not valid JSON"),
        ('{"spans": []}\n', "x.jsonl", [], "x.jsonl: line 1: not a text sample"),
        (
            '{"text": "a", "spans": [[-1, 2, "X"]]}\n',
            "x.jsonl",
            [],
            "x.jsonl: line 1: not a text sample",
        ),
        (
            '{"images": [], "annotations": [], "categories": []}',
            "x.json",
            ["--rubric", "nope"],
            "no such file",
        ),
        (
            '{"images": [], "annotations": [], "categories": []}',
            "x.json",
            ["--rubric", "ner"],
            "judges texts",
        ),
        (
            '{"images": [], "annotations": [], "categories": []}',
            "x.json",
            ["--images", "/no/such/dir"],
            "not a folder",
        ),
        ('{"images": [], "annotations": [], "categories": []}', "x.json", [], "holds no samples"),
        ("", "x.jsonl", [], "holds no samples"),
    ],
)
def test_bad_input_exits_2_with_one_clear_message(
    tmp_path: Path, content: str, name: str, args: list[str], message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    result = invoke(path, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert result.stdout == ""  # refused before any work: no progress bar, not an empty line


def test_missing_file_exits_2(tmp_path: Path) -> None:
    result = invoke(tmp_path / "nothing.json")
    assert result.exit_code == 2 and "file not found" in result.output


def test_a_folder_for_the_file_names_its_json_files(tmp_path: Path) -> None:
    """A dataset's folder passed for its annotation file: the message names what it holds."""
    folder = tmp_path / "dataset"
    folder.mkdir()
    result = invoke(folder)
    assert result.exit_code == 2 and "is a folder, with no .json file in it" in result.output
    for name in ("val.json", "train.json", "a.JSON", "b.json"):
        (folder / name).write_text("{}")
    message = " ".join(invoke(folder).output.split())
    assert "is a folder (it holds a.JSON, b.json, train.json and 1 more)" in message
    assert "pass the path of a COCO JSON file" in message and "Traceback" not in message


@pytest.mark.parametrize(
    ("files", "named"),
    [
        (["manifest.json", "synthgate.db", "text.jsonl"], ["text.jsonl"]),  # a text run
        (["manifest.json", "synthgate.db", "coco.json", "text.jsonl"], ["coco.json", "text.jsonl"]),
        (["balance.json", "merged.jsonl"], ["merged.jsonl"]),
    ],
)
def test_a_synthgate_folder_for_the_file_names_the_files_validate_judges(
    tmp_path: Path, files: list[str], named: list[str]
) -> None:
    """`synthgate validate runs/quickstart`: a text run's folder was "pass the path of a COCO
    JSON file", naming manifest.json and never its text.jsonl."""
    folder = tmp_path / "run"
    folder.mkdir()
    for name in files:
        (folder / name).write_text("{}")
    result = invoke(folder)
    message = " ".join(result.output.split())
    assert result.exit_code == 2 and "Traceback" not in message
    shown = ", ".join(str(folder / name) for name in named)
    assert f"is a folder; pass one of its files: {shown}" in message


def test_messy_real_world_coco_does_not_crash(tmp_path: Path) -> None:
    """Polygons too short, RLE of the wrong size, NaN boxes, unknown categories, crowd RLE."""
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}, {"id": 2}],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10], "segmentation": [[1, 1, 5, 5]]},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10], "segmentation": encode_mask(square(0, 0, 4, (10, 10)))},
            {"id": 3, "image_id": 1, "category_id": 9, "bbox": [float("nan"), 1, 10, 10]},
            {"id": 4, "image_id": 1, "category_id": 1, "iscrowd": 1, "bbox": [0, 0, 64, 48],
             "segmentation": {"size": [48, 64], "counts": [0, 48 * 64]}},
            {"id": 5, "image_id": 7, "category_id": 1, "bbox": [0, 0, 2, 2]},
            {"id": 5, "image_id": 2, "category_id": 1, "bbox": [0, 0, 2, 2], "segmentation": [[0, 0, 1, 0, 1, 1]]},
        ],
    }  # fmt: skip
    path = tmp_path / "messy.json"
    path.write_text(json.dumps(coco).replace("NaN", '"NaN"'))
    out = tmp_path / "messy.report.json"
    result = invoke(path, "--json", out)
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    checks = {f["check"] for row in document["samples"] for f in row["findings"]}
    assert {
        "precision_mask_consistency",
        "correctness_bbox_valid",
        "correctness_category_in_taxonomy",
    } <= checks
    dataset = {f["check"] for f in document["summary"]["dataset"]}
    assert {"correctness_unique_ids", "correctness_dangling_references"} <= dataset


def test_a_rubric_s_reference_folder_is_hashed_before_judging(
    coco_file: Path, tmp_path: Path
) -> None:
    """A folder a rubric's check names is hashed before the first sample is judged, with its
    own progress (a real dataset's folder takes minutes), and only when there are pixels."""
    real = tmp_path / "real"
    real.mkdir()
    (real / "real-1.png").write_bytes((tmp_path / "1.png").read_bytes())
    data = yaml.safe_load((RUBRICS_DIR / "detection.yaml").read_text())
    spec = next(
        s for c in data["criteria"].values() for s in c["checks"]
        if s["check"] == "correctness_reference_copy"
    )  # fmt: skip
    spec.setdefault("params", {})["reference_images"] = str(real)
    rubric = tmp_path / "with_reference.yaml"
    rubric.write_text(yaml.safe_dump(data, sort_keys=False))
    events: list[Any] = []
    result = validate_file(
        coco_file,
        images=tmp_path,
        rubric=rubric,
        progress=lambda done, total: events.append("judged"),
        reference_progress=lambda done, total: events.append((done, total)),
    )
    assert events == [(1, 1), "judged", "judged", "judged"]
    assert result.reports["coco-1"].measurements["reference_hash_bits"] == 0
    events.clear()
    validate_file(coco_file, rubric=rubric, reference_progress=lambda *p: events.append(p))
    assert events == []  # labels only: the check never runs, the folder is never read
    # with --reference too: a bar for each folder
    shown = invoke(coco_file, "--images", tmp_path, "--rubric", rubric, "--reference", real)
    assert shown.exit_code == 0, shown.output
    assert len(re.findall(r"hashing the reference images .* 1/1 ", shown.stderr)) == 2
    # a folder that is not there: bad input, said before any sample is judged
    spec["params"]["reference_images"] = str(tmp_path / "gone")
    rubric.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "report.json"
    refused = invoke(coco_file, "--images", tmp_path, "--rubric", rubric, "--json", out)
    assert refused.exit_code == 2 and "judging" not in refused.stderr
    assert f"{tmp_path / 'gone'} is not a folder" in refused.stderr and not out.exists()


def test_mib_bar_moves_by_whole_mib_and_shows_one_bar_to_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from synthgate import commands

    mib = 2**20
    with progress_bars() as bars:
        reading = commands.mib_bar(bars, "reading")
        # a stream's buffers: many in one MiB, several in its last, partial one, and its end
        # reported twice
        for done in (0, 64 << 10, mib - 1, mib, 20 * mib + 5, 20 * mib + 10, 20 * mib + 10):
            reading(done, 20 * mib + 10)
        reading(5, 6)  # a small file: no bar
        shown = [(t.description, t.completed, t.total) for t in bars.tasks]
    assert shown == [("reading (MiB)", 21, 21)]  # 20 MiB and 10 bytes: 21 MiB in all
    monkeypatch.setattr(commands, "READ_BAR_FROM", 1)
    with progress_bars() as bars:
        reading = commands.mib_bar(bars, "reading")
        reading(0, 6)
        reading(6, 6)
        shown = [(t.description, t.completed, t.total) for t in bars.tasks]
    assert shown == [("reading (MiB)", 1, 1)]


def test_validate_shows_the_file_read_before_judging(
    coco_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synthgate import commands

    monkeypatch.setattr(commands, "READ_BAR_FROM", 1)  # as for a file of hundreds of MB
    result = invoke(coco_file)
    assert result.exit_code == 0, result.output
    reading = re.findall(r"reading the COCO file \(MiB\) .* 1/1 ", result.output)
    judging = re.search(r"judging .* (\d+)/\1 ", result.output)
    assert len(reading) == 1 and judging, result.output
    assert result.output.index(reading[0]) < judging.start()
    read: list[tuple[int, int]] = []
    validate_coco(coco_file, read_progress=lambda done, total: read.append((done, total)))
    size = coco_file.stat().st_size
    assert read[0] == (0, size) and read[-1] == (size, size)


def test_count_bar_gives_a_count_that_starts_again_a_bar_of_its_own() -> None:
    with progress_bars() as bars:
        advance = count_bar(bars, "hashing")
        for done in (0, 0, 1, 2, 2, 3):  # one folder of 3, a count reported twice
            advance(done, 3)
        for done in (1, 2):  # a second folder of 2
            advance(done, 2)
        advance(1, 1)  # two folders of one image each
        advance(1, 1)
        small = count_bar(bars, "tiny", least=10)
        small(1, 5)  # under `least`: no bar
        short = count_bar(bars, "gold", least=4)
        for done in (1, 2):
            short(done, 6)
        short(2, 2)  # fewer fit than were wanted: the bar ends at what was made
        shown = [(t.description, t.completed, t.total, t.finished) for t in bars.tasks]
    assert shown == [
        ("hashing", 3, 3, True),
        ("hashing", 2, 2, True),
        ("hashing", 1, 1, True),
        ("hashing", 1, 1, True),
        ("gold", 2, 2, True),
    ]


@pytest.mark.parametrize("second_id", ['"x"', "1"])
def test_a_repeated_row_id_is_refused(tmp_path: Path, second_id: str) -> None:
    """A row with the id of an earlier one was compared with that row as if with itself: an
    exact copy of line 1 under its id was accepted with no finding (ids 1 and "1" alike)."""
    first_id = '"x"' if second_id == '"x"' else '"1"'
    text = "the kettle broke on the second day and support never answered my mail"
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        f'{{"id": {first_id}, "text": "{text}", "label": "neg"}}\n'
        '{"id": "y", "text": "a fine kettle, quick to boil and quiet", "label": "pos"}\n'
        f'{{"id": {second_id}, "text": "{text}", "label": "neg"}}\n'
    )
    result = CliRunner().invoke(app, ["validate", str(rows)])
    assert result.exit_code == 2, result.output
    assert "line 3: id" in result.output and "is the id of line 1 too" in result.output


@pytest.mark.parametrize(
    "span",
    ["[0, 4, null]", '[0, 4, ""]', "[0, 4, 7]", '{"start": 0, "end": 4, "label": ""}'],
)
def test_a_span_label_that_is_not_a_name_is_refused(tmp_path: Path, span: str) -> None:
    """A span [0, 4, null] was read as the label "None" and accepted."""
    rows = tmp_path / "rows.jsonl"
    rows.write_text(f'{{"text": "Anna called twice today", "spans": [{span}]}}\n')
    result = CliRunner().invoke(app, ["validate", str(rows)])
    assert result.exit_code == 2 and "its label must be a non-empty string" in result.output


@pytest.mark.parametrize(
    "row",
    [
        {"label": [[0, 4, "PER"], [16, 22, "LOC"]]},  # doccano, older sequence labelling export
        {"entities": [  # doccano's newer export
            {"id": 7, "label": "PER", "start_offset": 0, "end_offset": 4},
            {"id": 8, "label": "LOC", "start_offset": 16, "end_offset": 22},
        ], "relations": []},
        {"entities": [[0, 4, "PER"], [16, 22, "LOC"]]},  # spaCy-style offsets
        {"labels": [[0, 4, "PER"], [16, 22, "LOC"]]},  # doccano versions that write `labels`
        {"label": [  # Label Studio's JSON-MIN
            {"start": 0, "end": 4, "text": "Anna", "labels": ["PER"]},
            {"start": 16, "end": 22, "text": "Berlin", "labels": ["LOC"]},
        ]},
    ],
)  # fmt: skip
def test_ner_rows_as_annotation_tools_export_them_are_read_as_spans(
    tmp_path: Path, row: dict[str, Any]
) -> None:
    """doccano's `label` list of spans was judged as a class named "[[0, 4, 'PER'], ...]", and
    `entities` were not read at all: every row passed with no span judged."""
    text = "Anna flew on to Berlin today"
    sample = text_row_to_sample({"id": 1, "text": text, **row}, source="rows", line=1)
    assert [(s.start, s.end, s.label) for s in sample.spans] == [(0, 4, "PER"), (16, 22, "LOC")]
    assert sample.doc_label is None
    shifted = json.loads(json.dumps(row).replace("16", "17").replace("22", "23"))
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"id": 1, "text": text, **shifted}) + "\n")
    result = validate_file(rows)
    assert result.rubric.name == "ner"
    (judged,) = result.rows
    messages = [f["message"] for f in judged["findings"]]
    assert any("span LOC 'erlin ' includes 1" in m for m in messages), messages


def test_doccano_class_lists_are_one_class_and_several_are_refused(tmp_path: Path) -> None:
    """doccano writes a row's classes as a list: ["pos"] was judged as the class "['pos']"."""
    row = {"text": "I love it", "label": ["pos"]}
    assert text_row_to_sample(row, source="s", line=1).doc_label == "pos"
    assert text_row_to_sample({**row, "label": []}, source="s", line=1).doc_label is None
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"text": "I love it but it is loud", "label": ["pos", "neg"]}))
    refused = invoke(rows)
    assert refused.exit_code == 2, refused.output
    assert "line 1" in refused.output and "a row has one class" in refused.output


def test_a_row_id_of_0_names_the_row(tmp_path: Path) -> None:
    """Rows numbered from 0 (a pandas index written with to_json) had row 0 reported as
    "line-1", as if it had no id."""
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(
            json.dumps({"id": i, "text": text, "label": "pos"}) + "\n"
            for i, text in enumerate(["Love it, works great!", "Quiet, quick and cheap."])
        )
    )
    assert [row["id"] for row in validate_file(rows).rows] == ["0", "1"]


@pytest.mark.parametrize(
    ("rows", "said"),
    [
        (
            [{"id": 7, "data": {"text": "Ana called."}, "annotations": [{"result": []}]}],
            "is a Label Studio JSON export (a list of tasks with `data`)",
        ),
        ([{"text": "Ana called.", "label": "pos"}], "is a JSON list of text rows"),
        (
            [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 4], "score": 0.9}],
            "is a COCO results file (a list of predictions)",
        ),
    ],
    ids=["label-studio-export", "text-rows", "predictions"],
)
def test_a_json_list_is_named_for_what_it_is(
    tmp_path: Path, rows: list[dict[str, Any]], said: str
) -> None:
    """A Label Studio export or a JSON list of text rows was called 'a COCO results file (a
    list of predictions)', with the fix to pass --coco."""
    path = tmp_path / "export.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert said in " ".join(result.output.split()), result.output
    assert ("--coco" in result.output) == ("predictions" in said)


@pytest.mark.parametrize(
    "rows",
    [
        [{"id": 7, "data": {"text": "Ana called."}, "annotations": [{"result": []}]}],
        [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 4], "score": 0.9}],
    ],
    ids=["label-studio-export", "predictions"],
)
def test_a_json_list_with_a_byte_order_mark_is_named_as_without_it(
    tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    (tmp_path / "marked").mkdir()
    plain, marked = tmp_path / "export.json", tmp_path / "marked" / "export.json"
    plain.write_text(json.dumps(rows), encoding="utf-8")
    marked.write_text(json.dumps(rows), encoding="utf-8-sig")
    said = runner.invoke(app, ["validate", str(marked)])
    assert said.exit_code == 2, said.output
    assert said.output.replace("marked/", "") == runner.invoke(app, ["validate", str(plain)]).output


TEXT_FIELD_ROWS = [
    {"id": "a", "text": "Love it, works great and ships fast.", "label": "positive"},
    {"id": "b", "text": "Love it, works great and ships fast.", "label": "negative"},
    {"id": "c", "text": "ok", "label": ["neutral"]},
    {"id": "d", "text": "Anna flew on to Berlin today", "label": [[0, 4, "PER"], [17, 23, "LOC"]]},
]


def _renamed(rows: list[dict[str, Any]], text: str, label: str) -> str:
    """The rows as JSONL with their text and label under other fields."""
    moved = [{"id": r["id"], text: r["text"], label: r["label"]} for r in rows]
    return "".join(json.dumps(row) + "\n" for row in moved)


@pytest.mark.parametrize(
    "rows", [TEXT_FIELD_ROWS[:3], TEXT_FIELD_ROWS[3:]], ids=["classes", "spans"]
)
def test_text_and_label_fields_are_named_as_balance_and_merge_name_them(
    tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    """Rows with their text under `review` and their label under `sentiment` balanced with
    --text-field and --label-field, but validate had neither: it stopped at line 1, "not a
    text sample". Named, the rows are judged as the same rows under `text` and `label` are:
    the same rubric, scores and findings (a class, doccano's class list or its span list)."""
    plain, renamed = tmp_path / "plain.jsonl", tmp_path / "renamed.jsonl"
    plain.write_text(_renamed(rows, "text", "label"))
    renamed.write_text(_renamed(rows, "review", "sentiment"))
    expected, got = tmp_path / "expected.json", tmp_path / "got.json"
    assert invoke(plain, "--json", expected).exit_code == 0
    fields = ["--text-field", "review", "--label-field", "sentiment"]
    result = invoke(renamed, *fields, "--json", got)
    assert result.exit_code == 0, result.output
    document = json.loads(got.read_text())
    assert document == json.loads(expected.read_text())
    assert any(sample["findings"] for sample in document["samples"])
    # the library's spelling, as balance and merge spell it
    named = validate_file(renamed, text_field="review", label_field="sentiment")
    assert named.rows == validate_file(plain).rows


def test_a_row_without_its_text_names_its_string_fields_and_the_options(tmp_path: Path) -> None:
    rows = tmp_path / "reviews.jsonl"
    rows.write_text(_renamed(TEXT_FIELD_ROWS[:2], "review", "sentiment"))
    result = invoke(rows)
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "line 1: not a text sample (`text` is missing or not a string)" in message
    assert "the row's string fields are `id`, `review`, `sentiment`" in message
    assert "--text-field" in message and "--label-field" in message
    with pytest.raises(InputError, match="name the field of its text with text_field"):
        validate_file(rows)
    # a row with no string to offer gets no such hint
    bare = tmp_path / "bare.jsonl"
    bare.write_text('{"spans": []}\n')
    assert "--text-field" not in invoke(bare).output


def test_the_text_field_reads_the_reference_rows_too(tmp_path: Path) -> None:
    copied = "The quick brown fox jumps over the lazy dog near the river bank today."
    texts, real = tmp_path / "texts.jsonl", tmp_path / "real.jsonl"
    texts.write_text(json.dumps({"id": "s1", "body": copied, "label": "news"}) + "\n")
    real.write_text(json.dumps({"id": "r1", "body": copied, "label": "news"}) + "\n")
    result = validate_file(texts, reference=real, text_field="body")
    (row,) = result.rows
    assert "correctness_text_copy" in [f["check"] for f in row["findings"]]


def test_text_and_label_fields_are_refused_for_coco(coco_file: Path, tmp_path: Path) -> None:
    for flag, field in (("--text-field", "text_field"), ("--label-field", "label_field")):
        refused = invoke(coco_file, flag, "body")
        assert refused.exit_code == 2, refused.output
        message = " ".join(refused.output.split())
        assert f"{flag} body: applies to text JSONL files" in message and "COCO" in message
        with pytest.raises(InputError, match=f"{field}=body: applies to text JSONL files"):
            validate_file(coco_file, **{field: "body"})
    results = tmp_path / "predictions.json"
    results.write_text(
        json.dumps([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 4], "score": 0.9}])
    )
    refused = invoke(results, "--coco", coco_file, "--text-field", "body")
    assert refused.exit_code == 2 and "--text-field body: applies to text JSONL" in refused.output


@pytest.mark.parametrize(
    ("row", "named"),
    [
        # an entity without its end: pydantic said only "Field required"
        ({"text": "John is here", "entities": [{"start": 0, "label": "PER"}]}, "`end` is missing"),
        (  # doccano's form is named as doccano writes it
            {"text": "John is here", "entities": [{"start_offset": 0, "label": "PER"}]},
            "`end_offset` is missing",
        ),
        ({"text": "John is here", "spans": [[-1, 4, "PER"]]}, "`start` is -1"),
        ({"text": "John is here", "spans": [[0, 4.5, "PER"]]}, "`end` is 4.5"),
        # a boolean read as the offset 1 (a span 'ohn' cutting a word), not as what it is
        ({"text": "John is here", "spans": [[True, 4, "PER"]]}, "`start` is True, not a whole"),
        (
            {
                "text": "John is",
                "entities": [{"start_offset": 0, "end_offset": False, "label": "P"}],
            },
            "`end_offset` is False, not a whole",
        ),
        pytest.param(  # Label Studio lets a region take several labels; it said 'its label
            # must be a non-empty string' of a span that has two
            {"text": "John is here", "label": [{"start": 0, "end": 4, "labels": ["PER", "ORG"]}]},
            "`labels` is ['PER', 'ORG']: a span has one label",
        ),
    ],
)
def test_a_bad_span_names_its_field_and_value(tmp_path: Path, row: dict, named: str) -> None:
    path = tmp_path / "spans.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(InputError) as raised:
        validate_file(path)
    message = str(raised.value)
    assert "line 1: not a text sample (span " in message
    assert named in message, message
    result = invoke(path)
    assert result.exit_code == 2 and "Traceback" not in result.output


@pytest.mark.parametrize(
    "row",
    [
        {"text": "John is here", "spans": [{"start": -1, "end": 4, "label": "PER"}]},
        {"text": "John is", "entities": [{"start_offset": 0, "end_offset": False, "label": "P"}]},
        {"text": "John is", "entities": [{"start_offset": 0, "label": "PER"}]},
        # Label Studio's JSON-MIN, a region of two labels
        {
            "text": "John is",
            "label": [{"start": 0, "end": 4, "text": "John", "labels": ["P", "O"]}],
        },
        # a span beside a class in the label list
        {"text": "John is here", "label": [{"start": 0, "end": 4, "label": "PER"}, "pos"]},
    ],
    ids=["spans", "doccano-bool", "doccano-missing", "label-studio", "label-list"],
)
def test_a_refused_span_is_quoted_as_the_row_writes_it(tmp_path: Path, row: dict) -> None:
    """The keys of a span in a refusal stand in the row's order, as the user finds it in the
    file: {'start': -1, 'end': 4, 'label': 'PER'}."""
    path = tmp_path / "spans.jsonl"
    path.write_text(json.dumps(row) + "\n")
    (span, *_) = next(value for value in row.values() if isinstance(value, list))
    with pytest.raises(InputError) as raised:
        validate_file(path)
    assert repr(span) in str(raised.value), raised.value
    result = invoke(path)
    assert result.exit_code == 2 and repr(span) in " ".join(result.output.split())


def test_a_classification_row_without_a_label_needs_one(tmp_path: Path) -> None:
    rows = [
        {"text": "Love this kettle, it boils in a minute.", "label": "positive"},
        {"text": "The toaster broke on the second day.", "label": "negative"},
        {"text": "Arrived on time, nothing special so far.", "label": None},
        {"text": "Not sure yet what to think of the lamp.", "label": []},  # doccano, unlabelled
    ]
    path = tmp_path / "reviews.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = validate_file(path)
    assert result.rubric.name == "classification"
    reports = [report for _, report in result.judged]
    routes = [report.route for report in reports]
    assert routes[:2] == ["accepted", "accepted"] and routes[2:] == ["review", "review"]
    for report in reports[2:]:
        (finding,) = report.findings
        assert finding.check == "correctness_label_in_taxonomy"
        assert "no document label" in finding.message
    # a NER row has no document label to miss
    ner = tmp_path / "ner.jsonl"
    ner.write_text(json.dumps({"text": "Ada Lovelace wrote it.", "spans": [[0, 12, "PER"]]}) + "\n")
    assert [report.findings for _, report in validate_file(ner).judged] == [[]]


def test_a_classification_row_with_a_blank_label_needs_one(tmp_path: Path) -> None:
    rows = [
        {"text": "Love this kettle, it boils in a minute.", "label": "positive"},
        {"text": "Arrived on time, nothing special so far.", "label": ""},  # an empty cell
        {"text": "Not sure yet what to think of the lamp.", "label": "  "},
    ]
    path = tmp_path / "reviews.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = validate_file(path)
    assert result.rubric.name == "classification"
    reports = [report for _, report in result.judged]
    assert [report.route for report in reports] == ["accepted", "review", "review"]
    for report in reports[1:]:
        (finding,) = report.findings
        assert finding.check == "correctness_label_in_taxonomy"
        assert "no document label" in finding.message
