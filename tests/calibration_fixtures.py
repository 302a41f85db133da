"""Reviewed samples for the calibration tests: measurements drawn at random, the rubric's route
and people's verdicts made by validators/ itself (Threshold.level, routing.route), not by the
code under test."""

from __future__ import annotations

from typing import Any

import numpy as np
from review_fixtures import corrected

from synthgate.review.queue import Decision, ReviewQueue
from synthgate.review.verdicts import Reviewed
from synthgate.samples import (
    CRITERIA,
    ObjectLabel,
    Provenance,
    RubricReport,
    Sample,
    SampleSpec,
    sample_id,
)
from synthgate.storage.store import Store
from synthgate.validators.routing import route
from synthgate.validators.rubric import Rubric, load_rubric

VERDICT_OF_ROUTE = {"accepted": "accept", "review": "fix", "rejected": "reject"}


def shifted(rubric: Rubric, thresholds: dict[str, dict[str, float]], **routing: Any) -> Rubric:
    """The rubric with some measures' thresholds (measure -> gold/acceptable) and routing moved."""
    data = rubric.model_dump()
    for criterion in data["criteria"].values():
        for spec in criterion["checks"]:
            for measure in spec["thresholds"]:
                if measure in thresholds:
                    spec["thresholds"][measure] = thresholds[measure]
    data["routing"].update(routing)
    return Rubric.model_validate(data)


def judge(rubric: Rubric, measurements: dict[str, float]) -> tuple[dict[str, int], float, str]:
    """Levels per criterion, score and route, as validators/measure.py makes them."""
    levels = {}
    for name, criterion in rubric.criteria.items():
        level = 5
        for spec in criterion.checks:
            for measure, threshold in spec.thresholds.items():
                if measure in measurements:
                    worse = spec.definition.measures[measure].worse
                    level = min(level, threshold.level(measurements[measure], worse))
        levels[name] = level
    weights = {name: c.weight for name, c in rubric.criteria.items()}
    score = round(sum(weights[c] * levels[c] for c in levels) / sum(weights.values()), 3)
    critical = [n for n, c in rubric.criteria.items() if c.severity == "critical"]
    chosen, _ = route(score, levels, rubric.routing, critical=critical, seed=0)
    return levels, score, chosen


def draw_measurements(rng: np.random.Generator) -> dict[str, float]:
    """A detection sample's worst values: half the boxes loosened, sizes and occlusion varied,
    a few unlabelled objects and blank images."""
    return {
        "box_tightness_px": float(rng.uniform(0.2, 8.0)) if rng.random() < 0.5 else 0.0,
        "min_side_px": float(rng.uniform(3.0, 40.0)),
        "visible_fraction": float(rng.uniform(0.2, 1.0)),
        "unlabelled_px": float(rng.integers(20, 400)) if rng.random() < 0.05 else 0.0,
        "image_blank": 1.0 if rng.random() < 0.02 else 0.0,
    }


def reviewed(
    shipped: Rubric, hidden: Rubric, count: int, *, noise: float = 0.0, seed: int = 0
) -> list[Reviewed]:
    """Samples the shipped rubric judged and people reviewed following `hidden` (a share
    `noise` of verdicts and levels replaced by random ones)."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(count):
        measured = draw_measurements(rng)
        _, _, rubric_route = judge(shipped, measured)
        levels, _, human_route = judge(hidden, measured)
        if rng.random() < noise:
            human_route = str(rng.choice(["accepted", "review", "rejected"]))
            levels = {c: int(rng.choice([1, 3, 5])) for c in levels}
        items.append(Reviewed(i, f"s{i}", measured, rubric_route, human_route, levels))
    return items


def detection_sample(
    index: int, measured: dict[str, float], *, batch: str = "cal", audit: bool = True
) -> Sample:
    """A sample as `synthgate run` stores it after the detection rubric judged it (`audit`:
    accepted samples are all sent to review too)."""
    rubric = load_rubric("detection")
    levels, score, chosen = judge(rubric, measured)
    spec = SampleSpec(
        batch_id=batch, index=index, modality="image", generator="procedural", seed=index
    )
    return Sample(
        id=sample_id(batch, "image", index),
        spec=spec,
        uri=f"images/{index}.png",
        width=64,
        height=64,
        objects=[ObjectLabel(category="circle", bbox=[4, 4, 20, 20], area=300.0)],
        provenance=Provenance(generator="procedural", generator_version="1", seed=index),
        report=RubricReport(
            rubric=rubric.name,
            score=score,
            levels={c: levels.get(c, 5) for c in CRITERIA},  # type: ignore[misc]
            route=chosen,  # type: ignore[arg-type]
            audit=audit and chosen == "accepted",
            measurements=measured,
        ),
        status=chosen,  # type: ignore[arg-type]
    )


def reviewed_store(url: str, hidden: Rubric, count: int, *, seed: int = 0) -> Store:
    """A database whose `count` samples two annotators reviewed, following `hidden`."""
    rng = np.random.default_rng(seed)
    samples = [detection_sample(i, draw_measurements(rng)) for i in range(count)]
    store = Store(url)
    store.put_batch("cal", name="cal", seed=seed, config={})
    store.upsert_samples(samples)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    queue.enqueue_batch("cal", order="fifo")
    truth = {s.id: judge(hidden, s.report.measurements) for s in samples if s.report}
    for who in ("ann", "bob"):
        while (task := queue.next_item(who)) is not None:
            levels, _, human = truth[task.sample.id]
            verdict = VERDICT_OF_ROUTE[human]
            fixed = corrected(task.sample.objects) if verdict == "fix" else None
            queue.decide(
                task.item_id,
                who,
                Decision(verdict=verdict, levels=levels, objects=fixed),  # type: ignore[arg-type]
            )
    return store
