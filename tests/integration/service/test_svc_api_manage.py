"""Managing over HTTP: registering works (upload), watches (create, change, disable), running a
watch now, ending a licence; each scoped to the caller's rightsholders and role."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from svc_rows import png_bytes
from svc_world import World, auth, build_world, make_client

from evidence import runs
from evidence.accounts import add_account
from evidence.models import LedgerEntry, Match, Run, Watch, Work
from evidence.uses import record_use
from fingerprints import Hit


@pytest.fixture
def world(session_factory: sessionmaker[Session]) -> World:
    return build_world(session_factory)


def upload(name: str, data: bytes, **form: str) -> dict[str, Any]:
    return {"files": {"file": (name, data, "image/png")}, "data": form}


def test_register_work_by_upload(session_factory: sessionmaker[Session], world: World) -> None:
    _, client = make_client(session_factory, max_upload_bytes=200_000)
    a, b = auth(world.a.tokens["reviewer"]), auth(world.b.tokens["reviewer"])
    res = client.post(
        "/api/works",
        **upload("poster.png", png_bytes(1), title="Poster", isrc="US-RC1-76-07839"),
        headers=a,
    )
    assert res.status_code == 201, res.text
    work = res.json()
    assert (work["ref"], work["title"], work["rightsholder"]) == ("poster", "Poster", "X")
    assert work["isrc"] == "USRC17607839"
    assert work["fingerprints"]  # fingerprinted like `works add`
    assert work["id"] in {w["id"] for w in client.get("/api/works", headers=a).json()}
    assert work["id"] not in {w["id"] for w in client.get("/api/works", headers=b).json()}
    assert client.get(f"/api/works/{work['id']}", headers=b).status_code == 404
    original = client.get(f"/api/works/{work['id']}/original", headers=a)
    assert original.content == png_bytes(1)

    # The same ref and file again: metadata updated, 200.
    again = client.post("/api/works", **upload("poster.png", png_bytes(1), title="New"), headers=a)
    assert (again.status_code, again.json()["id"], again.json()["title"]) == (
        200,
        work["id"],
        "New",
    )
    # Shares with a co-holder, owned by the caller's rightsholder.
    shared = client.post(
        "/api/works",
        **upload("s.png", png_bytes(2), rightsholder="X; Publisher", share="60; 40"),
        headers=a,
    )
    assert shared.status_code == 201, shared.text
    assert shared.json()["shares"] == [
        {"rightsholder": "X", "share": 60.0},
        {"rightsholder": "Publisher", "share": 40.0},
    ]
    # Another rightsholder's catalogue: only an admin.
    assert (
        client.post("/api/works", **upload("y.png", png_bytes(3), rightsholder="Y"), headers=a)
    ).status_code == 403
    admin = client.post(
        "/api/works",
        **upload("y.png", png_bytes(3), rightsholder="Y"),
        headers=auth(world.admin_token),
    )
    assert (admin.status_code, admin.json()["rightsholder"]) == (201, "Y")
    viewer = auth(world.a.tokens["viewer"])
    assert (
        client.post("/api/works", **upload("v.png", png_bytes(4)), headers=viewer).status_code
        == 403
    )
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Work)) == 5  # 2 of the world + 3


@pytest.mark.parametrize(
    ("kwargs", "status", "says"),
    [
        (upload("notes.png", b"just some text, not a picture"), 422, "notes.png"),
        (upload("empty.png", b""), 422, "empty"),
        (upload("big.png", b"\x89PNG" + b"x" * 300_000), 413, "larger than"),
        (upload("ok.png", png_bytes(5), share="150"), 422, "share"),
        (upload("ok.png", png_bytes(5), isrc="nope"), 422, "ISRC"),
        ({"data": {"title": "no file"}}, 422, "file"),
        (upload("ok.png", png_bytes(5), title="x" * 501), 422, "title"),
    ],
)
def test_upload_bad_input(
    session_factory: sessionmaker[Session],
    world: World,
    kwargs: dict[str, Any],
    status: int,
    says: str,
) -> None:
    _, client = make_client(session_factory, max_upload_bytes=200_000)
    res = client.post("/api/works", **kwargs, headers=auth(world.a.tokens["reviewer"]))
    assert res.status_code == status, res.text
    assert set(res.json()) == {"message"}
    assert says.lower() in res.json()["message"].lower()
    assert "rw-upload-" not in res.text  # never the server's temporary path
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Work)) == 2


def test_account_of_several_rightsholders_names_one(
    session_factory: sessionmaker[Session], world: World
) -> None:
    with session_factory.begin() as s:
        _, token = add_account(s, "both", role="reviewer", rightsholders=["X", "Z"])
    _, client = make_client(session_factory)
    h = auth(token)
    res = client.post("/api/works", **upload("p.png", png_bytes(6)), headers=h)
    assert res.status_code == 422
    assert "name one" in res.json()["message"]
    res = client.post("/api/works", **upload("p.png", png_bytes(6), rightsholder="Z"), headers=h)
    assert (res.status_code, res.json()["rightsholder"]) == (201, "Z")
    res = client.post("/api/watches", json={"name": "zw", "seeds": ["https://z.test/"]}, headers=h)
    assert res.status_code == 422


def test_watch_lifecycle(session_factory: sessionmaker[Session], world: World) -> None:
    _, client = make_client(session_factory)
    a, b = auth(world.a.tokens["reviewer"]), auth(world.b.tokens["reviewer"])
    body = {
        "name": "press",
        "seeds": ["https://Press.example/news"],
        "every": "6h",
        "include": ["/photos/"],
        "max_pages": 20,
    }
    res = client.post("/api/watches", json=body, headers=a)
    assert res.status_code == 201, res.text
    w = res.json()
    assert (w["rightsholder"], w["every_s"], w["cron"], w["enabled"]) == ("X", 21600, None, True)
    assert (w["allow_domains"], w["include"], w["max_pages"]) == (
        ["press.example"],
        ["/photos/"],
        20,
    )
    assert client.get(f"/api/watches/{w['id']}", headers=a).json() == w
    assert client.get(f"/api/watches/{w['id']}", headers=b).status_code == 404
    assert w["id"] not in {x["id"] for x in client.get("/api/watches", headers=b).json()}

    res = client.patch(f"/api/watches/{w['id']}", json={"cron": "0 3 * * *"}, headers=a)
    assert (res.json()["cron"], res.json()["every_s"]) == ("0 3 * * *", None)
    res = client.patch(
        f"/api/watches/{w['id']}", json={"seeds": ["https://other.example/"]}, headers=a
    )
    assert res.json()["allow_domains"] == ["other.example"]  # re-derived from the new seeds
    res = client.patch(f"/api/watches/{w['id']}", json={"max_depth": 1, "every": "1d"}, headers=a)
    assert (res.json()["max_depth"], res.json()["every_s"], res.json()["cron"]) == (1, 86400, None)
    res = client.patch(f"/api/watches/{w['id']}", json={"every": None}, headers=a)
    assert (res.json()["every_s"], res.json()["cron"]) == (None, None)  # by hand only

    # Disabling keeps the watch and its history, and gives up its queued runs.
    queued = client.post(f"/api/watches/{w['id']}/runs", headers=a).json()
    gone = client.delete(f"/api/watches/{w['id']}", headers=a)
    assert (gone.status_code, gone.json()["enabled"]) == (200, False)
    run = client.get(f"/api/runs/{queued['id']}", headers=a).json()
    assert run["state"] == "failed"
    assert "disabled" in run["error"]
    assert client.post(f"/api/watches/{w['id']}/runs", headers=a).status_code == 409
    back = client.patch(f"/api/watches/{w['id']}", json={"enabled": True}, headers=a)
    assert back.json()["enabled"] is True
    with session_factory() as s:
        assert s.scalar(select(func.count()).where(Run.watch_id == w["id"])) == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"every": "6h", "cron": "0 3 * * *"}, 422),
        ({"every": "10s"}, 422),
        ({"every": "99999999999999d"}, 422),
        ({"cron": "61 * * * *"}, 422),
        ({"seeds": ["not a url"]}, 422),
        ({"seeds": []}, 422),
        ({"include": ["("]}, 422),
        ({"max_pages": 0}, 422),
        ({"allow_domains": ["http://x.test/"]}, 422),
        ({"name": "watch-X"}, 422),  # taken
        ({"name": "n\x00ul"}, 422),
        ({"rightsholder": "Y"}, 403),
        ({"ignore_robots": True}, 403),
        ({"enabled": False}, 422),  # not a field of a new watch
    ],
)
def test_watch_bad_input(
    session_factory: sessionmaker[Session], world: World, body: dict[str, Any], status: int
) -> None:
    _, client = make_client(session_factory)
    a = auth(world.a.tokens["reviewer"])
    res = client.post(
        "/api/watches", json={"name": "w", "seeds": ["https://a.test/"], **body}, headers=a
    )
    assert res.status_code == status, res.text
    assert set(res.json()) == {"message"}
    patch = {k: v for k, v in body.items() if k not in ("name", "rightsholder")}
    if patch and (status == 422 or "ignore_robots" in patch):
        res = client.patch(f"/api/watches/{world.a.watch_id}", json=patch, headers=a)
        assert res.status_code == (status if "enabled" not in patch else 200), res.text
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Watch)) == 2
        watch = s.get(Watch, world.a.watch_id)
        assert watch is not None
        assert (watch.every_s, watch.cron, watch.seeds) == (3600, None, ["https://a.example/page"])


def test_admin_may_ignore_robots_and_act_for_anyone(
    session_factory: sessionmaker[Session], world: World
) -> None:
    _, client = make_client(session_factory)
    h = auth(world.admin_token)
    res = client.post(
        "/api/watches",
        json={
            "name": "w",
            "seeds": ["https://a.test/"],
            "ignore_robots": True,
            "rightsholder": "Y",
        },
        headers=h,
    )
    assert res.status_code == 201, res.text
    assert (res.json()["ignore_robots"], res.json()["rightsholder"]) == (True, "Y")
    assert res.json()["id"] in {
        w["id"] for w in client.get("/api/watches", headers=auth(world.b.tokens["viewer"])).json()
    }
    unowned = client.post(
        "/api/watches", json={"name": "u", "seeds": ["https://u.test/"]}, headers=h
    )
    assert unowned.json()["rightsholder"] is None  # the default rightsholder's, as the CLI's


def test_run_now_queues_once(session_factory: sessionmaker[Session], world: World) -> None:
    from crawler.runner import config_for_watch

    _, client = make_client(session_factory)
    a = auth(world.a.tokens["reviewer"])
    # The world's watch already has a queued run: that one is the answer.
    res = client.post(f"/api/watches/{world.a.watch_id}/runs", headers=a)
    assert (res.status_code, res.json()["id"]) == (200, world.a.run_id)

    w = client.post("/api/watches", json={"name": "n", "seeds": ["https://n.test/"]}, headers=a)
    url = f"/api/watches/{w.json()['id']}/runs"
    first = client.post(url, headers=a)
    assert first.status_code == 201, first.text
    run = first.json()
    assert (run["state"], run["started_by"], run["watch"]) == ("queued", "api:reviewer-X", "n")
    assert client.post(url, headers=a).json()["id"] == run["id"]
    with session_factory.begin() as s:
        claimed = runs.claim_run(s, "runner-1", 60, run_id=run["id"])
        assert claimed is not None
        watch = s.get(Watch, w.json()["id"])
        assert watch is not None
        assert claimed.config == config_for_watch(watch).to_json()
    again = client.post(url, headers=a)
    assert (again.status_code, again.json()["id"], again.json()["state"]) == (
        200,
        run["id"],
        "running",
    )
    with session_factory.begin() as s:
        runs.finish(s, run["id"], "runner-1")
    later = client.post(url, headers=a)
    assert later.status_code == 201
    assert later.json()["id"] != run["id"]
    assert client.post(url, headers=auth(world.a.tokens["viewer"])).status_code == 403


def test_end_licence(session_factory: sessionmaker[Session], world: World) -> None:
    now = datetime.now(UTC)

    def sighting() -> str:
        with session_factory.begin() as s:
            match, _ = record_use(
                s,
                work_id=world.a.work_id,
                page_url="https://licensed-x.example/p",
                media_url="https://licensed-x.example/i.jpg",
                hit=Hit(work_id=world.a.work_id, score=0.9),
                run_id=None,
                media_sha256=None,
                flags=[],
                seen_at=now,
            )
            return str(match.status)

    assert sighting() == "licensed"
    _, client = make_client(session_factory)
    a = auth(world.a.tokens["reviewer"])
    assert (
        client.delete(
            f"/api/licences/{world.a.licence_id}", headers=auth(world.a.tokens["viewer"])
        ).status_code
        == 403
    )
    res = client.delete(f"/api/licences/{world.a.licence_id}", headers=a)
    assert res.status_code == 200, res.text
    assert res.json()["until"] == (now.date() - timedelta(days=1)).isoformat()
    assert sighting() == "pending"  # later uses come back to the queue
    assert client.delete(f"/api/licences/{world.a.licence_id}", headers=a).status_code == 200
    with session_factory() as s:
        entries = s.scalars(select(LedgerEntry).where(LedgerEntry.kind == "licence")).all()
        assert [e.subject for e in entries] == [f"licence:{world.a.licence_id}"]  # once
        assert s.scalar(select(func.count()).where(Match.status == "licensed")) == 0
