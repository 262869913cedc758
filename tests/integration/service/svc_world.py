"""Two rightsholders' worlds on one database, for the API tests: works, uses, watches, runs,
licences, and accounts of every role (tokens kept here, as a client would hold them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from svc_rows import T0, make_work

from evidence import runs
from evidence.accounts import add_account
from evidence.catalogue import get_rightsholder
from evidence.licences import add_licence
from evidence.models import CrawlUrl, Watch
from evidence.uses import record_use
from fingerprints import Hit
from rightswatch.api import create_app
from rightswatch.config import get_settings


@dataclass
class Side:
    holder: str
    work_id: int = 0
    work_ref: str = ""
    match_id: int = 0
    watch_id: int = 0
    run_id: int = 0
    licence_id: int = 0
    tokens: dict[str, str] = field(default_factory=dict)  # role -> token


@dataclass
class World:
    a: Side
    b: Side
    admin_token: str
    revoked_token: str


def _side(s: Session, holder: str, page: str) -> Side:
    side = Side(holder)
    work = make_work(s, holder, f"ref-{holder}")
    side.work_id, side.work_ref = work.id, work.ref
    match, _ = record_use(
        s,
        work_id=work.id,
        page_url=page,
        media_url=page + "/img.jpg",
        hit=Hit(work_id=work.id, score=0.93, method="image_phash"),
        run_id=None,
        media_sha256=None,
        flags=[],
        seen_at=T0,
    )
    side.match_id = match.id
    owner = get_rightsholder(s, holder)
    watch = Watch(name=f"watch-{holder}", seeds=[page], rightsholder_id=owner.id, every_s=3600)
    s.add(watch)
    s.flush()
    side.watch_id = watch.id
    run = runs.queue_run(s, watch, T0, "test", now=T0)
    s.add(CrawlUrl(run_id=run.id, url_key="0" * 64, url=page + "/broken", error="timeout"))
    side.run_id = run.id
    lic, _ = add_licence(
        s,
        domain=f"licensed-{holder.lower()}.example",
        work=work,
        rightsholder_id=None,
        until=None,
        created_by="test",
    )
    side.licence_id = lic.id
    for role in ("viewer", "reviewer"):
        _, token = add_account(s, f"{role}-{holder}", role=role, rightsholders=[holder])
        side.tokens[role] = token
    return side


def build_world(factory: sessionmaker[Session]) -> World:
    with factory.begin() as s:
        a = _side(s, "X", "https://a.example/page")
        b = _side(s, "Y", "https://b.example/page")
        _, admin_token = add_account(s, "root", role="admin")
        revoked, revoked_token = add_account(s, "gone", role="reviewer", rightsholders=["X"])
        revoked.revoked_at = datetime.now(UTC)
    return World(a, b, admin_token, revoked_token)


def make_client(factory: sessionmaker[Session], **kw: Any) -> tuple[FastAPI, TestClient]:
    app = create_app(get_settings(), engine=factory.kw["bind"], **kw)  # type: ignore[arg-type]
    return app, TestClient(app, raise_server_exceptions=False)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
