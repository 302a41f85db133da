"""Second read (c18d745): `sg.calibrate(rubric=path, out=path)` is refused ("is ..., which this
reads"), but the same rubric passed as the object `load_rubric(path)` gave skips the guard and
silently replaces the user's hand-written rubric file (its comments too) with the fitted one."""

from __future__ import annotations

from pathlib import Path

import pytest
from calibration_fixtures import reviewed_store, shifted

import synthgate as sg
from synthgate.errors import InputError
from synthgate.validators.rubric import RUBRICS_DIR, load_rubric


def test_out_is_never_the_file_the_rubric_object_was_loaded_from(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'synthgate.db'}"
    shipped = load_rubric("detection")
    reviewed_store(
        url, shifted(shipped, {"box_tightness_px": {"gold": 1.0, "acceptable": 2.5}}), 60
    ).close()
    mine = tmp_path / "mine.yaml"
    mine.write_text("# my notes\n" + (RUBRICS_DIR / "detection.yaml").read_text())
    before = mine.read_bytes()
    with pytest.raises(InputError, match="which this reads"):
        sg.calibrate(url, rubric=mine, out=mine, min_verdicts=20)
    with pytest.raises(InputError, match="holds rubric detection, the one this calibrates"):
        sg.calibrate(url, rubric=load_rubric(mine), out=mine, min_verdicts=20)
    assert mine.read_bytes() == before, "the rubric file the object came from was replaced"


def test_out_holding_another_rubric_is_written_over(tmp_path: Path) -> None:
    """An earlier calibration's output (another rubric now) is no input: written over, as with
    the path form."""
    url = f"sqlite:///{tmp_path / 'synthgate.db'}"
    shipped = load_rubric("detection")
    reviewed_store(
        url, shifted(shipped, {"box_tightness_px": {"gold": 1.0, "acceptable": 2.5}}), 60
    ).close()
    out = tmp_path / "calibrated.yaml"
    first = sg.calibrate(url, rubric=shipped, out=out, min_verdicts=20)
    assert load_rubric(out) == first.rubric != shipped
    sg.calibrate(url, rubric=shipped, out=out, min_verdicts=20)
    assert load_rubric(out) == first.rubric
