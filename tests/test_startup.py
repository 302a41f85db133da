"""Start-up loads only what a command uses: --help none of the heavy libraries, run, validate
and balance neither pydantic-settings (its cloud providers) nor matplotlib until a report is
drawn, and a `validate` of labels alone no image library. Timings live in bench/bench_startup.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = (
    "sqlalchemy", "pydantic", "pydantic_settings", "matplotlib", "fastapi", "celery", "torch", "PIL"
)  # fmt: skip


def loaded(code: str) -> set[str]:
    """Top-level packages a fresh interpreter holds after running `code`."""
    probe = f"{code}\nimport sys\nprint(' '.join({{m.split('.')[0] for m in sys.modules}}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    ("code", "absent"),
    [
        ("import synthgate.cli", HEAVY),
        ("import synthgate.runner, synthgate.validators.validate", ("pydantic_settings",)),
        ("import synthgate.workflows.balance", ("pydantic_settings", "matplotlib")),
        # validate checks its --json target: no database library for that; labels alone need
        # no image library either
        (
            "import synthgate.validators.predictions, synthgate.storage.folders",
            ("sqlalchemy", "pydantic_settings", "PIL", "imagehash", "cv2", "scipy"),
        ),
    ],
)
def test_start_up_loads_only_what_is_used(code: str, absent: tuple[str, ...]) -> None:
    assert not loaded(code) & set(absent)


def test_settings_load_where_they_are_read() -> None:
    assert "pydantic_settings" in loaded("from synthgate.settings import Settings; Settings()")
