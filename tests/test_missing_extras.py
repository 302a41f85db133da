"""Every command from a base install (`pip install synthgate`, no extras) either works or exits 2
with one line naming the extra to install, never a ModuleNotFoundError traceback.

A base install is simulated by hiding the modules the extras bring (diffusion, workers, serve,
review, notebook) from the import system of a fresh `python -m synthgate` process; the list was
checked against a virtualenv made with `python -m venv` and `pip install -e .` (none of them is
there). The library's one name that needs an extra, `sg.show`, says which.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from balance_fixtures import make_tiny_coco
from calibration_fixtures import reviewed_store
from factories import small_config
from typer.testing import CliRunner

from synthgate.cli import app
from synthgate.commands import EXTRA_OF_MODULE
from synthgate.validators.rubric import load_rubric

# Top-level modules a base install lacks: everything the extras bring.
HIDDEN = sorted(EXTRA_OF_MODULE)

HIDE_EXTRAS = """
import importlib.abc, sys

class HideExtras(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, HideExtras())
"""
BASE_INSTALL = """
from synthgate.cli import main
sys.argv = ["synthgate", *sys.argv[1:]]
main()
"""


def base_cli(*args: str, cwd: Path, hidden: list[str] = HIDDEN) -> subprocess.CompletedProcess[str]:
    script = f"HIDDEN = {hidden!r}\n" + HIDE_EXTRAS + BASE_INSTALL
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a finished run (made with everything installed), a real COCO file and a
    diffusion config."""
    folder = tmp_path_factory.mktemp("base")
    config = folder / "small.yaml"
    config.write_text(yaml.safe_dump(small_config(text=None)))
    assert (
        CliRunner().invoke(app, ["run", str(config), "--out", str(folder / "run")]).exit_code == 0
    )
    make_tiny_coco(folder / "real")
    diffusion = {
        "name": "diffusion",
        "categories": ["cat"],
        "image": {"generator": "diffusion_layout", "count": 1, "model": {"path": str(folder)}},
    }
    (folder / "diffusion.yaml").write_text(yaml.safe_dump(diffusion))
    return folder


DB = "sqlite:///users.db"
STORES = ("--db", DB, "--blobs", "blobs")
REAL = ("real/annotations.json", "--images", "real/images")
# args, the extra it needs (None: it must work from a base install)
COMMANDS: list[tuple[list[str], str | None]] = [
    (["--help"], None),
    (["run", "small.yaml", "--out", "again"], None),
    (["validate", "run/coco.json", "--images", "run"], None),
    (["balance", "--coco", *REAL, "--out", "balanced", "--target", "2"], None),
    (["merge", "--real", *REAL, "--synthetic", "run", "--out", "merged", "--add-categories"], None),
    (["export", "run", "-f", "coco", "-o", "exported"], None),
    (["review", "enqueue", "--run", "run"], None),
    (["review", "stats", "--run", "run"], None),
    (["review", "adjudicate", "--run", "run"], None),
    (["review", "export", "--run", "run", "--include", "all", "-o", "tasks.json"], None),
    (["review", "import", "tasks.json", "--run", "run"], None),
    (["review", "release", "--older-than-minutes", "1", "--run", "run"], None),
    (["users", "add", "alice", "--role", "annotator", "--db", DB], None),
    (["users", "list", "--db", DB], None),
    (["review", "agreement", "--run", "run"], "review"),
    (["serve", "--db", DB], "serve"),
    (["worker", *STORES], "workers"),
    (["submit", "small.yaml", *STORES], "workers"),
    (["run", "diffusion.yaml", "--out", "diffusion"], "diffusion"),
]


@pytest.mark.parametrize(("args", "extra"), COMMANDS, ids=[" ".join(c[0][:2]) for c in COMMANDS])
def test_each_command_works_or_names_its_extra(
    args: list[str], extra: str | None, work: Path
) -> None:
    result = base_cli(*args, cwd=work)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    if extra is None:
        assert result.returncode == 0, output
    else:
        assert result.returncode == 2, output
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, lines
        assert f"pip install 'synthgate[{extra}]'" in lines[0], lines[0]


def test_serve_without_fastapi_offline_names_the_serve_extra(tmp_path: Path) -> None:
    """fastapi-offline joined the serve extra (1cb4fb2): a serve extra installed before it,
    then synthgate upgraded, has fastapi and uvicorn but not fastapi_offline. `serve` said
    ModuleNotFoundError in a traceback (exit 1), as it was no extra's module; it names the
    serve extra, as for the other modules that extra brings."""
    result = base_cli("serve", "--db", DB, cwd=tmp_path, hidden=["fastapi_offline"])
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == 2, output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "error: synthgate serve needs the serve extra (fastapi_offline is not installed): "
        "pip install 'synthgate[serve]'"
    ], lines


def test_rubric_calibrate_names_the_review_extra(tmp_path: Path) -> None:
    """calibrate computes kappa with scikit-learn as `review agreement` does; it reaches it only
    with enough verdicts, so the queue here holds them (the README's table names the extra)."""
    reviewed_store(f"sqlite:///{tmp_path / 'synthgate.db'}", load_rubric("detection"), 120).close()
    result = base_cli(
        "rubric", "calibrate", "--db", "sqlite:///synthgate.db", "-o", "cal.yaml", cwd=tmp_path
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(lines) == 1, lines
    assert "pip install 'synthgate[review]'" in lines[0], lines[0]
    assert not (tmp_path / "cal.yaml").exists()


def test_the_extras_named_are_the_ones_pyproject_declares() -> None:
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    extras = pyproject.split("[project.optional-dependencies]")[1].split("\n[")[0]
    declared = {line.split("=")[0].strip() for line in extras.splitlines() if "= [" in line}
    assert set(EXTRA_OF_MODULE.values()) == {"diffusion", "notebook", "review", "serve", "workers"}
    assert set(EXTRA_OF_MODULE.values()) <= declared


# `from synthgate import *` works on a base install (show imports matplotlib when it draws)
SHOW = """
import synthgate as sg
from synthgate import *
config = {"name": "s", "categories": ["circle"], "image": {"count": 1, "size": [32, 32]}}
try:
    sg.show(sg.generate(config, limit=1)[0])
except ModuleNotFoundError as error:
    print(error.name, "|", error)
"""


def test_show_from_a_base_install_names_its_extra() -> None:
    script = f"HIDDEN = {HIDDEN!r}\n" + HIDE_EXTRAS + SHOW
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    name, _, message = result.stdout.strip().partition(" | ")
    assert name == "matplotlib"
    assert "pip install 'synthgate[notebook]'" in message
