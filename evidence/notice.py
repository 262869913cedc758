"""Takedown notices: the elements DMCA 512(c)(3) and the EU DSA Article 16 require, filled from
the match, the work, its captures and the sender in the settings. A draft to review and send,
in text and HTML (escaped: page URLs and titles come from the web)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy.orm import Session

from evidence.errors import NotFound
from evidence.models import Match
from evidence.pack import work_json
from rightswatch.config import Settings

ELEMENTS = {
    "dmca_512c3": ["signature", "work", "infringing_material_and_location", "contact",
                   "good_faith_statement", "accuracy_and_authority_statement"],
    "dsa_art16": ["explanation_of_illegality", "exact_location", "name_and_email",
                  "bona_fide_statement"],
}  # fmt: skip


def _env() -> Environment:
    # HTML templates are escaped; the plain-text notice is text (and never served as HTML).
    return Environment(
        loader=PackageLoader("evidence", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        keep_trailing_newline=True,
    )


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def draft_notice(
    session: Session, match_id: int, settings: Settings, scope: list[int] | None = None
) -> dict[str, Any]:
    match = session.get(Match, match_id)
    if match is None or (scope is not None and match.work.rightsholder_id not in scope):
        raise NotFound(f"no match {match_id}")
    context = {
        "date": datetime.now(UTC).date().isoformat(),
        "sender_name": settings.sender_name,
        "sender_contact": settings.sender_contact,
        "work": work_json(match.work),
        "page_url": match.page_url,
        "media_url": match.media_url,
        "first_seen": _iso(match.first_seen),
        "last_seen": _iso(match.last_seen),
        "score": match.score,
        "offset_s": match.offset_s,
        "evidence": [
            {"id": c.id, "at": _iso(c.started_at), "warc_sha256": c.warc_sha256}
            for c in sorted(match.captures, key=lambda c: (c.started_at, c.id))
        ],
    }
    return {
        "match_id": match.id,
        "to_domain": match.domain,
        "elements": ELEMENTS,
        "text": _env().get_template("notice.txt").render(**context),
        "html": _env().get_template("notice.html").render(**context),
    }
