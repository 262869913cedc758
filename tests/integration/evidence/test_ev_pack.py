"""Evidence packs: golden round trip (E1), tampering (E2, E3, E4 in a pack), completeness and
custody (E7), hostile ZIPs (A6), time-stamps in packs (E5)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from evsynth import make_match, make_material, png
from packtools import flip, members, resign, write
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from warcio.archiveiterator import ArchiveIterator

from evidence import ledger
from evidence.capture import record_capture
from evidence.models import LedgerEntry
from evidence.pack import export_pack
from evidence.reviews import set_status
from evidence.store import LocalBlobStore
from evidence.verify import verify_pack
from evidence.wacz import validate_wacz
from rightswatch.config import get_settings

RIGHTSWATCH = str(Path(sys.executable).with_name("rightswatch"))


def _setup(
    factory: sessionmaker[Session], store: LocalBlobStore, *, future: bool = False
) -> list[int]:
    store.put(png(1))
    store.put(png(2))
    with factory.begin() as s:
        a = make_match(s, ref="w-a", title="Sunset <script>alert(1)</script>", seed=1)
        mat = make_material(a)
        if future:
            for ex in (mat.page, mat.media):
                ex.started_at = datetime.now(UTC) + timedelta(minutes=11)
                ex.finished_at = ex.started_at + timedelta(seconds=1)
        record_capture(s, store, match=a, material=mat)
        b = make_match(
            s,
            ref="w-b",
            holder="Label B",
            page_url="http://127.0.0.1:8080/p2.html",
            media_url="http://127.0.0.1:8080/m2.png",
            seed=2,
        )
        record_capture(
            s, store, match=b, material=make_material(b, flags=["truncated"], screenshot=False)
        )
        set_status(s, a, "confirmed", note="clear copy", by="tester")
        return [a.id, b.id]


def _export(
    factory: sessionmaker[Session],
    store: LocalBlobStore,
    target: Path,
    ids: list[int],
    **kw: object,
) -> dict:
    return export_pack(factory, store, get_settings(), target, match_ids=ids, **kw)  # type: ignore[arg-type]


@pytest.fixture
def pack(factory: sessionmaker[Session], store: LocalBlobStore, tmp_path: Path) -> Path:
    ids = _setup(factory, store)
    target = tmp_path / "pack.zip"
    out = _export(factory, store, target, ids)
    assert out["path"] == str(target)
    assert sorted(out["matches"]) == sorted(ids)
    assert out["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    return target


def test_round_trip(pack: Path, tmp_path: Path) -> None:
    res = verify_pack(pack)
    assert res["ok"], res["problems"]
    assert any("not externally timestamped" in w for w in res["warnings"])
    items = members(pack)
    manifest = json.loads(items["manifest.json"])
    assert {"timestamp/request.tsq", "public_key.pem", "report.html", "ledger/entries.json"} <= set(
        items
    )
    # Every WARC read back with warcio; payload digests equal the manifest's custody record.
    for cap in manifest["captures"]:
        digests = {}
        for rec in ArchiveIterator(io.BytesIO(items[cap["warc"]])):
            if rec.rec_type == "response":
                digests[rec.rec_headers.get_header("WARC-Target-URI")] = (
                    "sha256:" + hashlib.sha256(rec.content_stream().read()).hexdigest()
                )
        media = cap["custody"]["media"]
        assert digests[media["final_url"]] == media["sha256"]
        assert (
            manifest["members"][cap["warc"]]["sha256"]
            == "sha256:" + hashlib.sha256(items[cap["warc"]]).hexdigest()
        )
        wacz = tmp_path / "x.wacz"
        wacz.write_bytes(items[cap["wacz"]])
        ok, line = validate_wacz(wacz)
        assert ok, line
    # Incomplete capture flagged in manifest and report; metadata escaped in the report.
    incomplete = [c for c in manifest["captures"] if not c["complete"]]
    assert len(incomplete) == 1
    assert incomplete[0]["flags"] == ["truncated"]
    report = items["report.html"].decode()
    assert "incomplete capture: truncated" in report
    assert "<script>alert(1)" not in report
    assert "&lt;script&gt;alert(1)" in report
    assert manifest["works"][0]["fingerprints"] is not None
    assert all(
        t.endswith("Z") for c in manifest["captures"] for t in (c["started_at"], c["finished_at"])
    )
    # The status change's entry travels with the pack.
    kinds = sorted(e["kind"] for e in json.loads(items["ledger/entries.json"]))
    assert kinds == ["capture", "capture", "status"]


def test_verify_offline_in_an_empty_directory(pack: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIGHTSWATCH_")}
    proc = subprocess.run(
        [RIGHTSWATCH, "evidence", "verify", str(pack), "--json"],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True
    assert list(empty.iterdir()) == []


def test_flipping_a_byte_in_every_member_is_named(pack: Path, tmp_path: Path) -> None:
    items = members(pack)
    kinds = {n.split("/")[0] for n in items}
    assert {
        "warc",
        "wacz",
        "screenshots",
        "manifest.json",
        "manifest.sig",
        "report.html",
        "ledger",
        "public_key.pem",
        "timestamp",
        "works",
        "found",
    } <= kinds
    for name, data in items.items():
        bad = write(tmp_path / "bad.zip", items | {name: flip(data)})
        res = verify_pack(bad)
        assert not res["ok"], name
        if name in ("manifest.json", "manifest.sig"):
            assert any(p.startswith("manifest") for p in res["problems"]), (name, res["problems"])
        else:
            assert any(p.startswith(f"{name}: ") for p in res["problems"]), (name, res["problems"])


def test_delete_add_rename_duplicate_swap(
    pack: Path, factory: sessionmaker[Session], store: LocalBlobStore, tmp_path: Path
) -> None:
    items = members(pack)
    warc = next(n for n in items if n.startswith("warc/"))
    cases = {
        "deleted": (items.copy(), f"{warc}: missing"),
        "extra": (items | {"notes.txt": b"hi"}, "notes.txt: extra member not in the manifest"),
        "renamed": (
            {(n + ".x" if n == warc else n): d for n, d in items.items()},
            f"{warc}: missing",
        ),
    }
    del cases["deleted"][0][warc]
    for label, (variant, expected) in cases.items():
        res = verify_pack(write(tmp_path / f"{label}.zip", variant))
        assert expected in res["problems"], (label, res["problems"])
    dup = write(tmp_path / "dup.zip", [*items.items(), (warc, items[warc])])
    assert any("duplicate member name" in p for p in verify_pack(dup)["problems"])
    # A member from another pack (another capture of another match) under this name.
    with factory.begin() as s:
        other = make_match(s, ref="w-other", seed=5)
        record_capture(s, store, match=other, material=make_material(other))
        other_id = other.id
    other_pack = _export(factory, store, tmp_path / "other.zip", [other_id])
    assert other_pack
    other_warc = next(
        d for n, d in members(tmp_path / "other.zip").items() if n.startswith("warc/")
    )
    res = verify_pack(write(tmp_path / "swap.zip", items | {warc: other_warc}))
    assert f"{warc}: sha256 mismatch" in res["problems"]


def test_signature_faults(pack: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    items = members(pack)
    for sig in (b"", items["manifest.sig"][:20], b"not base64 !!"):
        res = verify_pack(write(tmp_path / "s.zip", items | {"manifest.sig": sig}))
        assert "manifest.sig: signature does not verify over manifest.json" in res["problems"]
    # A forger re-signs everything with another key: the ledger entries still name the real one.
    other = Ed25519PrivateKey.generate()
    pem = other.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged = items | {"public_key.pem": pem}
    manifest = json.loads(forged["manifest.json"])
    from evidence.keys import key_id, public_key_b64

    manifest["key_id"], manifest["public_key"] = (
        key_id(other.public_key()),
        public_key_b64(other.public_key()),
    )
    forged["manifest.json"] = json.dumps(manifest).encode()
    import base64

    forged = resign(forged, lambda raw: base64.b64encode(other.sign(raw)).decode())
    res = verify_pack(write(tmp_path / "f.zip", forged))
    assert not res["ok"]
    assert any("signed by unknown key" in p for p in res["problems"]), res["problems"]
    # Signature over a different manifest.
    other_sig = ledger.sign(b'{"format": "something else"}').encode()
    res = verify_pack(write(tmp_path / "o.zip", items | {"manifest.sig": other_sig}))
    assert "manifest.sig: signature does not verify over manifest.json" in res["problems"]


def test_ledger_tampering_inside_a_resigned_pack(pack: Path, tmp_path: Path) -> None:
    """An insider with the signing key rewrites the pack: the entries and proofs still fail."""
    items = members(pack)
    entries = json.loads(items["ledger/entries.json"])
    # modify one entry's content
    mod = json.loads(json.dumps(entries))
    mod[0]["content"]["media"]["sha256"] = "sha256:" + "00" * 32
    res = verify_pack(
        write(
            tmp_path / "m.zip",
            resign(items | {"ledger/entries.json": json.dumps(mod).encode()}, ledger.sign),
        )
    )
    assert any(f"entry {mod[0]['seq']}: content hash mismatch" in p for p in res["problems"]), res[
        "problems"
    ]
    # reorder two entries (their leaf indexes no longer match their sequence numbers)
    swapped = json.loads(json.dumps(entries))
    swapped[0]["seq"], swapped[1]["seq"] = swapped[1]["seq"], swapped[0]["seq"]
    res = verify_pack(
        write(
            tmp_path / "r.zip",
            resign(items | {"ledger/entries.json": json.dumps(swapped).encode()}, ledger.sign),
        )
    )
    assert any("inclusion proof does not lead" in p for p in res["problems"])
    # delete one entry
    res = verify_pack(
        write(
            tmp_path / "d.zip",
            resign(items | {"ledger/entries.json": json.dumps(entries[1:]).encode()}, ledger.sign),
        )
    )
    assert any(
        "no signed ledger entry" in p or "differ from the manifest" in p for p in res["problems"]
    )
    # a forged leaf: a well-signed entry that is not in the checkpointed tree
    forged = json.loads(json.dumps(entries[0]))
    forged["seq"] = 999
    forged["leaf_index"] = 998
    res = verify_pack(
        write(
            tmp_path / "x.zip",
            resign(
                items | {"ledger/entries.json": json.dumps([*entries, forged]).encode()},
                ledger.sign,
            ),
        )
    )
    assert any("entry 999" in p for p in res["problems"])


def test_hostile_zips_are_rejected_without_extracting(tmp_path: Path) -> None:
    before = set(tmp_path.iterdir())
    cases = {
        "../x": "path traversal",
        "/abs/x": "absolute path",
        "C:\\x": "absolute path",
        "a/../../x": "path traversal",
    }
    for name, reason in cases.items():
        res = verify_pack(write(tmp_path / "t.zip", {"manifest.json": b"{}", name: b"x"}))
        assert any(reason in p for p in res["problems"]), (name, res["problems"])
    res = verify_pack(
        write(tmp_path / "l.zip", {"manifest.json": b"{}", "link": b"/etc/passwd"}, symlink="link")
    )
    assert "link: symlink entry" in res["problems"]
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", b"{}")
        zf.writestr("warc/big.warc.gz", b"\0" * (50 * 1024 * 1024))
    assert any("zip bomb" in p for p in verify_pack(bomb)["problems"])
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as zf:
        for i in range(10_001):
            zf.writestr(f"f/{i}", b"")
    assert any("entries" in p for p in verify_pack(many)["problems"])
    assert not verify_pack(tmp_path / "nope.zip")["ok"]
    (tmp_path / "notzip.zip").write_bytes(b"hello")
    assert not verify_pack(tmp_path / "notzip.zip")["ok"]
    assert set(tmp_path.iterdir()) - before == {
        tmp_path / n for n in ("t.zip", "l.zip", "bomb.zip", "many.zip", "notzip.zip")
    }


def test_reexport_keeps_evidence_identical_and_records_custody(
    factory: sessionmaker[Session], store: LocalBlobStore, tmp_path: Path
) -> None:
    ids = _setup(factory, store)
    first = _export(factory, store, tmp_path / "1.zip", ids)
    with pytest.raises(Exception, match="exists"):
        _export(factory, store, tmp_path / "1.zip", ids)
    second = _export(factory, store, tmp_path / "1.zip", ids, force=True)
    assert first["sha256"] != second["sha256"] or first == second
    a, b = members(tmp_path / "1.zip"), members(tmp_path / "1.zip")
    m1 = json.loads(a["manifest.json"])
    third = _export(factory, store, tmp_path / "3.zip", ids)
    m3 = json.loads(members(tmp_path / "3.zip")["manifest.json"])
    for name in m1["members"]:
        if name.startswith(("warc/", "wacz/", "screenshots/", "works/", "found/")):
            assert m1["members"][name] == m3["members"][name], name
    assert third["path"].endswith("3.zip")
    assert b
    with factory() as s:
        exports = list(
            s.scalars(
                select(LedgerEntry).where(LedgerEntry.kind == "export").order_by(LedgerEntry.seq)
            )
        )
        statuses = list(s.scalars(select(LedgerEntry).where(LedgerEntry.kind == "status")))
    assert len(exports) == 3
    assert len(statuses) == 1
    assert exports[-1].content["pack_sha256"] == "sha256:" + third["sha256"]
    assert exports[0].content["matches"] == sorted(ids)
    assert not list(tmp_path.glob(".*.tmp"))


def test_unknown_match_is_not_found(
    factory: sessionmaker[Session], store: LocalBlobStore, tmp_path: Path
) -> None:
    from evidence.errors import NotFound

    with pytest.raises(NotFound, match="no match 12345"):
        _export(factory, store, tmp_path / "x.zip", [12345])
    assert not (tmp_path / "x.zip").exists()


def test_timestamped_pack_and_later_stamping(
    factory: sessionmaker[Session],
    store: LocalBlobStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from loopback_tsa import loopback_tsa

    from evidence.timestamp import stamp_pending

    ids = _setup(factory, store)
    offline = _export(factory, store, tmp_path / "offline.zip", ids)
    assert "not externally timestamped" in offline["warnings"]
    with loopback_tsa() as tsa:
        out = stamp_pending(factory, tsa.url)
        assert out["errors"] == []
        assert out["stamped"]
        later = _export(factory, store, tmp_path / "later.zip", ids)
        assert later["warnings"] == []
        res = verify_pack(tmp_path / "later.zip")
        assert res["ok"], res["problems"]
        assert res["timestamp"]["gen_time"].endswith("Z")
        assert not any("not externally timestamped" in w for w in res["warnings"])
        items = members(tmp_path / "later.zip")
        assert "timestamp/response.tsr" in items
        res = verify_pack(
            write(
                tmp_path / "t.zip",
                items | {"timestamp/response.tsr": flip(items["timestamp/response.tsr"], -20)},
            )
        )
        assert any(p.startswith("timestamp/response.tsr: ") for p in res["problems"])
        # The token for one checkpoint does not fit another (wrong imprint), even re-signed.
        cp = json.loads(items["ledger/checkpoint.json"])
        assert cp["size"] >= 1


def test_capture_later_than_the_tsa_time_is_flagged(
    factory: sessionmaker[Session],
    store: LocalBlobStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from loopback_tsa import loopback_tsa

    ids = _setup(factory, store, future=True)
    with loopback_tsa() as tsa:
        monkeypatch.setenv("RIGHTSWATCH_TSA_URL", tsa.url)
        get_settings.cache_clear()
        _export(factory, store, tmp_path / "p.zip", ids)
    res = verify_pack(tmp_path / "p.zip")
    assert not res["ok"]
    assert any(
        "later than the TSA time" in p and p.startswith("capture ") for p in res["problems"]
    ), res["problems"]


def test_export_and_verify_for_the_demo(
    factory: sessionmaker[Session], store: LocalBlobStore, tmp_path: Path
) -> None:
    from evidence.pack import export_and_verify

    ids = _setup(factory, store)
    out = export_and_verify(get_settings(), ids, tmp_path / "demo.zip")
    assert out["verified"] is True
    assert out["problems"] == []
    assert Path(out["report"]).read_text(encoding="utf-8").startswith("<!doctype html>")
    assert Path(out["pack"]) == tmp_path / "demo.zip"


def test_newer_pack_extends_older_one_and_a_fork_is_named(
    factory: sessionmaker[Session], store: LocalBlobStore, tmp_path: Path
) -> None:
    from evidence.db import make_engine, make_session_factory
    from evidence.migrate import upgrade
    from evidence.verify import compare_with_older

    ids = _setup(factory, store)
    _export(factory, store, tmp_path / "old.zip", ids)
    with factory.begin() as s:
        ledger.append(s, kind="custody", subject="note:1", content={"n": 1})
    _export(factory, store, tmp_path / "new.zip", ids)
    new = verify_pack(tmp_path / "new.zip")
    assert new["ok"], new["problems"]
    assert compare_with_older(new, tmp_path / "old.zip") == []
    assert compare_with_older(verify_pack(tmp_path / "old.zip"), tmp_path / "new.zip")[
        0
    ].startswith("older pack: its head")
    # Another ledger signed with the same key, with its own history: a fork.
    engine = make_engine(f"sqlite:///{tmp_path / 'fork.db'}")
    upgrade(engine)
    fork = make_session_factory(engine)
    old_size = json.loads(members(tmp_path / "old.zip")["ledger/checkpoint.json"])["size"]
    with fork.begin() as s:
        for i in range(old_size):
            ledger.append(s, kind="custody", subject=f"fork:{i}", content={"i": i})
        ledger.make_checkpoint(s)
        m = make_match(s, ref="fork-w")
        record_capture(s, store, match=m, material=make_material(m))
        fork_ids = [m.id]
    _export(fork, store, tmp_path / "fork.zip", fork_ids)
    engine.dispose()
    forked = verify_pack(tmp_path / "fork.zip")
    assert forked["ok"], forked["problems"]
    assert compare_with_older(forked, tmp_path / "old.zip") == [
        f"fork: the older pack's head {old_size} is not in this ledger's history"
    ]


def test_failure_mid_export_leaves_no_pack(
    factory: sessionmaker[Session],
    store: LocalBlobStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from evidence.errors import StoreError

    ids = _setup(factory, store)
    real_get, calls = store.get, []

    def failing_get(digest: str) -> bytes:
        calls.append(digest)
        if len(calls) == 4:
            raise StoreError("missing blob (injected)")
        return real_get(digest)

    monkeypatch.setattr(store, "get", failing_get)
    with pytest.raises(StoreError, match="injected"):
        _export(factory, store, tmp_path / "p.zip", ids)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".zip", ".tmp")) == []
    with factory() as s:
        exports = s.scalars(select(LedgerEntry).where(LedgerEntry.kind == "export")).all()
    assert exports == []


def test_damaged_streams_and_control_characters_are_problems(tmp_path: Path) -> None:
    """Found by the fuzzers: a broken deflate stream, an unknown compression method and a
    member name with a line break each give a one-line problem, never an exception."""
    path = tmp_path / "d.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", b'{"members": {}}' * 50)
        offset = zf.getinfo("manifest.json").header_offset
    raw = bytearray(path.read_bytes())
    raw[offset + 30 + len("manifest.json")] = 0xFF
    path.write_bytes(bytes(raw))
    res = verify_pack(path)
    assert not res["ok"]
    assert res["problems"]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", b"{}")
    raw = bytearray(path.read_bytes())
    local, central = raw.index(b"PK\x03\x04"), raw.index(b"PK\x01\x02")
    raw[local + 8 : local + 10] = (99).to_bytes(2, "little")
    raw[central + 10 : central + 12] = (99).to_bytes(2, "little")
    path.write_bytes(bytes(raw))
    res = verify_pack(path)
    assert not res["ok"]
    assert res["problems"]
    listed = {"a\nok: true": {"sha256": "x", "size": 1}, "\u202eevil": {"sha256": "x", "size": 1}}
    manifest = json.dumps({"format": "rightswatch-evidence-pack/1", "members": listed}).encode()
    res = verify_pack(write(tmp_path / "c.zip", {"manifest.json": manifest, "manifest.sig": b""}))
    assert not res["ok"]
    assert all(p.isprintable() for p in res["problems"])
    assert any("a\\nok: true" in p for p in res["problems"])
