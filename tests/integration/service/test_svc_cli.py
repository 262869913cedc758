"""The CLI of the service room, through the real command: accounts, matches, licences."""

from __future__ import annotations

import getpass
from typing import Any

import pytest
from sqlalchemy import text
from svc_rows import T0, make_work

from evidence.db import make_engine, make_session_factory
from evidence.uses import record_use
from fingerprints import Hit


@pytest.fixture
def uses(rw_init: Any, db_url: str) -> dict[str, int]:
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    ids = {}
    with factory.begin() as s:
        for holder, ref, page in [
            ("X", "cat", "https://shop.example.com/p"),
            ("Y", "dog", "https://other.example/q"),
        ]:
            work = make_work(s, holder, ref)
            m, _ = record_use(
                s,
                work_id=work.id,
                page_url=page,
                media_url=page + "/i.jpg",
                hit=Hit(work.id, 0.91, offset_s=None),
                run_id=None,
                media_sha256=None,
                flags=["rights_metadata_removed"],
                seen_at=T0,
            )
            ids[ref] = m.id
    engine.dispose()
    return ids


def test_accounts(rw_init: Any, db_url: str) -> None:
    rw = rw_init
    out = rw.ok("accounts", "add", "alice", "--rightsholder", "X", "--role", "viewer")
    assert set(out) == {"name", "role", "token"}
    assert out["role"] == "viewer"
    token = out["token"]
    assert len(token) >= 46
    assert rw.ok("accounts", "add", "root", "--role", "admin")["token"] != token
    assert rw("accounts", "add", "alice", "--rightsholder", "X").code == 2  # exists
    assert rw("accounts", "add", "bob", "--role", "owner").code == 2
    listed = rw.ok("accounts", "list")
    assert [a["name"] for a in listed] == ["alice", "root"]
    assert token not in str(listed)
    assert "hash" not in str(listed)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM accounts")).all()
    engine.dispose()
    assert token not in repr(rows)
    assert rw.ok("accounts", "revoke", "alice")["revoked_at"]
    assert rw("accounts", "revoke", "nobody").code == 2


def test_matches_and_review(rw_init: Any, uses: dict[str, int]) -> None:
    rw = rw_init
    rows = rw.ok("matches")
    assert {r["id"] for r in rows} == set(uses.values())
    keys = {
        "id",
        "work_id",
        "ref",
        "kind",
        "page_url",
        "media_url",
        "score",
        "offset_s",
        "first_seen",
        "last_seen",
        "status",
        "flags",
        "evidence_ids",
    }
    assert keys <= set(rows[0])
    assert rows[0]["first_seen"].endswith("Z")
    assert [r["ref"] for r in rw.ok("matches", "--work", "cat")] == ["cat"]
    out = rw.ok("matches", "set-status", str(uses["cat"]), "confirmed", "--note", "clear copy")
    assert out["status"] == "confirmed"
    assert [r["id"] for r in rw.ok("matches", "--status", "pending")] == [uses["dog"]]
    assert [r["id"] for r in rw.ok("matches", "--status", "confirmed")] == [uses["cat"]]
    bad = rw("matches", "set-status", "999", "confirmed")
    assert bad.code == 2
    assert "no match" in bad.err
    assert rw("matches", "set-status", str(uses["cat"]), "deleted").code == 2
    assert rw("matches", "set-status", str(10**30), "confirmed").code == 2
    assert rw("matches", "--status", "weird").code == 2


def test_review_is_recorded_with_who(rw_init: Any, uses: dict[str, int], db_url: str) -> None:
    rw_init.ok("matches", "set-status", str(uses["dog"]), "dismissed")
    engine = make_engine(db_url)
    with engine.connect() as conn:
        by = conn.execute(text("SELECT by FROM status_changes")).scalar_one()
        kinds = [k for (k,) in conn.execute(text("SELECT kind FROM ledger_entries"))]
    engine.dispose()
    assert by == f"cli:{getpass.getuser()}"
    assert "status" in kinds


def test_licences(rw_init: Any, uses: dict[str, int]) -> None:
    rw = rw_init
    lic = rw.ok(
        "licences", "add", "--work", "cat", "--domain", "example.com", "--until", "2099-12-31"
    )
    assert lic["domain"] == "example.com"
    assert lic["until"] == "2099-12-31"
    assert lic["licensed_matches"] == [uses["cat"]]  # shop.example.com is a subdomain
    assert rw.ok("matches", "--work", "cat")[0]["status"] == "licensed"
    assert rw.ok("matches", "--work", "dog")[0]["status"] == "pending"
    everything = rw.ok("licences", "add", "--all", "--domain", "other.example")
    assert everything["ref"] is None
    assert rw.ok("matches", "--work", "dog")[0]["status"] == "licensed"
    assert len(rw.ok("licences", "list")) == 2
    assert rw("licences", "add", "--work", "cat", "--all", "--domain", "x.com").code == 2
    assert rw("licences", "add", "--domain", "x.com").code == 2
    assert rw("licences", "add", "--all", "--domain", "x.com", "--until", "31/12/2030").code == 2
    assert rw("licences", "add", "--work", "nope", "--domain", "x.com").code == 2
    assert rw("licences", "add", "--all", "--domain", "http://x.com/").code == 2


def test_scheduler_tick_runs_the_due_job_once(rw_init: Any, db_url: str, tmp_path: Any) -> None:
    import sys
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    from evidence.models import Run, Watch

    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    with factory.begin() as s:
        s.add(
            Watch(
                name="w",
                seeds=["http://127.0.0.1:9/"],
                every_s=3600,
                created_at=datetime.now(UTC) - timedelta(minutes=1),
            )
        )
    fake_dir = tmp_path / "fake"
    fake_dir.mkdir()
    fake = Path(__file__).with_name("fake_crawl.py")
    env = {"RIGHTSWATCH_CRAWL_COMMAND": f"{sys.executable} {fake}", "FAKE_CRAWL_DIR": str(fake_dir)}
    first = rw_init.ok("scheduler", "tick", env=env)
    assert first["scheduled"] is True
    assert len(first["runs"]) == 1
    assert rw_init.ok("scheduler", "tick", env=env)["runs"] == []
    with factory() as s:
        run = s.get(Run, first["runs"][0])
        assert run is not None
        assert run.state == "finished"
        assert run.started_by == "scheduler"
    engine.dispose()
    assert (fake_dir / "starts").read_text().split() == [str(first["runs"][0])]


def test_watch_rightsholder_scopes_the_api(rw_init: Any, db_url: str) -> None:
    """`watch add --rightsholder H`: the watch is H's; H's accounts see it, others do not."""
    from fastapi.testclient import TestClient

    from rightswatch.api import create_app
    from rightswatch.config import get_settings

    rw = rw_init
    owned = rw.ok("watch", "add", "x-news", "--url", "https://x.test/", "--rightsholder", "X")
    assert owned["rightsholder"] == "X"
    unowned = rw.ok("watch", "add", "plain", "--url", "https://p.test/")
    assert unowned["rightsholder"] is None
    listed = rw.ok("watch", "list")
    assert [(w["name"], w["rightsholder"]) for w in listed] == [("x-news", "X"), ("plain", None)]
    assert "X" in rw("watch", "list").out  # the human listing names it too
    assert rw("watch", "add", "bad", "--url", "https://b.test/", "--rightsholder", " ").code == 2
    x = rw.ok("accounts", "add", "xv", "--rightsholder", "X", "--role", "viewer")["token"]
    y = rw.ok("accounts", "add", "yv", "--rightsholder", "Y", "--role", "viewer")["token"]
    engine = make_engine(db_url)
    client = TestClient(create_app(get_settings(), engine=engine))
    try:
        for token, names in [(x, ["x-news"]), (y, [])]:
            got = client.get("/api/watches", headers={"Authorization": f"Bearer {token}"}).json()
            assert [w["name"] for w in got] == names
        res = client.get(f"/api/watches/{owned['id']}", headers={"Authorization": f"Bearer {y}"})
        assert res.status_code == 404
    finally:
        engine.dispose()
