"""The options every `synthgate review` command shares (commands/review.py and
commands/review_lead.py): the database it works on, and the check of an option that takes one
of a few words.

Every command works on one database: `--db URL`, else the run folder's `synthgate.db` given by
`--run DIR`, else `SYNTHGATE_DB_URL`, else `sqlite:///<runs dir>/synthgate.db` (the one
`synthgate serve` uses by default; `DEFAULT_DB`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from synthgate.commands import DEFAULT_DB
from synthgate.errors import InputError

if TYPE_CHECKING:
    from synthgate.review.queue import ReviewQueue

RUN_HELP = "Run folder whose synthgate.db to use (e.g. runs/quickstart)."
DB_HELP = f"Database URL; overrides --run (default: {DEFAULT_DB})."


@contextmanager
def open_queue(
    run: Path | None,
    db: str | None,
    *,
    annotators_per_item: int = 2,
    gold_rate: float = 0.1,
    read_only: bool = False,
) -> Iterator[ReviewQueue]:
    """The review queue of the chosen database, its store closed when the block ends;
    `read_only` commands refuse a missing file."""
    from synthgate.review.queue import ReviewQueue  # SQLAlchemy: only when a command runs
    from synthgate.storage.database import database_url, open_store

    with open_store(database_url(run, db), must_exist=read_only) as store:
        yield ReviewQueue(store, annotators_per_item=annotators_per_item, gold_rate=gold_rate)


def check_choice(option: str, value: str, choices: list[str]) -> None:
    if value not in choices:
        raise InputError(f"{option} {value!r}: choose one of {', '.join(choices)}")
