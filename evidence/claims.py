"""Claims for collecting societies: one row per work and use, with identifiers and shares.

Rows go out as JSON or CSV (spreadsheet-safe: a cell that starts with = + - @ or a control
character is prefixed with an apostrophe, so a hostile page title never becomes a formula).
With a rate card (RIGHTSWATCH_RATE_CARD) each row carries a fee and the totals per rightsholder.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence.errors import BadInput, EvidenceError
from evidence.models import Match, MatchStatus, Work
from rightswatch.config import Settings

COLUMNS = (
    "work_id", "work_ref", "title", "kind", "isrc", "iswc", "rightsholders", "shares",
    "match_id", "domain", "page_url", "media_url", "first_seen", "last_seen", "captures",
    "status", "evidence_ids",
)  # fmt: skip
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def _iso(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z") if value is not None else ""


def claim_rows(
    session: Session,
    *,
    statuses: Sequence[str] = (),
    scope: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    stmt = select(Match).join(Work, Match.work_id == Work.id).order_by(Work.id, Match.id)
    if statuses:
        allowed = {s.value for s in MatchStatus}
        bad = [s for s in statuses if s not in allowed]
        if bad:
            raise BadInput(f"unknown status {bad[0]!r}: use one of {', '.join(sorted(allowed))}")
        stmt = stmt.where(Match.status.in_(list(statuses)))
    if scope is not None:
        stmt = stmt.where(Work.rightsholder_id.in_(scope))
    rows = []
    for m in session.scalars(stmt):
        w = m.work
        captures = sorted(m.captures, key=lambda c: (c.started_at, c.id))
        rows.append(
            {
                "work_id": w.id,
                "work_ref": w.ref,
                "title": w.title,
                "kind": w.kind,
                "isrc": w.isrc,
                "iswc": w.iswc,
                "rightsholder": w.rightsholder.name,
                "shares": [
                    {"rightsholder": s.rightsholder.name, "share": float(s.share)}
                    for s in sorted(w.shares, key=lambda s: (-s.share, s.rightsholder.name))
                ],
                "match_id": m.id,
                "domain": m.domain,
                "page_url": m.page_url,
                "media_url": m.media_url,
                "first_seen": _iso(m.first_seen),
                "last_seen": _iso(m.last_seen),
                "captures": len(captures),
                "status": m.status,
                "evidence_ids": [c.id for c in captures],
            }
        )
    return rows


def price(rows: list[dict[str, Any]], settings: Settings) -> dict[str, Any] | None:
    """Add `fee` to each row from the rate card, if one is configured; the totals."""
    if settings.rate_card is None:
        return None
    from evidence.ratecard import load_rate_card  # the signals room's module

    card = load_rate_card(settings.rate_card)
    for row in rows:
        row["fee"] = str(card.fee(row))  # money as exact decimal strings, never floats
    totals = card.totals(rows)
    return {
        "currency": card.currency,
        "totals": {holder: str(amount) for holder, amount in totals.items()},
        "total": str(sum(totals.values(), Decimal(0))),
    }


def neutralise(value: Any) -> str:
    """A CSV cell that a spreadsheet shows as text, never evaluates."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def to_csv(rows: list[dict[str, Any]]) -> str:
    cols = [*COLUMNS, *(["fee"] if rows and "fee" in rows[0] else [])]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(cols)
    for row in rows:
        flat = dict(row)
        flat["rightsholders"] = (
            "; ".join(s["rightsholder"] for s in row["shares"]) or row["rightsholder"]
        )
        flat["shares"] = "; ".join(f"{s['share']:g}" for s in row["shares"])
        flat["evidence_ids"] = "; ".join(row["evidence_ids"])
        writer.writerow([neutralise(flat.get(c)) for c in cols])
    return buf.getvalue()


def to_json(rows: list[dict[str, Any]], priced: dict[str, Any] | None) -> Any:
    if priced is None:
        return rows
    return {
        "currency": priced["currency"],
        "rows": rows,
        "totals": priced["totals"],
        "total": priced["total"],
    }


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file in the same directory, fsync, then rename."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise BadInput(f"{parent}: no such directory")
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name[:40]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise EvidenceError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def dumps(doc: Any) -> str:
    def default(value: Any) -> Any:
        if isinstance(value, Decimal):
            return str(value)
        raise TypeError(type(value).__name__)

    return json.dumps(doc, default=default, ensure_ascii=False, indent=1) + "\n"
