"""`synthgate worker`, `synthgate submit`, `synthgate status`: the distributed runner's commands.

Celery and Redis are imported inside the commands, so `synthgate run` and `--help` never need
them. Every URL option falls back to its `SYNTHGATE_*` environment variable.
"""

from __future__ import annotations

import math
import os
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.text import Text

from synthgate.commands import console, counted, errors, new_table, progress_bars, user_errors
from synthgate.errors import InputError
from synthgate.files import usable_cores

if TYPE_CHECKING:
    from synthgate.storage.store import Store

BROKER = typer.Option(None, "--broker", help="Celery broker URL (env SYNTHGATE_BROKER_URL).")
DB = typer.Option(None, "--db", help="Shared database (SQLAlchemy URL) (env SYNTHGATE_DB_URL).")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")  # Celery's, and its FATAL
BLOBS = typer.Option(
    None, "--blobs", help="Shared blob store: a folder or fsspec URL (env SYNTHGATE_BLOB_URL)."
)


def worker(
    broker: str | None = BROKER,
    db: str | None = DB,
    blobs: str | None = BLOBS,
    queues: str = typer.Option(
        "cpu", "--queues", "-Q", help="Queues to take tasks from: cpu, gpu or cpu,gpu."
    ),
    concurrency: int | None = typer.Option(
        None,
        "--concurrency",
        "-c",
        min=1,
        help="Pool processes (default: 1 when serving gpu, else the number of CPUs).",
    ),
    loglevel: str = typer.Option(
        "INFO", "--loglevel", help="Celery log level: DEBUG, INFO, WARNING, ERROR or CRITICAL."
    ),
) -> None:
    """Run a Celery worker that makes chunks of batches sent by `synthgate submit`.

    Each pool process loads a batch's generator once (one diffusion model per process on the
    gpu queue, which takes one task at a time). Stop with Ctrl-C (a warm shutdown finishes the
    tasks in hand); a killed worker's chunks go to the others once their lease runs out
    (SYNTHGATE_LEASE_TIMEOUT, 10 s). A broker that does not answer at start is an error.

    Example: synthgate worker --broker redis://localhost:6379/0 --db postgresql://db-host/synthgate --blobs /shared/blobs --queues cpu
    """
    from synthgate.formats.image_files import pixel_limit
    from synthgate.workers.app import (
        QUEUES,
        check_broker,
        check_broker_url,
        make_app,
        settings_from,
    )

    with user_errors():
        pixel_limit()  # a bad SYNTHGATE_MAX_IMAGE_PIXELS: said at start, not in each chunk
        settings = settings_from(broker=broker, db=db, blobs=blobs)
        db_url, blob_url = settings.require_shared_stores()
        check_broker_url(settings)  # before a store is made; whether it answers comes last
        if loglevel.upper() not in (*LOG_LEVELS, "FATAL"):  # Celery's click raised a traceback
            raise InputError(
                f"--loglevel {loglevel}: not a log level; choose from {', '.join(LOG_LEVELS)}"
            )
        chosen = [q.strip() for q in queues.split(",") if q.strip()]
        unknown = sorted(set(chosen) - set(QUEUES))
        if not chosen or unknown:
            raise InputError(
                f"--queues {queues}: unknown queue {', '.join(unknown) or '(none)'}; "
                f"choose from {', '.join(QUEUES)}"
            )
        processes = concurrency or (1 if "gpu" in chosen else usable_cores())
        # The shared stores, then the broker: a worker that cannot reach a store would take
        # every task only to fail it (an unreachable database was a task acknowledged, dropped)
        from synthgate.storage.blobs import BlobStore
        from synthgate.storage.database import open_store

        open_store(db_url).close()
        BlobStore(blob_url)
        check_broker(settings)  # fail fast; once started, a worker rides out broker restarts
        app = make_app(settings)
        app.synthgate_queues = chosen
    app.worker_main(
        [
            "worker",
            f"--queues={','.join(chosen)}",
            f"--concurrency={processes}",
            f"--loglevel={loglevel}",
            f"--hostname=synthgate-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
    )


def submit(
    config_path: Path = typer.Argument(..., metavar="CONFIG", help="Batch config YAML."),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="With --wait: the run folder to write when the batch is done (default: runs/<name>).",
    ),
    broker: str | None = BROKER,
    db: str | None = DB,
    blobs: str | None = BLOBS,
    wait: bool = typer.Option(
        False, "--wait", help="Wait with a progress bar, then write the run folder."
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", min=0, help="With --wait: give up after this many seconds."
    ),
) -> None:
    """Send a batch to the workers; with --wait, follow it and write the same run folder as `run`.

    Workers generate; with --wait this command judges the samples in index order as their chunks
    arrive (batch checks compare each sample with the earlier ones) and writes the run folder.
    Submitting the same config again sends only the chunks not yet generated and makes failed
    samples anew: nothing is made twice, a re-submit after an outage picks up where the batch
    stopped, and samples people were asked to review keep their verdict. The rubric is not part
    of the batch: submitted again with one that only moves thresholds, severities or routing,
    the batch is judged again with it; one with other checks or check params is refused (the
    workers measured the samples with the first). With --wait,
    exits 1 when samples failed (the run folder is written without them; `synthgate status`
    says why).

    Example: synthgate submit configs/quickstart.yaml --out runs/quickstart-workers --broker redis://localhost:6379/0 --db postgresql://db-host/synthgate --blobs /shared/blobs --wait
    """
    from synthgate.config import find_config_file, load_config  # pydantic: not for --help
    from synthgate.pipeline import planned_total
    from synthgate.sinks import DatabaseSink, KeepReviewed, RunFolderSink
    from synthgate.storage.blobs import BlobStore
    from synthgate.storage.database import open_store, shown_url
    from synthgate.validators.validate import check_config_rubrics
    from synthgate.workers.app import check_broker_url, make_app, settings_from
    from synthgate.workers.runner import CeleryRunner
    from synthgate.workers.submit import BatchProgress, IdleNote, submit_batch

    with user_errors():
        if not wait and (out is not None or timeout is not None):
            # without --wait nothing writes --out, and no wait is timed: it was ignored
            given = "--out" if out is not None else "--timeout"
            raise InputError(
                f"{given} is for --wait: without it submit sends the batch and returns, "
                "writing no run folder; add --wait (here, or to a later submit of the same "
                "config, which makes nothing twice), or drop it"
            )
        if timeout is not None and not math.isfinite(timeout):  # nan passes click's min=0
            raise InputError(
                field="timeout",
                value=timeout,
                problem="is no number of seconds",
                fix="give the seconds to wait at most (e.g. 3600), or leave it out to wait "
                "until the batch is done",
            )
        config_path = find_config_file(config_path)  # else in the shipped configs
        config = load_config(config_path)
        check_config_rubrics(config, source=config_path)
        settings = settings_from(broker=broker, db=db, blobs=blobs)
        db_url, blob_url = settings.require_shared_stores()
        check_broker_url(settings)  # before the batch is recorded
        app = make_app(settings)
        store = open_store(db_url)
        total = planned_total(config)
        started = time.perf_counter()
        if not wait:
            batch_id, sent = submit_batch(app, store, config)
            store.close()
            console.print(
                f"batch [bold]{escape(batch_id)}[/]: {counted(total, 'sample')}, "
                f"{counted(sent, 'chunk')} sent"
            )
            # the database as it was given: status finds it the same way (a masked password
            # is for the user to fill in)
            where = "" if db is None else f" --db {shlex.quote(shown_url(db_url))}"
            console.print(
                f"follow it with: synthgate status {batch_id}{where}", markup=False, soft_wrap=True
            )
            return
        target = out if out is not None else settings.runs_dir / config.name
        folder = RunFolderSink(target)  # --out is checked before anything is sent
        with progress_bars() as bars:
            made_bar = bars.add_task("generated", total=total)
            judged_bar = bars.add_task("   judged", total=total)
            hint = " (`synthgate worker` with the same --broker, --db and --blobs)"
            idle, noted = IdleNote(store, app=app, worker_hint=hint), [False]

            def watch(progress: BatchProgress) -> None:
                bars.update(made_bar, completed=progress.stored)
                note = idle.check(progress)
                if note is not None and not noted[0]:  # once a stretch: it waits, it is fine
                    console.print(note, markup=False)
                noted[0] = note is not None

            runner = CeleryRunner(
                app,
                store,
                BlobStore(blob_url),
                settings,
                on_sent=lambda batch_id, sent: console.print(
                    f"batch [bold]{escape(batch_id)}[/]: {counted(total, 'sample')}, "
                    f"{counted(sent, 'chunk')} sent"
                ),
                watch=watch,
                on_resend=lambda n: console.print(
                    f"the batch stalled with empty queues: sent {counted(n, 'unfinished chunk')} again"
                ),
                poll_seconds=0.2,
                timeout=timeout,
            )

            result = runner.run(
                config,
                sinks=[KeepReviewed(store, [folder, DatabaseSink(store)])],
                progress=lambda _modality, count, _total: bars.advance(judged_bar, count),
            )
            bars.update(made_bar, completed=total)
        result.out = target
        result.timings["wall_seconds"] = round(time.perf_counter() - started, 3)
        batch_id = result.batch_id
        failed = sum(counts.get("failed", 0) for counts in result.counts.values())
        store.set_batch_status(batch_id, "failed" if failed else "done")
        _print_failures(store, batch_id)
        store.close()
    console.print(
        f"wrote [bold]{escape(str(result.out))}[/] (batch {escape(batch_id)}): "
        f"{total - failed} made, {failed} failed"
    )
    if failed:
        raise typer.Exit(code=1)


def status(
    batch_id: str = typer.Argument(
        ..., metavar="BATCH_ID", help="The batch id `synthgate submit` printed."
    ),
    db: str | None = DB,
) -> None:
    """Print a batch's progress by modality and status, and every failed sample with its reason.

    --db is the database the workers and `synthgate submit` were given.

    Example: synthgate status quickstart-45330cd90a --db postgresql://db-host/synthgate
    """
    from synthgate.storage.database import open_store, shown_url
    from synthgate.workers.app import settings_from

    with user_errors():
        settings = settings_from(db=db)
        if not settings.db_url:
            raise InputError("no database: pass --db URL or set SYNTHGATE_DB_URL")
        store = open_store(
            settings.db_url,
            must_exist=True,
            missing_hint="check {db} (or SYNTHGATE_DB_URL): it must name the database "
            "`synthgate submit` and the workers were given",
        )
        batch = store.get_batch(batch_id)
        if batch is None:
            raise InputError(
                f"batch {batch_id}: not in the database {shown_url(settings.db_url)}; give the "
                "batch id `synthgate submit` printed, and as {db} the database `synthgate "
                "submit` was given",
                options=("db",),
            )
        config = batch["config"]
        shown = batch["status"]
        if shown == "running" and store.chunks.none_taken(batch_id):
            # as the API says of a batch waiting for its turn: nothing has started it yet
            shown = "queued: no worker has taken any of its chunks yet"
        table = new_table(title=f"batch {batch_id} ({shown})")
        columns = ("pending", "accepted", "review", "rejected", "failed")
        for column in ("modality", "planned", "made", *columns):
            table.add_column(column, justify="left" if column == "modality" else "right")
        counts = store.count_by_status(batch_id)
        for modality in ("image", "text"):
            if not config.get(modality):
                continue
            row = {s: n for (m, s), n in counts.items() if m == modality}
            table.add_row(
                modality,
                str(config[modality]["count"]),
                # made: every sample stored but those that failed (as `submit` counts them)
                str(sum(n for s, n in row.items() if s != "failed")),
                *(str(row.get(s, 0)) for s in columns),
            )
        console.print(table)
        chunks = store.chunks.totals(batch_id)
        console.print(
            "chunks: "
            + ", ".join(
                f"{s} {chunks.get(s, 0)}"
                for s in ("queued", "running", "generated", "done", "failed")
            )
            + " (generated chunks are judged, in order, by `synthgate submit --wait`)"
        )
        _print_failures(store, batch_id)
        store.close()


def _print_failures(store: Store, batch_id: str) -> None:
    for chunk in store.chunks.of_batch(batch_id, statuses=["failed"]):
        if chunk.reason:
            errors.print(
                Text.assemble((f"chunk {chunk.id} failed:", "bold red"), f" {chunk.reason}"),
                highlight=False,
                soft_wrap=True,
            )
    failures = store.failures(batch_id)
    if not failures:
        return
    errors.print(f"[bold red]{counted(len(failures), 'failed sample')}:[/]", highlight=False)
    for failure in failures:
        errors.print(
            f"  {failure['modality']} #{failure['index']} ({failure['id']}): {failure['reason']}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
