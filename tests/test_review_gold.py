"""Gold tasks: every honeypot defect is injected as described and deterministically; decisions on
gold are scored for accuracy and per-criterion sensitivity; rubric-vs-human kappa equals
scikit-learn's."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score

from synthgate.review import gold
from synthgate.review.queue import Decision, ReviewQueue
from synthgate.review.report import ROUTE_OF_VERDICT, agreement_report, validator_vs_human
from synthgate.samples import (
    CRITERIA,
    ObjectLabel,
    Provenance,
    RubricReport,
    Sample,
    SampleSpec,
    Span,
    sample_id,
)
from synthgate.storage.store import Store

TEXT = "Anna Berg from Acme GmbH called about order 4411."


def sample(modality: str, index: int = 0, *, route: str = "accepted", score: float = 4.0) -> Sample:
    spec = SampleSpec(batch_id="g", index=index, modality=modality, generator="x", seed=index)
    common = {
        "id": sample_id("g", modality, index),
        "spec": spec,
        "provenance": Provenance(generator="x", generator_version="1", seed=index),
        "report": RubricReport(
            rubric="r", score=score, levels={c: 5 for c in CRITERIA}, route=route
        ),
        "status": "review" if route == "review" else route,
    }
    if modality == "image":
        return Sample(
            **common,
            uri="images/a.png",
            width=100,
            height=80,
            objects=[
                ObjectLabel(category="circle", bbox=[10, 10, 20, 20], area=400.0),
                ObjectLabel(category="square", bbox=[60, 40, 30, 30], area=900.0),
            ],
        )
    return Sample(
        **common,
        text=TEXT,
        spans=[
            Span(start=0, end=9, label="PERSON", value="Anna Berg"),
            Span(start=15, end=24, label="ORG", value="Acme GmbH"),
        ],
    )


def find_seed(modality: str, defect: str) -> int:
    for seed in range(200):
        made = gold.make_honeypot(
            sample(modality), ["circle", "square", "PERSON", "ORG"], seed=[seed]
        )
        if made.defect == defect:
            return seed
    raise AssertionError(f"no seed makes {defect}")


@pytest.mark.parametrize(
    ("modality", "defect", "criterion"),
    [
        ("image", "loosened_box", "precision"),
        ("image", "dropped_label", "completeness"),
        ("image", "wrong_class", "correctness"),
        ("text", "shifted_span", "precision"),
        ("text", "dropped_label", "completeness"),
        ("text", "wrong_class", "correctness"),
    ],
)
def test_each_defect_is_injected_as_described(modality: str, defect: str, criterion: str) -> None:
    original = sample(modality)
    seed = find_seed(modality, defect)
    made = gold.make_honeypot(original, ["circle", "square", "PERSON", "ORG"], seed=[seed])
    assert (made.defect, made.criterion, made.expected) == (defect, criterion, ["reject", "fix"])
    again = gold.make_honeypot(original, ["circle", "square", "PERSON", "ORG"], seed=[seed])
    assert again.shown == made.shown  # deterministic
    assert original == sample(modality)  # the source sample is not touched
    before = original.objects if modality == "image" else original.spans
    after = made.shown.objects if modality == "image" else made.shown.spans
    if defect == "dropped_label":
        assert len(after) == len(before) - 1
        return
    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert len(changed) == 1
    b, a = changed[0]
    if defect == "loosened_box":
        assert a.bbox[0] < b.bbox[0] and a.bbox[1] < b.bbox[1]
        assert a.bbox[0] + a.bbox[2] > b.bbox[0] + b.bbox[2] and a.bbox[0] + a.bbox[2] <= 100
        assert a.bbox[1] + a.bbox[3] <= 80
    elif defect == "wrong_class":
        old, new = (b.category, a.category) if modality == "image" else (b.label, a.label)
        assert new != old and new in ["circle", "square", "PERSON", "ORG"]
    else:
        assert a.end - a.start == b.end - b.start and a.start != b.start
        assert a.value == TEXT[a.start : a.end] and a.end <= len(TEXT)


def test_nothing_to_break_gives_no_honeypot() -> None:
    empty = sample("image").model_copy(update={"objects": []})
    assert gold.make_honeypot(empty, ["circle"], seed=[0]) is None


def test_one_category_never_makes_a_wrong_class() -> None:
    defects = {gold.make_honeypot(sample("image"), ["circle"], seed=[s]).defect for s in range(60)}
    assert defects == {"loosened_box", "dropped_label"}


@pytest.mark.parametrize(
    ("rate", "items", "expected"),
    [(0.1, 9, 1), (0.2, 8, 2), (0.5, 4, 4), (0.0, 10, 0), (0.1, 0, 0)],
)
def test_honeypot_count(rate: float, items: int, expected: int) -> None:
    assert gold.honeypot_count(items, rate) == expected


def test_gold_accuracy_and_sensitivity_in_the_report(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'synthgate.db'}")
    rows = [sample("image", i, route="review") for i in range(4)] + [
        sample("image", 10 + i) for i in range(6)
    ]
    store.upsert_samples(rows)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.5, seed=7)
    queue.enqueue_batch("g")
    for who in ("sharp", "blunt"):
        while (task := queue.next_item(who)) is not None:
            # no audit items here, so a task that looks like one is a honeypot
            is_gold = task.sample.report.route == "accepted"
            if who == "sharp" and is_gold:
                decision = Decision(verdict="reject", levels={c: 1 for c in CRITERIA})
            else:
                decision = Decision(verdict="accept", levels={c: 5 for c in CRITERIA})
            queue.decide(task.item_id, who, decision)
    report = agreement_report(store)["gold"]
    assert report["sharp"]["accuracy"] == 1.0 and report["blunt"]["accuracy"] == 0.0
    assert report["sharp"]["decided"] >= 1 and report["sharp"]["sensitivity"]
    for criterion, entry in report["sharp"]["sensitivity"].items():
        assert criterion in gold.DEFECTS.values() and entry["rate"] == 1.0
    assert all(entry["rate"] == 0.0 for entry in report["blunt"]["sensitivity"].values())
    store.close()


def test_validator_vs_human_kappa_equals_sklearn() -> None:
    verdicts = ["accept", "accept", "reject", "fix", "accept", "reject", "accept", "fix"]
    routes = [
        "accepted",
        "review",
        "review",
        "review",
        "accepted",
        "rejected",
        "review",
        "accepted",
    ]
    finals = [
        (sample("image", i, route=route, score=1 + i / 2), verdict)
        for i, (route, verdict) in enumerate(zip(routes, verdicts, strict=True))
    ]
    result = validator_vs_human(finals, min_items=2)
    expected = cohen_kappa_score(routes, [ROUTE_OF_VERDICT[v] for v in verdicts])
    assert result["kappa"]["value"] == pytest.approx(expected, abs=1e-9)
    assert result["confusion"]["review"] == {"accepted": 2, "rejected": 1, "review": 1}
