"""`_refuse_replacing` (review/calibration.py) compares the rubric in `out` with the Rubric
object: when people's verdicts agree with the rubric, calibration returns it unchanged, so its
output file holds "this very rubric", and the same `calibrate(rubric=<Rubric>, out=FILE)` run
again (a rerun of a script, more verdicts since) is refused, though FILE is only its own
earlier output (the path form writes it over; the module's own test promises the same)."""

from __future__ import annotations

from pathlib import Path

from calibration_fixtures import reviewed_store

import synthgate as sg
from synthgate.validators.rubric import load_rubric


def test_rerunning_a_calibration_that_changed_nothing_writes_over_its_own_output(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'synthgate.db'}"
    shipped = load_rubric("detection")
    reviewed_store(url, shipped, 60).close()  # people agreed with the rubric
    out = tmp_path / "calibrated.yaml"
    first = sg.calibrate(url, rubric=shipped, out=out, min_verdicts=20)
    assert first.rubric == shipped  # nothing to change: the output holds the input rubric
    # the path form writes over its own earlier output...
    sg.calibrate(url, rubric="detection", out=out, min_verdicts=20)
    # ...and so must the object form: `out` is no input, it was never loaded from
    again = sg.calibrate(url, rubric=shipped, out=out, min_verdicts=20)
    assert load_rubric(out) == again.rubric
