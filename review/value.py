"""What reviewing an item is worth, for `review enqueue --order uncertainty`.

An item is worth more the nearer its measures sit to a threshold of the rubric (a small change
would flip a level, so the rubric is least sure there), and the more often people overrule the
check that measured it. `closeness(value, threshold, worse)` is exp(-distance to the nearest cut
point, in units of the gap between gold and acceptable); a cut point of 0 does not count for
values on its good side (a count of 0 cannot get better: it is not "near" 0). `overrule_rates`
gives, per check, the share of recent final reviewed items where people gave the check's
criterion another level than the check did (or, without levels, another route than the rubric's). An
item's value is the largest `closeness x (0.5 + 0.5 x rate / highest rate)` over its measures.
Items whose annotators disagree are moved ahead when it happens (review/items.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from synthgate.review.routes import RubricModel, thresholds_of
from synthgate.review.verdicts import reviewed_items
from synthgate.samples import RubricReport
from synthgate.storage.store import Store
from synthgate.validators.rubric import Rubric, Threshold


def closeness(value: float, threshold: Threshold, worse: str) -> float:
    """1 at a cut point, falling off with the distance to the nearest one."""
    sign = 1.0 if worse == "higher" else -1.0  # flip: "at or under the cut" is the good side
    keyed = sign * value
    gold, acceptable = sign * threshold.gold, sign * threshold.acceptable
    span = abs(acceptable - gold) or max(abs(gold), 1.0)
    distances = [
        abs(keyed - cut) / span
        for cut in (gold, acceptable)
        if not (cut == 0 and keyed <= 0)  # bounded at 0 on the good side: not near
    ]
    return math.exp(-min(distances)) if distances else 0.0


RECENT = 5000  # final items overrule rates are taken from: enough to tell checks apart


def overrule_rates(store: Store, rubric: Rubric, *, latest: int = RECENT) -> dict[str, float]:
    """Per check: the share of the `latest` final reviewed items it judged (its level was its
    criterion's) where people disagreed with that level (their route, where they gave none)."""
    found = reviewed_items(store, rubric=rubric.name, latest=latest).items
    if not found:
        return {}
    model = RubricModel(rubric, [r.measurements for r in found])
    measure_levels = model.measure_levels(thresholds_of(rubric))
    criteria = model.criterion_levels(measure_levels)
    routes = model.routes(criteria, rubric.routing)
    human_routes = np.array([r.human_route for r in found])
    judged: dict[str, int] = {}
    overruled: dict[str, int] = {}
    for j, ref in enumerate(model.refs):
        c = model.criterion_of[j]
        human = np.array([r.human_levels.get(ref.criterion, 0) for r in found])
        decided = ~np.isnan(model.values[:, j]) & (measure_levels[:, j] == criteria[:, c])
        differ = np.where(human > 0, human != criteria[:, c], human_routes != routes)
        judged[ref.check] = judged.get(ref.check, 0) + int(decided.sum())
        overruled[ref.check] = overruled.get(ref.check, 0) + int((decided & differ).sum())
    return {check: overruled[check] / n for check, n in judged.items() if n}


def item_value(
    report: RubricReport | None, rubric: Rubric, rates: Mapping[str, float] | None = None
) -> float:
    """The worth of reviewing a sample with this report, in [0, 1]."""
    if report is None or not report.measurements:
        return 0.0
    highest = max(rates.values(), default=0.0) if rates else 0.0
    best = 0.0
    for spec in rubric.all_checks():
        weight = 1.0 if highest <= 0 else 0.5 + 0.5 * (rates or {}).get(spec.check, 0.0) / highest
        for measure, threshold in spec.thresholds.items():
            value = report.measurements.get(measure)
            if value is None or spec.definition.scope == "dataset":
                continue
            worse = spec.definition.measures[measure].worse
            best = max(best, weight * closeness(value, threshold, worse))
    return best
