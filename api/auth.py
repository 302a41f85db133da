"""Users, tokens, sessions and the role checks every API route and page goes through.

`synthgate users add NAME --role annotator|requester|admin` makes a random token, prints it once
and keeps only its SHA-256 hash (`Users.add`). A request proves who it is with
`Authorization: Bearer <token>` or, for the review page, the session cookie set by `POST /login`:
a random server-side session id (never the token), HttpOnly, SameSite=Strict, Secure over https,
revoked by `POST /logout`. `require(*roles)` is the FastAPI dependency that answers 401 without
a valid token or session and 403 for the wrong role; admins pass every role check. Requests
authenticated by the cookie that change state must also carry `X-CSRF-Token` (an HMAC of the
session the page embeds), so another site cannot make the browser act for the user.

Tokens never travel in URLs: `NoSecretsInUrl` answers 400 to a query that carries one (a
parameter named like a credential, or a value shaped like a token), and `RedactSecrets` keeps
them out of the access log should one be sent anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from synthgate.api.errors import send_error
from synthgate.storage.users import User, Users

SESSION_COOKIE = "synthgate_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(user: User) -> str:
    """The value a page sends back in X-CSRF-Token; only someone who can read the page has it.
    Bound to the session, so it dies with it."""
    key = user.session or user.token_hash
    return hmac.new(key.encode(), b"synthgate-csrf", hashlib.sha256).hexdigest()


# auto_error=False: a missing header is our 401 with our message, and both schemes show in OpenAPI.
bearer_scheme = HTTPBearer(auto_error=False, description="A token from `synthgate users add`.")
cookie_scheme = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="Set by POST /login (review page)."
)


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": "Bearer"}
    )


def current_user(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
    cookie: str | None = Depends(cookie_scheme),
) -> User:
    """The caller, from the bearer token or the session cookie; 401 when neither is valid."""
    users_table: Users = request.app.state.users
    if bearer is not None:
        user = users_table.authenticate(bearer.credentials)
        if user is None:
            raise _unauthorized("invalid token; ask an admin for one (synthgate users add)")
        return user
    if cookie:
        user = users_table.session_user(cookie)
        if user is None:
            raise _unauthorized("session expired or revoked; log in again at /login")
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent, csrf_token(user)):
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN,
                    detail=f"missing or wrong {CSRF_HEADER} header for a cookie session",
                )
        return user
    raise _unauthorized("missing token; send 'Authorization: Bearer <token>'")


def require(*roles: str) -> Callable[..., User]:
    """Dependency: the caller, if their role is one of `roles` (admins pass always), else 403.

    One dependency, not one on `current_user`: FastAPI runs each sync dependency on a worker
    thread, and the hop costs more than the check itself on every authenticated request."""

    def check(
        request: Request,
        bearer: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
        cookie: str | None = Depends(cookie_scheme),
    ) -> User:
        user = current_user(request, bearer, cookie)
        if not user.can(*roles):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"{user.role} {user.name!r} may not do this; it needs role "
                + " or ".join(sorted({*roles, "admin"})),
            )
        return user

    return check


def optional_user(request: Request) -> User | None:
    """The user of a page request's session cookie, or None (pages redirect to /login)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    return request.app.state.users.session_user(session_id) if session_id else None


# Query parameters named like credentials, and values shaped like our tokens and session ids
# (secrets.token_urlsafe(32): 43 URL-safe characters) under any name.
SECRET_PARAMS = frozenset(
    {
        "token",
        "access_token",
        "api_key",
        "apikey",
        "auth",
        "authorization",
        "bearer",
        "password",
        "session",
        "session_id",
        "sessionid",
        SESSION_COOKIE,
    }
)
TOKEN_SHAPED = re.compile(r"[A-Za-z0-9_-]{40,}")


def secret_in_query(query: str) -> str | None:
    """The name of the first query parameter that carries a credential, or None."""
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name.lower() in SECRET_PARAMS or TOKEN_SHAPED.fullmatch(value):
            return name
    return None


class NoSecretsInUrl:
    """ASGI middleware: 400 for a request whose query carries a token or session id. URLs end
    up in logs, histories and Referer headers; credentials go in the Authorization header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope.get("query_string", b"").decode("latin-1")
        name = secret_in_query(query) if scope["type"] == "http" and query else None
        if name is None:
            await self.app(scope, receive, send)
            return
        await send_error(
            send,
            400,
            f"query parameter {name!r} carries a credential; tokens never go in a URL: send "
            "'Authorization: Bearer <token>' (and get a new token: this one may be in some log "
            "now)",
        )


def redact_url(url: str) -> str:
    """`url` with credential-like query values and token-shaped parts replaced by ***."""
    path, _, query = url.partition("?")
    path = TOKEN_SHAPED.sub("***", path)
    if not query:
        return path
    parts = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        secret = name.lower() in SECRET_PARAMS or TOKEN_SHAPED.search(value)
        parts.append(f"{name}={'***' if secret else value}")
    return f"{path}?{'&'.join(parts)}"


class RedactSecrets(logging.Filter):
    """A logging filter for uvicorn's access log: the request line's URL goes through
    `redact_url`, so a token sent in a URL by mistake is never written to a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url(arg) if isinstance(arg, str) and ("?" in arg or "/" in arg) else arg
                for arg in record.args
            )
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's logging config with `RedactSecrets` on its access log."""
    from uvicorn.config import LOGGING_CONFIG  # uvicorn: only where the service runs

    config = json.loads(json.dumps(LOGGING_CONFIG))  # a deep copy of plain data
    config.setdefault("filters", {})["redact_secrets"] = {"()": RedactSecrets}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_secrets")
    return config
