"""Small configs and data that several test modules share (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SUPPORT_TICKETS = ROOT / "configs" / "templates" / "support_tickets.yaml"
REVIEWS = ROOT / "configs" / "templates" / "reviews.yaml"


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
