"""Record one capture: WARC (+ WACZ, screenshot) to the blob store, the custody row, a ledger entry.

The WARC holds, for the page and the media, a request and a response record with the raw
headers and the payload exactly as served, a metadata record with the custody data (run, work,
scores, resolved IP, TLS chain, tool version, robots decision) and, when one was taken, the
screenshot as a resource record. Blobs are written first (content addressed, atomic); the row
and the ledger entry go into the caller's transaction, so a failure leaves at most an orphan
blob that `evidence check` reports, never a row that points at nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date
from warcio.warcwriter import WARCWriter

from evidence import ledger
from evidence.errors import BadInput
from evidence.material import CaptureMaterial, Exchange
from evidence.models import Capture, Match
from evidence.store import BlobStore, sha256_digest
from rightswatch import __version__

INCOMPLETE_FLAGS = frozenset({"dataloss", "partial", "truncated", "size-capped", "time-capped"})
CLOCK_SOURCE = f"system clock ({time.get_clock_info('time').implementation}), UTC"
# Custody fields every capture carries (HOSTILE.md's minimum list); only NULLABLE ones may be
# None (a capture outside a run, an ad hoc crawl without a watch).
NULLABLE_CUSTODY = frozenset({"run_id", "watch_id"})
REQUIRED_CUSTODY = (
    "evidence_id", "rightsholder", "run_id", "watch_id", "started_by", "page", "media",
    "user_agent", "capture_started_at", "capture_finished_at", "clock_source", "tool", "robots",
    "artifacts", "complete", "flags", "screenshot", "match",
)  # fmt: skip
REQUIRED_EXCHANGE = (
    "requested_url", "redirect_chain", "final_url", "resolved_ip", "port", "tls_chain_sha256",
    "method", "request_headers", "status", "response_headers", "started_at", "finished_at",
    "sha256", "size", "declared_type", "sniffed_type", "flags",
)  # fmt: skip


def _sniffed(body: bytes) -> str:
    from fingerprints import sniff

    found = sniff(body)
    if found is not None:
        return found.mime
    head = body[:1024].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "text/html"
    return "application/octet-stream" if body else "empty"


def _declared(ex: Exchange) -> str:
    for name, value in ex.response_headers:
        if name.lower() == "content-type":
            return value
    return "none"


def _when(value: datetime | None, fallback: datetime) -> datetime:
    return (value or fallback).astimezone(UTC)


def exchange_custody(ex: Exchange, fallback: datetime) -> dict[str, Any]:
    return {
        "requested_url": ex.redirect_chain[0] if ex.redirect_chain else ex.url,
        "redirect_chain": list(ex.redirect_chain) or [ex.url],
        "final_url": ex.url,
        "resolved_ip": ex.resolved_ip or "unknown",
        "port": ex.port
        if ex.port is not None
        else (urlsplit(ex.url).port or _default_port(ex.url)),
        "tls_chain_sha256": list(ex.tls_chain_sha256),
        "method": ex.method,
        "request_headers": [[k, v] for k, v in ex.request_headers],
        "status": ex.status,
        "reason": ex.reason,
        "http_version": ex.http_version,
        "response_headers": [[k, v] for k, v in ex.response_headers],
        "started_at": ledger.iso(_when(ex.started_at, fallback)),
        "finished_at": ledger.iso(_when(ex.finished_at, fallback)),
        "sha256": sha256_digest(ex.body),
        "size": len(ex.body),
        "declared_type": _declared(ex),
        "sniffed_type": _sniffed(ex.body),
        "flags": sorted(set(ex.flags)),
    }


def warc_date(value: datetime) -> str:
    """WARC/1.1 date: UTC with microseconds (warcio wants a naive UTC datetime)."""
    return str(datetime_to_iso_date(value.astimezone(UTC).replace(tzinfo=None), use_micros=True))


def _default_port(url: str) -> int:
    return 443 if url.lower().startswith("https:") else 80


def _target(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _write_exchange(writer: WARCWriter, ex: Exchange, fallback: datetime) -> None:
    date = warc_date(_when(ex.started_at, fallback))
    common = {"WARC-Date": date}
    if ex.resolved_ip:
        common["WARC-IP-Address"] = ex.resolved_ip
    response = writer.create_warc_record(
        ex.url,
        "response",
        payload=io.BytesIO(ex.body),
        length=len(ex.body),
        http_headers=StatusAndHeaders(
            f"{ex.status} {ex.reason}".strip(), list(ex.response_headers), protocol=ex.http_version
        ),
        warc_headers_dict=dict(common),
    )
    request = writer.create_warc_record(
        ex.url,
        "request",
        payload=io.BytesIO(b""),
        length=0,
        http_headers=StatusAndHeaders(
            f"{ex.method} {_target(ex.url)} {ex.http_version}",
            list(ex.request_headers),
            is_http_request=True,
        ),
        warc_headers_dict=common | {"WARC-Concurrent-To": response.rec_headers["WARC-Record-ID"]},
    )
    writer.write_record(response)
    writer.write_record(request)


def build_warc(capture_id: str, material: CaptureMaterial, custody: dict[str, Any]) -> bytes:
    """The capture's WARC/1.1 file (gzip per record), bytes."""
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True, warc_version="1.1")
    fallback = datetime.now(UTC)
    info = writer.create_warcinfo_record(
        f"{capture_id}.warc.gz",
        {
            "software": f"rightswatch/{__version__} (crawler {material.crawler_version})",
            "format": "WARC File Format 1.1",
            "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
            "isPartOf": f"rightswatch capture {capture_id}",
            "http-header-user-agent": material.user_agent,
            "robots": "obey" if material.robots.get("obeyed", True) else "ignore",
        },
    )
    writer.write_record(info)
    _write_exchange(writer, material.page, fallback)
    _write_exchange(writer, material.media, fallback)
    meta = json.dumps(custody, sort_keys=True, ensure_ascii=False).encode()
    writer.write_record(
        writer.create_warc_record(
            material.page.url,
            "metadata",
            payload=io.BytesIO(meta),
            length=len(meta),
            warc_content_type="application/json",
            warc_headers_dict={"WARC-Date": warc_date(fallback)},
        )
    )
    if material.screenshot_png:
        writer.write_record(
            writer.create_warc_record(
                f"urn:rightswatch:screenshot:{material.page.url}",
                "resource",
                payload=io.BytesIO(material.screenshot_png),
                length=len(material.screenshot_png),
                warc_content_type="image/png",
                warc_headers_dict={"WARC-Date": warc_date(fallback)},
            )
        )
    return buf.getvalue()


SCREENSHOT_FIELDS = (
    "viewport", "browser", "browser_version", "user_agent", "final_url", "status",
    "full_page", "page_height", "truncated", "taken_at",
)  # fmt: skip


def screenshot_custody(material: CaptureMaterial) -> dict[str, Any]:
    """What the custody record says about the screenshot: how it was taken, or why there is none."""
    meta = material.screenshot_meta or {}
    if not material.screenshot_png:
        reason = str(meta.get("reason") or "no screenshot was taken")
        return {"taken": False, "reason": reason[:300]}
    out: dict[str, Any] = {k: meta[k] for k in SCREENSHOT_FIELDS if k in meta}
    out["taken"] = True
    out["sha256"] = sha256_digest(material.screenshot_png)
    refused = meta.get("egress_refused")
    if isinstance(refused, list):
        out["egress_refused"] = [str(r)[:300] for r in refused[:100]]
    return out


def _existing(session: Session, match_id: int, run_id: int | None) -> Capture | None:
    stmt = select(Capture).where(Capture.match_id == match_id)
    stmt = stmt.where(Capture.run_id.is_(None) if run_id is None else Capture.run_id == run_id)
    return session.scalar(stmt.limit(1))


def record_capture(
    session: Session, store: BlobStore, *, match: Match, material: CaptureMaterial
) -> Capture:
    """Record evidence of one use; the same (match, run) again returns the first capture."""
    if match.id is None:
        session.flush()
    existing = _existing(session, match.id, material.run_id)
    if existing is not None:
        return existing
    if not material.page.url or not material.media.url:
        raise BadInput("capture material without page or media URL")
    capture_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    started = min(_when(material.page.started_at, now), _when(material.media.started_at, now))
    finished = max(_when(material.page.finished_at, now), _when(material.media.finished_at, now))
    flags = sorted(set(material.page.flags) | set(material.media.flags))
    complete = not (INCOMPLETE_FLAGS & set(flags)) and material.media.status != 0
    run = match.first_run_id if material.run_id is None else material.run_id
    watch_id = None
    if run is not None:
        from evidence.models import Run

        run_row = session.get(Run, run)
        watch_id = run_row.watch_id if run_row is not None else None
    work = match.work
    custody: dict[str, Any] = {
        "evidence_id": capture_id,
        "rightsholder": work.rightsholder.name,
        "account": material.started_by,
        "run_id": material.run_id,
        "watch_id": watch_id,
        "started_by": material.started_by,
        "page": exchange_custody(material.page, now),
        "media": exchange_custody(material.media, now),
        "user_agent": material.user_agent,
        "capture_started_at": ledger.iso(started),
        "capture_finished_at": ledger.iso(finished),
        "clock_source": CLOCK_SOURCE,
        "tool": {
            "name": "rightswatch",
            "version": __version__,
            "crawler_version": material.crawler_version,
            "config_sha256": material.config_sha256,
        },
        "robots": dict(material.robots),
        "complete": complete,
        "flags": flags,
        "screenshot": screenshot_custody(material),
        "match": {
            "match_id": match.id,
            "work_id": work.id,
            "work_ref": work.ref,
            "work_sha256": work.sha256,
            "score": match.score,
            "method": match.method,
            "offset_s": match.offset_s,
            "region": match.region,
            **material.match,
        },
        "signals": dict(material.signals),
    }
    warc = build_warc(capture_id, material, custody)
    artifacts: dict[str, Any] = {
        "warc": {"sha256": store.put(warc), "size": len(warc), "type": "application/warc"},
    }
    from evidence.wacz import make_wacz

    wacz = make_wacz(
        warc, page_url=material.page.url, captured_at=started, title=f"rightswatch {work.ref}"
    )
    artifacts["wacz"] = {"sha256": store.put(wacz), "size": len(wacz), "type": "application/wacz"}
    shot_digest = None
    if material.screenshot_png:
        shot_digest = store.put(material.screenshot_png)
        artifacts["screenshot"] = {
            "sha256": shot_digest,
            "size": len(material.screenshot_png),
            "type": "image/png",
        }
    custody["artifacts"] = artifacts
    try:
        with session.begin_nested():
            row = _insert(session, capture_id, match, material, custody, started, finished)
    except IntegrityError:  # another writer recorded this (match, run) first: theirs stands
        found = _existing(session, match.id, material.run_id)
        if found is None:
            raise
        return found
    return row


def _insert(
    session: Session,
    capture_id: str,
    match: Match,
    material: CaptureMaterial,
    custody: dict[str, Any],
    started: datetime,
    finished: datetime,
) -> Capture:
    artifacts = custody["artifacts"]
    row = Capture(
        id=capture_id,
        match_id=match.id,
        run_id=material.run_id,
        warc_sha256=artifacts["warc"]["sha256"],
        warc_size=artifacts["warc"]["size"],
        screenshot_sha256=artifacts.get("screenshot", {}).get("sha256"),
        page_url=material.page.url,
        media_url=material.media.url,
        started_at=started,
        finished_at=finished,
        complete=custody["complete"],
        flags=custody["flags"],
        custody=custody,
    )
    session.add(row)
    session.flush()
    entry = ledger.append(session, kind="capture", subject=f"capture:{capture_id}", content=custody)
    row.ledger_seq = entry.seq
    session.flush()
    return row


def custody_digest(custody: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(ledger.canonical(custody)).hexdigest()
