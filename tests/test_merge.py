"""Merging accepted synthetic samples into real data: ids, categories by name, provenance, refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pycocotools.coco import COCO
from test_balance import make_tiny_coco, run_cli

from synthgate.datasets.merge import MergeResult, merge_coco, merge_jsonl
from synthgate.errors import InputError


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
        file_prefix="run/",
        result=result,
    )
    assert json.dumps(real) == snapshot  # the input is not modified
    assert (
        merged["images"][:6] == real["images"]
        and merged["annotations"][: len(real["annotations"])] == real["annotations"]
    )
    new_images = merged["images"][6:]
    assert [i["id"] for i in new_images] == [107, 108]  # after the largest real id
    assert [i["file_name"] for i in new_images] == ["run/images/s1.png", "run/images/s3.png"]
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
    prefix = ""
    if case == "merged-twice":
        real = merge_coco(real, synthetic)
    elif case == "file-name-taken":
        synthetic["images"][0]["file_name"] = "img_101.png"
    elif case == "unknown-class":
        synthetic = _synthetic(["accepted"], category="hexagon")
    elif case == "ambiguous-real-class":
        real["categories"].append({"id": 9, "name": "disc"})
    with pytest.raises(InputError) as error:
        merge_coco(real, synthetic, file_prefix=prefix)
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
        '{"id": "r1", "text": "Gr\\u00fc\\u00dfe", "label": "pos",  "x": 1.10}\n',
        '{"id":"r2","text":"meh","label":"neg"}',
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
        merge_jsonl(lines, rows)
    with pytest.raises(InputError, match=r"row ids already used.*'r1'"):
        merge_jsonl(real_lines, [{**rows[0], "id": "r1"}])


def test_merge_command_merges_a_finished_run(tmp_path: Path) -> None:
    coco, images = make_tiny_coco(tmp_path / "real")
    config = {
        "name": "cp",
        "seed": 2,
        "categories": ["square", "disc", "tri"],
        "image": {"generator": "copy_paste", "count": 4, "coco": str(coco), "images": str(images)},
    }
    (tmp_path / "cp.yaml").write_text(yaml.safe_dump(config))
    run = run_cli("run", str(tmp_path / "cp.yaml"), "--out", str(tmp_path / "runs" / "cp"))
    assert run.returncode == 0, run.stderr
    out = tmp_path / "merged" / "train.json"
    merged = run_cli(
        "merge",
        "--real",
        str(coco),
        "--synthetic",
        str(tmp_path / "runs" / "cp"),
        "--out",
        str(out),
    )
    assert merged.returncode == 0, merged.stderr
    data = COCO(str(out)).dataset
    real = json.loads(coco.read_text())
    assert data["images"][:6] == real["images"]
    synthetic = data["images"][6:]
    assert len(synthetic) == 4
    for image in synthetic:
        assert (out.parent / image["file_name"]).is_file()
        assert image["synthgate"]["synthetic"] is True
    again = run_cli(
        "merge",
        "--real",
        str(out),
        "--synthetic",
        str(tmp_path / "runs" / "cp"),
        "--out",
        str(tmp_path / "twice.json"),
    )
    assert (
        again.returncode == 2
        and "already merged" in again.stderr
        and "Traceback" not in again.stderr
    )
    assert not (tmp_path / "twice.json").exists()
    same = run_cli(
        "merge",
        "--real",
        str(coco),
        "--synthetic",
        str(tmp_path / "runs" / "cp"),
        "--out",
        str(coco),
    )
    assert same.returncode == 2 and "is the real file" in same.stderr
