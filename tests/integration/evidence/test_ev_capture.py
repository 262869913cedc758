"""record_capture: WARC contents read back with warcio, custody fields (E7), idempotency,
incomplete material, WACZ validity."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from evsynth import make_match, make_material
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from warcio.archiveiterator import ArchiveIterator

from evidence import ledger
from evidence.capture import REQUIRED_CUSTODY, REQUIRED_EXCHANGE, record_capture
from evidence.models import Capture, LedgerEntry
from evidence.store import LocalBlobStore
from evidence.wacz import validate_wacz


def test_capture_writes_warc_row_and_ledger(
    factory: sessionmaker[Session], store: LocalBlobStore, tmp_path: Path
) -> None:
    with factory.begin() as s:
        match = make_match(s)
        material = make_material(match)
        cap = record_capture(s, store, match=match, material=material)
        cap_id = cap.id
    with factory() as s:
        cap = s.get_one(Capture, cap_id)
        entry = s.get_one(LedgerEntry, cap.ledger_seq)
        assert entry.subject == f"capture:{cap_id}"
        assert entry.content == cap.custody
        assert cap.complete is True
        assert cap.flags == []
        custody = cap.custody
    for key in REQUIRED_CUSTODY:
        assert custody.get(key) is not None, key
    for side in ("page", "media"):
        for key in REQUIRED_EXCHANGE:
            assert custody[side].get(key) is not None, (side, key)
    assert custody["page"]["redirect_chain"][0] != custody["page"]["final_url"]
    assert custody["media"]["sniffed_type"] == "image/png"
    assert custody["capture_started_at"].endswith("Z")

    warc = store.get(cap.warc_sha256)
    assert hashlib.sha256(warc).hexdigest() == cap.warc_sha256.removeprefix("sha256:")
    kinds, payloads = [], {}
    for rec in ArchiveIterator(io.BytesIO(warc)):
        kinds.append(rec.rec_type)
        body = rec.content_stream().read()
        if rec.rec_type == "response":
            payloads[rec.rec_headers.get_header("WARC-Target-URI")] = body
            assert rec.rec_headers.get_header("WARC-IP-Address") == "127.0.0.1"
    assert kinds == [
        "warcinfo",
        "response",
        "request",
        "response",
        "request",
        "metadata",
        "resource",
    ]
    assert payloads[material.media.url] == material.media.body
    assert payloads[material.page.url] == material.page.body

    wacz_path = tmp_path / "c.wacz"
    wacz_path.write_bytes(store.get(custody["artifacts"]["wacz"]["sha256"]))
    ok, line = validate_wacz(wacz_path)
    assert ok, line


def test_same_match_and_run_is_recorded_once(
    factory: sessionmaker[Session], store: LocalBlobStore
) -> None:
    with factory.begin() as s:
        match = make_match(s)
        first = record_capture(s, store, match=match, material=make_material(match))
        again = record_capture(s, store, match=match, material=make_material(match))
        assert again.id == first.id
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Capture)) == 1
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 1


@pytest.mark.parametrize("flag", ["dataloss", "partial", "truncated", "size-capped", "time-capped"])
def test_incomplete_material_is_never_complete(
    factory: sessionmaker[Session], store: LocalBlobStore, flag: str
) -> None:
    with factory.begin() as s:
        match = make_match(s)
        cap = record_capture(
            s, store, match=match, material=make_material(match, flags=[flag], screenshot=False)
        )
    assert cap.complete is False
    assert flag in cap.flags
    assert cap.custody["complete"] is False
    assert cap.custody["screenshot"] == {"taken": False, "reason": "no screenshot was taken"}


def test_failed_capture_leaves_no_row(
    factory: sessionmaker[Session], store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise ledger.ClockWentBackwards("clock went backwards")

    with factory.begin() as s:
        match = make_match(s)
        match_id = match.id
    monkeypatch.setattr(ledger, "append", boom)
    with factory() as s, s.begin():
        m = s.get_one(type(match), match_id)
        material = make_material(m)
        with pytest.raises(ledger.ClockWentBackwards):
            record_capture(s, store, match=m, material=material)
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Capture)) == 0
