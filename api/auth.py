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
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from synthgate.errors import InputError
from synthgate.storage import requesters

Role = Literal["annotator", "requester", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
SESSION_COOKIE = "synthgate_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Kept apart from store.metadata: the API's tables are created by the API, not by every Store.
metadata = MetaData()
users = Table(
    "api_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False, server_default=func.now()),
)


@dataclass(frozen=True)
class User:
    name: str
    role: str
    token_hash: str

    def can(self, *roles: str) -> bool:
        return self.role == "admin" or self.role in roles


def hash_token(token: str) -> str:
    """SHA-256 of a token: tokens are 256 random bits, so no salt or slow hash is needed."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_token(user: User) -> str:
    """The value a page sends back in X-CSRF-Token; only someone who can read the page has it."""
    return hmac.new(user.token_hash.encode(), b"synthgate-csrf", hashlib.sha256).hexdigest()


class Users:
    """The user table: names, roles and token hashes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine)
        # `remove` deletes the user's requester rows; a Store on this engine has made the table
        # already, this covers an engine without one.
        requesters.metadata.create_all(engine)

    def add(self, name: str, role: str) -> str:
        """Create a user and return their token; it is shown once and never stored."""
        name = name.strip()
        if not name or len(name) > 100:
            raise InputError(f"user name {name!r}: give 1 to 100 characters")
        if role not in ROLES:
            raise InputError(f"--role {role!r}: choose one of {', '.join(ROLES)}")
        token = secrets.token_urlsafe(32)
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    users.insert().values(name=name, role=role, token_hash=hash_token(token))
                )
                # Rows under a free name are an earlier account's, removed before `remove`
                # forgot them: the new account starts with no batches.
                requesters.forget_user(connection, name)
        except IntegrityError:
            raise InputError(
                f"user {name!r} exists already; pick another name or remove it first"
            ) from None
        return token

    def remove(self, name: str) -> bool:
        """Delete the user and, in the same transaction, their claim on batches: ownership is
        by name, and a user added later under this name must not see the old one's batches."""
        with self.engine.begin() as connection:
            removed = connection.execute(users.delete().where(users.c.name == name)).rowcount > 0
            if removed:
                requesters.forget_user(connection, name)
            return removed

    def list(self) -> list[User]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(users).order_by(users.c.name)).all()
        return [User(name=r.name, role=r.role, token_hash=r.token_hash) for r in rows]

    def authenticate(self, token: str) -> User | None:
        """The user a token belongs to, or None."""
        if not token or len(token) > 200:
            return None
        digest = hash_token(token)
        with self.engine.connect() as connection:
            row = connection.execute(select(users).where(users.c.token_hash == digest)).first()
        # The lookup is by hash already; compare_digest keeps the final check constant-time.
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            return None
        return User(name=row.name, role=row.role, token_hash=row.token_hash)


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
