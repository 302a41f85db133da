"""Who may use the service: user names, roles and the SHA-256 hashes of their tokens.

`Users(engine).add(name, role)` makes a random token, returns it once and keeps only its hash;
`authenticate(token)` finds the user a token belongs to; `remove(name)` deletes the user and, in
the same transaction, their claim on batches (storage/requesters.py): ownership is by name, and a
user added later under the same name must not inherit the old one's batches. The API's role
checks (api/auth.py) build on it; `synthgate users` manages it without the web extras.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal, get_args

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from synthgate.errors import InputError
from synthgate.storage.requesters import forget_user
from synthgate.storage.tables import users

Role = Literal["annotator", "requester", "admin"]
# Every request of the service runs it: built once (building a statement costs more than the
# index lookup it does).
BY_TOKEN_HASH = select(users).where(users.c.token_hash == bindparam("digest"))
ROLES: tuple[str, ...] = get_args(Role)


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


class Users:
    """The user table: names, roles and token hashes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine  # a Store's: its schema holds the users table

    def add(self, name: str, role: str) -> str:
        """Create a user and return their token; it is shown once and never stored."""
        name = name.strip()
        if not name or len(name) > 100:
            raise InputError(f"user name {name!r}: give 1 to 100 characters")
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
                forget_user(connection, name)
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
        connection = self.engine.connect()
        if self.engine.dialect.name == "postgresql":
            # one read needs no transaction: one round trip to the server instead of three
            # (BEGIN, SELECT, ROLLBACK), on every request of the service
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        with connection:
            row = connection.execute(BY_TOKEN_HASH, {"digest": digest}).first()
        # The lookup is by hash already; compare_digest keeps the final check constant-time.
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            return None
        return User(name=row.name, role=row.role, token_hash=row.token_hash)
