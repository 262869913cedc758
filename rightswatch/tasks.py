"""Crawl runs on Celery workers (RIGHTSWATCH_BROKER_URL, a Redis broker): the scale-out path.

The database stays the source of truth; a broker message only says "look at run N". A task:

1. reads the run row: finished, or failed for good -> nothing to do (a duplicate or re-delivered
   message acks at once; a run is never crawled twice);
2. running under someone else's live lease -> retry once that lease could have run out; a lease
   that ran out means its worker died: the run is marked interrupted and claimed here;
3. waiting for a retry (`not_before`) -> retry at that time (Celery's countdown);
4. otherwise claims the run with a lease (`evidence.runs.claim_run`), crawls it in a child process
   (`rightswatch crawl --run-id N`: a fresh Twisted reactor each time, and a crash stays there)
   that dies with the worker (`setpriv --pdeathsig KILL`), renews the lease while the child
   lives, and records the outcome (`evidence.runs.finish`); a failed run is retried with backoff.

Messages are acknowledged late (`task_acks_late`), so a worker killed with SIGKILL leaves its
message unacknowledged and Redis hands it to another worker after the visibility timeout; the
lease check above makes that re-delivery safe. `dispatch` de-duplicates sends per run in Redis,
because the scheduler offers every queued run on each tick.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from celery import Celery, Task
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from evidence import runs
from evidence.db import make_engine, make_session_factory, translate_db_errors
from evidence.errors import DatabaseUnavailable
from evidence.models import Run, RunState
from rightswatch.config import Settings, get_settings

log = logging.getLogger(__name__)

TASK_NAME = "rightswatch.run_crawl"
QUEUE = "rightswatch.runs"
DEFAULT_VISIBILITY_S = 3600  # > the longest expected crawl, or a live run is re-delivered too
DEFAULT_LEASE_S = 60.0  # renewed every lease/3 while the crawl process lives
DISPATCH_DEDUP_S = 300  # one message per run per 5 minutes, however often it is offered
DB_RETRY_MAX_S = 300


@dataclass(frozen=True)
class WorkerOptions:
    """What one worker process needs besides the settings (tests shorten the times)."""

    lease_s: float = DEFAULT_LEASE_S
    crawl_command: Sequence[str] = field(default_factory=lambda: _default_crawl_command())
    owner_prefix: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


def _default_crawl_command() -> list[str]:
    from scheduler import default_crawl_command

    return default_crawl_command()


@dataclass(frozen=True)
class Outcome:
    """What a task did: `retry_in` set means "deliver this run to a worker again then"."""

    state: str
    retry_in: float | None = None
    detail: str = ""


def _seconds_until(when: datetime | None, now: datetime) -> float:
    return 0.0 if when is None else max(0.0, (when - now).total_seconds())


def _prepare(session: Session, run_id: int, now: datetime) -> Outcome | None:
    """None: the run may be claimed now; else what to do instead."""
    stmt = select(Run).where(Run.id == run_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=Run)  # a concurrent copy of this message waits here
    run = session.scalars(stmt).one_or_none()
    if run is None:
        return Outcome("missing", detail=f"no run {run_id}")
    if run.state == RunState.FINISHED:
        return Outcome(run.state, detail="already finished")
    if run.state == RunState.RUNNING:
        if run.lease_until is not None and run.lease_until > now:
            wait = _seconds_until(run.lease_until, now) + 1.0
            return Outcome(run.state, retry_in=wait, detail=f"leased to {run.lease_owner}")
        runs.fail(
            session,
            run,
            f"lease of {run.lease_owner} ran out: its worker died",
            interrupted=True,
            now=now,
        )
    if run.state in (RunState.FAILED, RunState.INTERRUPTED):
        if run.not_before is None or (run.attempts or 0) >= runs.MAX_ATTEMPTS:
            return Outcome(run.state, detail="gave up: " + (run.error or ""))
        if run.not_before > now:
            return Outcome(
                run.state, retry_in=_seconds_until(run.not_before, now), detail="backoff"
            )
    return None


def execute(factory: sessionmaker[Session], run_id: int, options: WorkerOptions) -> Outcome:
    """Claim run `run_id` and crawl it in a child process, unless it is not ours to run."""
    owner = f"{options.owner_prefix}:{threading.get_ident()}:{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    with translate_db_errors(), factory.begin() as session:
        early = _prepare(session, run_id, now)
        if early is not None:
            return early
        run = runs.claim_run(session, owner, options.lease_s, run_id=run_id, now=now)
        if run is None:  # another run of the same watch is in progress
            return Outcome("queued", retry_in=options.lease_s, detail="watch busy")
    log.info("run %s: claimed by %s", run_id, owner)
    code, lease_lost = _crawl(factory, run_id, owner, options)
    error = None
    if lease_lost:
        error = "lease lost"
    elif code != 0:
        from scheduler import describe_exit

        error = describe_exit(code)
    with translate_db_errors(), factory.begin() as session:
        if not lease_lost:
            runs.finish(session, run_id, owner, error=error)
        after = _prepare(session, run_id, datetime.now(UTC))
    if after is None:  # interrupted and due again at once
        return Outcome(RunState.INTERRUPTED, retry_in=0.0, detail=error or "")
    return Outcome(after.state, after.retry_in, error or after.detail)


def _crawl(
    factory: sessionmaker[Session], run_id: int, owner: str, options: WorkerOptions
) -> tuple[int, bool]:
    """Run the crawl child to its end, renewing the lease; (exit code, lease lost)."""
    cmd = [*options.crawl_command, "crawl", "--run-id", str(run_id)]
    setpriv = shutil.which("setpriv")
    if setpriv and sys.platform.startswith("linux"):
        cmd = [setpriv, "--pdeathsig", "KILL", "--", *cmd]  # dies with this worker thread
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)  # noqa: S603 (our own command)
    every = max(0.2, options.lease_s / 3)
    while True:
        try:
            return proc.wait(timeout=every), False
        except subprocess.TimeoutExpired:
            pass
        try:
            with translate_db_errors(), factory.begin() as session:
                ours = runs.renew(session, run_id, owner, options.lease_s)
        except DatabaseUnavailable as exc:  # the crawl may still finish; try again next time
            log.warning("run %s: cannot renew lease: %s", run_id, exc)
            continue
        if not ours:
            # Usually the crawl has just closed its own run and is exiting; if it was reaped
            # instead (this worker stalled past its lease), stop it before another one resumes.
            try:
                return proc.wait(timeout=every), False
            except subprocess.TimeoutExpired:
                log.warning("run %s: lease lost; stopping its crawl process", run_id)
                proc.kill()
                proc.wait()
                return -9, True


# -- Celery wiring -------------------------------------------------------------------------------


def make_app(broker_url: str, *, visibility_timeout_s: int = DEFAULT_VISIBILITY_S) -> Celery:
    """A Celery app on `broker_url` with the crawl task registered (worker and producer)."""
    app = Celery("rightswatch", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        broker_transport_options={
            "visibility_timeout": visibility_timeout_s,
            "unacked_restore_interval": max(1, min(10, visibility_timeout_s // 5)),
            "unacked_restore_throttle": 1,
        },
    )
    app.task(name=TASK_NAME, bind=True, max_retries=None, acks_late=True)(_run_crawl_task)
    app.rightswatch_options = WorkerOptions()
    app.rightswatch_settings = None
    return app


def _run_crawl_task(self: Task, run_id: int) -> dict[str, Any]:
    settings: Settings = self.app.rightswatch_settings or get_settings()
    options: WorkerOptions = self.app.rightswatch_options
    try:
        outcome = execute(_factory(settings.database_url), int(run_id), options)
    except DatabaseUnavailable as exc:
        wait = min(DB_RETRY_MAX_S, 5 * 2 ** min(self.request.retries, 6))
        log.warning("run %s: %s; retrying in %ss", run_id, exc, wait)
        raise self.retry(countdown=wait, exc=None) from None
    log.info("run %s: %s %s", run_id, outcome.state, outcome.detail)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return {"run_id": run_id, "state": str(outcome.state), "detail": outcome.detail}


@cache
def _factory(url: str) -> sessionmaker[Session]:
    return make_session_factory(make_engine(url))


@cache
def _producer(broker_url: str) -> Celery:
    return make_app(broker_url)


def dispatch(settings: Settings, run_id: int) -> bool:
    """Send run `run_id` to the workers, once per DISPATCH_DEDUP_S; True when a message went."""
    if not settings.broker_url:
        raise ValueError("RIGHTSWATCH_BROKER_URL is not set")
    if settings.broker_url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(settings.broker_url)
        try:
            if not client.set(
                f"rightswatch:dispatched:{run_id}", "1", nx=True, ex=DISPATCH_DEDUP_S
            ):
                return False
        finally:
            client.close()
    _producer(settings.broker_url).send_task(TASK_NAME, args=[run_id], queue=QUEUE)
    return True


def forget_dispatch(settings: Settings, run_id: int) -> None:
    """Allow an immediate re-send of `run_id` (after it was re-queued by hand)."""
    if settings.broker_url and settings.broker_url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(settings.broker_url)
        with contextlib.closing(client):
            client.delete(f"rightswatch:dispatched:{run_id}")


def run_worker(
    settings: Settings,
    *,
    concurrency: int = 2,
    options: WorkerOptions | None = None,
    visibility_timeout_s: int = DEFAULT_VISIBILITY_S,
    loglevel: str = "WARNING",
) -> None:
    """Consume runs until stopped (SIGTERM: warm shutdown, running crawls finish first)."""
    if not settings.broker_url:
        raise ValueError("RIGHTSWATCH_BROKER_URL is not set")
    app = make_app(settings.broker_url, visibility_timeout_s=visibility_timeout_s)
    app.rightswatch_settings = settings
    app.rightswatch_options = options or WorkerOptions()
    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            "--pool=threads",  # each task only waits on its crawl child process
            f"--queues={QUEUE}",
            f"--hostname=rightswatch-{os.getpid()}@{socket.gethostname()}",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


__all__ = [
    "QUEUE",
    "TASK_NAME",
    "Outcome",
    "WorkerOptions",
    "dispatch",
    "execute",
    "forget_dispatch",
    "make_app",
    "run_worker",
]
