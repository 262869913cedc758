"""Evidence packs: one ZIP that proves, offline, what was online where and when.

Layout (every member but the manifest and its signature is listed in the manifest with its
SHA-256 and size)::

    manifest.json              matches, works (refs + fingerprints), captures, members, checkpoint
    manifest.sig               base64 Ed25519 signature over manifest.json's bytes
    public_key.pem             the installation's public key (key_id = sha256 of its raw bytes)
    ledger/entries.json        the ledger entries of these matches, each with its inclusion proof
    ledger/checkpoint.json     the signed ledger head the proofs lead to
    ledger/consistency.json    RFC 6962 proofs that this head extends earlier checkpoints
    timestamp/request.tsq      the RFC 3161 request over the checkpoint
    timestamp/response.tsr     the TSA's token, when the checkpoint is externally timestamped
    warc/<capture>.warc.gz     the captures, as recorded
    wacz/<capture>.wacz        the same, replayable in ReplayWeb.page
    screenshots/<capture>.png  full-page screenshots, when taken
    works/<work>.<ext>         the catalogue original of image works (for the side-by-side view)
    found/<capture>.<ext>      the found image as served (extracted from the WARC)
    report.html                the report a lawyer reads

The pack is written to a temporary file next to the target and renamed into place; an existing
target is refused unless forced. Each export appends an `export` custody entry to the ledger.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from warcio.archiveiterator import ArchiveIterator

from evidence import ledger, merkle
from evidence.errors import BadInput, EvidenceError, NotFound, StoreError
from evidence.keys import key_id, public_key_b64
from evidence.models import Capture, Checkpoint, LedgerEntry, Match, Work
from evidence.store import BlobStore
from evidence.uses import match_json
from rightswatch import __version__
from rightswatch.config import Settings

FORMAT = "rightswatch-evidence-pack/1"
MAX_NAME = 200
MAX_WORK_COPY = 20 * 1024 * 1024  # originals larger than this stay out of the pack (hash still in)
IMAGE_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # members carry no wall-clock time: packs differ only in metadata
NOT_TIMESTAMPED = "not externally timestamped"
MAX_CONSISTENCY = 100  # proofs that this pack's head extends the last N earlier checkpoints


def safe_name(name: str) -> str:
    """A member name that is relative, without '..', control characters or odd bytes."""
    parts = [
        re.sub(r"[^A-Za-z0-9._-]", "_", p) for p in name.split("/") if p not in ("", ".", "..")
    ]
    parts = [p.lstrip(".") or "_" for p in parts]
    out = "/".join(parts)[:MAX_NAME]
    if not out:
        raise BadInput(f"no safe member name for {name[:60]!r}")
    return out


def work_json(work: Work) -> dict[str, Any]:
    return {
        "id": work.id,
        "ref": work.ref,
        "kind": work.kind,
        "title": work.title,
        "creator": work.creator,
        "rightsholder": work.rightsholder.name,
        "isrc": work.isrc,
        "iswc": work.iswc,
        "sha256": work.sha256,
        "size": work.size,
        "mime": work.mime,
        "shares": [
            {"rightsholder": s.rightsholder.name, "share": str(s.share)} for s in work.shares
        ],
        "fingerprints": [
            {"type": f.type, "version": f.version, "value": f.value}
            for f in sorted(work.fingerprints, key=lambda f: f.type)
        ],
    }


def select_matches(
    session: Session,
    *,
    match_ids: Sequence[int] = (),
    work_ref: str | None = None,
    all_matches: bool = False,
    scope: Sequence[int] | None = None,
) -> list[Match]:
    """The matches to export; an unknown (or out-of-scope) id is NotFound, never skipped."""
    if sum((bool(match_ids), work_ref is not None, all_matches)) != 1:
        raise BadInput("choose exactly one of --match, --work or --all")
    stmt = select(Match).join(Work, Match.work_id == Work.id)
    if scope is not None:
        stmt = stmt.where(Work.rightsholder_id.in_(scope))
    if match_ids:
        found = {m.id: m for m in session.scalars(stmt.where(Match.id.in_(set(match_ids))))}
        missing = [i for i in match_ids if i not in found]
        if missing:
            raise NotFound(f"no match {missing[0]}")
        return [found[i] for i in sorted(set(match_ids))]
    if work_ref is not None:
        from evidence.catalogue import find_works

        works = find_works(session, work_ref, scope)
        if not works:
            raise NotFound(f"no work {work_ref!r}")
        stmt = stmt.where(Match.work_id.in_([w.id for w in works]))
    matches = list(session.scalars(stmt.order_by(Match.id)))
    if not matches:
        raise NotFound("no matches to export")
    return matches


def render_report(**context: Any) -> str:
    """report.html from its Jinja2 template; autoescaping makes page data inert text."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("evidence", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    return env.get_template("report.html").render(**context)


class PackBuilder:
    """Writes members straight into the ZIP (memory bounded by the largest member), recording
    each one's hash and size for the manifest."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        self.entries: dict[str, dict[str, Any]] = {}

    def _write(self, name: str, data: bytes) -> None:
        info = zipfile.ZipInfo(name, ZIP_TIME)
        packed = name.endswith((".gz", ".wacz", ".png", ".jpg", ".gif", ".webp"))
        info.compress_type = zipfile.ZIP_STORED if packed else zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        self.zf.writestr(info, data)

    def add(self, name: str, data: bytes) -> str:
        name = safe_name(name)
        if name in self.entries or name in ("manifest.json", "manifest.sig"):
            raise EvidenceError(f"duplicate pack member {name}")
        self._write(name, data)
        self.entries[name] = {
            "sha256": "sha256:" + hashlib.sha256(data).hexdigest(),
            "size": len(data),
        }
        return name

    def listing(self) -> dict[str, dict[str, Any]]:
        return dict(sorted(self.entries.items()))

    def finish(self, manifest: bytes, signature: bytes) -> None:
        self._write("manifest.json", manifest)
        self._write("manifest.sig", signature)


@dataclass
class Written:
    digest: str = ""


@contextlib.contextmanager
def atomic_zip(target: Path, *, force: bool) -> Iterator[tuple[PackBuilder, Written]]:
    """A ZIP written to a temporary file beside `target`, fsynced and renamed into place only
    when the block succeeds; a crash or an error leaves no partial pack under the name."""
    target = target.expanduser()
    if target.exists() and not force:
        raise BadInput(f"{target} exists: pass --force to overwrite it")
    if target.exists() and not target.is_file():
        raise BadInput(f"{target} is not a regular file")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise BadInput(f"{parent}: no such directory")
    written = Written()
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{target.name[:40]}.", suffix=".tmp")
    except OSError as exc:
        raise EvidenceError(f"cannot write in {parent}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w+b") as fh:
            with zipfile.ZipFile(fh, "w") as zf:
                yield PackBuilder(zf), written
            fh.flush()
            os.fsync(fh.fileno())
            fh.seek(0)
            digest = hashlib.sha256()
            while chunk := fh.read(1024 * 1024):
                digest.update(chunk)
        os.replace(tmp, target)
        written.digest = "sha256:" + digest.hexdigest()
    except OSError as exc:
        raise EvidenceError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _found_payload(warc: bytes, media_url: str) -> bytes | None:
    for rec in ArchiveIterator(io.BytesIO(warc)):
        if (
            rec.rec_type == "response"
            and rec.rec_headers.get_header("WARC-Target-URI") == media_url
        ):
            return bytes(rec.content_stream().read())
    return None


def _anchor(session: Session, max_seq: int, settings: Settings) -> tuple[Checkpoint, list[str]]:
    """The checkpoint the proofs lead to: a timestamped one covering every entry if there is one,
    else the current head (stamped now when a TSA is configured and answers)."""
    from evidence import timestamp

    warnings: list[str] = []
    stamped = session.scalar(
        select(Checkpoint)
        .where(Checkpoint.tsa_token.is_not(None), Checkpoint.size >= max_seq)
        .order_by(Checkpoint.size)
        .limit(1)
    )
    if stamped is not None:
        return stamped, warnings
    cp = ledger.make_checkpoint(session)
    timestamp.prepare(session, cp)
    if settings.tsa_url:
        try:
            with session.begin_nested():
                timestamp.stamp_checkpoint(session, cp, settings.tsa_url)
        except timestamp.TimestampError as exc:
            warnings.append(f"{exc}; run `rightswatch evidence timestamp` later")
    return cp, warnings


def build_pack(
    session: Session, store: BlobStore, settings: Settings, matches: list[Match], pack: PackBuilder
) -> tuple[dict[str, Any], bytes]:
    """Write every member of the pack, the manifest and its signature last; the manifest."""
    key = ledger.signing_key()
    public = key.public_key()
    from cryptography.hazmat.primitives import serialization

    pack.add(
        "public_key.pem",
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    works: dict[int, Work] = {m.work_id: m.work for m in matches}
    captures: list[Capture] = []
    for m in matches:
        captures.extend(sorted(m.captures, key=lambda c: (c.started_at, c.id)))
    subjects = [f"capture:{c.id}" for c in captures] + [f"match:{m.id}" for m in matches]
    entries = list(
        session.scalars(
            select(LedgerEntry).where(LedgerEntry.subject.in_(subjects)).order_by(LedgerEntry.seq)
        )
    )
    max_seq = max((e.seq for e in entries), default=0)
    checkpoint, warnings = _anchor(session, max_seq, settings)
    hashes = ledger.leaf_hashes(session, upto=checkpoint.size)
    proofs = []
    for e in entries:
        proved = ledger.entry_json(e)
        proved["leaf_index"] = e.seq - 1
        proved["inclusion_proof"] = [p.hex() for p in merkle.inclusion_proof(e.seq - 1, hashes)]
        proofs.append(proved)
    pack.add("ledger/entries.json", json.dumps(proofs, indent=1, ensure_ascii=False).encode())
    pack.add(
        "ledger/checkpoint.json", json.dumps(ledger.checkpoint_json(checkpoint), indent=1).encode()
    )
    earlier = session.scalars(
        select(Checkpoint)
        .where(Checkpoint.size < checkpoint.size, Checkpoint.size > 0)
        .order_by(Checkpoint.size.desc())
        .limit(MAX_CONSISTENCY)
    )
    consistency = [
        {
            "size": old.size,
            "root": old.root,
            "proof": [p.hex() for p in merkle.consistency_proof(old.size, hashes)],
        }
        for old in earlier
    ]
    pack.add("ledger/consistency.json", json.dumps(consistency, indent=1).encode())
    timestamped = checkpoint.tsa_token is not None
    from evidence.timestamp import token_policy

    tsa_policy = token_policy(checkpoint.tsa_token) if checkpoint.tsa_token else None
    if checkpoint.tsa_request:
        pack.add("timestamp/request.tsq", checkpoint.tsa_request)
    if checkpoint.tsa_token:
        pack.add("timestamp/response.tsr", checkpoint.tsa_token)
    else:
        warnings.append(NOT_TIMESTAMPED)

    work_files: dict[int, str] = {}
    for work in works.values():
        ext = IMAGE_EXT.get(work.mime)
        if ext and work.size <= MAX_WORK_COPY:
            with contextlib.suppress(StoreError):
                work_files[work.id] = pack.add(f"works/{work.id}.{ext}", store.get(work.sha256))
    cap_json = []
    for c in captures:
        arts = c.custody.get("artifacts", {})
        warc = store.get(c.warc_sha256)
        item: dict[str, Any] = {
            "id": c.id,
            "match_id": c.match_id,
            "run_id": c.run_id,
            "started_at": ledger.iso(c.started_at),
            "finished_at": ledger.iso(c.finished_at),
            "complete": c.complete,
            "flags": list(c.flags),
            "ledger_seq": c.ledger_seq,
            "warc": pack.add(f"warc/{c.id}.warc.gz", warc),
            "custody": c.custody,
        }
        if "wacz" in arts:
            item["wacz"] = pack.add(f"wacz/{c.id}.wacz", store.get(arts["wacz"]["sha256"]))
        if c.screenshot_sha256:
            item["screenshot"] = pack.add(f"screenshots/{c.id}.png", store.get(c.screenshot_sha256))
        media_type = str(c.custody.get("media", {}).get("sniffed_type", ""))
        ext = IMAGE_EXT.get(media_type)
        if ext:
            payload = _found_payload(warc, c.media_url)
            if payload is not None:
                item["found"] = pack.add(f"found/{c.id}.{ext}", payload)
        cap_json.append(item)

    now = datetime.now(UTC)
    match_rows = [match_json(m) for m in matches]
    report = render_report(
        matches=match_rows,
        works={w.id: work_json(w) for w in works.values()},
        work_files=work_files,
        captures=cap_json,
        checkpoint=ledger.checkpoint_json(checkpoint),
        key_id=key_id(public),
        exported_at=ledger.iso(now),
        timestamped=timestamped,
        tsa_policy=tsa_policy,
        gen_time=ledger.iso(checkpoint.timestamped_at) if checkpoint.timestamped_at else None,
    )
    pack.add("report.html", report.encode())
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "tool": f"rightswatch {__version__}",
        "exported_at": ledger.iso(now),
        "key_id": key_id(public),
        "public_key": public_key_b64(public),
        "checkpoint": ledger.checkpoint_json(checkpoint),
        "timestamp": {
            "status": "timestamped" if timestamped else NOT_TIMESTAMPED,
            "tsa_url": checkpoint.tsa_url,
            "policy": tsa_policy,
            "gen_time": ledger.iso(checkpoint.timestamped_at)
            if checkpoint.timestamped_at
            else None,
        },
        "matches": match_rows,
        "works": [work_json(w) for w in works.values()],
        "captures": cap_json,
        "ledger_seqs": [e.seq for e in entries],
        "warnings": warnings,
        "members": pack.listing(),
    }
    raw = json.dumps(manifest, indent=1, ensure_ascii=False, sort_keys=True).encode()
    pack.finish(raw, ledger.sign(raw).encode())
    return manifest, raw


def export_pack(
    factory: sessionmaker[Session],
    store: BlobStore,
    settings: Settings,
    target: Path,
    *,
    match_ids: Sequence[int] = (),
    work_ref: str | None = None,
    all_matches: bool = False,
    force: bool = False,
    by: str = "cli",
    scope: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Export a pack to `target`; `{"path", "matches", "sha256", "warnings"}`."""
    if target.exists() and not force:
        raise BadInput(f"{target} exists: pass --force to overwrite it")
    with factory.begin() as session:
        matches = select_matches(
            session, match_ids=match_ids, work_ref=work_ref, all_matches=all_matches, scope=scope
        )
        with atomic_zip(target, force=force) as (pack, written):
            manifest, raw = build_pack(session, store, settings, matches, pack)
    digest = written.digest
    ids = [m["id"] for m in manifest["matches"]]
    with factory.begin() as session:
        ledger.append(
            session,
            kind="export",
            subject=f"export:{digest.removeprefix('sha256:')[:32]}",
            content={
                "pack_sha256": digest,
                "path_name": target.name[:200],
                "matches": ids,
                "captures": [c["id"] for c in manifest["captures"]],
                "manifest_sha256": "sha256:" + hashlib.sha256(raw).hexdigest(),
                "checkpoint_size": manifest["checkpoint"]["size"],
                "by": by,
            },
        )
    return {
        "path": str(target.absolute()),
        "matches": ids,
        "sha256": digest.removeprefix("sha256:"),
        "report": "report.html",
        "warnings": manifest["warnings"],
    }


def pack_bytes(
    factory: sessionmaker[Session],
    store: BlobStore,
    settings: Settings,
    match_ids: Sequence[int],
    *,
    by: str,
    scope: Sequence[int] | None = None,
) -> bytes:
    """The pack as bytes (for the HTTP API), exported through a private temporary file."""
    with tempfile.TemporaryDirectory(prefix="rw-pack-") as tmp:
        path = Path(tmp) / "pack.zip"
        export_pack(factory, store, settings, path, match_ids=match_ids, by=by, scope=scope)
        return path.read_bytes()


_MEMBER_SRC = re.compile(rb'src="((?:works|found|screenshots)/[A-Za-z0-9._/-]{1,200})"')
DATA_MIME = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}


def standalone_report(pack: Path) -> bytes:
    """The pack's report.html with its images inlined as data: URIs, so a copy outside the ZIP
    shows them too (its CSP allows `img-src data:`). Only the pack's own image members, by the
    exact names the report was rendered with, are inlined; anything else stays as it is."""
    import base64

    with zipfile.ZipFile(pack) as zf:
        html = zf.read("report.html")
        names = set(zf.namelist())

        def inline(m: re.Match[bytes]) -> bytes:
            name = m.group(1).decode("ascii")
            mime = DATA_MIME.get(name.rsplit(".", 1)[-1])
            if name not in names or mime is None:
                return m.group(0)
            data = base64.b64encode(zf.read(name))
            return b'src="data:' + mime.encode() + b";base64," + data + b'"'

        return _MEMBER_SRC.sub(inline, html)


def export_and_verify(settings: Settings, match_ids: Sequence[int], target: Path) -> dict[str, Any]:
    """Export these matches, verify the pack, and put a copy of its report.html beside it
    (what `rightswatch demo` ends with)."""
    from evidence.blobs import open_store
    from evidence.db import make_engine, make_session_factory
    from evidence.verify import verify_pack

    engine = make_engine(settings.database_url)
    try:
        factory = make_session_factory(engine)
        out = export_pack(
            factory,
            open_store(settings),
            settings,
            target,
            match_ids=match_ids,
            force=True,
            by="demo",
        )
    finally:
        engine.dispose()
    result = verify_pack(target)
    report = target.with_name(target.stem + "-report.html")
    report.write_bytes(standalone_report(target))
    return {
        "pack": out["path"],
        "sha256": out["sha256"],
        "report": str(report.absolute()),
        "verified": result["ok"],
        "problems": result["problems"],
        "warnings": result["warnings"],
    }
