"""Review order by value: uncertainty puts the items whose measures sit nearest a threshold (and
whose checks people overrule) first, random is seeded, fifo keeps enqueue order; enqueueing
again re-ranks only untouched items; gold tasks come at the same rate whatever the order; items
whose annotators disagree move ahead; stats count the verdicts that changed the rubric's route."""

from __future__ import annotations

from pathlib import Path

import pytest
from calibration_fixtures import VERDICT_OF_ROUTE, detection_sample, judge, shifted
from review_fixtures import ACCEPT, REJECT, corrected
from sqlalchemy import select
from typer.testing import CliRunner

from synthgate.cli import app
from synthgate.errors import InputError
from synthgate.review.queue import Decision, ReviewQueue
from synthgate.review.value import closeness, overrule_rates
from synthgate.storage.store import Store
from synthgate.storage.tables import review_items
from synthgate.validators.rubric import Threshold, load_rubric

DETECTION = load_rubric("detection")
# box looseness of each sample: 4.9 and 1.1 px sit next to the cut points (1 and 5 px)
LOOSE = [0.0, 3.0, 4.9, 12.0, 1.1, 0.4, 7.0, 2.6]


def measured(loose: float) -> dict[str, float]:
    return {"box_tightness_px": loose, "min_side_px": 30.0, "visible_fraction": 1.0}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    made = Store(f"sqlite:///{tmp_path / 'synthgate.db'}")
    made.put_batch("cal", name="cal", seed=0, config={})
    made.upsert_samples([detection_sample(i, measured(x)) for i, x in enumerate(LOOSE)])
    yield made
    made.close()


def claim_order(queue: ReviewQueue, annotator: str = "ann") -> list[float]:
    seen = []
    while (task := queue.next_item(annotator)) is not None:
        assert task.sample.report is not None
        seen.append(task.sample.report.measurements["box_tightness_px"])
        queue.decide(task.item_id, annotator, ACCEPT)
    return seen


def test_closeness_is_one_at_a_cut_and_ignores_a_zero_cut_on_its_good_side() -> None:
    loose = Threshold(gold=1, acceptable=5)
    assert closeness(5.0, loose, "higher") == pytest.approx(1.0)
    assert closeness(4.9, loose, "higher") > closeness(3.0, loose, "higher")
    assert closeness(0.0, Threshold(gold=0, acceptable=0), "higher") == 0.0
    assert closeness(1.0, Threshold(gold=0, acceptable=0), "higher") == pytest.approx(0.368, 0.01)
    assert closeness(0.26, Threshold(gold=0.5, acceptable=0.25), "lower") > 0.9


def test_uncertainty_puts_items_nearest_a_threshold_first(store: Store) -> None:
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.0)
    queue.enqueue_batch("cal")  # default: uncertainty, the rubric the reports name
    order = claim_order(queue)
    assert sorted(order[:2]) == [1.1, 4.9]
    assert order.index(3.0) > order.index(0.4)  # 0.6 px from a cut before 2 px from one
    assert order[-1] == 12.0


def test_random_is_seeded_and_fifo_keeps_enqueue_order(tmp_path: Path, store: Store) -> None:
    fifo = ReviewQueue(store, annotators_per_item=1, gold_rate=0.0)
    fifo.enqueue_batch("cal", order="fifo")
    assert claim_order(fifo) == LOOSE
    orders = []
    for name in ("a", "b"):
        other = Store(f"sqlite:///{tmp_path / f'{name}.db'}")
        other.put_batch("cal", name="cal", seed=0, config={})
        other.upsert_samples([detection_sample(i, measured(x)) for i, x in enumerate(LOOSE)])
        queue = ReviewQueue(other, annotators_per_item=1, gold_rate=0.0, seed=7)
        queue.enqueue_batch("cal", order="random")
        orders.append(claim_order(queue))
        other.close()
    assert orders[0] == orders[1] != LOOSE
    assert sorted(orders[0]) == sorted(LOOSE)
    with pytest.raises(InputError, match="order"):
        fifo.enqueue_batch("cal", order="loudest")


def test_enqueueing_again_reranks_only_untouched_items(store: Store) -> None:
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    queue.enqueue_batch("cal", order="fifo")
    started = queue.next_item("ann")
    assert started is not None
    # a calibrated rubric: people call boxes over 2.5 px loose bad
    calibrated = shifted(DETECTION, {"box_tightness_px": {"gold": 1.0, "acceptable": 2.5}})
    assert queue.enqueue_batch("cal", order="uncertainty", rubric=calibrated) == 0
    with store.engine.connect() as connection:
        rows = dict(connection.execute(select(review_items.c.id, review_items.c.priority)).all())
    assert rows[started.item_id] == 0.0  # started: it keeps its place
    queue.decide(started.item_id, "ann", ACCEPT)
    order = claim_order(queue, "bob")
    assert order[0] == LOOSE[0]  # bob finishes what ann started first
    assert sorted(order[1:3]) == [1.1, 2.6]  # then the items nearest the calibrated cut points
    assert order.index(3.0) < order.index(4.9)  # 4.9 px is far from them now


def test_gold_tasks_come_at_the_same_positions_whatever_the_order(tmp_path: Path) -> None:
    positions = {}
    for order in ("uncertainty", "random", "fifo"):
        store = Store(f"sqlite:///{tmp_path / f'{order}.db'}")
        store.put_batch("cal", name="cal", seed=0, config={})
        # half the accepted samples are not audited: honeypots are made of them
        samples = [
            detection_sample(i, measured(x), audit=i % 2 == 0) for i, x in enumerate(LOOSE * 4)
        ]
        store.upsert_samples(samples)
        # one seed for the three databases (each would otherwise key its gold draws apart)
        queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.3, seed=0)
        queue.enqueue_batch("cal", order=order)
        with store.engine.connect() as connection:
            gold = set(
                connection.execute(
                    select(review_items.c.id).where(review_items.c.kind == "gold")
                ).scalars()
            )
        seen = []
        while (task := queue.next_item("ann")) is not None:
            seen.append(task.item_id in gold)
            queue.decide(task.item_id, "ann", ACCEPT)
        positions[order] = ([i for i, g in enumerate(seen) if g], len(gold))
        store.close()
    assert positions["uncertainty"] == positions["random"] == positions["fifo"]
    assert positions["fifo"][0]  # some gold tasks were served


def test_checks_people_overrule_come_first(tmp_path: Path) -> None:
    """Once people overrule the box check, its items go before equally near ones of others."""
    hidden = shifted(DETECTION, {"box_tightness_px": {"gold": 1.0, "acceptable": 2.5}})
    store = Store(f"sqlite:///{tmp_path / 'synthgate.db'}")
    store.put_batch("cal", name="cal", seed=0, config={})
    store.upsert_samples([detection_sample(i, measured(x)) for i, x in enumerate(LOOSE * 3)])
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.0)
    queue.enqueue_batch("cal", order="fifo")
    while (task := queue.next_item("ann")) is not None:
        assert task.sample.report is not None
        levels, _, human = judge(hidden, task.sample.report.measurements)
        verdict = VERDICT_OF_ROUTE[human]
        fixed = corrected(task.sample.objects) if verdict == "fix" else None
        queue.decide(task.item_id, "ann", Decision(verdict=verdict, levels=levels, objects=fixed))  # type: ignore[arg-type]
    rates = overrule_rates(store, DETECTION)
    assert rates["precision_box_tightness"] > 0.2
    assert rates["clarity_min_size"] == 0.0
    assert overrule_rates(store, DETECTION, latest=0) == {}  # only the latest final items count
    stats = queue.stats()["route_changes"]
    assert stats["changed"] == 3 * sum(2.5 < x <= 5 for x in LOOSE)  # accepted -> review
    assert stats["moves"] == {"accepted -> review": stats["changed"]}
    # a new batch: a box 0.3 px from its cut point, a size 0.15 px from its own
    store.put_batch("next", name="next", seed=0, config={})
    near_size = {"box_tightness_px": 0.0, "min_side_px": 7.4, "visible_fraction": 1.0}
    near_box = {"box_tightness_px": 4.7, "min_side_px": 30.0, "visible_fraction": 1.0}
    store.upsert_samples(
        [detection_sample(0, near_size, batch="next"), detection_sample(1, near_box, batch="next")]
    )
    queue.enqueue_batch("next")
    task = queue.next_item("bob")
    assert task is not None and task.sample.report is not None
    assert task.sample.report.measurements["box_tightness_px"] == 4.7
    store.close()


def test_items_whose_annotators_disagree_move_ahead(store: Store) -> None:
    queue = ReviewQueue(store, annotators_per_item=3, gold_rate=0.0)
    queue.enqueue_batch("cal", order="fifo")
    first = queue.next_item("ann")
    assert first is not None
    queue.decide(first.item_id, "ann", ACCEPT)
    second = queue.next_item("bob")
    assert second is not None and second.item_id == first.item_id
    queue.decide(second.item_id, "bob", REJECT)
    with store.engine.connect() as connection:
        disputed = connection.execute(
            select(review_items.c.priority).where(review_items.c.id == first.item_id)
        ).scalar_one()
    assert disputed < 0  # before every undisputed item
    third = queue.next_item("cy")
    assert third is not None and third.item_id == first.item_id


def test_the_order_and_the_route_changes_on_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'synthgate.db'}"
    store = Store(url)
    store.put_batch("cal", name="cal", seed=0, config={})
    store.upsert_samples([detection_sample(i, measured(x)) for i, x in enumerate(LOOSE)])
    runner = CliRunner()
    bad = runner.invoke(app, ["review", "enqueue", "--db", url, "--order", "loudest"])
    assert bad.exit_code == 2 and "--order" in bad.output
    done = runner.invoke(app, ["review", "enqueue", "--db", url, "--order", "random", "-k", "1"])
    assert done.exit_code == 0, done.output
    assert "cal: 8 new review items, in random order" in done.output
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.0)
    while (task := queue.next_item("ann")) is not None:
        queue.decide(task.item_id, "ann", REJECT)
    shown = runner.invoke(app, ["review", "stats", "--db", url])
    assert shown.exit_code == 0, shown.output
    rejected = sum(judge(DETECTION, measured(x))[2] != "rejected" for x in LOOSE)
    assert f"verdicts changed the rubric's route on {rejected} of 8 final items" in shown.output
    store.close()
