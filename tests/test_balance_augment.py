"""Augmentation of synthetic samples: albumentations YAML, masks and boxes move with the pixels,
the seed is recorded, and a balance config can ask for it."""

from __future__ import annotations

import json
from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import yaml
from balance_fixtures import balance_coco, make_tiny_coco

import synthgate as sg
from synthgate.config import PACKAGE_ROOT
from synthgate.errors import InputError
from synthgate.masks import decode_mask, encode_mask, tight_bbox
from synthgate.samples import GeneratedSample, ObjectLabel, Provenance, Sample, SampleSpec
from synthgate.workflows.augment import augment_sample, load_pipeline


def _sample(seed: int = 5) -> GeneratedSample:
    pixels = np.zeros((40, 60, 3), dtype=np.uint8)
    pixels[:, :, 0] = np.arange(60, dtype=np.uint8)[None, :] * 4
    mask = np.zeros((40, 60), dtype=bool)
    mask[10:20, 5:15] = True
    edge = np.zeros((40, 60), dtype=bool)
    edge[0:4, 56:60] = True
    objects = [
        ObjectLabel(category="box", bbox=tight_bbox(m), mask=encode_mask(m), area=float(m.sum()))
        for m in (mask, edge)
    ]
    spec = SampleSpec(batch_id="a", index=0, modality="image", generator="copy_paste", seed=seed)
    sample = Sample(
        id="ima-1",
        spec=spec,
        uri="images/ima-1.png",
        width=60,
        height=40,
        objects=objects,
        provenance=Provenance(generator="copy_paste", generator_version="1", seed=seed),
    )
    return GeneratedSample(
        sample=sample, pixels=pixels, foreground=mask | edge, ignore=np.zeros_like(mask)
    )


def _pipeline(tmp_path: Path, *transforms: A.BasicTransform) -> Path:
    path = tmp_path / "aug.yaml"
    A.save(A.Compose(list(transforms)), str(path), data_format="yaml")
    return path


def test_flip_moves_masks_boxes_and_pixels_together(tmp_path: Path) -> None:
    pipeline = load_pipeline(_pipeline(tmp_path, A.HorizontalFlip(p=1.0)))
    original = _sample()
    result = augment_sample(original, pipeline, name="aug.yaml")
    first = decode_mask(result.sample.objects[0].mask)
    assert first[10:20, 45:55].all() and first.sum() == 100
    assert result.sample.objects[0].bbox == [45.0, 10.0, 10.0, 10.0]
    assert np.array_equal(result.pixels, original.pixels[:, ::-1])
    assert result.foreground[10:20, 45:55].all()
    augment = result.sample.provenance.params["augment"]
    assert augment["pipeline"] == "aug.yaml" and isinstance(augment["seed"], int)


def test_objects_pushed_out_are_dropped_and_boxes_come_from_masks(tmp_path: Path) -> None:
    pipeline = load_pipeline(
        _pipeline(tmp_path, A.Crop(x_min=0, y_min=5, x_max=40, y_max=35, p=1.0))
    )
    result = augment_sample(_sample(), pipeline, name="crop")
    assert len(result.sample.objects) == 1  # the corner object is cut away
    obj = result.sample.objects[0]
    assert obj.bbox == [5.0, 5.0, 10.0, 10.0] and obj.area == 100.0
    assert (result.sample.width, result.sample.height) == (40, 30)
    assert result.extras["dropped_by_augment"] == 1


def test_same_sample_seed_same_augmentation() -> None:
    pipeline = load_pipeline(PACKAGE_ROOT / "configs" / "augment" / "light.yaml")
    runs = [augment_sample(_sample(seed), pipeline, name="light") for seed in (7, 7, 8)]
    assert np.array_equal(runs[0].pixels, runs[1].pixels)
    assert runs[0].sample == runs[1].sample
    assert (
        runs[0].sample.provenance.params["augment"]["seed"]
        != runs[2].sample.provenance.params["augment"]["seed"]
    )


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "file not found"),
        ("transform: {__class_fullname__: NoSuchTransform}\n", "not an albumentations pipeline"),
    ],
)
def test_bad_pipeline_files(tmp_path: Path, content: str | None, words: str) -> None:
    path = tmp_path / "bad.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=words):
        load_pipeline(path)


def test_balance_config_applies_augmentation(tmp_path: Path) -> None:
    coco, images = make_tiny_coco(tmp_path / "real")
    config = tmp_path / "balance.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "aug",
                "augment": str(PACKAGE_ROOT / "configs" / "augment" / "light.yaml"),
                "image": {
                    "generator": "copy_paste",
                    "instances_per_image": [1, 2],
                    "scale_range": [0.5, 1.5],
                },
                "rubric": "detection",
            }
        )
    )
    out = tmp_path / "out"
    result = balance_coco(str(coco), str(images), str(out), "--config", str(config))
    assert result.returncode == 0, result.stderr
    merged = json.loads((out / "merged.coco.json").read_text())
    synthetic = [i for i in merged["images"] if "synthgate" in i]
    assert synthetic
    for image in synthetic:
        assert image["synthgate"]["provenance"]["params"]["augment"]["pipeline"] == "light.yaml"


def test_a_balance_config_names_the_shipped_pipeline_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`augment: configs/augment/light.yaml`, as that file says to write it, was "not found" in
    a notebook's folder, once every real image had been checked and the plan made; a missing
    pipeline is refused when the config is read, naming its key."""
    from synthgate.workflows.quotas import load_balance_config

    monkeypatch.chdir(tmp_path)
    shipped = PACKAGE_ROOT / "configs" / "augment" / "light.yaml"
    assert load_balance_config({"augment": "configs/augment/light.yaml"}).augment == shipped
    config = tmp_path / "balance.yaml"
    config.write_text("augment: configs/augment/light.yaml\n")
    assert load_balance_config(config).augment == shipped
    (tmp_path / "mine.yaml").write_text(shipped.read_text())
    config.write_text("augment: mine.yaml\n")  # beside the config file, as before
    assert load_balance_config(config).augment == tmp_path / "mine.yaml"
    with pytest.raises(InputError, match=r"<config>: augment: nope\.yaml: file not found"):
        load_balance_config({"augment": "nope.yaml"})
    coco, images = make_tiny_coco(tmp_path / "real")
    with pytest.raises(InputError, match=r"augment: nope\.yaml: file not found"):
        sg.balance(coco, images=images, out=tmp_path / "out", config={"augment": "nope.yaml"})
    assert not (tmp_path / "out").exists()
    planned = sg.balance(
        coco, images=images, out=tmp_path / "out", config={"augment": "configs/augment/light.yaml"},
        dry_run=True,
    )  # fmt: skip
    assert planned.summary["classes"]
