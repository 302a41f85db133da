"""Hunt finding: the review queue in Python checks its arguments' values but not their types:
`ReviewQueue(store, annotators_per_item="2")` (a value read from a form or a CLI argument)
raises a raw TypeError ("'<' not supported between instances of 'str' and 'int'"), and
`queue.decide(item, "alice", {"verdict": "accept"})` (the API's JSON body, as a dict) an
AttributeError ("'dict' object has no attribute 'verdict'"). The public functions refuse such
types with an InputError naming the parameter (arguments.py). Marked xfail (strict) until the
queue does too."""

from __future__ import annotations

from pathlib import Path

import pytest

import synthgate as sg
from synthgate.review.queue import ReviewQueue
from synthgate.storage.store import Store, sqlite_url


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(sqlite_url(tmp_path / "synthgate.db"))


@pytest.mark.xfail(
    strict=True, reason="ReviewQueue compares a str annotators_per_item: raw TypeError"
)
def test_review_queue_refuses_a_string_k_naming_the_parameter(store: Store) -> None:
    with pytest.raises(sg.InputError, match="annotators_per_item"):
        ReviewQueue(store, annotators_per_item="2")  # type: ignore[arg-type]
    with pytest.raises(sg.InputError, match="gold_rate"):
        ReviewQueue(store, gold_rate="0.1")  # type: ignore[arg-type]


@pytest.mark.xfail(strict=True, reason="decide reads .verdict of a dict: raw AttributeError")
def test_decide_refuses_a_dict_decision_naming_the_type_to_pass(tmp_path: Path) -> None:
    config = {
        "name": "shapes",
        "seed": 5,
        "categories": ["circle", "square", "triangle"],
        "image": {"generator": "procedural", "count": 30, "size": [64, 64]},
    }
    run = sg.run(config, out=tmp_path / "run")  # accepted, two of them audited
    store = Store(sqlite_url(Path(run.out) / "synthgate.db"))
    try:
        queue = ReviewQueue(store, seed=1)
        assert queue.enqueue_batch(run.batch_id) > 0
        task = queue.next_item("alice")
        assert task is not None
        with pytest.raises(sg.InputError, match="Decision"):
            queue.decide(task.item_id, "alice", {"verdict": "accept"})  # type: ignore[arg-type]
    finally:
        store.engine.dispose()
