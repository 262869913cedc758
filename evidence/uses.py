"""Found uses: one row per (work, page, media), upserted each time a crawl sees it again.

Seeing a use again moves `last_seen` and `last_run_id`, keeps the best score, merges flags and
re-evaluates the licence status (a licence that expired brings the use back to `pending`; a
reviewer's confirmed/dismissed decision stands). The (work, page key, media key) unique key
makes recording idempotent, even when two crawls find the same use at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from w3lib.url import canonicalize_url

from evidence.errors import BadInput, NotFound
from evidence.licences import status_for_sighting
from evidence.models import Match, MatchStatus, Work

if TYPE_CHECKING:
    from fingerprints import Hit

MAX_URL = 8192
_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(url: str) -> str:
    """The form two spellings of one URL share: lower-case scheme and host, no default port,
    no fragment, sorted query arguments, percent-encoding normalised (w3lib, as Scrapy does)."""
    try:
        canon = canonicalize_url(url.strip(), keep_fragments=False)
        parts = urlsplit(canon)
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError as exc:
        raise BadInput(f"bad URL {url[:200]!r}: {exc}") from None
    if parts.scheme not in _DEFAULT_PORTS or not host:
        raise BadInput(f"not an http(s) URL: {url[:200]!r}")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
        netloc = f"{netloc}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def url_key(url: str) -> str:
    """sha256 hex of the canonical URL: the key a use (and a frontier entry) is stored under."""
    return hashlib.sha256(canonical_url(url).encode("utf-8")).hexdigest()


def url_host(url: str) -> str:
    """The page's host, as licences compare it (lower case, IDNA, no trailing dot)."""
    return urlsplit(canonical_url(url)).hostname or ""


def _merge_flags(old: Sequence[Any], new: Sequence[str]) -> list[str]:
    out = [str(f) for f in old]
    out.extend(f for f in new if f not in out)
    return out


def _find(session: Session, work_id: int, page_key: str, media_key: str) -> Match | None:
    return session.scalars(
        select(Match).where(
            Match.work_id == work_id,
            Match.page_url_key == page_key,
            Match.media_url_key == media_key,
        )
    ).one_or_none()


def record_use(
    session: Session,
    *,
    work_id: int,
    page_url: str,
    media_url: str,
    hit: Hit,
    run_id: int | None,
    media_sha256: str | None,
    flags: Sequence[str],
    seen_at: datetime,
) -> tuple[Match, bool]:
    """Insert or update the use of `work_id` at (page_url, media_url); returns (match, created).

    The caller owns the transaction. A concurrent insert of the same use is absorbed by a
    savepoint: the loser updates the winner's row instead.
    """
    if seen_at.tzinfo is None:
        raise BadInput("seen_at must be timezone-aware (UTC)")
    if len(page_url) > MAX_URL or len(media_url) > MAX_URL:
        raise BadInput(f"URL longer than {MAX_URL} characters")
    work = session.get(Work, work_id)
    if work is None:
        raise BadInput(f"no work with id {work_id}")
    page_key, media_key = url_key(page_url), url_key(media_url)
    match = _find(session, work_id, page_key, media_key)
    if match is None:
        match = Match(
            work=work,
            work_id=work_id,
            page_url=page_url,
            page_url_key=page_key,
            media_url=media_url,
            media_url_key=media_key,
            domain=url_host(page_url),
            media_sha256=media_sha256,
            score=float(hit.score),
            offset_s=hit.offset_s,
            region=list(hit.region) if hit.region is not None else None,
            method=hit.method or None,
            status=MatchStatus.PENDING,
            flags=_merge_flags([], flags),
            first_seen=seen_at,
            last_seen=seen_at,
            first_run_id=run_id,
            last_run_id=run_id,
        )
        match.status = status_for_sighting(session, match, seen_at)
        try:
            with session.begin_nested():
                session.add(match)
                session.flush()
            return match, True
        except IntegrityError:
            existing = _find(session, work_id, page_key, media_key)
            if existing is None:
                raise
            match = existing
    _seen_again(session, match, hit, run_id, media_sha256, flags, seen_at)
    return match, False


def _seen_again(
    session: Session,
    match: Match,
    hit: Hit,
    run_id: int | None,
    media_sha256: str | None,
    flags: Sequence[str],
    seen_at: datetime,
) -> None:
    if seen_at >= match.last_seen:
        match.last_seen = seen_at
        match.last_run_id = run_id
        if media_sha256:
            match.media_sha256 = media_sha256
    if float(hit.score) > match.score:
        match.score = float(hit.score)
        match.offset_s = hit.offset_s
        match.region = list(hit.region) if hit.region is not None else None
        match.method = hit.method or match.method
    match.flags = _merge_flags(match.flags or [], flags)
    new_status = status_for_sighting(session, match, seen_at)
    if new_status != match.status:
        from evidence.reviews import set_status  # a licence decision is a status change too

        set_status(
            session, match, new_status, note="licence re-evaluated on sighting", by="licence"
        )
    session.flush()


def iso_z(value: datetime) -> str:
    """UTC ISO 8601 with a Z."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def match_json(match: Match) -> dict[str, Any]:
    """CONTRACT.md's `matches` shape, plus the image region when known."""
    return {
        "id": match.id,
        "work_id": match.work_id,
        "ref": match.work.ref,
        "kind": match.work.kind,
        "page_url": match.page_url,
        "media_url": match.media_url,
        "score": match.score,
        "offset_s": match.offset_s,
        "first_seen": iso_z(match.first_seen),
        "last_seen": iso_z(match.last_seen),
        "status": match.status,
        "flags": list(match.flags or []),
        "evidence_ids": [c.id for c in sorted(match.captures, key=lambda c: c.created_at)],
        "region": list(match.region) if match.region is not None else None,
    }


def _scoped(stmt: Select[Any], scope: Collection[int] | None) -> Select[Any]:
    if scope is None:
        return stmt
    return stmt.where(Match.work_id.in_(select(Work.id).where(Work.rightsholder_id.in_(scope))))


def list_matches(
    session: Session,
    *,
    scope: Collection[int] | None = None,
    work_ref: str | None = None,
    status: str | None = None,
    domain: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Match]:
    """Uses in scope (rightsholder ids; None: all), newest sighting first, filtered.

    `work_ref` may be 'holder:ref'; `domain` matches the page's host and its subdomains.
    """
    from evidence.catalogue import find_works

    stmt = _scoped(select(Match), scope).order_by(Match.last_seen.desc(), Match.id.desc())
    if work_ref is not None:
        ids = [
            w.id for w in find_works(session, work_ref, list(scope) if scope is not None else None)
        ]
        stmt = stmt.where(Match.work_id.in_(ids))
    if status is not None:
        from evidence.reviews import parse_status

        stmt = stmt.where(Match.status == parse_status(status).value)
    if domain is not None:
        host = domain.strip().rstrip(".").lower()
        stmt = stmt.where((Match.domain == host) | Match.domain.endswith("." + host))
    if offset:
        stmt = stmt.offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def get_match(session: Session, match_id: int, scope: Collection[int] | None = None) -> Match:
    """One use in scope; another rightsholder's use is as absent as one that never existed."""
    stmt = _scoped(select(Match).where(Match.id == match_id), scope)
    match: Match | None = session.scalars(stmt).one_or_none()
    if match is None:
        raise NotFound(f"no match with id {match_id}")
    return match


__all__ = [
    "canonical_url",
    "get_match",
    "iso_z",
    "list_matches",
    "match_json",
    "record_use",
    "url_host",
    "url_key",
]
