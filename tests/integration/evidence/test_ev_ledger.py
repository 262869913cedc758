"""The ledger: chain, signatures, serialised appends, clock faults (E6), checkpoints."""

from __future__ import annotations

import itertools
import os
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from evidence import ledger, merkle
from evidence.keys import load_private_key
from evidence.models import LedgerEntry
from rightswatch.config import get_settings


def _public():  # type: ignore[no-untyped-def]
    return load_private_key(get_settings().key_path).public_key()


def test_entries_chain_and_verify(factory: sessionmaker[Session]) -> None:
    with factory.begin() as s:
        for i in range(3):
            ledger.append(s, kind="custody", subject=f"test:{i}", content={"i": i, "t": "é"})
    with factory() as s:
        rows = list(s.scalars(select(LedgerEntry).order_by(LedgerEntry.seq)))
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[0].prev_hash == ledger.GENESIS
    assert rows[1].prev_hash == rows[0].entry_hash
    assert rows[2].prev_hash == rows[1].entry_hash
    for r in rows:
        assert ledger.check_entry(ledger.entry_json(r), _public()) == []
    tampered = ledger.entry_json(rows[1]) | {"content": {"i": 99, "t": "é"}}
    assert ledger.check_entry(tampered, _public()) == ["content hash mismatch"]


def test_clock_backwards_is_refused(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    with factory.begin() as s:
        first = ledger.append(s, kind="custody", subject="t:1", content={})
    earlier = first.created_at - timedelta(minutes=5)
    monkeypatch.setattr(ledger, "clock", lambda: earlier)
    with (
        pytest.raises(ledger.ClockWentBackwards, match="clock went backwards"),
        factory.begin() as s,
    ):
        ledger.append(s, kind="custody", subject="t:2", content={})
    with factory() as s:
        assert s.scalar(select(LedgerEntry.seq).order_by(LedgerEntry.seq.desc())) == 1
    # The same instant as the last entry is not "backwards".
    monkeypatch.setattr(ledger, "clock", lambda: first.created_at)
    with factory.begin() as s:
        assert ledger.append(s, kind="custody", subject="t:2", content={}).seq == 2


def test_times_are_utc_whatever_the_tz(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    fixed = datetime(2026, 3, 29, 0, 59, 59, 999999, tzinfo=UTC)  # EU DST switch boundary
    monkeypatch.setattr(ledger, "clock", lambda: fixed)
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        with factory.begin() as s:
            entry = ledger.append(s, kind="custody", subject="tz", content={})
        with factory() as s:
            stored = s.get(LedgerEntry, entry.seq)
            assert stored is not None
            assert ledger.entry_json(stored)["created_at"] == "2026-03-29T00:59:59.999999Z"
            assert ledger.check_entry(ledger.entry_json(stored), _public()) == []
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_concurrent_appends_are_serialised(factory: sessionmaker[Session]) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(10):
                with factory.begin() as s:
                    ledger.append(s, kind="custody", subject=f"w{n}:{i}", content={"n": n})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with factory() as s:
        rows = list(ledger.entries(s))
    assert [r.seq for r in rows] == list(range(1, 31))
    for a, b in itertools.pairwise(rows):
        assert b.prev_hash == a.entry_hash
        assert b.created_at >= a.created_at


def test_checkpoint_signs_the_merkle_root(factory: sessionmaker[Session]) -> None:
    with factory.begin() as s:
        for i in range(5):
            ledger.append(s, kind="custody", subject=f"c{i}", content={"i": i})
        cp = ledger.make_checkpoint(s)
        again = ledger.make_checkpoint(s)
    assert again.id == cp.id
    assert cp.size == 5
    pub = _public()
    assert ledger.check_checkpoint(ledger.checkpoint_json(cp), pub) == []
    forged = ledger.checkpoint_json(cp) | {"size": 4}
    assert ledger.check_checkpoint(forged, pub) == ["bad checkpoint signature"]
    with factory() as s:
        hashes = ledger.leaf_hashes(s)
    root = ledger.digest_bytes(cp.root)
    for i, h in enumerate(hashes):
        assert merkle.verify_inclusion(i, 5, h, merkle.inclusion_proof(i, hashes), root)
    assert os.stat(get_settings().key_path).st_mode & 0o077 == 0
