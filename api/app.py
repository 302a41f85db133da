"""The FastAPI app: `create_app(db_url=..., runs_dir=...)` wires the store, the review queue,
users, the routes (batches, review, pages) and the guards every request passes.

Guards: bodies over `max_body_bytes` get 413 before they are read in full; bad input
(`InputError`, malformed JSON, a body that does not fit the schema) gets a 4xx whose `detail` is
one readable sentence; every response carries headers that stop the page from running anything
but our own static script (Content-Security-Policy) or being framed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from synthgate import __version__
from synthgate.api import API_DIR, batches, distributed, pages, reopen, review, set_k
from synthgate.api.auth import NoSecretsInUrl
from synthgate.api.batch_runner import BatchRunner
from synthgate.api.errors import AUTH_ERRORS, send_error
from synthgate.api.ids import ItemIds
from synthgate.api.inputs import shown_paths
from synthgate.config import RequesterLimits
from synthgate.errors import InputError, lone_surrogate, printable
from synthgate.files import too_long
from synthgate.review.queue import ReviewQueue
from synthgate.storage.database import shown_url
from synthgate.storage.store import Store
from synthgate.storage.users import Users

if TYPE_CHECKING:
    from synthgate.workers.app import WorkerSettings

# Batches run at once in this process: enough that a requester's batch starts while others
# run (the fair share of one requester is half of them), few enough for a small machine.
BATCH_THREADS = 4
BODY_NOT_PARSED = "There was an error parsing the body"  # FastAPI's 400 for any such cause
MAX_BODY_BYTES = 1 << 20  # 1 MiB: a batch config or a decision with fixed labels is far smaller

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
        b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


class BodyLimit:
    """ASGI middleware reading a request's body whole before a route does: 413 for bodies over
    `limit` bytes, by Content-Length or as they stream; 400 for a JSON body that gives a key
    twice in one object (`twice_given`)."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._too_large(send)
            return
        # Read the whole body first (it is at most `limit` bytes), so an oversized stream is
        # refused here rather than half-parsed by a route that would answer a vaguer 400.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.limit:
                await self._too_large(send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        kind = headers.get(b"content-type", b"").lower()  # media types ignore case
        twice = twice_given(body) if b"json" in kind else None
        if twice is not None:
            await send_error(send, status.HTTP_400_BAD_REQUEST, twice)
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        await send_error(send, 413, f"request body too large: the limit is {self.limit} bytes")


def twice_given(body: bytes) -> str | None:
    """What a JSON body gives twice: a key in one object (JSON parsers keep the last value and
    drop the first without a word, so `{"name": "a", ..., "name": "b"}` would post a batch
    named b). None for a body without one, or one that is no JSON (the route says why)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        found = dict(items)
        if len(found) < len(items):
            seen: set[str] = set()
            for key, _ in items:
                if key in seen:
                    raise _KeyTwice(key)
                seen.add(key)
        return found

    try:
        json.loads(body, object_pairs_hook=pairs)
    except _KeyTwice as twice:
        return (
            f"body: key {twice.key!r} is given twice in one object; keep one (JSON keeps no "
            "second value: the last one would win)"
        )
    except (ValueError, RecursionError):
        return None
    return None


class _KeyTwice(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


class SecurityHeaders:
    """ASGI middleware adding SECURITY_HEADERS to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        # The /docs and /redoc pages start their UI with an inline script (its files are the
        # server's own: fastapi-offline) and show no user data: they keep every header but the
        # content security policy.
        docs = scope.get("path", "").startswith(("/docs", "/redoc"))
        headers = SECURITY_HEADERS[1:] if docs else SECURITY_HEADERS

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, with_headers)


def describe_validation_error(error: RequestValidationError) -> str:
    """One readable sentence per problem: where it is, what is wrong, what was sent."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item.get("loc", ()))
        if item.get("type") == "json_invalid":
            # FastAPI's loc is ("body", character): "body.0" read as a field path
            loc = item.get("loc", ())
            at = f" at character {loc[1]}" if len(loc) == 2 and isinstance(loc[1], int) else ""
            why = item.get("ctx", {}).get("error", "")
            lines.append(f"body: malformed JSON{at} ({why}); send a JSON object")
        elif item.get("type") == "missing":
            lines.append(f"{where}: required")
        elif item.get("type") == "extra_forbidden":
            lines.append(f"{where}: unknown field; remove it or check its spelling")
        elif where == "body" and isinstance(item.get("input"), bytes):
            # FastAPI reads a body as JSON only when its Content-Type says JSON (curl -d sends
            # application/x-www-form-urlencoded unless told otherwise)
            lines.append(
                "body: not read as JSON: send a JSON object with the header "
                "'Content-Type: application/json'"
            )
        else:
            lines.append(f"{where}: {item.get('msg')} (got {_short(item.get('input'))})")
    return "; ".join(lines) or "invalid request"


def unparsable_body(cause: BaseException | None) -> str | None:
    """What is wrong with a body FastAPI could not parse as JSON for a reason other than bad
    syntax (it answers those BODY_NOT_PARSED); None for another cause."""
    if isinstance(cause, UnicodeDecodeError):
        return f"body: not UTF-8 text ({cause.reason} at byte {cause.start}); send JSON as UTF-8"
    if isinstance(cause, RecursionError):
        return "body: JSON nested too deep to read; no batch config or decision nests that deep"
    if isinstance(cause, ValueError):  # an integer of more digits than Python reads
        return f"body: not valid JSON ({too_long(cause)})"
    return None


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _routes(routes: list[Any]) -> list[Route]:
    """Every endpoint route, also inside included routers (FastAPI keeps those as a wrapper
    around the original router in some versions, as the router's own routes in others)."""
    found: list[Route] = []
    for route in routes:
        if isinstance(route, Route):
            found.append(route)
        elif getattr(route, "original_router", None) is not None:
            found.extend(_routes(route.original_router.routes))
    return found


def create_app(
    *,
    db_url: str,
    runs_dir: Path | str = Path("runs"),
    annotators_per_item: int = 2,
    gold_rate: float = 0.1,
    max_body_bytes: int = MAX_BODY_BYTES,
    data_root: Path | str | None = None,
    max_samples: int | None = None,
    limits: RequesterLimits | None = None,
    batch_threads: int = BATCH_THREADS,
    workers: WorkerSettings | None = None,
    review_seed: int | None = None,
) -> FastAPI:
    """The synthgate web service over the database at `db_url`; batches run into `runs_dir`.

    Posted configs may read files only inside the shipped configs folder or `data_root`, and
    stay within `limits` per requester (samples per batch, or `max_samples` when given; pixels
    and objects per image; open batches; samples per hour). Batches run in this process on
    `batch_threads` threads shared fairly between requesters, or, with `workers` (broker,
    database and blob store), on `synthgate worker` processes: then `db_url` must be the
    database the workers write to. `review_seed` fixes the review queue's draws (tests);
    without it, who meets gold when is drawn from a secret of the database.
    """
    limits = limits or RequesterLimits()
    if max_samples is not None:
        limits = limits.model_copy(update={"samples_per_batch": max_samples})
    if workers is not None and workers.db_url != db_url:
        raise InputError(
            f"the service's database ({shown_url(db_url)}) must be the workers' "
            f"({shown_url(workers.db_url or '')}): they write the samples the service reports"
        )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        runner.shutdown()
        store.close()

    # FastAPI's /docs and /redoc load Swagger UI and ReDoc from a CDN (and ReDoc its fonts from
    # Google): a server that reaches nothing outside showed blank pages. fastapi-offline serves
    # the same pages with their scripts and styles from the package, under /static-offline-docs.
    app = FastAPIOffline(
        lifespan=lifespan,
        title="synthgate",
        version=__version__,
        description=(
            "Request synthetic batches, review doubtful samples, watch agreement. "
            "Authenticate with `Authorization: Bearer <token>` (tokens from `synthgate users add`)."
        ),
    )
    store = Store(db_url)
    queue = ReviewQueue(
        store, annotators_per_item=annotators_per_item, gold_rate=gold_rate, seed=review_seed
    )
    if workers is None:
        runner = BatchRunner(store, queue, Path(runs_dir), threads=batch_threads, limits=limits)
    else:
        runner = distributed.worker_runner(
            store, queue, Path(runs_dir), settings=workers, limits=limits
        )
    app.state.store = store
    app.state.users = Users(store.engine)
    app.state.item_ids = ItemIds(app.state.users.secret("review-item-ids"))
    app.state.queue = queue
    app.state.runs_dir = Path(runs_dir)
    app.state.runner = runner
    app.state.data_root = Path(data_root) if data_root is not None else None

    # Messages may quote what a request sent: `printable` keeps a lone surrogate in it (valid
    # JSON, no character) from failing the response's UTF-8 encoding.
    @app.exception_handler(InputError)
    async def input_error(request: Request, error: InputError) -> JSONResponse:
        state = request.app.state
        shown = shown_paths(str(error), data_root=state.data_root, runs_dir=state.runs_dir)
        return JSONResponse({"detail": printable(shown)}, status_code=status.HTTP_400_BAD_REQUEST)

    @app.exception_handler(UnicodeEncodeError)
    async def unencodable(_request: Request, error: UnicodeEncodeError) -> JSONResponse:
        message = lone_surrogate(error)  # one that reached the database past its input's checks
        if message is None:
            raise error
        return JSONResponse({"detail": message}, status_code=status.HTTP_400_BAD_REQUEST)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if isinstance(error.detail, str):
            error.detail = printable(error.detail)
        if error.detail == BODY_NOT_PARSED:
            error.detail = unparsable_body(error.__cause__) or error.detail
        if error.status_code != status.HTTP_405_METHOD_NOT_ALLOWED:
            return await http_exception_handler(request, error)
        # Starlette names the methods of the one route it tried; a path served by several
        # routes (GET and POST /api/batches) allows all of theirs
        allowed = sorted(
            {
                method
                for route in _routes(app.router.routes)
                if route.matches(request.scope)[0] != Match.NONE
                for method in route.methods or ()
            }
        )
        return JSONResponse(
            {"detail": str(error.detail)},
            status_code=error.status_code,
            headers={**(error.headers or {}), "Allow": ", ".join(allowed)},
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"detail": printable(describe_validation_error(error))},
            status_code=422,
        )

    app.include_router(batches.router, responses=AUTH_ERRORS)
    app.include_router(review.router, responses=AUTH_ERRORS)
    app.include_router(set_k.router, responses=AUTH_ERRORS)
    app.include_router(reopen.router, responses=AUTH_ERRORS)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=API_DIR / "static"), name="static")
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    app.add_middleware(NoSecretsInUrl)  # outermost: a token in a URL goes no further
    return app
