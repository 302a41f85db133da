"""Process settings from the environment (`SYNTHGATE_DB_URL`, …) or CLI options: `Settings`.

Its own module so that only the commands that read settings (serve, worker, submit, review)
load pydantic-settings, whose sources import every provider it has (Azure, AWS, GCP, CLI): run,
validate and balance never do.
"""

from __future__ import annotations

from copy import copy
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from synthgate.config import RequesterLimits


def _limit(name: str) -> Any:
    """The `RequesterLimits` field `name` (default and bounds), for the setting behind it."""
    return copy(RequesterLimits.model_fields[name])


class Settings(BaseSettings):
    """Process settings, from the environment (`SYNTHGATE_DB_URL`, …) or CLI options."""

    model_config = SettingsConfigDict(env_prefix="SYNTHGATE_", extra="ignore")

    broker_url: str = "redis://localhost:6379/0"
    db_url: str | None = None
    blob_url: str | None = None
    runs_dir: Path = Path("runs")
    # The API service: where posted configs may read data, and its limits per requester
    # (RequesterLimits; SYNTHGATE_MAX_SAMPLES, SYNTHGATE_MAX_PIXELS, ...).
    data_root: Path | None = None
    max_samples: int = _limit("samples_per_batch")
    max_pixels: int = _limit("pixels_per_image")
    max_objects: int = _limit("objects_per_image")
    max_open_batches: int = _limit("open_batches")
    max_samples_per_hour: int = _limit("samples_per_hour")
    batch_threads: int = Field(default=4, ge=1, le=64)  # batches the service runs at once

    def limits(self) -> RequesterLimits:
        return RequesterLimits(
            samples_per_batch=self.max_samples,
            pixels_per_image=self.max_pixels,
            objects_per_image=self.max_objects,
            open_batches=self.max_open_batches,
            samples_per_hour=self.max_samples_per_hour,
        )
