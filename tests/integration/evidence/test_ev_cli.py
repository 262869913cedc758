"""The evidence and claims commands through the real CLI: export/verify exit codes and shapes,
`evidence check` (E4 in the database, E8 crash reconciliation), claims rows vs matches (A7),
takedown notices, `evidence timestamp` against the loopback TSA."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from evsynth import make_match, make_material, png
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from evidence.capture import record_capture
from evidence.models import Capture, LedgerEntry, Match
from evidence.store import LocalBlobStore


def _two_matches(factory: sessionmaker[Session], store: LocalBlobStore) -> list[int]:
    store.put(png(1))
    store.put(png(2))
    with factory.begin() as s:
        a = make_match(
            s,
            ref="song-1",
            title='=HYPERLINK("http://evil.test","x")',
            isrc="GBABC2400001",
            iswc="T-034.524.680-1",
            shares=[("Label A", "60"), ("Publisher B", "40")],
        )
        record_capture(s, store, match=a, material=make_material(a))
        b = make_match(
            s,
            ref="pic-2",
            holder="Label C",
            page_url='http://127.0.0.1:8080/"><script>x()</script>',
            media_url="http://127.0.0.1:8080/m2.png",
            seed=2,
        )
        record_capture(s, store, match=b, material=make_material(b, screenshot=False))
        return [a.id, b.id]


def test_export_verify_and_check(
    rw, factory: sessionmaker[Session], store: LocalBlobStore, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    ids = _two_matches(factory, store)
    target = tmp_path / "pack.zip"
    out = rw.ok("evidence", "export", "--match", str(ids[0]), "--match", str(ids[1]), "-o", target)
    assert set(out) == {"path", "matches", "sha256"}
    assert sorted(out["matches"]) == sorted(ids)
    again = rw("evidence", "export", "--all", "-o", target, "--json")
    assert again.code == 2
    assert "exists" in again.err
    assert len(again.err.strip().splitlines()) == 1
    assert rw.ok("evidence", "export", "--work", "song-1", "-o", target, "--force")["matches"] == [
        ids[0]
    ]
    assert rw("evidence", "export", "--match", "999999", "-o", tmp_path / "n.zip").code == 2
    assert rw("evidence", "export", "-o", tmp_path / "n.zip").code == 2
    res = rw.ok("evidence", "verify", target)
    assert res["ok"] is True
    assert res["problems"] == []
    data = bytearray(target.read_bytes())
    data[len(data) // 3] ^= 1
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(data))
    res = rw("evidence", "verify", bad, "--json")
    assert res.code == 1
    assert res.json["ok"] is False
    assert res.json["problems"]
    assert rw("evidence", "verify", tmp_path / "missing.zip").code == 1

    assert rw.ok("evidence", "check")["ok"] is True
    # Alter a recorded entry, then delete one: check names both.
    with factory.begin() as s:
        s.execute(update(LedgerEntry).where(LedgerEntry.seq == 1).values(content={"forged": True}))
    res = rw("evidence", "check", "--json")
    assert res.code == 1
    assert any("entry 1: content hash mismatch" in p for p in res.json["problems"])
    with factory.begin() as s:
        cap = s.scalar(select(Capture).where(Capture.ledger_seq == 2))
        assert cap is not None
        cap.ledger_seq = None
        s.flush()
        s.execute(delete(LedgerEntry).where(LedgerEntry.seq == 2))
    problems = rw("evidence", "check", "--json").json["problems"]
    assert any("gap" in p for p in problems)
    assert any("no ledger entry" in p for p in problems)
    store.delete(cap.warc_sha256)
    problems = rw("evidence", "check", "--json").json["problems"]
    assert any(f"missing blob {cap.warc_sha256}" in p for p in problems)


def test_claims_rows_match_the_matches(
    rw, factory: sessionmaker[Session], store: LocalBlobStore, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    ids = _two_matches(factory, store)
    rows = rw.ok("claims", "export", "--format", "json")
    listed = rw("matches", "--json")
    matches = {m["id"]: m for m in listed.json} if listed.code == 0 else None
    assert sorted(r["match_id"] for r in rows) == sorted(ids)
    with factory() as s:
        for r in rows:
            m = s.get_one(Match, r["match_id"])
            assert (r["page_url"], r["media_url"], r["domain"], r["status"]) == (
                m.page_url,
                m.media_url,
                m.domain,
                m.status,
            )
            assert r["captures"] == len(m.captures) == len(r["evidence_ids"]) == 1
            if matches:
                assert r["evidence_ids"] == matches[m.id]["evidence_ids"]
                assert r["first_seen"][:19] == matches[m.id]["first_seen"][:19]
    song = next(r for r in rows if r["work_ref"] == "song-1")
    assert song["isrc"] == "GBABC2400001"
    assert song["iswc"] == "T-034.524.680-1"
    assert song["shares"] == [
        {"rightsholder": "Label A", "share": 60.0},
        {"rightsholder": "Publisher B", "share": 40.0},
    ]
    out = tmp_path / "claims.csv"
    rw.ok("claims", "export", "-o", out)
    table = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(table) == 2
    row = next(r for r in table if r["work_ref"] == "song-1")
    assert row["title"].startswith("'=HYPERLINK")
    assert row["rightsholders"] == "Label A; Publisher B"
    assert row["shares"] == "60; 40"
    assert not list(tmp_path.glob(".*.tmp"))
    plain = rw("claims", "export")
    assert plain.code == 0
    assert plain.out.startswith("work_id,work_ref,")


def test_claims_with_a_rate_card(
    rw, factory: sessionmaker[Session], store: LocalBlobStore, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    _two_matches(factory, store)
    card = tmp_path / "rates.toml"
    card.write_text('currency = "EUR"\nminimum = "50"\n[fees.image]\ndefault = "100.00"\n')
    doc = rw.ok("claims", "export", env={"RIGHTSWATCH_RATE_CARD": str(card)})
    assert doc["currency"] == "EUR"
    assert all(r["fee"] == "100.00" for r in doc["rows"])
    assert doc["totals"] == {"Label A": "60.00", "Label C": "100.00", "Publisher B": "40.00"}
    res = rw("claims", "export", "--format", "csv", env={"RIGHTSWATCH_RATE_CARD": str(card)})
    assert res.out.splitlines()[0].endswith(",fee")


def test_notice_has_the_required_elements(
    rw, factory: sessionmaker[Session], store: LocalBlobStore
) -> None:  # type: ignore[no-untyped-def]
    ids = _two_matches(factory, store)
    env = {
        "RIGHTSWATCH_SENDER_NAME": "Ann Lawyer",
        "RIGHTSWATCH_SENDER_CONTACT": "ann@example.test",
    }
    doc = rw.ok("evidence", "notice", str(ids[1]), env=env)
    text, html = doc["text"], doc["html"]
    for needle in (
        "good faith belief",
        "penalty of perjury",
        "Ann Lawyer",
        "ann@example.test",
        "accurate and",
        "/Ann Lawyer/",
        "Article 16",
        "512(c)(3)",
        "WARC SHA-256",
    ):
        assert needle in text, needle
    assert "<script>x()" not in html
    assert "&lt;script&gt;x()" in html
    plain = rw("evidence", "notice", str(ids[0]), env=env)
    assert plain.code == 0
    assert "ISRC GBABC2400001" in plain.out
    assert "=HYPERLINK" in plain.out
    assert rw("evidence", "notice", "424242").code == 2


def test_timestamp_command(
    rw, factory: sessionmaker[Session], store: LocalBlobStore, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from loopback_tsa import loopback_tsa

    _two_matches(factory, store)
    res = rw("evidence", "timestamp")
    assert res.code == 1
    assert "RIGHTSWATCH_TSA_URL" in res.err
    down = rw(
        "evidence", "timestamp", "--json", env={"RIGHTSWATCH_TSA_URL": "http://127.0.0.1:9/tsa"}
    )
    assert down.code == 1
    assert down.json["errors"]
    assert down.json["pending"] == 1
    with loopback_tsa() as tsa:
        out = rw.ok("evidence", "timestamp", env={"RIGHTSWATCH_TSA_URL": tsa.url})
        assert len(out["stamped"]) == 1
        assert out["pending"] == 0
        assert tsa.requests == 1
    pack = tmp_path / "p.zip"
    rw.ok("evidence", "export", "--all", "-o", pack)
    res = rw.ok("evidence", "verify", pack)
    assert res["ok"]
    assert res["timestamp"]["gen_time"].endswith("Z")
    assert rw.ok("evidence", "check")["ok"]


def test_kill_between_blob_write_and_commit(
    factory: sessionmaker[Session],
    store: LocalBlobStore,
    rw,
    rw_env: dict[str, str],
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    """E8: SIGKILL after the WARC blob is written, before the commit: no row, no ledger gap, the
    blob is reported as an orphan (and collected after the grace period)."""
    store.put(png(1))
    with factory.begin() as s:
        match_id = make_match(s).id
    here = Path(__file__).parent
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(here)!r})
        from evidence import ledger
        from evidence.capture import record_capture
        from evidence.db import make_engine, make_session_factory
        from evidence.models import Match
        from evidence.store import LocalBlobStore
        from evsynth import make_material
        from rightswatch.config import get_settings
        def die(*a, **k):
            os.kill(os.getpid(), signal.SIGKILL)
        ledger.append = die
        st = get_settings()
        factory = make_session_factory(make_engine(st.database_url))
        with factory.begin() as s:
            m = s.get(Match, {match_id})
            record_capture(s, LocalBlobStore(st.blob_dir), match=m, material=make_material(m))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env=rw_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == -9, proc.stderr
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Capture)) == 0
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 0
    report = rw.ok("evidence", "check")
    assert report["ok"] is True
    assert len(report["orphans"]) >= 2
    kept = rw.ok("evidence", "check", "--collect-orphans")
    assert kept["collected"] == []  # inside the grace period
    gone = rw.ok("evidence", "check", "--collect-orphans", "--grace-hours", "0")
    assert sorted(gone["collected"]) == sorted(report["orphans"])
    # The use is captured fine afterwards.
    with factory.begin() as s:
        m = s.get_one(Match, match_id)
        record_capture(s, store, match=m, material=make_material(m))
    assert rw.ok("evidence", "check")["ok"]
    assert json.dumps(report)
    assert os.path.isdir(store.root)
