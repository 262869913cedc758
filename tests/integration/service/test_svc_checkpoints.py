"""The active scheduler signs the ledger head on its own, so evidence is anchored between exports;
a standby scheduler never does, and an unreachable TSA never stops the ticks."""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

import scheduler
from evidence import ledger
from evidence.models import Checkpoint
from rightswatch.config import from_env


def _service(
    home: Path, engine: Engine, factory: sessionmaker[Session], name: str, **env: str
) -> scheduler.ServiceScheduler:
    return scheduler.ServiceScheduler(
        settings=from_env({"RIGHTSWATCH_HOME": str(home), **env}),
        engine=engine,
        factory=factory,
        owner=name,
        crawl_command=[sys.executable, "-c", "pass"],
        run_crawls=False,
    )


def _checkpoints(factory: sessionmaker[Session]) -> list[int]:
    with factory() as s:
        return list(s.scalars(select(Checkpoint.size).order_by(Checkpoint.size)))


def test_active_scheduler_checkpoints_the_ledger_once_per_period(
    tmp_path: Path, migrated: Engine, session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as s:
        ledger.append(s, kind="custody", subject="test:1", content={"n": 1})
    active = _service(tmp_path, migrated, session_factory, "a")
    standby = _service(tmp_path, migrated, session_factory, "b")
    try:
        active.tick()
        standby.tick()
        assert _checkpoints(session_factory) == [1]
        with session_factory.begin() as s:
            ledger.append(s, kind="custody", subject="test:2", content={"n": 2})
        active.tick()  # within the period: nothing new
        assert _checkpoints(session_factory) == [1]
        active._next_checkpoint = 0.0  # the period has passed
        active.tick()
        assert _checkpoints(session_factory) == [1, 2]
    finally:
        active.stop(grace_s=0)
        standby.stop(grace_s=0)


def test_unreachable_tsa_does_not_stop_the_scheduler(
    tmp_path: Path, migrated: Engine, session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as s:
        ledger.append(s, kind="custody", subject="test:1", content={"n": 1})
    svc = _service(
        tmp_path, migrated, session_factory, "a", RIGHTSWATCH_TSA_URL="http://127.0.0.1:9/tsa"
    )
    try:
        svc.tick()
        assert svc.active
        with session_factory() as s:
            cp = s.scalar(select(Checkpoint))
            assert cp is not None
            assert cp.tsa_token is None
            assert s.scalar(select(func.count()).select_from(Checkpoint)) == 1
    finally:
        svc.stop(grace_s=0)
