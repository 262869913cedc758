"""Fixtures every room shares.

* `db_url`: parametrised over SQLite (a file in a temp dir) and the PostgreSQL on this machine
  (a fresh schema per test, dropped afterwards): every database test runs on both.
* `rw_env` / `rw`: run the real `rightswatch` command in a subprocess against that database.
* `migrated`: an engine on `db_url` migrated to Alembic head, and `session_factory` on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from evidence.db import make_engine, make_session_factory
from evidence.migrate import upgrade

PG_SERVER = os.environ.get(
    "RIGHTSWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
RIGHTSWATCH = str(Path(sys.executable).with_name("rightswatch"))
# Evidence screenshots start a browser that requests each matched page again: off unless a
# test turns them on (tests/integration/evidence, tests/e2e/test_demo.py), so crawl tests see
# only the crawler's own requests.
SCREENSHOTS = os.environ.setdefault("RIGHTSWATCH_SCREENSHOTS", "off")


def _pg_available() -> bool:
    try:
        eng = create_engine(PG_SERVER, connect_args={"connect_timeout": 3})
        with eng.connect():
            pass
        eng.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_server() -> str:
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_SERVER}; .ci/run must start it")
        pytest.skip("PostgreSQL not reachable")
    return PG_SERVER


@pytest.fixture
def pg_schema_url(pg_server: str) -> Iterator[str]:
    """A URL whose search_path is a fresh schema, so tests never see each other's tables."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{pg_server}?options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'rightswatch.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def migrated(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(migrated: Engine) -> sessionmaker[Session]:
    return make_session_factory(migrated)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def rw_env(home: Path, db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIGHTSWATCH_")}
    env.update(
        RIGHTSWATCH_HOME=str(home),
        RIGHTSWATCH_DATABASE_URL=db_url,
        RIGHTSWATCH_SCREENSHOTS=SCREENSHOTS,
    )
    return env


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


class RW:
    """Runs `rightswatch ARGS` as a user would, in its own process."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd

    def __call__(
        self, *args: str | Path, timeout: float = 180, env: dict[str, str] | None = None
    ) -> Result:
        proc = subprocess.run(
            [RIGHTSWATCH, *map(str, args)],
            env={**self.env, **(env or {})},
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str | Path, **kw: Any) -> Any:
        """Run with --json, expect exit 0, return the parsed document."""
        res = self(*args, "--json", **kw)
        assert res.code == 0, f"exit {res.code}: {res.err}"
        return res.json


@pytest.fixture
def rw(rw_env: dict[str, str], tmp_path: Path) -> RW:
    return RW(rw_env, tmp_path)


@pytest.fixture
def rw_init(rw: RW) -> RW:
    """A `rw` whose database, store and key are initialised."""
    rw.ok("init")
    return rw
