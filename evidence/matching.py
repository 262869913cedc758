"""The catalogue as a matcher: fingerprints loaded from the database once, then refreshed
incrementally from the catalogue version counter (no reload per query or per run)."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import fingerprints
from evidence.models import CatalogueVersion, Fingerprint, Work

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkRef:
    id: int
    ref: str
    kind: str
    rightsholder_id: int


class CatalogueIndex:
    """A `fingerprints.Matcher` over the works in the database, plus what a match must name."""

    def __init__(
        self, thresholds: dict[str, float] | None = None, landmark_max_works: int | None = None
    ) -> None:
        self.matcher = fingerprints.Matcher(thresholds or None, landmark_max_works)
        self.works: dict[int, WorkRef] = {}
        self.version = 0

    def __len__(self) -> int:
        return len(self.works)

    def refresh(self, session: Session) -> int:
        """Apply catalogue changes since the last refresh; returns how many works changed."""
        head = session.scalar(select(func.max(CatalogueVersion.id))) or 0
        if head == self.version:
            return 0
        changed = set(
            session.scalars(
                select(CatalogueVersion.work_id).where(CatalogueVersion.id > self.version)
            )
        )
        self._load(session, changed)
        self.version = head
        return len(changed)

    def _load(self, session: Session, work_ids: set[int]) -> None:
        for wid in work_ids:
            if wid in self.works:
                self.matcher.remove(wid)
                del self.works[wid]
        rows = session.execute(
            select(Work.id, Work.ref, Work.kind, Work.rightsholder_id).where(Work.id.in_(work_ids))
        ).all()
        values: dict[int, dict[str, tuple[int, str]]] = defaultdict(dict)
        for fp in session.execute(
            select(
                Fingerprint.work_id, Fingerprint.type, Fingerprint.version, Fingerprint.value
            ).where(Fingerprint.work_id.in_(work_ids))
        ):
            values[fp.work_id][fp.type] = (fp.version, fp.value)
        for row in rows:
            kind = fingerprints.MediaKind(row.kind)
            self.matcher.add(row.id, kind, values.get(row.id, {}))
            self.works[row.id] = WorkRef(row.id, row.ref, row.kind, row.rightsholder_id)

    def search(self, prints: fingerprints.Prints) -> list[tuple[WorkRef, fingerprints.Hit]]:
        return [
            (self.works[h.work_id], h)
            for h in self.matcher.search(prints)
            if h.work_id in self.works
        ]


def hit_json(work: WorkRef, hit: fingerprints.Hit) -> dict[str, Any]:
    return {
        "work_id": work.id,
        "ref": work.ref,
        "kind": work.kind,
        "score": round(float(hit.score), 4),
        "offset_s": None if hit.offset_s is None else round(float(hit.offset_s), 2),
        "region": list(hit.region) if hit.region else None,
        "method": hit.method,
    }
