"""The Python API (`import synthgate as sg`): the README's example runs, the import stays light,
every public name resolves, and the CLI and the library write the same bytes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib
import pytest
import yaml
from balance_fixtures import make_tiny_coco
from test_golden import folder_digests
from typer.testing import CliRunner

import synthgate as sg
from synthgate.cli import app

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "diffusers", "sqlalchemy", "fastapi", "celery", "matplotlib", "albumentations")
SHAPES = {
    "name": "shapes",
    "seed": 3,
    "categories": ["circle", "square", "triangle"],
    "image": {"generator": "procedural", "count": 4, "size": [96, 64]},
}


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"## From Python\n.*?```python\n(.*?)```", readme, re.S)
    assert found, "README.md lost its 'From Python' example"
    return found.group(1)


def test_the_readme_example_runs_without_the_cli(tmp_path: Path) -> None:
    coco, images = make_tiny_coco(tmp_path / "real")
    code = readme_example()
    for name, value in (("COCO", coco), ("IMAGES", images), ("WORK", tmp_path / "work")):
        code, replaced = re.subn(rf"^{name} = .*$", f"{name} = {str(value)!r}", code, flags=re.M)
        assert replaced == 1, f"the example no longer sets {name} on a line of its own"
    matplotlib.use("Agg")
    scope: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), scope)
    work = tmp_path / "work"
    assert len(scope["samples"]) == 8 and len(scope["reports"]) == 8
    assert scope["checked"].summary.samples == 6  # the fixture's images
    assert (work / "shapes" / "accepted.coco.json").is_file()
    assert (work / "balanced" / "merged.coco.json").is_file()
    assert (work / "shapes-yolo" / "data.yaml").is_file()
    assert scope["exported"].counts.images == scope["run"].counts["image"]["accepted"]
    # What a notebook shows of a result is its counts, not every report or class (the
    # dataclass repr of a ValidationResult of 80 images was 100 KB).
    checked, balanced = scope["checked"], scope["balanced"]
    shown = repr(scope["samples"][0])
    assert "pixels=uint8[256, 256, 3], foreground=bool[256, 256]" in shown
    assert shown.startswith("GeneratedSample(sample=<Sample ") and len(shown) < 300
    # An object read back shows its mask by size, not by RLE counts (hundreds of characters an
    # object), and a sample its objects counted; the labels themselves are as they were.
    sample = next(scope["run"].samples())
    mask = sample.objects[0].mask
    assert f"mask=<RLE {mask['size'][0]}x{mask['size'][1]}>" in repr(sample.objects[0])
    assert mask["counts"] not in repr(sample) and mask["counts"] not in str(sample.objects)
    assert f"objects=<{len(sample.objects)} object" in repr(sample)  # counted by category
    assert repr(checked) == (
        f"ValidationResult(rubric='detection', summary=<{checked.summary.brief()}>, reports=6)"
    )
    assert "samples=6" in repr(checked) and len(repr(checked)) < 300
    assert str(checked.summary) == checked.summary.table()
    # what validate_coco's docstring names: `.summary` (`.mean_score`, routes, levels, findings)
    assert [g.check for g in checked.summary.findings] == [
        f["check"] for f in checked.summary.as_dict()["findings"]
    ]
    assert checked.summary.routes and checked.summary.levels and checked.summary.mean_score
    classes = len(balanced.summary["classes"])
    assert f"classes={classes}" in repr(balanced) and len(repr(balanced)) < 300
    assert repr(scope["run"]).startswith(f"RunResult(out={str(work / 'shapes')!r}, batch_id=")


def test_import_synthgate_loads_nothing_heavy() -> None:
    probe = (
        "import sys, synthgate; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {set(HEAVY)!r}))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    )
    assert shown.stdout.strip() == "[]", shown.stdout


def test_every_public_name_resolves_and_is_listed() -> None:
    for name in sg.__all__:
        assert getattr(sg, name) is not None, name
    assert set(dir(sg)) >= set(sg.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        sg.nothing  # noqa: B018


def test_a_notebook_loads_a_rubric_and_passes_it_as_rubric(tmp_path: Path) -> None:
    """sg.calibrate and sg.validate take a Rubric object; the package offered no way to get one
    but a private module (`synthgate.validators.rubric`)."""
    samples = sg.generate(sg.load_config(SHAPES), limit=2)
    shipped = sg.load_rubric("detection")
    assert isinstance(shipped, sg.Rubric) and shipped.name == "detection"
    lenient = shipped.model_copy(update={"name": "lenient"})
    path = tmp_path / "lenient.yaml"
    shipped_yaml = yaml.safe_load((ROOT / "configs" / "rubrics" / "detection.yaml").read_text())
    path.write_text(yaml.safe_dump({**shipped_yaml, "name": "lenient"}))
    assert sg.load_rubric(path).name == "lenient"
    by_object = sg.validate(samples, rubric=lenient)
    by_name = sg.validate(samples, rubric="detection")
    assert [r.route for r in by_object] == [r.route for r in by_name]
    with pytest.raises(sg.InputError, match="rubric 'nothing'"):
        sg.load_rubric("nothing")


def test_the_library_and_the_cli_write_the_same_run_folder(tmp_path: Path) -> None:
    config = tmp_path / "shapes.yaml"
    config.write_text(json.dumps(SHAPES))  # JSON is YAML
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    made = sg.run(SHAPES, out=tmp_path / "library")
    assert made.out == tmp_path / "library"
    assert folder_digests(tmp_path / "cli") == folder_digests(tmp_path / "library")
    stored = list(made.samples())
    assert [s.spec.index for s in stored] == list(range(4))
    assert made.counts["image"]["generated"] == 4


def test_validate_reports_without_changing_the_samples() -> None:
    samples = sg.generate(SHAPES, limit=3)
    before = [s.sample.model_dump_json() for s in samples]
    reports = sg.validate(samples, categories=SHAPES["categories"])
    assert [r.rubric for r in reports] == ["detection"] * 3
    assert all(r.route in ("accepted", "review", "rejected") for r in reports)
    assert [s.sample.model_dump_json() for s in samples] == before
    loose = samples[0].sample.model_copy(deep=True)
    loose.objects[0].bbox = [
        b + d for b, d in zip(loose.objects[0].bbox, [-9, -9, 18, 18], strict=True)
    ]
    found = sg.validate([loose], categories=SHAPES["categories"])[0]
    assert "precision_box_tightness" in {f.check for f in found.findings}


def test_bad_input_names_the_parameter_in_python_and_the_flag_in_the_cli(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("not a folder")
    with pytest.raises(sg.InputError) as raised:
        sg.run(SHAPES, out=target)
    assert raised.value.field == "out" and str(raised.value).startswith(f"out={target}: is a file")
    config = tmp_path / "shapes.yaml"
    config.write_text(json.dumps(SHAPES))
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(target)])
    assert result.exit_code == 2
    assert f"--out {target}: is a file" in result.output and "Traceback" not in result.output
    with pytest.raises(sg.InputError, match="modality=text: the config 'shapes' has no text"):
        sg.generate(SHAPES, modality="text")


def test_generate_makes_the_section_a_config_has() -> None:
    """A text-only config needed modality="text": without it, generate failed with 'the config
    has no image section'. Without a modality it makes the one section the config has."""
    quickstart = sg.load_config("configs/quickstart.yaml")
    texts = quickstart.model_copy(update={"image": None})
    made = sg.generate(texts, limit=2)
    assert [g.sample.spec.modality for g in made] == ["text", "text"]
    assert made[0].sample.text == sg.generate(quickstart, modality="text", limit=1)[0].sample.text
    both = sg.generate(quickstart, limit=1)  # a config with both: its images, as before
    assert both[0].sample.spec.modality == "image"


def test_show_draws_every_object_and_the_findings() -> None:
    matplotlib.use("Agg")
    samples = sg.generate(SHAPES, limit=1)
    report = sg.validate(samples, categories=SHAPES["categories"])[0]
    figure = sg.show(samples[0], report)
    image_axes = figure.axes[0]
    assert len(image_axes.patches) == len(samples[0].sample.objects)
    words = " ".join(t.get_text() for axes in figure.axes for t in axes.texts)
    assert f"score {report.score:g}" in words and f"route {report.route}" in words
    text = sg.generate("configs/quickstart.yaml", modality="text", limit=1)[0]
    drawn = sg.show(text, sg.validate([text])[0])
    assert len(drawn.axes[0].patches) >= len(text.sample.spans) > 0


def test_run_hashes_a_rubric_s_reference_folder_before_the_first_sample(tmp_path: Path) -> None:
    """A folder of real images the rubric names is hashed up front under its own progress (a
    real dataset's folder takes minutes), and one that is not there stops the run before
    anything is made or written."""
    import shutil

    from synthgate.validators.rubric import RUBRICS_DIR

    plain = sg.run(SHAPES, out=tmp_path / "plain")
    real = tmp_path / "real"  # a real dataset holding copies of two of the images
    real.mkdir()
    for made in sorted((plain.out / "images").glob("*.png"))[:2]:
        shutil.copy(made, real / f"real-{made.name}")
    data = yaml.safe_load((RUBRICS_DIR / "detection.yaml").read_text())
    spec = next(
        s for c in data["criteria"].values() for s in c["checks"]
        if s["check"] == "correctness_reference_copy"
    )  # fmt: skip
    spec["params"] = {"reference_images": str(real)}
    rubric = tmp_path / "with_reference.yaml"
    rubric.write_text(yaml.safe_dump(data, sort_keys=False))
    config = {**SHAPES, "image": {**SHAPES["image"], "rubric": str(rubric)}}
    events: list[Any] = []
    before = sorted(tmp_path.iterdir())

    def hashed(done: int, total: int) -> None:
        assert sorted(tmp_path.iterdir()) == before  # no sample made, no run folder begun
        events.append((done, total))

    result = sg.run(
        config,
        out=tmp_path / "run",
        progress=lambda modality, done, total: events.append(modality),
        reference_progress=hashed,
    )
    assert events[:2] == [(1, 2), (2, 2)] and set(events[2:]) == {"image"}
    bits = [s.report.measurements.get("reference_hash_bits") for s in result.samples()]
    assert bits.count(0) == 2  # the two copies are found
    spec["params"] = {"reference_images": str(tmp_path / "gone")}
    rubric.write_text(yaml.safe_dump(data, sort_keys=False))
    events.clear()
    with pytest.raises(sg.InputError, match="is not a folder"):
        sg.run(config, out=tmp_path / "refused", progress=lambda *counts: events.append(counts))
    assert events == [] and not (tmp_path / "refused").exists()
    assert not list(tmp_path.glob(".refused*"))
