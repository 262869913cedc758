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

from evidence.models import CrawlUrl, Match, MediaObject, MediaUrl, Run

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


def _insert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def insert_ignore(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING on both backends."""
    if not rows:
        return
    session.execute(_insert(session, CrawlUrl).values(list(rows)).on_conflict_do_nothing())


def upsert_many(
    session: Session,
    table: Any,
    rows: Sequence[dict[str, Any]],
    unique: Sequence[str],
    update_columns: Sequence[str] = (),
) -> None:
    """Many rows in one executemany: INSERT ... ON CONFLICT (unique) DO UPDATE SET the given
    columns (or DO NOTHING). The statement is the same whatever the row count, so it is
    compiled once per process; every row must carry the same keys and no key twice."""
    if not rows:
        return
    ins = _insert(session, table)
    if update_columns:
        stmt = ins.on_conflict_do_update(
            index_elements=list(unique), set_={c: ins.excluded[c] for c in update_columns}
        )
    else:
        stmt = ins.on_conflict_do_nothing(index_elements=list(unique))
    session.execute(stmt, list(rows))


CRAWL_URLS = CrawlUrl.__table__
MEDIA_OBJECTS = MediaObject.__table__
MEDIA_URLS = MediaUrl.__table__
FINISH_COLUMNS = ("state", "http_status", "error", "detail", "done_at")
MEDIA_URL_200 = ("etag", "last_modified", "sha256", "checked_at")
MEDIA_URL_304 = ("checked_at",)


@dataclass
class Loaded:
    """A run's frontier as stored: what is finished and what is still to fetch."""

    finished: set[str] = field(default_factory=set)
    queued: list[tuple[str, str, int]] = field(default_factory=list)  # (url, key, depth)
    pages: int = 0


class Frontier:
    """Frontier updates are grouped: `queue_pages`, `finish_page` and `media_rows` only append
    rows that `flush` writes in one transaction (every half second, and at the end) with one
    executemany per table, so a crawl costs a few statements per flush rather than a few per
    page. Within a flush, new pages are inserted before any row is finished, and the media rows
    with them: a page's links and media are always stored no later than the page's own "done".
    A kill loses at most the last unflushed updates: those pages are simply fetched again on
    resume."""

    def __init__(self, factory: sessionmaker[Session], run_id: int) -> None:
        self.factory, self.run_id = factory, run_id
        self._lock = threading.Lock()
        self._ops: list[Callable[[Session], None]] = []
        self._queued: list[dict[str, Any]] = []
        self._finished: dict[str, dict[str, Any]] = {}  # url_key -> row; the last one wins
        self._objects: dict[str, dict[str, Any]] = {}  # sha256 -> media_objects row
        self._urls: dict[str, dict[str, Any]] = {}  # url_key -> media_urls row (200)
        self._checked: dict[str, dict[str, Any]] = {}  # url_key -> media_urls row (304)

    def defer(self, op: Callable[[Session], None]) -> None:
        """Any other write, run in order after the grouped rows of the same flush."""
        with self._lock:
            self._ops.append(op)

    def pending(self) -> int:
        with self._lock:
            return (
                len(self._ops)
                + len(self._queued)
                + len(self._finished)
                + len(self._objects)
                + len(self._urls)
                + len(self._checked)
            )

    def flush(self) -> int:
        """Write the grouped updates in one transaction (on the database thread)."""
        with self._lock:
            ops, self._ops = self._ops, []
            queued, self._queued = self._queued, []
            finished, self._finished = self._finished, {}
            objects, self._objects = self._objects, {}
            urls, self._urls = self._urls, {}
            checked, self._checked = self._checked, {}
        count = len(ops) + len(queued) + len(finished) + len(objects) + len(urls) + len(checked)
        if not count:
            return 0
        with self.factory.begin() as session:
            upsert_many(session, CRAWL_URLS, queued, ("run_id", "url_key"))
            upsert_many(session, MEDIA_OBJECTS, list(objects.values()), ("sha256",))
            upsert_many(session, MEDIA_URLS, list(urls.values()), ("url_key",), MEDIA_URL_200)
            upsert_many(session, MEDIA_URLS, list(checked.values()), ("url_key",), MEDIA_URL_304)
            upsert_many(
                session, CRAWL_URLS, list(finished.values()), ("run_id", "url_key"), FINISH_COLUMNS
            )
            for op in ops:
                op(session)
        return count

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
            self._row(
                key,
                url,
                "page",
                depth,
                "queued",
                None,
                None,
                {"parent": parent} if parent else {},
                None,
            )
            for url, key, depth in pages
        ]
        with self._lock:
            self._queued.extend(rows)

    def _row(
        self,
        key: str,
        url: str,
        kind: str,
        depth: int,
        state: str,
        http_status: int | None,
        error: str | None,
        detail: dict[str, Any],
        done_at: datetime | None,
    ) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "url_key": key,
            "url": url,
            "kind": kind,
            "depth": depth,
            "state": state,
            "http_status": http_status,
            "error": error[:MAX_ERROR] if error else None,
            "detail": detail,
            "done_at": done_at,
        }

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
        kind: str = "page",
    ) -> None:
        """Mark a page (or media URL) done or failed, inserting it when it was never queued
        (e.g. a seed, a media file); `url`, `kind` and `depth` count for that insert only."""
        row = self._row(key, url, kind, depth, state, http_status, error, detail, datetime.now(UTC))
        with self._lock:
            self._finished.pop(key, None)  # keep the order of the updates
            self._finished[key] = row

    def media_rows(
        self,
        *,
        media_object: dict[str, Any] | None = None,
        media_url: dict[str, Any] | None = None,
        revalidated: bool = False,
    ) -> None:
        """A fetched file's `media_objects` row (kept when its bytes are known) and its URL's
        validators in `media_urls` (only `checked_at` moves when `revalidated`, a 304)."""
        with self._lock:
            if media_object is not None:
                self._objects.setdefault(media_object["sha256"], media_object)
            if media_url is not None:
                (self._checked if revalidated else self._urls)[media_url["url_key"]] = media_url

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
        """`finish_page` at once, inside the caller's transaction."""
        row = self._row(key, url, kind, depth, state, http_status, error, detail, datetime.now(UTC))
        upsert_many(session, CRAWL_URLS, [row], ("run_id", "url_key"), FINISH_COLUMNS)

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
