"""Process settings from the environment (`SYNTHGATE_DB_URL`, …) or CLI options: `Settings`.

A bad value (`SYNTHGATE_LEASE_TIMEOUT=abc`, a list that is not JSON, `inf`) is an `InputError`
naming the variable, its value and the fix, as every other bad input.

Its own module so that only the commands that read settings (serve, worker, submit, review)
load pydantic-settings, whose sources import every provider it has (Azure, AWS, GCP, CLI): run,
validate and balance never do.
"""

from __future__ import annotations

import json
import re
from copy import copy
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from synthgate.arguments import environment_value
from synthgate.config import RequesterLimits
from synthgate.errors import InputError, quoted

ENV_PREFIX = "SYNTHGATE_"


def _limit(name: str) -> Any:
    """The `RequesterLimits` field `name` (default and bounds), for the setting behind it."""
    return copy(RequesterLimits.model_fields[name])


class Settings(BaseSettings):
    """Process settings, from the environment (`SYNTHGATE_DB_URL`, …) or CLI options."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", allow_inf_nan=False)

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

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except SettingsError as error:  # the environment's list or dict setting is not JSON
            found = re.search(r'field "(\w+)"', str(error))
            if found is None:
                raise
            raise _setting_error(type(self), found.group(1), "not_json", values) from None
        except ValidationError as error:
            first = error.errors()[0]
            name = str(first["loc"][0]) if first["loc"] else ""
            if name not in type(self).model_fields:
                raise
            raise _setting_error(
                type(self), name, first["type"], values, first.get("ctx"), first["msg"]
            ) from None

    def limits(self) -> RequesterLimits:
        return RequesterLimits(
            samples_per_batch=self.max_samples,
            pixels_per_image=self.max_pixels,
            objects_per_image=self.max_objects,
            open_batches=self.max_open_batches,
            samples_per_hour=self.max_samples_per_hour,
        )


# What a pydantic error type says of a setting's value; None: pydantic's own words.
_PROBLEMS = {
    "float_parsing": "not a number",
    "int_parsing": "not a whole number",
    "int_from_float": "not a whole number",
    "finite_number": "not a finite number",
    "greater_than": "must be above {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be below {lt}",
    "less_than_equal": "must be at most {le}",
    "not_json": "not a JSON list",
}


def _setting_error(
    settings: type[Settings],
    name: str,
    kind: str,
    given: dict[str, Any],
    bounds: dict[str, Any] | None = None,
    said: str = "",
) -> InputError:
    """The error for setting `name`: the environment variable and its value when it came from
    there (the parameter when it was passed), what is wrong, and the default it falls back to."""
    default = settings.model_fields[name].get_default(call_default_factory=True)
    shown = {key: _shown(bound) for key, bound in (bounds or {}).items()}
    template = _PROBLEMS.get(kind)
    problem = template.format(**shown) if template else said[:1].lower() + said[1:]
    if name in given:
        return InputError(field=name, value=quoted(given[name]), problem=problem)
    variable = f"{ENV_PREFIX}{name.upper()}"
    value = environment_value(variable)
    fix = f"write it as JSON, like {json.dumps(default)}" if kind == "not_json" else "fix it"
    return InputError(
        f"{variable}={quoted(value)}: {problem}; {fix}, or unset it for the default "
        f"({_shown(default)})"
    )


def _shown(value: Any) -> str:
    """A bound or default as a user writes it: 10, not 10.0; a list as JSON."""
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value) if isinstance(value, list | dict) else str(value)
