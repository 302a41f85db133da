"""The repository root is the package: every package folder must be listed in pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_PACKAGES = {"tests", "bench", "configs", "runs", "build", "dist"}


def _package_folders() -> set[str]:
    found = {"synthgate"}
    for init in ROOT.rglob("__init__.py"):
        folder = init.parent.relative_to(ROOT)
        if folder.parts and (folder.parts[0] in NOT_PACKAGES or folder.parts[0].startswith(".")):
            continue
        if folder.parts:
            found.add("synthgate." + ".".join(folder.parts))
    return found


def test_every_package_folder_is_listed_in_pyproject() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    missing = _package_folders() - listed
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {missing}"
    stale = listed - _package_folders()
    assert not stale, f"listed in pyproject.toml but not a package folder: {stale}"


def test_tests_folder_has_no_init() -> None:
    assert not (ROOT / "tests" / "__init__.py").exists()
