"""The issue's scale-out test with real crawls: PostgreSQL shared by two Celery workers on Redis,
twenty queued runs over the local test web, one worker SIGKILLed mid-run. Every run finishes
once, every planted copy is matched once with one capture, and the exported ledger verifies."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from evidence import runs
from evidence.db import make_engine, make_session_factory
from evidence.models import Capture, CrawlUrl, Match, Run, RunState, Watch
from rightswatch import tasks
from rightswatch.config import from_env

sys.path.insert(0, str(Path(__file__).parents[2] / "site"))
import localweb
from leftovers import kill_leftovers
from test_hard_workers import redis_db, wait_for

HERE = Path(__file__).parent
RIGHTSWATCH = str(Path(sys.executable).with_name("rightswatch"))
RUNS = 20


@pytest.fixture
def redis_url() -> Any:
    import redis

    url = redis_db(14)  # its own database: see test_hard_workers.redis_db
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


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(1200)  # twenty real crawls on two busy cores
def test_twenty_real_runs_two_workers_one_killed(
    redis_url: str, pg_schema_url: str, tmp_path: Path
) -> None:
    web = localweb.build(tmp_path / "web", chain_pages=2 * RUNS, chain_delay_s=0.3)
    home = tmp_path / "home"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RIGHTSWATCH_")},
        "RIGHTSWATCH_HOME": str(home),
        "RIGHTSWATCH_DATABASE_URL": pg_schema_url,
        "RIGHTSWATCH_BROKER_URL": redis_url,
        "RIGHTSWATCH_ALLOW_NETWORKS": "127.0.0.1/32",
    }

    def rw(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [RIGHTSWATCH, *args], env=env, capture_output=True, text=True, check=False, cwd=tmp_path
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    workers: list[subprocess.Popen[bytes]] = []
    logs = []
    engine = make_engine(pg_schema_url)
    factory = make_session_factory(engine)
    try:
        assert rw("init", "--json").returncode == 0
        for ref, path in web.works.files.items():
            assert rw("works", "add", str(path), "--ref", ref, "--json").returncode == 0
        run_ids = []
        with factory.begin() as session:  # run k crawls chain pages 2k and 2k+1
            for k in range(RUNS):
                seeds = [web.chain.url(f"/p{2 * k}.html"), web.chain.url(f"/p{2 * k + 1}.html")]
                watch = Watch(name=f"chain{k}", seeds=seeds, max_depth=0, max_pages=2)
                session.add(watch)
                session.flush()
                run = runs.queue_run(session, watch, datetime.now(UTC), "test")
                run_ids.append(run.id)
        settings = from_env(env)
        for run_id in run_ids:
            assert tasks.dispatch(settings, run_id)

        cmd = [sys.executable, str(HERE / "worker_main.py"), "6", "15", "1", RIGHTSWATCH]
        for i in range(2):
            logs.append(open(tmp_path / f"worker{i}.log", "wb"))  # noqa: SIM115
            workers.append(
                subprocess.Popen(cmd, env=env, stdout=logs[-1], stderr=subprocess.STDOUT)
            )
        victim = workers[0]
        prefix = f"{socket.gethostname()}:{victim.pid}:"

        def victim_mid_crawl() -> int | None:
            with factory() as session:
                for run in session.scalars(
                    select(Run).where(
                        Run.state == RunState.RUNNING, Run.lease_owner.startswith(prefix)
                    )
                ):
                    done = session.scalars(
                        select(CrawlUrl.id).where(
                            CrawlUrl.run_id == run.id, CrawlUrl.state == "done"
                        )
                    ).first()
                    if done is not None:
                        return run.id
            return None

        killed = wait_for("the victim to be mid-crawl", victim_mid_crawl, timeout=300)
        victim.send_signal(signal.SIGKILL)
        victim.wait()

        def finished() -> bool:
            with factory() as session:
                states = session.scalars(select(Run.state).where(Run.id.in_(run_ids))).all()
            return all(s == RunState.FINISHED for s in states)

        wait_for("every run to finish", finished, timeout=600)
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in workers:
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for out in logs:
            out.close()
        web.stop()
        kill_leftovers(home)  # the killed worker's crawl leaves its decoder processes behind

    with factory() as session:
        rows = {r.id: r for r in session.scalars(select(Run).where(Run.id.in_(run_ids)))}
        matches = session.scalars(select(Match)).all()
        captures = Counter(c.match_id for c in session.scalars(select(Capture)))
    engine.dispose()
    assert rows[killed].attempts == 2
    assert all(r.attempts == 1 for i, r in rows.items() if i != killed)
    uses = Counter((urlsplit(m.page_url).path, urlsplit(m.media_url).path) for m in matches)
    assert uses == Counter({(f"/p{i}.html", f"/m/{i}.jpg"): 1 for i in range(2 * RUNS)})
    assert captures == Counter({m.id: 1 for m in matches}), "a copy lost or doubled its evidence"

    pack = tmp_path / "all.zip"
    exported = rw("evidence", "export", "--all", "-o", str(pack), "--json")
    assert exported.returncode == 0, exported.stderr
    verified = rw("evidence", "verify", str(pack), "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert '"ok": true' in verified.stdout
