"""Database faults (HOSTILE.md D1-D5) on both backends: pragmas and lock-at-BEGIN, kill -9 of a
writer in a loop, concurrent writers, idempotent imports, read-only and unreachable databases."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from evidence.db import make_engine, make_read_session_factory
from evidence.migrate import current_revision, head_revision
from evidence.models import CatalogueVersion, Match, Rightsholder, StatusChange

WRITER = str(Path(__file__).with_name("writer.py"))


def noise_png(path: Path, seed: int) -> Path:
    """A small image with a fingerprint of its own."""
    import random

    rnd = random.Random(seed)
    img = Image.new("L", (64, 64))
    img.putdata([rnd.randrange(256) for _ in range(64 * 64)])
    img.resize((256, 256)).save(path)
    return path


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("rightswatch: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


# --- D1 ---------------------------------------------------------------------------------------


def test_init_twice_is_idempotent(rw: Any, db_url: str, home: Path) -> None:
    rw.ok("init")
    key = (home / "signing-key.pem").read_bytes()
    engine = make_engine(db_url)
    with engine.connect() as conn:
        tables = sorted(conn.dialect.get_table_names(conn))
    rw.ok("init")
    assert (home / "signing-key.pem").read_bytes() == key
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert sorted(conn.dialect.get_table_names(conn)) == tables
        assert conn.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    engine.dispose()


def test_every_connection_is_durable(migrated: Engine, db_url: str) -> None:
    """Every pooled connection, not just the first, has the pragmas (SQLite) / sync commit (PG)."""
    conns = [migrated.connect() for _ in range(3)]
    try:
        for conn in conns:
            if db_url.startswith("sqlite"):
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            else:
                assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
            conn.rollback()  # every transaction holds the write lock (BEGIN IMMEDIATE): end it
        assert len({id(c.connection.dbapi_connection) for c in conns}) == 3
    finally:
        for conn in conns:
            conn.close()


def test_sqlite_write_lock_is_taken_at_begin(tmp_path: Path) -> None:
    """With another connection holding the write lock, our transaction fails at BEGIN (not at a
    later write, where a deferred transaction would have to upgrade and could fail at once)."""
    url = f"sqlite:///{tmp_path / 'lock.db'}"
    engine = make_engine(url, connect_args={"timeout": 0})

    @event.listens_for(engine, "connect")
    def no_wait(dbapi_conn: Any, _rec: Any) -> None:  # after make_engine's own listener
        dbapi_conn.execute("PRAGMA busy_timeout = 0")

    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    holder = sqlite3.connect(tmp_path / "lock.db", isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    try:
        statements: list[str] = []

        @event.listens_for(engine, "before_cursor_execute")
        def seen(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
            statements.append(statement)

        with pytest.raises(OperationalError, match="database is locked"), engine.begin() as conn:
            conn.exec_driver_sql("SELECT count(*) FROM t")  # would succeed in a deferred tx
        assert not any("SELECT count" in s for s in statements), "failed only after BEGIN"
        # The contrast: a deferred transaction reads happily while the lock is held.
        plain = sqlite3.connect(tmp_path / "lock.db", timeout=0)
        assert plain.execute("SELECT count(*) FROM t").fetchone() == (0,)
        plain.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with engine.begin() as conn:  # once released, the same engine writes
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    engine.dispose()


# --- D3 ---------------------------------------------------------------------------------------


def _kill_after(url: str, tag: str, acks: int) -> list[str]:
    proc = subprocess.Popen(
        [sys.executable, WRITER, "heavy", url, tag, "1000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    for line in proc.stdout:
        seen.append(line.strip())
        if len(seen) >= acks:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, err
    assert len(seen) == acks, err
    return seen


def test_kill_9_writer_in_a_loop(
    migrated: Engine, session_factory: sessionmaker[Session], db_url: str
) -> None:
    acked: list[str] = []
    for round_ in range(5):
        acked += _kill_after(db_url, f"k{round_}", acks=10 + 7 * round_)
    if db_url.startswith("sqlite"):
        with migrated.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    with session_factory() as session:
        names = set(session.scalars(select(Rightsholder.name)))
        assert set(acked) <= names, "an acknowledged commit is missing"
        counts = dict(
            session.execute(
                select(CatalogueVersion.change, func.count()).group_by(CatalogueVersion.change)
            ).all()
        )
    # Nothing half-written: every transaction that is there is there whole (committed or not).
    assert {n: counts.get(n) for n in names} == dict.fromkeys(names, 20)
    proc = subprocess.run(
        [sys.executable, WRITER, "heavy", db_url, "after", "5"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr  # the database is usable after the kills


# --- D2 ---------------------------------------------------------------------------------------


def test_two_processes_x_500_writes(
    migrated: Engine, session_factory: sessionmaker[Session], db_url: str, tmp_path: Path
) -> None:
    from evidence.catalogue import WorkInput, register, validate
    from evidence.keys import ensure_key
    from evidence.store import LocalBlobStore
    from evidence.uses import list_matches
    from fingerprints import MediaKind, Prints
    from fingerprints.registry import by_name

    home = tmp_path / "home"
    home.mkdir()
    ensure_key(home / "signing-key.pem")
    phash = by_name("image_phash")
    prints = Prints(
        MediaKind.IMAGE, "image/png", {phash.name: (phash.version, "8f373714acfcf4d0")}, None, 8, 8
    )
    item = validate(WorkInput(path=tmp_path / "w.png", ref="w"), "default")
    with session_factory.begin() as session:
        register(session, LocalBlobStore(home / "blobs"), item, b"work bytes", prints)

    env = {**os.environ, "RIGHTSWATCH_HOME": str(home), "RIGHTSWATCH_DATABASE_URL": db_url}
    procs = [
        subprocess.Popen(
            [sys.executable, WRITER, "uses", db_url, tag, "500"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for tag in ("a", "b")
    ]
    reads = 0
    reader = make_read_session_factory(migrated)  # a reader, as the API's GET `matches` is
    while any(p.poll() is None for p in procs):
        with reader() as session:
            list_matches(session)
        reads += 1
    outs = [p.communicate() for p in procs]
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert "locked" not in err.lower(), err
        assert proc.returncode == 0, err
        assert len(out.splitlines()) == 500
    acked_uses = {
        int(line.split()[1])
        for out, _ in outs
        for line in out.splitlines()
        if line.startswith("use")
    }
    with session_factory() as session:
        ids = set(session.scalars(select(Match.id)))
        changes = session.scalar(select(func.count()).select_from(StatusChange))
    assert len(acked_uses) == 500
    assert acked_uses <= ids
    assert changes == 500
    assert reads > 0


# --- D4 ---------------------------------------------------------------------------------------


def test_same_import_twice_skips(rw: Any, tmp_path: Path) -> None:
    rw.ok("init")
    media = tmp_path / "media"
    media.mkdir()
    for i in range(3):
        noise_png(media / f"w{i}.png", seed=i)
    manifest = media / "works.csv"
    manifest.write_text("path,ref,title\n" + "".join(f"w{i}.png,W{i},Work {i}\n" for i in range(3)))
    first = rw.ok("works", "import", manifest)
    assert (first["imported"], first["updated"], first["skipped"], first["errors"]) == (3, 0, 0, [])
    again = rw.ok("works", "import", manifest)
    assert (again["imported"], again["updated"], again["skipped"], again["errors"]) == (0, 0, 3, [])
    assert sorted(w["ref"] for w in rw.ok("works", "list")) == ["W0", "W1", "W2"]


def test_an_open_reader_does_not_block_a_writer(migrated: Engine) -> None:
    """The API's GET sessions read without the write lock: a writer never waits on them (were
    the reader holding it, this insert would wait out the 15 s busy timeout and fail)."""
    reader = make_read_session_factory(migrated)
    with reader() as reading:
        reading.scalar(select(func.count()).select_from(Rightsholder))  # its transaction is open
        with migrated.begin() as conn:
            conn.execute(Rightsholder.__table__.insert().values(name="written while read"))
    with migrated.connect() as conn:
        names = conn.scalars(select(Rightsholder.name)).all()
    assert "written while read" in names


# --- D5 ---------------------------------------------------------------------------------------


def test_read_only_sqlite_fails_with_one_line(
    rw: Any, db_url: str, tmp_path: Path, mounted: Any
) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("a read-only file is a SQLite fault; PostgreSQL's is in test_hard_pg_cluster")
    rw.ok("init")
    rw.ok("works", "add", noise_png(tmp_path / "a.png", 1))
    db_file = Path(db_url.removeprefix("sqlite:///"))
    if os.geteuid() == 0:
        mounted("bind", db_file)
    else:
        db_file.chmod(0o444)
    res = rw("works", "add", noise_png(tmp_path / "b.png", 2))
    assert res.code == 1
    line = one_line_error(res.err)
    assert "database" in line
    assert "readonly" in line or "read-only" in line or "read only" in line
    listed = rw("works", "list", "--json")  # reading still works, or fails as cleanly
    if listed.code == 0:
        assert [w["ref"] for w in listed.json] == ["a"]
    else:
        one_line_error(listed.err)


@pytest.mark.postgres
def test_unreachable_postgresql_is_one_line(rw: Any, tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/nothing"
    for args in (
        ("init",),
        ("works", "list"),
        ("works", "add", str(noise_png(tmp_path / "x.png", 3))),
    ):
        res = rw(*args, env={"RIGHTSWATCH_DATABASE_URL": url})
        assert res.code == 1, res.err
        assert "database unavailable" in one_line_error(res.err)
