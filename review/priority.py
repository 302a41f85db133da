"""Where an item stands in the claim order: the `priority` stored on every review item.

The queue hands out items in ascending priority (review/queue.py), so an order is a number per
item, computed when the item is enqueued (and again when `review enqueue` re-ranks open items):

- fifo: 0 for every item, so items go in the order they were enqueued;
- random: a seeded draw per item;
- uncertainty (review/value.py): 1 minus the item's value to a reviewer, so the items people
  learn most from come first. Its rubric is the one the caller names, else the batch config's,
  else the one the reports name if it is shipped (`resolve_rubric`); without one, every item
  is worth the same and the queue keeps enqueue order.

A gold item's priority is its fixed place in the gold order (`gold_position`): each claim of a
gold task walks the order from a point drawn for the annotator, so every annotator meets the
gold set in their own order without reading it whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from synthgate.errors import InputError
from synthgate.review import gold
from synthgate.review.value import item_value
from synthgate.samples import Sample
from synthgate.validators.rubric import Rubric, load_rubric

Order = Literal["uncertainty", "random", "fifo"]
ORDERS: tuple[str, ...] = ("uncertainty", "random", "fifo")


def gold_position(key: str) -> float:
    """A gold item's fixed place in [0, 1), from its key alone (storage/migrations copies it)."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2.0**64


def random_priority(key: str, seed: int) -> float:
    """The random order's place of an item: a seeded draw from its key."""
    return float(gold.rng_for([seed, "order", key]).random())


def gold_start(gold_key: str, annotator: str, position: int) -> float:
    """Where the annotator's `position`-th claim starts walking the gold order (`gold_key`: the
    queue's, review/queue.py)."""
    return float(gold.rng_for([gold_key, annotator, position, "gold-start"]).random())


def check_order(order: str) -> Order:
    if order not in ORDERS:
        raise InputError(
            field="order",
            value=order,
            problem="is not a review order",
            fix=f"use one of {', '.join(ORDERS)}",
        )
    return order  # type: ignore[return-value]


def priority_of(
    sample: Sample,
    key: str,
    *,
    order: Order,
    seed: int,
    rubric: Rubric | None = None,
    rates: Mapping[str, float] | None = None,
) -> float:
    """The claim priority of a sample item under `order` (lower is claimed first)."""
    if order == "fifo":
        return 0.0
    if order == "random":
        return random_priority(key, seed)
    if rubric is None:
        return 1.0
    return 1.0 - item_value(sample.report, rubric, rates)


def resolve_rubric(
    config: Mapping[str, Any] | None, modality: str, named: str | None
) -> Rubric | None:
    """The rubric that judged a batch's samples of `modality`: the batch config's (its
    `<modality>.rubric`), else the shipped rubric the reports name (`named`), else None."""
    section = (config or {}).get(modality) or {}
    for candidate in (section.get("rubric") if isinstance(section, Mapping) else None, named):
        if not candidate:
            continue
        try:
            return load_rubric(
                Path(candidate) if str(candidate).endswith((".yaml", ".yml")) else candidate
            )
        except InputError:
            continue
    return None
