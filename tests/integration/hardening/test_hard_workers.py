"""Celery workers on the real Redis (DB 13, flushed) and both databases: two workers, twenty
queued runs, one worker SIGKILLed mid-run -> every run completes exactly once (D7, issue 7)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from evidence import runs
from evidence.models import Run, RunState, Watch
from rightswatch import tasks
from rightswatch.config import from_env

HERE = Path(__file__).parent
REDIS_URL = os.environ.get("RIGHTSWATCH_TEST_REDIS", "redis://127.0.0.1:6379/13")


def redis_db(n: int) -> str:
    """REDIS_URL on database n: each test that flushes its database has one of its own, so
    tests running at once on other xdist workers never empty each other's queues."""
    return REDIS_URL.rsplit("/", 1)[0] + f"/{n}"


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    import redis

    url = redis_db(12 if "postgresql" in request.node.name else 13)
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable at {url}")
        pytest.skip("Redis not reachable")
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


def wait_for(what: str, check: Callable[[], Any], timeout: float = 180) -> Any:
    """Poll until check() is truthy; the timeout only turns a hang into a failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def queue_runs(factory: sessionmaker[Session], n: int) -> list[int]:
    ids = []
    with factory.begin() as session:
        for i in range(n):
            watch = Watch(name=f"site{i}", seeds=[f"http://127.0.0.1:9/{i}"])
            session.add(watch)
            session.flush()
            ids.append(runs.queue_run(session, watch, datetime.now(UTC), "test").id)
    return ids


def log_lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is dead too
        return fh.read().split()[2] != "Z"


def test_two_workers_one_killed_every_run_once(
    redis_url: str,
    migrated: Any,
    session_factory: sessionmaker[Session],
    db_url: str,
    home: Path,
    tmp_path: Path,
) -> None:
    run_ids = queue_runs(session_factory, 20)
    crawl_log = tmp_path / "crawls.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RIGHTSWATCH_")},
        "RIGHTSWATCH_HOME": str(home),
        "RIGHTSWATCH_DATABASE_URL": db_url,
        "RIGHTSWATCH_BROKER_URL": redis_url,
        "FAKE_CRAWL_LOG": str(crawl_log),
        "FAKE_CRAWL_S": "1.5",
    }
    settings = from_env(env)
    for run_id in run_ids:
        assert tasks.dispatch(settings, run_id) is True
    assert tasks.dispatch(settings, run_ids[0]) is False  # the scheduler offers it again: no copy

    cmd = [
        sys.executable,
        str(HERE / "worker_main.py"),
        "4",
        "10",
        "1",
        sys.executable,
        str(HERE / "fake_crawl.py"),
    ]
    logs = [open(tmp_path / f"worker{i}.log", "wb") for i in range(2)]  # noqa: SIM115
    workers = [subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT) for out in logs]
    try:
        victim = workers[0]
        prefix = f"{socket.gethostname()}:{victim.pid}:"

        def victim_mid_run() -> int | None:
            with session_factory() as session:
                run = session.scalars(
                    select(Run).where(
                        Run.state == RunState.RUNNING, Run.lease_owner.startswith(prefix)
                    )
                ).first()
            if run is None:
                return None
            starts = [
                int(parts[2])
                for parts in log_lines(crawl_log)
                if parts[:2] == ["start", str(run.id)]
            ]
            return run.id if starts else None

        killed_run = wait_for("the victim worker to be mid-crawl", victim_mid_run)
        crawl_pid = [
            int(p[2]) for p in log_lines(crawl_log) if p[:2] == ["start", str(killed_run)]
        ][-1]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        wait_for(
            "the victim's crawl process to die with it", lambda: not alive(crawl_pid), timeout=30
        )

        def all_finished() -> bool:
            with session_factory() as session:
                states = session.scalars(select(Run.state).where(Run.id.in_(run_ids))).all()
            return all(s == RunState.FINISHED for s in states)

        wait_for("every run to finish", all_finished, timeout=240)
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in workers:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for out in logs:
            out.close()

    lines = log_lines(crawl_log)
    done = Counter(int(p[1]) for p in lines if p[0] == "done")
    started = Counter(int(p[1]) for p in lines if p[0] == "start")
    assert done == Counter(dict.fromkeys(run_ids, 1)), "a run was completed twice or never"
    assert started[killed_run] == 2, "the killed run was not re-delivered and re-run"
    assert sum(started.values()) == 21
    with session_factory() as session:
        rows = {r.id: r for r in session.scalars(select(Run).where(Run.id.in_(run_ids)))}
    assert rows[killed_run].attempts == 2
    assert "ran out: its worker died" in (rows[killed_run].error or "")
    assert all(rows[i].attempts == 1 for i in run_ids if i != killed_run)
    assert all(r.lease_owner is None for r in rows.values())
    assert workers[1].returncode == 0, (tmp_path / "worker1.log").read_text()[-2000:]


def test_execute_skips_runs_that_are_not_its_to_run(
    migrated: Any, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """The decisions a re-delivered or duplicate message meets, without a broker."""
    crawl_log = tmp_path / "crawls.log"
    os.environ["FAKE_CRAWL_LOG"] = str(crawl_log)
    os.environ["FAKE_CRAWL_S"] = "0"
    try:
        opts = tasks.WorkerOptions(
            lease_s=30, crawl_command=[sys.executable, str(HERE / "fake_crawl.py")]
        )
        first, second, third = queue_runs(session_factory, 3)
        assert tasks.execute(session_factory, first, opts).state == RunState.FINISHED
        again = tasks.execute(session_factory, first, opts)  # a duplicate message
        assert (again.state, again.retry_in, again.detail) == (
            RunState.FINISHED,
            None,
            "already finished",
        )
        assert tasks.execute(session_factory, 10_000, opts).state == "missing"

        with session_factory.begin() as session:  # someone alive holds `second`
            assert runs.claim_run(session, "other:1", 30, run_id=second) is not None
        busy = tasks.execute(session_factory, second, opts)
        assert busy.state == RunState.RUNNING
        assert busy.retry_in is not None
        assert 29 <= busy.retry_in <= 32

        with session_factory.begin() as session:  # a crawl that failed: retried with backoff
            assert runs.claim_run(session, "other:2", 30, run_id=third) is not None
            runs.finish(session, third, "other:2", error="crawl process exited with status 1")
        backoff = tasks.execute(session_factory, third, opts)
        assert backoff.state == RunState.FAILED
        assert backoff.retry_in is not None
        assert backoff.retry_in > 30
    finally:
        del os.environ["FAKE_CRAWL_LOG"], os.environ["FAKE_CRAWL_S"]
    assert [p[:2] for p in log_lines(crawl_log)] == [["start", str(first)], ["done", str(first)]]


def test_worker_command_needs_a_broker(rw: Any) -> None:
    res = rw("worker")
    assert res.code == 2
    assert res.err.strip() == (
        "rightswatch: error: RIGHTSWATCH_BROKER_URL is not set:"
        " `worker` takes runs from a Celery broker"
    )
    res = rw("worker", env={"RIGHTSWATCH_BROKER_URL": "amqp://127.0.0.1//"})
    assert res.code == 2
    assert "redis://" in res.err
