"""Balancing: counts, targets, deficits, attribute quotas and the plan.

The tiny COCO fixture lives in balance_fixtures.py; `synthgate balance` end to end is in
test_balance_cli.py and bad input in test_balance_inputs.py.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

# Re-exported: test_merge, test_report, test_copy_paste and others import these from here.
from balance_fixtures import make_tiny_coco

from synthgate.config import MAX_COUNT
from synthgate.errors import InputError
from synthgate.workflows.quotas import (
    AttributeGoal,
    ClassCount,
    assign_attributes,
    attribute_shares,
    class_counts,
    class_targets,
    deficits,
    label_counts,
    parse_target,
    plan_specs,
    split_deficits,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_tiny_coco(tmp_path_factory.mktemp("tiny"))


# --- counts, targets, deficits ---------------------------------------------------------------


def test_class_counts_leave_crowds_out_and_keep_empty_classes(tiny: tuple[Path, Path]) -> None:
    counts = class_counts(json.loads(tiny[0].read_text()))
    assert counts == {
        "square": ClassCount(instances=7, images=5),
        "disc": ClassCount(3, 3),
        "tri": ClassCount(1, 1),
        "blob": ClassCount(0, 0),
    }


COUNTS = {
    "a": ClassCount(100, 50),
    "b": ClassCount(10, 10),
    "c": ClassCount(3, 1),
    "d": ClassCount(0, 0),
}

TARGET_CASES = [
    ("max", {"a": 100, "b": 100, "c": 100, "d": 100}),
    ("median", {"a": 10, "b": 10, "c": 10, "d": 10}),  # median of the classes present
    (25, {"a": 25, "b": 25, "c": 25, "d": 25}),
    # LVIS: f = images/100; r = max(1, sqrt(0.1 / f)): a 1, b 1, c sqrt(10) -> ceil(3 * 3.162)
    ("repeat_factor", {"a": 100, "b": 10, "c": 10, "d": 0}),
]


@pytest.mark.parametrize(
    ("target", "expected"), TARGET_CASES, ids=[str(c[0]) for c in TARGET_CASES]
)
def test_class_targets(target: str | int, expected: dict[str, int]) -> None:
    assert class_targets(COUNTS, target, image_count=100, repeat_threshold=0.1) == expected


def test_targets_from_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "targets.yaml"
    path.write_text("c: 40\nd: 5\n")
    targets = class_targets(COUNTS, parse_target(str(path)), image_count=100)
    assert targets == {"a": 100, "b": 10, "c": 40, "d": 5}
    assert deficits(COUNTS, targets) == {"a": 0, "b": 0, "c": 37, "d": 5}


BAD_TARGETS = [
    ("largest", "choose max, median"),
    ("0", "must be > 0"),
    ("missing.yaml", "file not found"),
]


@pytest.mark.parametrize(("value", "words"), BAD_TARGETS)
def test_bad_targets_are_clear_errors(value: str, words: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=words):
        parse_target(value)


def test_yaml_target_with_unknown_class_names_it(tmp_path: Path) -> None:
    path = tmp_path / "targets.yaml"
    path.write_text("zebra: 4\n")
    with pytest.raises(InputError, match="zebra"):
        class_targets(COUNTS, path, image_count=100)


def test_yaml_target_beyond_any_batch_is_refused_naming_the_class(tmp_path: Path) -> None:
    # was taken as given: the plan of 10^11 specs grew in memory until the machine gave out
    path = tmp_path / "targets.yaml"
    path.write_text("b: 20\nc: 99999999999\n")
    with pytest.raises(InputError) as refused:
        class_targets(COUNTS, path, image_count=100)
    assert str(path) in str(refused.value)
    assert "'c': 99999999999" in str(refused.value) and str(MAX_COUNT) in str(refused.value)
    assert "'b'" not in str(refused.value)


def test_deficits_beyond_any_batch_together_are_refused() -> None:
    # every class within a batch, all of them not: the plan would be built in memory first
    targets = dict.fromkeys(COUNTS, MAX_COUNT)
    with pytest.raises(InputError, match=f"more than a batch holds \\({MAX_COUNT}\\)"):
        deficits(COUNTS, targets)
    assert sum(deficits(COUNTS, targets, max_new_per_class=MAX_COUNT // 4).values()) > 0


def test_deficits_respect_classes_and_cap() -> None:
    targets = dict.fromkeys(COUNTS, 50)
    assert deficits(COUNTS, targets) == {"a": 0, "b": 40, "c": 47, "d": 50}
    assert deficits(COUNTS, targets, classes=["c"], max_new_per_class=20) == {
        "a": 0,
        "b": 0,
        "c": 20,
        "d": 0,
    }


def test_label_counts_of_text_rows() -> None:
    rows = [{"label": "pos"}, {"label": "neg"}, {"label": "pos"}]
    assert label_counts(rows, label_field="label") == {
        "pos": ClassCount(2, 2),
        "neg": ClassCount(1, 1),
    }


# --- attributes and the plan -------------------------------------------------------------------


def test_assign_attributes_closes_the_gap_first() -> None:
    shares = attribute_shares({"gender": ["female", "male"]})
    existing = {"gender": Counter({"male": 6, "female": 2})}
    chosen = [a["gender"] for a in assign_attributes(6, shares, existing)]
    assert chosen == ["female"] * 4 + ["female", "male"]
    assert Counter(chosen) + existing["gender"] == Counter({"female": 7, "male": 7})


def test_a_limited_value_is_planned_only_as_often_as_it_can_be_made() -> None:
    """A class whose rows flip only to male was still planned female rows (the rewrites were
    flipped to male), so the plan reckoned the groups' label rates wrong for the classes after
    it. Once every value is at its limit, all are open again."""
    shares = attribute_shares({"gender": ["female", "male"]})
    existing = {"gender": Counter({"male": 6, "female": 2})}
    limits = {"gender": {"female": 1}}
    chosen = [a["gender"] for a in assign_attributes(6, shares, existing, limits=limits)]
    assert chosen == ["female"] + ["male"] * 5
    none = {"gender": {"female": 0, "male": 2}}
    chosen = [a["gender"] for a in assign_attributes(4, shares, existing, limits=none)]
    assert chosen == ["male", "male", "female", "female"]
    specs = plan_specs(
        {"neg": 4, "pos": 2},
        batch_id="b",
        seed=3,
        modality="text",
        generator="counterfactual",
        shares=shares,
        existing={"neg": existing, "pos": existing},
        attribute_goal="label_parity",
        limits={"neg": {"gender": {"female": 0, "male": 6}}},
    )
    assert [(s.category, s.attributes["gender"]) for s in specs][:4] == [("neg", "male")] * 4


def test_assign_attributes_follows_weighted_shares() -> None:
    shares = attribute_shares({"locale": {"en_US": 1, "de_DE": 1, "ja_JP": 2}})
    chosen = Counter(a["locale"] for a in assign_attributes(40, shares))
    assert chosen == {"en_US": 10, "de_DE": 10, "ja_JP": 20}


def test_plan_specs_adds_exactly_the_deficit() -> None:
    specs = plan_specs(
        {"tri": 7, "disc": 2, "square": 0},
        batch_id="b",
        seed=3,
        modality="image",
        generator="copy_paste",
        instances_per_sample=3,
        shares=attribute_shares({"light": ["day", "night"]}),
    )
    assert [s.index for s in specs] == list(range(len(specs)))
    assert [(s.category, s.params["instances"]) for s in specs] == [
        ("tri", 3),
        ("tri", 3),
        ("tri", 1),
        ("disc", 2),
    ]
    assert len({s.seed for s in specs}) == len(specs)
    assert [s.attributes["light"] for s in specs[:3]] == ["day", "night", "day"]
    again = plan_specs(
        {"tri": 7, "disc": 2},
        batch_id="b",
        seed=3,
        modality="image",
        generator="copy_paste",
        instances_per_sample=3,
    )
    assert [s.seed for s in again] == [s.seed for s in specs]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["female", "male"], {"female": 3, "male": 3}),
        ({"en_US": 1, "de_DE": 1, "ja_JP": 2}, {"en_US": 2, "de_DE": 1, "ja_JP": 3}),
    ],
    ids=["equal", "weighted"],
)
def test_a_plan_of_many_small_deficits_spreads_the_attribute_values(
    values: list[str] | dict[str, float], expected: dict[str, int]
) -> None:
    """Six classes short of one sample each (a median balance of COCO: one copy-paste image
    a class) took the first value every time: `balance --config` with `attributes: {gender:
    [a, b]}` gave all 39 synthetic images gender a. Each class keeps its own gap first; what
    is left to choose follows the plan's values so far."""
    axis = "gender" if isinstance(values, list) else "locale"
    specs = plan_specs(
        dict.fromkeys("abcdef", 3),
        batch_id="b",
        seed=3,
        modality="image",
        generator="copy_paste",
        instances_per_sample=3,
        shares=attribute_shares({axis: values}),
    )
    assert Counter(s.attributes[axis] for s in specs) == expected


def test_label_parity_plans_the_raised_class_after_the_mix_of_the_others() -> None:
    """Text balancing's goal: a class at its target holds two women to one man, so new rows of
    the raised class split half and half widen the gap in its rate between the genders; planned
    for the rates, they follow the other class's mix (the shares only break ties)."""
    existing = {
        "positive": {"gender": Counter({"female": 40, "male": 20})},
        "negative": {"gender": Counter({"female": 9, "male": 9})},
    }
    shares = attribute_shares({"gender": ["female", "male"]})

    def planned(goal: AttributeGoal) -> Counter[str]:
        specs = plan_specs(
            {"positive": 0, "negative": 32},
            batch_id="b",
            seed=3,
            modality="text",
            generator="counterfactual",
            shares=shares,
            existing=existing,
            attribute_goal=goal,
        )
        return Counter(s.attributes["gender"] for s in specs)

    assert planned("shares") == {"female": 16, "male": 16}
    parity = planned("label_parity")
    # negative: 33 of 73 women, 17 of 37 men (0.452, 0.459); half and half: 0.385, 0.556
    assert parity == {"female": 24, "male": 8}


def test_split_deficits_between_generators() -> None:
    assert split_deficits({"a": 5, "b": 1}, 2) == [{"a": 3, "b": 1}, {"a": 2, "b": 0}]


def _gaps_by_recounting(
    rows: dict[str, Counter[str]], label: str, value: str
) -> tuple[float, float]:
    """The largest and summed label-rate gaps with one row (label, value) added, counted anew."""
    grown = {v: Counter(c) for v, c in rows.items()}
    grown.setdefault(value, Counter())[label] += 1
    gaps = []
    for each in set().union(*grown.values()):
        rates = [c[each] / sum(c.values()) for c in grown.values()]
        gaps.append(max(rates) - min(rates))
    return round(max(gaps), 9), round(sum(gaps), 9)


def test_label_groups_weigh_each_candidate_as_a_recount_would() -> None:
    """gaps_with_each reads each label's other groups once (two highest, two lowest rates);
    checked against counting every group anew, with candidates old and new, on random data."""
    from synthgate.workflows.quotas import LabelGroups

    rng = np.random.default_rng(3)
    for _ in range(200):
        values = [f"v{i}" for i in range(int(rng.integers(1, 6)))]
        labels = [f"l{i}" for i in range(int(rng.integers(1, 5)))]
        rows: dict[str, Counter[str]] = {}
        for _ in range(int(rng.integers(1, 30))):
            value, label = str(rng.choice(values)), str(rng.choice(labels))
            rows.setdefault(value, Counter())[label] += 1
        groups = LabelGroups({v: Counter(c) for v, c in rows.items()})
        candidates = [*values, "new"]
        label = str(rng.choice([*labels, "unseen"]))
        assert groups.gaps_with_each(label, candidates) == {
            value: _gaps_by_recounting(rows, label, value) for value in candidates
        }


def test_sections_of_one_generator_make_different_samples(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """Two copy_paste sections share each deficit: each draws its own seeds, so the same class
    at the same index is not made twice (it was, byte for byte, and merged twice)."""
    import hashlib

    import synthgate

    sections = [{"min_visible_fraction": 0.25}, {"min_visible_fraction": 0.3}]
    result = synthgate.balance(
        tiny[0], images=tiny[1], out=tmp_path / "out", target=7, config={"image": sections}
    )
    merged = json.loads(result.merged.read_text())
    made = [i for i in merged["images"] if (i.get("synthgate") or {}).get("synthetic")]
    by_run = Counter(i["synthgate"]["batch_id"].rsplit("-", 1)[0] for i in made)
    assert by_run == {"balance-0-copy_paste": 2, "balance-1-copy_paste": 2}
    seeds = [i["synthgate"]["seed"] for i in made]
    pixels = [hashlib.sha256((result.out / i["file_name"]).read_bytes()).digest() for i in made]
    assert len(set(seeds)) == len(seeds) and len(set(pixels)) == len(pixels)
    first = json.loads((result.out / "runs/balance-0-copy_paste/manifest.json").read_text())
    assert first["seed"] == 0  # the first section keeps the balance's seed: its samples as before


def test_a_coco_file_with_a_byte_order_mark_balances_as_the_file_without_it(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    import synthgate

    coco, images = tiny
    marked = tmp_path / "marked" / coco.name
    marked.parent.mkdir()
    marked.write_bytes(b"\xef\xbb\xbf" + coco.read_bytes())
    plain = synthgate.balance(coco, images=images, out=tmp_path / "plain", target=7).out
    balanced = synthgate.balance(marked, images=images, out=tmp_path / "from-marked", target=7)
    for name in ("merged.coco.json", "balance.json"):  # balance.json names its source
        written = (balanced.out / name).read_bytes().replace(bytes(marked), bytes(coco))
        assert written == (plain / name).read_bytes(), name


def test_a_class_goes_to_the_copy_paste_sections_that_can_cut_it(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """Sections of different min_source_area: the second has no instance that large, so every
    deficit is the first's (each section was given half, and the second stopped the balance
    midway: "no instance of 'disc' with a mask of at least 1000 px")."""
    import synthgate

    sections = [{}, {"min_source_area": 1000}]
    result = synthgate.balance(
        tiny[0], images=tiny[1], out=tmp_path / "out", target=5, config={"image": sections}
    )
    assert result.summary["runs"] == ["runs/balance-0-copy_paste"]
    classes = result.summary["classes"]
    assert classes["disc"]["planned"] == 2 and classes["tri"]["planned"] == 4
    assert classes["disc"]["after"] >= 5 and classes["tri"]["after"] >= 5
    assert "blob" in classes and "at least 64 px" in classes["blob"]["why_not"]
    assert classes["blob"]["planned"] == 0 < classes["blob"]["deficit"]  # none can cut it


def test_made_for_a_quota_counts_instances_not_crowd_regions(tmp_path: Path) -> None:
    """A pasted instance left too hidden to label is written as a crowd region: it was counted
    as made (so a class that ended short blamed nothing); a background's own object, which a
    plan counts among its class's instances, was not."""
    from synthgate.workflows.balance import _made_for_quota

    bear, dog = 1, 2
    coco = {
        "images": [{"id": 1, "synthgate": {"category": "bear", "status": "accepted"}}],
        "annotations": [
            {"image_id": 1, "category_id": bear, "synthgate": {"pasted": True}},
            {"image_id": 1, "category_id": bear, "iscrowd": 1, "synthgate": {"pasted": True}},
            {"image_id": 1, "category_id": bear, "iscrowd": 1, "synthgate": {"pasted": True}},
            {"image_id": 1, "category_id": bear, "synthgate": {"pasted": False}},
            {"image_id": 1, "category_id": dog, "synthgate": {"pasted": False}},
        ],
        "categories": [{"id": bear, "name": "bear"}, {"id": dog, "name": "dog"}],
    }
    run = tmp_path / "run"
    run.mkdir()
    (run / "coco.json").write_text(json.dumps(coco), encoding="utf-8")
    assert _made_for_quota([run]) == {
        "bear": Counter({"accepted": 2}),
        "dog": Counter({"accepted": 1}),
    }


def test_a_class_short_by_one_says_one_lost_when_other_samples_backgrounds_brought_the_rest(
    tmp_path: Path,
) -> None:
    """copy_paste's plan counts the objects of a class on the backgrounds of every sample, other
    classes' too: coco-tiny's teddy bear (target 30, 27 planned: 9 pasted, 18 on backgrounds of
    other samples, one of which a paste hid) ended 29/30, and balance.json said "18 lost to
    occlusion by other pasted instances", where one was."""
    from synthgate.workflows.balance import _made_for_quota, _shortfall

    bear, dog = 1, 2
    coco = {
        "images": [
            {"id": 1, "synthgate": {"category": "bear", "status": "accepted"}},
            {"id": 2, "synthgate": {"category": "dog", "status": "accepted"}},
        ],
        "annotations": [
            {"image_id": 1, "category_id": bear, "synthgate": {"pasted": True}},
            {"image_id": 2, "category_id": dog, "synthgate": {"pasted": True}},
            {"image_id": 2, "category_id": bear, "synthgate": {"pasted": False}},
            {"image_id": 2, "category_id": bear, "iscrowd": 1, "synthgate": {"pasted": False}},
        ],
        "categories": [{"id": bear, "name": "bear"}, {"id": dog, "name": "dog"}],
    }
    run = tmp_path / "run"
    run.mkdir()
    (run / "coco.json").write_text(json.dumps(coco), encoding="utf-8")
    made = _made_for_quota([run])
    assert made["bear"] == Counter({"accepted": 2})
    said = _shortfall(3, 3, made["bear"], "classes", {"copy_paste"})
    assert said == "1 lost to occlusion by other pasted instances"


@pytest.mark.parametrize(
    ("generators", "words"),
    [
        ({"copy_paste"}, "3 lost to occlusion by other pasted instances"),
        ({"diffusion_object_paste"}, "3 lost to occlusion by other pasted instances"),
        ({"procedural"}, "3 lost to occlusion by other objects drawn over them"),
        ({"copy_paste", "procedural"}, "3 lost to occlusion by other pasted or drawn objects"),
    ],
)
def test_instances_lost_to_occlusion_are_said_in_their_generators_words(
    generators: set[str], words: str
) -> None:
    """Every lost instance was hidden "by other pasted instances", those of a procedural section
    (which pastes nothing: it draws objects over the class's own) too."""
    from synthgate.workflows.balance import _shortfall

    said = _shortfall(5, 5, Counter({"accepted": 2}), "classes", generators)
    assert said == words


@pytest.mark.parametrize("where", ["targets", "classes"])
def test_a_class_named_in_another_case_or_unicode_form_is_said_to_be_written_otherwise(
    tmp_path: Path, where: str
) -> None:
    """A target file (or `classes:`) naming `café` with é as one character, for a dataset whose
    category was written e + a combining accent (macOS file names, some exports): refused as
    "unknown class(es) ['café']; the dataset's classes are [..., 'café', ...]", the same word
    on screen. It says how the dataset writes it, visibly, as it does for `Bear` beside `bear`."""
    from synthgate.workflows.quotas import check_classes, parse_target

    counts = {"cafe\u0301": ClassCount(1, 1), "bear": ClassCount(2, 2), "cat": ClassCount(3, 3)}
    asked = ["caf\u00e9", "Bear"]
    with pytest.raises(InputError) as refused:
        if where == "classes":
            check_classes(asked, counts, source="balance.yaml")
        else:
            path = tmp_path / "targets.yaml"
            path.write_text("caf\u00e9: 4\nBear: 4\n", encoding="utf-8")
            class_targets(counts, parse_target(str(path)), image_count=6)
    said = str(refused.value)
    assert "the dataset writes 'Bear' as 'bear', 'caf\\xe9' as 'cafe\\u0301'" in said, said
