"""Agreement statistics equal scikit-learn / statsmodels / krippendorff on the same ratings, match
published worked examples, and report undefined cases explicitly instead of NaN."""

from __future__ import annotations

import itertools

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

from synthgate.review import agreement
from synthgate.review.report import suggest_thresholds

VERDICTS = ["accept", "fix", "reject"]


def random_ratings(seed: int, *, items: int, raters: int, missing: float, values: list):
    """Ratings with a shared 'true' value per item, noise, and missing entries."""
    rng = np.random.default_rng(seed)
    out = []
    for item in range(items):
        truth = values[int(rng.integers(len(values)))]
        for r in range(raters):
            if rng.random() < missing:
                continue
            value = truth if rng.random() < 0.7 else values[int(rng.integers(len(values)))]
            out.append((item, f"r{r}", value))
    return out


@pytest.mark.parametrize("seed", range(8))
def test_cohen_pairs_equal_sklearn(seed: int) -> None:
    ratings = random_ratings(seed, items=40, raters=3, missing=0.2, values=VERDICTS)
    by_item: dict = {}
    for item, rater, value in ratings:
        by_item.setdefault(item, {})[rater] = value
    results = {tuple(a.raters): a for a in agreement.cohen_pairs(ratings)}
    assert set(results) == {("r0", "r1"), ("r0", "r2"), ("r1", "r2")}
    for a, b in itertools.combinations(["r0", "r1", "r2"], 2):
        shared = [v for v in by_item.values() if a in v and b in v]
        expected = cohen_kappa_score([v[a] for v in shared], [v[b] for v in shared])
        assert results[(a, b)].value == pytest.approx(expected, abs=1e-9)
        assert results[(a, b)].n_items == len(shared)


def test_cohen_kappa_worked_example() -> None:
    # Wikipedia's example: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> kappa 0.4
    first = ["yes"] * 25 + ["no"] * 25
    second = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    result = agreement.cohen_kappa(first, second)
    assert result.value == pytest.approx(0.4, abs=1e-12)
    assert result.observed == pytest.approx(0.7)


@pytest.mark.parametrize("seed", range(8))
def test_fleiss_equals_statsmodels(seed: int) -> None:
    ratings = random_ratings(seed, items=30, raters=4, missing=0.0, values=VERDICTS)
    by_rater = np.array(
        [
            [dict(((i, r), v) for i, r, v in ratings)[(i, f"r{r}")] for r in range(4)]
            for i in range(30)
        ]
    )
    table, _ = aggregate_raters(by_rater)
    result = agreement.fleiss(ratings)
    assert result.value == pytest.approx(fleiss_kappa(table, method="fleiss"), abs=1e-9)
    assert result.n_items == 30 and result.n_ratings == 120


def test_fleiss_worked_example() -> None:
    # Wikipedia / Fleiss (1971) style table: 10 items, 14 raters, 5 categories -> kappa 0.210
    table = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    ratings = []
    for item, row in enumerate(table):
        values = [c for c, n in enumerate(row) for _ in range(n)]
        ratings += [(item, f"r{r}", v) for r, v in enumerate(values)]
    result = agreement.fleiss(ratings)
    assert result.value == pytest.approx(fleiss_kappa(table), abs=1e-9)
    assert result.value == pytest.approx(0.210, abs=5e-4)


def test_fleiss_leaves_out_items_with_another_count_and_says_so() -> None:
    ratings = [(0, "a", "x"), (0, "b", "x"), (1, "a", "x"), (1, "b", "y"), (2, "a", "y")]
    ratings += [(3, "a", "x"), (3, "b", "x"), (3, "c", "y")]
    result = agreement.fleiss(ratings)
    assert result.n_items == 2
    assert "1 item with other than 2 ratings left out" in result.note
    # item 2's single rating is left out too, and said (the note once counted only item 3)
    assert "1 item with a single rating left out" in result.note
    table, _ = aggregate_raters(np.array([["x", "x"], ["x", "y"]]))
    assert result.value == pytest.approx(fleiss_kappa(table), abs=1e-9)


@pytest.mark.parametrize("partial_first", [True, False], ids=["partial-first", "complete-first"])
def test_fleiss_tie_between_counts_takes_the_larger_whatever_the_item_order(
    partial_first: bool,
) -> None:
    # a k=3 queue half done: two items with 2 decisions, two with all 3
    partial = [(0, "a", "x"), (0, "b", "y"), (1, "a", "x"), (1, "b", "x")]
    complete = [(2, "a", "x"), (2, "b", "x"), (2, "c", "x")]
    complete += [(3, "a", "y"), (3, "b", "y"), (3, "c", "x")]
    result = agreement.fleiss(partial + complete if partial_first else complete + partial)
    assert result.n_items == 2 and result.n_ratings == 6
    assert "2 items with other than 3 ratings left out" in result.note
    table, _ = aggregate_raters(np.array([["x", "x", "x"], ["y", "y", "x"]]))
    assert result.value == pytest.approx(fleiss_kappa(table), abs=1e-9)  # 0.25, not -0.333


def krippendorff_reference(ratings, *, level, domain, codes=None):
    matrix, _, _ = agreement.reliability_matrix(ratings, codes=codes)
    return krippendorff.alpha(
        reliability_data=matrix, level_of_measurement=level, value_domain=domain
    )


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("missing", [0.0, 0.35])
def test_alpha_nominal_equals_krippendorff_with_uneven_ratings(seed: int, missing: float) -> None:
    ratings = random_ratings(seed, items=40, raters=4, missing=missing, values=VERDICTS)
    counts = {len([r for r in ratings if r[0] == i]) for i in range(40)}
    if missing:
        assert len(counts) > 1  # uneven numbers of ratings per item
    codes = {v: float(i) for i, v in enumerate(VERDICTS)}
    result = agreement.alpha(ratings, level="nominal", value_domain=VERDICTS)
    expected = krippendorff_reference(ratings, level="nominal", domain=[0.0, 1.0, 2.0], codes=codes)
    assert result.value == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_alpha_ordinal_levels_equals_krippendorff(seed: int) -> None:
    ratings = random_ratings(seed, items=50, raters=3, missing=0.3, values=[1, 3, 5])
    result = agreement.alpha(ratings, level="ordinal", value_domain=agreement.LEVEL_DOMAIN)
    expected = krippendorff_reference(ratings, level="ordinal", domain=[1.0, 3.0, 5.0])
    assert result.value == pytest.approx(expected, abs=1e-9)


def test_alpha_worked_example_krippendorff_2011() -> None:
    # Krippendorff, "Computing Krippendorff's alpha-reliability" (2011): 4 observers, 12 units,
    # missing values; nominal 0.743, ordinal 0.815, interval 0.849.
    rows = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    ]
    ratings = [
        (unit, f"o{o}", value)
        for o, row in enumerate(rows)
        for unit, value in enumerate(row)
        if value is not None
    ]
    nominal = agreement.alpha(ratings, level="nominal", value_domain=[1, 2, 3, 4, 5])
    ordinal = agreement.alpha(ratings, level="ordinal", value_domain=[1, 2, 3, 4, 5])
    interval = agreement.alpha(ratings, level="interval", value_domain=[1, 2, 3, 4, 5])
    assert nominal.value == pytest.approx(0.743, abs=5e-4)
    assert ordinal.value == pytest.approx(0.815, abs=5e-4)
    assert interval.value == pytest.approx(0.849, abs=5e-4)
    assert nominal.n_items == 11 and "1 item with a single rating is not pairable" in nominal.note


ALL_AGREE = [(i, r, "accept") for i in range(5) for r in ("a", "b", "c")]


@pytest.mark.parametrize(
    "compute",
    [
        lambda: agreement.cohen_pairs(ALL_AGREE)[0],
        lambda: agreement.fleiss(ALL_AGREE),
        lambda: agreement.alpha(ALL_AGREE, level="nominal", value_domain=VERDICTS),
        lambda: agreement.alpha([(i, r, 5) for i, r, _ in ALL_AGREE], level="ordinal"),
    ],
    ids=["cohen", "fleiss", "alpha-nominal", "alpha-ordinal"],
)
def test_all_raters_agree_on_one_label_is_reported_not_nan(compute) -> None:
    result = compute()
    assert result.value is None
    assert result.observed == 1.0
    assert "agreement is perfect" in result.note and "undefined" in result.note


def test_libraries_really_give_nan_or_raise_there() -> None:
    """Why the explicit case exists: the libraries themselves have no number for it."""
    with pytest.warns(Warning):
        assert np.isnan(cohen_kappa_score(["a", "a"], ["a", "a"]))
    with pytest.raises(ValueError):
        krippendorff.alpha(np.array([[1.0, 1.0], [1.0, 1.0]]), level_of_measurement="nominal")


def test_no_overlap_is_reported() -> None:
    result = agreement.cohen_pairs([(0, "a", "x"), (1, "b", "y")])[0]
    assert result.value is None and result.note == "no items rated by both"
    assert agreement.alpha([(0, "a", "x")]).note == "no item has two or more ratings"


@pytest.mark.parametrize(
    ("scored", "current", "accept_at", "reject_below"),
    [
        # humans accept everything from 3.4 up, fix 2.2-3.3, and reject everything below 2.0
        (
            [(s, "accept") for s in np.linspace(3.4, 5, 20)]
            + [(s, "fix") for s in np.linspace(2.2, 3.3, 10)]
            + [(s, "reject") for s in np.linspace(1.0, 1.9, 12)],
            (4.5, 1.5),
            3.3,  # 20 accepts and one fix at >= 3.3: 95 %
            2.2,
        ),
        # humans disagree with everything: no suggestion
        (
            [(4.0 + i / 100, v) for i, v in enumerate(["accept", "reject"] * 10)],
            (4.0, 2.0),
            None,
            None,
        ),
    ],
)
def test_threshold_suggestions(scored, current, accept_at, reject_below) -> None:
    result = suggest_thresholds(scored, accept_at=current[0], reject_below=current[1], min_items=10)
    assert (
        result["accept_at"] == pytest.approx(accept_at)
        if accept_at
        else result["accept_at"] is None
    )
    assert (
        result["reject_below"] == pytest.approx(reject_below)
        if reject_below
        else result["reject_below"] is None
    )
    if accept_at:
        assert any(n.startswith("accept_at: lower to 3.3") for n in result["notes"])
        assert any(n.startswith("reject_below: raise to 2.2") for n in result["notes"])


def test_cohen_pairs_say_when_one_rater_gave_a_single_verdict() -> None:
    """A careless annotator accepting everything: kappa 0 beside 75 % observed agreement, and
    nothing said; the note names who gave one verdict to every shared item."""
    ratings = [(i, "carol", "accept") for i in range(4)]
    ratings += [(0, "alice", "accept"), (1, "alice", "accept"), (2, "alice", "accept")]
    ratings += [(3, "alice", "reject"), (0, "bob", "reject"), (1, "bob", "accept")]
    ratings += [(2, "bob", "reject"), (3, "bob", "accept")]
    by_pair = {tuple(r.raters): r for r in agreement.cohen_pairs(ratings)}
    careless = by_pair[("alice", "carol")]
    assert careless.value == pytest.approx(0.0) and careless.observed == pytest.approx(0.75)
    assert careless.note.startswith("carol gave 'accept' to every item here: kappa is 0")
    assert by_pair[("alice", "bob")].note == ""  # both varied
