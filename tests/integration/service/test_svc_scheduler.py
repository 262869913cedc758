"""D8: the scheduler on one database: one active scheduler, unique runs, coalesced catch-up after
downtime, a SIGKILLed crawl failed and retried, graceful shutdown interrupts and re-queues."""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

import scheduler
from evidence import runs
from evidence.models import Run, Watch
from rightswatch.config import from_env

FAKE = Path(__file__).with_name("fake_crawl.py")


@pytest.fixture
def fake_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    out = tmp_path / "fake"
    out.mkdir()
    monkeypatch.setenv("FAKE_CRAWL_DIR", str(out))
    return out


def service(
    tmp_path: Path, migrated: Engine, factory: sessionmaker[Session], name: str
) -> scheduler.ServiceScheduler:
    settings = from_env({"RIGHTSWATCH_HOME": str(tmp_path / "home")})
    return scheduler.ServiceScheduler(
        settings=settings,
        engine=migrated,
        factory=factory,
        owner=name,
        crawl_command=[sys.executable, str(FAKE)],
    )


def add_watch(
    factory: sessionmaker[Session], every_s: int = 3600, created_ago_s: int = 3600
) -> int:
    """A watch created `created_ago_s` ago: by default its first run is due now."""
    with factory.begin() as s:
        watch = Watch(
            name=f"w{every_s}",
            seeds=["http://127.0.0.1:9/"],
            every_s=every_s,
            created_at=datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=created_ago_s),
        )
        s.add(watch)
        s.flush()
        return watch.id


def queue_now(factory: sessionmaker[Session]) -> int:
    """A run of a new watch, queued now; its id."""
    watch_id = add_watch(factory)
    with factory.begin() as s:
        watch = s.get(Watch, watch_id)
        assert watch is not None
        return runs.queue_run(s, watch, datetime.now(UTC), "test").id


def count_runs(factory: sessionmaker[Session]) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(Run)) or 0)


def wait_for(path: Path) -> None:
    for _ in range(600):
        if path.exists() and path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def start_crawl(svc: scheduler.ServiceScheduler, run_id: int, fake_dir: Path) -> None:
    """One pass starts the run's crawl process; its pid file says it is running."""
    assert svc.run_pass() == [run_id]
    wait_for(fake_dir / f"run-{run_id}.pid")


def test_one_active_scheduler_and_failover(
    tmp_path: Path, migrated: Engine, session_factory: sessionmaker[Session]
) -> None:
    # Half an interval old: after its first run the next is half an hour away.
    watch_id = add_watch(session_factory, created_ago_s=1800)
    a = service(tmp_path, migrated, session_factory, "a")
    b = service(tmp_path, migrated, session_factory, "b")
    try:
        assert a.elect()
        assert not b.elect()
        assert a.active
        assert not b.active
        assert a.aps is not None
        assert [j.id for j in a.aps.get_jobs()] == [f"watch:{watch_id}"]
        # A watch that never ran is due at once: the active scheduler's thread queues it.
        for _ in range(600):
            if count_runs(session_factory) == 1:
                break
            time.sleep(0.05)
        assert count_runs(session_factory) == 1
        # Both firing the same scheduled time still makes one run.
        when = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
        before = count_runs(session_factory)
        first = scheduler.queue_watch_run(watch_id, scheduled_for=when)
        second = scheduler.queue_watch_run(watch_id, scheduled_for=when)
        assert first == second
        assert count_runs(session_factory) == before + 1
        a.stop(grace_s=0)
        assert b.elect()
        assert b.active
    finally:
        a.stop(grace_s=0)
        b.stop(grace_s=0)


def test_schedule_survives_restart_and_missed_runs_coalesce(
    tmp_path: Path, migrated: Engine, session_factory: sessionmaker[Session]
) -> None:
    watch_id = add_watch(session_factory, every_s=1)
    a = service(tmp_path, migrated, session_factory, "a")
    assert a.elect()
    a.stop(grace_s=0)  # the schedule is now only in the job store
    before = count_runs(session_factory)
    time.sleep(3.5)  # the scheduler is down for three intervals
    b = service(tmp_path, migrated, session_factory, "b")
    assert b.queue_due_once()
    with session_factory() as s:
        new = list(s.scalars(select(Run).order_by(Run.id).offset(before)))
        watch = s.get(Watch, watch_id)
    assert len(new) == 1, [r.scheduled_for for r in new]
    run = new[0]
    assert run.late
    assert run.scheduled_for is not None
    assert watch is not None
    assert (run.scheduled_for - watch.created_at).total_seconds() % 1 == 0  # on the schedule
    assert datetime.now(UTC) - run.scheduled_for < timedelta(seconds=3)  # the last missed time
    # Ticking again before the next time queues nothing more.
    assert b.queue_due_once()
    assert count_runs(session_factory) - before in (1, 2)  # at most the next regular run


def test_sigkilled_crawl_is_failed_and_retried(
    tmp_path: Path,
    migrated: Engine,
    session_factory: sessionmaker[Session],
    fake_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_id = queue_now(session_factory)
    svc = service(tmp_path, migrated, session_factory, "r")
    monkeypatch.setenv("FAKE_CRAWL_MODE", "sleep")
    try:
        start_crawl(svc, run_id, fake_dir)
        os.kill(int((fake_dir / f"run-{run_id}.pid").read_text()), signal.SIGKILL)
        svc.children[run_id].proc.wait()
        assert svc.run_pass() == []  # collected; the retry waits for its backoff
        with session_factory() as s:
            run = s.get(Run, run_id)
            assert run is not None
            assert run.state == "failed"
            assert "SIGKILL" in (run.error or "")
            assert run.attempts == 1
            assert run.not_before is not None
        with session_factory.begin() as s:
            s.execute(update(Run).where(Run.id == run_id).values(not_before=datetime.now(UTC)))
        monkeypatch.setenv("FAKE_CRAWL_MODE", "ok")
        assert svc.run_pass() == [run_id]
        svc.wait_children(timeout_s=60)
        with session_factory() as s:
            run = s.get(Run, run_id)
            assert run is not None
            assert run.state == "finished"
            assert run.attempts == 2
        assert (fake_dir / "starts").read_text().split() == [str(run_id), str(run_id)]
    finally:
        svc.stop(grace_s=0)


def test_a_crawl_that_closed_its_own_run_is_left_to_exit(
    tmp_path: Path,
    migrated: Engine,
    session_factory: sessionmaker[Session],
    fake_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The crawl marks its run finished before it exits: the lost lease then means done, not
    taken, and the process is not killed (it once was, leaving a finished run counting 0).
    A run reaped from under it is another matter: that process is stopped."""
    run_id = queue_now(session_factory)
    svc = service(tmp_path, migrated, session_factory, "r")
    monkeypatch.setenv("FAKE_CRAWL_MODE", "sleep")
    try:
        start_crawl(svc, run_id, fake_dir)
        closed = {"state": "finished", "lease_owner": None, "lease_until": None, "pages": 3}
        with session_factory.begin() as s:
            s.execute(update(Run).where(Run.id == run_id).values(**closed))
        svc.run_pass()
        child = svc.children[run_id].proc
        assert child.poll() is None
        child.terminate()
        child.wait()
        svc.run_pass()
        assert run_id not in svc.children
        with session_factory() as s:
            run = s.get(Run, run_id)
            assert run is not None
            assert (run.state, run.pages) == ("finished", 3)
        # Reaped instead: failed, lease gone; the process is stopped.
        with session_factory.begin() as s:
            s.execute(update(Run).where(Run.id == run_id).values(state="queued", pages=0))
        start_crawl(svc, run_id, fake_dir)
        with session_factory.begin() as s:
            reaped = {"state": "failed", "lease_owner": None, "lease_until": None}
            s.execute(update(Run).where(Run.id == run_id).values(**reaped))
        child = svc.children[run_id].proc
        svc.run_pass()
        assert run_id not in svc.children
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        svc.stop(grace_s=0)


def test_shutdown_interrupts_and_requeues_running_crawls(
    tmp_path: Path,
    migrated: Engine,
    session_factory: sessionmaker[Session],
    fake_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_id = queue_now(session_factory)
    svc = service(tmp_path, migrated, session_factory, "r")
    monkeypatch.setenv("FAKE_CRAWL_MODE", "sleep")
    start_crawl(svc, run_id, fake_dir)
    svc.stop(grace_s=1)
    with session_factory.begin() as s:
        run = s.get(Run, run_id)
        assert run is not None
        assert run.state == "interrupted"
        assert "shutdown" in (run.error or "")
        again = runs.claim_run(s, "other", 30)
        assert again is not None
        assert again.id == run_id  # nothing lost: another runner takes it up


def test_the_real_crawl_command_is_the_default() -> None:
    cmd = scheduler.default_crawl_command()
    assert Path(cmd[0]).name == "rightswatch" or cmd[0] == sys.executable


@pytest.mark.parametrize("stall", [timedelta(seconds=5), timedelta(days=3)])
def test_a_stalled_loop_drops_no_run(
    tmp_path: Path, migrated: Engine, session_factory: sessionmaker[Session], stall: timedelta
) -> None:
    """APScheduler's default grace is 1 s: a 5 s stall would drop the run. Ours is explicit."""
    watch_id = add_watch(session_factory)
    with session_factory.begin() as s:
        watch = s.get(Watch, watch_id)
        assert watch is not None
        runs.queue_run(s, watch, watch.created_at, "test")  # not its first run
    svc = service(tmp_path, migrated, session_factory, "a")
    aps = svc._new_aps(scheduler.OneShotScheduler)
    assert isinstance(aps, scheduler.OneShotScheduler)
    scheduler._factory = session_factory
    aps.start()
    due = datetime.now(UTC).replace(microsecond=0) - stall
    try:
        aps.add_job(scheduler.JOB_FUNC, "date", run_date=due, args=[watch_id], id="stalled")
        aps.run_pending()
    finally:
        aps.shutdown()
    with session_factory() as s:
        run = s.scalars(select(Run).where(Run.scheduled_for == due)).one()
        assert run.late == (stall.total_seconds() > runs.LATE_AFTER_S)


def test_a_new_watch_runs_at_once_then_on_schedule(
    tmp_path: Path, migrated: Engine, session_factory: sessionmaker[Session]
) -> None:
    add_watch(session_factory)  # every hour, created an hour ago, never run
    svc = service(tmp_path, migrated, session_factory, "a")
    assert svc.queue_due_once()
    assert count_runs(session_factory) == 1
    with session_factory() as s:
        assert not s.scalars(select(Run)).one().late
    assert svc.queue_due_once()
    assert count_runs(session_factory) == 1  # the next one is an hour away
