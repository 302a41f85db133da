"""`synthgate serve` runs the web service; `synthgate users add|list|remove` manages who may use it.

Both work on the database named by `--db`, else `SYNTHGATE_DB_URL`, else
`<SYNTHGATE_RUNS_DIR or runs>/synthgate.db`. With `--broker` (or `SYNTHGATE_BROKER_URL`) the
service sends posted batches to `synthgate worker` processes instead of running them itself.
"""

from __future__ import annotations

import errno
import shlex
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from synthgate.commands import (
    DEFAULT_DB,
    console,
    counted,
    errors,
    flag_of,
    new_table,
    user_errors,
)
from synthgate.errors import InputError

if TYPE_CHECKING:
    from synthgate.storage.users import Users
    from synthgate.workers.app import WorkerSettings

GRACE_S = 3  # seconds uvicorn gives open requests after SIGTERM
DB_HELP = f"Database URL (default: {DEFAULT_DB})."
users = typer.Typer(help="Manage API users and their tokens.", no_args_is_help=True)


@contextmanager
def _users(db: str | None) -> Iterator[Users]:
    """The users of the chosen database, its store closed when the block ends."""
    from synthgate.storage.database import database_url, open_store  # SQLAlchemy: on use
    from synthgate.storage.users import Users

    with open_store(database_url(None, db, create=True)) as store:
        yield Users(store.engine)


def serve(
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    runs_dir: Path | None = typer.Option(
        None,
        "--runs-dir",
        help="Where batches posted to the API are run (default: $SYNTHGATE_RUNS_DIR, else runs). "
        "The default database does not follow it: it stays in $SYNTHGATE_RUNS_DIR or runs, "
        "where `synthgate users` finds the same one; pass --db to keep it elsewhere.",
    ),
    data_root: Path | None = typer.Option(
        None,
        "--data-root",
        help="Folder posted configs may read data from (COCO files, images, models), by paths "
        "relative to it (default: $SYNTHGATE_DATA_ROOT, else none: only the shipped configs).",
    ),
    max_samples: int | None = typer.Option(
        None,
        "--max-samples",
        min=1,
        help="Most samples one posted batch may ask for, every modality together "
        "(default: $SYNTHGATE_MAX_SAMPLES, else 10000). The other limits per requester come "
        "from the environment: SYNTHGATE_MAX_PIXELS (per image, 4194304), SYNTHGATE_MAX_OBJECTS "
        "(per image, 50), SYNTHGATE_MAX_OPEN_BATCHES (4), SYNTHGATE_MAX_SAMPLES_PER_HOUR "
        "(50000); SYNTHGATE_BATCH_THREADS (4) batches run at once.",
    ),
    annotators_per_item: int = typer.Option(
        2, "--annotators-per-item", "-k", min=1, help="Decisions each review item needs."
    ),
    gold_rate: float = typer.Option(
        0.1, "--gold-rate", min=0.0, max=0.9, help="Share of tasks that are gold tasks."
    ),
    broker: str | None = typer.Option(
        None,
        "--broker",
        help="Celery broker URL, e.g. redis://host:6379/0 (default: $SYNTHGATE_BROKER_URL, else "
        "none: batches run in this process). With it, posted batches go to `synthgate worker` "
        "processes, which must use the same --db and --blobs.",
    ),
    blobs: str | None = typer.Option(
        None,
        "--blobs",
        help="With --broker: the blob store the workers write images to, a shared folder or "
        "fsspec URL (default: $SYNTHGATE_BLOB_URL).",
    ),
) -> None:
    """Run the web service: the batch and review API (/docs) and the review page (/review).

    Without a broker, posted batches run in this process. With --broker they go to `synthgate
    worker` processes started with the same --broker, --db and --blobs: --db a PostgreSQL URL
    when workers run on several machines, or a SQLite file they all share on this one.

    Example: synthgate serve --db sqlite:///runs/synthgate.db --data-root /srv/data --port 8000

    Example: synthgate serve --broker redis://localhost:6379/0 --db sqlite:////srv/synthgate.db
    --blobs /srv/blobs
    """
    import uvicorn

    from synthgate.api.app import create_app  # FastAPI and SQLAlchemy: only to serve
    from synthgate.api.auth import uvicorn_log_config
    from synthgate.formats.image_files import pixel_limit
    from synthgate.settings import Settings
    from synthgate.storage.database import database_url, open_store, shown_url

    with user_errors():
        settings = Settings()
        pixel_limit()  # a bad SYNTHGATE_MAX_IMAGE_PIXELS is this server's to fix, not a requester's
        workers: WorkerSettings | None = None
        # The settings' broker has a default; only one named here or in the environment
        # means "run on workers".
        if broker is not None or "broker_url" in settings.model_fields_set:
            workers = _worker_settings(broker, db, blobs)
            url = workers.db_url or ""
        elif blobs is not None:
            raise InputError(
                f"--blobs {blobs}: only batches run on workers use a blob store; pass "
                "--broker URL too, or drop --blobs"
            )
        else:
            url = database_url(None, db, create=True)
        root = data_root or settings.data_root
        if root is not None and not root.is_dir():
            raise InputError(f"--data-root {root}: not a folder; pass the folder data lives in")
        open_store(url).close()  # a bad or unreachable --db is an error here, not a traceback
        app = create_app(
            db_url=url,
            runs_dir=runs_dir or settings.runs_dir,
            annotators_per_item=annotators_per_item,
            gold_rate=gold_rate,
            data_root=root,
            limits=settings.limits(),
            max_samples=max_samples,
            batch_threads=settings.batch_threads,
            workers=workers,
        )
        refuse_a_taken_port(host, port)  # this command's error, before it says it serves
    where = (
        "in this process" if workers is None else f"on {shown_url(workers.broker_url)}'s workers"
    )
    console.print(
        f"synthgate serving [bold]{escape(shown_url(url))}[/] on http://{escape(host)}:{port}  "
        f"(API docs: /docs); batches run {escape(where)}"
    )
    # SIGTERM: uvicorn stops taking requests and gives open ones GRACE_S, then the app's
    # shutdown stops running batches at their next chunk (api/batches.py SHUTDOWN_GRACE_S):
    # the server is gone within 10 s, its batches resumable. uvicorn then raises the signal
    # again with the handler it found: the default's, not the command line's (cli.py), so the
    # process ends killed by SIGTERM, as a stopped server does; Ctrl-C likewise ends it as
    # Python's own handler does, without the command line's "stopped by Ctrl-C" after a clean
    # shutdown. Only the main thread may set a handler (a server started from another thread
    # gets none from uvicorn either).
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        timeout_graceful_shutdown=GRACE_S,
        log_config=uvicorn_log_config(),
    )


def refuse_a_taken_port(host: str, port: int) -> None:
    """Bind `host`:`port` once, as uvicorn binds it (a reusable address), and let it go: a port
    another server holds is an InputError naming it, before `serve` says it serves (uvicorn
    logged Errno 98 after that line and exited 3)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as error:
        raise InputError(
            field="host",
            value=host,
            problem=f"is no interface here ({error.strerror})",
            fix="give an address of this machine, e.g. 127.0.0.1 or 0.0.0.0",
        ) from None
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            in_use = error.errno == errno.EADDRINUSE
            raise InputError(
                field="port",
                value=port,
                problem=f"is in use on {host} (another server, or a synthgate serve still running)"
                if in_use
                else f"cannot be listened on at {host} ({error.strerror})",
                fix="choose another --port, or stop the server that holds it"
                if in_use
                else "choose another --port or --host",
            ) from None


def _worker_settings(broker: str | None, db: str | None, blobs: str | None) -> WorkerSettings:
    """The settings batches are sent to workers with, once their stores and broker are checked."""
    from synthgate.api.distributed import check_broker
    from synthgate.storage.database import shown_url
    from synthgate.workers.app import settings_from

    workers = settings_from(broker=broker, db=db, blobs=blobs)
    try:
        workers.require_shared_stores()
    except InputError as error:
        raise InputError(
            f"--broker {shown_url(workers.broker_url)}: batches run on workers, which share the "
            f"service's database and blob store; {error.describe(as_flag=flag_of)}"
        ) from None
    check_broker(workers)
    return workers


@users.command("add")
def add_user(
    name: str = typer.Argument(
        ..., metavar="NAME", help="The user's name, as decisions will record it."
    ),
    role: str = typer.Option(..., "--role", help="annotator | requester | admin."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Create a user and print their token once (only its hash is stored).

    Example: synthgate users add alice --role annotator --db sqlite:///runs/synthgate.db
    """
    with user_errors(), _users(db) as known:
        token = known.add(name, role)
    errors.print(
        f"created {role} {name!r}; the token is shown only now:", highlight=False, markup=False
    )
    # The bare token on stdout, so scripts can capture it.
    print(token)


@users.command("list")
def list_users(db: str | None = typer.Option(None, "--db", help=DB_HELP)) -> None:
    """List users and their roles (tokens are never shown again)."""
    with user_errors(), _users(db) as known:
        found = known.list()
    table = new_table("name", "role")
    for user in found:
        table.add_row(user.name, user.role)
    console.print(table)


@users.command("remove")
def remove_user(
    name: str = typer.Argument(
        ..., metavar="NAME", help="The user to remove; their token stops working."
    ),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Remove a user: their token stops working at once (their decisions stay), and review
    queues count them out of their team (`users add` under the name puts them back)."""
    with user_errors(), _users(db) as known:
        if not known.remove(name):
            raise InputError(f"no user {name!r}; `synthgate users list` shows who exists")
        held = known.held_review_tasks(name)
    console.print(f"removed {name!r}", markup=False)
    if held:
        where = f" --db {shlex.quote(db)}" if db is not None else ""
        console.print(
            f"{name} holds {counted(held, 'review task')} undecided, "
            f"{'which waits' if held == 1 else 'which wait'} for them: `synthgate review release "
            f"--annotator {shlex.quote(name)}{where}` hands {'it' if held == 1 else 'them'} to "
            "other annotators",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
