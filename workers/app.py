"""The Celery app, built from settings: broker, database and blob store by URL, reliability knobs.

`WorkerSettings` reads `SYNTHGATE_*` from the environment (CLI options override them);
`make_app(settings)` returns a Celery app whose tasks (workers/tasks.py) acknowledge late, are
requeued when their worker is lost, have soft and hard time limits, and are redelivered by Redis
after a visibility timeout that must exceed the hard limit. A lost worker's chunk does not wait
for that timeout: its lease (storage/chunks.py), renewed every `heartbeat_interval`, runs out
after `lease_timeout`, and the next sweep hands the chunk to another worker.
`check_broker(settings)` refuses a broker that does not answer, before a worker starts, and
`check_broker_url(settings)` one whose URL names no transport (submit checks that much).
`queue_for(generator)` routes diffusion generators (`SYNTHGATE_GPU_GENERATORS`) to the `gpu`
queue and everything else to `cpu`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import Field

from synthgate.arguments import environment_value
from synthgate.errors import InputError, quoted
from synthgate.settings import Settings
from synthgate.storage.database import shown_url

QUEUES = ("cpu", "gpu")
MAKE_CHUNK = "synthgate.make_chunk"


class WorkerSettings(Settings):
    """Settings of the distributed runner (env `SYNTHGATE_*`, e.g. `SYNTHGATE_VISIBILITY_TIMEOUT`).

    Production defaults: a chunk gets 10 minutes (soft) / 15 minutes (hard), and Redis hands a
    message of a lost worker to another one after an hour. Tests shrink them to seconds.
    """

    soft_time_limit: float = Field(600.0, gt=0)
    time_limit: float = Field(900.0, gt=0)
    # Redis redelivers an unacknowledged message after this long: it must exceed the longest
    # task, or a slow task would run twice at once.
    visibility_timeout: float = Field(3600.0, gt=0)
    # How often a worker looks for messages whose visibility timeout ran out.
    restore_interval: float = Field(10.0, gt=0)
    # A chunk's lease: its worker renews it every `heartbeat_interval` seconds while it works;
    # one not renewed for `lease_timeout` seconds lost its worker, and a sweep (every worker
    # runs one, every `heartbeat_interval`) hands the chunk to another worker. A SIGKILLed
    # worker's chunk is taken up again within lease_timeout + heartbeat_interval.
    lease_timeout: float = Field(10.0, gt=0)
    heartbeat_interval: float = Field(2.0, gt=0)
    # A chunk that lost its worker this many times gives up its sample in flight as failed.
    max_crashes: int = Field(3, ge=1)
    max_retries: int = Field(5, ge=0)  # for transient errors (database, blob store, network)
    retry_backoff_max: float = Field(60.0, gt=0)
    # Generators (by name prefix) whose chunks go to the `gpu` queue, one chunk at a time.
    gpu_generators: list[str] = Field(default_factory=lambda: ["diffusion"])
    # A `cpu` chunk holds this many of the embedded runner's chunks: per-task costs (broker,
    # database, bookkeeping) spread over more samples. `gpu` chunks keep the generator's batch.
    cpu_chunk_factor: int = Field(4, ge=1)

    def require_shared_stores(self) -> tuple[str, str]:
        """The database and blob URLs every worker and `submit` must share."""
        if not self.db_url:
            raise InputError(
                "no database: pass a database URL as {db} or set SYNTHGATE_DB_URL (e.g. "
                "postgresql+psycopg://user@host/synthgate, or sqlite:////shared/synthgate.db "
                "when every worker is on this machine)",
                options=("db",),
            )
        if not self.blob_url:
            raise InputError(
                "no blob store: pass a folder every worker can reach, or an fsspec URL such as "
                "s3://bucket/synthgate, as {blobs} or set SYNTHGATE_BLOB_URL",
                options=("blobs",),
            )
        if self.visibility_timeout <= self.time_limit:
            raise InputError(
                f"SYNTHGATE_VISIBILITY_TIMEOUT ({self.visibility_timeout:g}s) must be above "
                f"SYNTHGATE_TIME_LIMIT ({self.time_limit:g}s), or a slow task runs twice at once"
            )
        if self.soft_time_limit >= self.time_limit:
            raise InputError(
                f"SYNTHGATE_SOFT_TIME_LIMIT ({self.soft_time_limit:g}s) must be below "
                f"SYNTHGATE_TIME_LIMIT ({self.time_limit:g}s)"
            )
        if self.heartbeat_interval * 2 > self.lease_timeout:
            raise InputError(
                f"SYNTHGATE_HEARTBEAT_INTERVAL ({self.heartbeat_interval:g}s) must be at most "
                f"half of SYNTHGATE_LEASE_TIMEOUT ({self.lease_timeout:g}s), or one late "
                "renewal hands a live worker's chunk to another worker"
            )
        return self.db_url, self.blob_url


def settings_from(
    *, broker: str | None = None, db: str | None = None, blobs: str | None = None
) -> WorkerSettings:
    """Settings from the environment, with the CLI's options on top."""
    overrides: dict[str, Any] = {
        key: value
        for key, value in (("broker_url", broker), ("db_url", db), ("blob_url", blobs))
        if value is not None
    }
    return WorkerSettings(**overrides)


WORKER_BROKER_FIX = (
    "start Redis there, or pass the broker's URL as {broker} (or set SYNTHGATE_BROKER_URL)"
)


def check_broker_url(settings: WorkerSettings) -> None:
    """Refuse a broker URL that names no transport Celery has (`http://host`, or `host:6379`
    with the scheme left out): no broker answers it, and starting Redis fixes nothing."""
    url = settings.broker_url or ""
    scheme, separator, _rest = url.partition("://")
    if separator:
        from kombu.transport import resolve_transport

        try:
            resolve_transport(scheme.partition("+")[0])  # redis+socket:// is redis's
            return
        except KeyError:
            pass
        except ImportError:  # a transport whose library is missing: the connection says so
            return
    problem = "not a broker URL" + (f" (no transport {scheme!r})" if separator else "")
    if from_environment(url):
        raise InputError(
            f"{BROKER_VARIABLE}={quoted(shown_url(url))}: {problem}; give Redis's URL there, "
            "like redis://localhost:6379/0, or pass it as {broker}",
            options=("broker",),
        )
    raise InputError(
        field="broker",
        value=shown_url(url),
        problem=problem,
        fix="give Redis's URL, like redis://localhost:6379/0, as {broker} (or set "
        "SYNTHGATE_BROKER_URL)",
        options=("broker",),
    )


BROKER_VARIABLE = "SYNTHGATE_BROKER_URL"


def from_environment(url: str) -> bool:
    """Whether the broker URL `url` is SYNTHGATE_BROKER_URL's: an error then names the
    variable, not a --broker nobody passed (one passed with the same URL is named either way)."""
    return environment_value(BROKER_VARIABLE) == url


def check_broker(
    settings: WorkerSettings, *, timeout: float = 5.0, fix: str = WORKER_BROKER_FIX
) -> None:
    """Refuse a broker URL that is none (`check_broker_url`) and a broker that does not answer:
    an `InputError` naming its URL and `fix` (which may name the broker's parameter as
    `{broker}`)."""
    check_broker_url(settings)
    shown = shown_url(settings.broker_url or "")  # the password masked
    try:
        connection = make_app(settings).connection_for_write()
        with connection:
            connection.ensure_connection(max_retries=0, timeout=timeout)
    except ModuleNotFoundError:
        raise  # a missing extra (celery, redis), which the CLI names: not the broker's fault
    except Exception as error:  # kombu raises several types for an unreachable broker
        said = " ".join(str(error).split())  # one line, whatever the driver wrote
        if from_environment(settings.broker_url or ""):
            raise InputError(
                f"{BROKER_VARIABLE}={quoted(shown)}: not reachable ({type(error).__name__}: "
                f"{said}); {fix}",
                options=("broker",) if "{broker}" in fix else (),
            ) from None
        raise InputError(
            field="broker",
            value=shown,
            problem=f"not reachable ({type(error).__name__}: {said})",
            fix=fix,
            options=("broker",) if "{broker}" in fix else (),
        ) from None


def queue_for(generator: str, gpu_generators: Iterable[str] = ("diffusion",)) -> str:
    """Diffusion generators need the GPU; procedural, copy-paste and text run on CPUs."""
    return "gpu" if any(generator.startswith(prefix) for prefix in gpu_generators) else "cpu"


def make_app(settings: WorkerSettings) -> Any:
    """The Celery app for these settings; the tasks find the settings on `app.synthgate`."""
    from celery import Celery

    app = Celery("synthgate", broker=settings.broker_url, include=["synthgate.workers.tasks"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # results live in the database, not in a result backend
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # A hard time limit kills the pool process: requeue like a lost worker, so that the
        # redelivery cap, not a silent ack, decides the chunk's fate.
        task_acks_on_timeout=False,
        task_soft_time_limit=settings.soft_time_limit,
        task_time_limit=settings.time_limit,
        task_default_queue="cpu",
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        # On a broker outage a running chunk finishes and writes its rows (its ack is lost, so a
        # redelivery finds it done) rather than being killed and counted as a crash.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # ride out a broker restart
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            "unacked_restore_interval": settings.restore_interval,
            "unacked_restore_throttle": 1,
        },
    )
    app.synthgate = settings
    return app
