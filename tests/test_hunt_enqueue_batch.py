"""Hunt finding: `ReviewQueue(store).enqueue_batch("shapes")` (the config's name where the batch
id, "shapes-<hash>", goes; or any typo) returns 0, as if the batch had nothing to review, and
writes a review_batches row for the batch that does not exist. `synthgate review enqueue --batch`
refuses the same id ("no such batch in the database"). Marked xfail (strict) until the method
refuses it too, writing nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

import synthgate as sg
from synthgate.review.queue import ReviewQueue
from synthgate.storage.store import Store, sqlite_url
from synthgate.storage.tables import review_batches

SHAPES = {
    "name": "shapes",
    "seed": 3,
    "categories": ["circle", "square", "triangle"],
    "image": {"generator": "procedural", "count": 4, "size": [64, 64]},
}


@pytest.mark.xfail(
    strict=True,
    reason="enqueue_batch returns 0 and records a review batch for an id the database lacks, "
    "where the CLI refuses it",
)
def test_enqueue_batch_refuses_a_batch_id_the_database_lacks(tmp_path: Path) -> None:
    run = sg.run(SHAPES, out=tmp_path / "run")
    store = Store(sqlite_url(Path(run.out) / "synthgate.db"))
    queue = ReviewQueue(store, seed=1)
    try:
        with pytest.raises(sg.InputError, match="shapes"):
            queue.enqueue_batch("shapes")
    finally:
        with store.engine.connect() as connection:
            kept = list(connection.execute(select(review_batches.c.batch_id)).scalars())
        store.engine.dispose()
    assert "shapes" not in kept  # nothing recorded for a batch that is not there
    assert run.batch_id != "shapes"
