"""Who may use the service: user names, roles and the SHA-256 hashes of their tokens; the review
page's sessions; the service's own secrets.

`Users(engine).add(name, role)` makes a random token, returns it once and keeps only its hash;
`authenticate(token)` finds the user a token belongs to; `remove(name)` deletes the user and, in
the same transaction, their claim on batches (storage/requesters.py) and their sessions:
ownership is by name, and a user added later under the same name must not inherit the old one's
batches or logins. It records the removal too (api_removed_users, until `add` under the name
clears it): a review queue's team leaves out those removed, not those who were never users
(review/stats.py `queue_team`). `open_session(user)` makes a random session id for the login
cookie (only its hash is kept, with an expiry), `session_user(id)` finds its user,
`close_session(id)` revokes it (logout). `secret(name)` is a random key made once per database
and kept in it. The API's role checks (api/auth.py) build on it; `synthgate users` manages it
without the web extras.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Literal, get_args

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from synthgate.errors import InputError
from synthgate.storage.prepared import Prepared
from synthgate.storage.requesters import forget_user
from synthgate.storage.tables import (
    assignments,
    insert_ignore,
    removed_users,
    service_secrets,
    sessions,
    users,
)

Role = Literal["annotator", "requester", "admin"]
# Every request of the service runs one: built once and run on the driver's cursor
# (storage/prepared.py), since building a statement, or SQLAlchemy's per-execution work, costs
# more than the index lookup it does.
WHO = (users.c.name, users.c.role, users.c.token_hash)
BY_TOKEN_HASH = Prepared(select(*WHO).where(users.c.token_hash == bindparam("digest")))
BY_SESSION_HASH = Prepared(
    select(*WHO, sessions.c.expires_at)
    .join(sessions, sessions.c.user == users.c.name)
    .where(sessions.c.id_hash == bindparam("digest"))
)
ROLES: tuple[str, ...] = get_args(Role)


@dataclass(frozen=True)
class User:
    name: str
    role: str
    token_hash: str
    session: str | None = None  # the hash of the session id, when a login cookie proved it

    def can(self, *roles: str) -> bool:
        return self.role == "admin" or self.role in roles

    @property
    def requester_key(self) -> str:
        """An opaque key of this account (not of its name: a user added again under a removed
        user's name gets another), which makes the batch ids it posts its own."""
        return hashlib.sha256(f"synthgate-requester\x1f{self.token_hash}".encode()).hexdigest()[:16]


def hash_token(token: str) -> str:
    """SHA-256 of a token: tokens are 256 random bits, so no salt or slow hash is needed."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Users:
    """The user table: names, roles and token hashes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine  # a Store's: its schema holds the users table

    def add(self, name: str, role: str) -> str:
        """Create a user and return their token; it is shown once and never stored."""
        name = name.strip()
        if not name or len(name) > 100 or not name.isprintable():
            raise InputError(
                f"user name {name[:100]!r}: give 1 to 100 printable characters (no NUL or "
                "control characters)"
            )
        if role not in ROLES:
            raise InputError(f"role {role!r}: choose one of {', '.join(ROLES)}")
        token = secrets.token_urlsafe(32)
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    users.insert().values(name=name, role=role, token_hash=hash_token(token))
                )
                # Rows under a free name are an earlier account's, removed before `remove`
                # forgot them: the new account starts with no batches.
                forget_user(connection, name)
                # back on a review queue's team, if a removal took them off it
                connection.execute(removed_users.delete().where(removed_users.c.name == name))
        except IntegrityError:
            raise InputError(
                f"user {name!r} exists already; pick another name or remove it first"
            ) from None
        return token

    def remove(self, name: str) -> bool:
        """Delete the user and, in the same transaction, their claim on batches and their
        sessions: ownership is by name, and a user added later under this name must not see the
        old one's batches or be logged in as them. The removal is recorded (api_removed_users)
        in that transaction too: a review queue's team leaves the name out from now on
        (review/stats.py `queue_team`), where a name that was never a user stays in it."""
        with self.engine.begin() as connection:
            removed = connection.execute(users.delete().where(users.c.name == name)).rowcount > 0
            if removed:
                forget_user(connection, name)
                connection.execute(sessions.delete().where(sessions.c.user == name))
                # `add` cleared any earlier trace under the name; the delete keeps a row written
                # around it (by hand, a restore) from failing the removal
                connection.execute(removed_users.delete().where(removed_users.c.name == name))
                connection.execute(removed_users.insert().values(name=name, removed_at=time.time()))
            return removed

    def held_review_tasks(self, name: str) -> int:
        """How many review tasks `name` was handed and has not decided (review_assignments):
        each keeps its slot for them, removed or not, until `review release --annotator NAME`
        takes it back."""
        with self.engine.connect() as connection:
            held = select(func.count()).where(
                assignments.c.annotator == name, assignments.c.decided_at.is_(None)
            )
            return int(connection.execute(held).scalar_one())

    def list(self) -> list[User]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(users).order_by(users.c.name)).all()
        return [User(name=r.name, role=r.role, token_hash=r.token_hash) for r in rows]

    def removed(self) -> frozenset[str]:
        """The names `remove` took away and no `add` brought back (api_removed_users)."""
        with self.engine.connect() as connection:
            return frozenset(connection.execute(select(removed_users.c.name)).scalars())

    def _reading(self) -> Connection:
        """A connection for one read on every request (a token, a session): on PostgreSQL
        outside a transaction, one round trip to the server instead of three (BEGIN, SELECT,
        ROLLBACK)."""
        connection = self.engine.connect()
        if self.engine.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        return connection

    def authenticate(self, token: str) -> User | None:
        """The user a token belongs to, or None."""
        if not token or len(token) > 200:
            return None
        digest = hash_token(token)
        with self._reading() as connection:
            row = BY_TOKEN_HASH.run(connection, {"digest": digest}).first()
        # The lookup is by hash already; compare_digest keeps the final check constant-time.
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            return None
        return User(name=row.name, role=row.role, token_hash=row.token_hash)

    # ---- sessions ----------------------------------------------------------------------------

    def open_session(self, user: User, *, lasts_s: float) -> str:
        """A new session id for `user`, valid for `lasts_s` seconds; only its hash is stored.
        Expired sessions are cleared on the way."""
        session_id = secrets.token_urlsafe(32)
        now = time.time()
        with self.engine.begin() as connection:
            connection.execute(sessions.delete().where(sessions.c.expires_at < now))
            connection.execute(
                sessions.insert().values(
                    id_hash=hash_token(session_id),
                    user=user.name,
                    created_at=now,
                    expires_at=now + lasts_s,
                )
            )
        return session_id

    def session_user(self, session_id: str) -> User | None:
        """The user of a live session id, or None (unknown, expired, revoked, user removed)."""
        if not session_id or len(session_id) > 200:
            return None
        digest = hash_token(session_id)
        with self._reading() as connection:
            row = BY_SESSION_HASH.run(connection, {"digest": digest}).first()
        if row is None or row.expires_at < time.time():
            return None
        return User(name=row.name, role=row.role, token_hash=row.token_hash, session=digest)

    def close_session(self, session_hash: str) -> bool:
        """Revoke a session by its hash (`User.session`); True if it was open."""
        with self.engine.begin() as connection:
            deleted = connection.execute(
                sessions.delete().where(sessions.c.id_hash == session_hash)
            )
            return deleted.rowcount > 0

    # ---- the service's secrets -----------------------------------------------------------------

    def secret(self, name: str) -> bytes:
        """A random 256-bit key under `name`, made the first time it is asked for and kept in the
        database, so every server process over it (and every restart) uses the same one."""
        with self.engine.begin() as connection:
            connection.execute(
                insert_ignore(self.engine.dialect.name, service_secrets).values(
                    name=name, value=secrets.token_hex(32)
                )
            )
            value = connection.execute(
                select(service_secrets.c.value).where(service_secrets.c.name == name)
            ).scalar_one()
        return bytes.fromhex(value)
