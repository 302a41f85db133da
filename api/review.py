"""Review routes. Annotators: `GET /api/review/next`, `POST /api/review/{item}/decision`, the
item's image and mask overlay. Admins: queue stats, agreement, gold answers, every decision;
they look at any item but are handed none (`refuse_admin`: their decisions would count as an
annotator's). `POST /api/review/annotators-per-item` is api/set_k.py's, `POST /api/review/reopen`
api/reopen.py's.

Blindness is enforced here: a task shows the sample blind (review/gold.py `blind`: gold tasks
look like any other, and no task carries the validator's verdict), under an opaque item id
(api/ids.py) instead of the queue's sequential number; an item's pixels go only to people it
was assigned to, and an annotator sees only their own decision on an item, once made. Images
are found by item id through the queue, never by a path from the client.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import re
import shlex
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from synthgate.api import ids
from synthgate.api.auth import User, require
from synthgate.api.errors import errors
from synthgate.api.ids import ItemIds
from synthgate.api.inputs import check_plain
from synthgate.errors import InputError
from synthgate.masks import decode_mask
from synthgate.review import gold
from synthgate.review.items import item_number
from synthgate.review.queue import Decision as QueueDecision
from synthgate.review.queue import ReviewQueue, ReviewTask
from synthgate.review.report import agreement_report
from synthgate.review.stats import latest_decisions
from synthgate.samples import ObjectLabel, Sample, Span
from synthgate.storage.tables import assignments, gold_answers

router = APIRouter(prefix="/api/review", tags=["review"])
NO_ITEM = errors((404, "No such item, or it is not yours."))


def hue_palette(hues: int, shades: list[tuple[float, float]]) -> list[str]:
    """`hues` hues evenly round the colour wheel, each in every (lightness, saturation) shade,
    as hex colours: the shades of one hue first."""
    return [
        "#" + "".join(f"{round(c * 255):02x}" for c in colorsys.hls_to_rgb(h / hues, *shade))
        for h in range(hues)
        for shade in shades
    ]


# A class's colour comes from its name alone (category_color), never from its place in a list: a
# list's length and order would differ between tasks and could tell gold from real work. 36
# colours keep two classes apart in colour 35 times in 36; 30 degrees between hues and three
# shades keep them apart to the eye, and each reads against the tag's white outline.
PALETTE = hue_palette(12, [(0.42, 0.85), (0.28, 0.75), (0.55, 0.95)])


class ReviewItemOut(BaseModel):
    """A task as an annotator receives it: the sample as shown, never the answer."""

    item_id: int
    criteria: list[str]
    sample: Sample = Field(
        description="The labels and the text or image size, blind (review/gold.py `blind`): "
        'its id and batch are empty ("", index 0), it has no uri (the pixels are at '
        'image_url), no attributes (an object\'s are `{"ref": i}`, its place in the sample: '
        "send it back with the object in a fix, none with a new one), no provenance beyond "
        "empty values and no report, on every task alike."
    )
    image_url: str | None = Field(None, description="The item's pixels (image items).")
    masks_url: str | None = Field(None, description="An RGBA overlay of the object masks.")
    fix_labels: list[str] = Field(
        default_factory=list,
        description="What a fix may name: the object classes a box may have (image items) or "
        "the span labels a span may have (text items), the batch's and the sample's own. A fix "
        "naming any other is refused (400).",
    )


class StrictObject(ObjectLabel):
    """An object of a fix, as JSON Schema reads its type: no `true` for a number."""

    model_config = ConfigDict(extra="forbid", strict=True)


class StrictSpan(Span):
    """A span of a fix, as JSON Schema reads its type: no `false` for an offset."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Decision(QueueDecision):
    """A decision as the API takes it: its values of the types the schema says, taken as they
    are (pydantic's lax mode would read `false` as 0, which the schema calls invalid)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    objects: list[StrictObject] | None = None  # type: ignore[assignment]
    spans: list[StrictSpan] | None = None  # type: ignore[assignment]


class DecisionOut(BaseModel):
    item_id: int
    annotator: str
    role: str
    verdict: str
    levels: dict[str, int]
    comment: str
    objects: list[dict[str, Any]] | None = None
    spans: list[dict[str, Any]] | None = None
    decided_at: float


class GoldOut(BaseModel):
    item_id: int
    expected: list[str]
    criterion: str | None
    defect: str | None


class AnnotatorStats(BaseModel):
    model_config = ConfigDict(extra="allow")

    assigned: int
    decided: int
    gold_decided: int
    gold_correct: int
    gold_accuracy: float | None
    decisions_per_hour: float | None = Field(
        description="Decisions an hour from the first task taken to the last decided, of those "
        "with a known time on the task; null while that span is under a minute (a rate from seconds "
        "of work is noise)."
    )
    untimed: int = Field(
        description="Decisions imported with no time on the task (no created_at and lead_time "
        "in the Label Studio export): left out of decisions_per_hour."
    )


class RouteChanges(BaseModel):
    final: int = Field(description="Final sample items.")
    with_route: int = Field(
        description="Of them, items with the rubric's route on record (their sample carried a "
        "rubric report when enqueued): `changed` counts among these."
    )
    changed: int = Field(description="Items whose final verdict changed the rubric's route.")
    moves: dict[str, int] = Field(description='"accepted -> review": how many, and so on.')


class BlockedItem(BaseModel):
    item_id: int = Field(description="The item's id: POST /api/review/{item_id}/adjudication.")
    sample: str
    needs: int = Field(description="Annotators the item still needs.")
    met_as_gold: list[str] = Field(
        description="Who met its sample as a gold task: the blind rule keeps it from them."
    )
    benched: list[str] = Field(
        description="Whose decisions on it POST /api/review/reopen (or `synthgate review "
        "reopen --annotator`) took back: nobody is handed such an item again."
    )
    why: str
    fix: str


class ShortOfAnnotators(BaseModel):
    k: int = Field(description="Annotators each of these open items needs.")
    items: int
    team: int = Field(description="How many people the queue ever gave work to.")
    names: list[str] = Field(description="The first few of them.")
    waiting: list[str] = Field(
        description="The first few annotator users it never gave work to: they may take these "
        "items once they ask, and are counted with the team in the k `fix` names."
    )
    why: str
    fix: str


class QueueStats(BaseModel):
    model_config = ConfigDict(extra="allow")

    route_changes: RouteChanges

    annotators_per_item: int
    items: dict[str, int] = Field(description="Real items by status: open, adjudication, final.")
    gold_items: int
    queue_depth: int = Field(description="Open slots: decisions still needed on open items.")
    decisions: int = Field(description="Every decision, adjudications included.")
    adjudications: int = Field(
        description="Of the decisions, adjudicators' final words (not in `annotators`)."
    )
    annotators: dict[str, AnnotatorStats]
    blocked: list[BlockedItem] = Field(
        description="Open items nobody the queue knows may take (a sample met as gold before "
        "it was real work, or people benched from it by a reopen): someone new takes them, or "
        "an admin adjudicates them."
    )
    short_of_annotators: list[ShortOfAnnotators] = Field(
        description="Open items needing more annotators than the queue ever gave work to, by "
        "k: POST /api/review/annotators-per-item lowers their k."
    )


class Saved(BaseModel):
    item_id: int
    saved: bool = True


ITEM_ID = PathParam(
    ...,
    ge=0,
    lt=ids.LIMIT,
    description="The item's id as GET /api/review/next gave it (an opaque number).",
)


def queue_of(request: Request) -> ReviewQueue:
    return request.app.state.queue


def item_ids(request: Request) -> ItemIds:
    return request.app.state.item_ids


NO_SUCH_ITEM = -1  # what an opaque id names when no item can have its number (item_number)


def internal_id(request: Request, public_id: int) -> int:
    """The queue's id of an item the API named by its opaque id (NO_SUCH_ITEM for one that
    cannot be an item's)."""
    internal = item_ids(request).internal(public_id)
    return internal if item_number(internal) is not None else NO_SUCH_ITEM


def item_out(task: ReviewTask, public_id: int, *, labels: Collection[str] = ()) -> ReviewItemOut:
    """A task as an annotator receives it, under its opaque id: the sample blind (gold.blind:
    its labels and pixels or text, no id, file name, provenance or validator verdict), so gold
    and real tasks look alike whatever batch or source each came from.
    `labels`: the batch's a fix of the item may use (ReviewQueue.fix_labels), the same for
    every item of its batch and modality, gold or real; with the sample's own, as the queue's
    check_decision accepts them, they are the task's `fix_labels`."""
    sample = gold.blind(task.sample)
    boxes = sample.spec.modality == "image"
    image = boxes and bool(task.sample.uri)  # sent as image_url: the blind sample has no uri
    masks = image and any(o.mask for o in sample.objects)
    own = [o.category for o in sample.objects] if boxes else [s.label for s in sample.spans]
    return ReviewItemOut(
        item_id=public_id,
        criteria=task.criteria,
        sample=sample,
        image_url=f"/api/review/{public_id}/image" if image else None,
        masks_url=f"/api/review/{public_id}/masks.png" if masks else None,
        fix_labels=sorted({*labels, *own}),
    )


def assigned_to(request: Request, item_id: int, user: User, *, undecided: bool = False) -> bool:
    """Whether the item (internal id) was handed to this user (admins may look at any item);
    `undecided`: and the user holds it still, their decision not in."""
    if user.can("admin"):
        return True
    mine = [assignments.c.item_id == item_id, assignments.c.annotator == user.name]
    if undecided:
        mine.append(assignments.c.decided_at.is_(None))
    with request.app.state.store.engine.connect() as connection:
        found = connection.execute(select(assignments.c.id).where(*mine)).first()
    return found is not None


def refuse_admin(user: User, what: str) -> None:
    """403 for an admin taking an annotator's work: a claim under their name would count as
    one of the item's k decisions and in the agreement. Admins pass `require("annotator")`
    (to look at any item and its decisions), so the role is checked again here, on the user
    the request's auth loaded: no query on an annotator's hot path."""
    if user.role == "admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=admin_not_annotator(user, what))


def admin_not_annotator(user: User, what: str) -> str:
    """Why an admin is not handed review items, and what to do instead."""
    return (
        f"admin {user.name!r} may not {what}: review items go to annotators (role annotator), "
        "whose decisions count toward each item's k and the agreement; to review yourself, log "
        "in with an annotator account (synthgate users add NAME --role annotator); an admin "
        "adjudicates instead (POST /api/review/{item_id}/adjudication); items the server "
        "handed you before it refused admins stay held under your name, undecided, until a lead "
        f"gives them to annotators: synthgate review release --annotator {shlex.quote(user.name)} "
        "(it takes back every task you hold undecided)"
    )


@contextmanager
def shown_as(public_id: int, internal_id: int) -> Iterator[None]:
    """Queue errors name items by their internal id: say the id the caller knows instead."""
    with shown_as_public({internal_id: public_id}):
        yield


ITEM_NAMED = re.compile(r"\bitem (-?\d+)\b")


@contextmanager
def shown_as_public(public: Mapping[int, int]) -> Iterator[None]:
    """`shown_as` for several items: `public` gives each internal id the caller's (all in one
    pass, so an id put in is never read as another to replace)."""
    try:
        yield
    except InputError as error:
        message = ITEM_NAMED.sub(
            lambda found: f"item {public.get(int(found[1]), found[1])}", str(error)
        )
        raise InputError(message) from None


def _assigned_internal(
    request: Request, public_id: int, user: User, *, undecided: bool = False
) -> int:
    """The item's internal id, or 404 unless it is assigned to `user` (`undecided`: and held by
    them still), the same answer whether it does not exist or is not yours."""
    item_id = internal_id(request, public_id)
    if not assigned_to(request, item_id, user, undecided=undecided):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no review item {public_id} for you")
    return item_id


def _visible_task(request: Request, public_id: int, user: User) -> ReviewTask:
    """The item's task, or 404 (the same answer whether it does not exist or is not yours).
    An annotator sees an item only while they hold it undecided, gold or real alike: a real
    item's task is its live sample, which once final carries the labels others fixed it to,
    and a rule that told final items apart would tell gold (never final) from real work."""
    item_id = _assigned_internal(request, public_id, user, undecided=True)
    try:
        return queue_of(request).task(item_id)
    except InputError:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"no review item {public_id}"
        ) from None


@router.get(
    "/next",
    response_model=ReviewItemOut,
    responses={
        204: {"description": "Nothing left to review for you."},
        **errors((403, "Not an annotator (admins adjudicate, they are not handed items).")),
    },
)
def next_item(request: Request, user: User = Depends(require("annotator"))) -> Any:
    """Your open item, or a new one; 204 when the queue has nothing for you. Annotators only:
    an admin is refused (403), since their decisions would count as an annotator's."""
    refuse_admin(user, "take review items")
    queue = queue_of(request)
    task = queue.next_item(user.name)
    if task is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    # ReviewItemOut serialised once, as response_model would (it documents the answer): FastAPI
    # would otherwise validate the whole sample again before serialising it
    public = item_ids(request).public(task.item_id)
    out = item_out(task, public, labels=task.fix_labels)
    return Response(out.model_dump_json(), media_type="application/json")


@router.post(
    "/{item_id}/decision",
    response_model=Saved,
    responses=errors(
        (400, "Not your item, decided already, or bad labels."),
        (403, "Not an annotator (admins adjudicate instead)."),
    ),
)
def decide(
    decision: Decision,
    request: Request,
    item_id: int = ITEM_ID,
    user: User = Depends(require("annotator")),
) -> Any:
    """Record your accept / reject / fix, levels per criterion and comment on an item
    (annotators only: an admin adjudicates instead)."""
    refuse_admin(user, f"decide item {item_id} as an annotator")
    check_plain(decision.model_dump(), where="decision")
    internal = internal_id(request, item_id)
    with shown_as(item_id, internal):
        queue_of(request).decide(internal, user.name, decision)
    # Serialised here, as response_model would (it documents the answer): FastAPI validates a
    # sync endpoint's return value on a worker thread, a third hop for every decision
    return Response(Saved(item_id=item_id).model_dump_json(), media_type="application/json")


def image_type(path: Path) -> str:
    """The media type of an image file by its suffix (pre-labels' images are the user's JPEGs
    as often as PNGs); anything else is sent as bytes, never as a type a browser would run."""
    return IMAGE_TYPES.get(path.suffix.lower(), "application/octet-stream")


IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".gif": "image/gif",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}


@router.get(
    "/{item_id}/image",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}, "image/jpeg": {}}}, **NO_ITEM},
)
def item_image(
    request: Request, item_id: int = ITEM_ID, user: User = Depends(require("annotator"))
) -> Any:
    """The item's image, looked up by item id through the queue."""
    internal = _assigned_internal(request, item_id, user)
    queue = queue_of(request)
    try:
        with shown_as(item_id, internal):
            where = queue.item_image_path(internal)
            if isinstance(where, Path):
                if not where.is_file():
                    raise InputError(f"item {item_id}: its image file is missing")
                return FileResponse(where, media_type=image_type(where))
            data = queue.item_image_bytes(internal) if where is not None else None
    except (InputError, OSError) as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(error)) from None
    if data is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"item {item_id} has no image")
    return Response(data, media_type="image/png")


@router.get(
    "/{item_id}/masks.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **NO_ITEM},
)
def item_masks(
    request: Request, item_id: int = ITEM_ID, user: User = Depends(require("annotator"))
) -> Any:
    """The shown objects' masks as a translucent RGBA overlay, one colour per category."""
    task = _visible_task(request, item_id, user)
    if task.sample.spec.modality != "image":
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"item {item_id} is not an image")
    return Response(mask_overlay(task.sample), media_type="image/png")


def category_color(name: str) -> str:
    """The colour of a class: from a hash of its name that every process computes alike (not
    Python's hash(), salted per process), so it is the same on every task, page and overlay."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return PALETTE[int.from_bytes(digest[:8], "big") % len(PALETTE)]


def category_colors(names: Collection[str]) -> dict[str, str]:
    return {name: category_color(name) for name in sorted(set(names))}


def mask_overlay(sample: Sample) -> bytes:
    width, height = sample.width or 1, sample.height or 1
    overlay = np.zeros((height, width, 4), dtype=np.uint8)
    colors = category_colors([o.category for o in sample.objects])
    for obj in sample.objects:
        if not obj.mask or list(obj.mask.get("size", [])) != [height, width]:
            continue
        hex_color = colors[obj.category].lstrip("#")
        rgb = [int(hex_color[i : i + 2], 16) for i in (0, 2, 4)]
        overlay[decode_mask(obj.mask)] = [*rgb, 110]
    buffer = io.BytesIO()
    Image.fromarray(overlay, mode="RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


@router.get(
    "/{item_id}/decisions",
    response_model=list[DecisionOut],
    responses=errors(
        (403, "Decide the item first (annotators stay blind)."),
        (404, "No such item."),
    ),
)
def item_decisions(
    request: Request, item_id: int = ITEM_ID, user: User = Depends(require("annotator"))
) -> list[DecisionOut]:
    """Decisions on an item: admins see every one, any time; an annotator sees only their own,
    once made (reviews are blind: others' verdicts would bias the next annotator and, on a gold
    task, give its answer away)."""
    try:
        rows = queue_of(request).decisions_on(internal_id(request, item_id))
    except InputError:  # no such item, the one error of decisions_on
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no review item {item_id}") from None
    if not user.can("admin"):
        rows = [r for r in rows if r["annotator"] == user.name and r["role"] == "annotator"]
        if not rows:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"decide item {item_id} before reading your decision (reviews are blind)",
            )
        # a fix's objects were recorded with their stored attributes (an annotation_id, a
        # prelabel's score): they would tell the annotator where the sample came from, and so
        # whether it was gold (review/gold.py blind)
        rows = [{**r, "objects": _no_attributes(r["objects"])} for r in rows]
    return [DecisionOut.model_validate({**r, "item_id": item_id}) for r in rows]


def _no_attributes(objects: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    return None if objects is None else [{**o, "attributes": {}} for o in objects]


@router.get("/adjudication", response_model=list[int], summary="Items awaiting adjudication")
def awaiting_adjudication(request: Request, _user: User = Depends(require("admin"))) -> list[int]:
    """Items whose annotators disagreed, oldest first; read them with GET .../decisions."""
    return [item_ids(request).public(i) for i in queue_of(request).awaiting_adjudication()]


@router.post(
    "/{item_id}/adjudication",
    response_model=Saved,
    responses=errors(
        (
            400,
            "The item is neither awaiting adjudication nor blocked (open, and nobody the queue "
            "knows may take it), someone holds it undecided, the adjudicator decided it, or bad "
            "labels.",
        )
    ),
)
def adjudicate(
    decision: Decision,
    request: Request,
    item_id: int = ITEM_ID,
    user: User = Depends(require("admin")),
) -> Saved:
    """The final word on an item: one its annotators disagreed on, or an open item the blind
    rule keeps from everyone the queue knows (`blocked` in GET /api/review/stats), once nobody
    holds it undecided. By someone who did not decide it; it is final."""
    check_plain(decision.model_dump(), where="decision")
    internal = internal_id(request, item_id)
    with shown_as(item_id, internal):
        queue_of(request).adjudicate(internal, user.name, decision)
    return Saved(item_id=item_id)


def recent_decisions(store: Any, ids: ItemIds, limit: int = 20) -> list[DecisionOut]:
    """The latest decisions, newest first (the admin page lists them with their comments)."""
    with store.engine.connect() as connection:
        rows = latest_decisions(connection, limit)
    return [DecisionOut.model_validate({**r, "item_id": ids.public(r["item_id"])}) for r in rows]


@router.get("/stats", response_model=QueueStats, summary="Queue stats")
def queue_stats(request: Request, _user: User = Depends(require("admin"))) -> dict[str, Any]:
    """Queue depth, decisions, per annotator throughput and accuracy on gold tasks, and the
    open items the blind rule keeps from everyone (`blocked`: adjudicate them)."""
    return public_stats(queue_of(request).stats(), item_ids(request))


def public_stats(stats: dict[str, Any], ids: ItemIds) -> dict[str, Any]:
    """The queue's stats with its blocked items named by their opaque ids (the admin page's
    and GET /stats')."""
    blocked = [
        {**{k: v for k, v in each.items() if k != "item"}, "item_id": ids.public(each["item"])}
        for each in stats["blocked"]
    ]
    return {**stats, "blocked": blocked}


@router.get("/gold", response_model=list[GoldOut])
def gold_tasks(request: Request, _user: User = Depends(require("admin"))) -> list[GoldOut]:
    """The gold tasks and their known answers (admins only)."""
    with request.app.state.store.engine.connect() as connection:
        rows = connection.execute(
            select(
                gold_answers.c.item_id,
                gold_answers.c.expected,
                gold_answers.c.criterion,
                gold_answers.c.defect,
            ).order_by(gold_answers.c.item_id)
        ).all()
    ids = item_ids(request)
    return [GoldOut.model_validate({**r._mapping, "item_id": ids.public(r.item_id)}) for r in rows]


# What the agreement report computes with: the review extra, which `serve` does not bring
REVIEW_EXTRA_MODULES = ("sklearn", "statsmodels", "krippendorff")


def review_extra_missing(error: ModuleNotFoundError) -> str | None:
    """The message for an agreement report that cannot be computed because the review extra is
    not installed, or None when `error` is about another module."""
    module = (error.name or "").split(".")[0]
    if module not in REVIEW_EXTRA_MODULES:
        return None
    return (
        f"the agreement report needs the review extra ({module} is not installed): "
        "pip install 'synthgate[review]' where the server runs, and restart it"
    )


def agreement_or_missing(
    store: Any, *, exclude: Collection[str] = ()
) -> tuple[dict[str, Any] | None, str | None]:
    """The agreement report (`exclude`: annotators it leaves out of the agreement), or None and
    why when the review extra is missing (the admin page shows the queue's numbers without
    it)."""
    try:
        return agreement_report(store, exclude=exclude), None
    except ModuleNotFoundError as error:
        missing = review_extra_missing(error)
        if missing is None:
            raise
        return None, missing


@router.get(
    "/agreement",
    summary="Agreement report",
    responses=errors(
        (400, "An `exclude` name no annotator decision carries."),
        (503, "The review extra (scikit-learn, statsmodels, krippendorff) is missing."),
    ),
)
def agreement(
    request: Request,
    exclude: list[str] = Query(
        [],
        max_length=100,
        description="Annotators (a careless one) to leave out of the agreement between "
        "annotators; repeat it for more. The answer's `excluded` says how many decisions that "
        "drops.",
    ),
    _user: User = Depends(require("admin")),
) -> dict[str, Any]:
    """Inter-annotator agreement on verdicts (Cohen per pair, Fleiss, Krippendorff) and on each
    criterion's level, accuracy on gold per annotator, and validator-vs-human agreement with
    threshold suggestions (review/report.py). Needs the review extra where the server runs."""
    report, missing = agreement_or_missing(request.app.state.store, exclude=exclude)
    if report is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=missing)
    return report


# Last of the routes: GET /api/review/next, /stats, /gold, /adjudication and /agreement match
# before this one would try to read their names as item ids.
@router.get("/{item_id}", response_model=ReviewItemOut, responses=NO_ITEM)
def item(
    request: Request, item_id: int = ITEM_ID, user: User = Depends(require("annotator"))
) -> Any:
    """An item as its annotators were shown it: an annotator's item while they hold it
    undecided (then 404, gold and real alike); any item for an admin, e.g. one awaiting
    adjudication, beside its decisions (GET .../decisions), whose labels and text an
    adjudicator must see to judge it. Blind for an admin too (no sample id or provenance): an
    adjudicator judges the labels as the annotators did; which sample an item is, leads read
    from GET /stats' blocked items, the Label Studio export or the CLI."""
    task = _visible_task(request, item_id, user)
    out = item_out(task, item_id, labels=request.app.state.queue.fix_labels(task.item_id))
    return Response(out.model_dump_json(), media_type="application/json")
