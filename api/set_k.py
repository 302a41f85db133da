"""How many annotators the open review items need: `POST /api/review/annotators-per-item`
(admins), as `synthgate review set-k` does (review/set_k.py). A router of its own beside
api/review.py's, under the same prefix: POST only, so review's `GET /{item_id}` never takes its
path.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from synthgate.api.auth import User, require
from synthgate.api.errors import errors
from synthgate.api.inputs import check_plain
from synthgate.api.review import queue_of

router = APIRouter(prefix="/api/review", tags=["review"])


class AnnotatorsPerItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    k: int = Field(ge=1, description="Distinct annotators each open item needs from now on.")
    batches: list[str] = Field(
        default_factory=list, description="Only these batches' open items (default: all)."
    )


class AnnotatorsPerItemOut(BaseModel):
    k: int
    batches: list[str]
    changed: int = Field(description="Open items whose k changed.")
    final: int = Field(description="Items finished with a verdict (more than half agreed).")
    adjudication: int = Field(description="Items sent to adjudication (their annotators split).")
    still_open: int = Field(description="Open items left, waiting for more decisions.")
    held: int = Field(
        description="Open items that keep a larger k until the people holding them decide "
        "(or a release takes them back)."
    )
    holders: list[str]
    kept: dict[str, int] = Field(
        description="Items not open, by status, whose result stays: a new k reopens none."
    )
    team: list[str] = Field(
        description="Everyone the queue ever gave work to, admins left out (handed none now)."
    )


@router.post(
    "/annotators-per-item",
    response_model=AnnotatorsPerItemOut,
    summary="Change how many annotators the open items need",
    responses=errors((400, "No items of a named batch in the queue.")),
)
def set_annotators_per_item(
    body: AnnotatorsPerItemIn, request: Request, _user: User = Depends(require("admin"))
) -> AnnotatorsPerItemOut:
    """Give the open items k annotators each (the way out of a k larger than the team):
    lowering k finishes each item that has its k decisions now, as its k-th decision would
    (agreement: final; a split: adjudication); raising it reopens nothing."""
    check_plain(body.model_dump(), where="body")
    change = queue_of(request).set_annotators_per_item(body.k, batches=body.batches)
    return AnnotatorsPerItemOut.model_validate(change, from_attributes=True)
