"""Users, tokens and the role checks every API route and page goes through.

`synthgate users add NAME --role annotator|requester|admin` makes a random token, prints it once
and keeps only its SHA-256 hash (`Users.add`). A request proves who it is with
`Authorization: Bearer <token>` or, for the review page, the HttpOnly session cookie set by
`POST /login`. `require(*roles)` is the FastAPI dependency that answers 401 without a valid
token and 403 for the wrong role; admins pass every role check. Requests authenticated by the
cookie that change state must also carry `X-CSRF-Token` (an HMAC of the token the page embeds),
so another site cannot make the browser act for the user.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from synthgate.storage.users import User, Users

SESSION_COOKIE = "synthgate_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(user: User) -> str:
    """The value a page sends back in X-CSRF-Token; only someone who can read the page has it."""
    return hmac.new(user.token_hash.encode(), b"synthgate-csrf", hashlib.sha256).hexdigest()


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
        user = users_table.authenticate(cookie)
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


def require(*roles: str) -> Callable[[User], User]:
    """Dependency: the caller, if their role is one of `roles` (admins pass always), else 403."""

    def check(user: User = Depends(current_user)) -> User:
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
    token = request.cookies.get(SESSION_COOKIE)
    return request.app.state.users.authenticate(token) if token else None
