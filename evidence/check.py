"""`evidence check`: re-verify the whole ledger and every blob the evidence points to.

Reports gaps and breaks in the hash chain, bad signatures, checkpoints whose root does not
match the entries, captures whose row, ledger entry and blobs disagree, and missing or altered
blobs. Blobs nothing refers to (a capture interrupted between its blob write and its commit)
are listed as orphans and, when asked, removed once older than a grace period.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence import ledger, merkle
from evidence.errors import StoreError
from evidence.models import Capture, Checkpoint, MediaObject, Run, Work
from evidence.store import BlobStore, LocalBlobStore

ORPHAN_GRACE_S = 24 * 3600


@dataclass
class Report:
    entries: int = 0
    checkpoints: int = 0
    captures: int = 0
    blobs_checked: int = 0
    problems: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    collected: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": not self.problems,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "captures": self.captures,
            "blobs_checked": self.blobs_checked,
            "problems": self.problems,
            "orphans": self.orphans,
            "collected": self.collected,
        }


def _check_entries(session: Session, report: Report) -> list[bytes]:
    public = ledger.signing_key().public_key()
    leaves: list[bytes] = []
    prev_hash, prev_time, expected = ledger.GENESIS, None, 1
    for entry in ledger.entries(session):
        report.entries += 1
        if entry.seq != expected:
            report.problems.append(f"ledger: gap, entry {entry.seq} follows {expected - 1}")
        if entry.prev_hash != prev_hash:
            report.problems.append(f"ledger: entry {entry.seq} does not chain to the one before")
        for p in ledger.check_entry(ledger.entry_json(entry), public):
            report.problems.append(f"ledger: entry {entry.seq}: {p}")
        created: datetime = entry.created_at
        if prev_time is not None and created < prev_time:
            report.problems.append(f"ledger: entry {entry.seq} is dated before the one before")
        prev_hash, prev_time, expected = entry.entry_hash, created, entry.seq + 1
        leaves.append(merkle.leaf_hash(ledger.digest_bytes(entry.entry_hash)))
    return leaves


def _check_checkpoints(session: Session, leaves: list[bytes], report: Report) -> None:
    from evidence import timestamp

    public = ledger.signing_key().public_key()
    for cp in session.scalars(select(Checkpoint).order_by(Checkpoint.size)):
        report.checkpoints += 1
        where = f"checkpoint {cp.size}"
        for p in ledger.check_checkpoint(ledger.checkpoint_json(cp), public):
            report.problems.append(f"{where}: {p}")
        if cp.size > len(leaves):
            report.problems.append(f"{where}: covers more entries than the ledger holds")
        elif "sha256:" + merkle.root_from_hashes(leaves[: cp.size]).hex() != cp.root:
            report.problems.append(f"{where}: root does not match the ledger's entries")
        if cp.tsa_token and cp.tsa_request:
            check = timestamp.check_token(
                cp.tsa_token, cp.tsa_request, ledger.checkpoint_message(cp)
            )
            report.problems.extend(f"{where}: {p}" for p in check.problems)


def _blob(store: BlobStore, digest: str | None, what: str, report: Report) -> None:
    if not digest:
        return
    try:
        data = store.get(digest)
    except StoreError:
        report.problems.append(f"{what}: missing blob {digest}")
        return
    report.blobs_checked += 1
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        report.problems.append(f"{what}: blob {digest} does not match its hash")


def _check_captures(session: Session, store: BlobStore, report: Report) -> set[str]:
    from evidence.models import LedgerEntry

    used: set[str] = set()
    for cap in session.scalars(select(Capture).order_by(Capture.created_at)):
        report.captures += 1
        where = f"capture {cap.id}"
        entry = session.get(LedgerEntry, cap.ledger_seq) if cap.ledger_seq else None
        if entry is None or entry.subject != f"capture:{cap.id}":
            report.problems.append(f"{where}: no ledger entry")
        elif entry.content != cap.custody:
            report.problems.append(f"{where}: row differs from its signed ledger entry")
        arts = cap.custody.get("artifacts", {})
        digests = {
            "warc": cap.warc_sha256,
            "wacz": arts.get("wacz", {}).get("sha256"),
            "screenshot": cap.screenshot_sha256,
        }
        for kind, digest in digests.items():
            if digest:
                used.add(digest)
                _blob(store, digest, f"{where} {kind}", report)
        if arts.get("warc", {}).get("sha256") not in (None, cap.warc_sha256):
            report.problems.append(f"{where}: WARC hash differs from the signed record")
    return used


def run_check(
    session: Session,
    store: BlobStore,
    *,
    collect_orphans: bool = False,
    grace_s: int = ORPHAN_GRACE_S,
) -> Report:
    report = Report()
    leaves = _check_entries(session, report)
    _check_checkpoints(session, leaves, report)
    used = _check_captures(session, store, report)
    for work in session.scalars(select(Work)):
        used.add(work.sha256)
        if not store.exists(work.sha256):
            report.problems.append(f"work {work.ref}: missing original blob {work.sha256}")
    used.update(d for d in session.scalars(select(MediaObject.sha256).where(MediaObject.stored)))
    for robots in session.scalars(select(Run.robots)):  # robots.txt bytes kept with runs
        for info in (robots or {}).values():
            if isinstance(info, dict) and isinstance(info.get("sha256"), str):
                used.add(info["sha256"])
    for digest in store.digests():
        if digest in used:
            continue
        report.orphans.append(digest)
        if collect_orphans and isinstance(store, LocalBlobStore):
            try:
                age = time.time() - store.path(digest).stat().st_mtime
            except OSError:
                continue
            if age >= grace_s:
                store.delete(digest)
                report.collected.append(digest)
    return report
