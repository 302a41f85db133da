"""`synthgate balance` before it runs: the plan of a dry run (nothing written, the numbers a real
balance then makes), the warning of a plan far larger than the dataset, an output folder inside
the images folder refused, and the hard links to the real images said."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from balance_fixtures import balance_coco, balance_reviews, make_tiny_coco, run_cli

import synthgate
from synthgate.errors import InputError
from synthgate.workflows.balance import large_plan_warning


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_tiny_coco(tmp_path_factory.mktemp("tiny"))


def _made(out: Path) -> tuple[int, dict[str, int]]:
    """The synthetic images a balance made (accepted or not) and the instances made for each
    class's quota."""
    images = 0
    for run in json.loads((out / "balance.json").read_text())["runs"]:
        images += len(json.loads((out / run / "coco.json").read_text())["images"])
    summary = json.loads((out / "balance.json").read_text())
    return images, {name: entry["planned"] for name, entry in summary["classes"].items()}


def test_a_dry_run_writes_nothing_and_plans_what_balance_then_makes(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    seen: list[dict[str, Any]] = []
    dry = synthgate.balance(tiny[0], images=tiny[1], out=out, target=5, dry_run=True)
    assert not out.exists() and list(tmp_path.iterdir()) == []  # no folder, no database
    plan = dry.summary
    assert plan["dataset_images"] == 6
    assert plan["planned_images"] > 0 and plan["estimated_bytes"] > 0
    assert plan["estimated_bytes"] <= plan["raw_bytes"] == plan["planned_images"] * 3 * 64 * 64
    assert plan["classes"]["tri"] == {"before": 1, "target": 5, "deficit": 4, "planned": 4}

    real = synthgate.balance(tiny[0], images=tiny[1], out=out, target=5, on_plan=seen.append)
    assert seen == [plan]  # the plan a real balance runs is the dry run's
    images, planned = _made(real.out)
    assert images == plan["planned_images"]
    assert planned == {name: entry["planned"] for name, entry in plan["classes"].items()}
    for name, entry in real.summary["classes"].items():
        assert (entry["before"], entry["target"]) == (
            plan["classes"][name]["before"],
            plan["classes"][name]["target"],
        )


def test_a_number_target_stays_a_number_in_the_summary_and_balance_json(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """`target=3` was `summary["target"] == '3'` (and "3" in balance.json): the summary wrote
    str() of the parsed target; a named target and a targets file stay strings."""
    dry = synthgate.balance(tiny[0], images=tiny[1], out=tmp_path / "o", target=3, dry_run=True)
    assert dry.summary["target"] == 3 and "target=3," in repr(dry)
    real = synthgate.balance(tiny[0], images=tiny[1], out=tmp_path / "o", target=3)
    assert real.summary["target"] == 3
    assert json.loads((real.out / "balance.json").read_text())["target"] == 3
    named = synthgate.balance(tiny[0], images=tiny[1], out=tmp_path / "n", dry_run=True)
    assert named.summary["target"] == "median"  # the default's name, as given


def test_a_dry_runs_result_names_no_merged_file(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """A dry run's `.merged` was <out>/merged.coco.json, a file that is never written."""
    out = tmp_path / "out"
    dry = synthgate.balance(tiny[0], images=tiny[1], out=out, target=5, dry_run=True)
    assert dry.merged is None and dry.dry_run
    real = synthgate.balance(tiny[0], images=tiny[1], out=out, target=5)
    assert real.merged == out / "merged.coco.json" and real.merged.is_file()
    assert not real.dry_run


def test_the_cli_dry_run_prints_the_plan_and_writes_nothing(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = balance_coco(tiny[0], tiny[1], out, "--target", "5", "--dry-run")
    assert result.returncode == 0, result.stderr + result.stdout
    assert not out.exists() and list(tmp_path.iterdir()) == []
    text = " ".join(result.stdout.split())
    plan = synthgate.balance(tiny[0], images=tiny[1], out=out, target=5, dry_run=True).summary
    assert "│ tri │ 1 │ 5 │ 4 │" in text
    instances = sum(entry["planned"] for entry in plan["classes"].values())
    assert f"dry run: {instances} instances in {plan['planned_images']} synthetic images" in text
    assert "(the dataset holds 6)" in text and "nothing was written" in text


@pytest.mark.parametrize(
    ("config", "target", "words"),
    [
        (
            None,
            "tri: 1\n",
            "dry run: no class is below its target ({targets}): nothing needs adding",
        ),
        (
            "max_new_per_class: 0\n",
            "tri: 5\n",
            "dry run: nothing can be added to the classes below their target (the config's "
            "classes or max_new_per_class leave them out)",
        ),
    ],
)
def test_a_dry_run_with_nothing_to_add_says_so(
    config: str | None, target: str, words: str, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """A plan of nothing printed 'dry run: 0 instances in 0 synthetic images (the dataset holds
    6), about 0 kB of PNGs (estimated at 60% of their raw RGB size, at most 0 kB)'."""
    targets = tmp_path / "targets.yaml"
    targets.write_text(target)  # the classes it leaves out keep their counts
    extra = ["--target", str(targets), "--dry-run"]
    if config is not None:
        (tmp_path / "balance.yaml").write_text(config)
        extra += ["--config", str(tmp_path / "balance.yaml")]
    out = tmp_path / "out"
    result = balance_coco(tiny[0], tiny[1], out, *extra)
    assert result.returncode == 0, result.stderr + result.stdout
    text = " ".join(result.stdout.split())
    assert f"{words.format(targets=targets)}; nothing was written to {out}" in text, text
    assert "0 instances" not in text and "kB" not in text, text
    assert not out.exists()


def test_the_dry_run_checks_the_dataset_and_the_out_folder(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("mine")
    with pytest.raises(InputError, match="not a synthgate balance output"):
        synthgate.balance(tiny[0], images=tiny[1], out=tmp_path / "full", target=5, dry_run=True)
    broken = tmp_path / "broken.json"
    data = json.loads(tiny[0].read_text())
    data["images"][0]["file_name"] = "gone.png"
    broken.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"gone\.png"):
        synthgate.balance(broken, images=tiny[1], out=tmp_path / "o", target=5, dry_run=True)
    assert not (tmp_path / "o").exists()


def test_a_plan_far_larger_than_the_dataset_is_warned_of_in_one_line(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    plan = {"planned_images": 60, "dataset_images": 6, "estimated_bytes": 10**6}
    assert large_plan_warning(plan) is None  # ten to one: not yet
    assert "61 synthetic images for a dataset of 6" in (
        large_plan_warning({**plan, "planned_images": 61}) or ""
    )
    assert large_plan_warning({**plan, "estimated_bytes": 21 * 10**9}) is not None
    # 3 instances an image: 61 images for 183 instances of tri, none needs more
    result = balance_coco(tiny[0], tiny[1], tmp_path / "big", "--target", "130", "--dry-run")
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning")]
    assert len(warned) == 1 and "see the plan first (--dry-run)" in warned[0]
    quiet = balance_coco(tiny[0], tiny[1], tmp_path / "small", "--target", "5", "--dry-run")
    assert "warning" not in quiet.stderr


@pytest.mark.parametrize("inside", ["sub", "sub/deeper"])
def test_an_out_inside_the_images_folder_is_refused_naming_both(
    tiny: tuple[Path, Path], inside: str
) -> None:
    out = tiny[1] / inside
    result = balance_coco(tiny[0], tiny[1], out, "--target", "5")
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert str(out) in message and f"inside the images folder {tiny[1]}" in message
    assert "Traceback" not in result.stderr
    assert not (tiny[1] / "sub").exists()
    with pytest.raises(InputError, match="inside the images folder"):
        synthgate.balance(tiny[0], images=tiny[1], out=out, target=5, dry_run=True)


def _beside_its_images(tiny: tuple[Path, Path], folder: Path) -> Path:
    """The tiny dataset as data/annotations.json with its file_names under images/ (data/images):
    the COCO file's folder is the folder its file_names are relative to."""
    data = json.loads(tiny[0].read_text())
    for image in data["images"]:
        image["file_name"] = f"images/{image['file_name']}"
    folder.mkdir()
    shutil.copytree(tiny[1], folder / "images")
    (folder / "annotations.json").write_text(json.dumps(data))
    return folder / "annotations.json"


def test_the_images_folder_defaults_to_the_coco_files_folder_and_an_out_beside_the_data_passes(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """As merge and export: --images defaults to the COCO file's folder. Only a folder given as
    --images refuses an --out inside it: the default holds the data and its outputs beside it."""
    coco = _beside_its_images(tiny, tmp_path / "data")
    result = run_cli("balance", "--coco", str(coco), "--out", str(tmp_path / "data" / "balanced"))
    assert result.returncode == 0, result.stderr + result.stdout
    merged = json.loads((tmp_path / "data" / "balanced" / "merged.coco.json").read_text())
    assert len(merged["images"]) > 6
    assert all(
        (tmp_path / "data" / "balanced" / i["file_name"]).is_file() for i in merged["images"]
    )
    plan = synthgate.balance(coco, out=tmp_path / "data" / "again", dry_run=True).summary
    given = synthgate.balance(coco, images=coco.parent, out=tmp_path / "o", dry_run=True).summary
    assert plan == given and plan["dataset_images"] == 6
    assert not (tmp_path / "data" / "again").exists()
    # given as --images, the same folder refuses an --out inside it
    refused = balance_coco(coco, coco.parent, tmp_path / "data" / "other")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "inside the images folder" in " ".join(refused.stderr.split())
    assert not (tmp_path / "data" / "other").exists()
    with pytest.raises(InputError, match="inside the images folder"):
        synthgate.balance(coco, images=coco.parent, out=tmp_path / "data" / "other", dry_run=True)


def test_file_names_under_no_default_images_folder_are_said_once_with_where_they_are(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """annotations.json beside images/, its file_names bare: the default folder holds none of
    them; one line says so and where they are, not one line an image."""
    result = run_cli("balance", "--coco", str(tiny[0]), "--out", str(tmp_path / "o"), "--dry-run")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    assert f"none of the 6 images is under {tiny[0].parent}; img_101.png is in {tiny[1]}" in message
    assert "pass the folder the file_names are relative to as --images" in message
    assert "--no-copy-images" not in message and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_balance_says_its_real_images_are_hard_links(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = balance_coco(tiny[0], tiny[1], out, "--target", "4")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert f"{out / 'images'} holds hard links to the real images" in text
    assert "cp -r" in text
    real = next(tiny[1].iterdir())
    assert (out / "images" / real.name).stat().st_ino == real.stat().st_ino  # what it says
    merged = tmp_path / "merged"
    run = next((out / "runs").iterdir())
    result = run_cli(
        "merge",
        "--real",
        str(tiny[0]),
        "--images",
        str(tiny[1]),
        "--synthetic",
        str(run),
        "--out",
        str(merged),
    )
    assert result.returncode == 0, result.stderr
    assert f"{merged / 'images'} holds hard links" in " ".join(result.stdout.split())
    assert (merged / "images" / real.name).stat().st_ino == real.stat().st_ino
    # merge defaults --images to the COCO file's folder too: where none of the file_names
    # lies, one line says so and where they are (it listed every image as missing)
    result = run_cli(
        "merge", "--real", str(tiny[0]), "--synthetic", str(run), "--out", str(tmp_path / "m2")
    )
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    message = " ".join(result.stderr.split())
    assert f"none of the 6 images is under {tiny[0].parent}; img_101.png is in {tiny[1]}" in message
    assert not (tmp_path / "m2").exists()


def test_a_dry_run_of_texts_is_refused_not_ignored(tmp_path: Path) -> None:
    rows = [{"review": "Great value.", "sentiment": s} for s in ("pos", "pos", "neg")]
    (tmp_path / "reviews.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = balance_reviews(tmp_path / "reviews.jsonl", tmp_path / "out", "--dry-run")
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "--dry-run: applies to images" in message
    # why (it said only that), and what to do instead
    assert "a text balance cannot be planned without generating" in message
    assert "leave it out and balance into a scratch out folder" in message
    assert not (tmp_path / "out").exists() and "Traceback" not in result.stderr


def test_the_library_refuses_a_text_dry_run_saying_why(tmp_path: Path) -> None:
    """`balance_text(..., dry_run=True)` was Python's 'unexpected keyword argument' TypeError,
    not the command line's reason."""
    import synthgate as sg

    rows = [{"review": "Great value.", "sentiment": s} for s in ("pos", "pos", "neg")]
    (tmp_path / "reviews.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(sg.InputError) as refused:
        sg.balance_text(tmp_path / "reviews.jsonl", out=tmp_path / "out", dry_run=True)
    assert refused.value.field == "dry_run"
    assert "cannot be planned without generating" in str(refused.value)
    assert not (tmp_path / "out").exists()


def test_a_procedural_section_is_planned_one_instance_of_its_class_an_image(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """Every image section's samples were planned by copy_paste's `instances_per_image` (up to
    3 instances of the class each), but a procedural (or diffusion) image draws one object of
    its sample's class: blob, which only procedural draws, got 2 of the 5 planned, the dry run
    counted 2 images for them, and balance.json blamed "3 lost to occlusion by other pasted
    instances"."""
    config = {
        "image": [
            {"generator": "copy_paste"},
            {"generator": "procedural", "size": [64, 64], "objects_per_image": [1, 1]},
        ]
    }
    out = tmp_path / "out"
    dry = synthgate.balance(tiny[0], images=tiny[1], out=out, target=5, config=config, dry_run=True)
    real = synthgate.balance(tiny[0], images=tiny[1], out=out, target=5, config=config)
    images, _ = _made(real.out)
    assert images == dry.summary["planned_images"]
    drawn = json.loads((out / "runs" / "balance-1-procedural" / "coco.json").read_text())
    blobs = [i for i in drawn["images"] if i["synthgate"]["category"] == "blob"]
    assert len(blobs) == 5
    blob = real.summary["classes"]["blob"]
    assert (blob["planned"], blob["after"]) == (5, 5) and "why_not" not in blob


def test_instances_a_procedural_section_loses_are_said_hidden_by_drawn_objects(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """A procedural image draws its class's object first and others over it: one hidden past
    min_visible_fraction is no instance, and balance.json said the class lost it "to occlusion
    by other pasted instances", though nothing was pasted. Copy-paste's words are kept."""
    config = {
        "seed": 2,
        "image": {
            "generator": "procedural",
            "size": [64, 64],
            "objects_per_image": [2, 2],
            "object_scale_range": [0.5, 0.9],
            "min_visible_fraction": 0.95,
        },
    }
    real = synthgate.balance(tiny[0], images=tiny[1], out=tmp_path / "o", target=8, config=config)
    said = {name: entry.get("why_not", "") for name, entry in real.summary["classes"].items()}
    lost = [why for why in said.values() if "lost to occlusion" in why]
    assert lost, said
    assert all("lost to occlusion by other objects drawn over them" in why for why in lost), said
    assert not any("pasted" in why for why in said.values()), said


def test_a_dry_runs_result_shows_what_it_plans(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """A notebook printing `sg.balance(..., dry_run=True)` read `filled=0, below_target=0`,
    the repr of a balance that added nothing, not the plan it had made (88 instances for
    coco-tiny at median)."""
    dry = synthgate.balance(tiny[0], images=tiny[1], out=tmp_path / "o", target=5, dry_run=True)
    planned = sum(entry["planned"] for entry in dry.summary["classes"].values())
    assert planned > 0
    shown = repr(dry)
    assert f"dry_run=True, planned={planned}, below_target=" in shown and "filled" not in shown


def test_a_class_left_short_by_the_config_says_which_key_left_it(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """With `classes` and `max_new_per_class` in a config, every class left short said "N not
    planned (classes / max_new_per_class)": on coco-tiny with `classes: [giraffe, toaster,
    person]`, zebra (not listed) and giraffe (capped) read the same."""
    config = {"classes": ["tri"], "max_new_per_class": 2}
    real = synthgate.balance(tiny[0], images=tiny[1], out=tmp_path / "o", target=5, config=config)
    classes = real.summary["classes"]
    assert classes["tri"]["why_not"].startswith("2 not planned (max_new_per_class is 2)")
    assert classes["disc"]["why_not"].startswith("2 not planned (not among the config's classes)")
