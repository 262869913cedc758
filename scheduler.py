"""When watches run: APScheduler wiring, the scheduler election, and the runner of crawl processes.

* Schedules live in APScheduler 3.x's SQLAlchemyJobStore in the project database, so they
  survive restarts. APScheduler 3 cannot share a job store between processes, so exactly one
  scheduler is active: the holder of the `scheduler` lease (a row in `leases`), renewed every
  tick; when it stops renewing, another `serve` process takes over.
* A job only inserts a run row with the unique key (watch, scheduled_for) (`evidence.runs`):
  a job fired twice (failover, two schedulers, a retry) still makes one run. Jobs coalesce, so a
  scheduler that was down for several intervals queues one catch-up run, marked `late`, for the
  last missed time; `misfire_grace_time` is explicit and long, so a stalled loop drops nothing.
* The runner (in every `serve` process) claims due runs with a lease, and crawls each in its own
  child process (`rightswatch crawl --run-id N`): a crash or leak in one crawl cannot take the
  service down. A child that dies marks its run failed, retried with backoff. The lease is renewed
  while the child lives; a runner that dies stops renewing, and any other runner reaps the run.
* With RIGHTSWATCH_BROKER_URL set, runs go to Celery workers instead (`dispatch`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.base import BaseExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from evidence import runs
from evidence.errors import BadInput
from evidence.models import Run, RunState, Watch
from rightswatch.config import Settings

log = logging.getLogger(__name__)

LEASE_NAME = "scheduler"
JOBSTORE_TABLE = "apscheduler_jobs"
# A job may still fire this late (after a stall or downtime); later than that it is "missed".
# A week, so even a weekly cron catches up once after an outage instead of silently skipping.
MISFIRE_GRACE_S = 7 * 24 * 3600
JOB_FUNC = "scheduler:queue_watch_run"

# The session factory the job function uses: set by whoever starts a scheduler in this process.
_factory: sessionmaker[Session] | None = None


def queue_watch_run(
    watch_id: int, *, scheduled_for: datetime | None = None, late: bool = False
) -> int | None:
    """The scheduled job: insert the run of `watch_id` for `scheduled_for` (once); its id."""
    if _factory is None:
        raise RuntimeError("no session factory: the scheduler was not started in this process")
    if scheduled_for is None:  # QueueExecutor always passes it; a direct call means "now"
        scheduled_for = datetime.now(UTC)
    with _factory.begin() as session:
        watch = session.get(Watch, watch_id)
        if watch is None or not watch.enabled:
            return None
        if late and session.scalar(select(Run.id).where(Run.watch_id == watch_id).limit(1)) is None:
            late = False  # a new watch's first run catches up with nothing
        from crawler.runner import config_for_watch  # the crawler's own rendering of the scope

        run = runs.queue_run(
            session,
            watch,
            scheduled_for,
            started_by="scheduler",
            late=late,
            config=config_for_watch(watch).to_json(),
        )
        log.info("queued run %s of watch %s for %s", run.id, watch.name, scheduled_for.isoformat())
        return run.id


class QueueExecutor(BaseExecutor):  # type: ignore[misc]
    """Runs a job inline with its scheduled time: jobs only insert a row, so no pool is needed,
    and the run's key is the time APScheduler scheduled it for (not when it happened to run).

    Coalescing happens here rather than in APScheduler (jobs have coalesce=False) so the run
    knows it stands for several missed times: one run, for the last of them, marked late.
    """

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        now = datetime.now(UTC)
        grace = job.misfire_grace_time
        due = [t for t in run_times if grace is None or now - t <= timedelta(seconds=grace)]
        events = [
            JobExecutionEvent(EVENT_JOB_MISSED, job.id, "default", t)
            for t in run_times
            if t not in due
        ]
        if len(events):
            log.warning("job %s: %d run times beyond the misfire grace time", job.id, len(events))
        if due:
            run_time = due[-1]
            late = len(due) > 1 or (now - run_time).total_seconds() > runs.LATE_AFTER_S
            try:
                retval = job.func(*job.args, scheduled_for=run_time, late=late, **job.kwargs)
            except Exception as exc:
                log.exception("job %s failed", job.id)
                tb = "".join(traceback.format_tb(exc.__traceback__))
                events.append(
                    JobExecutionEvent(
                        EVENT_JOB_ERROR, job.id, "default", run_time, exception=exc, traceback=tb
                    )
                )
            else:
                events.append(
                    JobExecutionEvent(
                        EVENT_JOB_EXECUTED, job.id, "default", run_time, retval=retval
                    )
                )
        self._run_job_success(job.id, events)


class OneShotScheduler(BaseScheduler):  # type: ignore[misc]
    """Processes the due jobs once, in the caller's thread (`rightswatch scheduler tick`)."""

    def wakeup(self) -> None:
        pass

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)

    def run_pending(self) -> None:
        self._process_jobs()


def schedule_signature(watch: Watch) -> str:
    """Stored as the job name: a job is replaced only when its watch's schedule changed."""
    return f"watch {watch.id} every={watch.every_s} cron={watch.cron}"


def trigger_for(watch: Watch) -> IntervalTrigger | CronTrigger:
    """Interval schedules are anchored at the watch's creation, so every scheduler computes the
    same scheduled times (and therefore the same run keys)."""
    if watch.cron:
        try:
            return CronTrigger.from_crontab(watch.cron, timezone=UTC)
        except ValueError as exc:
            raise BadInput(f"watch {watch.name!r}: bad cron {watch.cron!r}: {exc}") from None
    if watch.every_s:
        return IntervalTrigger(seconds=watch.every_s, start_date=watch.created_at, timezone=UTC)
    raise BadInput(f"watch {watch.name!r} has no schedule")


def sync_jobs(aps: BaseScheduler, factory: sessionmaker[Session]) -> int:
    """Make the job store hold exactly one job per enabled, scheduled watch; returns the count.

    The watches are read first and the session closed before the job store writes: on SQLite
    each holds the database's write lock while open.
    """
    schedules: list[tuple[str, str, IntervalTrigger | CronTrigger, int, datetime | None]] = []
    with factory() as session:
        watches = session.scalars(
            select(Watch).where(
                Watch.enabled.is_(True), (Watch.every_s.is_not(None)) | (Watch.cron.is_not(None))
            )
        )
        for watch in watches:
            try:
                trigger = trigger_for(watch)
            except BadInput as exc:
                log.warning("%s", exc)
                continue
            ran = session.scalar(select(Run.id).where(Run.watch_id == watch.id).limit(1))
            # A watch that never ran is due at once; afterwards it follows its schedule.
            first = watch.created_at if ran is None else None
            schedules.append(
                (f"watch:{watch.id}", schedule_signature(watch), trigger, watch.id, first)
            )
    wanted: set[str] = set()
    existing = {job.id: job for job in aps.get_jobs()}
    for job_id, name, trigger, watch_id, first in schedules:
        wanted.add(job_id)
        if job_id in existing and existing[job_id].name == name:
            continue  # keep its stored next run time: that is what survives a restart
        aps.add_job(
            JOB_FUNC,
            trigger=trigger,
            args=[watch_id],
            id=job_id,
            name=name,
            replace_existing=True,
            coalesce=False,  # QueueExecutor coalesces, knowing how many times were missed
            **({"next_run_time": first} if first is not None else {}),
            misfire_grace_time=MISFIRE_GRACE_S,
            max_instances=1,
        )
    for job_id in set(existing) - wanted:
        aps.remove_job(job_id)
    return len(wanted)


def default_crawl_command() -> list[str]:
    """`rightswatch` next to this interpreter (the venv's), else this interpreter running it."""
    exe = Path(sys.executable).with_name("rightswatch")
    if exe.is_file():
        return [str(exe)]
    return [sys.executable, "-c", "from rightswatch.cli import main; main()"]


def dispatch(settings: Settings, run_id: int) -> None:
    """Hand a queued run to the Celery workers (RIGHTSWATCH_BROKER_URL); they claim it."""
    from rightswatch import tasks  # the scale-out room's module

    tasks.dispatch(settings, run_id)


@dataclass
class Child:
    run_id: int
    proc: subprocess.Popen[bytes]
    log_path: Path | None


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"crawl process killed by {name}"
    return f"crawl process exited with status {code}"


@dataclass
class ServiceScheduler:
    """The scheduler and the runner of one `serve` process; `tick()` is one pass of both."""

    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    owner: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    )
    tick_s: float = 2.0
    lease_s: float = 15.0  # the scheduler lease; renewed every tick
    run_lease_s: float = 30.0  # a crawl's lease; renewed every tick while its process lives
    max_children: int = 2
    crawl_command: Sequence[str] = field(default_factory=default_crawl_command)
    schedule: bool = True  # False: only run crawls, never be the scheduler
    run_crawls: bool = True
    checkpoint_every_s: float = 3600.0  # sign (and, with a TSA, timestamp) the ledger head

    def __post_init__(self) -> None:
        self.aps: BackgroundScheduler | None = None
        self.children: dict[int, Child] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_checkpoint = 0.0

    # -- election and APScheduler ------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.aps is not None

    def _new_aps(self, cls: type[BaseScheduler]) -> BaseScheduler:
        return cls(
            jobstores={"default": SQLAlchemyJobStore(engine=self.engine, tablename=JOBSTORE_TABLE)},
            executors={"default": QueueExecutor()},
            job_defaults={
                "coalesce": False,
                "misfire_grace_time": MISFIRE_GRACE_S,
                "max_instances": 1,
            },
            timezone=UTC,
        )

    def elect(self) -> bool:
        """Take or renew the scheduler lease; start or stop APScheduler to match."""
        global _factory
        with self.factory.begin() as session:
            holder = runs.acquire_lease(session, LEASE_NAME, self.owner, self.lease_s)
        if holder and self.aps is None:
            _factory = self.factory
            aps = self._new_aps(BackgroundScheduler)
            assert isinstance(aps, BackgroundScheduler)
            aps.start(paused=True)
            sync_jobs(aps, self.factory)
            aps.resume()
            self.aps = aps
            log.info("scheduler %s is now the active scheduler", self.owner)
        elif not holder and self.aps is not None:
            log.warning("scheduler %s lost the scheduler lease; standing by", self.owner)
            self._stop_aps()
        elif holder and self.aps is not None:
            sync_jobs(self.aps, self.factory)
        return holder

    def _stop_aps(self) -> None:
        if self.aps is not None:
            with contextlib.suppress(Exception):
                self.aps.shutdown(wait=True)
            self.aps = None

    def queue_due_once(self) -> bool:
        """One scheduling pass in this thread (the CLI's tick); False if another one is active."""
        global _factory
        with self.factory.begin() as session:
            if not runs.acquire_lease(session, LEASE_NAME, self.owner, self.lease_s):
                return False
        _factory = self.factory
        aps = self._new_aps(OneShotScheduler)
        assert isinstance(aps, OneShotScheduler)
        aps.start(paused=False)
        try:
            sync_jobs(aps, self.factory)
            aps.run_pending()
        finally:
            aps.shutdown(wait=True)
            with self.factory.begin() as session:
                runs.release_lease(session, LEASE_NAME, self.owner)
        return True

    # -- the runner ---------------------------------------------------------------------------

    def _spawn(self, run: Run) -> None:
        log_dir = self.settings.home / "logs"
        log_path: Path | None = log_dir / f"run-{run.id}.log"
        out: Any = subprocess.DEVNULL
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            out = open(log_dir / f"run-{run.id}.log", "ab")  # noqa: SIM115 (the child keeps it)
        except OSError:
            log_path = None
        cmd = [*self.crawl_command, "crawl", "--run-id", str(run.id)]
        setpriv = shutil.which("setpriv")
        if setpriv and sys.platform.startswith("linux"):
            # Dies with the runner thread that forked it, so an orphan never crawls a run that
            # another runner has already reaped and re-claimed.
            cmd = [setpriv, "--pdeathsig", "KILL", "--", *cmd]
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out)  # noqa: S603
        finally:
            if out is not subprocess.DEVNULL:
                out.close()
        self.children[run.id] = Child(run.id, proc, log_path)
        log.info("run %s: crawl process %s started", run.id, proc.pid)

    def _collect(self) -> None:
        for run_id, child in list(self.children.items()):
            code = child.proc.poll()
            if code is None:
                continue
            del self.children[run_id]
            error = None if code == 0 else describe_exit(code)
            with self.factory.begin() as session:
                run = runs.finish(session, run_id, self.owner, error=error)
                log.info("run %s: %s (%s)", run_id, run.state, error or "exit 0")

    def _renew(self) -> None:
        for run_id, child in list(self.children.items()):
            with self.factory.begin() as session:
                ours = runs.renew(session, run_id, self.owner, self.run_lease_s)
                run = None if ours else session.get(Run, run_id)
                # The crawl closes its own run before it stores the counts and exits: killing
                # it then would leave a finished run that counts nothing. _collect reaps it.
                closed_by_crawl = run is not None and run.state == RunState.FINISHED
            if not ours and not closed_by_crawl:
                log.warning("run %s: lease lost; stopping its crawl process", run_id)
                child.proc.kill()
                child.proc.wait()
                del self.children[run_id]

    def run_pass(self) -> list[int]:
        """Reap dead runs, collect finished children, renew leases, start due runs."""
        started: list[int] = []
        with self.factory.begin() as session:
            for dead in runs.reap_expired(session):
                log.warning("run %s: %s", dead.id, dead.error)
        self._collect()
        self._renew()
        if self.settings.broker_url:
            self._dispatch_due()
            return started
        while len(self.children) < self.max_children:
            with self.factory.begin() as session:
                run = runs.claim_run(session, self.owner, self.run_lease_s)
            if run is None:
                break
            try:
                self._spawn(run)
            except OSError as exc:
                with self.factory.begin() as session:
                    runs.finish(session, run.id, self.owner, error=f"cannot start crawl: {exc}")
                continue
            started.append(run.id)
        return started

    def _dispatch_due(self) -> None:
        with self.factory() as session:
            due = session.scalars(select(Run.id).where(runs.claimable(datetime.now(UTC)))).all()
        for run_id in due:
            try:
                dispatch(self.settings, run_id)
            except Exception as exc:
                log.warning("run %s: cannot hand to the broker: %s", run_id, exc)

    def checkpoint_if_due(self) -> None:
        """The active scheduler signs the ledger head periodically and, when a TSA is set,
        has it timestamped, so evidence is anchored in time even between exports."""
        now = time.monotonic()
        if now < self._next_checkpoint:
            return
        self._next_checkpoint = now + self.checkpoint_every_s
        from evidence import ledger, timestamp

        try:
            with self.factory.begin() as session:
                ledger.make_checkpoint(session)
            if self.settings.tsa_url:
                timestamp.stamp_pending(self.factory, self.settings.tsa_url)
        except Exception as exc:  # a TSA outage must not stop crawling: retried next period
            log.warning("ledger checkpoint or timestamp failed: %s", exc)

    def tick(self) -> None:
        if self.schedule and self.elect():
            self.checkpoint_if_due()
        if self.run_crawls:
            self.run_pass()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Tick in a background thread until `stop()`."""
        self._thread = threading.Thread(
            target=self._loop, name="rightswatch-scheduler", daemon=True
        )
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("scheduler tick failed; retrying")
            self._stop.wait(self.tick_s)

    def wait_children(self, timeout_s: float | None = None) -> None:
        """Wait for the running crawls (the CLI's tick runs them in the foreground)."""
        deadline = None if timeout_s is None else datetime.now(UTC) + timedelta(seconds=timeout_s)
        while self.children:
            self._collect()
            self._renew()
            if deadline is not None and datetime.now(UTC) > deadline:
                break
            self._stop.wait(0.2)

    def stop(self, grace_s: float = 10.0) -> None:
        """Graceful shutdown: stop scheduling, ask running crawls to finish (SIGTERM), wait up to
        `grace_s`, then kill the rest and mark their runs interrupted (re-queued at once)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._stop_aps()
        with contextlib.suppress(Exception), self.factory.begin() as session:
            runs.release_lease(session, LEASE_NAME, self.owner)
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                child.proc.terminate()
        deadline = datetime.now(UTC) + timedelta(seconds=grace_s)
        for run_id, child in list(self.children.items()):
            remaining = max(0.0, (deadline - datetime.now(UTC)).total_seconds())
            try:
                code = child.proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
                code = None
            del self.children[run_id]
            with self.factory.begin() as session:
                mine = session.get(Run, run_id)
                if mine is None or mine.state != RunState.RUNNING or mine.lease_owner != self.owner:
                    continue
                if code == 0:
                    runs.finish(session, run_id, self.owner)
                else:
                    runs.fail(session, mine, "interrupted by service shutdown", interrupted=True)


__all__ = [
    "MISFIRE_GRACE_S",
    "QueueExecutor",
    "ServiceScheduler",
    "default_crawl_command",
    "dispatch",
    "queue_watch_run",
    "sync_jobs",
    "trigger_for",
]
