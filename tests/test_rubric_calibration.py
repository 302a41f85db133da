"""Calibrating a rubric on people's verdicts: the stored measurements give back the rubric's
route exactly, a hidden threshold people follow is found again, nothing moves when nothing
improves, too few verdicts are refused, and the calibrated rubric is written as a rubric file
that loads (library, CLI, `sg.calibrate`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from calibration_fixtures import draw_measurements, judge, reviewed, reviewed_store, shifted
from typer.testing import CliRunner

import synthgate as sg
from synthgate.cli import app
from synthgate.errors import InputError
from synthgate.review.calibration import calibrate_items, fit_rubric, split
from synthgate.review.queue import ReviewQueue
from synthgate.review.routes import RubricModel, thresholds_of
from synthgate.review.verdicts import Reviewed
from synthgate.storage.store import Store
from synthgate.validators.rubric import load_rubric, parse_rubric

SHIPPED = load_rubric("detection")
HIDDEN = shifted(
    SHIPPED,
    {
        "box_tightness_px": {"gold": 1.5, "acceptable": 2.5},
        "min_side_px": {"gold": 12.0, "acceptable": 8.0},
    },
    accept_at=4.6,
)


def test_routes_from_stored_measurements_are_the_rubrics_routes() -> None:
    rng = np.random.default_rng(4)
    drawn = [draw_measurements(rng) for _ in range(400)]
    for rubric in (SHIPPED, HIDDEN, shifted(SHIPPED, {}, on_critical="reject")):
        model = RubricModel(rubric, drawn)
        routes = model.route_with(thresholds_of(rubric), rubric.routing)
        assert routes.tolist() == [judge(rubric, m)[2] for m in drawn]


def test_a_hidden_threshold_people_follow_is_found_again() -> None:
    items = reviewed(SHIPPED, HIDDEN, 2000, noise=0.05, seed=1)
    result = calibrate_items(SHIPPED, items, source=Path("detection.yaml"), seed=0)
    new = {spec.check: spec.thresholds for spec in result.rubric.all_checks()}
    for measure, check, target in (
        ("box_tightness_px", "precision_box_tightness", (1.5, 2.5)),
        ("min_side_px", "clarity_min_size", (12.0, 8.0)),
    ):
        found = new[check][measure]
        assert found.gold == pytest.approx(target[0], rel=0.1), (measure, found)
        assert found.acceptable == pytest.approx(target[1], rel=0.1), (measure, found)
    assert 4.4 < result.rubric.routing.accept_at <= 4.6  # scores between route alike
    assert result.before.kappa is not None and result.after.kappa is not None
    assert result.after.kappa > result.before.kappa + 0.2
    assert result.after.kappa > 0.8
    tight = next(c for c in result.checks if c.check == "precision_box_tightness")
    assert tight.changed and tight.after.items == result.held_out  # every sample has a box
    assert tight.after.kappa is not None and tight.before.kappa is not None
    assert tight.after.kappa > tight.before.kappa
    assert result.fitted + result.held_out == 2000 and result.held_out == 600


def test_no_gain_in_agreement_changes_nothing() -> None:
    """People who agree with the rubric already: the calibrated rubric is the rubric."""
    items = reviewed(SHIPPED, SHIPPED, 600, seed=2)
    assert fit_rubric(SHIPPED, items) == SHIPPED
    result = calibrate_items(SHIPPED, items, source=Path("detection.yaml"))
    assert not any(check.changed for check in result.checks)
    assert "No threshold changed." in result.header()


def test_routed_as_people_did_is_counted_where_kappa_cannot_tell() -> None:
    """People accepted every sample a too strict rubric sent to review. On the held-out part
    kappa is 0 (or undefined) before and after, whatever the refit does: one rater gave a single
    route. The count of samples routed as people did shows the refit (it once read "kappa 0.000
    before, 0.000 after" for a rubric that went from 2 of 14 held-out samples to 13 of 14)."""
    strict = shifted(SHIPPED, {"min_side_px": {"gold": 40.0, "acceptable": 25.0}}, accept_at=4.7)
    rng = np.random.default_rng(5)
    items = []
    for i in range(200):
        measured = {"min_side_px": float(rng.uniform(3.0, 30.0))}
        items.append(Reviewed(i, f"s{i}", measured, judge(strict, measured)[2], "accepted", {}))
    result = calibrate_items(strict, items, source=Path("strict.yaml"))
    held = [items[i].measurements for i in split(len(items), 0.3, 0)[1]]  # as calibrate_items
    before = sum(judge(strict, m)[2] == "accepted" for m in held)
    after = sum(judge(result.rubric, m)[2] == "accepted" for m in held)
    assert result.before.kappa in (0.0, None) and result.after.kappa in (0.0, None)
    assert (result.before.agreed, result.after.agreed) == (before, after)
    assert before < len(held) // 2 < after  # the refit helped, and the counts say so
    header = " ".join(result.header())
    assert f"{before} of {len(held)}" in header and f"{after} of {len(held)}" in header
    assert "people routed every held-out sample accepted" in header
    size = next(c for c in result.checks if c.check == "clarity_min_size")
    assert (size.before.agreed, size.after.agreed) == (before, after)  # all measured it
    assert result.as_dict()["after"]["agreed"] == after


def test_kappa_zero_because_the_rubric_gave_one_route_is_said() -> None:
    """Audit samples: the rubric accepted every one, people rejected some. Kappa is 0 before
    (and after, where the refit still accepts all) whatever people did; the header said
    "Cohen's kappa 0.000 before, 0.000 after" and nothing on why, as it says where people gave
    one route."""
    rng = np.random.default_rng(6)
    items = []
    for i in range(100):
        measured = {"min_side_px": float(rng.uniform(40.0, 60.0))}
        human = "rejected" if i % 4 == 0 else "accepted"
        items.append(Reviewed(i, f"s{i}", measured, judge(SHIPPED, measured)[2], human, {}))
    assert {item.rubric_route for item in items} == {"accepted"}
    result = calibrate_items(SHIPPED, items, source=Path("detection.yaml"))
    assert result.before.kappa == pytest.approx(0.0)
    header = " ".join(result.header())
    assert "the rubric routed every held-out sample accepted before" in header, header
    assert "people routed every" not in header


def test_too_few_verdicts_are_refused() -> None:
    items = reviewed(SHIPPED, HIDDEN, 20, seed=3)
    with pytest.raises(InputError) as caught:
        calibrate_items(SHIPPED, items, source=Path("detection.yaml"), min_verdicts=30)
    assert caught.value.field == "min_verdicts"
    assert "20 reviewed samples" in str(caught.value) and "review more items" in str(caught.value)


def test_nothing_held_out_is_blamed_on_the_holdout_not_on_the_verdicts() -> None:
    """One reviewed sample and --min-verdicts 1: enough to fit, none held out (1 x 0.3 rounds
    to 0). The refusal said too few verdicts for --min-verdicts 1, 'the most: 1'."""
    items = reviewed(SHIPPED, HIDDEN, 1, seed=3)
    with pytest.raises(InputError) as caught:
        calibrate_items(SHIPPED, items, source=Path("detection.yaml"), min_verdicts=1)
    assert caught.value.field == "holdout"
    assert "holds out no sample of 1 reviewed sample with" in str(caught.value)


@pytest.mark.parametrize("holdout", [0, 1, 0.0, 1.0, float("nan"), 1.5, -0.1, np.float64(1)])
def test_a_holdout_outside_0_and_1_is_refused_at_the_entry_as_the_cli_refuses_it(
    tmp_path: Path, holdout: float
) -> None:
    """0 and 1 passed `sg.calibrate`'s check ("from 0 to 1") and, once the database was read,
    were refused by calibrate_items as "must be between 0 and 1", which reads as allowed; NaN
    read "must be from 0 to 1". Now one wording, the command line's, before the database."""
    missing = tmp_path / "no-such-run"  # never read: the holdout is refused first
    for call in (
        lambda: sg.calibrate(missing, holdout=holdout),
        lambda: calibrate_items(SHIPPED, [], source=None, holdout=holdout),
    ):
        with pytest.raises(InputError) as caught:
            call()
        assert caught.value.field == "holdout"
        assert str(caught.value).startswith(
            f"holdout={float(holdout)}: must be more than 0 and less than 1 (a share of the "
            "reviewed samples); try 0.3"
        ), str(caught.value)


def test_the_calibrated_rubric_file_loads_back(tmp_path: Path) -> None:
    items = reviewed(SHIPPED, HIDDEN, 800, seed=5)
    result = calibrate_items(SHIPPED, items, source=Path("detection.yaml"))
    text = result.to_yaml()
    assert text.startswith("# Calibrated by `synthgate rubric calibrate` from detection.yaml")
    assert "box_tightness_px: {gold: " in text  # thresholds inline, as the shipped files
    assert parse_rubric(yaml.safe_load(text), source="calibrated.yaml") == result.rubric


def test_calibrate_from_a_review_database_library_and_cli(tmp_path: Path) -> None:
    hidden = shifted(SHIPPED, {"box_tightness_px": {"gold": 1.0, "acceptable": 2.5}})
    store = reviewed_store(f"sqlite:///{tmp_path / 'synthgate.db'}", hidden, 240)
    try:
        out = tmp_path / "calibrated.yaml"
        result = sg.calibrate(store, rubric="detection", out=out, min_verdicts=20)
        final = ReviewQueue(store).stats()["items"]["final"]  # rejected samples are not reviewed
        assert result.items == final > 200 and out.is_file()
        found = load_rubric(out).threshold_of("precision_box_tightness", "box_tightness_px")
        assert found is not None and found.acceptable == pytest.approx(2.5, rel=0.1)
    finally:
        store.close()
    runner = CliRunner()
    cli_out, report = tmp_path / "cli.yaml", tmp_path / "cli.json"
    done = runner.invoke(
        app,
        [
            "rubric", "calibrate", "--db", f"sqlite:///{tmp_path / 'synthgate.db'}",
            "--rubric", "detection", "--out", str(cli_out), "--min-verdicts", "20",
            "--json", str(report),
        ],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "precision_box_tightness.box_tightness_px.acceptable: 5 -> 2." in done.output
    assert "kappa" in done.output and "not measured on any fitted sample" in done.output
    assert json.loads(report.read_text())["items"] == final
    assert load_rubric(cli_out) == load_rubric(out)  # the same split, the same fit
    refused = runner.invoke(
        app,
        [
            "rubric", "calibrate", "--db", f"sqlite:///{tmp_path / 'synthgate.db'}",
            "--out", str(tmp_path / "never.yaml"), "--min-verdicts", "500",
        ],
    )  # fmt: skip
    assert refused.exit_code == 2
    assert "--min-verdicts" in refused.output and "review more items" in refused.output
    assert not (tmp_path / "never.yaml").exists()
    # the JSON over the calibrated rubric, or the rubric over the one it was read from: refused
    same = runner.invoke(
        app,
        [
            "rubric", "calibrate", "--db", f"sqlite:///{tmp_path / 'synthgate.db'}",
            "--out", str(tmp_path / "c.yaml"), "--json", str(tmp_path / "c.yaml"),
        ],
    )  # fmt: skip
    assert same.exit_code == 2 and "is the file the calibrated rubric goes to" in same.output
    before = out.read_bytes()
    with pytest.raises(sg.InputError, match="which this reads"):
        sg.calibrate(f"sqlite:///{tmp_path / 'synthgate.db'}", rubric=out, out=out)
    assert out.read_bytes() == before


def test_calibrate_takes_a_rubric_loaded_in_a_notebook(tmp_path: Path) -> None:
    """A `Rubric` (load_rubric's, as a notebook holds one) calibrates as its name does; the
    file it writes says which rubric it came from, and a rubric none of the samples was judged
    by is named by its name (it was refused: "is a Rubric, not a rubric name or path")."""
    url = f"sqlite:///{tmp_path / 'synthgate.db'}"
    hidden = shifted(SHIPPED, {"box_tightness_px": {"gold": 1.0, "acceptable": 2.5}})
    reviewed_store(url, hidden, 120).close()
    by_name = sg.calibrate(url, rubric="detection", min_verdicts=20)
    out = tmp_path / "calibrated.yaml"
    given = load_rubric("detection")
    by_object = sg.calibrate(url, rubric=given, out=out, min_verdicts=20)
    assert by_object.rubric == by_name.rubric and by_object.checks == by_name.checks
    assert (by_object.before, by_object.after) == (by_name.before, by_name.after)
    assert given == SHIPPED  # the rubric passed is left as it was
    assert by_object.source is None and by_object.as_dict()["source"] is None
    assert "source=None" in repr(by_object)
    assert out.read_text().startswith(
        "# Calibrated by `synthgate rubric calibrate` from rubric detection on "
    )
    assert load_rubric(out) == by_name.rubric
    with pytest.raises(InputError) as refused:
        sg.calibrate(url, rubric=load_rubric("ner"), min_verdicts=1)
    assert str(refused.value).startswith("rubric=ner: no reviewed sample was judged by ner")
    assert "pass the rubric they were judged by: rubric=detection" in str(refused.value)


def test_a_rubric_none_of_the_reviewed_samples_was_judged_by_is_named_as_the_fault(
    tmp_path: Path,
) -> None:
    """Every reviewed sample judged by detection, calibrated as ner (or the CLI's default,
    detection, over a text review): the refusal said "0 reviewed samples with final verdicts
    ... review more items" when there were plenty; it names the rubric that judged them."""
    url = f"sqlite:///{tmp_path / 'synthgate.db'}"
    reviewed_store(url, SHIPPED, 20).close()
    with pytest.raises(InputError) as caught:
        sg.calibrate(url, rubric="ner", min_verdicts=1)
    assert caught.value.field == "rubric"
    assert "judged: " in str(caught.value) and "by detection" in str(caught.value)
    assert "rubric=detection" in str(caught.value)
    out = tmp_path / "never.yaml"
    done = CliRunner().invoke(
        app, ["rubric", "calibrate", "--db", url, "--rubric", "ner", "--out", str(out)]
    )
    assert done.exit_code == 2, done.output
    assert "--rubric ner" in done.output and "--rubric detection" in done.output
    assert "review more items" not in done.output and not out.exists()


def test_a_rubric_file_of_ones_own_is_asked_for_as_a_file(tmp_path: Path) -> None:
    """Samples judged by a rubric YAML of the user's (`name: mine`), calibrated with the CLI's
    default: the refusal said "pass the rubric they were judged by: --rubric mine", and
    `--rubric mine` is refused in turn (no such file, not a shipped name)."""
    from sqlalchemy import func, update

    from synthgate.storage.tables import samples

    url = f"sqlite:///{tmp_path / 'synthgate.db'}"
    store = reviewed_store(url, SHIPPED, 20)
    with store.engine.begin() as connection:  # as if `rubric: mine.yaml` had judged them
        connection.execute(
            update(samples).values(
                data=func.replace(samples.c.data, '"rubric":"detection"', '"rubric":"mine"')
            )
        )
    store.close()
    done = CliRunner().invoke(
        app, ["rubric", "calibrate", "--db", url, "--out", str(tmp_path / "never.yaml")]
    )
    shown = " ".join(done.output.split())
    assert done.exit_code == 2, done.output
    assert "(judged: " in shown and " by mine)" in shown
    assert "--rubric mine" not in shown
    assert "pass the rubric YAML they were judged by (its `name:` is mine)" in shown
    assert "--rubric FILE" in shown


def test_a_database_with_no_final_verdict_says_so(tmp_path: Path) -> None:
    """Nothing decided yet: the refusal said "too few verdicts ... 0 reviewed samples ... or
    lower --min-verdicts", even at --min-verdicts 1, where there is nothing lower."""
    url = f"sqlite:///{tmp_path / 'synthgate.db'}"
    Store(url).close()
    done = CliRunner().invoke(
        app,
        ["rubric", "calibrate", "--db", url, "--min-verdicts", "1", "-o", str(tmp_path / "c.yaml")],
    )
    shown = " ".join(done.output.split())
    assert done.exit_code == 2, done.output
    assert "holds no reviewed sample with a final verdict" in shown
    assert "lower --min-verdicts" not in shown and not (tmp_path / "c.yaml").exists()


def test_no_verdict_of_the_batches_asked_for_names_the_parameter_or_the_flag(
    tmp_path: Path,
) -> None:
    """The library's refusal said "check --batch", a flag a notebook has not got."""
    url = f"sqlite:///{tmp_path / 'synthgate.db'}"
    reviewed_store(url, load_rubric("detection"), 4).close()
    with pytest.raises(InputError) as refused:
        sg.calibrate(url, batches=["other"])
    assert "of batches other" in str(refused.value) and "check batches, or" in str(refused.value)
    assert "--batch" not in str(refused.value)
    done = CliRunner().invoke(
        app,
        ["rubric", "calibrate", "--db", url, "--batch", "other", "-o", str(tmp_path / "c.yaml")],
    )
    assert done.exit_code == 2, done.output
    assert "check --batch, or" in " ".join(done.output.split())


def test_a_missing_database_is_told_in_the_callers_own_options(tmp_path: Path) -> None:
    """sg.calibrate(db=URL of no database) said "check db (or run)": the library has no `run`
    (found by a helper). The CLI, which has --run, still names both."""
    url = f"sqlite:///{tmp_path / 'none.db'}"
    with pytest.raises(InputError) as refused:
        sg.calibrate(url)
    assert "no database at" in str(refused.value) and "(or run)" not in str(refused.value)
    shown = CliRunner().invoke(
        app, ["rubric", "calibrate", "--db", url, "-o", str(tmp_path / "c.yaml")]
    )
    assert shown.exit_code == 2
    assert "check --db (or --run)" in " ".join(shown.output.split()), shown.output
    assert not (tmp_path / "none.db").exists()
