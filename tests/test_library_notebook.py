"""What a data scientist meets first in a notebook, each found by driving the README's library
calls on coco-tiny and the shipped configs: a COCO dict built with NumPy, a Path where a config
names a rubric, a merge result's folder, what a rubric prints."""

from __future__ import annotations

import collections
import copy
import inspect
import json
import uuid
from http import HTTPStatus
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from balance_fixtures import make_tiny_coco, run_cli
from factories import small_config

import synthgate as sg


@pytest.fixture(scope="module")
def coco(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_tiny_coco(tmp_path_factory.mktemp("coco"))


def test_a_coco_dict_built_with_numpy_is_judged_as_its_json_is(coco: tuple[Path, Path]) -> None:
    # a dict made from a DataFrame or arrays holds np.int64 ids and np.float64 / array boxes,
    # which json.dump would refuse; every box was "not a positive box" and every id "not an
    # integer", so every image went to review
    path, _ = coco
    data = json.loads(path.read_text())
    made = copy.deepcopy(data)
    for i, annotation in enumerate(made["annotations"]):
        annotation["id"] = np.int64(annotation["id"])
        annotation["image_id"] = np.int64(annotation["image_id"])
        annotation["category_id"] = np.int64(annotation["category_id"])
        annotation["area"] = np.float64(annotation["area"])
        box = np.array(annotation["bbox"], dtype=np.float64)
        annotation["bbox"] = box if i % 3 == 0 else list(box) if i % 3 == 1 else tuple(box)
    for image in made["images"]:
        image["id"], image["width"] = np.int64(image["id"]), np.int64(image["width"])
    given = copy.deepcopy(made)

    expected = sg.validate_coco(data).to_json()
    assert sg.validate_coco(made).to_json() == expected
    assert sg.validate_file(made).to_json() == expected
    assert made["annotations"][1]["id"] == given["annotations"][1]["id"]
    assert type(made["annotations"][1]["id"]) is np.int64  # the caller's dict is theirs


def test_a_coco_dict_is_not_changed_by_judging_it(coco: tuple[Path, Path]) -> None:
    data = json.loads(coco[0].read_text())
    del data["categories"]
    result = sg.validate_coco(data)
    assert result.summary.samples == len(data["images"])
    assert "categories" not in data  # it was added, empty, to the caller's dict


SHAPES: dict[str, Any] = {
    "name": "shapes",
    "seed": 5,
    "categories": ["circle", "square"],
    "image": {"generator": "procedural", "count": 2, "size": [64, 64]},
}
RUBRIC = Path(sg.__file__).parent / "configs" / "rubrics" / "detection.yaml"


def test_a_config_dict_takes_a_path_where_it_names_a_file(
    coco: tuple[Path, Path], tmp_path: Path
) -> None:
    # "image.rubric: Input should be a valid string (got PosixPath(...))", where coco: and
    # images: of the same dict take one
    config = sg.load_config({**SHAPES, "image": {**SHAPES["image"], "rubric": RUBRIC}})
    assert config.image is not None and config.image.rubric == str(RUBRIC)
    targets = tmp_path / "targets.yaml"
    targets.write_text("square: 4\n")
    path, images = coco
    planned = sg.balance(
        path,
        images=images,
        out=tmp_path / "balanced",
        config={"rubric": RUBRIC, "target": targets},
        dry_run=True,
    )
    assert planned.summary["target"] == str(targets)


def test_a_merge_result_names_its_folder_as_every_other_result_does(
    coco: tuple[Path, Path], tmp_path: Path
) -> None:
    path, images = coco
    run = sg.run(SHAPES, out=tmp_path / "shapes")
    merged = sg.merge(path, run, out=tmp_path / "merged", images=images, add_categories=True)
    assert merged.out == tmp_path / "merged" == Path(merged)  # AttributeError: no attribute 'out'
    assert "out='" in repr(merged)
    exported = sg.export(merged.out, format="yolo", out=tmp_path / "merged-yolo")
    assert exported.counts.images == merged.added_images + len(
        json.loads(path.read_text())["images"]
    )


def test_a_rubric_shows_its_criteria_counted_and_its_routing() -> None:
    rubric = sg.load_rubric("detection")  # a notebook cell's last line: 3.7 KB on one line
    shown = repr(rubric)
    assert len(shown) < 600, shown
    assert shown.startswith("Rubric(name='detection', modality='image', ")
    assert "'clarity': <minor, 5 checks>" in shown and "dataset=<4 checks>" in shown
    assert "routing=Routing(accept_at=4.4, reject_below=3.5, " in shown
    assert len(rubric.criteria["clarity"].checks) == 5  # the checks themselves are all there
    assert rubric == sg.load_rubric("detection")


def test_samples_made_again_with_the_same_seed_compare_equal() -> None:
    # "The truth value of an array with more than one element is ambiguous", from the
    # dataclass's == comparing the pixel arrays as tuples
    first, again = sg.generate(SHAPES), sg.generate(SHAPES)
    assert first == again
    other = sg.generate(SHAPES, seed=6)
    assert first != other
    changed = sg.generate(SHAPES)
    assert changed[0].pixels is not None
    changed[0].pixels[0, 0] ^= 1  # one pixel
    assert changed != first and changed[1:] == first[1:]
    assert first[0] != first[0].sample  # another type: not equal, no error


def test_a_file_judged_again_gives_an_equal_result(coco: tuple[Path, Path]) -> None:
    path, images = coco
    first = sg.validate_coco(path, images=images)
    again = sg.validate_coco(str(path), images=str(images))
    assert first.reports == again.reports  # every report was equal, the result was not
    assert first.summary == again.summary and first == again
    assert sg.validate_coco(path, images=images, rubric=RUBRIC) == first  # the same rubric
    other = sg.load_rubric("detection").model_copy(update={"name": "strict"})
    assert sg.validate_coco(path, images=images, rubric=other).summary != first.summary
    # what a notebook prints of a group of findings: none of its counting's own state
    assert "_last" not in repr(first.summary.findings)


@pytest.mark.parametrize("name", [n for n in sg.__all__ if inspect.isfunction(getattr(sg, n))])
def test_help_of_every_function_lists_its_arguments_what_it_returns_and_an_example(
    name: str,
) -> None:
    # the README: "Each function's docstring lists its arguments and what it returns"
    function = getattr(sg, name)
    doc = inspect.getdoc(function) or ""
    assert "Args:" in doc and "Returns:" in doc and "Example:" in doc, name
    args = doc.split("Args:", 1)[-1].split("Returns:", 1)[0]
    missing = [
        p
        for p in inspect.signature(function).parameters
        if f"{p}:" not in args and f"{p}," not in args
    ]
    assert not missing, f"{name}: {missing}"


@pytest.mark.xfail(strict=True, reason="sg.BatchConfig(...) raises pydantic's ValidationError")
def test_a_config_built_as_the_type_is_refused_as_a_loaded_one_is() -> None:
    # pydantic's "1 validation error for BatchConfig / image.procedural.count / Input should be
    # greater than 0 [type=greater_than, ...] For further information visit https://...".
    # Not fixed yet: an __init__ that converts the error is also what model_validate calls
    # (pydantic's custom init), so a config file's errors would lose the file's name, and the
    # API and workers that catch ValidationError from model_validate would see InputError.
    fields = {**SHAPES, "image": {**SHAPES["image"], "count": -2}}
    with pytest.raises(sg.InputError) as built:
        sg.BatchConfig(**fields)
    with pytest.raises(sg.InputError) as loaded:
        sg.load_config(fields)
    assert (
        str(built.value)
        == str(loaded.value)
        == ("<config>: image.count: Input should be greater than 0 (got -2)")
    )
    config = sg.BatchConfig(**SHAPES)  # a right one is built as ever
    assert sg.generate(config) == sg.generate(SHAPES)


def test_a_wrong_type_is_named_with_its_article(tmp_path: Path) -> None:
    with pytest.raises(sg.InputError, match="out=5: is an int, not a path"):
        sg.run(SHAPES, out=5)
    with pytest.raises(sg.InputError, match="is an int, not a rubric name or path"):
        sg.load_rubric(3)  # type: ignore[arg-type]
    with pytest.raises(sg.InputError, match=r"limit=1\.5: is a float, not a whole number"):
        sg.generate(SHAPES, limit=1.5)  # type: ignore[arg-type]
    with pytest.raises(sg.InputError, match="is an object, not a function"):
        sg.run(SHAPES, out=tmp_path / "r", progress=object())


def test_numpys_unsigned_long_is_named_as_it_is_said() -> None:
    from synthgate.arguments import type_named

    assert type_named(np.ulonglong(1)) == "a ulonglong"


def test_a_type_is_named_with_the_article_its_name_is_said_with(tmp_path: Path) -> None:
    from synthgate.arguments import type_named
    from synthgate.review.decision import decision_argument

    said = [  # a vowel letter said as a consonant (you-int), a consonant as a vowel (en-dee)
        (np.zeros(2), "an ndarray"),
        (np.uint8(1), "a uint8"),
        (uuid.uuid4(), "a UUID"),
        (np.add, "a ufunc"),
        (collections.UserDict(), "a UserDict"),
        (HTTPStatus.OK, "an HTTPStatus"),
        (OSError(), "an OSError"),
        (np.int64(1), "an int64"),
        (collections.OrderedDict(), "an OrderedDict"),
        (object(), "an object"),
        (..., "an ellipsis"),
        (np.float32(1), "a float32"),
        ("x", "a str"),
        (None, "a NoneType"),
    ]
    assert [type_named(value) for value, _ in said] == [named for _, named in said]
    array = np.zeros(3)  # a notebook's most common wrong value, in each message that names it
    with pytest.raises(sg.InputError, match="is an ndarray, not a path"):
        sg.run(SHAPES, out=array)
    with pytest.raises(sg.InputError, match="is an ndarray, not a rubric name or path"):
        sg.load_rubric(array)  # type: ignore[arg-type]
    with pytest.raises(sg.InputError, match="is an ndarray, not a function"):
        sg.run(SHAPES, out=tmp_path / "r", progress=array)
    with pytest.raises(sg.InputError, match="is an ndarray, not a Decision"):
        decision_argument(array)
    with pytest.raises(sg.InputError, match="is an int, not a Decision"):
        decision_argument(3)
    assert not (tmp_path / "r").exists()


def test_the_first_example_config_loads_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the package docstring's first line, from a notebook's folder: the working directory's
    # file first, then the shipped one, as a config's own relative paths are looked up
    from synthgate.config import PACKAGE_ROOT

    monkeypatch.chdir(tmp_path)
    assert sg.load_config("configs/quickstart.yaml").name == "quickstart"
    mine = tmp_path / "configs" / "quickstart.yaml"
    mine.parent.mkdir()
    mine.write_text("name: mine\ncategories: [a]\nimage: {generator: procedural, count: 1}\n")
    assert sg.load_config("configs/quickstart.yaml").name == "mine"
    with pytest.raises(sg.InputError) as missing:
        sg.load_config("configs/nope.yaml")
    message = str(missing.value)
    assert message.startswith("configs/nope.yaml: batch config not found")
    assert f"working directory ({tmp_path})" in message
    assert f"shipped configs ({PACKAGE_ROOT / 'configs'})" in message


def test_synthgate_run_of_the_first_example_config_works_from_any_folder(tmp_path: Path) -> None:
    # README's first command, from a folder other than the repository's
    ran = run_cli("run", "configs/quickstart.yaml", "--out", "runs/quickstart", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "runs" / "quickstart" / "manifest.json").is_file()
    missing = run_cli("run", "configs/nope.yaml", cwd=tmp_path)
    assert missing.returncode == 2
    assert "working directory" in missing.stderr and "shipped configs" in missing.stderr
    assert "Traceback" not in missing.stderr


DICT_PATH_CASES = [  # (a config's section naming a file that is nowhere, what the error names)
    ({"text": {"generator": "templates", "templates": "nope.yaml", "count": 1}}, "text.templates"),
    ({"image": {**SHAPES["image"], "rubric": "nope.yaml"}}, "image.rubric"),
]


@pytest.mark.parametrize(("section", "where"), DICT_PATH_CASES)
def test_a_path_not_found_in_a_config_dict_is_said_for_a_dict(
    section: dict[str, Any], where: str, tmp_path: Path
) -> None:
    with pytest.raises(sg.InputError) as from_dict:
        sg.load_config({**SHAPES, **section})
    message = str(from_dict.value)
    assert message.startswith(f"<config>: {where}")
    assert "config file" not in message
    assert "a config given as a dict has no folder of its own" in message
    assert "relative to the working directory" in message
    written = tmp_path / "c.yaml"  # a file's error is as it was
    written.write_text(json.dumps({**SHAPES, **section}))
    with pytest.raises(sg.InputError, match="relative to the working directory or to the config"):
        sg.load_config(written)


def test_images_given_a_file_says_it_is_a_file_not_a_folder(
    coco: tuple[Path, Path], tmp_path: Path
) -> None:
    path, _ = coco
    said = f"images={path}: is a file, not a folder; pass the folder"
    with pytest.raises(sg.InputError) as exported:
        sg.export(path, format="yolo", out=tmp_path / "yolo", images=path)
    assert str(exported.value) == f"{said} of the images"
    with pytest.raises(sg.InputError) as balanced:
        sg.balance(path, images=path, out=tmp_path / "balanced", target=4)
    assert str(balanced.value) == f"{said} of the images"
    run = sg.run({**SHAPES, "categories": ["square", "disc"]}, out=tmp_path / "run")
    with pytest.raises(sg.InputError) as merged:
        sg.merge(path, run.out, images=path, out=tmp_path / "merged")
    assert str(merged.value) == f"{said} the real file_names are in"
    for out in ("yolo", "balanced", "merged"):
        assert not (tmp_path / out).exists()
    missing = tmp_path / "nowhere"  # a folder that is not there is still said so
    with pytest.raises(sg.InputError, match="nowhere: folder not found; pass the folder"):
        sg.export(path, format="yolo", out=tmp_path / "yolo", images=missing)


def test_export_of_a_text_run_tells_a_notebook_the_merge_call_and_the_cli_its_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    texts = {key: value for key, value in small_config().items() if key != "image"}
    sg.run(texts, out="textrun")
    with pytest.raises(sg.InputError) as exported:
        sg.export("textrun", format="yolo", out="yolo")
    advice = "sg.merge(real='YOUR.jsonl', synthetic='textrun', out='merged/')"
    assert str(exported.value).endswith(
        f"merge its accepted rows into your text data instead: {advice}"
    )
    # the advice runs as written, YOUR.jsonl being the user's tickets (NER: no label)
    Path("YOUR.jsonl").write_text(json.dumps({"text": "My order never came"}) + "\n")
    merged = eval(advice, {"sg": sg})
    assert merged.added_rows == 12 and (tmp_path / "merged" / "merged.jsonl").is_file()
    # the CLI's words are as they were, byte for byte
    ran = run_cli("export", "textrun", "-f", "yolo", "--out", "yolo", cwd=tmp_path)
    assert ran.returncode == 2
    assert ran.stderr == (
        "error: textrun: a text run (its samples are in text.jsonl), and export writes image "
        "datasets (COCO, YOLO, Pascal VOC); merge its accepted rows into your text data instead: "
        "synthgate merge --real YOUR.jsonl --synthetic textrun --out merged/\n"
    )
    assert not (tmp_path / "yolo").exists()


def _made(samples: list[sg.GeneratedSample]) -> list[tuple[str, bytes]]:
    """What generate made, as bytes: each sample's labels and provenance, and its pixels."""
    return [
        (s.sample.model_dump_json(), b"" if s.pixels is None else s.pixels.tobytes())
        for s in samples
    ]


LONG_SHAPES = {**SHAPES, "image": {**SHAPES["image"], "count": 20}}  # chunks of 8 images
TEXTS = {key: value for key, value in small_config().items() if key != "image"}
PROGRESS_CASES = [  # (config, limit, the total progress counts to)
    (LONG_SHAPES, None, 20),
    (LONG_SHAPES, 3, 3),
    (TEXTS, 10, 10),
]


@pytest.mark.parametrize(("config", "limit", "total"), PROGRESS_CASES)
def test_generate_reports_its_progress_and_makes_the_same_samples_with_it(
    config: dict[str, Any], limit: int | None, total: int
) -> None:
    # a long batch in a notebook showed nothing until the whole list came back
    seen: list[tuple[int, int]] = []
    made = sg.generate(config, limit=limit, progress=lambda *counts: seen.append(counts))
    done = [counts[0] for counts in seen]
    assert done == sorted(set(done)) and done[0] > 0 and done[-1] == total, seen
    assert {counts[1] for counts in seen} == {total}
    assert _made(made) == _made(sg.generate(config, limit=limit))
    with pytest.raises(sg.InputError, match="progress=True: is a bool, not a function"):
        sg.generate(config, progress=True)


def test_generate_of_nothing_reports_its_progress_done() -> None:
    """`limit=0` makes no sample: a caller waiting for (done, total) to reach its total, a
    bar that closes when it does, heard nothing at all."""
    seen: list[tuple[int, int]] = []
    assert sg.generate(SHAPES, limit=0, progress=lambda *counts: seen.append(counts)) == []
    assert seen == [(0, 0)]
