"""Shared fixtures: small batch configs written to a temp folder, and a CLI runner."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SUPPORT_TICKETS = ROOT / "configs" / "templates" / "support_tickets.yaml"


def small_config(**overrides: Any) -> dict[str, Any]:
    """A quick batch: a few small images and a few texts."""
    config: dict[str, Any] = {
        "name": "small",
        "seed": 3,
        "categories": ["circle", "square", "triangle"],
        "image": {
            "generator": "procedural",
            "count": 6,
            "size": [96, 64],
            "objects_per_image": [1, 4],
        },
        "text": {
            "generator": "templates",
            "templates": str(SUPPORT_TICKETS),
            "count": 12,
            "locales": ["en_US", "de_DE", "ja_JP"],
        },
    }
    config.update(overrides)
    return config


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    def write(
        data: dict[str, Any] | str | None = None, name: str = "batch.yaml", **overrides: Any
    ) -> Path:
        path = tmp_path / name
        content = (
            data if isinstance(data, str) else yaml.safe_dump(data or small_config(**overrides))
        )
        path.write_text(content)
        return path

    return write
