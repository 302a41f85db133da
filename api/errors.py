"""What every error response of the API looks like, and how routes document theirs.

Every 4xx and 5xx body is `ErrorOut`: `{"detail": "<one readable paragraph>"}`: what is wrong,
where (the field, parameter or limit by name) and how to fix it. `errors((code, description),
...)` builds a route's `responses=` entries with that schema, so the OpenAPI document declares
exactly the shape the service sends (schemathesis checks both agree: bench/bench_schemathesis.py).
`AUTH_ERRORS` are the answers every authenticated route can give.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field
from starlette.types import Send

# Pages of lists and item ids are far below this; a bound keeps every integer parameter inside
# what SQLite and PostgreSQL store (64-bit), so a huge number is a 422, never a database error.
MAX_OFFSET = 1_000_000


class ErrorOut(BaseModel):
    """An error: what is wrong, where, and how to fix it."""

    detail: str = Field(description="One readable paragraph naming the field or limit.")


async def send_error(send: Send, status: int, detail: str) -> None:
    """An `ErrorOut` answer sent straight from ASGI middleware (outside FastAPI's handlers)."""
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def errors(*entries: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for error codes, each with the `ErrorOut` schema."""
    return {code: {"model": ErrorOut, "description": text} for code, text in entries}


AUTH_ERRORS = errors(
    (
        400,
        "Bad input (`detail` names it), or a token in the URL: send tokens in the "
        "Authorization header only.",
    ),
    (401, "No valid token or session: send `Authorization: Bearer <token>`, or log in."),
    (403, "The caller's role may not do this (or a cookie session sent no CSRF header)."),
    (422, "A parameter or the body does not fit the schema; `detail` names it."),
)
