"""`synthgate balance` on bad input: clear errors naming the entries and nothing written, or with
--skip-invalid the bad entries left out and listed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from balance_fixtures import balance_coco, balance_reviews, make_tiny_coco, run_cli
from PIL import Image
from pycocotools.coco import COCO


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_tiny_coco(tmp_path_factory.mktemp("tiny"))


def _broken(real: dict[str, Any], case: str) -> dict[str, Any]:
    data = json.loads(json.dumps(real))
    if case == "dangling-image":
        data["annotations"][0]["image_id"] = 999
    elif case == "dangling-category":
        data["annotations"][1]["category_id"] = 77
    elif case == "duplicate-image":
        data["images"].append(dict(data["images"][0]))
    elif case == "duplicate-annotation":
        data["annotations"][2]["id"] = data["annotations"][3]["id"]
    elif case == "short-polygon":
        data["annotations"][0]["segmentation"] = [[1.0, 1.0, 5.0, 5.0]]
    elif case == "missing-image":
        data["images"][1]["file_name"] = "gone.png"
    elif case == "tab-in-name":  # a class YOLO's classes.txt and a made label would split
        data["categories"][0]["name"] = "squ\tare"
    elif case == "blank-name":
        data["categories"][1]["name"] = " "
    elif case == "nan-extra":  # Python's json writes it again; strict readers refuse the file
        data["annotations"][2]["score"] = float("nan")
    elif case == "crowd-yes":  # copied through, it broke COCOeval (int("yes"))
        data["annotations"][0]["iscrowd"] = "yes"
    return data


BAD_COCO_CASES = [
    ("dangling-image", ["annotations[0]", "image_id 999", "dangling"]),
    ("dangling-category", ["annotations[1]", "category_id 77"]),
    ("duplicate-image", ["images[6]", "id 101", "duplicate id"]),
    ("duplicate-annotation", ["annotations[3]", "duplicate id"]),
    ("short-polygon", ["annotations[0]", "2 point(s)", "at least 3"]),
    ("missing-image", ["images[1]", "id 102", "gone.png"]),
    ("crowd-yes", ["annotations[0]", "iscrowd must be 0 or 1 (got 'yes')"]),
    ("tab-in-name", ["categories[0] (id 1)", "'squ\\tare' holds a control character"]),
    ("nan-extra", ["annotations[2] (id", "score is NaN", "replace them with null"]),
    ("blank-name", ["categories[1] (id 2)", "' ' is blank", "rename them in the COCO file"]),
]


@pytest.mark.parametrize(("case", "words"), BAD_COCO_CASES, ids=[c[0] for c in BAD_COCO_CASES])
def test_bad_coco_is_refused_naming_the_entries(
    case: str, words: list[str], tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    coco, images = tiny
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_broken(json.loads(coco.read_text()), case)))
    out = tmp_path / "out"
    result = run_cli("balance", "--coco", str(bad), "--images", str(images), "--out", str(out))
    assert result.returncode == 2, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in message, (word, message)
    assert "nothing was written" in message
    assert not out.exists()
    assert not list(tmp_path.glob(".out*"))


def test_the_image_files_are_checked_with_progress_before_anything_is_written(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    import synthgate
    from synthgate.errors import InputError

    coco, images = tiny
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_broken(json.loads(coco.read_text()), "missing-image")))
    events: list[tuple[str, int, int]] = []
    with pytest.raises(InputError, match=r"gone\.png"):
        synthgate.balance(
            bad,
            images=images,
            out=tmp_path / "out",
            read_progress=lambda done, total: events.append(("read", done, total)),
            check_progress=lambda done, total: events.append(("checked", done, total)),
            progress=lambda *counts: pytest.fail("no sample is made from a refused dataset"),
        )
    data, size = json.loads(bad.read_text()), bad.stat().st_size
    total = len(data["images"]) + len(data["annotations"])
    # the file is read whole, then its image files and its annotations are checked
    assert events[:3] == [("read", 0, size), ("read", size, size), ("checked", 0, total)]
    assert {kind for kind, *_ in events[2:]} == {"checked"}
    assert ("checked", len(data["images"]), total) in events
    assert events[-1] == ("checked", total, total)
    assert not (tmp_path / "out").exists()


def test_merged_coco_json_is_written_with_progress_after_the_runs(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    import synthgate

    coco, images = tiny
    events: list[tuple[str, int, int]] = []
    result = synthgate.balance(
        coco,
        images=images,
        out=tmp_path / "out",
        progress=lambda modality, done, total: events.append(("made", done, total)),
        write_progress=lambda done, total: events.append(("written", done, total)),
    )
    merged = json.loads(result.merged.read_text())
    entries = sum(len(merged[key]) for key in ("images", "annotations", "categories"))
    # every sample is made first; then the merged file is written, counted to its entries
    made = [event for event in events if event[0] == "made"]
    written = events[len(made) :]
    assert made and made[-1][1] == made[-1][2]
    assert written[0] == ("written", 0, entries) and written[-1] == ("written", entries, entries)
    assert [done for _, done, _ in written] == sorted({done for _, done, _ in written})


def test_a_class_name_no_class_can_have_is_refused_before_the_image_files_are_checked(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    import synthgate
    from synthgate.errors import InputError

    coco, images = tiny
    bad = tmp_path / "bad.json"  # a blank class name, and an image file that is not there
    bad.write_text(
        json.dumps(_broken(_broken(json.loads(coco.read_text()), "blank-name"), "missing-image"))
    )
    with pytest.raises(InputError, match="cannot name a class"):
        synthgate.balance(
            bad,
            images=images,
            out=tmp_path / "out",
            check_progress=lambda *counts: pytest.fail("refused before any file is checked"),
        )
    assert not (tmp_path / "out").exists()


def test_skip_invalid_leaves_bad_entries_out_and_lists_them(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    coco, images = tiny
    data = _broken(_broken(json.loads(coco.read_text()), "missing-image"), "short-polygon")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    out = tmp_path / "out"
    result = run_cli(
        "balance", "--coco", str(bad), "--images", str(images), "--out", str(out), "--skip-invalid"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "balance.json").read_text())
    skipped = " ".join(summary["skipped_input"])
    assert (
        "gone.png" in skipped
        and "at least 3" in skipped
        and "left out with its image 102" in skipped
    )
    # the terminal lists them too, as merge and export do, not balance.json alone
    listed = [line for line in result.stderr.splitlines() if line.startswith("left out: ")]
    assert len(listed) == len(summary["skipped_input"]) and "gone.png" in " ".join(listed)
    merged = json.loads((out / "merged.coco.json").read_text())
    assert 102 not in {i["id"] for i in merged["images"]}
    assert data["annotations"][0]["id"] not in {a["id"] for a in merged["annotations"]}
    COCO(str(out / "merged.coco.json"))


def test_skip_invalid_that_leaves_no_image_is_refused_as_export_refuses_it(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """A COCO file whose image ids are strings ("img_532481", as some tools write them), with
    --skip-invalid: every image and annotation was left out, and balance wrote a dataset of 0
    images, saying "no class is below its target (median): nothing was added", exit 0, where
    export of the same file refuses: "no images to export (... left out as invalid)"."""
    coco, images = tiny
    data = json.loads(coco.read_text())
    for image in data["images"]:
        image["id"] = f"img_{image['id']}"
    for annotation in data["annotations"]:
        annotation["image_id"] = f"img_{annotation['image_id']}"
    bad = tmp_path / "ids.json"
    bad.write_text(json.dumps(data))
    out = tmp_path / "out"
    result = run_cli(
        "balance", "--coco", str(bad), "--images", str(images), "--out", str(out), "--skip-invalid"
    )
    assert result.returncode == 2, result.stdout + result.stderr
    said = " ".join(result.stderr.split())
    entries = len(data["images"]) + len(data["annotations"])
    assert f"{bad}: no images to balance ({entries} entries left out as invalid)" in said, said
    assert "nothing was added" not in said and "Traceback" not in said
    assert not out.exists()


def test_a_coco_file_of_no_images_is_refused_as_holding_none(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """A COCO file of categories only was refused as "no images to balance (0 entries left out
    as invalid); fix the entries (without --skip-invalid each is named)", where none was."""
    empty = tmp_path / "empty.json"
    empty.write_text(
        json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "cat"}]})
    )
    out = tmp_path / "out"
    result = run_cli("balance", "--coco", str(empty), "--images", str(tiny[1]), "--out", str(out))
    assert result.returncode == 2, result.stdout + result.stderr
    said = " ".join(result.stderr.split())
    assert f"{empty}: no images to balance: the file holds none" in said, said
    assert "left out as invalid" not in said and not out.exists()


def test_a_label_field_that_is_the_text_field_is_refused(tmp_path: Path) -> None:
    """`--label-field text` (the text field's name, by a slip): every row was a class of its
    own text, so no class was below the median, and balance wrote merged.jsonl, exit 0, 'no
    class is below its target (median): nothing was added'."""
    rows = tmp_path / "tickets.jsonl"
    rows.write_text(
        '{"text": "Anna cannot log in.", "label": "login"}\n'
        '{"text": "Tom was charged twice.", "label": "billing"}\n'
        '{"text": "Maria was charged twice too.", "label": "billing"}\n'
    )
    out = tmp_path / "out"
    result = run_cli("balance", "--jsonl", str(rows), "--out", str(out), "--label-field", "text")
    assert result.returncode == 2, result.stdout + result.stderr
    said = " ".join(result.stderr.split())
    assert "--label-field text: is the text field too" in said, said
    assert "nothing was added" not in said and not out.exists()


def test_a_label_field_of_a_different_value_in_every_row_is_warned_of(tmp_path: Path) -> None:
    """`--label-field id`: each row's id is a class of one row, none rarer than another, and
    balance said 'no class is below its target (median): nothing was added' alone. It says
    why, and what to name instead; not refused, as a seed set of one row per class balances
    toward a number (`--target 3` makes rows of each)."""
    rows = tmp_path / "tickets.jsonl"
    rows.write_text(
        '{"id": "t1", "text": "Anna cannot log in.", "label": "login"}\n'
        '{"id": "t2", "text": "Tom was charged twice.", "label": "billing"}\n'
        '{"id": "t3", "text": "Maria was charged twice too.", "label": "billing"}\n'
    )
    out = tmp_path / "out"
    result = run_cli("balance", "--jsonl", str(rows), "--out", str(out), "--label-field", "id")
    assert result.returncode == 0, result.stdout + result.stderr
    said = " ".join(result.stderr.split())
    warning = (
        f"{rows}: `id` holds a different value in every row ('t1', 't2', 't3'): each row is a "
        "class of its own; if `id` is not the rows' class, name the field that holds it (a "
        "value rows share)"
    )
    assert f"warning: {warning}" in said, said
    assert json.loads((out / "balance.json").read_text())["warnings"] == [warning]
    plain = tmp_path / "plain"  # the rows' own class: no warning, no warnings key
    result = run_cli("balance", "--jsonl", str(rows), "--out", str(plain))
    assert result.returncode == 0 and "warning" not in result.stderr, result.stderr
    assert "warnings" not in json.loads((plain / "balance.json").read_text())


def test_balance_needs_one_input(tmp_path: Path) -> None:
    result = run_cli("balance", "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert "--coco" in result.stderr and "--jsonl" in result.stderr


@pytest.mark.parametrize("option", [["--images", "."], ["--skip-invalid"]])
def test_balance_jsonl_refuses_coco_options(option: list[str], tmp_path: Path) -> None:
    """`balance --jsonl rows.jsonl --images DIR` (or --skip-invalid) balanced as if the option
    were not there: both apply to --coco only."""
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "a fine day", "label": "pos"}\n')
    result = run_cli("balance", "--jsonl", str(rows), "--out", str(tmp_path / "o"), *option)
    assert result.returncode == 2, result.stderr
    assert f"{option[0]} applies to --coco" in result.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("option", [["--label-field", "kind"], ["--text-field", "body"]])
def test_balance_coco_refuses_jsonl_options(
    option: list[str], tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """`balance --coco ... --label-field kind` balanced as if the option were not there."""
    result = balance_coco(*tiny, tmp_path / "o", *option)
    assert result.returncode == 2, result.stderr
    assert f"{option[0]} applies to --jsonl" in result.stderr
    assert not (tmp_path / "o").exists()


def test_balance_with_nothing_to_add_says_so(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """Every class at its target: one line says so, not an empty table."""
    targets = tmp_path / "targets.yaml"
    targets.write_text("tri: 1\n")  # the others keep their counts
    result = balance_coco(*tiny, tmp_path / "o", "--target", str(targets))
    assert result.returncode == 0, result.stderr
    assert f"no class is below its target ({targets}): nothing was added" in result.stdout
    assert "┏" not in result.stdout


@pytest.mark.parametrize(
    ("image", "where"),
    [
        ("{coco: other/annotations.json}", "image.coco"),
        ("[{background: random}, {images: other/images}]", "image[1].images"),
    ],
)
def test_balance_refuses_a_copy_paste_dataset_of_its_own(
    image: str, where: str, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """A copy_paste section naming its own dataset: its instances came from --coco all the
    same, and their pixels from the section's `images` folder (here other pixels under the
    same names: labels that miss their objects)."""
    _, other_images = make_tiny_coco(tmp_path / "other")
    for path in other_images.iterdir():
        Image.open(path).transpose(Image.Transpose.ROTATE_180).save(path)
    config = tmp_path / "balance.yaml"
    config.write_text(f"image: {image}\n")
    result = balance_coco(*tiny, tmp_path / "o", "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert f"{config}: {where}: copy_paste in a balance cuts its instances" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("section", "words"),
    [  # values the plan read before the section was parsed (int(), [1]: tracebacks)
        ("{min_source_area: x}", "image.min_source_area"),
        ("{instances_per_image: 5}", "image.instances_per_image"),
        ("{instances_per_image: [1, .inf]}", "image.instances_per_image"),
    ],
)
def test_an_image_section_is_checked_before_the_plan_reads_it(
    section: str, words: str, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    coco, images = tiny
    (tmp_path / "balance.yaml").write_text(f"image: {section}\n")
    out = tmp_path / "out"
    result = run_cli(
        "balance", "--coco", str(coco), "--images", str(images), "--out", str(out),
        "--config", str(tmp_path / "balance.yaml"),
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert words in " ".join(result.stderr.split())
    assert not out.exists()


@pytest.mark.parametrize("target", ["9" * 5000, "-" + "9" * 5000, str(2**40), "²", "-²"])
def test_a_target_beyond_any_batch_is_refused(target: str) -> None:
    from synthgate.errors import InputError
    from synthgate.workflows.quotas import parse_target

    with pytest.raises(InputError) as refused:
        parse_target(target)
    assert refused.value.field == "target"


def test_leading_zeros_do_not_make_a_target_too_long() -> None:
    from synthgate.workflows.quotas import parse_target

    assert parse_target("0" * 30 + "12") == 12
    assert parse_target("0" * 4400 + "12") == 12  # beyond int()'s 4,300 digits, zeros and all
    assert parse_target("１２") == 12  # full-width digits are what int() reads as 12


@pytest.mark.parametrize("kind", ["coco", "jsonl"])
def test_a_config_class_the_dataset_lacks_is_refused_naming_the_real_ones(
    kind: str, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    # a misspelt class used to raise nothing: exit 0, nothing added, nothing said
    config = tmp_path / "balance.yaml"
    config.write_text("target: max\nclasses: [squar, disc]\n")
    out = tmp_path / "out"
    if kind == "coco":
        result = balance_coco(*tiny, out, "--config", str(config))
        real = "['blob', 'disc', 'square', 'tri']"
    else:
        rows = [{"review": "Great value.", "sentiment": s} for s in ("pos", "pos", "disc")]
        (tmp_path / "reviews.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        result = balance_reviews(tmp_path / "reviews.jsonl", out, "--config", str(config))
        real = "['disc', 'pos']"
    assert result.returncode == 2, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert f"{config}: classes: unknown class(es) ['squar']" in message
    assert real in message
    assert not out.exists()


@pytest.mark.parametrize("kind", ["coco", "jsonl"])
def test_a_config_rubric_that_is_no_rubric_names_the_config_before_anything_is_made(
    kind: str, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    # said "rubric 'nope': no such file" naming no config, after a section's run; a text file
    # nothing could be made of exited 0 with the rubric never read
    config = tmp_path / "balance.yaml"
    out = tmp_path / "out"
    if kind == "coco":
        config.write_text("target: max\nimage: {generator: copy_paste, rubric: nope}\n")
        result = balance_coco(*tiny, out, "--config", str(config))
        field = "image.rubric"
    else:
        config.write_text("target: max\ntext: {generator: counterfactual, rubric: nope}\n")
        rows = [{"text": "It broke.", "label": s} for s in ("pos", "pos", "neg")]
        (tmp_path / "small.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        result = run_cli(
            "balance",
            "--jsonl",
            str(tmp_path / "small.jsonl"),
            "--out",
            str(out),
            "--config",
            str(config),
        )
        field = "text.rubric"
    assert result.returncode == 2, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert f"{config}: {field}: rubric 'nope'" in message
    assert not out.exists()


CONFIG_TARGET_CASES = [  # (the config's target, what the error says after "CONFIG: target: ")
    ("0", "an integer target must be > 0 (got 0)"),
    ("largest", "choose max, median"),
    ("missing.yaml", "file not found"),
]


@pytest.mark.parametrize(("target", "words"), CONFIG_TARGET_CASES)
def test_a_bad_config_target_names_the_config_not_the_flag(
    target: str, words: str, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    # blamed "--target 0", which the user never passed
    config = tmp_path / "balance.yaml"
    config.write_text(f"target: {target}\n")
    result = balance_coco(*tiny, tmp_path / "out", "--config", str(config))
    assert result.returncode == 2, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert f"{config}: target: {words}" in message
    assert "--target" not in message


def test_a_config_target_path_is_taken_from_the_configs_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synthgate.errors import InputError
    from synthgate.workflows.quotas import balance_target, load_balance_config

    (tmp_path / "configs").mkdir()
    config = tmp_path / "configs" / "balance.yaml"
    config.write_text("target: targets.yaml\naugment: augment.yaml\n")
    (tmp_path / "configs" / "targets.yaml").write_text("disc: 4\n")
    (tmp_path / "targets.yaml").write_text("disc: 9\n")  # the working directory's: not this one
    (tmp_path / "configs" / "augment.yaml").write_text("")  # there: a missing one is refused
    monkeypatch.chdir(tmp_path)
    balance = load_balance_config(config)
    assert balance_target(None, balance, source=config) == tmp_path / "configs" / "targets.yaml"
    assert balance.augment == tmp_path / "configs" / "augment.yaml"  # as augment was already
    # given as the argument, a path is the working directory's, whatever the config says
    assert balance_target("targets.yaml", balance, source=config) == Path("targets.yaml")
    (tmp_path / "configs" / "targets.yaml").unlink()
    with pytest.raises(InputError, match="file not found") as refused:
        balance_target(None, balance, source=config)  # not the working directory's instead
    assert str(tmp_path / "configs" / "targets.yaml") in str(refused.value)


def test_a_jsonl_file_given_as_coco_is_named_as_text(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """Read as COCO, a JSONL file was "not valid JSON (line 2, column 1: Extra data)"."""
    import synthgate as sg

    _, images = tiny
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n')
    with pytest.raises(
        sg.InputError, match=r"coco=.*rows\.jsonl: is a text JSONL file.*balance_text"
    ):
        sg.balance(rows, images=images, out=tmp_path / "o")
    result = run_cli(
        "balance", "--coco", str(rows), "--images", str(images), "--out", str(tmp_path / "o")
    )
    assert result.returncode == 2
    assert "rows.jsonl: is a text JSONL file; pass it as --jsonl" in " ".join(result.stderr.split())
    assert not (tmp_path / "o").exists()


def test_a_coco_file_given_as_jsonl_is_named_as_coco(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """Read as JSONL, a COCO file was "line 1: not valid JSON (Expecting property name ...)"."""
    import synthgate as sg

    coco, _ = tiny
    with pytest.raises(sg.InputError, match=r"jsonl=.*: is a COCO file .*--coco"):
        sg.balance_text(coco, out=tmp_path / "o")
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(json.loads(coco.read_text()), indent=2))
    with pytest.raises(sg.InputError, match="is a COCO file"):
        sg.balance_text(pretty, out=tmp_path / "o")
    rows = tmp_path / "rows.json"  # JSONL rows in a .json file, one with "images" in it
    rows.write_text('{"text": "show me the images", "label": "images"}\n')
    try:
        sg.balance_text(rows, out=tmp_path / "o2")
    except sg.InputError as error:  # it may have too few rows to balance: not for being COCO
        assert "COCO" not in str(error)
    result = run_cli("balance", "--jsonl", str(coco), "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert "is a COCO file" in " ".join(result.stderr.split())
    assert not (tmp_path / "o").exists()


def test_a_coco_file_with_a_byte_order_mark_given_as_jsonl_is_named_as_coco(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    import synthgate as sg

    marked = tmp_path / "marked.json"
    marked.write_bytes(b"\xef\xbb\xbf" + tiny[0].read_bytes())
    with pytest.raises(sg.InputError, match=r"jsonl=.*: is a COCO file .*--coco"):
        sg.balance_text(marked, out=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_an_out_that_cannot_be_written_is_refused_before_the_dataset_is_checked(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """Refused at once, not after reading and checking every image (minutes for a large one)."""
    import synthgate
    from synthgate.errors import InputError

    first = synthgate.balance(tiny[0], images=tiny[1], out=tmp_path / "first", target=2)
    checked: list[tuple[int, int]] = []
    for out, words in [
        (first.out / "mine", "lies inside the balance output"),
        (tmp_path, "folder exists and is not a synthgate balance output"),  # it holds first/
    ]:
        with pytest.raises(InputError, match=words):
            synthgate.balance(
                tiny[0],
                images=tiny[1],
                out=out,
                target=4,
                check_progress=lambda done, total: checked.append((done, total)),
            )
    assert checked == []


def test_a_bad_balance_config_value_is_quoted_short(tmp_path: Path) -> None:
    """A balance config's problems read as a batch config's (errors.validation_message): a
    long value is cut short, where it was printed whole."""
    from synthgate.errors import InputError
    from synthgate.workflows.quotas import load_balance_config

    config = tmp_path / "balance.yaml"
    config.write_text(f"name: '-{'x' * 300}'\n")
    with pytest.raises(InputError) as refused:
        load_balance_config(config)
    message = str(refused.value)
    assert message.startswith(f"{config}: name: String should match pattern"), message
    assert message.endswith(f"(got '-{'x' * 36}...{'x' * 38}')"), message


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ({"generator": "procedurl"}, "image.generator: unknown generator 'procedurl'"),
        ({"generator": "procedural", "sise": [64, 64]}, "unknown key 'image.sise'"),
    ],
)
def test_a_config_given_as_a_mapping_is_named_as_the_config_not_the_dataset(
    section: dict[str, Any], words: str, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """`sg.balance(..., config={...})` named the COCO file where a generator section of the
    mapping was wrong ("annotations.json: unknown key 'image.sise'"), and `sg.balance_text` the
    JSONL: the user looked for the key in their data. The config's own errors say `<config>`."""
    import synthgate
    from synthgate.errors import InputError

    coco, images = tiny
    with pytest.raises(InputError) as refused:
        synthgate.balance(
            coco, images=images, out=tmp_path / "o", config={"image": section}, dry_run=True
        )
    assert str(refused.value).startswith(f"<config>: {words}"), str(refused.value)
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "Good soup.", "label": "pos"}\n{"text": "Cold.", "label": "neg"}\n')
    text = {**section, "generator": section["generator"].replace("procedur", "counterfactu")}
    with pytest.raises(InputError) as refused:
        synthgate.balance_text(rows, out=tmp_path / "t", config={"text": text})
    said = str(refused.value)
    assert said.startswith("<config>: ") and str(rows) not in said, said


@pytest.mark.parametrize("modality", ["image", "text"])
def test_a_config_with_an_empty_list_of_generator_sections_is_refused(
    modality: str, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """`image: []` in a balance config ended in a traceback (ValueError: min() arg is an empty
    sequence), exit 1; `text: []` ran no generator and left every class short, "not planned
    (classes / max_new_per_class)"."""
    config = tmp_path / "balance.yaml"
    config.write_text(f"{modality}: []\n")
    if modality == "image":
        data = ["--coco", str(tiny[0]), "--images", str(tiny[1])]
    else:
        rows = tmp_path / "rows.jsonl"
        rows.write_text(
            "".join(
                json.dumps({"id": str(n), "text": f"Soup number {n} was good.", "label": "pos"})
                + "\n"
                for n in range(4)
            )
            + '{"id": "x", "text": "The soup was cold.", "label": "neg"}\n'
        )
        data = ["--jsonl", str(rows)]
    out = tmp_path / "out"
    result = run_cli("balance", *data, "--out", str(out), "--config", str(config))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    said = " ".join(result.stderr.split())
    assert f"{config}: {modality}: lists no generator section" in said, said
    assert not out.exists()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("[1, 2]\n", ": a balance config must be a YAML mapping (got list)"),
        ("image: 5\n", ": image: must be a generator section (a mapping such as {generator:"),
        ("image: [5]\n", ": image: must be a generator section (a mapping such as {generator:"),
        (
            "text: copy_paste\n",
            ": text: must be a generator section (a mapping such as {generator:",
        ),
        ("target: [1]\n", ": target: must be max, median, repeat_factor, a whole number or"),
    ],
)
def test_a_config_value_of_the_wrong_shape_is_named_in_the_users_words(
    content: str, words: str, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """`image: 5` was refused as "image.dict[str,any]: Input should be a valid dictionary
    (got 5)" and "image.list[dict[str,any]]: Input should be a valid list (got 5)", `target: [1]`
    as "target.str: ..." and "target.int: ...", a list as "Input should be a valid dictionary
    or instance of BalanceConfig": the names of pydantic's union members, not the user's."""
    config = tmp_path / "balance.yaml"
    config.write_text(content)
    result = run_cli(
        "balance", "--coco", str(tiny[0]), "--images", str(tiny[1]), "--out",
        str(tmp_path / "out"), "--config", str(config), "--dry-run",
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    said = " ".join(result.stderr.split())
    assert f"{config}{words}" in said, said
    assert "dict[" not in said and "BalanceConfig" not in said and "target.str" not in said


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("target: yes\n", "target: YAML read a boolean"),
        ("seed: yes\n", "seed: YAML read a boolean"),
        ("max_new_per_class: '3'\n", "max_new_per_class: is text where a number goes"),
        ("repeat_threshold: yes\n", "repeat_threshold: YAML read a boolean"),
    ],
)
def test_a_balance_config_number_written_as_a_boolean_or_text_is_refused(
    content: str, words: str, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """README: "count: '3' (quoted) and count: yes (a YAML boolean) are refused". A balance
    config took them: `target: yes` was a target of 1 (a dry run planned nothing, unexplained),
    `max_new_per_class: '3'` was 3, `seed: yes` was 1."""
    config = tmp_path / "balance.yaml"
    config.write_text(content)
    result = run_cli(
        "balance", "--coco", str(tiny[0]), "--images", str(tiny[1]), "--out",
        str(tmp_path / "out"), "--config", str(config), "--dry-run",
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    said = " ".join(result.stderr.split())
    assert f"{config}: {words}" in said, said
    assert "Value error" not in said


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("attributes: {gender: 5}\n", "attributes.gender: must be a list of values"),
        ("attributes: {gender: {female: -1}}\n", "attributes.gender: give values or positive"),
        ("attributes: {gender: {female: yes, male: 1}}\n", "attributes.gender.female: YAML read"),
        ("attributes: {age: [18, 30]}\n", "attributes.age: its values are names, written as text"),
        ("attributes: {age: {18: 1, 30: 1}}\n", "attributes.age: its values are names, written"),
    ],
)
def test_a_bad_attributes_axis_names_the_config_in_the_users_words(
    content: str, words: str, tmp_path: Path
) -> None:
    """`attributes: {gender: 5}` was refused as "attributes.gender.list[str]: ..." and
    "attributes.gender.dict[str,float]: ...", a negative share without the config file named
    ("attributes.gender: give values or positive shares"), and a share written `yes` was 1."""
    config = tmp_path / "balance.yaml"
    config.write_text(content)
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        '{"id": "a", "text": "Anna liked the soup.", "label": "pos"}\n'
        '{"id": "b", "text": "Tom found it cold.", "label": "neg"}\n'
    )
    out = tmp_path / "out"
    result = run_cli("balance", "--jsonl", str(rows), "--out", str(out), "--config", str(config))
    assert result.returncode == 2, result.stdout + result.stderr
    said = " ".join(result.stderr.split())
    assert f"{config}: {words}" in said, said
    assert "list[str]" not in said and "Traceback" not in said
    assert not out.exists()


@pytest.mark.parametrize(
    ("given", "loaded"),
    [
        ({"image": ({"generator": "copy_paste"},)}, {"image": [{"generator": "copy_paste"}]}),
        ({"text": ({"generator": "counterfactual"},)}, {"text": [{"generator": "counterfactual"}]}),
        ({"attributes": {"gender": ("female", "male")}}, {"attributes": {"gender": ["female", "male"]}}),
        ({"target": 5.0}, {"target": 5}),
        ({"target": np.int64(5)}, {"target": 5}),  # a count a notebook computed
    ],
)  # fmt: skip
def test_a_balance_config_mapping_with_tuples_or_a_whole_float_target_still_loads(
    given: dict[str, Any], loaded: dict[str, Any]
) -> None:
    """`sg.balance(config={...})` from a notebook: 71a9d77's shape checks refused a tuple of
    generator sections ("image: must be a generator section ... (got ({'generator':
    'copy_paste'},))"), a tuple of attribute values and `target: 5.0` ("must be ... a whole
    number (got 5.0)") and numpy's 5, which the config model takes as the list and the 5 they
    are."""
    from synthgate.workflows.quotas import load_balance_config

    config = load_balance_config(given)
    assert {key: getattr(config, key) for key in loaded} == loaded


@pytest.mark.parametrize(
    ("sections", "where"),
    [
        ("image: {generator: procedural, count: 500}", "image.count"),
        ("image: [{generator: copy_paste}, {generator: procedural, count: 500}]", "image[1].count"),
        ("text: {generator: counterfactual, count: 500}", "text.count"),
    ],
)
def test_a_generator_sections_count_is_refused_saying_the_plan_sets_it(
    sections: str, where: str, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """A section's `count: 500` (as a run config has it) was silently replaced by the plan's
    count: the balance made as many samples as the deficits asked, not 500, and said nothing."""
    config = tmp_path / "balance.yaml"
    config.write_text(f"target: 5\n{sections}\n")
    out = tmp_path / "out"
    data = ["--coco", str(tiny[0]), "--images", str(tiny[1])]
    result = run_cli("balance", *data, "--out", str(out), "--config", str(config), "--dry-run")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    said = " ".join(result.stderr.split())
    assert f"{config}: {where}: a balance decides how many samples each generator section" in said
    assert "remove count, and set target or max_new_per_class" in said, said
    assert not out.exists()


TARGET_MAPPING_CASES = [  # (targets, as a mapping and as a file's content; what the error says)
    ({"dsc": 5}, "unknown class(es) ['dsc']; the dataset's classes are"),
    ({"disc": -1}, "targets must be integers >= 0 (got {'disc': -1})"),
    ({"disc": "5"}, "targets must be integers >= 0 (got {'disc': '5'})"),
    ({"disc": True}, "targets must be integers >= 0 (got {'disc': True})"),
    ({"disc": 2**40}, "target(s) {'disc': 1099511627776} are more than a batch holds"),
]


def test_a_target_mapping_is_taken_as_a_targets_file_is(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """A notebook's `target={"disc": 5, "tri": 4}` plans as a YAML of the same classes does:
    the classes it names to their targets, the others keep their counts."""
    import synthgate

    given = {"disc": 5, "tri": 4}
    plan = synthgate.balance(
        tiny[0], images=tiny[1], out=tmp_path / "o", target=given, dry_run=True
    ).summary
    targets = tmp_path / "targets.yaml"
    targets.write_text("disc: 5\ntri: 4\n")
    from_file = synthgate.balance(
        tiny[0], images=tiny[1], out=tmp_path / "o", target=targets, dry_run=True
    ).summary
    assert plan["classes"] == from_file["classes"]
    assert {name: entry["target"] for name, entry in plan["classes"].items()} == {
        "square": 7,  # its count (the crowd region is no instance)
        "disc": 5,
        "tri": 4,
        "blob": 0,
    }
    assert plan["target"] == given


def test_a_target_mapping_of_numpy_counts_is_taken_as_of_ints(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """A notebook's targets are often NumPy integers (`df.label.value_counts() * 2`): they are
    whole numbers, planned and written to the summary as Python's."""
    import json

    import numpy as np

    import synthgate

    given = {"disc": np.int64(5), "tri": np.int32(4)}
    plan = synthgate.balance(
        tiny[0], images=tiny[1], out=tmp_path / "o", target=given, dry_run=True
    ).summary
    assert plan["classes"]["disc"]["target"] == 5 and plan["classes"]["tri"]["target"] == 4
    assert json.loads(json.dumps(plan["target"])) == {"disc": 5, "tri": 4}


@pytest.mark.parametrize(("given", "words"), TARGET_MAPPING_CASES)
def test_a_bad_target_mapping_is_refused_as_a_targets_files_content_is(
    given: dict[str, Any], words: str, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    import synthgate
    from synthgate.errors import InputError

    targets = tmp_path / "targets.yaml"
    targets.write_text(yaml.safe_dump(given))
    with pytest.raises(InputError) as from_file:
        synthgate.balance(tiny[0], images=tiny[1], out=tmp_path / "o", target=targets)
    with pytest.raises(InputError) as from_mapping:
        synthgate.balance(tiny[0], images=tiny[1], out=tmp_path / "o", target=given)
    assert str(from_file.value).startswith(f"{targets}: {words}")
    assert str(from_mapping.value) == str(from_file.value).replace(str(targets), "target", 1)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("listed", [False, True], ids=["one-section", "a-list"])
@pytest.mark.parametrize("found", ["built", "generating"])
def test_a_section_refused_mid_balance_names_the_config_and_the_section(
    found: str, listed: bool, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """A generator section's field refused once its generator is built or runs (a model folder
    that holds no pipeline, a background image that does not open) was told as 'image.model.
    path: ...', no file named: `synthgate run` names its config there, and a balance config's
    list holds a section per generator."""
    import synthgate
    from synthgate.errors import InputError

    if found == "built":
        (tmp_path / "no-model").mkdir()
        model = {"path": str(tmp_path / "no-model")}
        section: dict[str, Any] = {"generator": "diffusion_layout", "model": model}
        said = f"model.path: {tmp_path / 'no-model'} holds no model_index.json"
    else:
        from tiny_diffusers import image_section, save_tiny_pipeline

        (tmp_path / "backgrounds").mkdir()
        (tmp_path / "backgrounds" / "sky.png").write_bytes(b"not a png")
        background = {"source": "folder", "folder": str(tmp_path / "backgrounds")}
        model_folder = save_tiny_pipeline("inpaint", tmp_path / "inpaint")
        section = image_section("diffusion_inpaint", model_folder, background=background)
        del section["count"]  # a balance sets it
        said = f"background.folder: cannot read {tmp_path / 'backgrounds' / 'sky.png'}"
    config = tmp_path / "balance.yaml"
    sections = [{"generator": "copy_paste"}, section] if listed else section
    config.write_text(yaml.safe_dump({"image": sections}))
    out = tmp_path / "out"
    with pytest.raises(InputError) as refused:
        synthgate.balance(tiny[0], images=tiny[1], out=out, config=config)
    where = "image[1]" if listed else "image"
    assert str(refused.value).startswith(f"{config}: {where}.{said}"), str(refused.value)
    assert not out.exists()


def test_a_config_s_target_mapping_plans_as_the_argument_s_does(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    import synthgate

    coco, images = tiny
    given = {"disc": 5, "tri": 4}
    plan = synthgate.balance(coco, images=images, out=tmp_path / "o", target=given, dry_run=True)
    config = tmp_path / "balance.yaml"
    config.write_text("target: {disc: 5, tri: 4}\n")
    from_file = synthgate.balance(
        coco, images=images, out=tmp_path / "o", config=config, dry_run=True
    )
    assert from_file.summary["classes"] == plan.summary["classes"]
    assert from_file.summary["target"] == given
    counted = {"target": {"disc": np.int64(5), "tri": np.int32(4)}}  # a notebook's value_counts
    from_dict = synthgate.balance(
        coco, images=images, out=tmp_path / "o", config=counted, dry_run=True
    )
    assert from_dict.summary["classes"] == plan.summary["classes"]
    assert json.loads(json.dumps(from_dict.summary["target"])) == given
    # and from the command line's --config, a target given beside it still winning
    ran = balance_coco(coco, images, tmp_path / "o", "--config", str(config), "--dry-run")
    assert ran.returncode == 0, ran.stderr
    ran = balance_coco(coco, images, tmp_path / "o", "--config", str(config), "--target", "abc")
    assert ran.returncode == 2 and "--target 'abc': choose max, median" in ran.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("given", "words"), TARGET_MAPPING_CASES)
def test_a_bad_target_mapping_in_a_config_is_refused_naming_the_file_and_key(
    given: dict[str, Any], words: str, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    import synthgate
    from synthgate.errors import InputError

    coco, images, out = *tiny, tmp_path / "o"
    with pytest.raises(InputError) as from_argument:
        synthgate.balance(coco, images=images, out=out, target=given)
    assert str(from_argument.value).startswith(f"target: {words}")
    config = tmp_path / "balance.yaml"
    config.write_text(yaml.safe_dump({"target": given}))
    with pytest.raises(InputError) as from_file:
        synthgate.balance(coco, images=images, out=out, config=config)
    said = str(from_argument.value).replace("target", f"{config}: target", 1)
    assert str(from_file.value) == said
    with pytest.raises(InputError) as from_dict:
        synthgate.balance(coco, images=images, out=out, config={"target": given})
    assert str(from_dict.value) == said.replace(str(config), "<config>", 1)
    rows = tmp_path / "rows.jsonl"  # a text balance reads the config's target as well
    rows.write_text('{"text": "Good soup.", "label": "disc"}\n{"text": "Cold.", "label": "tri"}\n')
    with pytest.raises(InputError) as from_text:
        synthgate.balance_text(rows, out=out, config=config)
    assert str(from_text.value).startswith(f"{config}: target: {words}")
    assert not out.exists()


@pytest.mark.parametrize("listed", [False, True], ids=["one-section", "a-list"])
def test_a_section_refused_when_read_names_its_place_in_the_list(
    listed: bool, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    import synthgate
    from synthgate.errors import InputError

    bad = {"generator": "copy_paste", "min_visible_fraction": 2}
    sections = [{"generator": "copy_paste"}, bad] if listed else bad
    config = tmp_path / "balance.yaml"
    config.write_text(yaml.safe_dump({"image": sections}))
    out = tmp_path / "out"
    with pytest.raises(InputError) as refused:
        synthgate.balance(tiny[0], images=tiny[1], out=out, config=config)
    where = "image[1]" if listed else "image"
    assert str(refused.value).startswith(f"{config}: {where}.min_visible_fraction: "), str(
        refused.value
    )
    assert not out.exists()


@pytest.mark.parametrize("modality", ["image", "text"])
def test_an_unknown_key_of_a_listed_section_names_its_place(
    modality: str, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """A misspelt key in the second of three sections of one generator was told as
    `unknown key 'image.objets'`, which any of them could hold."""
    import synthgate
    from synthgate.errors import InputError

    section = {"generator": "copy_paste" if modality == "image" else "counterfactual"}
    config = tmp_path / "balance.yaml"
    config.write_text(yaml.safe_dump({modality: [section, {**section, "objets": 2}, section]}))
    out = tmp_path / "out"
    with pytest.raises(InputError) as refused:
        if modality == "image":
            synthgate.balance(tiny[0], images=tiny[1], out=out, config=config)
        else:
            rows = tmp_path / "rows.jsonl"
            rows.write_text(
                '{"text": "Good soup.", "label": "a"}\n{"text": "Cold.", "label": "b"}\n'
            )
            synthgate.balance_text(rows, out=out, config=config)
    assert str(refused.value) == (
        f"{config}: unknown key '{modality}[1].objets'; remove it or check its spelling"
    )
    assert not out.exists()


def test_a_listed_section_refused_as_a_whole_names_its_place(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    import synthgate
    from synthgate.errors import InputError

    layout = {"generator": "diffusion_layout", "model": {"path": str(tmp_path / "model")}}
    config = tmp_path / "balance.yaml"
    sections = [layout, {**layout, "prompt": "a {colour} photo of {categories}"}]
    config.write_text(yaml.safe_dump({"image": sections}))
    out = tmp_path / "out"
    with pytest.raises(InputError) as refused:
        synthgate.balance(tiny[0], images=tiny[1], out=out, config=config)
    said = f"{config}: image[1]: prompt 'a {{colour}} photo of {{categories}}' has unknown slots"
    assert str(refused.value).startswith(said), str(refused.value)
    assert not out.exists()


@pytest.mark.parametrize("listed", [False, True])
def test_a_refused_section_is_quoted_as_the_config_writes_it(
    listed: bool, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """A refusal of a whole generator section quotes it: it quoted the section as checked, a
    `count: 1` (which a balance refuses in a section) and the balance's rubric in it that the
    config never wrote, and in a text balance the input file as its source."""
    import synthgate
    from synthgate.errors import InputError, quoted

    layout = {"generator": "diffusion_layout", "model": {"path": str(tmp_path / "model")}}
    wrong = {**layout, "prompt": "a {colour} photo of {categories}"}
    config = tmp_path / "balance.yaml"
    config.write_text(
        yaml.safe_dump({"rubric": "detection", "image": [layout, wrong] if listed else wrong})
    )
    with pytest.raises(InputError) as refused:
        synthgate.balance(tiny[0], images=tiny[1], out=tmp_path / "out", config=config)
    assert str(refused.value) == (
        f"{config}: {'image[1]' if listed else 'image'}: prompt 'a {{colour}} photo of "
        "{categories}' has unknown slots ['colour']; use ['categories', 'category'] or add them "
        f"to `attributes:` with their values (got {quoted(wrong)})"
    )
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "Good soup.", "label": "a"}\n{"text": "Cold.", "label": "b"}\n')
    fallback = {"generator": "counterfactual", "fallback": "model"}
    config.write_text(yaml.safe_dump({"text": [{}, fallback] if listed else fallback}))
    with pytest.raises(InputError) as refused:
        synthgate.balance_text(rows, out=tmp_path / "out", config=config)
    assert str(refused.value) == (
        f"{config}: {'text[1]' if listed else 'text'}: fallback 'model' needs `model:` with the "
        f"path of a local model (got {quoted(fallback)})"
    )
    assert not (tmp_path / "out").exists()


def test_a_listed_sections_refusal_names_its_own_fields_at_its_place(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """A refusal of the second of a list of generator sections said `image[1]` before its line
    and `image.model.path`, `drop image.negative_prompt` after it, which the config has no
    section at: checked when the config is read (a latent consistency model's negative prompt,
    a size off its VAE's blocks) and once the section's generator is built (a model found
    nowhere). A file name that reads like a field (image.png) is left as it is."""
    import synthgate
    from synthgate.errors import InputError

    model = tmp_path / "lcm"
    (model / "unet").mkdir(parents=True)
    (model / "unet" / "config.json").write_text('{"time_cond_proj_dim": 256}')
    (model / "vae").mkdir()
    (model / "vae" / "config.json").write_text('{"block_out_channels": [8, 8, 8, 8, 8]}')
    lcm = {"generator": "diffusion_inpaint", "model": {"path": str(model)}}
    config = tmp_path / "balance.yaml"
    out = tmp_path / "out"

    def refusal(section: dict[str, Any]) -> str:
        config.write_text(yaml.safe_dump({"image": [{"generator": "copy_paste"}, section]}))
        with pytest.raises(InputError) as refused:
            synthgate.balance(tiny[0], images=tiny[1], out=out, config=config)
        assert not out.exists()
        return str(refused.value)

    said = refusal({**lcm, "negative_prompt": "blurry"})
    assert said.startswith(f"{config}: image[1].negative_prompt: image[1].model.path {model} is")
    assert "at any image[1].model.guidance, and so ignores" in said, said
    assert "; drop image[1].negative_prompt (got 'blurry')" in said, said
    said = refusal({**lcm, "size": [72, 72]})
    assert said.startswith(f"{config}: image[1].size: is not a multiple of 16"), said
    assert f"which the VAE of image[1].model.path {model} needs" in said, said
    said = refusal({"generator": "diffusion_inpaint", "model": {"path": "image.model"}})
    assert said.startswith(f"{config}: image[1].model.path: no model at 'image.model'"), said
    assert "set image[1].model.path to it, or fill" in said and "image.model.path" not in said
