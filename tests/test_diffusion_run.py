"""`synthgate run` with each diffusion generator on tiny local pipelines, end to end.

The COCO it writes must pass the procedural generator's label invariants; a re-run with the same
seed must write the same bytes; a missing, broken or wrong model, CUDA without a GPU and settings
the model cannot run must fail with one clear message, exit code 2 and nothing written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from safetensors.torch import load_file, save_file
from tiny_diffusers import CATEGORIES, GENERATORS, KIND_OF_GENERATOR, image_section
from typer.testing import CliRunner

import synthgate
from synthgate.cli import app
from synthgate.errors import InputError

pytest_plugins = ["diffusion_fixtures"]  # tiny_models
runner = CliRunner()


def batch(generator: str, model_path: Path | str, **overrides: Any) -> dict[str, Any]:
    section = image_section(generator, model_path, **{"count": 5, **overrides})
    return {"name": f"tiny-{generator}", "seed": 5, "categories": CATEGORIES, "image": section}


def run(config: dict[str, Any], out: Path) -> Any:
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return runner.invoke(app, ["run", str(path), "--out", str(out)])


@pytest.fixture(scope="module")
def run_folders(
    tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("diffusion-runs")
    folders = {}
    for generator in GENERATORS:
        out = root / generator
        result = run(batch(generator, tiny_models[KIND_OF_GENERATOR[generator]]), out)
        assert result.exit_code == 0, result.output
        folders[generator] = out
    return folders


@pytest.mark.parametrize("generator", GENERATORS)
def test_run_writes_coco_with_exact_labels(generator: str, run_folders: dict[str, Path]) -> None:
    folder = run_folders[generator]
    coco = COCO(str(folder / "coco.json"))
    images = coco.dataset["images"]
    assert len(images) == 5
    annotations = coco.dataset["annotations"]
    assert annotations, "five images from a tiny model should still hold labelled objects"
    ids = [a["id"] for a in annotations]
    assert len(ids) == len(set(ids)) and min(ids) >= 1
    names = {c["id"]: c["name"] for c in coco.dataset["categories"]}
    for annotation in annotations:
        assert names[annotation["category_id"]] in CATEGORIES
        segmentation = annotation["segmentation"]
        decoded = mask_utils.decode({**segmentation, "counts": segmentation["counts"].encode()})
        assert int(decoded.sum()) == annotation["area"]
        rows, cols = np.nonzero(decoded)
        tight = [cols.min(), rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1]
        assert annotation["bbox"] == [float(v) for v in tight]
        assert annotation["iscrowd"] == 0
    for image in images:
        with Image.open(folder / image["file_name"]) as pil:
            assert pil.size == (image["width"], image["height"]) == (64, 64)
        provenance = image["synthgate"]["provenance"]
        assert provenance["generator"] == generator
        assert provenance["seed"] == image["synthgate"]["seed"]
        model = provenance["model"]
        assert {"path", "revision", "dtype", "device", "scheduler", "steps", "guidance"} <= set(
            model
        )
        assert provenance["prompt"]
        report = image["synthgate"]["report"]  # the rubric was applied to every sample
        assert report["rubric"] == "detection" and image["synthgate"]["status"] == report["route"]
        assert set(report["levels"]) == {"correctness", "completeness", "precision", "clarity"}
    accepted = COCO(str(folder / "accepted.coco.json")).dataset["images"]
    assert [i["id"] for i in accepted] == [
        i["id"] for i in images if i["synthgate"]["status"] == "accepted"
    ]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"]["image"]["generated"] == 5


@pytest.mark.parametrize("generator", GENERATORS)
def test_a_rerun_with_the_same_seed_writes_the_same_bytes(
    generator: str, run_folders: dict[str, Path], tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    again = tmp_path / "again"
    result = run(batch(generator, tiny_models[KIND_OF_GENERATOR[generator]]), again)
    assert result.exit_code == 0, result.output
    first = run_folders[generator]
    assert (again / "coco.json").read_bytes() == (first / "coco.json").read_bytes()
    names = sorted(p.name for p in (first / "images").iterdir())
    assert names == sorted(p.name for p in (again / "images").iterdir())
    for name in names:
        assert (again / "images" / name).read_bytes() == (first / "images" / name).read_bytes()


def _missing(models: dict[str, Path], scratch: Path) -> dict[str, Any]:
    return batch("diffusion_layout", "/nonexistent/tiny-gligen")


def _wrong_kind(models: dict[str, Path], scratch: Path) -> dict[str, Any]:
    return batch("diffusion_inpaint", models["text2image"])


def _cuda(models: dict[str, Path], scratch: Path) -> dict[str, Any]:
    return batch("diffusion_object_paste", models["text2image"], model={"device": "cuda"})


def _broken_layout(
    models: dict[str, Path], scratch: Path, part: str, content: bytes | None
) -> dict[str, Any]:
    """A batch on a copy of the tiny GLIGEN folder with `part` rewritten, or deleted (None)."""
    folder = scratch / "gligen"
    shutil.copytree(models["layout"], folder)
    if content is None:
        shutil.rmtree(folder / part)
    else:
        (folder / part).write_bytes(content)
    return batch("diffusion_layout", folder)


def _index_not_json(models: dict[str, Path], scratch: Path) -> dict[str, Any]:
    return _broken_layout(models, scratch, "model_index.json", b"{")


def _unet_config_not_json(models: dict[str, Path], scratch: Path) -> dict[str, Any]:
    return _broken_layout(models, scratch, "unet/config.json", b"{")


def _no_tokenizer(models: dict[str, Path], scratch: Path) -> dict[str, Any]:
    return _broken_layout(models, scratch, "tokenizer", None)


def _truncated_weights(models: dict[str, Path], scratch: Path) -> dict[str, Any]:
    weights = models["layout"] / "text_encoder" / "model.safetensors"
    return _broken_layout(
        models, scratch, "text_encoder/model.safetensors", weights.read_bytes()[:5000]
    )


def _weights_of_other_shapes(models: dict[str, Path], scratch: Path) -> dict[str, Any]:
    config = json.loads((models["layout"] / "text_encoder" / "config.json").read_text())
    wider = json.dumps({**config, "hidden_size": 32, "projection_dim": 32}).encode()
    return _broken_layout(models, scratch, "text_encoder/config.json", wider)


def _half_the_unet_weights(models: dict[str, Path], scratch: Path) -> dict[str, Any]:
    # A conversion or copy that lost weights: diffusers draws the missing ones at random (from
    # torch's unseeded global generator), so the run's images are noise that a re-run with the
    # same seed does not even repeat.
    folder = scratch / "gligen"
    shutil.copytree(models["layout"], folder)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(weights)
    kept = dict(sorted(tensors.items())[len(tensors) // 2 :])
    save_file(kept, weights, metadata={"format": "pt"})
    return batch("diffusion_layout", folder)


def _phrase_too_long(models: dict[str, Path], scratch: Path) -> dict[str, Any]:
    # The tiny tokenizer spends a token per byte: 120 letters pass CLIP's 77 positions.
    config = batch("diffusion_layout", models["layout"])
    config["categories"] = ["x" * 120, "cat"]
    return config


def _pool_dir_is_a_file(models: dict[str, Path], scratch: Path) -> dict[str, Any]:
    (scratch / "pool").write_text("not a folder")
    return batch("diffusion_object_paste", models["text2image"], pool_dir=str(scratch / "pool"))


def _strength_leaves_no_step(models: dict[str, Path], scratch: Path) -> dict[str, Any]:
    return batch("diffusion_inpaint", models["inpaint"], strength=0.1)  # 2 steps x 0.1


def _clip_text_tower_only(models: dict[str, Path], scratch: Path) -> dict[str, Any]:
    # A Stable Diffusion folder's text_encoder/ is a CLIP text model: with a tokenizer beside
    # it, CLIPModel loads it with every weight missing, drawn at random.
    folder = scratch / "clip-text"
    shutil.copytree(models["text2image"] / "text_encoder", folder)
    for file in (models["text2image"] / "tokenizer").iterdir():
        shutil.copy(file, folder)
    return batch(
        "diffusion_object_paste", models["text2image"], clip={"path": str(folder), "min_score": -1}
    )


ERROR_CASES = [
    ("missing-model", _missing, ["image.model.path", "hf download", "never downloaded"]),
    ("wrong-kind", _wrong_kind, ["image.model.path", "StableDiffusionInpaintPipeline", "9"]),
    ("cuda-without-gpu", _cuda, ["image.model.device", "cuda", "no CUDA GPU"]),
    ("index-not-json", _index_not_json, ["image.model.path", "model_index.json", "not valid JSON"]),
    (
        "unet-config-not-json",
        _unet_config_not_json,
        ["image.model.path", "unet/config.json", "not valid JSON"],
    ),
    ("no-tokenizer", _no_tokenizer, ["image.model.path", "tokenizer/", "model_index.json"]),
    (
        "weights-of-other-shapes",
        _weights_of_other_shapes,
        ["image.model.path", "other shapes than its config.json"],
    ),
    (
        "half-the-unet-weights",
        _half_the_unet_weights,
        ["image.model.path", "UNet2DConditionModel", "/unet", "at random"],
    ),
    (
        "truncated-weights",
        _truncated_weights,
        ["image.model.path", "text_encoder", "model.safetensors"],
    ),
    ("phrase-too-long", _phrase_too_long, ["image.phrase", "x" * 20, "at most 77"]),
    ("pool-dir-is-a-file", _pool_dir_is_a_file, ["image.pool_dir", "is not a folder"]),
    (
        "clip-text-tower-only",
        _clip_text_tower_only,
        ["image.clip.path", "not a whole CLIP model", "random"],
    ),
    (
        "strength-leaves-no-step",
        _strength_leaves_no_step,
        ["image.strength", "image.model.steps to at least 10", "0.1"],
    ),
]


@pytest.mark.parametrize(
    ("case", "make", "words"),
    ERROR_CASES,
    ids=[c[0] for c in ERROR_CASES],
)
def test_bad_models_fail_clearly_and_write_nothing(
    case: str,
    make: Any,
    words: list[str],
    tiny_models: dict[str, Path],
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    if case == "cuda-without-gpu" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    out = tmp_path / "out"
    result = run(make(tiny_models, tmp_path_factory.mktemp(case)), out)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out.yaml"]


def test_an_error_found_while_generating_names_the_config_file(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    # An image the folder lists is read only when a sample draws it, after the model has loaded:
    # its error named the field but not the config file, as the config's own checks do.
    (tmp_path / "backgrounds").mkdir()
    (tmp_path / "backgrounds" / "sky.png").write_bytes(b"not a png")
    background = {"source": "folder", "folder": str(tmp_path / "backgrounds")}
    config = batch("diffusion_inpaint", tiny_models["inpaint"], background=background)
    out = tmp_path / "out"
    result = run(config, out)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    expected = f"{tmp_path / 'out.yaml'}: image.background.folder: cannot read "
    assert expected + str(tmp_path / "backgrounds" / "sky.png") in result.output
    assert not out.exists()
    with pytest.raises(InputError) as raised:  # the library's generate too
        synthgate.generate(tmp_path / "out.yaml", limit=1)
    assert str(raised.value).startswith(expected)


def test_the_planner_balances_prompt_attributes(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    config = batch(
        "diffusion_inpaint",
        tiny_models["inpaint"],
        count=6,
        prompt="a photo of a {colour} {category}",
        attributes={"colour": ["red", "blue"]},
    )
    result = run(config, tmp_path / "out")
    assert result.exit_code == 0, result.output
    images = json.loads((tmp_path / "out" / "coco.json").read_text())["images"]
    pairs = {(i["synthgate"]["category"], i["synthgate"]["attributes"]["colour"]) for i in images}
    assert pairs == {(c, colour) for c in CATEGORIES for colour in ("red", "blue")}
    for image in images:
        meta = image["synthgate"]
        colour, category = meta["attributes"]["colour"], meta["category"]
        assert meta["provenance"]["prompt"] == f"a photo of a {colour} {category}"


def test_relative_model_and_background_paths_are_found_next_to_the_config(
    tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every other path a config names is found from the working directory or the config's
    # folder; a project folder holding its config, model and backgrounds must run from anywhere.
    project = tmp_path / "project"
    shutil.copytree(tiny_models["inpaint"], project / "models" / "inpaint")
    (project / "backgrounds").mkdir()
    Image.new("RGB", (80, 72), (40, 90, 160)).save(project / "backgrounds" / "sky.png")
    config = batch(
        "diffusion_inpaint",
        "models/inpaint",
        count=2,
        background={"source": "folder", "folder": "backgrounds"},
    )
    (project / "batch.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(project / "batch.yaml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    images = json.loads((out / "coco.json").read_text())["images"]
    for image in images:
        provenance = image["synthgate"]["provenance"]
        assert provenance["params"]["background"] == "sky.png"
        assert provenance["model"]["local_path"] == str((project / "models" / "inpaint").resolve())
