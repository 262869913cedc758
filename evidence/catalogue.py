"""The catalogue: registering works (originals, metadata, shares, fingerprints) and listing them.

One transaction per work: the original goes to the blob store first, then the rows; if the rows
cannot be written, a blob this call created is removed again, so nothing half-written stays.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

import fingerprints
from evidence.db import translate_db_errors
from evidence.errors import BadInput, EvidenceError, shown
from evidence.identifiers import normalize_isrc, normalize_iswc
from evidence.models import CatalogueVersion, Fingerprint, Rightsholder, Work, WorkShare
from evidence.rightsmeta import read_rights
from evidence.store import BlobStore, sha256_digest

log = logging.getLogger(__name__)

MAX_WORK_BYTES = 512 * 1024 * 1024  # an hour of CD-quality WAV fits; a 10 GB file does not
MAX_TEXT = 500


@dataclass
class WorkInput:
    """What a rightsholder tells us about one work; validated by `validate`."""

    path: Path
    ref: str | None = None
    title: str | None = None
    creator: str | None = None
    rightsholder: str | None = None
    share: str | None = None
    isrc: str | None = None
    iswc: str | None = None
    holders: list[tuple[str, Decimal]] = field(default_factory=list, init=False)


def _clean_text(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    value = value.replace("\x00", "").strip()
    if len(value) > MAX_TEXT:
        raise BadInput(f"{what} longer than {MAX_TEXT} characters")
    return value or None


def parse_holders(
    rightsholder: str | None, share: str | None, default: str
) -> list[tuple[str, Decimal]]:
    """'Label A; Publisher B' with share '60; 40' -> [(A, 60), (B, 40)]; the first owns the work.

    A missing share means 100 % for a single holder; shares may not add up to more than 100.
    """
    names = [n.strip() for n in (rightsholder or default).split(";") if n.strip()] or [default]
    raw_shares = [s.strip().rstrip("%").strip() for s in (share or "").split(";") if s.strip()]
    if not raw_shares:
        raw_shares = ["100"] if len(names) == 1 else []
    if len(raw_shares) != len(names):
        raise BadInput(f"{len(names)} rightsholders but {len(raw_shares)} shares")
    holders: list[tuple[str, Decimal]] = []
    for name, raw in zip(names, raw_shares, strict=True):
        try:
            pct = Decimal(raw)
        except InvalidOperation:
            raise BadInput(f"share {raw!r} is not a number") from None
        if not pct.is_finite() or pct < 0 or pct > 100:
            raise BadInput(f"share {raw}% is outside 0-100")
        if len(name) > 200:
            raise BadInput("rightsholder name longer than 200 characters")
        holders.append((name, pct))
    if len({n for n, _ in holders}) != len(holders):
        raise BadInput("a rightsholder is named twice")
    total = sum((p for _, p in holders), Decimal(0))
    if total > 100:
        raise BadInput(f"shares add up to {total}%, more than 100%")
    return holders


def validate(item: WorkInput, default_rightsholder: str) -> WorkInput:
    """Check and normalise the metadata (not the file); raise BadInput with one line."""
    item.ref = _clean_text(item.ref, "ref") or item.path.stem
    if len(item.ref) > 200:
        raise BadInput("ref longer than 200 characters")
    item.title = _clean_text(item.title, "title") or item.ref
    item.creator = _clean_text(item.creator, "creator")
    item.isrc = normalize_isrc(item.isrc) if item.isrc and item.isrc.strip() else None
    item.iswc = normalize_iswc(item.iswc) if item.iswc and item.iswc.strip() else None
    item.holders = parse_holders(item.rightsholder, item.share, default_rightsholder)
    return item


def read_original(path: Path) -> bytes:
    """Read a work's file, refusing what is not a regular file or is too large to register."""
    name = shown(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise BadInput(f"{name}: no such file") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise BadInput(f"{name}: {getattr(exc, 'strerror', None) or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise BadInput(f"{name}: not a regular file")
    if st.st_size == 0:
        raise BadInput(f"{name}: empty file")
    if st.st_size > MAX_WORK_BYTES:
        raise BadInput(f"{name}: too large ({st.st_size} bytes, limit {MAX_WORK_BYTES})")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{name}: {exc.strerror}") from None


def get_rightsholder(session: Session, name: str) -> Rightsholder:
    holder = session.scalar(select(Rightsholder).where(Rightsholder.name == name))
    if holder is None:
        holder = Rightsholder(name=name)
        session.add(holder)
        session.flush()
    return holder


@dataclass
class Registered:
    work: Work
    outcome: str  # "imported" | "updated" | "skipped"
    json: dict[str, Any] = field(default_factory=dict)  # work_json, taken inside the session


def _metadata(item: WorkInput) -> dict[str, Any]:
    return {"title": item.title, "creator": item.creator, "isrc": item.isrc, "iswc": item.iswc}


def _set_shares(session: Session, work: Work, holders: Sequence[tuple[str, Decimal]]) -> bool:
    wanted = {get_rightsholder(session, name).id: pct for name, pct in holders}
    current = {s.rightsholder_id: s.share for s in work.shares}
    if current == wanted:
        return False
    work.shares = [WorkShare(rightsholder_id=rid, share=pct) for rid, pct in wanted.items()]
    return True


def register(
    session: Session, store: BlobStore, item: WorkInput, data: bytes, prints: fingerprints.Prints
) -> Registered:
    """Insert or update one work inside the caller's transaction.

    Same ref and same file: metadata updated (or skipped when unchanged). Same ref with another
    file, or the same file under another ref: refused, because matches already point at it.
    """
    assert item.ref is not None
    assert item.title is not None
    owner = get_rightsholder(session, item.holders[0][0])
    digest = sha256_digest(data)
    existing = session.scalar(
        select(Work).where(Work.rightsholder_id == owner.id, Work.ref == item.ref)
    )
    if existing is not None:
        if existing.sha256 != digest:
            raise BadInput(f"ref {item.ref!r} is already registered with a different file")
        changed = False
        for key, value in _metadata(item).items():
            if getattr(existing, key) != value:
                setattr(existing, key, value)
                changed = True
        changed = _set_shares(session, existing, item.holders) or changed
        return Registered(existing, "updated" if changed else "skipped")
    twin = session.scalar(
        select(Work.ref).where(Work.rightsholder_id == owner.id, Work.sha256 == digest)
    )
    if twin is not None:
        raise BadInput(f"the same file is already registered as ref {twin!r}")
    store.put(data)
    work = Work(
        rightsholder_id=owner.id,
        ref=item.ref,
        kind=prints.kind.value,
        sha256=digest,
        size=len(data),
        mime=prints.mime,
        width=prints.width,
        height=prints.height,
        duration_s=prints.duration_s,
        rights=read_rights(data),  # the notices copies must keep (evidence.rightsmeta)
        **_metadata(item),
    )
    work.fingerprints = [
        Fingerprint(type=name, version=version, value=value)
        for name, (version, value) in sorted(prints.values.items())
    ]
    session.add(work)
    session.flush()
    _set_shares(session, work, item.holders)
    session.add(CatalogueVersion(work_id=work.id, change="upsert"))
    return Registered(work, "imported")


def add_work(
    factory: sessionmaker[Session], store: BlobStore, item: WorkInput, default_rightsholder: str
) -> Registered:
    """Validate, fingerprint and register one work in its own transaction."""
    validate(item, default_rightsholder)
    data = read_original(item.path)
    try:
        prints = fingerprints.fingerprint_work(data)
    except fingerprints.FingerprintError as exc:
        raise BadInput(f"{shown(item.path)}: {exc}") from None
    digest = sha256_digest(data)
    blob_was_there = store.exists(digest)
    try:
        with translate_db_errors(), factory.begin() as session:
            reg = register(session, store, item, data, prints)
            session.flush()
            reg.json = work_json(reg.work)
            return reg
    except IntegrityError:
        # Another process registered the same ref or file between our check and our insert.
        if not blob_was_there:
            _remove_unreferenced(factory, store, digest)
        raise BadInput(f"ref {item.ref!r} was registered concurrently; run again") from None
    except BaseException:
        if not blob_was_there:
            _remove_unreferenced(factory, store, digest)
        raise


def _remove_unreferenced(factory: sessionmaker[Session], store: BlobStore, digest: str) -> None:
    try:
        with factory() as session:
            used = session.scalar(select(func.count()).where(Work.sha256 == digest))
    except Exception:  # the database is gone: a later `evidence check` collects the orphan
        log.warning("could not check blob %s for references; left for evidence check", digest)
        return
    if not used:
        store.delete(digest)


def list_works(session: Session, rightsholder_ids: Sequence[int] | None = None) -> list[Work]:
    stmt = select(Work).order_by(Work.id)
    if rightsholder_ids is not None:
        stmt = stmt.where(Work.rightsholder_id.in_(rightsholder_ids))
    return list(session.scalars(stmt))


def find_works(
    session: Session, ref: str, rightsholder_ids: Sequence[int] | None = None
) -> list[Work]:
    """Works with this ref ('holder:ref' picks one rightsholder's)."""
    stmt = select(Work).where(Work.ref == ref)
    holder, sep, bare = ref.partition(":")
    if sep:
        stmt = (
            select(Work)
            .join(Rightsholder)
            .where(((Work.ref == bare) & (Rightsholder.name == holder)) | (Work.ref == ref))
        )
    if rightsholder_ids is not None:
        stmt = stmt.where(Work.rightsholder_id.in_(rightsholder_ids))
    return list(session.scalars(stmt))


def work_json(work: Work) -> dict[str, Any]:
    return {
        "id": work.id,
        "ref": work.ref,
        "kind": work.kind,
        "title": work.title,
        "sha256": work.sha256.removeprefix("sha256:"),
        "creator": work.creator,
        "rightsholder": work.rightsholder.name,
        "isrc": work.isrc,
        "iswc": work.iswc,
        "shares": [
            {"rightsholder": s.rightsholder.name, "share": float(s.share)} for s in work.shares
        ],
        "fingerprints": sorted(f"{f.type}/v{f.version}" for f in work.fingerprints),
    }


def inside(base: Path, candidate: Path) -> bool:
    """True when candidate, with symlinks resolved, lies under base."""
    base_real = os.path.realpath(base)
    cand_real = os.path.realpath(candidate)
    return os.path.commonpath([base_real, cand_real]) == base_real


__all__ = [
    "MAX_WORK_BYTES",
    "EvidenceError",
    "Registered",
    "WorkInput",
    "add_work",
    "find_works",
    "inside",
    "list_works",
    "parse_holders",
    "read_original",
    "register",
    "validate",
    "work_json",
]
