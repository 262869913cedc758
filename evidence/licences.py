"""Licensed uses: a work (or a rightsholder's whole catalogue, or everything) on a domain and its
subdomains, until a date. Matches on a licensed domain become `licensed` and leave the review
queue; when the licence expires, later sightings bring them back to `pending`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from evidence.errors import BadInput
from evidence.models import Licence, Match, MatchStatus, Work


def normalize_domain(value: str) -> str:
    """'WWW.Example.COM.' -> 'www.example.com'; IDNs in their ASCII (punycode) form."""
    host = value.strip().rstrip(".").lower()
    if "://" in host:
        raise BadInput(f"licence domain {value!r}: give a domain, not a URL")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise BadInput(f"licence domain {value!r} is not a valid domain name") from None
    if not host or any(c in host for c in "/:@ ") or len(host) > 253:
        raise BadInput(f"licence domain {value!r} is not a valid domain name")
    return host


def covers(licence_domain: str, host: str) -> bool:
    """The licence's domain itself and every subdomain of it, never a look-alike suffix."""
    host = host.rstrip(".").lower()
    return host == licence_domain or host.endswith("." + licence_domain)


def active_on(licence: Licence, when: datetime) -> bool:
    return licence.until is None or when.astimezone(UTC).date() <= licence.until


def covering_licence(session: Session, work: Work, host: str, when: datetime) -> Licence | None:
    """The licence that covers this work on this host at this time, if any."""
    candidates = session.scalars(
        select(Licence).where(
            or_(
                Licence.work_id == work.id,
                (Licence.work_id.is_(None)) & (Licence.rightsholder_id == work.rightsholder_id),
                (Licence.work_id.is_(None)) & (Licence.rightsholder_id.is_(None)),
            )
        )
    )
    for lic in candidates:
        if covers(lic.domain, host) and active_on(lic, when):
            return lic
    return None


def status_for_sighting(session: Session, match: Match, when: datetime) -> str:
    """The status a use gets when seen: licensed while covered, pending again once expired;
    a reviewer's confirmed/dismissed decision stands."""
    lic = covering_licence(session, match.work, match.domain, when)
    if lic is not None:
        return MatchStatus.LICENSED
    if match.status == MatchStatus.LICENSED:
        return MatchStatus.PENDING
    return match.status


def add_licence(
    session: Session,
    *,
    domain: str,
    work: Work | None,
    rightsholder_id: int | None,
    until: date | None,
    created_by: str,
) -> tuple[Licence, list[Match]]:
    """Record a licence and mark the matches it covers now as licensed; returns both."""
    lic = Licence(
        work_id=work.id if work else None,
        rightsholder_id=rightsholder_id if work is None else work.rightsholder_id,
        domain=normalize_domain(domain),
        until=until,
        created_by=created_by,
    )
    session.add(lic)
    session.flush()
    now = datetime.now(UTC)
    changed = []
    if active_on(lic, now):
        stmt = select(Match).where(Match.status == MatchStatus.PENDING)
        if work is not None:
            stmt = stmt.where(Match.work_id == work.id)
        elif rightsholder_id is not None:
            stmt = stmt.join(Work).where(Work.rightsholder_id == rightsholder_id)
        for match in session.scalars(stmt):
            if covers(lic.domain, match.domain):
                match.status = MatchStatus.LICENSED
                changed.append(match)
    return lic, changed


def licence_json(lic: Licence, work_ref: str | None) -> dict[str, Any]:
    return {
        "id": lic.id,
        "work_id": lic.work_id,
        "ref": work_ref,
        "rightsholder_id": lic.rightsholder_id,
        "domain": lic.domain,
        "until": lic.until.isoformat() if lic.until else None,
        "created_by": lic.created_by,
        "created_at": lic.created_at,
    }
