"""A1-A4: object scope (BOLA matrix from the route table), roles per route, authentication,
mass assignment and what responses never contain."""

from __future__ import annotations

import itertools
import logging
import re
from typing import Any

import pytest
from sqlalchemy import MetaData, func, select, text
from sqlalchemy.orm import Session, sessionmaker
from svc_rows import T0, png_bytes
from svc_world import World, auth, build_world, make_client

from evidence.models import LedgerEntry, Licence, Match, Run, StatusChange, Watch, Work

# How to fill each path parameter from a side of the world; a new kind of parameter fails below.
PARAMS = {
    "work_id": "work_id",
    "match_id": "match_id",
    "run_id": "run_id",
    "watch_id": "watch_id",
    "licence_id": "licence_id",
}
# Routes that change state (viewer -> 403); every other POST must be listed as a read.
WRITES = {
    ("POST", "/api/matches/{match_id}/status"),
    ("POST", "/api/licences"),
    ("DELETE", "/api/licences/{licence_id}"),
    ("POST", "/api/works"),
    ("POST", "/api/watches"),
    ("PATCH", "/api/watches/{watch_id}"),
    ("DELETE", "/api/watches/{watch_id}"),
    ("POST", "/api/watches/{watch_id}/runs"),
}
READ_POSTS = {("POST", "/api/exports")}
NONEXISTENT = 987654
LISTS = {
    "/api/works": "work_id",
    "/api/matches": "match_id",
    "/api/watches": "watch_id",
    "/api/runs": "run_id",
    "/api/licences": "licence_id",
}


def api_routes(app: Any) -> list[tuple[str, str]]:
    """Every /api/ route and method, from the application's own route table (via OpenAPI)."""
    out = []
    for path, ops in app.openapi()["paths"].items():
        if path.startswith("/api/"):
            out.extend((m.upper(), path) for m in ops)
    assert len(out) >= 10
    return sorted(out)


_unique = itertools.count(1)


def body_for(method: str, path: str, side: Any) -> dict[str, Any]:
    """The keyword arguments of a valid request to this route (JSON, or a multipart upload)."""
    if path.endswith("/status"):
        return {"json": {"status": "confirmed", "note": "seen"}}
    if path == "/api/exports":
        return {"json": {"match_ids": [side.match_id]}}
    if (method, path) == ("POST", "/api/licences"):
        return {"json": {"domain": "new.example", "work_id": side.work_id}}
    n = next(_unique)
    if (method, path) == ("POST", "/api/works"):
        return {"files": {"file": (f"up-{n}.png", png_bytes(1000 + n), "image/png")}}
    if (method, path) == ("POST", "/api/watches"):
        return {"json": {"name": f"new-watch-{n}", "seeds": ["https://new.example/"]}}
    if method == "PATCH":
        return {"json": {"max_pages": 50, "enabled": True}}
    return {}


def fill(path: str, side: Any) -> str:
    names = re.findall(r"{(\w+)}", path)
    for name in names:
        assert name in PARAMS, f"route {path}: add {name!r} to the BOLA matrix"
        path = path.replace("{" + name + "}", str(getattr(side, PARAMS[name])))
    return path


@pytest.fixture
def world(session_factory: sessionmaker[Session]) -> World:
    return build_world(session_factory)


def test_every_route_is_classified(session_factory: sessionmaker[Session]) -> None:
    app, _ = make_client(session_factory)
    posts = {r for r in api_routes(app) if r[0] != "GET"}
    assert posts == WRITES | READ_POSTS


def test_bola_foreign_objects_look_nonexistent(
    session_factory: sessionmaker[Session], world: World
) -> None:
    app, client = make_client(session_factory)
    b_token = world.b.tokens["reviewer"]
    checked = 0
    for method, path in api_routes(app):
        if "{" not in path:
            continue
        ghost = type("Ghost", (), dict.fromkeys(PARAMS.values(), NONEXISTENT))()
        foreign = client.request(
            method, fill(path, world.a), **body_for(method, path, world.b), headers=auth(b_token)
        )
        missing = client.request(
            method, fill(path, ghost), **body_for(method, path, world.b), headers=auth(b_token)
        )
        assert foreign.status_code == missing.status_code == 404, (method, path, foreign.text)
        assert foreign.content == missing.content, (method, path)
        checked += 1
    assert checked >= 11
    with session_factory() as s:
        assert s.get(Match, world.a.match_id).status == "pending"  # type: ignore[union-attr]
        assert s.scalar(select(func.count()).select_from(StatusChange)) == 0
        watch = s.get(Watch, world.a.watch_id)
        assert watch is not None
        assert (watch.enabled, watch.max_pages) == (True, 1000)
        assert s.get(Licence, world.a.licence_id).until is None  # type: ignore[union-attr]
        assert s.scalars(select(Run.state).where(Run.watch_id == world.a.watch_id)).all() == [
            "queued"
        ]


def test_bola_lists_filters_exports_and_licences(
    session_factory: sessionmaker[Session], world: World
) -> None:
    app, client = make_client(session_factory)
    b = auth(world.b.tokens["reviewer"])
    for method, path in api_routes(app):
        if method != "GET" or "{" in path:
            continue
        attr = LISTS[path]  # a new list route must say which object it lists
        ids = {r["id"] for r in client.get(path, headers=b).json()}
        assert getattr(world.b, attr) in ids, path
        assert getattr(world.a, attr) not in ids, path
    assert client.get("/api/matches", params={"work": world.a.work_ref}, headers=b).json() == []
    assert (
        client.get("/api/matches", params={"work": "X:" + world.a.work_ref}, headers=b).json() == []
    )
    with session_factory() as s:
        exports_before = s.scalar(select(func.count()).where(LedgerEntry.kind == "export"))
    mixed = client.post(
        "/api/exports", json={"match_ids": [world.b.match_id, world.a.match_id]}, headers=b
    )
    ghost = client.post(
        "/api/exports", json={"match_ids": [world.b.match_id, NONEXISTENT]}, headers=b
    )
    assert mixed.status_code == ghost.status_code == 404
    assert mixed.content == ghost.content
    lic = client.post(
        "/api/licences", json={"domain": "x.example", "work_id": world.a.work_id}, headers=b
    )
    assert lic.status_code == 404
    with session_factory() as s:
        assert s.scalar(select(func.count()).where(LedgerEntry.kind == "export")) == exports_before
    # The admin sees everyone's.
    admin = auth(world.admin_token)
    got = {
        m["id"]
        for m in client.get("/api/matches", params={"status": "pending"}, headers=admin).json()
    }
    assert {world.a.match_id, world.b.match_id} <= got
    assert client.get(f"/api/matches/{world.a.match_id}", headers=admin).status_code == 200


@pytest.mark.parametrize(
    ("role", "write_status"), [("viewer", 403), ("reviewer", 200), ("admin", 200)]
)
def test_roles_over_every_route(
    session_factory: sessionmaker[Session], world: World, role: str, write_status: int
) -> None:
    app, client = make_client(session_factory)
    token = world.admin_token if role == "admin" else world.a.tokens[role]
    for method, path in api_routes(app):
        url = fill(path, world.a)
        res = client.request(method, url, **body_for(method, path, world.a), headers=auth(token))
        if (method, path) in WRITES:
            assert res.status_code == write_status or (write_status, res.status_code) == (
                200,
                201,
            ), (role, method, path, res.text)
        else:
            assert res.status_code in (200, 404), (role, method, path, res.text)  # 404: no media
            assert res.status_code == 200 or path.endswith(("/media", "/original")), (
                path,
                res.text,
            )
    with session_factory() as s:
        changes = s.scalar(select(func.count()).select_from(StatusChange))
        entries = s.scalar(select(func.count()).where(LedgerEntry.kind == "status"))
    assert changes == entries == (0 if role == "viewer" else 1)
    with session_factory() as s:
        works = s.scalar(select(func.count()).select_from(Work))
        watches = s.scalar(select(func.count()).select_from(Watch))
    assert (works, watches) == ((2, 2) if role == "viewer" else (3, 3))


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer ", "Bearer garbage", "Basic dXNlcjpwYXNz", "Token abc", "bearer  x y"],
)
def test_authentication_required(
    session_factory: sessionmaker[Session], world: World, header: str | None
) -> None:
    app, client = make_client(session_factory)
    headers = {"Authorization": header} if header is not None else {}
    for method, path in api_routes(app):
        res = client.request(
            method, fill(path, world.a), **body_for(method, path, world.a), headers=headers
        )
        assert res.status_code == 401, (header, method, path)
        assert res.json() == res.json() | {"message": res.json()["message"]}
        assert res.headers["www-authenticate"] == "Bearer"


def test_revoked_token_and_token_in_query_string(
    session_factory: sessionmaker[Session], world: World
) -> None:
    _, client = make_client(session_factory)
    assert client.get("/api/works", headers=auth(world.revoked_token)).status_code == 401
    token = world.a.tokens["reviewer"]
    assert (
        client.get("/api/works", params={"token": token, "access_token": token}).status_code == 401
    )
    assert client.get("/api/works", headers=auth(token)).status_code == 200


def _dump(factory: sessionmaker[Session]) -> str:
    meta = MetaData()
    with factory() as s:
        meta.reflect(bind=s.get_bind())
        parts = [repr(list(s.execute(select(t)))) for t in meta.sorted_tables]
        if s.get_bind().dialect.name == "sqlite":
            parts.append(repr(list(s.execute(text("SELECT * FROM sqlite_master")))))
    return "\n".join(parts)


def test_tokens_are_never_stored_or_logged(
    session_factory: sessionmaker[Session], world: World, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = [
        world.admin_token,
        world.revoked_token,
        *world.a.tokens.values(),
        *world.b.tokens.values(),
    ]
    assert len(set(tokens)) == len(tokens)
    for token in tokens:
        assert len(token.removeprefix("rw_")) >= 43  # 32 random bytes, base64url: 256 bits
    _, client = make_client(session_factory)
    with caplog.at_level(logging.DEBUG):
        for token in tokens:
            client.get("/api/works", headers=auth(token))
            client.post(
                f"/api/matches/{world.a.match_id}/status",
                json={"status": "bad"},
                headers=auth(token),
            )
            client.post("/login", data={"token": token}, follow_redirects=False)
    dump = _dump(session_factory)
    for token in tokens:
        assert token not in dump
        assert token not in caplog.text
        assert token.removeprefix("rw_") not in dump


@pytest.mark.parametrize(
    "extra",
    [
        {"work_id": 999},
        {"rightsholder": "Y"},
        {"evidence_ids": ["x"]},
        {"id": 5},
        {"by": "someone"},
    ],
)
def test_mass_assignment_is_refused(
    session_factory: sessionmaker[Session], world: World, extra: dict[str, Any]
) -> None:
    _, client = make_client(session_factory)
    token = world.a.tokens["reviewer"]
    res = client.post(
        f"/api/matches/{world.a.match_id}/status",
        json={"status": "confirmed", **extra},
        headers=auth(token),
    )
    assert res.status_code == 422
    assert "message" in res.json()
    with session_factory() as s:
        match = s.get(Match, world.a.match_id)
        assert match is not None
        assert match.status == "pending"
        assert match.work_id == world.a.work_id


def test_responses_hold_no_secrets_or_paths(
    session_factory: sessionmaker[Session], world: World
) -> None:
    app, client = make_client(session_factory)
    token = world.admin_token
    store_root = str(app.state.ctx.settings.blob_dir)
    for method, path in api_routes(app):
        if method != "GET":
            continue
        res = client.get(fill(path, world.a), headers=auth(token))
        body = res.text
        assert "token_hash" not in body
        assert store_root not in body
        assert "Traceback" not in body
        with session_factory() as s:
            for (h,) in s.execute(text("SELECT token_hash FROM accounts")):
                assert h.removeprefix("sha256:") not in body


def test_bad_input_is_json_never_500(session_factory: sessionmaker[Session], world: World) -> None:
    _, client = make_client(session_factory)
    h = auth(world.a.tokens["reviewer"])
    cases = [
        client.post(f"/api/matches/{world.a.match_id}/status", content=b"{not json", headers=h),
        client.post(
            f"/api/matches/{world.a.match_id}/status", json={"status": "deleted"}, headers=h
        ),
        client.post(f"/api/matches/{world.a.match_id}/status", json=[1, 2], headers=h),
        client.get("/api/matches/abc", headers=h),
        client.get("/api/matches/-1", headers=h),
        client.get(f"/api/matches/{10**30}", headers=h),
        client.get("/api/matches", params={"status": "nope"}, headers=h),
        client.get("/api/matches", params={"limit": "-5"}, headers=h),
        client.get("/api/matches", params={"offset": str(10**40)}, headers=h),
        client.post("/api/exports", json={"match_ids": []}, headers=h),
        client.post("/api/exports", json={"match_ids": ["x"]}, headers=h),
        client.post("/api/licences", json={"domain": "http://x/"}, headers=h),
        client.get("/api/nothing-here", headers=h),
        client.post("/api/works", json={"title": "no file"}, headers=h),
        client.post("/api/works", files={"file": ("x.png", b"\x00" * 10)}, headers=h),
        client.post("/api/works", files={"file": ("../../etc/passwd", b"x")}, headers=h),
        client.post("/api/watches", json={"name": "w", "seeds": ["x"]}, headers=h),
        client.post("/api/watches", json={"name": "w", "seeds": "https://a/"}, headers=h),
        client.post(
            "/api/watches",
            json={"name": "w", "seeds": ["https://a.test/"], "max_depth": 10**12},
            headers=h,
        ),
        client.patch(f"/api/watches/{world.a.watch_id}", json={"name": "renamed"}, headers=h),
        client.patch(f"/api/watches/{world.a.watch_id}", json={"cron": "* *"}, headers=h),
        client.patch(f"/api/watches/{world.a.watch_id}", content=b"[", headers=h),
        client.post(f"/api/watches/{10**30}/runs", headers=h),
        client.delete("/api/licences/0", headers=h),
    ]
    for res in cases:
        assert 400 <= res.status_code < 500, (res.request.url, res.status_code, res.text)
        assert set(res.json()) == {"message"}, res.text
        assert "Traceback" not in res.text


def test_unowned_watches_belong_to_the_default_rightsholder(
    session_factory: sessionmaker[Session], world: World
) -> None:
    from evidence import runs
    from evidence.accounts import add_account
    from evidence.models import Watch

    with session_factory.begin() as s:
        watch = Watch(name="cli-watch", seeds=["https://z.example/"])
        s.add(watch)
        s.flush()
        run_id = runs.queue_run(s, watch, T0, "cli").id
        _, default_token = add_account(s, "dflt", role="viewer", rightsholders=["default"])
    _, client = make_client(session_factory)
    for token, sees in [
        (default_token, True),
        (world.admin_token, True),
        (world.a.tokens["viewer"], False),
    ]:
        h = auth(token)
        assert (run_id in {r["id"] for r in client.get("/api/runs", headers=h).json()}) is sees
        assert (client.get(f"/api/runs/{run_id}", headers=h).status_code == 200) is sees
        assert (
            "cli-watch" in {w["name"] for w in client.get("/api/watches", headers=h).json()}
        ) is sees
