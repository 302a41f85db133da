"""What a notebook passes to the library, checked at the door.

A wrong type or value raises `InputError` naming the parameter and the fix, before any work (no
TypeError or AttributeError from deep inside, no numpy error about seeds); what is meant is
taken (a NumPy integer seed, a result where its folder goes); and no output replaces a file the
work reads or a database. Found by driving every public function as a notebook would.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from balance_fixtures import make_tiny_coco

import synthgate as sg
from synthgate.arguments import names_argument, path_argument, whole_number

SHAPES: dict[str, Any] = {
    "name": "shapes",
    "seed": 5,
    "categories": ["circle", "square"],
    "image": {"generator": "procedural", "count": 3, "size": [64, 64]},
}


@pytest.fixture(scope="module")
def coco(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_tiny_coco(tmp_path_factory.mktemp("coco"))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> sg.RunResult:
    return sg.run(SHAPES, out=tmp_path_factory.mktemp("runs") / "shapes")


def _refused(call: Any, field: str, words: str) -> None:
    with pytest.raises(sg.InputError) as raised:
        call()
    assert raised.value.field == field, str(raised.value)
    assert words in str(raised.value), str(raised.value)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (123, "is an int, not a path"),
        (None, "is a NoneType"),
        (["a.yaml"], "is a list"),
        ("", "config='': is empty"),  # Path("") is ".": it was "'.: is a folder'"
        ("  ", "config='  ': is empty"),
        # was "name: x\ncategories: [a]\n: batch config not found; check the path"
        ("name: x\ncategories: [a]\n", "is YAML text, not the path of a config file"),
    ],
)
def test_a_path_of_the_wrong_type_names_the_parameter(value: Any, words: str) -> None:
    _refused(lambda: sg.load_config(value), "config", words)


def test_every_public_path_parameter_refuses_a_non_path(
    coco: tuple[Path, Path], tmp_path: Path
) -> None:
    coco_file, images = coco
    _refused(lambda: sg.validate_coco(5), "coco", "not a path")
    _refused(lambda: sg.validate_coco(coco_file, images=5), "images", "not a path")
    _refused(lambda: sg.validate_coco(coco_file, json=5), "json", "not a path")
    _refused(lambda: sg.balance(coco_file, images=5, out=tmp_path / "b"), "images", "not a")
    _refused(
        lambda: sg.balance(coco_file, images=images, out=tmp_path / "b", config=7), "config", "int"
    )
    _refused(lambda: sg.merge(5, tmp_path, out=tmp_path / "m"), "real", "not a path")
    _refused(lambda: sg.export(5, format="yolo", out=tmp_path / "e"), "source", "not a path")
    _refused(lambda: sg.calibrate(5), "db", "not a path")
    # a folder that is no run: it was named `run` (the CLI's --run), not the parameter `db`
    _refused(lambda: sg.calibrate(tmp_path), "db", "a folder with no synthgate.db")
    assert not (tmp_path / "b").exists() and not (tmp_path / "e").exists()


def test_seeds_and_counts_are_whole_numbers(tmp_path: Path) -> None:
    _refused(lambda: sg.run(SHAPES, out=tmp_path / "a", seed="5"), "seed", "is a str")
    _refused(lambda: sg.run(SHAPES, out=tmp_path / "b", seed=-1), "seed", "must be from 0")
    _refused(lambda: sg.run(SHAPES, out=tmp_path / "c", seed=2.0), "seed", "is a float")
    _refused(lambda: sg.generate(SHAPES, limit="2"), "limit", "is a str")
    _refused(lambda: sg.generate(SHAPES, limit=1.5), "limit", "is a float")
    _refused(lambda: sg.generate(SHAPES, modality="name"), "modality", '"image" or "text"')
    assert not any(tmp_path.iterdir()), "refused before any output"


def test_a_numpy_seed_is_the_same_seed(tmp_path: Path) -> None:
    """The batch id and every byte derive from the seed: np.int64(7) must mean 7."""
    plain = sg.run(SHAPES, out=tmp_path / "plain", seed=7)
    numpy = sg.run(SHAPES, out=tmp_path / "numpy", seed=np.int64(7))
    assert numpy.batch_id == plain.batch_id
    assert (tmp_path / "numpy" / "coco.json").read_bytes() == (
        tmp_path / "plain" / "coco.json"
    ).read_bytes()


def test_a_config_changed_after_loading_is_checked_again(
    recwarn: pytest.WarningsRecorder, tmp_path: Path
) -> None:
    config = sg.load_config(SHAPES)
    config.seed = -1
    with pytest.raises(sg.InputError, match="seed"):
        sg.generate(config, limit=1)
    # A value of the wrong type: pydantic's "serializer warnings" went to stderr on every call
    # before the InputError that names the field.
    config.seed = "x"  # type: ignore[assignment]
    with pytest.raises(sg.InputError, match="seed: is text where a number goes"):
        sg.generate(config, limit=1)
    config.seed = 5
    config.categories.append(3)  # type: ignore[arg-type]
    with pytest.raises(sg.InputError, match=r"categories\.2"):
        sg.run(config, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert [str(w.message) for w in recwarn] == []
    config.categories.pop()
    config.seed = 5
    assert [s.sample.id for s in sg.generate(config, limit=2)] == [
        s.sample.id for s in sg.generate(SHAPES, limit=2)
    ]


def test_a_range_out_of_order_shows_the_value_once() -> None:
    """The range checks' messages held the value, and the config's error added it again:
    'must have min <= max (got [2.0, 1.0]) (got [2, 1])'."""
    config = {**SHAPES, "image": {**SHAPES["image"], "objects_per_image": [3, 1]}}
    with pytest.raises(sg.InputError) as refused:
        sg.load_config(config)
    message = str(refused.value)
    assert "image.objects_per_image: [min, max] must have min <= max (got [3, 1])" in message
    assert message.count("(got") == 1
    layout = {"generator": "diffusion_layout", "count": 1, "box_scale_range": [0.5, 1.2]}
    with pytest.raises(sg.InputError) as refused:
        sg.load_config({**SHAPES, "image": {**layout, "model": {"path": "m"}}})
    message = str(refused.value)
    assert (
        "image.box_scale_range: a box side is at most the image side: max must be <= 1" in message
    )
    assert message.count("(got") == 1, message


def test_a_config_string_with_a_lone_surrogate_is_refused_naming_its_place(
    tmp_path: Path,
) -> None:
    """A notebook's `"\\ud800"` (or a JSON config's) is no character: `sg.run` made the
    batch folder and then failed writing the category with a UnicodeEncodeError traceback."""
    config = {**SHAPES, "categories": ["circle", "sq\ud800"]}
    with pytest.raises(sg.InputError, match=r"categories\[1\]: .*lone surrogate"):
        sg.load_config(config)
    with pytest.raises(sg.InputError, match="lone surrogate"):
        sg.run(config, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_one_name_where_a_list_goes_is_refused_not_split_into_letters() -> None:
    samples = sg.generate(SHAPES, limit=1)
    _refused(
        lambda: sg.validate(samples, categories="circle"), "categories", "categories=['circle']"
    )
    listed = sg.validate(samples, categories=["circle", "square"])
    assert listed[0].score == sg.validate(samples)[0].score  # the taxonomy holds every label
    _refused(lambda: sg.validate(samples[0]), "samples", "is one sample")
    _refused(lambda: sg.validate([{"id": 1}]), "samples", "not a sample")
    _refused(lambda: sg.calibrate("x.db", batches="cal"), "batches", "batches=['cal']")


def test_results_go_where_their_folder_does(run: sg.RunResult, tmp_path: Path) -> None:
    assert os.fspath(run) == str(run.out)
    exported = sg.export(run, format="yolo", out=tmp_path / "yolo")
    assert exported.source == run.out / "accepted.coco.json"
    assert os.fspath(exported) == str(tmp_path / "yolo")
    assert "skipped=0" in repr(exported) and len(repr(exported)) < 400


def test_run_samples_says_what_it_cannot_read(run: sg.RunResult, tmp_path: Path) -> None:
    assert len(list(run.samples("image"))) == 3
    _refused(lambda: run.samples("images"), "modality", '"image" or "text"')
    moved = sg.RunResult(out=tmp_path / "nowhere", batch_id=run.batch_id)
    _refused(lambda: moved.samples(), "run", "has no synthgate.db")
    assert not (tmp_path / "nowhere").exists(), "no database made where none was"
    other = sg.RunResult(out=run.out, batch_id="another-batch")
    _refused(lambda: other.samples(), "run", "no longer holds batch another-batch")


def test_no_output_replaces_what_the_work_reads_or_a_database(
    run: sg.RunResult, coco: tuple[Path, Path], tmp_path: Path
) -> None:
    source = tmp_path / "annotations.json"
    source.write_bytes(coco[0].read_bytes())
    before = source.read_bytes()
    _refused(lambda: sg.validate_coco(source, json=source), "json", "which this reads")
    _refused(lambda: sg.validate_coco(str(source), json=f"{tmp_path}/./annotations.json"), "json",
             "which this reads")  # fmt: skip
    assert source.read_bytes() == before
    database = run.out / "synthgate.db"
    held = database.read_bytes()
    _refused(lambda: sg.validate_coco(run.out / "coco.json", json=database), "json", "database")
    _refused(lambda: sg.calibrate(run, out=database), "out", "database")
    assert database.read_bytes() == held


def test_a_rubric_object_judges_a_file(coco: tuple[Path, Path]) -> None:
    """A calibrated rubric (`calibrate(...).rubric`) is a `Rubric`: validate_coco takes it."""
    from synthgate.validators.rubric import load_rubric

    rubric = load_rubric("detection")
    by_object = sg.validate_coco(coco[0], rubric=rubric)
    by_name = sg.validate_coco(coco[0], rubric="detection")
    assert json.loads(by_object.to_json()) == json.loads(by_name.to_json())


def test_a_balance_config_may_be_a_dict(coco: tuple[Path, Path], tmp_path: Path) -> None:
    coco_file, images = coco
    result = sg.balance(coco_file, images=images, out=tmp_path / "b", config={"target": "max"})
    assert result.summary["target"] == "max"
    with pytest.raises(sg.InputError, match="unknown key 'nope'"):
        sg.balance(coco_file, images=images, out=tmp_path / "c", config={"nope": 1})


def test_show_makes_figures_pyplot_does_not_keep(run: sg.RunResult) -> None:
    import matplotlib.pyplot as plt

    sample = next(run.samples("image"))
    open_before = len(plt.get_fignums())
    for _ in range(3):
        sg.show(sample, image_root=run).savefig(os.devnull, format="png")
    assert len(plt.get_fignums()) == open_before
    _refused(lambda: sg.show([sample]), "sample", "is not a sample")


@pytest.mark.parametrize(
    ("helper", "value", "words"),
    [
        (lambda v: whole_number(v, "n"), True, "is a bool"),
        (lambda v: whole_number(v, "n", maximum=3), 4, "from 0 to 3"),
        (lambda v: names_argument(v, "names"), ["a", 1], "holds an int"),
        (lambda v: names_argument(v, "names"), {"a": 1}, "is a dict"),
        (lambda v: path_argument(v, "path"), b"x", "is a bytes"),
    ],
)
def test_the_argument_helpers_refuse(helper: Any, value: Any, words: str) -> None:
    with pytest.raises(sg.InputError, match=words):
        helper(value)
    assert whole_number(np.int32(3), "n") == 3 and isinstance(whole_number(np.int32(3), "n"), int)
    assert names_argument(("a", "b"), "names") == ["a", "b"]


def test_an_output_folder_holding_an_input_is_refused(
    coco: tuple[Path, Path], tmp_path: Path
) -> None:
    """Replacing the folder would delete the user's own files: a config kept in its run folder,
    a balance target or config kept in the balance output."""
    first = sg.run(SHAPES, out=tmp_path / "run")
    config = first.out / "shapes.yaml"
    config.write_text(json.dumps(SHAPES))
    _refused(lambda: sg.run(config, out=first.out), "out", "an input")
    assert config.is_file()
    coco_file, images = coco
    balanced = sg.balance(coco_file, images=images, out=tmp_path / "bal", target="max")
    target = balanced.out / "target.yaml"
    target.write_text("circle: 4\n")
    _refused(
        lambda: sg.balance(coco_file, images=images, out=balanced.out, target=str(target)),
        "out",
        "an input",
    )
    assert target.is_file()


def test_an_option_that_does_not_apply_is_refused_not_ignored(tmp_path: Path) -> None:
    """validate took images for a text file and min_score without predictions, and ignored
    them: the user believed pixels or a score cut had been checked."""
    from typer.testing import CliRunner

    from synthgate.cli import app

    texts = tmp_path / "t.jsonl"
    texts.write_text('{"text": "hello there, world", "label": "a"}\n')
    _refused(lambda: sg.validate_file(texts, images=tmp_path), "images", "text JSONL")
    # A folder not there was "not a folder; pass the folder the file_names are in": given one,
    # the user was then told to leave it out.
    _refused(lambda: sg.validate_file(texts, images=tmp_path / "nope"), "images", "text JSONL")
    result = CliRunner().invoke(app, ["validate", str(texts), "--min-score", "0.5"])
    assert result.exit_code == 2 and "--min-score 0.5: applies to a COCO results" in result.output


def test_a_text_reference_with_no_text_is_refused(tmp_path: Path) -> None:
    """A reference whose rows keep their text under another field (balance takes text_field)
    compared every sample with nothing: exact copies scored 5."""
    texts = tmp_path / "t.jsonl"
    texts.write_text('{"text": "the kettle broke on the second day of use", "label": "neg"}\n')
    reference = tmp_path / "real.jsonl"
    reference.write_text('{"body": "the kettle broke on the second day of use", "label": "neg"}\n')
    _refused(
        lambda: sg.validate_file(texts, reference=reference), "reference", "no row with a text"
    )
    reference.write_text('{"text": "the kettle broke on the second day of use", "label": "neg"}\n')
    found = sg.validate_file(texts, reference=reference)
    assert "with real real.jsonl line 1" in found.to_json()  # the copy is found


def test_a_path_starting_with_a_tilde_is_in_the_home_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`out="~/runs/x"` wrote the run into a folder named "~" in the working folder (where
    nobody looks, and that a shell's `rm -r ~` then aims at the home folder), and
    `load_config("~/c.yaml")` said a file that is there was not found."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    (home / "shapes.yaml").write_text(json.dumps(SHAPES))
    (home / "my.yaml").write_text(
        (Path(sg.__file__).parent / "configs/rubrics/detection.yaml").read_text()
    )
    result = sg.run("~/shapes.yaml", out="~/runs/shapes")
    assert result.out == home / "runs" / "shapes"
    assert (home / "runs" / "shapes" / "coco.json").is_file()
    assert sg.load_config(Path("~/shapes.yaml")).name == "shapes"
    samples = sg.generate(SHAPES, limit=1)
    assert sg.validate(samples, rubric="~/my.yaml")[0].rubric == "detection"
    templates = {
        "name": "texts",
        "text": {"generator": "templates", "templates": "~/t.yaml", "count": 1},
    }
    (home / "t.yaml").write_text(
        (Path(sg.__file__).parent / "configs/templates/support_tickets.yaml").read_text()
    )
    assert sg.load_config(templates).text.templates == home / "t.yaml"  # type: ignore[union-attr]
    assert not (work / "~").exists()
    # a `~` balance config is read from the home folder, and an `out` holding it is refused
    # (it would be deleted with it), as for any other path
    (home / "balance.yaml").write_text("target: max\n")
    coco_file, images = make_tiny_coco(tmp_path / "real")
    _refused(
        lambda: sg.balance(coco_file, images=images, out=home, config="~/balance.yaml"),
        "out",
        "balance.yaml, an input",
    )
    assert (home / "balance.yaml").is_file()
    plan = sg.balance(
        coco_file, images=images, out=work / "b", config="~/balance.yaml", dry_run=True
    )
    assert (
        plan.summary
        == sg.balance(coco_file, images=images, out=work / "b", target="max", dry_run=True).summary
    )


def test_a_rubric_of_the_wrong_type_names_the_parameter() -> None:
    """`rubric=["detection"]` was looked for as a file named "['detection']"."""
    samples = sg.generate(SHAPES, limit=1)
    _refused(lambda: sg.validate(samples, rubric=["detection"]), "rubric", "is a list")
    _refused(lambda: sg.calibrate("x.db", rubric=3), "rubric", "is an int")


@pytest.mark.parametrize(
    ("width", "words"),
    [
        (0, "must be from 3 to 100"),  # was numpy's LinAlgError: Singular matrix
        (-1, "must be from 3 to 100"),  # matplotlib's "figure size must be positive finite"
        (float("nan"), "must be from 3 to 100"),
        ("8", "is a str, not a number"),  # a TypeError from the arithmetic on it
    ],
)
def test_show_refuses_a_width_matplotlib_cannot_draw(width: Any, words: str) -> None:
    sample = sg.generate(SHAPES, limit=1)[0]
    _refused(lambda: sg.show(sample, width=width), "width", words)
    assert sg.show(sample, width=3).get_figwidth() == 3


def test_generate_takes_a_seed_as_run_does(tmp_path: Path) -> None:
    """`sg.generate(config, seed=7)` was a TypeError: only `run` took one, and a notebook had to
    edit the config to try another seed."""
    seeded = sg.generate(SHAPES, seed=7)
    edited = sg.generate({**SHAPES, "seed": 7})
    assert [s.sample for s in seeded] == [s.sample for s in edited]
    assert all((a.pixels == b.pixels).all() for a, b in zip(seeded, edited, strict=True))  # type: ignore[union-attr]
    assert [s.sample for s in seeded] != [s.sample for s in sg.generate(SHAPES)]
    run = sg.run(SHAPES, out=tmp_path / "run", seed=7)
    assert [s.id for s in run.samples()] == [s.sample.id for s in seeded]
    assert [s.provenance.seed for s in run.samples()] == [s.sample.provenance.seed for s in seeded]
    _refused(lambda: sg.generate(SHAPES, seed="7"), "seed", "is a str")
    _refused(lambda: sg.generate(SHAPES, seed=-1), "seed", "must be from 0")


def test_a_progress_that_is_not_a_function_is_refused_before_any_work(
    run: sg.RunResult, coco: tuple[Path, Path], tmp_path: Path
) -> None:
    """`progress=True`, hoping for a bar, was "TypeError: 'bool' object is not callable" from
    inside the runner once the first chunk was made."""
    _refused(lambda: sg.run(SHAPES, out=tmp_path / "r", progress=True), "progress", "is a bool")
    _refused(
        lambda: sg.run(SHAPES, out=tmp_path / "r", reference_progress=5),
        "reference_progress",
        "not a function",
    )
    _refused(
        lambda: sg.merge(coco[0], run, out=tmp_path / "m", images=coco[1], write_progress="bar"),
        "write_progress",
        "is a str, not a function",
    )
    assert not any(tmp_path.iterdir())
    seen: list[int] = []
    sg.run(SHAPES, out=tmp_path / "r", progress=lambda modality, done, total: seen.append(done))
    assert sum(seen) == SHAPES["image"]["count"]


def test_a_switch_is_true_or_false_not_any_truthy_value(
    run: sg.RunResult, coco: tuple[Path, Path], tmp_path: Path
) -> None:
    """`add_categories="False"` appended the run's classes to the merged file: any string or
    number was read as True."""
    coco_file, images = coco
    for value in ("False", "no", 0, 1, None):
        _refused(
            lambda value=value: sg.merge(
                coco_file, run, out=tmp_path / "m", images=images, add_categories=value
            ),
            "add_categories",
            "not True or False",
        )
    _refused(
        lambda: sg.merge(coco_file, run, out=tmp_path / "m", images=images, skip_invalid="yes"),
        "skip_invalid",
        "pass skip_invalid=True or skip_invalid=False",
    )
    assert not (tmp_path / "m").exists()
    merged = sg.merge(coco_file, run, out=tmp_path / "m", images=images, add_categories=np.True_)
    assert merged.new_categories == ["circle"]  # the fixture has square, not circle


def test_show_s_figure_draws_itself_for_a_notebook_without_pyplot() -> None:
    """IPython shows a plain Figure only once pyplot or `%matplotlib inline` registered its PNG
    formatter: in a fresh kernel `sg.show(sample)` printed `<Figure size 800x1000 with 2 Axes>`.
    The figure answers IPython's `_repr_png_` itself."""
    import io
    import pickle

    from matplotlib.figure import Figure
    from PIL import Image

    sample = sg.generate(SHAPES, limit=1)[0]
    figure = sg.show(sample, width=4)
    assert isinstance(figure, Figure)
    png = figure._repr_png_()  # type: ignore[attr-defined]
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, _ = Image.open(io.BytesIO(png)).size
    assert 300 < width <= 400  # 4 inches at 100 dpi, the margins trimmed
    assert isinstance(pickle.loads(pickle.dumps(figure)), Figure)


def test_balance_validate_and_export_take_switches_and_functions_as_run_and_merge_do(
    run: sg.RunResult, coco: tuple[Path, Path], tmp_path: Path
) -> None:
    """`dry_run="False"` made a dry run, `skip_invalid="no"` left entries out, `keep_reports=
    "False"` kept none, `force="False"` replaced an earlier export, and a progress that is no
    function was a TypeError once work began."""
    coco_file, images = coco
    out = tmp_path / "b"
    exported = sg.export(run.out, format="coco", out=tmp_path / "e")
    marker = sorted(p.name for p in exported.out.iterdir())
    _refused(
        lambda: sg.export(run.out, format="coco", out=exported.out, force="False"), "force", "a str"
    )
    _refused(
        lambda: sg.export(run.out, format="yolo", out=tmp_path / "y", copy_images="no"),
        "copy_images",
        "not True or False",
    )
    _refused(
        lambda: sg.export(run.out, format="yolo", out=tmp_path / "y", progress=3),
        "progress",
        "not a function",
    )
    assert sorted(p.name for p in exported.out.iterdir()) == marker
    assert not (tmp_path / "y").exists()
    _refused(
        lambda: sg.balance(coco_file, images=images, out=out, dry_run="False"), "dry_run", "a str"
    )
    _refused(
        lambda: sg.balance(coco_file, images=images, out=out, skip_invalid="no"),
        "skip_invalid",
        "not True or False",
    )
    _refused(
        lambda: sg.balance(coco_file, images=images, out=out, check_progress=True),
        "check_progress",
        "not a function",
    )
    _refused(lambda: sg.validate_coco(coco_file, keep_reports="False"), "keep_reports", "a str")
    _refused(lambda: sg.validate_coco(coco_file, progress=1), "progress", "not a function")
    _refused(
        lambda: sg.balance_text(coco_file, out=out, progress="bar"), "progress", "not a function"
    )
    assert not out.exists()


def test_validate_names_its_parameters_for_a_config_or_a_rubric_of_the_other_modality() -> None:
    """`validate(config_dict)` said "samples=str: holds something that is not a sample" (the
    dict's keys), and a rubric of the other modality was named as a config key, text.rubric."""
    _refused(lambda: sg.validate(SHAPES), "samples", "generate(config)")
    texts = {
        "name": "t",
        "text": {
            "generator": "templates",
            "templates": str(Path(sg.__file__).parent / "configs/templates/support_tickets.yaml"),
            "count": 1,
        },
    }
    _refused(lambda: sg.validate(sg.generate(texts), rubric="detection"), "rubric", "judges image")


def test_export_skip_invalid_is_a_switch_too(coco: tuple[Path, Path], tmp_path: Path) -> None:
    """`skip_invalid="False"` read as True: invalid images silently left out of an export, as
    merge and balance now refuse."""
    coco_file, images = coco
    _refused(
        lambda: sg.export(
            coco_file, format="yolo", out=tmp_path / "e", images=images, skip_invalid="False"
        ),
        "skip_invalid",
        "not True or False",
    )


def test_a_tilde_target_file_is_in_the_home_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """README: 'A path may start with ~ ... in a parameter and in a config'; balance's
    `target=` (and a balance config's `target:`) YAML path is still taken as a folder "~"."""
    from synthgate.workflows.quotas import parse_target

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "t.yaml").write_text("circle: 3\n")
    assert parse_target("~/t.yaml") == tmp_path / "t.yaml"


def test_a_label_field_no_row_holds_is_refused_naming_it(tmp_path: Path) -> None:
    """validate_file(rows, label_field="lable"), a typo for the rows' `label`: no label was read,
    the file was judged with the ner rubric and every row accepted at 5.0 (found by a hunt: 30
    of 30). balance_text refused the same typo; validate_file now does, naming the fields."""
    rows = tmp_path / "reviews.jsonl"
    rows.write_text(
        "".join(
            json.dumps(
                {
                    "text": f"This blender is {'great' if i % 3 else 'awful'}, order {i}.",
                    "label": "pos" if i % 3 else "neg",
                }
            )
            + "\n"
            for i in range(18)
        ),
        encoding="utf-8",
    )
    assert sg.validate_file(rows).rubric.name == "classification"  # the right field: labels read
    with pytest.raises(sg.InputError, match="lable"):
        sg.balance_text(rows, out=tmp_path / "balanced", label_field="lable")
    with pytest.raises(sg.InputError) as refused:
        sg.validate_file(rows, label_field="lable")
    message = str(refused.value)
    assert "no row holds `lable`" in message, message
    assert "`label`, `text`" in message and "label_field" in message, message


def test_a_label_field_the_rows_hold_after_row_200_is_not_refused_as_a_typo(
    tmp_path: Path,
) -> None:
    """7418828 refused a label_field no row of the first 200 holds, as a typo ("name the field
    of their label with label_field, or leave it out"). A file whose first 200 rows are not
    labelled yet and whose later rows hold the field given (labelled rows appended to a pool)
    names it right: both fixes the message offers are wrong for it, and the file that validated
    before was refused (a second read)."""
    from synthgate.validators.validate import validate_file

    rows = [{"text": f"Unlabelled review number {i} of the pool."} for i in range(210)]
    rows += [
        {"text": f"Labelled review number {i}, quite good.", "category": "pos"} for i in range(20)
    ]
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")

    result = validate_file(path, label_field="category")

    assert result.summary.samples == len(rows)
