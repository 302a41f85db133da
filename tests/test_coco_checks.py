"""`find_coco_problems`: the count `progress` moves by (image files, then annotations)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from balance_fixtures import make_tiny_coco

from synthgate.formats import coco_checks
from synthgate.formats.coco_checks import find_coco_problems


@pytest.mark.parametrize("with_files", [True, False])
def test_progress_counts_image_files_then_annotations_once_each(
    with_files: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(coco_checks, "PROGRESS_EVERY", 2)
    monkeypatch.setattr(coco_checks, "ANNOTATIONS_EVERY", 4)
    coco, images = make_tiny_coco(tmp_path)
    data = json.loads(coco.read_text())
    files = len(data["images"]) if with_files else 0  # no folder: no file is read
    total = files + len(data["annotations"])
    events: list[tuple[int, int]] = []
    problems = find_coco_problems(
        data,
        images_dir=images if with_files else None,
        progress=lambda done, total: events.append((done, total)),
    )
    assert problems == []
    image_steps = [*range(2, files, 2), files] if files else []
    annotation_steps = [files + n for n in range(4, len(data["annotations"]), 4)] + [total]
    assert events == [(n, total) for n in [0, *image_steps, *annotation_steps]]


def _refusal(data: dict, **options: bool) -> str:
    from synthgate.errors import InputError

    with pytest.raises(InputError) as raised:
        coco_checks.check_coco(data, source=Path("x.json"), images_dir=None, **options)
    return str(raised.value)


def test_the_fix_offered_is_one_that_can_work(tmp_path: Path) -> None:
    """Skipping bad entries is offered only where it helps: never for categories (they cannot
    be skipped), never where the caller cannot skip (a copy_paste source: `run` has no such
    option)."""
    coco_path, _ = make_tiny_coco(tmp_path)
    data = json.loads(coco_path.read_text())
    names = [dict(c, name="person") for c in data["categories"][:2]] + data["categories"][2:]
    twice = {**data, "categories": names}
    for options in ({}, {"skip_invalid": True}):
        message = _refusal(twice, **options)
        assert "fix the categories (they cannot be skipped)" in message
        assert "skip_invalid" not in message
    duplicate = {**data, "images": data["images"] + data["images"][:1]}
    assert "pass skip_invalid=True to leave them out" in _refusal(duplicate)
    message = _refusal(duplicate, can_skip=False)
    assert message.endswith("fix these entries") and "skip" not in message
    both = {**duplicate, "categories": names}
    assert "and these entries, or leave the entries out with skip_invalid=True" in _refusal(both)


def test_a_box_only_file_is_a_clean_file(tmp_path: Path) -> None:
    """CVAT and Roboflow write box-only annotations as `"segmentation": []`, which balance,
    merge and export refused ("must be a list of polygons") while a missing key passed: both
    mean no segmentation. Such an annotation is no copy-paste source either."""
    from synthgate.generators.copy_paste import is_source

    coco_path, images = make_tiny_coco(tmp_path)
    data = json.loads(coco_path.read_text())
    boxes = {**data, "annotations": [dict(a, segmentation=[]) for a in data["annotations"]]}
    assert find_coco_problems(boxes, images_dir=images) == []
    assert not any(is_source(a, min_source_area=1) for a in boxes["annotations"])
    assert any(is_source(a, min_source_area=1) for a in data["annotations"])


def test_an_empty_rle_is_unreadable_to_validate_as_to_balance(tmp_path: Path) -> None:
    """`"segmentation": {}` is not box-only: pycocotools fails on it (KeyError 'counts'), and
    balance, merge and export refuse it. validate read it as no segmentation and accepted the
    object; it now reports the mask unreadable, with the message the strict check gives."""
    import synthgate as sg

    coco_path, _ = make_tiny_coco(tmp_path)
    data = json.loads(coco_path.read_text())
    empty, box_only = data["annotations"][:2]
    empty["segmentation"], box_only["segmentation"] = {}, []
    coco_path.write_text(json.dumps(data))
    refused = {p.entry_id: p.message for p in find_coco_problems(data, images_dir=None)}
    assert refused == {empty["id"]: "RLE segmentation needs `counts` and `size`"}
    report = sg.validate_coco(coco_path)
    unreadable = {
        finding.get("annotation_id"): finding["message"]
        for row in report.rows
        for finding in row["findings"]
        if finding.get("measure") == "mask_unreadable"
    }
    assert list(unreadable) == [empty["id"]]
    assert unreadable[empty["id"]].startswith("segmentation unusable: " + refused[empty["id"]])
