"""mypy over the core packages (STYLE.md: machines enforce style).

The repository root is the package, so mypy is pointed at a folder holding a `synthgate` link
to it. Upper layers (api, workers, review) are checked by their own tests, not here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = [
    "samples",
    "config",
    "errors",
    "generators",
    "pipeline",
    "store",
    "outputs",
    "blobs",
    "files",
    "assembly",
]


def test_core_packages_type_check(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    (tmp_path / "synthgate").symlink_to(ROOT, target_is_directory=True)
    modules = [arg for name in CORE for arg in ("-p", f"synthgate.{name}")]
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
