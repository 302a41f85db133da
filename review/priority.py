"""Where an item stands in the claim order: the `priority` stored on every review item.

The queue hands out items in ascending priority (review/queue.py), so an order is a number per
item, computed when the item is enqueued (and again when `review enqueue` re-ranks open items):

- fifo: 0 for every item, so items go in the order they were enqueued;
- random: a seeded draw per item;
- uncertainty (review/value.py): minus the item's value to a reviewer, so the items people
  learn most from come first.

A gold item's priority is its fixed place in the gold order (`gold_position`): each claim of a
gold task walks the order from a point drawn for the annotator, so every annotator meets the
gold set in their own order without reading it whole.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from synthgate.review import gold

Order = Literal["uncertainty", "random", "fifo"]
ORDERS: tuple[str, ...] = ("uncertainty", "random", "fifo")


def gold_position(key: str) -> float:
    """A gold item's fixed place in [0, 1), from its key alone (storage/migrations copies it)."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2.0**64


def random_priority(key: str, seed: int) -> float:
    """The random order's place of an item: a seeded draw from its key."""
    return float(gold.rng_for([seed, "order", key]).random())


def gold_start(seed: int, annotator: str, position: int) -> float:
    """Where the annotator's `position`-th claim starts walking the gold order."""
    return float(gold.rng_for([seed, annotator, position, "gold-start"]).random())
