"""Opening the database a `review`, `serve` or `users` command names, with errors a user can act on.

`database_url(run, db)` picks the URL (--db, else --run's synthgate.db, else the settings);
`open_store(url, must_exist=...)` opens it and turns SQLAlchemy's parse, connection and
not-a-database errors into an `InputError` naming the URL and the form it should take, and the
setting it came from: SYNTHGATE_DB_URL where the URL is its value (no --db given), else `db`.
Read-only commands pass `must_exist=True`, so a mistyped SQLite path is refused instead of
silently becoming a new, empty database.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError

from synthgate.arguments import environment_value
from synthgate.errors import InputError, quoted
from synthgate.files import is_file
from synthgate.settings import Settings
from synthgate.storage.store import Store, sqlite_url

URL_FORMS = "sqlite:///runs/<name>/synthgate.db or postgresql://user@host:5432/dbname"
DB_VARIABLE = "SYNTHGATE_DB_URL"


def database_url(run: Path | None, db: str | None, *, create: bool = False) -> str:
    """--db, else the run folder's database, else the settings, else the runs folder's.

    `create`: the runs folder's database may be new (a service starting on an empty machine).
    """
    if db:
        return db
    if run is not None:
        path = run / "synthgate.db"
        if not path.is_file():
            raise InputError(
                field="run",
                value=run,
                problem="no synthgate.db there; pass the folder `synthgate run` wrote",
            )
        return sqlite_url(path)
    settings = Settings()
    if settings.db_url:
        return settings.db_url
    path = settings.runs_dir / "synthgate.db"
    if create:
        settings.runs_dir.mkdir(parents=True, exist_ok=True)
    elif not path.is_file():
        raise InputError(
            f"no database: {path} does not exist; pass a run folder as {{run}}, a database "
            "URL as {db} or set SYNTHGATE_DB_URL",
            options=("run", "db"),
        )
    return sqlite_url(path)


def shown_url(url: str) -> str:
    """The URL as we may print it: any password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return url


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL, or None (another database, or SQLite in memory)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.database.startswith("file:"):  # a SQLite URI filename: leave it to SQLite
        return None
    return Path(parsed.database)


# What to check when a SQLite database is not there, in the review commands' options ({db} and
# {run}); a caller without --run passes its own.
MISSING_HINT = "check {db} (or {run}): it must name a database that a run or batch wrote"


def open_store(url: str, *, must_exist: bool = False, missing_hint: str = MISSING_HINT) -> Store:
    """A `Store` over `url`; a bad, unreachable or non-database URL is an `InputError`, naming
    SYNTHGATE_DB_URL where `url` is its value (`_refused`).

    `must_exist`: refuse a SQLite file that is not there (commands that only read), saying
    `missing_hint`: what to check, naming the caller's own options as `{db}`, `{run}`.
    """
    shown = shown_url(url)
    if "\x00" in url:
        raise _refused(url, value=repr(shown), problem="contains a NUL byte")
    path = sqlite_file(url)
    if must_exist and path is not None and (not is_file(path) or path.stat().st_size == 0):
        found = "no database" if not is_file(path) else "an empty file, not a database,"
        if _from_environment(url):
            raise _refused(
                url,
                value=shown,
                problem=f"{found} at {path}",
                fix="point it at a database that a run or batch wrote",
            )
        named = tuple(option for option in ("db", "run") if "{" + option + "}" in missing_hint)
        raise InputError(f"{found} at {path}; {missing_hint}", options=named)
    try:
        return Store(url, create=not must_exist)
    except InputError as error:  # the schema's: a database that holds no synthgate tables
        if error.field != "db" or error.problem is None:
            raise
        raise _refused(url, value=error.value, problem=error.problem, fix=error.fix) from None
    except ModuleNotFoundError as error:  # a known dialect whose driver is not installed
        raise _refused(
            url,
            value=repr(shown),
            problem=f"its database driver is not installed (no module {error.name!r}); install "
            f"it, or give a URL like {URL_FORMS}",
        ) from None
    except ArgumentError:  # includes NoSuchModuleError: an unknown dialect
        raise _refused(
            url, value=repr(shown), problem=f"not a database URL; give one like {URL_FORMS}"
        ) from None
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else "no connection"
        raise _refused(
            url,
            value=shown,
            problem=f"cannot open the database ({reason}); check the path, host, port "
            f"and user (expected a URL like {URL_FORMS})",
        ) from None
    except DatabaseError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else "not a database"
        raise _refused(
            url,
            value=shown,
            problem=f"not a usable database ({reason}); point it at a synthgate.db a run "
            f"wrote (a URL like {URL_FORMS})",
        ) from None


def _from_environment(url: str) -> bool:
    """Whether the database URL `url` is SYNTHGATE_DB_URL's: an error then names the variable,
    not a --db nobody passed (one passed with the same URL is named either way)."""
    return environment_value(DB_VARIABLE) == url


def _refused(url: str, *, value: object, problem: str, fix: str | None = None) -> InputError:
    """The refusal of database `url` (shown as `value` under `db`): naming SYNTHGATE_DB_URL
    where the URL is its value, its password masked."""
    if _from_environment(url):
        return InputError(
            f"{DB_VARIABLE}={quoted(shown_url(url))}: {problem}" + (f"; {fix}" if fix else "")
        )
    return InputError(field="db", value=value, problem=problem, fix=fix)
