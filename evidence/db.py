"""Engines and sessions: one unit of work per item, request or job.

SQLite is the embedded default. Every connection gets WAL, foreign keys, a busy timeout and
synchronous=FULL, and every transaction starts with BEGIN IMMEDIATE: a write lock taken up front
never has to be upgraded later, so busy_timeout can always resolve contention (a deferred
transaction that upgrades can fail with "database is locked" at once). Sessions that only read
(`make_read_session_factory`: the API's GET requests, pollers) start a plain deferred BEGIN, so in
WAL mode they never take the write lock and never starve the crawl's writers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from evidence.errors import DatabaseUnavailable

# A writer may have to wait out another process's burst of fsynced commits on a slow, shared
# disk: 15 s was once too short for 500 of them.
SQLITE_BUSY_TIMEOUT_MS = 60_000


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE instead of pysqlite's deferred BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = FULL")
    finally:
        cursor.close()


READ_ONLY = "rightswatch_read_only"


def _sqlite_begin(conn: Any) -> None:
    read_only = conn.get_execution_options().get(READ_ONLY, False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for a SQLAlchemy URL; SQLite files get the pragmas above."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if url.startswith("postgresql"):
        kwargs.setdefault("connect_args", {}).setdefault("connect_timeout", 10)
    return create_engine(url, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def make_read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for reading only. On SQLite they begin deferred (WAL readers take no lock); a
    write through one still works but may fail at once under contention instead of waiting."""
    return sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)


def describe_db_error(exc: BaseException) -> str:
    """One line for a database failure: the driver's first line, without SQL or parameters."""
    orig = getattr(exc, "orig", None) or exc
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return first[:300]


@contextlib.contextmanager
def translate_db_errors() -> Iterator[None]:
    """Turn 'cannot connect / locked / read-only' into DatabaseUnavailable with one line."""
    try:
        yield
    except OperationalError as exc:
        raise DatabaseUnavailable(f"database unavailable: {describe_db_error(exc)}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise DatabaseUnavailable(f"database went away: {describe_db_error(exc)}") from exc
        raise
