"""models.py: tiny pipelines load through the production path; every user mistake is explained."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from tiny_diffusers import CATEGORIES, KIND_OF_GENERATOR, image_section, save_tiny_pipeline

from synthgate.config import DiffusionModelConfig, load_config
from synthgate.errors import InputError
from synthgate.generators.devices import resolve_device, resolve_dtype
from synthgate.generators.diffusion.models import (
    FIELD,
    KINDS,
    check_size,
    load_model,
    run_pipeline,
)

pytest_plugins = ["diffusion_fixtures"]  # tiny_models


def model_config(path: Path | str, **overrides: object) -> DiffusionModelConfig:
    values = {"path": str(path), "dtype": "float32", "device": "cpu", "steps": 2}
    values.update(overrides)
    return DiffusionModelConfig.model_validate(values)


def test_a_saved_pipeline_loads_once_per_process(tiny_models: dict[str, Path]) -> None:
    first = load_model(model_config(tiny_models["layout"]), "layout")
    again = load_model(model_config(tiny_models["layout"], steps=9), "layout")
    assert again is first  # steps are per call; the weights are loaded once
    assert type(first.pipeline).__name__ == "StableDiffusionGLIGENPipeline"
    info = first.info
    assert info["pipeline"] == "StableDiffusionGLIGENPipeline"
    assert info["dtype"] == "float32" and info["device"] == "cpu"
    assert info["revision"].startswith("local-") and len(info["revision"]) == 22
    assert first.size_multiple == 8


def test_a_load_does_not_ask_for_packages_synthgate_does_not_need(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    # A folder of its own: a load this process made already would not run again.
    shutil.copytree(tiny_models["text2image"], tmp_path / "sd")
    said: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
    diffusers_logger = logging.getLogger("diffusers")  # its own handler, not propagated
    diffusers_logger.addHandler(handler)
    try:
        load_model(model_config(tmp_path / "sd"), "text2image")
    finally:
        diffusers_logger.removeHandler(handler)
    assert not [line for line in said if "pip install accelerate" in line]


@pytest.mark.parametrize(
    ("scheduler", "class_name"),
    [
        ("ddim", "DDIMScheduler"),
        ("dpm++", "DPMSolverMultistepScheduler"),
        ("euler", "EulerDiscreteScheduler"),
        ("euler_a", "EulerAncestralDiscreteScheduler"),
        ("lcm", "LCMScheduler"),
    ],
)
def test_scheduler_by_name(tiny_models: dict[str, Path], scheduler: str, class_name: str) -> None:
    loaded = load_model(model_config(tiny_models["text2image"], scheduler=scheduler), "text2image")
    assert type(loaded.pipeline.scheduler).__name__ == class_name
    assert loaded.info["scheduler"] == class_name


def test_attention_slicing_is_a_separate_load(tiny_models: dict[str, Path]) -> None:
    plain = load_model(model_config(tiny_models["text2image"]), "text2image")
    sliced = load_model(model_config(tiny_models["text2image"], attention="slicing"), "text2image")
    assert sliced is not plain and sliced.info["attention"] == "slicing"


def test_an_id_in_the_hub_cache_loads_offline(
    tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--tiny-org--tiny-text2image"
    shutil.copytree(tiny_models["text2image"], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    loaded = load_model(model_config("tiny-org/tiny-text2image"), "text2image")
    assert loaded.info["revision"] == commit
    assert loaded.info["path"] == "tiny-org/tiny-text2image"


def test_a_revision_the_cache_lacks_is_named(
    tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--tiny-org--tiny-text2image"
    shutil.copytree(tiny_models["text2image"], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(InputError) as error:
        load_model(model_config("tiny-org/tiny-text2image", revision="v2"), "text2image")
    message = str(error.value)
    assert "image.model.revision" in message and "'v2'" in message
    assert "--revision v2" in message
    assert "neither a local folder nor a Hugging Face id" not in message


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/nonexistent/models/tiny-gligen", "hf download masterful/gligen-1-4-generation-text-box"),
        ("nobody-here/no-such-model", "hf download nobody-here/no-such-model"),
    ],
)
def test_a_missing_model_says_how_to_fetch_it(path: str, expected: str) -> None:
    with pytest.raises(InputError) as error:
        load_model(model_config(path), "layout")
    message = str(error.value)
    assert expected in message
    assert "image.model.path" in message and "never downloaded" in message


def test_a_folder_that_is_no_pipeline_is_refused(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(InputError, match=r"no model_index\.json"):
        load_model(model_config(tmp_path), "text2image")


@pytest.mark.parametrize(
    ("saved", "wanted", "expected"),
    [
        ("text2image", "layout", "no GLIGEN gated attention"),
        ("text2image", "inpaint", "takes 4 input channels, not 9"),
        ("inpaint", "text2image", "takes 9 input channels, not 4"),
        ("inpaint", "layout", "takes 9 input channels, not 4"),
    ],
)
def test_the_wrong_kind_of_model_is_refused(
    tiny_models: dict[str, Path], saved: str, wanted: str, expected: str
) -> None:
    with pytest.raises(InputError) as error:
        load_model(model_config(tiny_models[saved]), wanted)
    message = str(error.value)
    assert expected in message
    assert KINDS[wanted].pipeline_class in message
    assert (
        json.loads((tiny_models[saved] / "model_index.json").read_text())["_class_name"] in message
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_a_gpu_is_refused(device: str) -> None:
    with pytest.raises(InputError, match="sees no CUDA GPU"):
        resolve_device(device, field=FIELD)


def test_auto_picks_what_is_there() -> None:
    expected = "cuda" if torch.cuda.is_available() else None
    device = resolve_device("auto", field=FIELD)
    assert device.type == (expected or device.type)
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("auto", torch.device("cuda")) == torch.float16
    assert resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16


def test_a_size_the_vae_cannot_take_is_refused(tiny_models: dict[str, Path]) -> None:
    loaded = load_model(model_config(tiny_models["text2image"]), "text2image")
    check_size((64, 128), loaded)
    with pytest.raises(InputError, match=r"multiple of 8.*\[64, 96\]"):
        check_size((70, 100), loaded)


# What each pipeline is called with besides its prompt, as its generator calls it.
PIPELINE_INPUTS = {
    "diffusion_object_paste": {},
    "diffusion_inpaint": {
        "image": [Image.new("RGB", (64, 64), (100, 120, 140))],
        "mask_image": [Image.new("L", (64, 64), 255)],
    },
    "diffusion_layout": {
        "gligen_phrases": ["a dog"],
        "gligen_boxes": [[0.1, 0.1, 0.5, 0.5]],
        "gligen_scheduled_sampling_beta": 0.3,
    },
}


@pytest.mark.parametrize(
    ("generator", "ignored"),
    [
        ("diffusion_object_paste", True),
        ("diffusion_inpaint", True),
        ("diffusion_layout", False),
    ],
)
def test_a_negative_prompt_a_latent_consistency_model_ignores_is_refused(
    generator: str, ignored: bool, tmp_path: Path
) -> None:
    """A UNet with time_cond_proj_dim (an LCM-distilled model) takes the guidance as an input,
    and diffusers' Stable Diffusion and inpaint pipelines then run no classifier-free guidance
    at any guidance_scale: the negative prompt went into provenance and nowhere else, as with
    guidance <= 1. GLIGEN's pipeline runs it whenever guidance_scale > 1, and uses it."""
    kind = KIND_OF_GENERATOR[generator]
    folder = save_tiny_pipeline(kind, tmp_path / "lcm", unet={"time_cond_proj_dim": 32})
    config = model_config(folder, guidance=5.0)
    model = load_model(config, kind)
    with_it, without = (
        run_pipeline(
            model,
            config,
            seeds=[3],
            size=(64, 64),
            negative_prompt=negative_prompt,
            prompt=["a photo of a dog"],
            **PIPELINE_INPUTS[generator],
        )[0]
        for negative_prompt in ("blurry", None)
    )
    assert np.array_equal(with_it, without) == ignored
    path = tmp_path / "batch.yaml"
    section = image_section(generator, folder, negative_prompt="blurry")
    path.write_text(yaml.safe_dump({"name": "lcm", "categories": CATEGORIES, "image": section}))
    if not ignored:
        assert load_config(path).image.negative_prompt == "blurry"
        return
    with pytest.raises(InputError) as refused:
        load_config(path)
    assert str(refused.value) == (
        f"{path}: image.negative_prompt: image.model.path {folder} is a latent consistency "
        "model (its unet/config.json sets time_cond_proj_dim 32: the guidance is an input of "
        f"its UNet), which diffusers' {KINDS[kind].pipeline_class} runs without "
        "classifier-free guidance at any image.model.guidance, and so ignores a negative "
        "prompt, though provenance would record it; drop image.negative_prompt (got 'blurry')"
    )


@pytest.mark.parametrize(
    ("generator", "levels", "sizes", "field", "expected"),
    [
        ("diffusion_layout", 5, {"size": [72, 88]}, "size", "16: [64, 80] or [80, 96], the nearest sizes"),
        ("diffusion_object_paste", 5, {"size": [100, 75], "instance_size": [72, 72]}, "instance_size", "16: [64, 64] or [80, 80], the nearest sizes"),
        ("diffusion_inpaint", 6, {"size": [16, 40]}, "size", "32: [32, 64], the nearest size"),
    ],
)  # fmt: skip
def test_a_size_off_a_larger_vaes_blocks_is_refused_when_the_config_is_read(
    generator: str,
    levels: int,
    sizes: dict[str, list[int]],
    field: str,
    expected: str,
    tmp_path: Path,
) -> None:
    """A VAE of more levels than Stable Diffusion's 4 works on larger blocks (diffusers'
    vae_scale_factor, 2 ** (levels - 1)); the config knew 8 only, and the pipeline's check
    refused such a size once the model had loaded (gigabytes, minutes)."""
    kind = KIND_OF_GENERATOR[generator]
    vae = {"block_out_channels": (8,) * levels}
    folder = save_tiny_pipeline(kind, tmp_path / "vae", vae=vae)
    multiple, _, sides = expected.partition(": ")
    assert load_model(model_config(folder), kind).size_multiple == int(multiple)
    path = tmp_path / "batch.yaml"
    section = image_section(generator, folder, **sizes)
    path.write_text(yaml.safe_dump({"name": "vae", "categories": CATEGORIES, "image": section}))
    with pytest.raises(InputError) as refused:
        load_config(path)
    assert str(refused.value) == (
        f"{path}: image.{field}: is not a multiple of {multiple} in both sides, which the VAE "
        f"of image.model.path {folder} needs (its vae/config.json lists {levels} "
        f"block_out_channels: it works on {multiple}x{multiple} pixel blocks); use {sides} it "
        f"takes (got {sizes[field]})"
    )
    section[field] = [int(multiple) * 4, int(multiple) * 2]
    path.write_text(yaml.safe_dump({"name": "vae", "categories": CATEGORIES, "image": section}))
    assert list(getattr(load_config(path).image, field)) == section[field]
