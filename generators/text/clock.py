"""Faker's clock, pinned to a reference day so that a seed makes the same text on any day.

Faker's date providers count from the clock: `date_this_year` is a day of the current year,
`future_date` one of the next 30 days, `date_time` one up to now, and locale providers (Swedish
personal numbers, passports) count ages from today. The same seed then gives another text
tomorrow. Inside `pinned_clock(day)` every Faker module loaded so far reads noon (UTC) of `day`
as now instead; outside it, and in other threads, Faker reads the real clock.

How: each Faker module's own `datetime` and `date` names (and the `datetime` module where a
module imports it whole) are swapped, once per module, for subclasses whose `now` and `today`
read a context variable. An `isinstance` check against them is one against the class they stand
for, so Faker's own type checks and its results are as before.
"""

from __future__ import annotations

import datetime as dt
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_NOW: ContextVar[dt.datetime | None] = ContextVar("synthgate_faker_now", default=None)
_PINNED_MODULES: set[str] = set()


class _StandsFor(type):
    """The metaclass of the pinned classes: instance and subclass checks go to the class each
    one stands for (the next in its MRO), so a plain date passes `isinstance(x, date)`."""

    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, cls.__mro__[1])

    def __subclasscheck__(cls, subclass: type) -> bool:
        return issubclass(subclass, cls.__mro__[1])


class _PinnedDatetime(dt.datetime, metaclass=_StandsFor):
    @classmethod
    def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:  # type: ignore[override]
        pinned = _NOW.get()
        if pinned is None:
            return dt.datetime.now(tz)
        return pinned.replace(tzinfo=None) if tz is None else pinned.astimezone(tz)

    @classmethod
    def today(cls) -> dt.datetime:  # type: ignore[override]
        return cls.now()


class _PinnedDate(dt.date, metaclass=_StandsFor):
    @classmethod
    def today(cls) -> dt.date:  # type: ignore[override]
        pinned = _NOW.get()
        return dt.date.today() if pinned is None else pinned.date()


_PINNED_DATETIME_MODULE = types.ModuleType("datetime")
_PINNED_DATETIME_MODULE.__dict__.update(vars(dt))
_PINNED_DATETIME_MODULE.datetime = _PinnedDatetime  # type: ignore[attr-defined]
_PINNED_DATETIME_MODULE.date = _PinnedDate  # type: ignore[attr-defined]


def pin_faker_modules() -> None:
    """Swap the clock names of every Faker module loaded since the last call (a new locale
    loads its providers' modules when its Faker is built)."""
    swaps = {id(dt.datetime): _PinnedDatetime, id(dt.date): _PinnedDate, id(dt): None}
    for name, module in list(sys.modules.items()):
        if name in _PINNED_MODULES or not (name == "faker" or name.startswith("faker.")):
            continue
        for attribute, value in list(vars(module).items()):
            if id(value) in swaps:
                replacement = swaps[id(value)]
                setattr(module, attribute, replacement or _PINNED_DATETIME_MODULE)
        _PINNED_MODULES.add(name)


@contextmanager
def pinned_clock(day: dt.date) -> Iterator[None]:
    """Within: Faker's modules read noon (UTC) of `day` as now (this thread or task only)."""
    token = _NOW.set(dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC))
    try:
        yield
    finally:
        _NOW.reset(token)
