"""mypy over the distributed runner (workers/ and its commands), as test_typing.py does for the core."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_workers_type_check(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    (tmp_path / "synthgate").symlink_to(ROOT, target_is_directory=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--ignore-missing-imports",
            "--cache-dir",
            str(tmp_path / ".mypy"),
            "-p",
            "synthgate.workers",
            "-m",
            "synthgate.commands.workers",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MYPYPATH": ""},
    )
    assert result.returncode == 0, result.stdout + result.stderr
