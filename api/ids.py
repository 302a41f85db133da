"""Opaque review item ids: what annotators (and the API's other callers) see instead of the
queue's sequential numbers.

A sequential item number tells an annotator how items were made (a gold task enqueued apart
from its batch's items sits in its own run of numbers: "item 4 -> 18 -> 5"). `ItemIds` maps
each internal id to a number that looks random, and back: a keyed permutation of [0, 2^52) (a
4-round Feistel network over two 26-bit halves, HMAC-SHA256 as its round function), so nothing
is stored per item, every id stays a JSON-safe integer, and without the key (a random secret
kept in the database, storage/users.py `secret`) the order of items cannot be recovered.
"""

from __future__ import annotations

import hashlib
import hmac

BITS = 52  # public ids stay below 2**53: exact in JavaScript, like every JSON integer
HALF = BITS // 2
MASK = (1 << HALF) - 1
LIMIT = 1 << BITS  # public ids are in [0, LIMIT)
ROUNDS = 4


class ItemIds:
    """A keyed bijection between internal review item ids and the opaque ones the API shows."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _round(self, index: int, half: int) -> int:
        message = index.to_bytes(1, "big") + half.to_bytes(4, "big")
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return int.from_bytes(digest[:4], "big") & MASK

    def public(self, internal: int) -> int:
        """The opaque id of an internal item id."""
        if not 0 <= internal < LIMIT:
            raise ValueError(f"item id {internal} is outside [0, 2**{BITS})")
        left, right = internal >> HALF, internal & MASK
        for index in range(ROUNDS):
            left, right = right, left ^ self._round(index, right)
        return (left << HALF) | right

    def internal(self, public: int) -> int:
        """The internal item id behind an opaque one (any id in range maps to some number;
        one no item has is answered like any unknown item)."""
        if not 0 <= public < LIMIT:
            raise ValueError(f"item id {public} is outside [0, 2**{BITS})")
        left, right = public >> HALF, public & MASK
        for index in reversed(range(ROUNDS)):
            left, right = right ^ self._round(index, left), left
        return (left << HALF) | right
