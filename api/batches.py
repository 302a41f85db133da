"""Batch routes for requesters: `POST /api/batches` runs a batch config, `GET /api/batches` lists
the caller's batches, `GET /api/batches/{id}` tells how one is going, `GET /api/batches/{id}/coco`
and `GET /api/batches/{id}/jsonl` hand back its COCO file (images) and its JSONL file (texts).

A requester sees only the batches they posted: the same config is the same batch, so posting
records the caller as one of its requesters (`store.requesters.add`), and any other requester gets
the 404 of a batch that does not exist. Admins see every batch.

Accepted configs run on api/batch_runner.py's `BatchRunner`. `run_folder` finds the folder of
a batch again, for its COCO and JSONL files and for the images the review page shows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response, status
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from synthgate.api.auth import User, require
from synthgate.api.batch_runner import BatchRunner, OverLimit
from synthgate.api.errors import MAX_OFFSET, errors
from synthgate.api.inputs import SOURCE, check_limits, confine_paths, shown_paths
from synthgate.config import config_model, parse_config
from synthgate.errors import InputError
from synthgate.files import check_nesting
from synthgate.storage.store import Store
from synthgate.validators.validate import check_config_rubrics

router = APIRouter(prefix="/api/batches", tags=["batches"])


SHOWN_FAILURES = 20
JSONL_TYPE = "application/x-ndjson"  # the type JSON Lines is served as most widely


class FailedSample(BaseModel):
    """A sample a worker could not make."""

    modality: str
    index: int
    reason: str | None = None


class BatchOut(BaseModel):
    """A batch as the API reports it."""

    id: str
    name: str
    status: str = Field(description="running | done | failed | cancelled")
    message: str | None = None
    counts: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="{modality: {status: samples}}"
    )
    coco_url: str | None = Field(
        None,
        description="Its images as COCO, once finished (GET /api/batches/{id}/coco); each "
        "image's PNG at GET /api/batches/{id}/images/<name>.png, the path its file_name gives "
        "under the batch.",
    )
    jsonl_url: str | None = Field(
        None, description="Its texts as JSONL, once finished (GET /api/batches/{id}/jsonl)."
    )
    failures: list[FailedSample] = Field(
        default_factory=list,
        description=f"Samples that could not be made, with why (the first {SHOWN_FAILURES}; "
        "GET of one batch only). Posting the config again makes them anew.",
    )


def run_folder(runs_dir: Path, batch: dict[str, Any]) -> Path | None:
    """The run folder of a batch: `<runs_dir>/<id>` (API runs) or `<runs_dir>/<name>` (CLI runs),
    only if its manifest names this batch, so one batch never serves another's files."""
    for candidate in (runs_dir / batch["id"], runs_dir / batch["name"]):
        manifest = candidate / "manifest.json"
        try:
            if json.loads(manifest.read_text(encoding="utf-8")).get("batch_id") == batch["id"]:
                return candidate
        except (OSError, ValueError):
            continue
    return None


def _batch_out(
    batch: dict[str, Any], counts: dict[str, dict[str, int]], request: Request | None = None
) -> BatchOut:
    """A batch row and its sample counts ({modality: {status: n}}) as the API reports them
    (its message without the server's folders, given the request)."""
    message = batch["message"]
    if request is not None and message:
        state = request.app.state
        message = shown_paths(message, data_root=state.data_root, runs_dir=state.runs_dir)
    batch_id = batch["id"]
    # A failed batch has its files too when it failed only some samples (worker mode); a
    # cancelled one never has them (its run folder is not published), so no link is offered
    # that would answer 409.
    finished = batch["status"] in ("done", "failed")

    def link(modality: str, route: str) -> str | None:
        made = any(s not in ("failed", "pending") for s in counts.get(modality, {}))
        return f"/api/batches/{batch_id}/{route}" if finished and made else None

    return BatchOut(
        id=batch_id,
        name=batch["name"],
        status=batch["status"],
        message=message,
        counts=counts,
        coco_url=link("image", "coco"),
        jsonl_url=link("text", "jsonl"),
    )


def _visible_batch(request: Request, batch_id: str, user: User) -> BatchOut:
    """The batch, if `user` asked for it or is an admin; else the same 404 as for no batch, so
    nobody learns which configs others ran."""
    store: Store = request.app.state.store
    batch = store.get_batch(batch_id)
    if batch is None or (
        user.role != "admin" and user.name not in store.requesters.of_batch(batch_id)
    ):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no batch {batch_id!r}")
    return _batch_out(batch, store.counts_of([batch_id])[batch_id], request)


def _finished_file(request: Request, batch: BatchOut, file_name: str, what: str) -> Path:
    """The file `file_name` of a finished batch's run folder: 409 while the batch runs or when
    it stopped before writing its `what`, 404 when it made none."""
    if batch.status == "running":
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"batch {batch.id} is running; try when done"
        )
    # A batch that failed after writing its run folder (some samples failed) still has one.
    folder = run_folder(request.app.state.runs_dir, {"id": batch.id, "name": batch.name})
    if folder is None or not (folder / file_name).is_file():
        if batch.status in ("failed", "cancelled"):
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail=f"batch {batch.id} stopped before writing its {what}: {batch.message}",
            )
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"batch {batch.id} has no {what}")
    return folder / file_name


NO_BATCH = (404, "No batch, or not one the caller posted.")
BAD_BATCH_ID = (422, "Not a batch id.")
BATCH_ID = PathParam(
    ...,
    max_length=200,
    pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
    description="The id POST /api/batches answered with.",
)

IMAGE_NAME = PathParam(
    ...,
    max_length=200,
    pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.png$",
    description="An image of the batch, as its coco.json names it: images/<name>.",
)


@router.post(
    "",
    response_model=BatchOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"description": "The caller posted this config before: the batch as it stands."},
        **errors(
            (400, "The config is invalid; `detail` says where and how."),
            (
                409,
                "The caller posted this config before with another rubric, or its rubric's "
                "file changed since the batch was judged: a rubric is not part of a batch's "
                "id, so the batch keeps the verdicts of the rubric it was made with; give the "
                "config another name to judge with this one.",
            ),
            (413, "The body is over the server's size limit."),
            (
                422,
                "The body is not a JSON object, or the config asks for more than the "
                "server allows one batch (samples, pixels or objects per image).",
            ),
            (429, "The caller is over a rate limit: open batches or samples per hour."),
            (503, "The server is stopping."),
        ),
    },
)
def create_batch(
    request: Request,
    response: Response,
    config: dict[str, Any] = Body(
        ...,
        description="A batch config, as in configs/*.yaml, as JSON.",
        examples=[
            {
                "name": "shapes",
                "seed": 1,
                "categories": ["circle", "square"],
                "image": {"generator": "procedural", "count": 10, "size": [128, 128]},
            }
        ],
    ),
    user: User = Depends(require("requester")),
) -> BatchOut:
    """Run a batch config in the background; poll `GET /api/batches/{id}` for its status.

    Batches are the caller's own: another requester posting the same config gets another batch
    (the service sets the config's `requester`). Posting a batch of yours again returns it as it
    stands (200), or resumes it if it failed, was cancelled or was left running by a server that
    stopped (202); with another rubric, or its rubric's file edited since, it is refused (409),
    as the batch keeps the verdicts of the rubric it was made with. Limits per requester (422
    or 429 naming the limit): samples per batch, pixels and objects per image, open batches,
    samples per hour."""
    check_nesting(config, where=f"{SOURCE}: body")
    # its keys and types first: a path field its generator has not, or one that is no path,
    # is named as such, not as a path outside the roots
    config_model(config, source=SOURCE)
    if "requester" in config:
        raise InputError(
            field="requester",
            problem="is set by the service from who posts the config",
            fix="leave it out",
        )
    runner: BatchRunner = request.app.state.runner
    config = confine_paths(config, data_root=request.app.state.data_root)
    parsed = parse_config({**config, "requester": user.requester_key}, source=SOURCE)
    check_config_rubrics(parsed, source=SOURCE)
    check_limits(parsed, runner.limits)
    try:
        # limits and fair shares per account: a user added again under a removed user's name
        # is another account, and must not be held to the old one's batches
        batch_id, started = runner.submit(parsed, user.requester_key)
    except OverLimit as over:
        headers = {"Retry-After": str(over.retry_after)} if over.retry_after else None
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, detail=str(over), headers=headers
        ) from None
    request.app.state.store.requesters.add(batch_id, user.name)
    if not started:
        response.status_code = status.HTTP_200_OK
    return _visible_batch(request, batch_id, user)


@router.get(
    "",
    response_model=list[BatchOut],
    responses=errors(
        (403, "`all=true` from a caller who is not an admin."),
        (422, "`limit` outside 1..500 or `offset` outside 0..1000000."),
    ),
)
def list_batches(
    request: Request,
    limit: int = Query(50, ge=1, le=500, description="Batches per page."),
    offset: int = Query(0, ge=0, le=MAX_OFFSET, description="Batches to skip."),
    every: bool = Query(
        False, alias="all", description="Every batch, not only the caller's (admins only)."
    ),
    user: User = Depends(require("requester")),
) -> list[BatchOut]:
    """The batches the caller posted, the latest posted first (posting a batch again moves it
    up). Admins get their own too; with `all=true` they get every batch, by the latest time
    anyone posted it, and last the batches nobody posted through the API (made before
    requesters were recorded). `all=true` from anyone else is 403."""
    if every and user.role != "admin":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"{user.role} {user.name!r} may not list every batch; leave out all=true",
        )
    store: Store = request.app.state.store
    rows = store.requesters.batches_of(None if every else user.name, limit=limit, offset=offset)
    counts = store.counts_of([row["id"] for row in rows])  # one query for the page
    return [_batch_out(row, counts[row["id"]], request) for row in rows]


@router.get(
    "/{batch_id}",
    response_model=BatchOut,
    responses=errors(
        NO_BATCH,
        BAD_BATCH_ID,
    ),
)
def get_batch(
    request: Request, batch_id: str = BATCH_ID, user: User = Depends(require("requester"))
) -> BatchOut:
    """A batch's status, its sample counts by modality and status, and the samples that could
    not be made, with why (the caller's batches only; admins see every batch)."""
    batch = _visible_batch(request, batch_id, user)
    failed = request.app.state.store.failures(batch_id, limit=SHOWN_FAILURES)
    return batch.model_copy(update={"failures": [FailedSample(**f) for f in failed]})


@router.delete(
    "/{batch_id}",
    response_model=BatchOut,
    responses=errors(
        NO_BATCH,
        (409, "The batch is not queued or running (done, failed or cancelled already)."),
        BAD_BATCH_ID,
    ),
)
def cancel_batch(
    request: Request, batch_id: str = BATCH_ID, user: User = Depends(require("requester"))
) -> BatchOut:
    """Cancel a batch: dropped if it waits for a thread, stopped at its next chunk if it runs.
    What it made so far is kept; posting the config again resumes it."""
    batch = _visible_batch(request, batch_id, user)
    if not request.app.state.runner.cancel(batch_id, user.name):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"batch {batch_id} is {batch.status}, not queued or running: nothing to cancel",
        )
    return _visible_batch(request, batch_id, user)


@router.get(
    "/{batch_id}/coco",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/json": {}}, "description": "The batch's coco.json."},
        **errors(
            (404, "No batch, not one the caller posted, or it made no images."),
            (409, "The batch is still running, or stopped before writing images."),
            BAD_BATCH_ID,
        ),
    },
)
def get_batch_coco(
    request: Request, batch_id: str = BATCH_ID, user: User = Depends(require("requester"))
) -> FileResponse:
    """Every image sample of the batch as COCO, with status, provenance and report per image
    (the caller's batches only; admins see every batch)."""
    batch = _visible_batch(request, batch_id, user)
    coco = _finished_file(request, batch, "coco.json", "images")
    return FileResponse(coco, media_type="application/json", filename=f"{batch_id}.coco.json")


@router.get(
    "/{batch_id}/images/{name}",
    response_class=FileResponse,
    responses={
        200: {"content": {"image/png": {}}, "description": "The image's PNG."},
        **errors(
            (404, "No batch, not one the caller posted, or no such image of it."),
            (409, "The batch is still running, or stopped before writing images."),
            (422, "Not a batch id, or not an image name (<name>.png)."),
        ),
    },
)
def get_batch_image(
    request: Request,
    batch_id: str = BATCH_ID,
    name: str = IMAGE_NAME,
    user: User = Depends(require("requester")),
) -> FileResponse:
    """One image of the batch, at the path its coco.json's `file_name` gives under the batch
    (`images/<name>.png`): a requester with no access to the server's disk gets the pixels
    beside the labels (the caller's batches only; admins see every batch)."""
    batch = _visible_batch(request, batch_id, user)
    image = _finished_file(request, batch, "coco.json", "images").parent / "images" / name
    if image.is_symlink() or not image.is_file():
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"batch {batch_id} has no image {name}"
        )
    return FileResponse(image, media_type="image/png")


@router.get(
    "/{batch_id}/jsonl",
    response_class=FileResponse,
    responses={
        200: {
            "content": {JSONL_TYPE: {}},
            "description": "The batch's text.jsonl: one JSON object per line.",
        },
        **errors(
            (404, "No batch, not one the caller posted, or it made no texts."),
            (409, "The batch is still running, or stopped before writing texts."),
            BAD_BATCH_ID,
        ),
    },
)
def get_batch_jsonl(
    request: Request, batch_id: str = BATCH_ID, user: User = Depends(require("requester"))
) -> FileResponse:
    """Every text sample of the batch as JSONL, one row per sample with its spans or label,
    status, provenance and report (the caller's batches only; admins see every batch)."""
    batch = _visible_batch(request, batch_id, user)
    texts = _finished_file(request, batch, "text.jsonl", "texts")
    return FileResponse(texts, media_type=JSONL_TYPE, filename=f"{batch_id}.text.jsonl")
