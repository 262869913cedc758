"""record_use upserts one row per (work, page, media); reviews land as StatusChange rows."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from svc_rows import T0, make_work

from evidence.errors import BadInput
from evidence.licences import add_licence
from evidence.models import Match, StatusChange
from evidence.reviews import set_status
from evidence.uses import canonical_url, match_json, record_use, url_key
from fingerprints import Hit

CONTRACT_KEYS = {
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


def _use(session: Session, work_id: int, **kw: object) -> tuple[Match, bool]:
    args: dict[object, object] = {
        "work_id": work_id,
        "page_url": "https://Shop.Example.com/p?b=2&a=1#top",
        "media_url": "https://cdn.example.com/x.jpg",
        "hit": Hit(work_id=work_id, score=0.9, method="image_phash"),
        "run_id": None,
        "media_sha256": "sha256:" + "a" * 64,
        "flags": ["rights_metadata_removed"],
        "seen_at": T0,
    }
    args.update(kw)
    return record_use(session, **args)  # type: ignore[arg-type]


def test_url_key_canonicalises_spellings() -> None:
    assert url_key("HTTPS://Example.COM:443/a?b=1&a=2#f") == url_key(
        "https://example.com/a?a=2&b=1"
    )
    assert url_key("https://example.com") == url_key("https://example.com/")
    assert url_key("https://example.com/a") != url_key("https://example.com/b")
    assert canonical_url("http://h.example:8080/x") == "http://h.example:8080/x"
    with pytest.raises(BadInput):
        url_key("ftp://example.com/x")


def test_record_use_upserts_and_keeps_best(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as s:
        work = make_work(s, "X", "w1")
        m1, created1 = _use(s, work.id)
        m2, created2 = _use(
            s,
            work.id,
            page_url="https://shop.example.com/p?a=1&b=2",
            hit=Hit(work_id=work.id, score=0.95, method="image_phash"),
            flags=["other"],
            seen_at=T0 + timedelta(days=1),
        )
        _use(s, work.id, hit=Hit(work_id=work.id, score=0.5), seen_at=T0 + timedelta(hours=1))
        assert created1
        assert not created2
        assert m1.id == m2.id
        assert s.scalar(select(func.count()).select_from(Match)) == 1
        data = match_json(m2)
    assert set(data) == CONTRACT_KEYS | {"region"}
    assert data["score"] == 0.95
    assert data["first_seen"] == "2026-01-01T12:00:00Z"
    assert data["last_seen"] == "2026-01-02T12:00:00Z"
    assert data["flags"] == ["rights_metadata_removed", "other"]
    assert data["status"] == "pending"
    assert data["evidence_ids"] == []


def test_licence_makes_new_use_licensed_and_expiry_brings_it_back(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as s:
        work = make_work(s, "X", "w1")
        add_licence(
            s,
            domain="example.com",
            work=work,
            rightsholder_id=None,
            until=date(2026, 6, 30),
            created_by="test",
        )
        m, _ = _use(s, work.id)
        assert m.status == "licensed"
        m, _ = _use(s, work.id, seen_at=T0.replace(year=2027))
        assert m.status == "pending"
        changes = list(s.scalars(select(StatusChange)))
        assert [(c.old_status, c.new_status, c.by) for c in changes] == [
            ("licensed", "pending", "licence")
        ]


def test_set_status_records_who_and_rejects_unknown(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as s:
        work = make_work(s, "X", "w1")
        m, _ = _use(s, work.id)
        set_status(s, m, "confirmed", note="clear copy", by="cli:alice")
        with pytest.raises(BadInput, match="unknown status"):
            set_status(s, m, "deleted", note=None, by="cli:alice")
    with session_factory() as s:
        change = s.scalars(select(StatusChange)).one()
        assert (change.old_status, change.new_status, change.by, change.note) == (
            "pending",
            "confirmed",
            "cli:alice",
            "clear copy",
        )
        assert s.get(Match, m.id).status == "confirmed"  # type: ignore[union-attr]


def test_record_use_refuses_unknown_work_and_naive_time(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as s:
        with pytest.raises(BadInput, match="no work"):
            _use(s, 999)
        work = make_work(s, "X", "w1")
        with pytest.raises(BadInput, match="timezone"):
            _use(s, work.id, seen_at=T0.replace(tzinfo=None))
