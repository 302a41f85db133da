"""`synthgate export` refusals: every bad input exits 2 with one message naming the entry or
file and the fix, and writes nothing; a failure part-way (an unreadable or vanished image, a
full disk) does the same and leaves an earlier export exactly as it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from export_fixtures import export, files_under, write_coco


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_coco(tmp_path / "src")


def test_force_refuses_an_export_that_holds_source(source: Path, tmp_path: Path) -> None:
    out = source.parent  # the export is written beside the COCO file it came from
    (out / ".synthgate-export.json").write_text("{}")
    before = files_under(tmp_path)
    result = export(str(source), "-f", "yolo", "-o", str(out), "--no-copy-images", "--force")
    assert result.exit_code == 2, result.output
    assert "which replacing it would delete" in " ".join(result.output.split())
    assert files_under(tmp_path) == before


def _no_link(src: Path, dst: Path) -> None:
    raise OSError(18, "Invalid cross-device link", str(src), None, str(dst))


def _unreadable(src: Path, dst: Path) -> None:
    raise PermissionError(13, "Permission denied", str(src))


def _gone(src: Path, dst: Path) -> None:  # removed between the check and the copy
    Path(src).unlink()
    raise FileNotFoundError(2, "No such file or directory", str(src))


def _disk_full(*args: Any, **kwargs: Any) -> str:
    raise OSError(28, "No space left on device")


# what fails ({dotted name: replacement}), words the message holds
FAILURE_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "unreadable image",  # the link fails, then so does the copy
        {
            "synthgate.formats.exports.os.link": _no_link,
            "synthgate.formats.exports.shutil.copy2": _unreadable,
        },
        ["a/000001.png: Permission denied"],
    ),
    (
        "image removed",
        {"synthgate.workflows.export.place_image": _gone},
        ["a/000001.png: No such file or directory"],
    ),
    (
        "full disk",
        {"synthgate.workflows.export.yolo_data_yaml": _disk_full},
        ["out: No space left on device"],
    ),
]


@pytest.mark.parametrize(
    ("failures", "words"),
    [case[1:] for case in FAILURE_CASES],
    ids=[case[0] for case in FAILURE_CASES],
)
def test_a_failure_part_way_leaves_the_earlier_export_as_it_was(
    source: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    failures: dict[str, Any],
    words: list[str],
) -> None:
    out = tmp_path / "out"
    images = str(source.parent / "images")
    assert export(str(source), "-f", "voc", "-o", str(out), "--images", images).exit_code == 0
    before = {p: p.read_bytes() for p in files_under(out)}
    for target, failure in failures.items():
        monkeypatch.setattr(target, failure)
    result = export(str(source), "-f", "yolo", "-o", str(out), "--images", images, "--force")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    message = " ".join(result.output.split())
    for word in [*words, "nothing was written"]:
        assert word in message
    assert {p: p.read_bytes() for p in files_under(out)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # no .out.partial


def _text_run(folder: Path) -> None:
    folder.mkdir()
    (folder / "manifest.json").write_text("{}")
    (folder / "text.jsonl").write_text("")


def _text_output(folder: Path, marker: str) -> None:
    """A text balance or merge output: its marker beside merged.jsonl, no merged.coco.json."""
    folder.mkdir()
    (folder / marker).write_text("{}")
    (folder / "merged.jsonl").write_text('{"text": "a", "label": "x"}\n')


def _previous_export(folder: Path) -> None:
    folder.mkdir()
    (folder / ".synthgate-export.json").write_text("{}")
    (folder / "classes.txt").write_text("old\n")


# name, how to prepare tmp_path (given the COCO path), the arguments, words the message holds
ERROR_CASES: list[tuple[str, Any, list[str], list[str]]] = [
    ("missing source", None, ["{tmp}/nowhere", "-f", "yolo"], ["nowhere: not found"]),
    (
        "folder without a COCO file",
        lambda tmp, coco: (tmp / "empty").mkdir(),
        ["{tmp}/empty", "-f", "yolo"],
        ["no COCO file found", "accepted.coco.json", "merged.coco.json"],
    ),
    (
        "text-only run",
        lambda tmp, coco: _text_run(tmp / "textrun"),
        ["{tmp}/textrun", "-f", "voc"],
        [  # merge's own flags: without --out it refused to run
            "textrun: a text run",
            "export writes image datasets",
            "synthgate merge --real YOUR.jsonl --synthetic ",
            "textrun --out merged/",
        ],
    ),
    (  # it said "a text-only run", of a balance output
        "text balance output",
        lambda tmp, coco: _text_output(tmp / "balanced", "balance.json"),
        ["{tmp}/balanced", "-f", "yolo"],
        ["balanced: a text balance output", "merged.jsonl is the balanced dataset"],
    ),
    (
        "text merge output",
        lambda tmp, coco: _text_output(tmp / "merged", "merge.json"),
        ["{tmp}/merged", "-f", "coco"],
        ["merged: a text merge output", "merged.jsonl is the merged dataset"],
    ),
    (
        "run without its COCO file",
        lambda tmp, coco: (tmp / "run").mkdir() or (tmp / "run" / "manifest.json").write_text(""),
        ["{tmp}/run", "-f", "voc"],
        ["synthgate run but without accepted.coco.json"],
    ),
    (
        "missing images",
        None,
        ["{coco}", "-f", "yolo"],  # file_names are relative to images/, not the COCO folder
        [
            "a/000001.png: image file not found",
            "none of the 4 images",
            "; a/000001.png is in ",  # where it is, when just below (src/images)
            "as --images, or --no-copy-images to",
        ],
    ),
    (
        "one image missing",
        lambda tmp, coco: (coco.parent / "images" / "c" / "other.png").unlink(),
        ["{coco}", "-f", "voc", "--images", "{tmp}/src/images"],
        ["images[2] (id 3): image file missing:", "c/other.png", "--skip-invalid"],
    ),
    (
        "--images not a folder",
        None,
        ["{coco}", "-f", "yolo", "--images", "{coco}"],
        ["coco.json: is a file, not a folder; pass the folder of the images"],
    ),
    (
        "out not empty, not an export",
        lambda tmp, coco: (tmp / "out").mkdir() or (tmp / "out" / "keep.txt").write_text("x"),
        ["{coco}", "-f", "yolo", "--no-copy-images", "--force"],
        ["not a synthgate export"],
    ),
    (
        "earlier export without --force",
        lambda tmp, coco: _previous_export(tmp / "out"),
        ["{coco}", "-f", "yolo", "--no-copy-images"],
        ["earlier export", "--force"],
    ),
    (
        "one file_name twice",
        lambda tmp, coco: coco.write_text(coco.read_text().replace("c/empty.png", "c/other.png")),
        ["{coco}", "-f", "voc", "--no-copy-images"],
        ["(c/other.png) and 4 (c/other.png) would both be exported as", "its own file_name"],
    ),
    ("unknown format", None, ["{coco}", "-f", "tiff"], ["'tiff' is not one of"]),
    (
        "layout of another format",
        None,
        ["{coco}", "-f", "yolo", "--layout", "fiftyone", "--no-copy-images"],
        ["--layout fiftyone: applies to --format coco only"],
    ),
    (
        "VOC class with a colon",
        lambda tmp, coco: coco.write_text(coco.read_text().replace('"cat"', '"cat:tabby"')),
        ["{coco}", "-f", "voc", "--no-copy-images"],
        ["VOC's labelmap.txt separates its fields with ':'"],
    ),
    (
        "VOC class with a control character",  # valid JSON, but no XML parser takes it
        lambda tmp, coco: coco.write_text(coco.read_text().replace('"cat"', '"cat\\u0007"')),
        ["{coco}", "-f", "voc", "--no-copy-images"],
        ["classes ['cat\\x07']: hold characters XML cannot", "rename these categories"],
    ),
    (
        "VOC file name with a control character",
        lambda tmp, coco: coco.write_text(
            coco.read_text().replace("c/empty.png", "c/em\\u001bpty.png")
        ),
        ["{coco}", "-f", "voc", "--no-copy-images"],
        [
            "file names ['em\\x1bpty.png'] (1 in all): hold characters XML cannot",
            "rename these files",
        ],
    ),
    (
        "VOC class with a carriage return",  # labelmap.txt would read it as two lines
        lambda tmp, coco: coco.write_text(coco.read_text().replace('"cat"', '"ca\\rt"')),
        ["{coco}", "-f", "voc", "--no-copy-images"],
        ["classes ['ca\\rt']: VOC's labelmap.txt separates", "line breaks"],
    ),
    (
        "YOLO class with a line break",  # classes.txt would shift every later class's index
        lambda tmp, coco: coco.write_text(coco.read_text().replace('"cat"', '"c\\nat"')),
        ["{coco}", "-f", "yolo", "--no-copy-images"],
        ["classes ['c\\nat']: YOLO's classes.txt holds one class a line", "rename these"],
    ),
    (  # Ultralytics passed them over with their labels: 4 of 7 images trained, not a word
        "YOLO images Ultralytics does not read",
        lambda tmp, coco: coco.write_text(
            coco.read_text().replace("c/other.png", "c/other.gif").replace("c/empty.png", "c/empty")
        ),
        ["{coco}", "-f", "yolo", "--no-copy-images"],
        ["images ['other.gif', 'empty'] (2 in all) have no suffix Ultralytics reads", ".png"],
    ),
    (
        "class with a lone surrogate",  # valid JSON, but no UTF-8 file can hold it
        lambda tmp, coco: coco.write_text(coco.read_text().replace('"cat"', '"cat\\ud800"')),
        ["{coco}", "-f", "yolo", "--no-copy-images"],
        ["categories[0] (id 3): name 'cat\\ud800' holds a lone surrogate", "fix the name"],
    ),
    (
        "file name with a lone surrogate",
        lambda tmp, coco: coco.write_text(
            coco.read_text().replace("c/empty.png", "c/em\\udc00pty.png")
        ),
        ["{coco}", "-f", "yolo", "--no-copy-images"],
        ["file_name 'c/em\\udc00pty.png' holds a lone surrogate", "fix the name"],
    ),
    (
        "dangling category",
        lambda tmp, coco: coco.write_text(
            coco.read_text().replace('"category_id": 3', '"category_id": 4')
        ),
        ["{coco}", "-f", "yolo", "--no-copy-images"],
        ["category_id 4 is not the id of any category"],
    ),
    (
        "category without an id",
        lambda tmp, coco: coco.write_text(
            coco.read_text().replace('{"id": 3, "name": "cat"}', '{"name": "cat"}')
        ),
        ["{coco}", "-f", "yolo", "--no-copy-images"],
        ["categories[0] (id None): id is missing"],
    ),
    (
        "box of NaN and infinity",
        lambda tmp, coco: coco.write_text(
            coco.read_text()
            .replace("[10, 5, 20, 10]", "[10, NaN, 20, 10]")
            .replace("[50, 20, 40, 25]", "[50, 20, Infinity, 25]")
        ),
        ["{coco}", "-f", "voc", "--no-copy-images"],
        [
            "annotations[0] (id 1): bbox must be [x, y, w, h], finite numbers",
            "[10, nan, 20, 10]",
            "annotations[1] (id 2)",
        ],
    ),
    (
        "file_name ending in ..",
        lambda tmp, coco: coco.write_text(coco.read_text().replace("c/empty.png", "c/..")),
        ["{coco}", "-f", "voc", "--no-copy-images"],
        ["file_name 'c/..' climbs out of its folder with '..'"],
    ),
    (
        "iscrowd not 0 or 1",  # "0" read as true: the box was left out as a crowd region
        lambda tmp, coco: coco.write_text(
            coco.read_text().replace('"iscrowd": 0', '"iscrowd": "0"', 1)
        ),
        ["{coco}", "-f", "yolo", "--no-copy-images"],
        ["annotations[0] (id 1): iscrowd must be 0 or 1 (got '0')"],
    ),
    (
        "true as a category id and as coordinates",  # JSON true == 1 in Python
        lambda tmp, coco: coco.write_text(
            coco.read_text()
            .replace('"category_id": 3', '"category_id": true', 1)
            .replace("[50, 20, 40, 25]", "[true, true, true, true]")
        ),
        ["{coco}", "-f", "coco", "--no-copy-images"],
        ["category_id True is not the id of any category", "annotations[1] (id 2): bbox must be"],
    ),
    (
        "YOLO class with a line break YAML reads (U+0085)",
        lambda tmp, coco: coco.write_text(coco.read_text().replace('"cat"', '"c\\u0085at"')),
        ["{coco}", "-f", "yolo", "--no-copy-images"],
        ["classes ['c\\x85at']: YOLO's classes.txt holds one class a line"],
    ),
    (
        "YOLO class with a tab",  # the one class-name rule of configs and balance
        lambda tmp, coco: coco.write_text(coco.read_text().replace('"cat"', '"c\\tat"')),
        ["{coco}", "-f", "yolo", "--no-copy-images"],
        ["classes ['c\\tat']", "a control character or line break"],
    ),
    (
        "YOLO class with a blank name",  # a blank line in classes.txt
        lambda tmp, coco: coco.write_text(coco.read_text().replace('"cat"', '" "')),
        ["{coco}", "-f", "yolo", "--no-copy-images"],
        ["classes [' ']", "are blank"],
    ),
    (
        "NaN in a field exported as it is",  # Python's json writes it; strict readers refuse it
        lambda tmp, coco: coco.write_text(
            coco.read_text().replace('"name": "cat"', '"name": "cat", "supercategory": NaN')
        ),
        ["{coco}", "-f", "coco", "--no-copy-images", "--skip-invalid"],
        ["coco.json: 1 value(s) are NaN", "categories[0] (id 3): supercategory is NaN"],
    ),
    (  # json reads it as inf, and would write it back as Infinity
        "number beyond a float's range in a field exported as it is",
        lambda tmp, coco: coco.write_text(
            coco.read_text().replace('"name": "cat"', '"name": "cat", "weight": 1e999')
        ),
        ["{coco}", "-f", "coco", "--no-copy-images", "--skip-invalid"],
        ["1 value(s) are NaN or Infinity", "categories[0] (id 3): weight is Infinity"],
    ),
    (
        "VOC class with a blank name",  # the one class-name rule of configs and balance
        lambda tmp, coco: coco.write_text(coco.read_text().replace('"cat"', '" "')),
        ["{coco}", "-f", "voc", "--no-copy-images"],
        ["classes [' ']", "or are blank"],
    ),
    (
        "no images",
        lambda tmp, coco: coco.write_text(
            json.dumps({**json.loads(coco.read_text()), "images": [], "annotations": []})
        ),
        ["{coco}", "-f", "yolo", "--no-copy-images"],
        ["coco.json: no images to export"],
    ),
    (  # read as COCO, it was "not valid JSON (line 2, column 1: Extra data)"
        "a text JSONL file",
        lambda tmp, coco: (tmp / "rows.jsonl").write_text('{"text": "a"}\n{"text": "b"}\n'),
        ["{tmp}/rows.jsonl", "-f", "yolo"],
        ["rows.jsonl: is a text JSONL file, and export writes image datasets"],
    ),
    (
        "out is a symlink",
        lambda tmp, coco: _previous_export(tmp / "real") or (tmp / "out").symlink_to(tmp / "real"),
        ["{coco}", "-f", "yolo", "--no-copy-images", "--force"],
        ["out: is a symlink; give a real folder"],
    ),
]


@pytest.mark.parametrize(
    ("prepare", "args", "words"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_bad_input_exits_2_and_writes_nothing(
    source: Path, tmp_path: Path, prepare: Any, args: list[str], words: list[str]
) -> None:
    if prepare is not None:
        prepare(tmp_path, source)
    before = {p.name for p in tmp_path.iterdir()}
    if (tmp_path / "out").is_dir():
        before_out = sorted(p.name for p in (tmp_path / "out").iterdir())
    filled = [a.format(tmp=tmp_path, coco=source) for a in args]
    result = export(*filled, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    message = " ".join(result.output.split())
    for word in words:
        assert word in message
    assert {p.name for p in tmp_path.iterdir()} == before  # no out, no .out.partial
    if "out" in before:
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before_out


def test_out_inside_the_images_folder_is_refused(source: Path, tmp_path: Path) -> None:
    images = tmp_path / "src" / "images"
    before = files_under(tmp_path)
    result = export(str(source), "-f", "coco", "--images", str(images), "-o", str(images / "x"))
    assert result.exit_code == 2, result.output
    assert "lies inside the images folder" in " ".join(result.output.split())
    assert files_under(tmp_path) == before


@pytest.mark.parametrize("which", ["source", "images", "out"])
def test_a_name_no_file_system_takes_is_refused(source: Path, tmp_path: Path, which: str) -> None:
    """A name over 255 bytes made stat() raise before the length check (a traceback)."""
    long = tmp_path / ("n" * 300)
    args = {"source": str(source), "images": str(tmp_path / "src" / "images"), "out": "x"}
    args[which] = str(long)
    result = export(args["source"], "-f", "coco", "--images", args["images"], "-o", args["out"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "nnnnnnnnnn" in result.output


def test_iscrowd_as_false_true_or_float_is_read_as_before(source: Path, tmp_path: Path) -> None:
    """Some tools write iscrowd as a JSON boolean; COCOeval reads int(iscrowd) either way."""
    text = source.read_text()
    source.write_text(
        text.replace('"iscrowd": 0', '"iscrowd": false').replace('"iscrowd": 1', '"iscrowd": 1.0')
    )
    result = export(str(source), "-f", "yolo", "--no-copy-images", "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output


def test_nan_is_refused_only_where_it_would_be_written(source: Path, tmp_path: Path) -> None:
    """YOLO and VOC write no extra field, so a NaN in one does not stop them; --skip-invalid
    still leaves out an entry whose box is NaN (the box check names it) and exports the rest."""
    data = json.loads(source.read_text())
    data["images"][0]["license"] = float("nan")
    source.write_text(json.dumps(data))
    for fmt in ("yolo", "voc"):
        result = export(str(source), "-f", fmt, "--no-copy-images", "-o", str(tmp_path / fmt))
        assert result.exit_code == 0, result.output
    refused = export(
        str(source), "-f", "coco", "--no-copy-images", "--skip-invalid", "-o", str(tmp_path / "c")
    )
    assert refused.exit_code == 2 and "images[0] (id 1): license is NaN" in refused.output
    assert not (tmp_path / "c").exists()
    data["images"][0].pop("license")
    data["annotations"][0]["bbox"][1] = float("nan")
    source.write_text(json.dumps(data))
    out = tmp_path / "skipped"
    kept = export(str(source), "-f", "yolo", "--no-copy-images", "--skip-invalid", "-o", str(out))
    assert kept.exit_code == 0, kept.output
    assert "annotations[0] (id 1): bbox must be" in " ".join(kept.output.split())
    lines = [line for f in (out / "labels").rglob("*.txt") for line in f.read_text().splitlines()]
    assert len(lines) == len(data["annotations"]) - 1 - sum(
        a["iscrowd"] for a in data["annotations"]
    )
