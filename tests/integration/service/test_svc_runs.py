"""evidence.runs: one run per (watch, time), leases, one run of a watch at a time, retries."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from svc_rows import T0

from evidence import runs
from evidence.models import Run, Watch


def make_watch(session: Session, name: str = "w", every_s: int | None = 60) -> Watch:
    watch = Watch(name=name, seeds=["http://127.0.0.1:9/"], every_s=every_s, created_at=T0)
    session.add(watch)
    session.flush()
    return watch


def test_queue_run_is_idempotent(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as s:
        watch = make_watch(s)
        a = runs.queue_run(s, watch, T0, "scheduler", now=T0)
        b = runs.queue_run(s, watch, T0, "scheduler", now=T0 + timedelta(seconds=5))
        c = runs.queue_run(s, watch, T0 + timedelta(minutes=1), "scheduler", now=T0)
        assert a.id == b.id
        assert c.id != a.id
        assert s.scalar(select(func.count()).select_from(Run)) == 2
        assert not a.late
        assert a.config["seeds"] == ["http://127.0.0.1:9/"]
        late = runs.queue_run(s, watch, T0 + timedelta(minutes=2), "x", late=True, now=T0)
        assert late.late


def test_a_watch_never_runs_twice_at_once(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as s:
        watch = make_watch(s)
        other = make_watch(s, "other")
        first = runs.queue_run(s, watch, T0, "scheduler", now=T0)
        runs.queue_run(s, watch, T0 + timedelta(minutes=1), "scheduler", now=T0)
        third = runs.queue_run(s, other, T0, "scheduler", now=T0)
    with session_factory.begin() as s:
        claimed = runs.claim_run(s, "a", 30, now=T0)
        assert claimed is not None
        assert claimed.id == first.id
    with session_factory.begin() as s:
        second = runs.claim_run(s, "b", 30, now=T0)
        assert second is not None
        assert second.id == third.id  # the watch's next run waits for the first
    with session_factory.begin() as s:
        assert runs.claim_run(s, "c", 30, now=T0) is None
        runs.finish(s, first.id, "a", stats={"pages": 3}, now=T0)
    with session_factory.begin() as s:
        nxt = runs.claim_run(s, "c", 30, now=T0)
        assert nxt is not None
        assert nxt.watch_id == watch.id
        assert s.get(Run, first.id).pages == 3  # type: ignore[union-attr]


def test_concurrent_claims_take_distinct_runs(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as s:
        for i in range(4):
            runs.queue_run(s, make_watch(s, f"w{i}"), T0, "scheduler", now=T0)
        watch = make_watch(s, "busy")
        for k in range(4):
            runs.queue_run(s, watch, T0 + timedelta(minutes=k), "scheduler", now=T0)
    claimed: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def claimer(owner: str) -> None:
        barrier.wait()
        while True:
            with session_factory.begin() as s:
                run = runs.claim_run(s, owner, 30, now=T0)
                if run is None:
                    return
                with lock:
                    claimed.append(run.id)

    threads = [threading.Thread(target=claimer, args=(f"o{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == len(set(claimed)) == 5  # four watches + one run of "busy"
    with session_factory() as s:
        running = s.scalars(select(Run.watch_id).where(Run.state == "running")).all()
        assert len(running) == len(set(running))


def test_expired_lease_is_failed_then_retried_with_backoff(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as s:
        run_id = runs.queue_run(s, make_watch(s), T0, "scheduler", now=T0).id
    with session_factory.begin() as s:
        assert runs.claim_run(s, "dead-runner", 30, now=T0) is not None
    with session_factory.begin() as s:
        assert runs.reap_expired(s, now=T0 + timedelta(seconds=10)) == []
        reaped = runs.reap_expired(s, now=T0 + timedelta(seconds=31))
        assert [r.id for r in reaped] == [run_id]
    with session_factory.begin() as s:
        run = s.get(Run, run_id)
        assert run is not None
        assert run.state == "failed"
        assert "dead-runner" in (run.error or "")
        assert run.not_before == T0 + timedelta(seconds=31 + runs.backoff_s(1))
        assert runs.claim_run(s, "b", 30, now=T0 + timedelta(seconds=40)) is None  # backing off
        again = runs.claim_run(s, "b", 30, now=run.not_before)
        assert again is not None
        assert again.attempts == 2
        assert not runs.renew(s, run_id, "dead-runner", 30)  # the old owner lost it
        assert runs.renew(s, run_id, "b", 30)


def test_gives_up_after_max_attempts(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as s:
        run_id = runs.queue_run(s, make_watch(s), T0, "scheduler", now=T0).id
    now = T0
    for _ in range(runs.MAX_ATTEMPTS):
        with session_factory.begin() as s:
            run = runs.claim_run(s, "r", 30, now=now)
            assert run is not None
            runs.finish(s, run_id, "r", error="crawl process killed by SIGKILL", now=now)
            now = now + timedelta(hours=2)
    with session_factory.begin() as s:
        assert runs.claim_run(s, "r", 30, now=now) is None
        run = s.get(Run, run_id)
        assert run is not None
        assert run.state == "failed"
        assert run.not_before is None
        assert "gave up after 3 attempts" in (run.error or "")


def test_scheduler_lease_has_one_holder(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as s:
        assert runs.acquire_lease(s, "scheduler", "a", 15, now=T0)
    with session_factory.begin() as s:
        assert not runs.acquire_lease(s, "scheduler", "b", 15, now=T0 + timedelta(seconds=5))
        assert runs.acquire_lease(s, "scheduler", "a", 15, now=T0 + timedelta(seconds=5))
    with session_factory.begin() as s:
        assert runs.acquire_lease(s, "scheduler", "b", 15, now=T0 + timedelta(seconds=21))
        assert not runs.acquire_lease(s, "scheduler", "a", 15, now=T0 + timedelta(seconds=22))
