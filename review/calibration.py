"""Calibrating a rubric on people's verdicts: `synthgate rubric calibrate` and `sg.calibrate`.

From the final human verdicts of a review database (review/verdicts.py: the rubric's stored
measurements, the route people's verdict implies, the levels they gave per criterion), the
reviewed samples are split, seeded, into a fitted part and a held-out part. On the fitted part
every thresholded measure's gold/acceptable cut points are refit, one measure at a time with the
others fixed, to agree with people as often as possible: the levels people gave the measure's
criterion (where they gave one) and the route their verdict implies both count. Then the routing
cut-offs (`accept_at`, `reject_below`, `on_critical`) are refit on the new levels, and the round
repeats until nothing moves. A cut point moves only when it agrees with people on at least
`min_gain` more fitted samples (a share, default 1 %, at least 2): a calibration that cannot
improve agreement changes nothing. Where several cut points agree equally well, the middle of
that range is taken (between the values people judged one way and the other), so a threshold
far from the truth is found in a few rounds of review, not one sample at a time.

The held-out part says what the refit is worth: Cohen's kappa between the rubric's route and
people's, and precision and recall of "rejected", before and after, overall and per check on
the samples the check measured (review/agreement.py, scikit-learn). A check measured on fewer
than `min_verdicts` fitted samples keeps its thresholds; with none that has enough, calibration
is refused (an `InputError` saying how many verdicts there are and how many it needs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthgate.arguments import (
    names_argument,
    number_typed,
    optional_path,
    path_argument,
    whole_number,
)
from synthgate.config import MAX_SEED
from synthgate.errors import InputError, counted
from synthgate.files import write_atomic
from synthgate.outputs import check_out_file
from synthgate.review import agreement
from synthgate.review.routes import MeasureRef, RubricModel, thresholds_of
from synthgate.review.verdicts import Reviewed, reviewed_items
from synthgate.storage.database import open_store, shown_url
from synthgate.storage.store import Store, sqlite_url
from synthgate.validators.routing import Routing
from synthgate.validators.rubric import (
    Rubric,
    Threshold,
    load_rubric,
    rubric_path,
    rubric_yaml,
    shipped_rubrics,
)

LEVELS = (5, 3, 1)
ROUNDS = 6

CALIBRATED_BY = "Calibrated by `synthgate rubric calibrate`"  # a calibrated file's header


@dataclass
class RouteAgreement:
    """The rubric's route against people's on some samples: how many it routed as people did,
    Cohen's kappa, and precision and recall of "rejected" (None where undefined).

    `agreed` is the plain count beside kappa: where people gave every sample the same route,
    kappa is 0 however many the rubric routes as they did (or undefined when it routes them all
    so), and only the count shows a calibration that went from 2 of 14 to 13 of 14."""

    items: int
    kappa: float | None
    reject_precision: float | None
    reject_recall: float | None
    agreed: int = 0

    @classmethod
    def of(cls, rubric_routes: Sequence[str], human_routes: Sequence[str]) -> RouteAgreement:
        kappa = agreement.cohen_kappa(list(rubric_routes), list(human_routes)).value
        precision, recall = agreement.precision_recall(
            list(human_routes), list(rubric_routes), positive="rejected"
        )
        agreed = sum(a == b for a, b in zip(rubric_routes, human_routes, strict=True))
        return cls(len(human_routes), kappa, precision, recall, agreed)

    def agreed_text(self) -> str:
        """ "2 of 14 (14%)", or "none" without samples."""
        if not self.items:
            return "none"
        return f"{self.agreed} of {self.items} ({self.agreed / self.items:.0%})"


@dataclass
class CheckFit:
    """One check of the rubric before and after: thresholds per measure, agreement on the
    held-out samples it measured."""

    check: str
    criterion: str
    old: dict[str, Threshold]
    new: dict[str, Threshold]
    fitted_items: int
    before: RouteAgreement
    after: RouteAgreement
    note: str = ""

    @property
    def changed(self) -> bool:
        return self.old != self.new


@dataclass
class Calibration:
    """A calibrated rubric and what it was fitted on: `.rubric` (the new `Rubric`: pass it to
    `validate`/`validate_coco`, or `.to_yaml()`), `.old` (the one it replaces), `.items`
    reviewed samples (`.fitted` + `.held_out`), `.checks` (per check: old and new thresholds,
    agreement before and after on the held-out samples it measured), `.before`/`.after` (the
    rubric's route against people's on all held-out samples: `.agreed`, `.kappa`,
    `.reject_precision`, `.reject_recall`), `.skipped` (items left out, by reason) and
    `.as_dict()`."""

    source: Path | None  # the rubric file read; None for a `Rubric` passed as it is
    rubric: Rubric
    old: Rubric
    items: int
    fitted: int
    held_out: int
    seed: int
    holdout: float
    checks: list[CheckFit]
    before: RouteAgreement
    after: RouteAgreement
    where: str = ""
    skipped: dict[str, int] = field(default_factory=dict)
    held_routes: list[str] = field(default_factory=list)  # people's, on the held-out samples
    # the rubric's on them, before and after the refit
    rubric_routes: dict[str, list[str]] = field(default_factory=dict)

    def __repr__(self) -> str:  # not the dataclass's: it would print both rubrics whole
        return (
            f"Calibration(rubric={self.rubric.name!r}, source={self._source()!r}, "
            f"items={self.items}, fitted={self.fitted}, held_out={self.held_out}, "
            f"checks={len(self.checks)}, kappa_before={_show(self.before.kappa)}, "
            f"kappa_after={_show(self.after.kappa)})"
        )

    def header(self) -> list[str]:
        """What the calibrated rubric file says about itself."""
        changed = [
            f"{fit.check}.{measure}.{cut}: {getattr(fit.old[measure], cut):g} -> "
            f"{getattr(t, cut):g}"
            for fit in self.checks
            for measure, t in fit.new.items()
            for cut in ("gold", "acceptable")
            if getattr(t, cut) != getattr(fit.old[measure], cut)
        ]
        old, new = self.old.routing, self.rubric.routing
        routing = [
            f"routing.{name}: {getattr(old, name)} -> {getattr(new, name)}"
            for name in ("accept_at", "reject_below", "on_critical")
            if getattr(old, name) != getattr(new, name)
        ]
        return [
            f"{CALIBRATED_BY} from {self._origin()} on {self.items} "
            f"final human verdicts{self.where}:",
            f"{self.fitted} fitted, {self.held_out} held out (share {self.holdout:g}, seed "
            f"{self.seed}). Held-out samples the rubric routes as people did: "
            f"{self.before.agreed_text()} before, {self.after.agreed_text()} after; Cohen's "
            f"kappa {_show(self.before.kappa)} before, {_show(self.after.kappa)} after"
            + self._kappa_caveat()
            + ".",
            *(
                ["Changed:"] + [f"  {line}" for line in changed + routing]
                if changed or routing
                else ["No threshold changed."]
            ),
        ]

    def _source(self) -> str | None:
        return str(self.source) if self.source is not None else None

    def _origin(self) -> str:
        """The rubric it was calibrated from, as its header names it."""
        return self.source.name if self.source is not None else f"rubric {self.old.name}"

    def _kappa_caveat(self) -> str:
        """Why kappa says little here, when people gave every held-out sample one route, or
        the rubric did (audits of accepted samples: kappa is 0 whatever people said)."""
        if self.held_out and len(set(self.held_routes)) == 1:
            return (
                f" (people routed every held-out sample {self.held_routes[0]}: kappa stays 0, "
                "or undefined, whatever the rubric does; the counts tell)"
            )
        one = {
            when: routes[0] for when, routes in self.rubric_routes.items() if len(set(routes)) == 1
        }
        if not one:
            return ""
        if len(one) == 2 and len(set(one.values())) == 1:
            routed = f"{one['before']} before and after"
        else:
            routed = " and ".join(f"{route} {when}" for when, route in one.items())
        return (
            f" (the rubric routed every held-out sample {routed}: kappa is 0 there whatever "
            "people did; the counts tell)"
        )

    def to_yaml(self) -> str:
        return rubric_yaml(self.rubric, header=self.header())

    def as_dict(self) -> dict[str, Any]:
        def thresholds(found: dict[str, Threshold]) -> dict[str, Any]:
            return {m: t.model_dump() for m, t in found.items()}

        return {
            "rubric": self.rubric.name,
            "source": self._source(),
            "items": self.items,
            "fitted": self.fitted,
            "held_out": self.held_out,
            "seed": self.seed,
            "before": asdict(self.before),
            "after": asdict(self.after),
            "routing": {
                "old": self.old.routing.model_dump(),
                "new": self.rubric.routing.model_dump(),
            },
            "checks": [
                {
                    "check": fit.check,
                    "criterion": fit.criterion,
                    "old": thresholds(fit.old),
                    "new": thresholds(fit.new),
                    "fitted_items": fit.fitted_items,
                    "before": asdict(fit.before),
                    "after": asdict(fit.after),
                    "note": fit.note,
                }
                for fit in self.checks
            ],
            "skipped": self.skipped,
        }


def _show(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"


def split(count: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the fitted and the held-out samples: a seeded permutation, cut."""
    order = np.random.default_rng([seed, 0xCA11B]).permutation(count)
    held = round(count * holdout)
    return np.sort(order[held:]), np.sort(order[:held])


# ---- fitting ---------------------------------------------------------------------------------


def _best_cut(gains: np.ndarray, current: int) -> tuple[int, int, float]:
    """The cut with the most agreement: (first, last) of the run of equally good cut indices
    nearest `current`, and how much more it agrees than `current` (gains[j]: agreement with
    the cut after the j-th distinct value)."""
    best = gains.max()
    gain = float(best - gains[current])
    if gain <= 0:
        return current, current, 0.0
    at_best = np.flatnonzero(gains == best)
    runs = np.split(at_best, np.flatnonzero(np.diff(at_best) > 1) + 1)
    run = min(runs, key=lambda r: min(abs(int(r[0]) - current), abs(int(r[-1]) - current)))
    return int(run[0]), int(run[-1]), gain


def _cut_between(unique: np.ndarray, first: int, last: int) -> float:
    """A threshold in the middle of the gap that cut indices first..last leave between the
    distinct values: above the `first` lowest values, below all but the `last` lowest."""
    below = unique[first - 1] if first > 0 else None
    above = unique[last] if last < len(unique) else None
    if below is None and above is None:
        return 0.0
    if below is None:
        assert above is not None
        gap = unique[1] - unique[0] if len(unique) > 1 else max(abs(float(above)), 1.0)
        return float(above - gap / 2)
    if above is None:
        return float(below)  # everything at or under it: the highest value itself
    return float((below + above) / 2)


def _fit_measure(
    values: np.ndarray,
    agree: np.ndarray,
    threshold: Threshold,
    worse: str,
    min_gain: int,
) -> Threshold:
    """New cut points for one measure. `values`: its values on the samples that have one;
    `agree[i, l]`: how much sample i agrees with people if this measure's level is LEVELS[l]."""
    sign = 1.0 if worse == "higher" else -1.0  # lower is worse: flip, so "at or under" is better
    keyed = sign * values
    order = np.argsort(keyed, kind="stable")
    keyed, agree = keyed[order], agree[order]
    unique, first = np.unique(keyed, return_index=True)
    # prefix[j, l]: agreement at level LEVELS[l] summed over the samples of the j lowest values
    prefix = np.vstack([np.zeros((1, 3)), np.cumsum(np.add.reduceat(agree, first, axis=0), axis=0)])
    total = prefix[-1]
    old_gold = int(np.searchsorted(unique, sign * threshold.gold, side="right"))
    old_acceptable = int(np.searchsorted(unique, sign * threshold.acceptable, side="right"))
    gold, acceptable = (old_gold, old_gold), (old_acceptable, old_acceptable)
    # one cut point at a time, the other fixed, until neither moves: level 5 up to the gold
    # cut, 3 up to the acceptable cut, 1 beyond
    for _ in range(4):
        moved = False
        g = gold[0]
        a_cuts = np.arange(g, len(unique) + 1)
        gains = prefix[g, 0] + prefix[a_cuts, 1] - prefix[g, 1] + total[2] - prefix[a_cuts, 2]
        lo, hi, gain = _best_cut(gains, acceptable[0] - g)
        if gain >= min_gain:
            acceptable, moved = (lo + g, hi + g), True
        a = acceptable[0]
        g_cuts = np.arange(0, a + 1)
        gains = prefix[g_cuts, 0] + prefix[a, 1] - prefix[g_cuts, 1] + total[2] - prefix[a, 2]
        lo, hi, gain = _best_cut(gains, gold[0])
        if gain >= min_gain:
            gold, moved = (lo, hi), True
        if not moved:
            break
    if (gold[0], acceptable[0]) == (old_gold, old_acceptable):
        return threshold
    new_gold = sign * _round(_cut_between(unique, *gold)) if gold[0] != old_gold else threshold.gold
    new_acceptable = (
        sign * _round(_cut_between(unique, *acceptable))
        if acceptable[0] != old_acceptable
        else threshold.acceptable
    )
    if (new_acceptable - new_gold) * sign < 0:  # rounding met in the middle: keep them ordered
        new_gold = new_acceptable
    return Threshold(gold=new_gold, acceptable=new_acceptable)


def _round(value: float) -> float:
    """Four significant digits: a threshold is a judgement, not a measurement."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, 3 - math.floor(math.log10(abs(value))))


@dataclass
class Fitter:
    """Refits a rubric's thresholds and routing on reviewed samples."""

    model: RubricModel
    human_routes: np.ndarray
    human_levels: np.ndarray  # samples x criteria, 0 where people gave no level
    min_gain: int
    min_verdicts: int

    @classmethod
    def of(
        cls, rubric: Rubric, items: Sequence[Reviewed], *, min_gain: float, min_verdicts: int
    ) -> Fitter:
        model = RubricModel(rubric, [r.measurements for r in items])
        levels = np.zeros((len(items), len(model.criteria)), dtype=int)
        for i, reviewed in enumerate(items):
            for c, criterion in enumerate(model.criteria):
                levels[i, c] = reviewed.human_levels.get(criterion, 0)
        gain = max(2, math.ceil(min_gain * len(items)))
        return cls(model, np.array([r.human_route for r in items]), levels, gain, min_verdicts)

    def measured(self, j: int) -> np.ndarray:
        return ~np.isnan(self.model.values[:, j])

    def fit(self, thresholds: list[Threshold], routing: Routing) -> tuple[list[Threshold], Routing]:
        thresholds = list(thresholds)
        for _ in range(ROUNDS):
            before = (list(thresholds), routing)
            for j, ref in enumerate(self.model.refs):
                if self.measured(j).sum() >= self.min_verdicts:
                    thresholds[j] = self._fit_one(j, ref, thresholds, routing)
            routing = self._fit_routing(thresholds, routing)
            if (thresholds, routing) == before:
                break
        return thresholds, routing

    def _fit_one(
        self, j: int, ref: MeasureRef, thresholds: list[Threshold], routing: Routing
    ) -> Threshold:
        rows = self.measured(j)
        levels = self.model.measure_levels(thresholds)[rows]
        c = self.model.criterion_of[j]
        others = np.delete(levels, j, axis=1)
        other_criterion = np.delete(self.model.criterion_of, j)
        floor = others[:, other_criterion == c].min(axis=1, initial=5)
        human_level = self.human_levels[rows, c]
        agree = np.zeros((rows.sum(), 3))
        for index, level in enumerate(LEVELS):
            trial = levels.copy()
            trial[:, j] = level
            criteria = self.model.criterion_levels(trial)
            routes = self.model.routes(criteria, routing)
            agree[:, index] = (routes == self.human_routes[rows]) + np.where(
                human_level > 0, np.minimum(level, floor) == human_level, 0
            )
        return _fit_measure(
            self.model.values[rows, j], agree, thresholds[j], ref.worse, self.min_gain
        )

    def _fit_routing(self, thresholds: list[Threshold], routing: Routing) -> Routing:
        """accept_at, reject_below and on_critical with the most agreement. The cut-offs are
        tried in the middle of each gap between the scores the samples have (any value in a gap
        routes them alike), keeping the current one when nothing agrees more."""
        criteria = self.model.criterion_levels(self.model.measure_levels(thresholds))
        scores = np.unique(self.model.scores(criteria))
        middles = (scores[:-1] + scores[1:]) / 2
        candidates = sorted(
            {routing.accept_at, routing.reject_below, *np.round(middles, 3).tolist()}
            | ({float(scores[0]), float(scores[-1])} if len(scores) else set())
        )
        candidates = [s for s in candidates if 1 <= s <= 5]
        current = int((self.model.routes(criteria, routing) == self.human_routes).sum())
        best, best_key = routing, (current, 0.0)
        for on_critical in ("review", "reject"):
            for accept_at in candidates:
                for reject_below in candidates:
                    if reject_below > accept_at:
                        continue
                    trial = Routing(
                        accept_at=accept_at,
                        reject_below=reject_below,
                        on_critical=on_critical,  # type: ignore[arg-type]
                        audit_rate=routing.audit_rate,
                    )
                    agreed = int((self.model.routes(criteria, trial) == self.human_routes).sum())
                    if agreed < current + self.min_gain:
                        continue
                    moved = abs(accept_at - routing.accept_at) + abs(
                        reject_below - routing.reject_below
                    )
                    key = (agreed, -moved)
                    if key > best_key:
                        best, best_key = trial, key
        return best


def with_thresholds(rubric: Rubric, thresholds: Sequence[Threshold], routing: Routing) -> Rubric:
    """The rubric with new thresholds (in `thresholds_of` order) and routing."""
    data = rubric.model_dump()
    position = iter(thresholds)
    for criterion in data["criteria"].values():
        for spec in criterion["checks"]:
            spec["thresholds"] = {m: next(position).model_dump() for m in spec["thresholds"]}
    data["routing"] = routing.model_dump()
    return Rubric.model_validate(data)


def fit_rubric(
    rubric: Rubric,
    items: Sequence[Reviewed],
    *,
    min_gain: float = 0.01,
    min_verdicts: int = 30,
) -> Rubric:
    """The rubric refit on reviewed samples (all of them: the caller holds some out)."""
    fitter = Fitter.of(rubric, items, min_gain=min_gain, min_verdicts=min_verdicts)
    thresholds, routing = fitter.fit(thresholds_of(rubric), rubric.routing)
    return with_thresholds(rubric, thresholds, routing)


def agreement_on(rubric: Rubric, items: Sequence[Reviewed]) -> RouteAgreement:
    """How the rubric's route (recomputed from the stored measurements) agrees with people."""
    model = RubricModel(rubric, [r.measurements for r in items])
    routes = model.route_with(thresholds_of(rubric), rubric.routing)
    return RouteAgreement.of(routes.tolist(), [r.human_route for r in items])


def holdout_share(holdout: Any) -> float:
    """`holdout` as a float strictly between 0 and 1, NaN refused: 0 holds nothing out to
    compare on, 1 leaves nothing to fit, so "from 0 to 1" would read as if both were allowed."""
    share = float(number_typed(holdout, "holdout", whole=False, fix="pass a number like 0.3"))
    if not 0 < share < 1:  # NaN too
        raise InputError(
            field="holdout",
            value=share,
            problem="must be more than 0 and less than 1 (a share of the reviewed samples)",
            fix="try 0.3",
        )
    return share


def calibrate_items(
    rubric: Rubric,
    items: Sequence[Reviewed],
    *,
    source: Path | None,
    holdout: float = 0.3,
    seed: int = 0,
    min_verdicts: int = 30,
    min_gain: float = 0.01,
) -> Calibration:
    """Split, fit, and compare on the held-out part (see the module docstring)."""
    holdout = holdout_share(holdout)
    fitted_at, held_at = split(len(items), holdout, seed)
    fitted = [items[i] for i in fitted_at]
    held = [items[i] for i in held_at]
    fitter = Fitter.of(rubric, fitted, min_gain=min_gain, min_verdicts=min_verdicts)
    per_check: dict[str, int] = {}
    for j, ref in enumerate(fitter.model.refs):
        per_check[ref.check] = max(
            per_check.get(ref.check, 0), int((~np.isnan(fitter.model.values[:, j])).sum())
        )
    enough = [check for check, n in per_check.items() if n >= min_verdicts]
    if enough and not held:  # enough to fit, none left to compare on
        raise InputError(
            field="holdout",
            value=holdout,
            problem=(
                f"holds out no sample of {counted(len(items), 'reviewed sample')} with final verdicts "
                f"({len(items)} x {holdout:g} rounds to 0), so the calibrated rubric could not "
                "be compared with the one it replaces"
            ),
            fix="review more items (synthgate review enqueue) or raise {holdout}",
            options=("holdout",),
        )
    if not enough:
        most = max(per_check.values(), default=0)
        raise InputError(
            field="min_verdicts",
            value=min_verdicts,
            problem=(
                f"too few verdicts to calibrate {rubric.name}: "
                f"{counted(len(items), 'reviewed sample')} with "
                f"final verdicts, {len(fitted)} to fit after holding out {holdout:g}; no check "
                f"was measured on {min_verdicts} of them (the most: {most})"
            ),
            fix="review more items (synthgate review enqueue) or lower {min_verdicts}",
            options=("min_verdicts",),
        )
    new = with_thresholds(rubric, *fitter.fit(thresholds_of(rubric), rubric.routing))
    model = RubricModel(rubric, [r.measurements for r in held])
    before_routes = model.route_with(thresholds_of(rubric), rubric.routing)
    after_routes = model.route_with(thresholds_of(new), new.routing)
    human = np.array([r.human_route for r in held])
    checks = []
    new_specs = {spec.check: spec for spec in new.all_checks()}
    for criterion, c in rubric.criteria.items():
        for spec in c.checks:
            columns = [j for j, ref in enumerate(model.refs) if ref.check == spec.check]
            measured = (
                ~np.isnan(model.values[:, columns]).all(axis=1)
                if columns
                else np.zeros(len(held), bool)
            )
            note = ""
            if per_check.get(spec.check, 0) < min_verdicts:
                note = (
                    f"kept: measured on {counted(per_check.get(spec.check, 0), 'fitted sample')} "
                    f"(< {min_verdicts})"
                )
            checks.append(
                CheckFit(
                    check=spec.check,
                    criterion=criterion,
                    old=dict(spec.thresholds),
                    new=dict(new_specs[spec.check].thresholds),
                    fitted_items=per_check.get(spec.check, 0),
                    before=RouteAgreement.of(
                        before_routes[measured].tolist(), human[measured].tolist()
                    ),
                    after=RouteAgreement.of(
                        after_routes[measured].tolist(), human[measured].tolist()
                    ),
                    note=note,
                )
            )
    return Calibration(
        source=source,
        rubric=new,
        old=rubric,
        items=len(items),
        fitted=len(fitted),
        held_out=len(held),
        seed=seed,
        holdout=holdout,
        checks=checks,
        before=RouteAgreement.of(before_routes.tolist(), human.tolist()),
        after=RouteAgreement.of(after_routes.tolist(), human.tolist()),
        held_routes=human.tolist(),
        rubric_routes={"before": before_routes.tolist(), "after": after_routes.tolist()},
    )


def _refuse_replacing(out: Path, rubric: Rubric) -> None:
    """A Rubric object has no file to compare `out` with (as a path `rubric` has): refuse an
    `out` that holds this very rubric and is not an earlier calibration's output (those start
    with `header()`'s line and are written over, as the path form writes them over): the file
    it was most likely loaded from, which calibrating would replace, comments and all."""
    if not out.is_file():
        return
    mark = f"# {CALIBRATED_BY}".encode()  # the first line of every calibrated rubric file
    try:
        with out.open("rb") as handle:
            if handle.read(len(mark)) == mark:
                return
        held = load_rubric(out)
    except (InputError, OSError):  # not a rubric: check_out_file has said what it may be
        return
    if held == rubric:
        raise InputError(
            field="out",
            value=out,
            problem=f"holds rubric {rubric.name}, the one this calibrates, which writing would "
            "replace; choose another file name",
        )


def calibrate(
    db: str | Path | Store,
    *,
    rubric: str | Path | Rubric = "detection",
    out: str | Path | None = None,
    batches: Sequence[str] | None = None,
    holdout: float = 0.3,
    seed: int = 0,
    min_verdicts: int = 30,
) -> Calibration:
    """Refit a rubric's thresholds and routing cut-offs on the final human verdicts of a review
    database, and say on held-out samples what it changed.

    Args:
        db: a database URL, a run folder (its synthgate.db) or an open `Store`.
        rubric: the rubric the samples were judged by: a shipped name, a YAML path, or a
            `Rubric` (e.g. `sg.load_rubric`'s).
        out: where to write the calibrated rubric YAML (default: nowhere).
        batches: only the items of these batches (default: all).
        holdout: the share of reviewed samples held out to compare before and after.
        seed: the seed of the split.
        min_verdicts: fitted samples a check needs to be refit.

    Returns:
        A `Calibration`: `.rubric` (the new `Rubric`), `.checks` (old and new thresholds, kappa
        and precision/recall of "rejected" before and after, per check), `.before`/`.after`,
        `.to_yaml()`.

    Example:
        >>> result = calibrate("runs/quickstart", rubric="detection", out="calibrated.yaml")
        >>> result.before.kappa, result.after.kappa
    """
    out = optional_path(out, "out")
    if out is not None:  # before any work: never the database, a run's file or the rubric read
        read = [] if isinstance(rubric, Rubric) else [rubric_path(rubric)]
        check_out_file(out, inputs=read)
        if isinstance(rubric, Rubric):
            _refuse_replacing(out, rubric)
    batches = names_argument(batches, "batches")
    holdout = holdout_share(holdout)
    seed = whole_number(seed, "seed", maximum=MAX_SEED)
    min_verdicts = whole_number(min_verdicts, "min_verdicts", minimum=1)
    if isinstance(rubric, Rubric):
        chosen, source = rubric, None
    else:
        source = rubric_path(rubric)
        chosen = load_rubric(source)
    store, opened = _store(db)
    try:
        found = reviewed_items(store, rubric=chosen.name, batches=list(batches or []) or None)
        shown = store.url
    finally:
        if opened:
            store.close()
    others = {
        reason.removeprefix("judged by rubric "): n
        for reason, n in found.skipped.items()
        if reason.startswith("judged by rubric ")
    }
    if not found.items and others:  # not "review more items": the reviewed ones are another's
        judged = ", ".join(f"{n} by {name}" for name, n in sorted(others.items()))
        name = max(sorted(others), key=lambda name: others[name])
        if name in shipped_rubrics():
            likely = f"rubric={name}"
            fix = "pass the rubric they were judged by: {" + likely + "}"
        else:  # a rubric file of the user's: its name is no --rubric value
            likely = "rubric=FILE"
            fix = (
                "pass the rubric YAML they were judged by (its `name:` is " + name + "), e.g. "
                "the file the batch config's `rubric:` names: {" + likely + "}"
            )
        raise InputError(
            field="rubric",
            value=rubric if source is not None else chosen.name,
            problem=f"no reviewed sample was judged by {chosen.name} (judged: {judged})",
            fix=fix,
            options=(likely,),
        )
    if not found.items:  # not "lower --min-verdicts": there is nothing to lower it to
        where = f" of batches {', '.join(batches)}" if batches else ""
        raise InputError(
            field="db",
            value=shown_url(shown),
            problem=f"holds no reviewed sample with a final verdict{where} to calibrate on",
            fix=("check {batches}, or " if batches else "")
            + "decide the review queue's items first (synthgate serve, review import); "
            "`synthgate review stats` shows how many are final",
            options=("batches",) if batches else (),
        )
    result = calibrate_items(
        chosen, found.items, source=source, holdout=holdout, seed=seed, min_verdicts=min_verdicts
    )
    result.skipped = dict(found.skipped)
    result.where = f" in {shown_url(shown)}" + (
        f" (batches {', '.join(batches)})" if batches else ""
    )
    if out is not None:
        write_atomic(out, result.to_yaml(), field="out")
    return result


# What a `db` naming no database is told to check: calibrate's own parameter (the CLI opens the
# store itself, naming --db and --run).
MISSING_DB = "check {db}: it must name a database that a run or batch wrote"


def _store(db: str | Path | Store) -> tuple[Store, bool]:
    if isinstance(db, Store):
        return db, False
    path = path_argument(db, "db") if not isinstance(db, str) or "://" not in db else None
    if path is not None and path.is_dir():  # a run folder: its database, named as `db`
        if not (path / "synthgate.db").is_file():
            raise InputError(
                field="db",
                value=db,
                problem="is a folder with no synthgate.db: not a run folder",
                fix="pass a run folder, a synthgate.db or a database URL",
            )
        return open_store(sqlite_url(path / "synthgate.db"), must_exist=True), True
    if path is not None:
        if not path.is_file():
            raise InputError(
                field="db",
                value=db,
                problem="no such database file or run folder",
                fix="pass a run folder, a synthgate.db or a database URL",
            )
        return open_store(sqlite_url(path), must_exist=True, missing_hint=MISSING_DB), True
    return open_store(str(db), must_exist=True, missing_hint=MISSING_DB), True
