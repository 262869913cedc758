"""The crawl frontier in the database (`crawl_urls`), so a killed run resumes losing nothing.

Scrapy's JOBDIR writes its queue when the spider closes, so a kill -9 loses it. Here every page
is a row: inserted `queued` (with the page that found it, in one transaction), then `done` or
`failed` (with the reason) when it is finished, i.e. after its media were matched and recorded.
Re-running the same run id schedules the `queued` rows again and skips the finished ones; the
(run, url_key) unique key means nothing is ever inserted twice.

Every method runs on the crawl's single database thread (see `DbThread`), never on the reactor.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from evidence.models import CrawlUrl, Match, Run

T = TypeVar("T")
MAX_ERROR = 500


class DbThread:
    """One thread for all database work of a crawl: the reactor never blocks on the database,
    and SQLite sees a single writer per process."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rw-db")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def insert_ignore(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING on both backends."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    ins = postgresql.insert(CrawlUrl) if dialect == "postgresql" else sqlite.insert(CrawlUrl)
    session.execute(ins.values(list(rows)).on_conflict_do_nothing())


@dataclass
class Loaded:
    """A run's frontier as stored: what is finished and what is still to fetch."""

    finished: set[str] = field(default_factory=set)
    queued: list[tuple[str, str, int]] = field(default_factory=list)  # (url, key, depth)
    pages: int = 0


class Frontier:
    """Frontier updates are grouped: `queue_pages` and `finish_page` only append to a list that
    `flush` writes in one transaction (every half second, and at the end), in order, so a page's
    links are always stored no later than the page's own "done". A kill loses at most the last
    unflushed updates: those pages are simply fetched again on resume."""

    def __init__(self, factory: sessionmaker[Session], run_id: int) -> None:
        self.factory, self.run_id = factory, run_id
        self._ops: list[Callable[[Session], None]] = []
        self._lock = threading.Lock()

    def defer(self, op: Callable[[Session], None]) -> None:
        with self._lock:
            self._ops.append(op)

    def flush(self) -> int:
        """Write the queued updates in one transaction (on the database thread)."""
        with self._lock:
            ops, self._ops = self._ops, []
        if ops:
            with self.factory.begin() as session:
                for op in ops:
                    op(session)
        return len(ops)

    def load(self) -> Loaded:
        out = Loaded()
        with self.factory() as session:
            rows = session.execute(
                select(CrawlUrl.url, CrawlUrl.url_key, CrawlUrl.depth, CrawlUrl.state)
                .where(CrawlUrl.run_id == self.run_id, CrawlUrl.kind == "page")
                .order_by(CrawlUrl.id)
            ).all()
        for url, key, depth, state in rows:
            out.pages += 1
            if state == "queued":
                out.queued.append((url, key, depth))
            else:
                out.finished.add(key)
        return out

    def queue_pages(self, pages: Sequence[tuple[str, str, int]], parent: str | None) -> None:
        """Queue new pages (already de-duplicated and within the page cap by the caller)."""
        rows = [
            {
                "run_id": self.run_id,
                "url_key": key,
                "url": url,
                "kind": "page",
                "depth": depth,
                "state": "queued",
                "detail": {"parent": parent} if parent else {},
            }
            for url, key, depth in pages
        ]
        self.defer(lambda session: insert_ignore(session, rows))

    def finish_page(
        self,
        key: str,
        *,
        state: str,
        http_status: int | None,
        error: str | None,
        detail: dict[str, Any],
        url: str = "",
        depth: int = 0,
    ) -> None:
        """Mark a page done or failed (inserting it when it was never queued, e.g. a seed)."""
        self.defer(
            lambda session: self.finish_in(
                session,
                key,
                kind="page",
                state=state,
                http_status=http_status,
                error=error,
                detail=detail,
                url=url,
                depth=depth,
            )
        )

    def finish_in(
        self,
        session: Session,
        key: str,
        *,
        kind: str,
        state: str,
        http_status: int | None,
        error: str | None,
        detail: dict[str, Any],
        url: str,
        depth: int = 0,
    ) -> None:
        insert_ignore(
            session,
            [
                {
                    "run_id": self.run_id,
                    "url_key": key,
                    "url": url,
                    "kind": kind,
                    "depth": depth,
                    "state": "queued",
                    "detail": {},
                }
            ],
        )
        session.execute(
            update(CrawlUrl)
            .where(CrawlUrl.run_id == self.run_id, CrawlUrl.url_key == key)
            .values(
                state=state,
                http_status=http_status,
                error=error[:MAX_ERROR] if error else None,
                detail=detail,
                done_at=datetime.now(UTC),
            )
        )

    def abandon_queued(self, reason: str) -> int:
        """At a normal end, pages still queued were dropped by a filter (offsite redirect...)."""
        with self.factory.begin() as session:
            result = session.execute(
                update(CrawlUrl)
                .where(CrawlUrl.run_id == self.run_id, CrawlUrl.state == "queued")
                .values(state="failed", error=reason, done_at=datetime.now(UTC))
            )
            return int(getattr(result, "rowcount", 0) or 0)


def run_counts(session: Session, run_id: int) -> dict[str, int]:
    """Counts of a run from the database, so they survive a resume."""

    def count(*where: Any) -> int:
        return int(
            session.scalar(
                select(func.count()).select_from(CrawlUrl).where(CrawlUrl.run_id == run_id, *where)
            )
            or 0
        )

    matches = session.scalar(
        select(func.count()).select_from(Match).where(Match.last_run_id == run_id)
    )
    return {
        "pages": count(CrawlUrl.kind == "page", CrawlUrl.state == "done"),
        "media": count(CrawlUrl.kind == "media", CrawlUrl.state == "done"),
        "matches": int(matches or 0),
        "errors": count(CrawlUrl.state == "failed"),
    }


def store_counts(session: Session, run: Run) -> dict[str, int]:
    counts = run_counts(session, run.id)
    run.pages, run.media, run.matches, run.errors = (
        counts["pages"],
        counts["media"],
        counts["matches"],
        counts["errors"],
    )
    return counts
