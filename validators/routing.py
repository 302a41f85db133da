"""Routing: a sample's score and criterion levels -> accepted | review | rejected (+ audit).

The rubric's `routing` section sets the cut points. In order: a score under `reject_below` is
rejected; a critical criterion at level 1 goes where `on_critical` says (review or reject), so a
critical failure is never accepted whatever the weights; a score at or above `accept_at` is
accepted; anything else goes to review. A fixed `audit_rate` of accepted samples is also sent to
review, chosen from the sample's seed so that a re-run picks the same ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from synthgate.samples import Route
from synthgate.yaml_files import written_as_number

AUDIT_STREAM = 0xA0D1  # a fixed stream id: the audit draw never collides with a generator's


class Routing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accept_at: float = Field(ge=1, le=5)
    reject_below: float = Field(ge=1, le=5)
    on_critical: Literal["review", "reject"] = "review"
    audit_rate: float = Field(0.0, ge=0, le=1)

    _numbers = field_validator("accept_at", "reject_below", "audit_rate", mode="before")(
        written_as_number
    )

    @model_validator(mode="after")
    def _ordered(self) -> Routing:
        if self.reject_below > self.accept_at:
            raise ValueError(
                f"reject_below ({self.reject_below}) must not exceed accept_at ({self.accept_at})"
            )
        return self


def audit_draw(seed: int) -> float:
    """A uniform number in [0, 1) fixed by the sample's seed."""
    return float(np.random.default_rng([seed, AUDIT_STREAM]).random())


def route(
    score: float,
    levels: Mapping[str, int],
    routing: Routing,
    *,
    critical: Iterable[str],
    seed: int,
) -> tuple[Route, bool]:
    """(route, audit) of one sample; audit is True only for accepted samples drawn for review."""
    if score < routing.reject_below:
        return "rejected", False
    if any(levels.get(name) == 1 for name in critical):
        return ("rejected" if routing.on_critical == "reject" else "review"), False
    if score >= routing.accept_at:
        # No draw at rate 0 (the default): a draw is never below 0, and each costs a seeded
        # generator (~25 us; validate makes one per accepted image).
        return "accepted", routing.audit_rate > 0 and audit_draw(seed) < routing.audit_rate
    return "review", False
