"""Process settings from the environment (`SYNTHGATE_DB_URL`, …) or CLI options: `Settings`.

Its own module so that only the commands that read settings (serve, worker, submit, review)
load pydantic-settings, whose sources import every provider it has (Azure, AWS, GCP, CLI): run,
validate and balance never do.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from synthgate.config import MAX_OBJECTS, RequesterLimits


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
    max_samples: int = Field(default=10_000, ge=1)
    max_pixels: int = Field(default=2048 * 2048, ge=16 * 16)
    max_objects: int = Field(default=50, ge=1, le=MAX_OBJECTS)
    max_open_batches: int = Field(default=4, ge=1)
    max_samples_per_hour: int = Field(default=50_000, ge=1)
    batch_threads: int = Field(default=4, ge=1, le=64)  # batches the service runs at once

    def limits(self) -> RequesterLimits:
        return RequesterLimits(
            samples_per_batch=self.max_samples,
            pixels_per_image=self.max_pixels,
            objects_per_image=self.max_objects,
            open_batches=self.max_open_batches,
            samples_per_hour=self.max_samples_per_hour,
        )
