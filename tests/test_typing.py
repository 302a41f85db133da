"""mypy over every package and the CLI (STYLE.md: machines enforce style).

The repository root is the package, so mypy is pointed at a folder holding a `synthgate` link
to it. One run over everything: the layers import each other, so separate runs would check the
lower ones again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = [
    "samples",
    "config",
    "errors",
    "generators",
    "pipeline",
    "storage",
    "runner",
    "sinks",
    "files",
    "masks",
    "validators",
    "formats",
    "workflows",
    "review",
    "reports",
    "workers",
    "api",
    "commands",
]


def test_every_package_type_checks(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    (tmp_path / "synthgate").symlink_to(ROOT, target_is_directory=True)
    modules = [arg for name in PACKAGES for arg in ("-p", f"synthgate.{name}")]
    modules += ["-m", "synthgate.cli"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--ignore-missing-imports",
            "--cache-dir",
            str(tmp_path / ".mypy"),
            *modules,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MYPYPATH": ""},
    )
    assert result.returncode == 0, result.stdout + result.stderr
