"""Every path read from a COCO file stays inside its images folder, in every command.

A COCO file whose `file_name` climbs out of `--images` (`../../secret.png`) or is absolute must
not make any command read, link or copy that file: export, validate, balance, merge and a
copy-paste run each exit 2 naming the file name, and nothing is written. The names themselves
are a table of what `confinement_problem` refuses and what it lets through.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from balance_fixtures import make_tiny_coco
from typer.testing import CliRunner

from synthgate.cli import app
from synthgate.errors import InputError
from synthgate.formats.paths import confined_path, confinement_problem

runner = CliRunner()

NAMES = [
    ("img.png", None),
    ("a/b/img.png", None),
    ("./img.png", None),
    ("a..b.png", None),  # dots inside a name are a name
    ("../img.png", "climbs out of its folder with '..'"),
    ("a/../../img.png", "climbs out of its folder with '..'"),
    ("..\\..\\img.png", "climbs out of its folder with '..'"),
    ("/etc/passwd", "is an absolute path"),
    ("C:\\img.png", "is an absolute path"),
    ("", "is missing or empty"),
    ("a\x00.png", "holds a NUL character"),
]


@pytest.mark.parametrize(("name", "problem"), NAMES)
def test_names_that_leave_their_folder_are_refused(name: str, problem: str | None) -> None:
    assert confinement_problem(name) == problem
    if problem is None:
        assert confined_path(Path("/data/images"), name) == Path("/data/images") / name
    else:
        with pytest.raises(InputError, match="stay inside it"):
            confined_path(Path("/data/images"), name)


@pytest.fixture(params=["dotdot", "absolute"])
def escaping(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path, Path, str]:
    """A clean tiny COCO file with one file_name pointing at an image outside its folder.

    Returns (coco, images, the image outside, the file_name that names it)."""
    coco, images = make_tiny_coco(tmp_path / "data")
    secret = tmp_path / "secret.png"
    shutil.copy(images / "img_101.png", secret)
    (images / "img_101.png").unlink()  # only the outside copy exists
    name = "../../secret.png" if request.param == "dotdot" else str(secret)
    data = json.loads(coco.read_text())
    data["images"][0]["file_name"] = name
    coco.write_text(json.dumps(data))
    return coco, images, secret, name


def _fake_run(folder: Path) -> Path:
    """A finished run folder holding one accepted image (what merge reads)."""
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "s1.png").write_bytes(b"")
    (folder / "manifest.json").write_text("{}")
    image = {
        "id": 1,
        "file_name": "images/s1.png",
        "width": 64,
        "height": 64,
        "synthgate": {"synthetic": True, "sample_id": "ima-1", "status": "accepted"},
    }
    coco = {"images": [image], "annotations": [], "categories": []}
    (folder / "coco.json").write_text(json.dumps(coco))
    return folder


def _export(coco: Path, images: Path, out: Path) -> list[str]:
    return ["export", str(coco), "-f", "yolo", "--images", str(images), "-o", str(out)]


def _balance(coco: Path, images: Path, out: Path) -> list[str]:
    return ["balance", "--coco", str(coco), "--images", str(images), "--out", str(out)]


def _merge(coco: Path, images: Path, out: Path) -> list[str]:
    run = _fake_run(out.parent / "run")
    real = ["--real", str(coco), "--images", str(images)]
    return ["merge", *real, "--synthetic", str(run), "--out", str(out)]


def _copy_paste_run(coco: Path, images: Path, out: Path) -> list[str]:
    config = out.parent / "cp.yaml"
    image = {"generator": "copy_paste", "coco": str(coco), "images": str(images), "count": 2}
    config.write_text(yaml.safe_dump({"name": "cp", "categories": ["tri"], "image": image}))
    return ["run", str(config), "--out", str(out)]


COMMANDS: dict[str, Callable[[Path, Path, Path], list[str]]] = {
    "export": _export,
    "balance": _balance,
    "merge": _merge,
    "run copy_paste": _copy_paste_run,
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_no_command_reads_a_file_name_outside_its_images_folder(
    command: str, escaping: tuple[Path, Path, Path, str], tmp_path: Path
) -> None:
    coco, images, secret, name = escaping
    out = tmp_path / "work" / "out"
    out.parent.mkdir()
    result = runner.invoke(app, COMMANDS[command](coco, images, out))
    message = " ".join(result.output.split())
    assert result.exit_code == 2, message
    assert repr(name) in message or repr(name).replace("\\\\", "\\") in message, message
    assert "Traceback" not in message
    assert not out.exists()
    assert secret.stat().st_nlink == 1  # never hard-linked into an output


def test_validate_judges_a_file_name_outside_its_images_folder_unread(
    escaping: tuple[Path, Path, Path, str], tmp_path: Path
) -> None:
    """validate reports on the dataset: such a name is that image's finding (its file is never
    opened, though one lies there), and the other images are judged as ever."""
    coco, images, secret, name = escaping
    out = tmp_path / "report.json"
    result = runner.invoke(
        app, ["validate", str(coco), "--images", str(images), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    first, *others = json.loads(out.read_text())["samples"]
    [finding] = [f for f in first["findings"] if f["measure"] == "image_unreadable"]
    assert (
        repr(name) in finding["message"] or repr(name).replace("\\\\", "\\") in finding["message"]
    )
    assert secret.is_file() and secret.stat().st_nlink == 1  # there, and never linked
    assert others and not [
        f for row in others for f in row["findings"] if f["measure"] == finding["measure"]
    ]
