"""Does the rubric learn from its reviewers? Calibration on simulated annotators, and how many
verdicts the review order needs to get there.

Procedural images (default 2,400 at 128x128) get known defects (validators/defects.py): half a
loosened box (by 0.2-8 px), a few dropped labels, unknown classes, blank images and duplicated
boxes; the rest stay clean. The shipped detection rubric judges them, with every accepted sample
audited (audit_rate 1.0), so every sample it does not reject reaches the review queue
(synthgate's ReviewQueue on SQLite, k = 2 annotators per item, an adjudicator on a split).

The simulated annotators follow a hidden rubric that differs from the shipped one: boxes gold
within 1.5 px and acceptable within 2.5 px (shipped: 1 and 5), objects gold from 16 px and
acceptable from 10 px on their shorter side (shipped: 8 and 4), and accept_at 4.6 (4.4). A
decision is the hidden rubric's verdict (accepted -> accept, review -> fix, rejected -> reject)
with its levels per criterion; 10 % of decisions are noise: a verdict and levels drawn at
random (the draw is keyed by sample and slot, so both orders below meet the same noise).

1. Calibration: the whole queue is reviewed, then `synthgate.calibrate` fits on 70 % of the
   final verdicts and prints the per-check table (kappa and reject precision/recall before and
   after, held-out 30 %). Targets: held-out kappa after >= 0.8 and >= before + 0.2; every
   hidden cut point recovered within 10 %.
2. Review order: 30 % of the reviewed samples are set aside with their final verdicts as the
   evaluation set; the other 70 % are queued again in a fresh database, once with
   `--order uncertainty` and once with `--order random`, and reviewed in rounds of `--round`
   items. After each round the rubric is refit on the verdicts so far and its kappa on the
   evaluation set is taken; uncertainty then re-ranks the untouched items against the refit
   rubric (`review enqueue` again, as a team would). The verdicts (decisions, adjudications
   included) each order needs before its kappa reaches the kappa of the rubric fitted on the
   whole pool (within 0.01) are compared. Target: uncertainty <= 50 % of random's.

Exit code 1 when a target is missed.
Usage: python bench/bench_calibration.py [--images 2400] [--size 128] [--seed 0] [--round 5]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bench_defects import CATEGORIES, image_samples

from synthgate.commands.rubric import print_calibration
from synthgate.review.calibration import agreement_on, calibrate, fit_rubric
from synthgate.review.queue import Decision, ReviewQueue
from synthgate.review.verdicts import Reviewed, reviewed_items
from synthgate.samples import GeneratedSample, Sample
from synthgate.storage.store import Store
from synthgate.validators.context import ValidationContext
from synthgate.validators.defects import DEFECTS
from synthgate.validators.measure import finish_report, measure_sample
from synthgate.validators.rubric import Rubric, load_rubric, rubric_yaml

BATCH = "bench-defects"  # the batch id bench_defects.image_samples gives its samples
NOISE = 0.1
VERDICT_OF_ROUTE = {"accepted": "accept", "review": "fix", "rejected": "reject"}
HIDDEN_THRESHOLDS = {
    ("precision_box_tightness", "box_tightness_px"): (1.5, 2.5),
    ("clarity_min_size", "min_side_px"): (16.0, 10.0),
}
HIDDEN_ACCEPT_AT = 4.6
DEFECT_MIX = [  # (defect, share of images); the rest stay clean
    ("loosen_box", 0.5),
    ("drop_label", 0.05),
    ("rename_class", 0.04),
    ("blank_image", 0.03),
    ("duplicate_box", 0.04),
]


def with_changes(
    rubric: Rubric, thresholds: dict[tuple[str, str], tuple[float, float]], **routing: object
) -> Rubric:
    data = rubric.model_dump()
    for criterion in data["criteria"].values():
        for spec in criterion["checks"]:
            for measure in spec["thresholds"]:
                if (spec["check"], measure) in thresholds:
                    gold, acceptable = thresholds[(spec["check"], measure)]
                    spec["thresholds"][measure] = {"gold": gold, "acceptable": acceptable}
    data["routing"].update(routing)
    return Rubric.model_validate(data)


@dataclass
class Truth:
    verdict: str
    levels: dict[str, int]


def damaged(count: int, size: int, seed: int) -> list[GeneratedSample]:
    rng = np.random.default_rng([seed, 1])
    names = [name for name, _ in DEFECT_MIX]
    shares = np.array([share for _, share in DEFECT_MIX])
    out = []
    for generated in image_samples(count, size, seed):
        draw = rng.random()
        chosen = np.searchsorted(np.cumsum(shares), draw, side="right")
        if chosen < len(names):
            name = names[chosen]
            extra = {"k": float(rng.uniform(0.2, 8.0))} if name == "loosen_box" else {}
            generated = DEFECTS[name].inject(generated, rng, **extra) or generated
        out.append(generated)
    return out


def judged(
    images: list[GeneratedSample], shipped: Rubric, hidden: Rubric
) -> tuple[list[Sample], dict[str, Truth]]:
    """Samples as the shipped rubric leaves them, and what the hidden rubric (people) says."""
    ours = ValidationContext.for_taxonomy(CATEGORIES)
    theirs = ValidationContext.for_taxonomy(CATEGORIES)
    samples, truth = [], {}
    for generated in images:
        measured = measure_sample(generated, shipped, ours)
        report = finish_report(measured, shipped, ours)
        people = finish_report(measured, hidden, theirs)
        sample = generated.sample.model_copy(update={"report": report, "status": report.route})
        samples.append(sample)
        truth[sample.id] = Truth(VERDICT_OF_ROUTE[people.route], dict(people.levels))
    return samples, truth


def decision(sample: Sample, truth: Truth, slot: str, seed: int) -> Decision:
    """The decision in `slot` (first, second, adjudicator) on a sample: the truth, or noise."""
    digest = hashlib.sha256(f"{seed}/{sample.id}/{slot}".encode()).digest()
    rng = np.random.default_rng(list(digest[:8]))
    verdict, levels = truth.verdict, truth.levels
    if rng.random() < NOISE:
        verdict = str(rng.choice(["accept", "fix", "reject"]))
        levels = {c: int(rng.choice([1, 3, 5])) for c in levels}
    objects = sample.objects if verdict == "fix" else None  # the labels, as corrected
    return Decision(verdict=verdict, levels=levels, objects=objects)  # type: ignore[arg-type]


class Team:
    """Four annotators and an adjudicator working a queue, one item at a time."""

    def __init__(self, queue: ReviewQueue, truth: dict[str, Truth], seed: int) -> None:
        self.queue, self.truth, self.seed = queue, truth, seed
        self.verdicts = 0
        self.turn = 0

    def review(self, items: int) -> int:
        """Finish up to `items` items (both decisions, and adjudication on a split)."""
        finished = 0
        people = ["ann", "bob", "cy", "dee"]
        while finished < items:
            first = self.queue.next_item(people[self.turn % 4])
            if first is None:
                break
            pair = [people[self.turn % 4], people[(self.turn + 1) % 4]]
            self.turn += 2
            self._decide(first.item_id, pair[0], first.sample, "first")
            second = self.queue.next_item(pair[1])
            assert second is not None and second.item_id == first.item_id  # started first
            self._decide(second.item_id, pair[1], second.sample, "second")
            if first.item_id in self.queue.awaiting_adjudication():
                shown = self.queue.task(first.item_id).sample
                made = decision(shown, self.truth[shown.id], "adjudicator", self.seed)
                self.queue.adjudicate(first.item_id, "lead", made)
                self.verdicts += 1
            finished += 1
        return finished

    def _decide(self, item_id: int, who: str, sample: Sample, slot: str) -> None:
        self.queue.decide(item_id, who, decision(sample, self.truth[sample.id], slot, self.seed))
        self.verdicts += 1


def queued(
    folder: Path, name: str, samples: list[Sample], order: str, rubric: Rubric
) -> ReviewQueue:
    store = Store(f"sqlite:///{folder / f'{name}.db'}")
    store.put_batch(BATCH, name=BATCH, seed=0, config={})
    store.upsert_samples(samples)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    queue.enqueue_batch(BATCH, order=order, rubric=rubric)
    return queue


def recovered(rubric: Rubric) -> list[tuple[str, float, float, bool]]:
    """(cut point, hidden, found, within 10 %) for every cut the hidden rubric moved."""
    rows = []
    for (check, measure), (gold, acceptable) in HIDDEN_THRESHOLDS.items():
        found = rubric.threshold_of(check, measure)
        assert found is not None
        for cut, hidden in (("gold", gold), ("acceptable", acceptable)):
            value = getattr(found, cut)
            rows.append((f"{measure}.{cut}", hidden, value, abs(value - hidden) <= 0.1 * hidden))
    accept_at = rubric.routing.accept_at
    rows.append(
        (
            "routing.accept_at",
            HIDDEN_ACCEPT_AT,
            accept_at,
            abs(accept_at - HIDDEN_ACCEPT_AT) <= 0.1 * HIDDEN_ACCEPT_AT,
        )
    )
    return rows


def curve(
    folder: Path,
    order: str,
    pool: list[Sample],
    truth: dict[str, Truth],
    evaluation: list[Reviewed],
    shipped: Rubric,
    round_items: int,
    seed: int,
    target: float,
) -> list[tuple[int, int, float]]:
    """(items finished, verdicts, kappa on the evaluation set) after each round, until the
    kappa reaches `target` (within 0.01) or the pool is reviewed."""
    queue = queued(folder, order, pool, order, shipped)
    team = Team(queue, truth, seed)
    points: list[tuple[int, int, float]] = []
    while team.review(round_items):
        found = reviewed_items(queue.store, rubric=shipped.name).items
        rubric = fit_rubric(shipped, found, min_verdicts=min(30, len(found)))
        kappa = agreement_on(rubric, evaluation).kappa or 0.0
        points.append((len(found), team.verdicts, kappa))
        if kappa >= target - 0.01:
            break
        if order == "uncertainty":  # the team re-ranks what is left against the refit rubric
            queue.enqueue_batch(BATCH, order="uncertainty", rubric=rubric)
    queue.store.close()
    return points


def reached(points: list[tuple[int, int, float]], target: float) -> int | None:
    return next((verdicts for _, verdicts, kappa in points if kappa >= target - 0.01), None)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=2400)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--round", type=int, default=5, help="items reviewed between refits")
    args = parser.parse_args()
    began, cpu_began = time.perf_counter(), time.process_time()
    folder = Path(tempfile.mkdtemp(prefix="bench-calibration-"))
    try:
        run(args, folder, began, cpu_began)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(args: argparse.Namespace, folder: Path, began: float, cpu_began: float) -> None:
    shipped = load_rubric("detection").model_copy(deep=True)
    shipped.routing.audit_rate = 1.0  # every accepted sample is audited: all reach review
    rubric_file = folder / "detection-audited.yaml"
    rubric_file.write_text(rubric_yaml(shipped))
    hidden = with_changes(shipped, HIDDEN_THRESHOLDS, accept_at=HIDDEN_ACCEPT_AT)
    images = damaged(args.images, args.size, args.seed)
    samples, truth = judged(images, shipped, hidden)
    del images
    routes = {
        r: sum(s.report is not None and s.report.route == r for s in samples)
        for r in VERDICT_OF_ROUTE
    }
    print(
        f"{len(samples)} images judged by the shipped rubric: {routes} "
        f"({time.perf_counter() - began:.0f} s)"
    )

    # 1. the whole queue reviewed, then calibrated
    queue = queued(folder, "all", samples, "fifo", shipped)
    team = Team(queue, truth, args.seed)
    team.review(len(samples))
    print(
        f"reviewed {queue.stats()['items']['final']} items with {team.verdicts} verdicts "
        f"(k=2, {NOISE:.0%} noise, adjudicated splits)\n"
    )
    result = calibrate(queue.store, rubric=rubric_file, holdout=0.3, seed=args.seed)
    print_calibration(result)
    ok = True
    before, after = result.before.kappa or 0.0, result.after.kappa or 0.0
    ok &= after >= 0.8 and after >= before + 0.2
    print(f"\nheld-out kappa {before:.3f} -> {after:.3f} (targets: >= 0.8 and >= before + 0.2)")
    print("cut point                      hidden    found   within 10 %")
    for name, wanted, value, close in recovered(result.rubric):
        ok &= close
        print(f"  {name:<28}{wanted:>8g}{value:>9g}   {'yes' if close else 'NO'}")

    # 2. the order: uncertainty against random, on the same pool and the same evaluation set
    reviewed = reviewed_items(queue.store, rubric=shipped.name).items
    queue.store.close()
    order = np.random.default_rng([args.seed, 2]).permutation(len(reviewed))
    evaluation = [reviewed[i] for i in order[: len(reviewed) * 3 // 10]]
    set_aside = {r.sample_id for r in evaluation}
    pool = [s for s in samples if s.id not in set_aside]
    whole = fit_rubric(shipped, [reviewed[i] for i in order[len(evaluation) :]])
    target = agreement_on(whole, evaluation).kappa or 0.0
    print(
        f"\nreview order: {len(pool)} samples to review, {len(evaluation)} set aside to "
        f"evaluate; the rubric fitted on the whole pool reaches kappa {target:.3f} on them"
    )
    needed = {}
    for name in ("uncertainty", "random"):
        points = curve(
            folder, name, pool, truth, evaluation, shipped, args.round, args.seed, target
        )
        needed[name] = reached(points, target)
        step = max(1, len(points) // 12)
        shown = "  ".join(f"{v}:{k:.3f}" for _, v, k in points[::step])
        print(f"  {name:<12} (verdicts:kappa) {shown}")
        print(
            f"  {'':<12} reaches {target - 0.01:.3f} after {needed[name]} verdicts "
            f"({points[-1][0] if points else 0} items)"
        )
    share = (needed["uncertainty"] or 1e9) / (needed["random"] or 1e9)
    ok &= share <= 0.5
    print(f"  uncertainty needs {share:.0%} of the verdicts random needs (target <= 50 %)")
    print(
        f"\n{time.perf_counter() - began:.0f} s wall, {time.process_time() - cpu_began:.0f} s CPU; "
        f"targets {'met' if ok else 'MISSED'}"
    )
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    sys.exit(main())
