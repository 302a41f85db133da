"""Process settings from the environment (`SYNTHGATE_DB_URL`, …) or CLI options: `Settings`.

Its own module so that only the commands that read settings (serve, worker, submit, review)
load pydantic-settings, whose sources import every provider it has (Azure, AWS, GCP, CLI);
`synthgate.config.Settings` names it lazily.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process settings, from the environment (`SYNTHGATE_DB_URL`, …) or CLI options."""

    model_config = SettingsConfigDict(env_prefix="SYNTHGATE_", extra="ignore")

    broker_url: str = "redis://localhost:6379/0"
    db_url: str | None = None
    blob_url: str | None = None
    runs_dir: Path = Path("runs")
    # The API service: where posted configs may read data, and how many samples they may ask for.
    data_root: Path | None = None
    max_samples: int = Field(default=100_000, ge=1)
