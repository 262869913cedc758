"""A8 for the review pages: hostile page data renders as text, the session cookie is HttpOnly and
SameSite=Strict, state-changing forms need the session and its CSRF token, no open redirect."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from svc_rows import T0
from svc_world import World, build_world, make_client

from evidence.models import Match, StatusChange
from evidence.uses import record_use
from fingerprints import Hit

HOSTILE = 'https://evil.example/"><script>window.pwned=1</script><img src=x onerror=alert(1)>'


def login(client: TestClient, token: str) -> str:
    res = client.post("/login", data={"token": token}, follow_redirects=False)
    assert res.status_code == 303
    cookie = res.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    page = client.get("/")
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def hostile_world(factory: sessionmaker[Session]) -> tuple[World, int]:
    world = build_world(factory)
    with factory.begin() as s:
        match, _ = record_use(
            s,
            work_id=world.a.work_id,
            page_url=HOSTILE,
            media_url=HOSTILE + "/m.jpg",
            hit=Hit(world.a.work_id, 0.9),
            run_id=None,
            media_sha256=None,
            flags=["<b>flag</b>"],
            seen_at=T0,
        )
        return world, match.id


def test_login_queue_and_escaping(session_factory: sessionmaker[Session]) -> None:
    world, hostile_id = hostile_world(session_factory)
    _, client = make_client(session_factory)
    front = client.get("/", follow_redirects=False)
    assert front.status_code == 200
    assert 'name="token"' in front.text  # the login form
    bad = client.post("/login", data={"token": "rw_nope"}, follow_redirects=False)
    assert bad.status_code == 401
    login(client, world.a.tokens["reviewer"])
    page = client.get("/").text
    assert f'id="match-{hostile_id}"' in page
    assert "<script>window.pwned" not in page
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page
    assert "<b>flag</b>" not in page
    assert "onerror=alert(1)>" not in page
    assert f"match-{world.b.match_id}" not in page  # another rightsholder's use
    csp = client.get("/").headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp


def test_review_needs_session_and_csrf(session_factory: sessionmaker[Session]) -> None:
    world = build_world(session_factory)
    _, client = make_client(session_factory)
    url = f"/review/matches/{world.a.match_id}/status"
    assert client.post(url, data={"status": "confirmed"}, follow_redirects=False).status_code == 401
    csrf = login(client, world.a.tokens["reviewer"])
    forged = client.post(
        url, data={"status": "confirmed", "csrf": "x" * 32}, follow_redirects=False
    )
    assert forged.status_code == 403
    missing = client.post(url, data={"status": "confirmed"}, follow_redirects=False)
    assert missing.status_code == 403
    foreign = client.post(
        f"/review/matches/{world.b.match_id}/status",
        data={"status": "confirmed", "csrf": csrf},
        follow_redirects=False,
    )
    assert foreign.status_code == 404
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(StatusChange)) == 0
    ok = client.post(
        url,
        data={"status": "confirmed", "csrf": csrf, "note": "<i>n</i>", "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    assert ok.headers["location"] == "/"
    with session_factory() as s:
        match = s.get(Match, world.a.match_id)
        assert match is not None
        assert match.status == "confirmed"
        change = s.scalars(select(StatusChange)).one()
        assert change.by == "web:reviewer-X"
    assert f"match-{world.a.match_id}" not in client.get("/").text  # left the queue


def test_viewer_cannot_review_and_revocation_ends_the_session(
    session_factory: sessionmaker[Session],
) -> None:
    world = build_world(session_factory)
    _, client = make_client(session_factory)
    csrf = login(client, world.a.tokens["viewer"])
    assert "Confirm" not in client.get("/").text
    res = client.post(
        f"/review/matches/{world.a.match_id}/status",
        data={"status": "confirmed", "csrf": csrf},
        follow_redirects=False,
    )
    assert res.status_code == 403
    from evidence.accounts import revoke_account

    with session_factory.begin() as s:
        revoke_account(s, "viewer-X")
    assert 'name="token"' in client.get("/", follow_redirects=False).text


def test_runs_page_shows_url_errors(session_factory: sessionmaker[Session]) -> None:
    world = build_world(session_factory)
    _, client = make_client(session_factory)
    login(client, world.a.tokens["viewer"])
    page = client.get("/runs").text
    assert "https://a.example/page/broken" in page
    assert "timeout" in page
    assert "https://b.example/page/broken" not in page


def test_bearer_token_reads_pages_but_cannot_post(session_factory: sessionmaker[Session]) -> None:
    world = build_world(session_factory)
    _, client = make_client(session_factory)
    h = {"Authorization": f"Bearer {world.a.tokens['reviewer']}"}
    page = client.get("/", headers=h)
    assert f'id="match-{world.a.match_id}"' in page.text
    res = client.post(
        f"/review/matches/{world.a.match_id}/status",
        data={"status": "confirmed", "csrf": ""},
        headers=h,
        follow_redirects=False,
    )
    assert res.status_code == 403
