"""Fixtures of the diffusion tests (a pytest plugin): tiny pipelines saved once per session.

Test modules load it with `pytest_plugins = ["diffusion_fixtures"]`; the builders and helpers
live in tiny_diffusers.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from tiny_diffusers import save_tiny_clip, save_tiny_pipeline

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a stray download fails loudly
# Tiny models gain nothing from threads, and on a shared CI box OpenMP threads that spin while
# other processes hold the cores make each call 20x slower.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Folders of tiny random pipelines of every kind, and a tiny CLIP, saved like real ones."""
    root = tmp_path_factory.mktemp("tiny-models")
    folders = {
        kind: save_tiny_pipeline(kind, root / kind) for kind in ("text2image", "layout", "inpaint")
    }
    folders["clip"] = save_tiny_clip(root / "clip")
    return folders
