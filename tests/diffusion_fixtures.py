"""Fixtures of the diffusion tests: tiny pipelines saved once per session, configs, specs.

Test modules import the fixtures they use from here (`from diffusion_fixtures import ...`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from tiny_diffusers import save_tiny_clip, save_tiny_pipeline

from synthgate.samples import SampleSpec, sample_seed

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a stray download fails loudly

KIND_OF_GENERATOR = {
    "diffusion_object_paste": "text2image",
    "diffusion_layout": "layout",
    "diffusion_inpaint": "inpaint",
}
GENERATORS = tuple(KIND_OF_GENERATOR)
CATEGORIES = ["dog", "cat", "bird"]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Folders of tiny random pipelines of every kind, and a tiny CLIP, saved like real ones."""
    root = tmp_path_factory.mktemp("tiny-models")
    folders = {
        kind: save_tiny_pipeline(kind, root / kind) for kind in ("text2image", "layout", "inpaint")
    }
    folders["clip"] = save_tiny_clip(root / "clip")
    return folders


def image_section(generator: str, model_path: Path | str, **overrides: Any) -> dict[str, Any]:
    """An `image:` config section for a diffusion generator on a tiny model (64 px, 2 steps)."""
    model = {
        "path": str(model_path),
        "scheduler": "ddim",
        "steps": 2,
        "guidance": 5.0,
        "dtype": "float32",
        "device": "cpu",
        "batch_size": 2,
    }
    model.update(overrides.pop("model", {}))
    section: dict[str, Any] = {"generator": generator, "count": 4, "size": [64, 64], "model": model}
    section.update(overrides)
    return section


def specs_for(generator: str, count: int, *, seed: int = 7, first: int = 0) -> list[SampleSpec]:
    return [
        SampleSpec(
            batch_id="test-batch",
            index=index,
            modality="image",
            generator=generator,
            category=CATEGORIES[index % len(CATEGORIES)],
            seed=sample_seed(seed, "image", index),
        )
        for index in range(first, first + count)
    ]
