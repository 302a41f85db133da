"""Taking decisions back: `POST /api/review/reopen` (admins), as `synthgate review reopen` does
(review/reopen.py). A router of its own beside api/review.py's, under the same prefix: POST
only, so review's `GET /{item_id}` never takes its path.

Items go in and come out by their opaque ids (api/ids.py), as every other route names them; the
queue's refusals name them so too. Who takes the decisions back is the admin calling.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from synthgate.api import ids
from synthgate.api.auth import User, require
from synthgate.api.errors import errors
from synthgate.api.inputs import check_plain
from synthgate.api.review import item_ids, queue_of, shown_as_public
from synthgate.review.reopen import ItemChange

router = APIRouter(prefix="/api/review", tags=["review"])

PublicItemId = Annotated[int, Field(ge=0, lt=ids.LIMIT)]


class ReopenIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    items: list[PublicItemId] = Field(
        default_factory=list,
        description="Items whose decisions to take back (every one, or `annotator`'s), by the "
        "ids the API gives them.",
    )
    annotator: str | None = Field(
        None,
        description="Take back this annotator's decisions (on `items`, else on every item; those "
        "on gold tasks stay scored), and hand them none of these items again.",
    )
    reason: str = Field("", description="Why, kept with the decisions taken back.")
    dry_run: bool = Field(False, description="Say what would change; change nothing.")


class ItemState(BaseModel):
    status: str = Field(description="open, adjudication or final.")
    final_verdict: str | None


class ItemChangeOut(BaseModel):
    item_id: int
    sample: str
    annotators: list[str] = Field(description="Whose decisions on it were taken back.")
    before: ItemState
    after: ItemState


class ReopenOut(BaseModel):
    annotator: str | None
    dry_run: bool = Field(description="True: nothing was changed.")
    decisions: int = Field(description="Decisions taken back (or, dry, that would be).")
    items: list[ItemChangeOut] = Field(description="The items changed, in the queue's order.")
    gold_kept: int = Field(
        description="The annotator's decisions on gold tasks: they stay, scoring them."
    )
    holding: list[int] = Field(
        description="Items the annotator holds undecided: their decision there, when it comes, "
        "counts (a release hands such a task to someone else)."
    )
    were_final: list[int] = Field(
        description="Items that were final: datasets made from the run since hold their old "
        "verdicts; make them again once the items are decided again."
    )


@router.post(
    "/reopen",
    response_model=ReopenOut,
    summary="Take decisions back and reopen their items",
    responses=errors(
        (
            400,
            "Neither items nor an annotator; an annotator the queue never gave work to; an "
            "item it lacks, a gold task, or one without such decisions.",
        )
    ),
)
def reopen(body: ReopenIn, request: Request, user: User = Depends(require("admin"))) -> ReopenOut:
    """Take back every decision of a careless annotator (`annotator`), or every decision on
    `items`, or theirs on them. Nothing is deleted: the decisions are kept apart, with who took
    them back (the caller), when and why, and count nowhere; each item is made again from the
    decisions left (with fewer than its k, open again and handed out as any open item, but not
    to `annotator`). Decisions on gold tasks stay: they score the annotator."""
    check_plain(body.model_dump(), where="body")
    public = item_ids(request)
    asked = {public.internal(item_id): item_id for item_id in body.items}
    with shown_as_public(asked):
        done = queue_of(request).reopen(
            list(asked),
            annotator=body.annotator,
            by=user.name,
            reason=body.reason,
            dry_run=body.dry_run,
        )
    return ReopenOut(
        annotator=done.annotator,
        dry_run=done.dry_run,
        decisions=done.decisions,
        items=[_change_out(change, public.public(change.item_id)) for change in done.items],
        gold_kept=done.gold_kept,
        holding=[public.public(item) for item in done.holding],
        were_final=[public.public(item) for item in done.were_final],
    )


def _change_out(change: ItemChange, item_id: int) -> ItemChangeOut:
    (before, was), (after, now) = change.before, change.after
    return ItemChangeOut(
        item_id=item_id,
        sample=change.sample_id,
        annotators=change.annotators,
        before=ItemState(status=before, final_verdict=was),
        after=ItemState(status=after, final_verdict=now),
    )
