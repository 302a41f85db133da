"""A rubric's levels, scores and routes recomputed from stored measurements, for many samples
and many candidate thresholds at once (numpy).

A report keeps the worst value of every measure (`RubricReport.measurements`); a measure's level
is monotone in its value, so the worst value gives the level of all its measurements, and the
rubric's verdict follows from those exactly as validators/measure.py and validators/routing.py
make it: a criterion's level is the worst of its measures' (5 when none measured), the score is
the severity-weighted mean (rounded to 3 decimals), and the route is rejected under
`reject_below`, `on_critical` for a critical criterion at 1, accepted from `accept_at`, else
review. `RubricModel.routes` equals `validators.routing.route` item by item (a test holds it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synthgate.validators.routing import Routing
from synthgate.validators.rubric import Rubric, Threshold


@dataclass(frozen=True)
class MeasureRef:
    """One thresholded measure of the rubric: where it sits and which way is worse."""

    check: str
    measure: str
    criterion: str
    worse: str  # "higher" | "lower"


def measure_refs(rubric: Rubric) -> list[MeasureRef]:
    """Every measure a per-sample check of the rubric thresholds, in rubric order."""
    return [
        MeasureRef(spec.check, measure, criterion, spec.definition.measures[measure].worse)
        for criterion, c in rubric.criteria.items()
        for spec in c.checks
        for measure in spec.thresholds
    ]


def thresholds_of(rubric: Rubric) -> list[Threshold]:
    """The thresholds of `measure_refs(rubric)`, in the same order."""
    return [
        threshold
        for c in rubric.criteria.values()
        for spec in c.checks
        for threshold in spec.thresholds.values()
    ]


def levels_of(values: np.ndarray, threshold: Threshold, worse: str) -> np.ndarray:
    """Threshold.level over an array of values; NaN (not measured) is 5."""
    if worse == "higher":
        levels = np.where(
            values <= threshold.gold, 5, np.where(values <= threshold.acceptable, 3, 1)
        )
    else:
        levels = np.where(
            values >= threshold.gold, 5, np.where(values >= threshold.acceptable, 3, 1)
        )
    return np.where(np.isnan(values), 5, levels)


class RubricModel:
    """The rubric over a fixed set of samples: `values` is samples x measures (NaN: the sample
    has no value of that measure)."""

    def __init__(self, rubric: Rubric, measurements: Sequence[dict[str, float]]) -> None:
        self.refs = measure_refs(rubric)
        self.criteria = list(rubric.criteria)
        self.weights = np.array([c.weight for c in rubric.criteria.values()], dtype=float)
        self.critical = np.array([c.severity == "critical" for c in rubric.criteria.values()])
        self.criterion_of = np.array([self.criteria.index(r.criterion) for r in self.refs])
        self.values = np.full((len(measurements), len(self.refs)), np.nan)
        for i, found in enumerate(measurements):
            for j, ref in enumerate(self.refs):
                value = found.get(ref.measure)
                if value is not None:
                    self.values[i, j] = value

    def measure_levels(self, thresholds: Sequence[Threshold]) -> np.ndarray:
        """samples x measures levels."""
        if not self.refs:
            return np.full((len(self.values), 0), 5)
        columns = [
            levels_of(self.values[:, j], threshold, ref.worse)
            for j, (ref, threshold) in enumerate(zip(self.refs, thresholds, strict=True))
        ]
        return np.stack(columns, axis=1)

    def criterion_levels(self, measure_levels: np.ndarray) -> np.ndarray:
        """samples x criteria: the worst level of each criterion's measures (5 when none)."""
        levels = np.full((len(measure_levels), len(self.criteria)), 5)
        for j in range(measure_levels.shape[1]):
            c = self.criterion_of[j]
            levels[:, c] = np.minimum(levels[:, c], measure_levels[:, j])
        return levels

    def scores(self, criterion_levels: np.ndarray) -> np.ndarray:
        return np.round(criterion_levels @ self.weights / self.weights.sum(), 3)

    def routes(self, criterion_levels: np.ndarray, routing: Routing) -> np.ndarray:
        """The route of every sample, as validators.routing.route gives it."""
        scores = self.scores(criterion_levels)
        critical_failed = (criterion_levels[:, self.critical] == 1).any(axis=1)
        on_critical = "rejected" if routing.on_critical == "reject" else "review"
        return np.where(
            scores < routing.reject_below,
            "rejected",
            np.where(
                critical_failed,
                on_critical,
                np.where(scores >= routing.accept_at, "accepted", "review"),
            ),
        )

    def route_with(self, thresholds: Sequence[Threshold], routing: Routing) -> np.ndarray:
        return self.routes(self.criterion_levels(self.measure_levels(thresholds)), routing)
