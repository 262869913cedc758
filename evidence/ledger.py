"""The append-only evidence ledger: a hash chain of signed entries that are also Merkle leaves.

Each entry commits to its content (SHA-256 of its RFC 8785 canonical JSON), to the previous
entry's hash and to its own sequence number and time; the entry hash is signed with the
installation's Ed25519 key. Signed checkpoints (tree size + RFC 6962 root) let a pack prove that
an entry belongs to the ledger without shipping the ledger. Nothing is ever updated: a correction
is a new entry.

One writer at a time: PostgreSQL takes a transaction-level advisory lock; SQLite transactions
already start with BEGIN IMMEDIATE (evidence/db.py). Time never runs backwards: an append whose
clock reads earlier than the last entry is refused, never silently reordered.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from evidence import merkle
from evidence.errors import BadInput, EvidenceError
from evidence.keys import key_id, load_private_key
from evidence.models import Checkpoint, LedgerEntry
from rightswatch.config import get_settings

GENESIS = "sha256:" + "0" * 64
ORIGIN = "rightswatch-ledger/v1"
KINDS = frozenset({"capture", "status", "export", "licence", "custody"})
LOCK_KEY = 0x52574C45  # "RWLE": the advisory lock that serialises ledger writers


class ClockWentBackwards(EvidenceError):
    """The system clock reads earlier than the newest ledger entry: refuse to record."""


def clock() -> datetime:
    """The ledger's clock (system UTC, microseconds); tests replace it."""
    return datetime.now(UTC)


def canonical(obj: Any) -> bytes:
    """RFC 8785 canonical JSON (sorted keys, no spaces, UTF-8, ES6 numbers)."""
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise BadInput(f"not canonicalisable JSON: {exc}") from None


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def iso(value: datetime) -> str:
    """The one time format hashed and signed: UTC, microseconds, 'Z'."""
    if value.tzinfo is None:
        raise BadInput("naive datetime in the ledger")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def digest_bytes(digest: str) -> bytes:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64:
        raise ValueError(f"not a sha256 digest: {digest[:80]!r}")
    return bytes.fromhex(hexpart)


# --- keys -------------------------------------------------------------------------------------


@cache
def _key_at(path: Path, mtime_ns: int) -> Ed25519PrivateKey:
    return load_private_key(path)


def signing_key() -> Ed25519PrivateKey:
    path = get_settings().key_path
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise EvidenceError(f"no signing key at {path}: run `rightswatch init`") from None
    return _key_at(path, mtime)


def sign(data: bytes) -> str:
    return base64.b64encode(signing_key().sign(data)).decode()


def verify_signature(public: Ed25519PublicKey, signature_b64: str, data: bytes) -> bool:
    try:
        sig = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError, TypeError):
        return False
    if len(sig) != 64:
        return False
    try:
        public.verify(sig, data)
    except InvalidSignature:
        return False
    return True


# --- entries ----------------------------------------------------------------------------------


def entry_body(
    *,
    seq: int,
    kind: str,
    subject: str,
    content_sha256: str,
    prev_hash: str,
    created_at: str,
    key_id: str,
) -> dict[str, Any]:
    return {
        "origin": ORIGIN,
        "seq": seq,
        "kind": kind,
        "subject": subject,
        "content_sha256": content_sha256,
        "prev_hash": prev_hash,
        "created_at": created_at,
        "key_id": key_id,
    }


def entry_json(entry: LedgerEntry) -> dict[str, Any]:
    """An entry as packs carry it: everything needed to recompute and check it."""
    return {
        "seq": entry.seq,
        "kind": entry.kind,
        "subject": entry.subject,
        "content": entry.content,
        "content_sha256": entry.content_sha256,
        "prev_hash": entry.prev_hash,
        "entry_hash": entry.entry_hash,
        "signature": entry.signature,
        "key_id": entry.key_id,
        "created_at": iso(entry.created_at),
    }


def check_entry(data: dict[str, Any], public: Ed25519PublicKey) -> list[str]:
    """Problems with one entry (as `entry_json` gives it): hashes, key and signature."""
    problems: list[str] = []
    try:
        content_sha = sha256_of(canonical(data["content"]))
        if content_sha != data["content_sha256"]:
            problems.append("content hash mismatch")
        body = entry_body(
            seq=int(data["seq"]),
            kind=str(data["kind"]),
            subject=str(data["subject"]),
            content_sha256=str(data["content_sha256"]),
            prev_hash=str(data["prev_hash"]),
            created_at=str(data["created_at"]),
            key_id=str(data["key_id"]),
        )
        entry_hash = sha256_of(canonical(body))
        if entry_hash != data["entry_hash"]:
            problems.append("entry hash mismatch")
        if data["key_id"] != key_id(public):
            problems.append(f"signed by unknown key {str(data['key_id'])[:80]}")
        elif not verify_signature(public, str(data["signature"]), digest_bytes(entry_hash)):
            problems.append("bad signature")
    except (KeyError, TypeError, ValueError, BadInput) as exc:
        problems.append(f"malformed entry: {exc}")
    return problems


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})


def last_entry(session: Session) -> LedgerEntry | None:
    return session.scalar(select(LedgerEntry).order_by(LedgerEntry.seq.desc()).limit(1))


def append(session: Session, *, kind: str, subject: str, content: dict[str, Any]) -> LedgerEntry:
    """Append one signed entry inside the caller's transaction (the caller commits)."""
    if kind not in KINDS:
        raise BadInput(f"unknown ledger entry kind {kind!r}")
    if not subject or len(subject) > 100:
        raise BadInput("ledger subject must be 1-100 characters")
    content_sha = sha256_of(canonical(content))
    key = signing_key()
    kid = key_id(key.public_key())
    _lock(session)
    last = last_entry(session)
    now = clock()
    if last is not None and now < last.created_at:
        raise ClockWentBackwards(
            f"clock went backwards: {iso(now)} is before the last ledger entry"
            f" ({iso(last.created_at)}, seq {last.seq}); fix the clock, nothing was recorded"
        )
    seq = 1 if last is None else last.seq + 1
    prev = GENESIS if last is None else last.entry_hash
    body = entry_body(
        seq=seq,
        kind=kind,
        subject=subject,
        content_sha256=content_sha,
        prev_hash=prev,
        created_at=iso(now),
        key_id=kid,
    )
    entry_hash = sha256_of(canonical(body))
    entry = LedgerEntry(
        seq=seq,
        kind=kind,
        subject=subject,
        content=content,
        content_sha256=content_sha,
        prev_hash=prev,
        entry_hash=entry_hash,
        signature=base64.b64encode(key.sign(digest_bytes(entry_hash))).decode(),
        key_id=kid,
        created_at=parse_iso(body["created_at"]),
    )
    session.add(entry)
    session.flush()
    return entry


def entries(session: Session, upto: int | None = None) -> Iterable[LedgerEntry]:
    stmt = select(LedgerEntry).order_by(LedgerEntry.seq)
    if upto is not None:
        stmt = stmt.where(LedgerEntry.seq <= upto)
    return session.scalars(stmt).yield_per(1000)


def leaf_hashes(session: Session, upto: int | None = None) -> list[bytes]:
    """Merkle leaf hashes, leaf i = seq i + 1; a leaf's data is the raw entry hash."""
    stmt = select(LedgerEntry.entry_hash).order_by(LedgerEntry.seq)
    if upto is not None:
        stmt = stmt.where(LedgerEntry.seq <= upto)
    return [merkle.leaf_hash(digest_bytes(h)) for h in session.scalars(stmt)]


# --- checkpoints ------------------------------------------------------------------------------


def checkpoint_body(size: int, root: str, created_at: str, kid: str) -> dict[str, Any]:
    return {"origin": ORIGIN, "size": size, "root": root, "created_at": created_at, "key_id": kid}


def checkpoint_json(cp: Checkpoint) -> dict[str, Any]:
    return {
        "size": cp.size,
        "root": cp.root,
        "created_at": iso(cp.created_at),
        "key_id": cp.key_id,
        "signature": cp.signature,
    }


def check_checkpoint(data: dict[str, Any], public: Ed25519PublicKey) -> list[str]:
    try:
        body = checkpoint_body(
            int(data["size"]), str(data["root"]), str(data["created_at"]), str(data["key_id"])
        )
        if data["key_id"] != key_id(public):
            return [f"checkpoint signed by unknown key {str(data['key_id'])[:80]}"]
        if not verify_signature(public, str(data["signature"]), canonical(body)):
            return ["bad checkpoint signature"]
    except (KeyError, TypeError, ValueError, BadInput) as exc:
        return [f"malformed checkpoint: {exc}"]
    return []


def make_checkpoint(session: Session) -> Checkpoint:
    """Sign the current ledger head (or return the checkpoint already made for this size)."""
    _lock(session)
    size = session.scalar(select(func.count()).select_from(LedgerEntry)) or 0
    existing = session.scalar(select(Checkpoint).where(Checkpoint.size == size))
    if existing is not None:
        return existing
    root = "sha256:" + merkle.root_from_hashes(leaf_hashes(session)).hex()
    key = signing_key()
    kid = key_id(key.public_key())
    created = iso(clock())
    cp = Checkpoint(
        size=size,
        root=root,
        signature=base64.b64encode(
            key.sign(canonical(checkpoint_body(size, root, created, kid)))
        ).decode(),
        key_id=kid,
        created_at=parse_iso(created),
    )
    session.add(cp)
    session.flush()
    return cp


def checkpoint_message(cp: Checkpoint | dict[str, Any]) -> bytes:
    """The bytes an RFC 3161 token over this checkpoint stamps: its signed body."""
    if isinstance(cp, Checkpoint):
        return canonical(checkpoint_body(cp.size, cp.root, iso(cp.created_at), cp.key_id))
    return canonical(
        checkpoint_body(int(cp["size"]), str(cp["root"]), str(cp["created_at"]), str(cp["key_id"]))
    )
