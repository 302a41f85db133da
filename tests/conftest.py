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

from factories import small_config


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
