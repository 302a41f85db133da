"""Batch configs: values pydantic or a generator took without a word, and errors that did not
name the config file, are input errors naming file, field and value (`load_config`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from factories import SUPPORT_TICKETS, small_config

from synthgate.config import load_config
from synthgate.errors import InputError


def _with(path: str, value: Any, config: dict[str, Any] | None = None) -> dict[str, Any]:
    config = config or small_config()
    *parents, key = path.split(".")
    node = config
    for part in parents:
        node = node[part]
    node[key] = value
    return config


def _copy_paste(**fields: Any) -> dict[str, Any]:
    image = {"generator": "copy_paste", "count": 2, "coco": "coco.json", "images": "images"}
    return small_config(text=None, image={**image, **fields})


def _diffusion(generator: str = "diffusion_layout", **fields: Any) -> dict[str, Any]:
    # The model is looked for only once the generator is built: refusals here come before it.
    image = {"generator": generator, "count": 2, "size": [64, 64], "model": {"path": "models/x"}}
    return small_config(text=None, image={**image, **fields})


BAD_CONFIGS = [
    # (id, config, what the message says after "batch.yaml: ")
    ("unknown locale", _with("text.locales", ["en_US", "xx_YY"]), "text.locales: 'xx_YY' is not a Faker locale; use one such as en_US"),
    # a repeat weighted the plan's locale quotas (and counted a counterfactual rewrite twice)
    ("locale twice", _with("text.locales", ["en_US", "de_DE", "en_US"]), "text.locales: locale 'en_US' is listed twice; list each locale once (got ['en_US', 'de_DE', 'en_US'])"),
    ("locale twice under two names", _with("text.locales", ["en_US", "en-US"]), "text.locales: locale 'en-US' is Faker's en_US, listed already as 'en_US'; list each locale once"),
    # pydantic read a quoted number as the number
    ("count as text", _with("text.count", "3"), "text.count: is text where a number goes; write the number without quotes (got '3')"),
    ("seed as text", small_config(seed="7"), "seed: is text where a number goes"),
    ("size as text", _with("image.size", ["96", 64]), "image.size: is text where a number goes"),
    ("fraction as text", _with("image.min_visible_fraction", "0.5"), "image.min_visible_fraction: is text where a number goes"),
    ("templates a folder", _with("text.templates", str(SUPPORT_TICKETS.parent)), f"text.templates: {SUPPORT_TICKETS.parent} is a folder; give the template file itself"),
    ("coco a folder", _copy_paste(coco="images"), "image.coco: {tmp}/images is a folder; give the COCO JSON file itself"),
    ("images a file", _copy_paste(images="coco.json"), "image.images: {tmp}/coco.json is not a folder; give the folder"),
    # a size the VAE cannot take was refused only once the model had loaded (gigabytes, minutes)
    ("diffusion size", _diffusion(size=[70, 100]), "image.size: is not a multiple of 8 in both sides, which Stable Diffusion pipelines need (their VAE works on 8x8 pixel blocks); use e.g. [64, 96] (got [70, 100])"),
    # recorded in provenance, while the pipeline, guidance off, never used it
    ("negative prompt unused", _diffusion(negative_prompt="blurry", model={"path": "models/x", "guidance": 1}), "image.negative_prompt: with image.model.guidance 1.0 classifier-free guidance is off, and the pipeline ignores a negative prompt (diffusers uses one only when guidance_scale > 1), though provenance would record it; raise image.model.guidance above 1 (e.g. 7.5), or drop image.negative_prompt (got 'blurry')"),
    # the folder loaded as it was, its provenance recording a hash of the folder, not the revision
    ("revision of a local folder", _diffusion(model={"path": "images", "revision": "v2"}), "image.model.revision: 'v2' names a version of a Hugging Face id, and image.model.path {tmp}/images is a local folder, which is loaded as it is; drop image.model.revision, or set image.model.path to the Hub id whose revision you want (it must be in the local Hugging Face cache)"),
    ("diffusion instance size", _diffusion("diffusion_object_paste", instance_size=[64, 36]), "image.instance_size: is not a multiple of 8 in both sides, which Stable Diffusion pipelines need (their VAE works on 8x8 pixel blocks); use e.g. [64, 32] (got [64, 36])"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "config", "expected"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS]
)
def test_a_bad_value_is_an_input_error_naming_file_field_and_value(
    tmp_path: Path, case: str, config: dict[str, Any], expected: str
) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "coco.json").write_text('{"images": [], "annotations": [], "categories": []}')
    path = tmp_path / "batch.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(InputError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {expected.format(tmp=tmp_path)}"), message


@pytest.mark.parametrize(("guidance", "negative_prompt"), [(1.5, "blurry"), (1.0, None), (0.0, "")])
def test_a_negative_prompt_loads_where_the_pipeline_uses_it(
    guidance: float, negative_prompt: str | None
) -> None:
    model = {"path": "models/x", "guidance": guidance}
    config = load_config(_diffusion(negative_prompt=negative_prompt, model=model))
    assert config.image.negative_prompt == negative_prompt


def test_a_revision_of_a_hub_id_loads() -> None:
    config = load_config(_diffusion(model={"path": "tiny-org/tiny-model", "revision": "v2"}))
    assert config.image.model.revision == "v2"


TEXT_MODEL_SECTIONS = [
    {"generator": "text_model", "count": 2},
    {"generator": "counterfactual", "count": 2, "fallback": "model"},
]


@pytest.mark.parametrize("section", TEXT_MODEL_SECTIONS, ids=lambda s: s["generator"])
def test_a_revision_of_a_local_text_model_folder_is_refused(
    tmp_path: Path, section: dict[str, Any]
) -> None:
    """transformers loads a folder as it is, revision or none, and provenance recorded the
    revision given: it was ignored without a word, as image.model.revision was."""
    (tmp_path / "model").mkdir()
    (tmp_path / "rows.jsonl").write_text('{"text": "a row", "label": "a"}\n')
    model = {"path": str(tmp_path / "model"), "revision": "v2"}
    path = tmp_path / "batch.yaml"
    text = {**section, "source": str(tmp_path / "rows.jsonl"), "model": model}
    path.write_text(yaml.safe_dump(small_config(image=None, text=text)))
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: text.model.revision: 'v2' names a version of a Hugging Face id, and "
        f"text.model.path {tmp_path / 'model'} is a local folder, which is loaded as it is; drop "
        "text.model.revision, or set text.model.path to the Hub id whose revision you want (it "
        "must be in the local Hugging Face cache)"
    )
    model["path"] = "tiny-org/tiny-model"  # a Hub id: its revision is what is loaded
    path.write_text(yaml.safe_dump(small_config(image=None, text=text)))
    assert load_config(path).text.model.revision == "v2"


def test_an_object_paste_size_off_8_loads_when_its_instances_have_their_own_size() -> None:
    """object_paste's pipeline makes instances at instance_size (default: size) and pastes them
    onto backgrounds of `size`: given instance_size, `size` never reaches the VAE, and
    [100, 75] (a photo's shape) was refused as 'not a multiple of 8'."""
    config = load_config(
        _diffusion("diffusion_object_paste", size=[100, 75], instance_size=[64, 64])
    )
    assert config.image.size == (100, 75)
    with pytest.raises(InputError, match=r"image\.size: is not a multiple of 8"):
        load_config(_diffusion("diffusion_object_paste", size=[100, 75]))


@pytest.mark.parametrize(
    ("generator", "fields"),
    [
        ("diffusion_layout", {"size": [100, 75]}),
        ("diffusion_object_paste", {"size": [100, 75]}),
        ("diffusion_object_paste", {"size": [100, 75], "instance_size": [60, 60]}),
    ],
)
def test_a_size_off_8_is_told_with_the_configs_other_problems(
    generator: str, fields: dict[str, Any]
) -> None:
    """Every problem of a config is told at once. A size off the VAE's 8x8 blocks was one of
    them while pydantic checked it; checked after pydantic (c17e98c), it is told only once the
    others are fixed: a second run to learn of it."""
    config = _diffusion(generator, count=0, **fields)
    with pytest.raises(InputError) as caught:
        load_config(config)
    said = str(caught.value)
    assert "image.count: Input should be greater than 0 (got 0)" in said, said
    field = "instance_size" if "instance_size" in fields else "size"
    assert f"image.{field}: is not a multiple of 8 in both sides" in said, said


def test_an_exponent_yaml_reads_as_text_is_still_a_number(tmp_path: Path) -> None:
    """PyYAML reads 1e-1 and 3.5e-1 unquoted as text; they stay numbers, not quoted text."""
    path = tmp_path / "batch.yaml"
    text = "name: x\ncategories: [circle]\nimage: {count: 2, object_scale_range: [1e-1, 3.5e-1]}\n"
    path.write_text(text)
    assert load_config(path).image.object_scale_range == (0.1, 0.35)


def test_locale_names_faker_takes_still_load() -> None:
    config = load_config(_with("text.locales", ["en-US", "de_DE", "ja_JP"]))
    assert config.text.locales == ["en-US", "de_DE", "ja_JP"]


def test_a_config_posted_as_json_keeps_its_numbers_and_refuses_quoted_ones() -> None:
    """The API's path: a JSON body, where numbers are numbers and a quoted one is text."""
    body = json.loads(json.dumps(small_config()))
    config = load_config(body)
    assert (config.seed, config.image.count, config.image.size) == (3, 6, (96, 64))
    with pytest.raises(InputError, match=r"<config>: image.count: is text where a number goes"):
        load_config(json.loads(json.dumps(_with("image.count", "6"))))
