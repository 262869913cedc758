"""Rows the service tests build directly: rightsholders, works and uses, without fingerprinting."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from evidence.catalogue import get_rightsholder
from evidence.models import Work


def make_work(session: Session, holder: str, ref: str, kind: str = "image") -> Work:
    owner = get_rightsholder(session, holder)
    work = Work(
        rightsholder_id=owner.id,
        ref=ref,
        kind=kind,
        title=f"title of {ref}",
        sha256="sha256:" + hashlib.sha256(f"{holder}/{ref}".encode()).hexdigest(),
        size=1,
        mime="image/png" if kind == "image" else "audio/flac",
    )
    session.add(work)
    session.flush()
    return work


T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
