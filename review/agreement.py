"""Inter-annotator agreement over review decisions, computed by the reference libraries.

Ratings are plain `(item, rater, value)` triples. `cohen_pairs` gives Cohen's kappa per annotator
pair (scikit-learn), `fleiss` Fleiss' kappa over items with the same number of ratings
(statsmodels), `alpha` Krippendorff's alpha with missing ratings allowed (the `krippendorff`
package; nominal for verdicts, ordinal for 5/3/1 levels), `precision_recall` of one class
(scikit-learn; the rubric's "rejected" against people's). Where a statistic is undefined — every
rating the same value, so chance agreement is 1 and kappa is 0/0 — the result says so in `note`
with `value=None` instead of passing NaN along.
"""

from __future__ import annotations

import itertools
import warnings
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from synthgate.errors import counted

Rating = tuple[Hashable, str, Hashable]  # (item, rater, value)
LEVEL_DOMAIN = (1, 3, 5)


@dataclass
class Agreement:
    """One agreement statistic with what it was computed on."""

    statistic: str
    value: float | None
    n_items: int
    n_ratings: int
    observed: float | None = None  # share of agreeing rating pairs within items
    note: str = ""
    raters: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # a library NaN never leaves this module: it becomes an explicit "undefined"
        if self.value is not None and not np.isfinite(self.value):
            self.value = None
            self.note = "; ".join(filter(None, [self.note, "undefined for these ratings"]))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _by_item(ratings: Iterable[Rating]) -> dict[Hashable, dict[str, Hashable]]:
    items: dict[Hashable, dict[str, Hashable]] = defaultdict(dict)
    for item, rater, value in ratings:
        items[item][rater] = value
    return dict(items)


def observed_agreement(items: dict[Hashable, dict[str, Hashable]]) -> float | None:
    """Share of agreeing pairs among all pairs of ratings of the same item."""
    agree = pairs = 0
    for values in items.values():
        for a, b in itertools.combinations(values.values(), 2):
            pairs += 1
            agree += int(a == b)
    return agree / pairs if pairs else None


def _single_value_note(values: Sequence[Hashable], statistic: str) -> str:
    (only,) = set(values)
    return (
        f"all {len(values)} ratings are {only!r}: agreement is perfect but {statistic} is "
        "undefined (no variation, chance agreement is 1)"
    )


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> Agreement:
    """Cohen's kappa of two raters over the same items (sklearn.metrics.cohen_kappa_score)."""
    from sklearn.metrics import cohen_kappa_score

    n = len(first)
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n if n else None
    if n == 0:
        return Agreement("cohen_kappa", None, 0, 0, None, "no items rated by both")
    if len(set(first) | set(second)) == 1:
        note = _single_value_note([*first, *second], "Cohen's kappa")
        return Agreement("cohen_kappa", None, n, 2 * n, observed, note)
    value = float(cohen_kappa_score(list(first), list(second)))
    return Agreement("cohen_kappa", value, n, 2 * n, observed)


def _one_value_note(name: str, values: Sequence[Hashable]) -> str:
    """Why a kappa is 0 beside a high observed agreement: one rater gave a single value."""
    (only,) = set(values)
    return f"{name} gave {only!r} to every item here: kappa is 0 whatever the other gave"


def one_value_note(rated: dict[str, Sequence[Hashable]]) -> str:
    """Why a defined kappa is 0: the first of `rated` (name -> their values) who gave a single
    value; '' when each varied."""
    for name, values in rated.items():
        if len(set(values)) == 1:
            return _one_value_note(name, values)
    return ""


def cohen_pairs(ratings: Iterable[Rating]) -> list[Agreement]:
    """Cohen's kappa for every pair of raters, over the items both rated. A rater who gave one
    value to every shared item (a careless one who accepts everything) makes kappa 0 however
    often the other agrees: the note says so."""
    items = _by_item(ratings)
    raters = sorted({r for values in items.values() for r in values})
    results = []
    for a, b in itertools.combinations(raters, 2):
        shared = [values for values in items.values() if a in values and b in values]
        result = cohen_kappa([v[a] for v in shared], [v[b] for v in shared])
        result.raters = [a, b]
        if result.value is not None:
            result.note = one_value_note({r: [v[r] for v in shared] for r in (a, b)})
        results.append(result)
    return results


def fleiss(ratings: Iterable[Rating], *, per_item: int | None = None) -> Agreement:
    """Fleiss' kappa (statsmodels) over the items with `per_item` ratings (default: the most
    common count, the larger on a tie); items with another count are left out and the note says
    how many."""
    from statsmodels.stats.inter_rater import fleiss_kappa

    items = _by_item(ratings)
    counts = Counter(len(v) for v in items.values() if len(v) >= 2)
    if not counts:
        return Agreement("fleiss_kappa", None, 0, 0, None, "no item has two or more ratings")
    # a tie goes to the larger count (items nearer their k decisions), never to whichever
    # count the first item read happened to have
    m = per_item if per_item is not None else max(counts, key=lambda n: (counts[n], n))
    kept = {i: v for i, v in items.items() if len(v) == m}
    left_out = sum(n for size, n in counts.items() if size != m)
    single = len(items) - sum(counts.values())  # never pairable: left out by every statistic
    note = "; ".join(
        filter(
            None,
            [
                f"{counted(left_out, 'item')} with other than {m} ratings left out"
                if left_out
                else "",
                f"{counted(single, 'item')} with a single rating left out" if single else "",
            ],
        )
    )
    if not kept:
        return Agreement("fleiss_kappa", None, 0, 0, None, f"no item has exactly {m} ratings")
    values = [value for v in kept.values() for value in v.values()]
    observed = observed_agreement(kept)
    if len(set(values)) == 1:
        note = "; ".join(filter(None, [_single_value_note(values, "Fleiss' kappa"), note]))
        return Agreement("fleiss_kappa", None, len(kept), len(values), observed, note)
    table = category_table(kept)
    value = float(fleiss_kappa(table, method="fleiss"))
    return Agreement("fleiss_kappa", value, len(kept), len(values), observed, note)


def category_table(items: dict[Hashable, dict[str, Hashable]]) -> np.ndarray:
    """items x categories counts, the table statsmodels' fleiss_kappa takes."""
    categories = sorted({v for values in items.values() for v in values.values()}, key=str)
    column = {c: j for j, c in enumerate(categories)}
    table = np.zeros((len(items), len(categories)), dtype=int)
    for i, values in enumerate(items.values()):
        for value in values.values():
            table[i, column[value]] += 1
    return table


def reliability_matrix(
    ratings: Iterable[Rating], *, codes: dict[Hashable, float] | None = None
) -> tuple[np.ndarray, list[str], list[Hashable]]:
    """raters x items, NaN where a rater did not rate an item (krippendorff's input)."""
    items = _by_item(ratings)
    raters = sorted({r for values in items.values() for r in values})
    order = list(items)
    matrix = np.full((len(raters), len(order)), np.nan)
    row = {r: i for i, r in enumerate(raters)}
    for j, item in enumerate(order):
        for rater, value in items[item].items():
            matrix[row[rater], j] = codes[value] if codes is not None else float(value)  # type: ignore[arg-type]
    return matrix, raters, order


def alpha(
    ratings: Iterable[Rating],
    *,
    level: str = "nominal",
    value_domain: Sequence[Hashable] | None = None,
) -> Agreement:
    """Krippendorff's alpha; any number of ratings per item (items with one are not pairable).

    Nominal values of any type are coded by their position in `value_domain` (default: sorted
    observed values); ordinal and interval values must be numbers.
    """
    import krippendorff

    ratings = list(ratings)
    items = _by_item(ratings)
    pairable = {i: v for i, v in items.items() if len(v) >= 2}
    values = [value for v in pairable.values() for value in v.values()]
    observed = observed_agreement(pairable)
    name = f"krippendorff_alpha_{level}"
    if not pairable:
        return Agreement(name, None, 0, 0, None, "no item has two or more ratings")
    if len(set(values)) == 1:
        return Agreement(
            name, None, len(pairable), len(values), observed, _single_value_note(values, "alpha")
        )
    if level == "nominal":
        domain = list(value_domain) if value_domain is not None else sorted(set(values), key=str)
        codes = {v: float(i) for i, v in enumerate(domain)}
        matrix, _, _ = reliability_matrix(ratings, codes=codes)
        numeric_domain: list[float] = sorted(codes.values())
    else:
        matrix, _, _ = reliability_matrix(ratings)
        observed_values = sorted(float(v) for v in values)  # type: ignore[arg-type]
        numeric_domain = [float(v) for v in value_domain] if value_domain else observed_values  # type: ignore[arg-type]
        numeric_domain = sorted(set(numeric_domain))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(
            krippendorff.alpha(
                reliability_data=matrix,
                level_of_measurement=level,  # type: ignore[arg-type]
                value_domain=numeric_domain,
            )
        )
    unpaired = len(items) - len(pairable)
    note = (
        counted(unpaired, "item with a single rating is", "items with a single rating are")
        + " not pairable"
        if unpaired
        else ""
    )
    return Agreement(name, value, len(pairable), len(values), observed, note)


def precision_recall(
    actual: Sequence[Hashable], predicted: Sequence[Hashable], *, positive: Hashable
) -> tuple[float | None, float | None]:
    """Precision and recall of one class (sklearn.metrics.precision_recall_fscore_support);
    None where undefined (nothing predicted, or nothing actually, in that class)."""
    from sklearn.metrics import precision_recall_fscore_support

    predicted_any = any(p == positive for p in predicted)
    actual_any = any(a == positive for a in actual)
    if not predicted_any and not actual_any:
        return None, None
    precision, recall, _, _ = precision_recall_fscore_support(
        [str(a) for a in actual],
        [str(p) for p in predicted],
        labels=[str(positive)],
        zero_division=0,
    )
    return (
        float(precision[0]) if predicted_any else None,
        float(recall[0]) if actual_any else None,
    )
