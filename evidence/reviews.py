"""Review decisions: who set which status on a use, when and why, in the table and the ledger.

Every change is a `StatusChange` row and a signed `status` entry in the evidence ledger, in the
caller's transaction, so a decision and its proof are written together or not at all.
"""

from __future__ import annotations

import importlib
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence.errors import BadInput
from evidence.models import Match, MatchStatus, StatusChange

log = logging.getLogger(__name__)

MAX_NOTE = 2000
MAX_BY = 200


def parse_status(value: str) -> MatchStatus:
    try:
        return MatchStatus(value.strip().lower())
    except ValueError:
        allowed = ", ".join(s.value for s in MatchStatus)
        raise BadInput(f"unknown status {value[:40]!r}: use one of {allowed}") from None


def _append_to_ledger(session: Session, *, subject: str, content: dict[str, Any]) -> None:
    try:
        ledger = importlib.import_module("evidence.ledger")
    except ModuleNotFoundError as exc:
        if exc.name != "evidence.ledger":
            raise
        # The evidence room's ledger is not in this tree yet: the StatusChange row still records it.
        log.warning("evidence.ledger is not available; status change %s not in the ledger", subject)
        return
    ledger.append(session, kind="status", subject=subject, content=content)


def set_status(session: Session, match: Match, status: str, *, note: str | None, by: str) -> Match:
    """Set a use's status as `by` decided; the caller owns the transaction.

    Setting the status it already has still records the decision (a reviewer confirming again).
    """
    new = parse_status(status)
    if note is not None:
        note = note.replace("\x00", "").strip() or None
        if note is not None and len(note) > MAX_NOTE:
            raise BadInput(f"note longer than {MAX_NOTE} characters")
    by = by.replace("\x00", "").strip()[:MAX_BY] or "unknown"
    at = datetime.now(UTC)
    old = str(match.status)
    change = StatusChange(
        match_id=match.id, old_status=old, new_status=new.value, note=note, by=by, at=at
    )
    session.add(change)
    match.status = new.value
    session.flush()
    _append_to_ledger(
        session,
        subject=f"match:{match.id}",
        content={
            "match_id": match.id,
            "work_id": match.work_id,
            "work_ref": match.work.ref,
            "page_url": match.page_url,
            "media_url": match.media_url,
            "old_status": old,
            "new_status": new.value,
            "note": note,
            "by": by,
            "at": at.isoformat().replace("+00:00", "Z"),
            "status_change_id": change.id,
        },
    )
    return match


def history(session: Session, match_id: int) -> list[StatusChange]:
    """A use's review decisions, oldest first."""
    return list(
        session.scalars(
            select(StatusChange).where(StatusChange.match_id == match_id).order_by(StatusChange.id)
        )
    )


def status_change_json(change: StatusChange) -> dict[str, Any]:
    return {
        "id": change.id,
        "match_id": change.match_id,
        "old_status": change.old_status,
        "new_status": change.new_status,
        "note": change.note,
        "by": change.by,
        "at": change.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }


__all__ = ["history", "parse_status", "set_status", "status_change_json"]
