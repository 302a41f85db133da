"""Two ways the foreign-file guard of outputs.py (3aa8880) still deleted a file of the user's,
found by a second read:

- `publish_out` checks `out` again before it swaps the new folder in, for files put there while
  the new one was made; but when `out` was new (or empty) at `check_out`, the folder found there
  at publish time was judged as "a folder of an earlier synthgate": everything in its
  subfolders, and a file at its top named like one of FOLDER_FILES, taken as synthgate's. A
  folder with no marker holds no build of synthgate's: every file in it is someone's.
- A run folder whose synthgate.db was removed by hand fell to the same case, though its
  manifest.json still says what the run wrote at its top: now only its images/ is the run's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from factories import small_config
from typer.testing import CliRunner

import synthgate
from synthgate.cli import app
from synthgate.errors import InputError

runner = CliRunner()
CONFIG = small_config(
    image={"generator": "procedural", "count": 3, "size": [64, 48], "objects_per_image": [1, 2]}
)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "small.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


@pytest.fixture(scope="module")
def first_run(config_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("first") / "run"
    result = runner.invoke(app, ["run", str(config_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_a_folder_the_user_makes_at_a_new_out_while_the_run_is_made_is_not_deleted(
    config_file: Path, tmp_path: Path
) -> None:
    """--out runs/new did not exist when the run was checked; while it runs, the user puts
    photos/cat.jpg and their own coco.json there. The publish must refuse (as it does for a
    late.txt in an earlier run folder), not take the folder for an old run and delete both."""
    out = tmp_path / "runs" / "new"
    cat = out / "photos" / "cat.jpg"
    coco = out / "coco.json"

    def progress(modality: str, done: int, total: int) -> None:
        cat.parent.mkdir(parents=True, exist_ok=True)
        cat.write_bytes(b"mine")
        coco.write_text("my own labels")

    with pytest.raises(InputError):
        synthgate.run(config_file, out=out, progress=progress)
    assert cat.is_file() and cat.read_bytes() == b"mine"
    assert coco.read_text() == "my own labels"


def test_a_users_file_in_a_run_folder_whose_database_was_removed_stops_the_rerun(
    config_file: Path, first_run: Path, tmp_path: Path
) -> None:
    """The run's manifest.json is there (it marks the run and lists what the run wrote at its
    top); only synthgate.db was removed. mine/labels.json is no file of the run's."""
    run_folder = tmp_path / "runs" / "my-batch"
    shutil.copytree(first_run, run_folder)
    (run_folder / "synthgate.db").unlink()
    mine = run_folder / "mine" / "labels.json"
    mine.parent.mkdir()
    mine.write_text("mine")
    result = runner.invoke(app, ["run", str(config_file), "--out", str(run_folder)])
    assert mine.is_file(), "the rerun deleted mine/labels.json"
    assert result.exit_code == 2 and "mine/labels.json" in result.output, result.output
