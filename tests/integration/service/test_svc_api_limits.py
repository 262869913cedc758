"""A5 and faults: rate limit (429 + Retry-After), body cap (413), page-size cap, export
concurrency (429), the database gone (503 + Retry-After), all as JSON."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker
from svc_rows import T0
from svc_world import auth, build_world, make_client

from evidence.db import make_engine
from evidence.uses import record_use
from fingerprints import Hit
from rightswatch.api import create_app
from rightswatch.config import get_settings


def test_rate_limit_per_token(session_factory: sessionmaker[Session]) -> None:
    world = build_world(session_factory)
    _, client = make_client(session_factory, rate_per_minute=10)
    a, b = auth(world.a.tokens["viewer"]), auth(world.b.tokens["viewer"])
    codes = [client.get("/api/works", headers=a).status_code for _ in range(100)]
    assert codes[:10] == [200] * 10
    assert codes.count(429) >= 85  # the bucket refills 1/6 s: a few may slip through, no more
    res = client.get("/api/works", headers=a)
    assert res.status_code == 429
    assert int(res.headers["retry-after"]) >= 1
    assert "message" in res.json()
    assert client.get("/api/works", headers=b).status_code == 200  # per token, not global


# This test's own Redis database: 13 and 14 belong to the worker tests (they flush theirs).
REDIS_URL = "redis://127.0.0.1:6379/11"


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    prefix = f"rwtest-{uuid.uuid4().hex}"
    yield prefix
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)
    assert not list(client.scan_iter(f"{prefix}*"))
    client.close()


def test_rate_limit_is_shared_by_processes_on_one_redis(
    session_factory: sessionmaker[Session], redis_prefix: str
) -> None:
    """Two app instances (as two `serve` processes) spend one budget: 10 a minute in all."""
    import redis

    world = build_world(session_factory)
    shared = {"rate_per_minute": 10, "rate_storage": REDIS_URL, "rate_key_prefix": redis_prefix}
    _, one = make_client(session_factory, **shared)
    _, two = make_client(session_factory, **shared)
    h = auth(world.a.tokens["viewer"])
    codes = [(one if i % 2 else two).get("/api/works", headers=h).status_code for i in range(30)]
    assert codes[:10] == [200] * 10
    assert codes[10:].count(429) >= 15  # each alone would have let 10 more through
    res = one.get("/api/works", headers=h)
    assert res.status_code == 429
    assert 1 <= int(res.headers["retry-after"]) <= 60
    assert two.get("/api/works", headers=auth(world.b.tokens["viewer"])).status_code == 200
    assert list(redis.Redis.from_url(REDIS_URL).scan_iter(f"{redis_prefix}*"))  # stored there


def test_rate_limit_holds_when_redis_is_down(session_factory: sessionmaker[Session]) -> None:
    """An unreachable storage: each process limits by itself meanwhile, and nothing answers 5xx."""
    world = build_world(session_factory)
    _, client = make_client(
        session_factory,
        rate_per_minute=5,
        rate_storage="redis://127.0.0.1:1/0",
    )
    h = auth(world.a.tokens["viewer"])
    codes = [client.get("/api/works", headers=h).status_code for _ in range(12)]
    assert codes[:5] == [200] * 5
    assert codes[5:].count(429) >= 6


def test_body_cap(session_factory: sessionmaker[Session]) -> None:
    world = build_world(session_factory)
    _, client = make_client(session_factory)
    h = auth(world.a.tokens["reviewer"])
    big = b'{"status": "confirmed", "note": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    res = client.post(
        f"/api/matches/{world.a.match_id}/status",
        content=big,
        headers={**h, "content-type": "application/json"},
    )
    assert res.status_code == 413
    assert "message" in res.json()

    def chunks() -> object:
        for _ in range(20):
            yield b"x" * (1024 * 1024)

    res = client.post(
        "/api/exports", content=chunks(), headers={**h, "content-type": "application/json"}
    )  # type: ignore[arg-type]
    assert res.status_code == 413


def test_page_size_is_capped(session_factory: sessionmaker[Session]) -> None:
    world = build_world(session_factory)
    with session_factory.begin() as s:
        for i in range(5):
            record_use(
                s,
                work_id=world.a.work_id,
                page_url=f"https://c.example/{i}",
                media_url="https://c.example/m.jpg",
                hit=Hit(world.a.work_id, 0.9),
                run_id=None,
                media_sha256=None,
                flags=[],
                seen_at=T0 + timedelta(minutes=i),
            )
    _, client = make_client(session_factory, max_page=3)
    h = auth(world.a.tokens["viewer"])
    res = client.get("/api/matches", params={"limit": 10**9}, headers=h)
    assert res.status_code == 200
    assert len(res.json()) == 3
    second = client.get("/api/matches", params={"limit": 3, "offset": 3}, headers=h).json()
    assert len(second) == 3
    assert not {m["id"] for m in second} & {m["id"] for m in res.json()}


def test_exports_beyond_the_concurrency_limit_answer_429(
    session_factory: sessionmaker[Session],
) -> None:
    world = build_world(session_factory)
    app, client = make_client(session_factory, max_exports=1)
    h = auth(world.a.tokens["reviewer"])
    slots = app.state.ctx.export_slots
    assert slots.acquire(blocking=False)  # one export is running
    try:
        res = client.post("/api/exports", json={"match_ids": [world.a.match_id]}, headers=h)
        assert res.status_code == 429
        assert res.headers["retry-after"]
    finally:
        slots.release()
    res = client.post("/api/exports", json={"match_ids": [world.a.match_id]}, headers=h)
    assert res.status_code == 200
    assert res.headers["content-type"] == "application/zip"
    assert res.content[:2] == b"PK"
    too_many = client.post("/api/exports", json={"match_ids": list(range(1, 1002))}, headers=h)
    assert too_many.status_code == 422


def test_database_unavailable_is_503() -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    from fastapi.testclient import TestClient

    client = TestClient(create_app(get_settings(), engine=engine), raise_server_exceptions=False)
    res = client.get("/api/works", headers=auth("rw_" + "a" * 43))
    assert res.status_code == 503
    assert res.headers["retry-after"] == "5"
    assert res.json() == {"message": "database unavailable"}
    assert client.get("/healthz").status_code == 200
    engine.dispose()
