"""Item pipelines: fingerprint a media file beside the reactor, match it, record the uses.

    FingerprintPipeline  sniff the bytes (never the extension), skip what this run or an earlier
                         one already saw unchanged, fingerprint in a process pool
    MatchPipeline        search the catalogue index (loaded once per run, refreshed per version)
    RecordPipeline       a matched file: one transaction with its media rows, every use
                         (record_use) and its evidence (record_capture) for each page that
                         embeds it; any other file: its rows go with the frontier's next
                         grouped write (crawler.frontier), before the pages it releases

Decoding untrusted media happens in child processes only (fingerprints.sandbox): a decoder
crash, a timeout or a memory blow-up costs one item (its reason recorded) and the crawl goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Self

from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

import fingerprints
from crawler.frontier import (
    MEDIA_OBJECTS,
    MEDIA_URL_200,
    MEDIA_URL_304,
    MEDIA_URLS,
    DbThread,
    Frontier,
    upsert_many,
)
from crawler.items import MediaItem, PageRef, RunContext
from crawler.signals import page_signals, record_signals
from evidence.db import describe_db_error
from evidence.errors import DatabaseUnavailable, EvidenceError
from evidence.matching import CatalogueIndex
from evidence.models import CatalogueVersion, Work
from evidence.rightsmeta import read_rights, rights_flags
from evidence.store import BlobStore
from fingerprints.sandbox import SandboxPool

log = logging.getLogger(__name__)


class FingerprintPool:
    """`fingerprints.sandbox.SandboxPool` (memory cap, wall-clock kill, a crashed worker
    replaced) driven from threads, so the reactor never waits for a decoder."""

    def __init__(self, workers: int) -> None:
        self.sandbox = SandboxPool(size=workers)
        self.threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rw-fp")
        # Start a worker now (its imports take seconds) while the crawl starts.
        self.threads.submit(self.sandbox.run, len, b"")

    async def fingerprint(self, data: bytes) -> tuple[fingerprints.Prints | None, str | None]:
        loop = asyncio.get_running_loop()
        try:
            prints = await loop.run_in_executor(self.threads, self.sandbox.fingerprint_query, data)
        except fingerprints.FingerprintError as exc:
            return None, str(exc) or "undecodable"
        except Exception as exc:
            return None, f"undecodable: {type(exc).__name__}"
        return prints, None

    def close(self) -> None:
        self.threads.shutdown(wait=True, cancel_futures=True)
        self.sandbox.close()


class FingerprintPipeline:
    """Sniff and fingerprint each downloaded media file once per run (by URL and by bytes)."""

    def __init__(self, crawler: Crawler, workers: int) -> None:
        self.crawler = crawler
        self.pool = FingerprintPool(workers)
        self.by_sha: dict[str, tuple[Any, str | None]] = _ctx(crawler).fingerprinted
        self.previous: dict[str, str] = _ctx(crawler).previous_sha

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.getbool("FINGERPRINT_ENABLED"):
            raise NotConfigured("FINGERPRINT_ENABLED is off")
        return cls(crawler, max(1, crawler.settings.getint("FINGERPRINT_WORKERS")))

    def close_spider(self) -> None:
        self.pool.close()

    async def process_item(self, item: MediaItem) -> MediaItem:
        stats = self.crawler.stats
        if item.exchange is None or item.prints is not None:  # remembered from this run
            return item
        if item.unchanged:
            item.skip_reason = "unchanged (304)"
            stats.inc_value("fingerprint/unchanged")
            return item
        ex = item.exchange
        if ex.status != 200:
            item.error = f"HTTP {ex.status}"
            return item
        body = ex.body
        sniffed = fingerprints.sniff(body)
        if sniffed is None:
            item.skip_reason = "not an image or audio file"
            stats.inc_value("fingerprint/not_media")
            return item
        item.kind, item.mime = sniffed.kind.value, sniffed.mime
        item.sha256 = "sha256:" + hashlib.sha256(body).hexdigest()
        if "dataloss" in ex.flags:
            item.error = "data loss: body shorter than announced"
            return item
        if self.previous.get(item.key) == item.sha256:
            item.skip_reason = "unchanged (same bytes)"
            stats.inc_value("fingerprint/unchanged")
            return item
        cached = self.by_sha.get(item.sha256)
        if cached is None:
            cached = await self.pool.fingerprint(body)
            self.by_sha[item.sha256] = cached
            stats.inc_value("fingerprint/computed")
        item.prints, reason = cached
        if item.prints is None and reason is None:
            stats.inc_value("fingerprint/known_unmatched")  # same bytes matched nothing before
        elif item.prints is None:
            item.error = reason or "undecodable"
            stats.inc_value("fingerprint/unfingerprintable")
        return item


class MatchPipeline:
    """Search the catalogue; the index is loaded once and refreshed when the catalogue moves."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.index: CatalogueIndex = _ctx(crawler).index
        self.fingerprinted = _ctx(crawler).fingerprinted
        # Searching (OpenCV releases the GIL) runs beside the reactor, never on it.
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rw-match")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def close_spider(self) -> None:
        self.thread.shutdown(wait=True)

    async def process_item(self, item: MediaItem) -> MediaItem:
        if item.prints is not None and not item.hits:
            loop = asyncio.get_running_loop()
            item.hits = await loop.run_in_executor(self.thread, self.index.search, item.prints)
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value("match/hit" if item.hits else "match/none")
            if not item.hits and item.sha256:
                # Only a matched file's prints are needed later (its evidence, later pages):
                # the same bytes seen again in this run are known to match nothing.
                self.fingerprinted[item.sha256] = (None, None)
                item.prints = None
            if item.hits and item.exchange is not None:
                # Only matched files: the notices a copy kept or lost (the file already decoded
                # safely in the sandbox; this reads metadata, never pixels or samples).
                item.rights = await loop.run_in_executor(
                    self.thread, read_rights, item.exchange.body
                )
        return item


class RecordPipeline:
    """Media rows, uses and their evidence (one transaction per matched item, grouped with the
    frontier otherwise); then release the pages."""

    def __init__(self, crawler: Crawler) -> None:
        ctx = _ctx(crawler)
        self.crawler = crawler
        self.ctx = ctx
        self.factory = ctx.factory
        self.db: DbThread = ctx.db
        self.store: BlobStore = ctx.store
        self.run_id: int = ctx.run_id
        self.context: dict[str, Any] = ctx.capture
        self.frontier = Frontier(self.factory, self.run_id)
        self.record_capture = _capture_function()
        self.shots = _screenshots(crawler)  # evidence: full-page screenshots of matched pages

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def close_spider(self) -> None:
        self.shots.close()

    async def process_item(self, item: MediaItem) -> MediaItem:
        spider: Any = self.crawler.spider
        states = getattr(spider, "media_states", {})
        state = states.get(item.key)
        fetched = item.exchange is not None
        frontier: Frontier | None = getattr(spider, "frontier", None)
        if fetched and not item.hits and frontier is not None:
            # Nothing to record per page: the media rows go with the frontier's next grouped
            # write, in the same transaction as (and never after) the "done" of its pages.
            finish, media_object, media_url, revalidated = _media_rows(item, datetime.now(UTC))
            frontier.finish_page(item.key, **finish)
            frontier.media_rows(
                media_object=media_object, media_url=media_url, revalidated=revalidated
            )
            self._count(item, 0)
            await spider.media_finished(item.key, item)
            return item
        recorded: set[int] = set()
        first = True
        try:
            while True:
                pages = item.pages if not fetched else list(state.pages if state else item.pages)
                todo = [p for p in pages if id(p) not in recorded]
                if not first and not todo:
                    break
                if item.hits and self.record_capture is not None:  # child process, time-bound
                    await self.shots.prepare(p.url for p in todo if p.exchange is not None)
                await self.db.run(self._record, item, todo, fetched and first)
                recorded.update(id(p) for p in todo)
                first = False
                if not fetched:
                    break
        except (EvidenceError, SQLAlchemyError, OSError) as exc:
            # Nothing of this item was committed: its pages stay unfinished, so a re-run of
            # the run records it again. A database that is gone ends the run as failed.
            reason = describe_db_error(exc) if isinstance(exc, SQLAlchemyError) else str(exc)
            log.warning("recording %(url)s failed: %(reason)s", {"url": item.url, "reason": reason})
            if isinstance(exc, OperationalError | DatabaseUnavailable):
                # Never awaited here: closing waits for this very item (a deadlock).
                spider.database_lost(exc)
            return item
        self._count(item, len(recorded))
        await spider.media_finished(item.key, item)
        return item

    def _count(self, item: MediaItem, pages: int) -> None:
        stats = self.crawler.stats
        assert stats is not None
        if item.exchange is not None and not item.skip_reason:
            stats.inc_value("rightswatch/errors" if item.error else "rightswatch/media")
        stats.inc_value("rightswatch/matches", len(item.hits) * pages)

    def _record(self, item: MediaItem, pages: list[PageRef], first: bool) -> None:
        now = datetime.now(UTC)
        with self.factory.begin() as session:
            if first:
                self._media_rows(session, item, now)
            for page in pages:
                for work, hit in item.hits:
                    self._use(session, item, page, work, hit, now)
                    page.matches += 1

    def _media_rows(self, session: Session, item: MediaItem, now: datetime) -> None:
        finish, media_object, media_url, revalidated = _media_rows(item, now)
        self.frontier.finish_in(session, item.key, **finish)
        if media_object is not None:
            upsert_many(session, MEDIA_OBJECTS, [media_object], ("sha256",))
        if media_url is not None:
            columns = MEDIA_URL_304 if revalidated else MEDIA_URL_200
            upsert_many(session, MEDIA_URLS, [media_url], ("url_key",), columns)

    def _use(
        self, session: Session, item: MediaItem, page: PageRef, work: Any, hit: Any, now: datetime
    ) -> None:
        from evidence.uses import record_use

        original = session.get(Work, work.id)
        flags = rights_flags(original.rights if original else {}, item.rights or {})
        match, _created = record_use(
            session,
            work_id=work.id,
            page_url=page.url,
            media_url=item.url,
            hit=hit,
            run_id=self.run_id,
            media_sha256=item.sha256,
            flags=flags,
            seen_at=now,
        )
        self._signals(session, item, page)
        if self.record_capture is None:
            return
        media = item.exchange or self._remembered(item)
        if media is None:
            return
        from evidence.material import CaptureMaterial

        shot = self.shots.get(page.url)
        material = CaptureMaterial(
            screenshot_png=shot.png,
            screenshot_meta=shot.meta,
            page=page.exchange,
            media=media,
            run_id=self.run_id,
            started_by=self.context.get("started_by", "cli"),
            user_agent=self.context.get("user_agent", ""),
            robots=self._robots_for(page.url),
            crawler_version=self.context.get("crawler_version", ""),
            config_sha256=self.context.get("config_sha256"),
            match={
                "work_id": work.id,
                "ref": work.ref,
                "score": float(hit.score),
                "offset_s": hit.offset_s,
                "region": list(hit.region) if hit.region else None,
                "method": hit.method,
                "algorithms": {
                    k: v[0] for k, v in (item.prints.values.items() if item.prints else [])
                },
            },
        )
        self.record_capture(session, self.store, match=match, material=material)

    def _signals(self, session: Session, item: MediaItem, page: PageRef) -> None:
        """What the page and the matched file signal about reuse, kept with the run (issue 8)."""
        if item.rights is not None:
            record_signals(
                session, run_id=self.run_id, url=item.url, scope="media", data=item.rights
            )
        ex = page.exchange
        if ex is not None and ex.body:
            headers = {k.lower(): v for k, v in ex.response_headers}
            data = page_signals(page.url, headers, ex.body)
            record_signals(session, run_id=self.run_id, url=page.url, scope="page", data=data)

    def _remembered(self, item: MediaItem) -> Any:
        spider = self.crawler.spider
        state = getattr(spider, "media_states", {}).get(item.key)
        return state.item.exchange if state is not None and state.item is not None else None

    def _robots_for(self, url: str) -> dict[str, Any]:
        robots = self.ctx.robots
        if robots is None:
            return {"obeyed": not self.context.get("ignore_robots"), "sha256": None, "url": ""}
        found: dict[str, Any] = robots.for_url(url)
        return found


def _text(value: str, limit: int) -> str | None:
    """A header value for a text column: no NUL (PostgreSQL refuses it), within its limit."""
    return value.replace("\x00", "")[:limit] or None


def _media_rows(
    item: MediaItem, now: datetime
) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None, bool]:
    """A fetched file's rows: its frontier finish (kwargs of `Frontier.finish_page`), its
    `media_objects` row when its bytes are media, its URL's `media_urls` row (validators) and
    whether that was a revalidation (304: only `checked_at` moves)."""
    ex = item.exchange
    assert ex is not None
    state = "failed" if item.error else "done" if item.kind or item.unchanged else "skipped"
    detail: dict[str, Any] = {"source": item.source}
    if item.skip_reason:
        detail["skipped"] = item.skip_reason
    if item.sha256:
        detail["sha256"] = item.sha256
    if ex.redirect_chain:
        detail["redirect_chain"] = ex.redirect_chain
    finish: dict[str, Any] = {
        "kind": "media",
        "state": state,
        "http_status": ex.status,
        "error": item.error,
        "detail": detail,
        "url": item.url,
    }
    media_object = None
    if item.sha256 and item.kind:
        media_object = {
            "sha256": item.sha256,
            "size": len(ex.body),
            "mime": item.mime,
            "kind": item.kind,
            "first_seen": now,
        }
    media_url = None
    if ex.status in (200, 304):
        headers = {k.lower(): v for k, v in ex.response_headers}
        media_url = {
            "url_key": item.key,
            "url": item.url,
            "etag": _text(headers.get("etag", ""), 500),
            "last_modified": _text(headers.get("last-modified", ""), 100),
            "sha256": item.sha256,
            "checked_at": now,
        }
    return finish, media_object, media_url, ex.status == 304


def _ctx(crawler: Crawler) -> RunContext:
    ctx: RunContext = crawler.spider.ctx  # type: ignore[union-attr]
    return ctx


def _screenshots(crawler: Crawler) -> Any:
    from crawler.browser import PageScreenshots
    from crawler.resolver import allowed_networks
    from rightswatch.config import get_settings

    allowed = allowed_networks(crawler.settings.getlist("NETPOLICY_ALLOW"))
    return PageScreenshots(mode=get_settings().screenshots, allowed=allowed)


def _capture_function() -> Any:
    try:
        from evidence.capture import record_capture
    except ImportError:  # the evidence room's recorder has not landed: uses only, no captures
        log.warning("evidence.capture is not available: matches are recorded without captures")
        return None
    return record_capture


def catalogue_changed_since(session: Session, when: datetime) -> bool:
    return bool(
        session.scalar(
            select(func.count()).select_from(CatalogueVersion).where(CatalogueVersion.at > when)
        )
    )
