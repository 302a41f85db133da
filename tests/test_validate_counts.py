"""Counts read in the number they take: "1 sample", not "1 samples"."""

from __future__ import annotations

import re

from synthgate.commands import counted
from synthgate.validators.validate import validate_coco


def _one_image_coco() -> dict:
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [2, 2, 3, 3],
                "area": 9,
                "iscrowd": 0,
            }
        ],
        "categories": [{"id": 1, "name": "dot"}],
    }


def test_a_summary_of_one_sample_says_1_sample() -> None:
    summary = validate_coco(_one_image_coco()).summary
    assert "detection: 1 sample, mean score" in summary.table()
    assert "\n1 sample, mean score" in summary.markdown()
    assert "in 1 sample;" in summary.table()  # the 3 px box is small: a finding in one sample
    assert "samples" not in summary.table().replace("findings in samples", "")


def test_counted_takes_the_number_of_its_count() -> None:
    assert [counted(n, "image") for n in (0, 1, 2)] == ["0 images", "1 image", "2 images"]
    assert counted(1, "class", "classes") == "1 class" and counted(3, "class", "classes") == (
        "3 classes"
    )


def _names(shown: str) -> list[str]:
    return re.findall(r"(\w+)=", shown)


def test_the_reprs_name_only_attributes_a_user_can_read() -> None:
    """A notebook prints the result and reads what it printed: the result's repr printed the
    summary's counts as its own (result.mean_score was a bare AttributeError) and the summary's
    finding_kinds= and dataset_findings=, attributes of neither. Each name is an attribute of
    what it is printed on now; the counts nest under summary=<...>."""
    result = validate_coco(_one_image_coco())
    summary = result.summary
    assert [name for name in _names(repr(summary)) if not hasattr(summary, name)] == []
    assert f"mean_score={summary.mean_score}," in repr(summary)
    assert "findings=<1 group>, dataset=<0 findings>)" in repr(summary)
    shown = re.fullmatch(r"ValidationResult\((.*)summary=<(.*)>, reports=1\)", repr(result))
    assert shown is not None, repr(result)
    outer, inner = shown.groups()
    assert [name for name in _names(outer) if not hasattr(result, name)] == []
    assert [name for name in _names(inner) if not hasattr(summary, name)] == []
    assert "samples=1, mean_score=" in inner
    unkept = validate_coco(_one_image_coco(), keep_reports=False)
    assert repr(unkept).endswith(", reports=<not kept>)")
