"""The one spider: crawl a watch's scope, hand every media file to the pipelines.

Pages are followed within the allowed domains (default: the seeds' hosts), the depth and page
caps and the include/exclude patterns, on canonical URLs (`crawler.urls`). A page's links are
queued in the database before they are requested; the page itself is marked done once each of
its media files went through the pipelines (matched and recorded), so a killed run resumed
with `crawl --run-id N` loses nothing and never fetches a finished page again.

Media URLs are fetched once per run whatever number of pages embed them; a media file found
again on another page is recorded for that page from what the first fetch found. A linked URL
that turns out to be an image or audio file (by its bytes) counts as media of the linking page.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import re
import signal
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.ossignal import install_shutdown_handlers
from sqlalchemy.exc import SQLAlchemyError
from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

import fingerprints
from crawler import urls
from crawler.exchange import exchange_from
from crawler.extract import extract_page
from crawler.frontier import DbThread, Frontier, Loaded
from crawler.items import MediaItem, PageRef, RunContext
from crawler.middlewares import DRAINED, refusal
from evidence.db import describe_db_error
from evidence.material import Exchange

log = logging.getLogger(__name__)

HTML_TYPES = (b"text/html", b"application/xhtml+xml")
RECENT_PAGES = 256
FLUSH_INTERVAL_S = 0.5


@dataclass
class MediaState:
    """One media URL within a run: in flight until `done`; pages waiting on it."""

    url: str
    pages: list[PageRef] = field(default_factory=list)
    done: bool = False
    item: MediaItem | None = None


@functools.lru_cache(maxsize=65_536)
def canonical(url: str) -> tuple[str, str]:
    """(canonical URL, url_key): pages repeat the same links and media, so cached."""
    canon = urls.canonicalize(url)
    return canon, hashlib.sha256(canon.encode("utf-8")).hexdigest()


def host_in(host: str, domains: Iterable[str]) -> bool:
    host = host.rstrip(".").lower()
    return any(host == d or host.endswith("." + d) for d in domains)


def describe_failure(failure: Failure) -> tuple[str, int | None]:
    """A one-line reason for a failed request and the HTTP status when there was one."""
    refused = refusal(getattr(failure, "request", None))
    if refused:
        return f"blocked by network policy: {refused}"[:500], None
    exc = failure.value
    if isinstance(exc, HttpError):
        status = exc.response.status
        return f"HTTP {status}", status
    name = type(exc).__name__
    text = " ".join(str(exc).split())[:300]
    low = text.lower()
    if isinstance(exc, IgnoreRequest):
        if "robots.txt" in low:
            return "forbidden by robots.txt", None
        if "offsite redirect" in low:  # a hop out of the allowed domains (C11)
            return text, None
        if "redirect" in low:
            return f"redirect limit: {text}", None
        return text or "request ignored", None
    if "timeout" in name.lower() or "timed out" in low:
        return f"timeout: {text or name}", None
    if name == "Blocked" or name == "BadUrl":
        return f"blocked by network policy: {text}", None
    if "DNSLookupError" in name and ("blocked" in low or "refused" in low):
        return f"blocked by network policy: {text}", None
    return f"{name}: {text}" if text else name, None


class WatchSpider(scrapy.Spider):
    name = "watch"

    def __init__(self, *args: Any, ctx: RunContext, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ctx = ctx
        self.run_id = ctx.run_id
        self.cfg = ctx.config
        self.factory = ctx.factory
        self.db: DbThread = ctx.db
        self.frontier = Frontier(ctx.factory, ctx.run_id)
        self.allowed_domains = list(self.cfg.allow_domains)
        self.include = [re.compile(p) for p in self.cfg.include]
        self.exclude = [re.compile(p) for p in self.cfg.exclude]
        self.max_media_bytes = ctx.max_media_bytes
        self.conditional = ctx.conditional
        self.media_per_page = 100
        self.media_per_run = 20_000
        self.media_states: dict[str, MediaState] = {}
        self.pages_open: dict[str, PageRef] = {}
        self.recent: OrderedDict[str, Exchange] = OrderedDict()
        self.known: set[str] = set()
        self.page_count = 0
        self.media_count = 0
        self.close_reason: str | None = None
        self.fatal: str | None = None
        self.retry_waits: dict[str, list[float]] = {}  # Retry-After waits per page key
        self.draining = False  # a first SIGTERM/SIGINT: no new pages (DrainMiddleware)
        self.stopped_now = False  # a second one: the reactor was stopped

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> WatchSpider:
        spider: WatchSpider = super().from_crawler(crawler, *args, **kwargs)
        spider.media_per_page = crawler.settings.getint("MEDIA_PER_PAGE", 100)
        spider.media_per_run = crawler.settings.getint("MEDIA_PER_RUN", 20_000)
        crawler.signals.connect(spider.opened, signal=signals.spider_opened)
        crawler.signals.connect(spider.closing, signal=signals.spider_closed)
        return spider

    def opened(self) -> None:
        self.flusher = task.LoopingCall(self._flush)
        self.flusher.start(FLUSH_INTERVAL_S, now=False)
        if threading.current_thread() is threading.main_thread():
            # After CrawlerProcess installed its own: ours drain instead of cancelling.
            install_shutdown_handlers(self._on_signal)

    # -- stopping on a signal ------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: Any) -> None:
        """First SIGTERM/SIGINT: drain (finish the pages in flight, start no new page, end as
        interrupted). Second: stop at once; every write is its own transaction, so what was
        committed is whole and a re-run redoes the rest. No logging here (see Scrapy's)."""
        from twisted.internet import reactor

        if not self.draining:
            self.draining = True
            reactor.callFromThread(self._log_drain, signum)
            return
        install_shutdown_handlers(signal.SIG_IGN)
        self.stopped_now = True
        reactor.callFromThread(self._stop_now, signum)

    def _log_drain(self, signum: int) -> None:
        log.warning(
            "%(sig)s: finishing the pages in flight, then stopping (again to stop at once)",
            {"sig": signal.Signals(signum).name},
        )

    def _stop_now(self, signum: int) -> None:
        from twisted.internet import reactor as installed

        log.warning("%(sig)s again: stopping at once", {"sig": signal.Signals(signum).name})
        reactor: Any = installed  # typed as the module, not the reactor installed in it
        with contextlib.suppress(RuntimeError):
            reactor.stop()

    def _flush(self) -> Deferred[int]:
        d = Deferred.fromFuture(asyncio.ensure_future(self.db.run(self.frontier.flush)))
        return d.addErrback(self._flush_failed)

    def _flush_failed(self, failure: Failure) -> int:
        return self.database_lost(failure.value or RuntimeError("frontier write failed"))

    def database_lost(self, exc: BaseException) -> int:
        """The database went away: stop the crawl and fail the run (it resumes later), rather
        than crawl on recording nothing. A LoopingCall whose call fails stops silently.

        The close is scheduled, never awaited: Scrapy's close waits for the requests and
        items in progress, and the caller may be one of them (a pipeline, an errback)."""
        reason = describe_db_error(exc) if isinstance(exc, SQLAlchemyError) else str(exc)
        if self.fatal is None:
            log.error("database write failed: %(reason)s", {"reason": reason})
            self.fatal = f"database unavailable: {reason}"
            self._closing = asyncio.ensure_future(
                self.crawler.engine.close_spider_async(reason="database unavailable")
            )
        return 0

    # -- scope -------------------------------------------------------------------------

    def out_of_scope(self, url: str) -> str | None:
        host = urlsplit(url).hostname or ""
        if not host_in(host, self.cfg.allow_domains):
            return "offsite"
        if self.include and not any(p.search(url) for p in self.include):
            return "not included"
        if any(p.search(url) for p in self.exclude):
            return "excluded"
        return urls.trap_reason(url)

    def page_request(self, url: str, key: str, depth: int, referer: str | None = None) -> Request:
        meta = {"rw_key": key, "rw_depth": depth, "rw_referer": referer}
        req = Request(url, callback=self.parse, errback=self.page_failed, meta=meta)
        if self.cfg.render_js:
            req.meta["playwright"] = True
        return req

    # -- start ---------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Request]:
        loaded: Loaded = await self.db.run(self.frontier.load)
        self.known = set(loaded.finished) | {k for _, k, _ in loaded.queued}
        self.page_count = loaded.pages
        for url, key, depth in loaded.queued:
            yield self.page_request(url, key, depth)

    # -- pages ---------------------------------------------------------------------------

    async def parse(self, response: Response) -> AsyncIterator[Any]:
        key, depth = response.meta["rw_key"], int(response.meta["rw_depth"])
        if response.meta.get("rw_retry_after"):
            self.retry_waits[key] = list(response.meta["rw_retry_after"])
        self.crawler.stats.inc_value("rightswatch/pages_fetched")
        final_host = urlsplit(response.url).hostname or ""
        if response.meta.get("redirect_urls") and not host_in(final_host, self.cfg.allow_domains):
            await self._finish_page(key, response, "failed", f"offsite redirect to {final_host}")
            return
        exchange = exchange_from(response)
        ctype = (response.headers.get(b"Content-Type") or b"").split(b";")[0].strip().lower()
        is_html = isinstance(response, TextResponse) and (
            ctype in HTML_TYPES or (not ctype and b"<" in response.body[:512])
        )
        if not is_html:
            async for out in self._linked_media(response, key, depth, exchange):
                yield out
            return
        page = extract_page(response.body, response.url, response.headers)
        new: list[tuple[str, str, int]] = []
        if depth < self.cfg.max_depth:
            for link in page.links:
                if self.page_count >= self.cfg.max_pages:
                    self.crawler.stats.inc_value("rightswatch/links_over_page_cap")
                    break
                try:
                    canon, lkey = canonical(link)
                except ValueError:
                    continue
                why = self.out_of_scope(canon)
                if why is not None:
                    self.crawler.stats.inc_value(f"rightswatch/links_{why.split()[0]}")
                    continue
                if lkey in self.known:
                    continue
                self.known.add(lkey)
                self.page_count += 1
                new.append((canon, lkey, depth + 1))
        if new:
            self.frontier.queue_pages(new, response.url)
        for url, lkey, ldepth in new:
            yield self.page_request(url, lkey, ldepth, referer=response.url)
        self._remember(response.url, exchange)
        ref = PageRef(url=response.url, key=key, depth=depth, exchange=exchange)
        for out in self._media_requests(ref, [(m.url, m.kind_hint, m.source) for m in page.media]):
            yield out
        ref.parsed = True
        if ref.pending == 0:
            await self._page_complete(ref)

    async def _linked_media(
        self, response: Response, key: str, depth: int, exchange: Exchange
    ) -> AsyncIterator[Any]:
        """A page URL that is really an image or audio file: media of the page linking to it."""
        sniffed = fingerprints.sniff(response.body)
        referer = response.meta.get("rw_referer")
        if sniffed is None or not referer:
            await self._finish_page(key, response, "done", None)
            return
        parent = self.recent.get(referer) or Exchange(url=referer)
        ref = PageRef(url=referer, key=key, depth=depth, exchange=parent)
        ref.pending = 1
        ref.parsed = True
        self.pages_open[key] = ref
        mkey = urls.url_key(response.url)
        state = self.media_states.setdefault(mkey, MediaState(url=response.url))
        state.pages.append(ref)
        self.media_count += 1
        yield MediaItem(url=response.url, key=mkey, exchange=exchange, source="content-type")

    def _media_requests(
        self, ref: PageRef, refs: list[tuple[str, str | None, str]]
    ) -> Iterable[Any]:
        for url, hint, source in refs[: self.media_per_page]:
            try:
                canon, mkey = canonical(url)
            except ValueError:
                continue
            if urls.trap_reason(canon):
                continue
            state = self.media_states.get(mkey)
            if state is None:
                if self.media_count >= self.media_per_run:
                    self.crawler.stats.inc_value("rightswatch/media_over_run_cap")
                    continue
                self.media_count += 1
                state = self.media_states[mkey] = MediaState(url=url)
                ref.pending += 1
                state.pages.append(ref)
                yield self._media_request(url, mkey, hint, source)
            elif not state.done:
                ref.pending += 1
                state.pages.append(ref)
            elif state.item is not None and state.item.hits:
                # Seen earlier in this run and matched: record the use on this page too.
                ref.pending += 1
                item = MediaItem(
                    url=state.item.url,
                    key=mkey,
                    exchange=None,
                    kind_hint=hint,
                    source=source,
                    sha256=state.item.sha256,
                    mime=state.item.mime,
                    kind=state.item.kind,
                    prints=state.item.prints,
                    hits=list(state.item.hits),
                    pages=[ref],
                )
                yield item
        if ref.pending:
            self.pages_open[ref.key] = ref

    def _media_request(self, url: str, mkey: str, hint: str | None, source: str) -> Request:
        headers: dict[str, str] = {}
        etag, modified = self.conditional.get(mkey, (None, None))
        if etag:
            headers["If-None-Match"] = etag
        if modified:
            headers["If-Modified-Since"] = modified
        meta = {
            "rw_media": mkey,
            "rw_hint": hint,
            "rw_source": source,
            "allow_offsite": True,
            "download_maxsize": self.max_media_bytes,
            "handle_httpstatus_list": [304],
        }
        return Request(
            url,
            callback=self.parse_media,
            errback=self.media_failed,
            meta=meta,
            headers=headers,
            priority=10,
            dont_filter=True,
        )

    def parse_media(self, response: Response) -> Iterable[MediaItem]:
        mkey = response.meta["rw_media"]
        state = self.media_states[mkey]
        item = MediaItem(
            url=state.url,
            key=mkey,
            exchange=exchange_from(response),
            kind_hint=response.meta.get("rw_hint"),
            source=response.meta.get("rw_source", ""),
        )
        if response.status == 304:
            item.unchanged = True
        yield item

    async def media_failed(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]
        mkey = request.meta["rw_media"]
        reason, status = describe_failure(failure)
        self.crawler.stats.inc_value("rightswatch/errors")
        state = self.media_states[mkey]
        try:
            await self.db.run(self._record_media_failure, mkey, state.url, reason, status)
        except SQLAlchemyError as exc:  # its pages stay unfinished: a re-run fetches them
            self.database_lost(exc)
            return
        await self.media_finished(mkey, None)

    def _record_media_failure(self, mkey: str, url: str, reason: str, status: int | None) -> None:
        with self.factory.begin() as session:
            self.frontier.finish_in(
                session,
                mkey,
                kind="media",
                state="failed",
                http_status=status,
                error=reason,
                detail={},
                url=url,
            )

    async def media_finished(self, mkey: str, item: MediaItem | None) -> None:
        """Called by the last pipeline (or the errback): release the pages waiting on it."""
        state = self.media_states.get(mkey)
        if state is None:
            return
        if item is not None and item.exchange is not None:
            state.done, state.item = True, item
            if not item.hits:
                item.exchange.body = b""  # only matched media is kept for later pages
        elif item is None:
            state.done = True
        pages = state.pages if item is None or item.exchange is not None else item.pages
        if item is None or item.exchange is not None:
            state.pages = []
        for ref in pages:
            ref.pending -= 1
            if ref.pending == 0 and ref.parsed:
                await self._page_complete(ref)

    async def _page_complete(self, ref: PageRef) -> None:
        self.pages_open.pop(ref.key, None)
        detail: dict[str, Any] = {"media_matches": ref.matches}
        waits = self.retry_waits.pop(ref.key, None)
        if waits:
            detail["retry_after_s"] = waits
        if ref.exchange.redirect_chain:
            detail["redirect_chain"] = ref.exchange.redirect_chain
        (
            self.frontier.finish_page(
                ref.key,
                state="done",
                http_status=ref.exchange.status or None,
                error=None,
                detail=detail,
                url=ref.exchange.url if ref.exchange.url else ref.url,
                depth=ref.depth,
            )
        )
        self.crawler.stats.inc_value("rightswatch/pages")

    async def _finish_page(
        self, key: str, response: Response, state: str, error: str | None
    ) -> None:
        detail: dict[str, Any] = {}
        if response.meta.get("redirect_urls"):
            detail["redirect_chain"] = [*response.meta["redirect_urls"], response.url]
        self.retry_waits.pop(key, None)
        if response.meta.get("rw_retry_after"):
            detail["retry_after_s"] = list(response.meta["rw_retry_after"])
        (
            self.frontier.finish_page(
                key,
                state=state,
                http_status=response.status,
                error=error,
                detail=detail,
                url=response.url,
            )
        )
        self.crawler.stats.inc_value(
            "rightswatch/pages" if state == "done" else "rightswatch/errors"
        )

    async def page_failed(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]
        if request.meta.get(DRAINED):
            return  # not fetched while draining: it stays queued for the re-run
        reason, status = describe_failure(failure)
        detail: dict[str, Any] = {}
        redirects = request.meta.get("redirect_urls")
        if redirects:
            detail["redirect_chain"] = [*redirects, request.url]
        if request.meta.get("rw_retry_after"):
            detail["retry_after_s"] = list(request.meta["rw_retry_after"])
        self.crawler.stats.inc_value("rightswatch/errors")
        key = request.meta["rw_key"]
        (
            self.frontier.finish_page(
                key,
                state="failed",
                http_status=status,
                error=reason,
                detail=detail,
                url=request.url,
                depth=int(request.meta.get("rw_depth", 0)),
            )
        )

    def _remember(self, url: str, exchange: Exchange) -> None:
        self.recent[url] = exchange
        while len(self.recent) > RECENT_PAGES:
            self.recent.popitem(last=False)

    async def closing(self, spider: scrapy.Spider, reason: str) -> None:
        # Drained to idle is not finished: the pages left queued are for the re-run.
        self.close_reason = "shutdown" if self.draining and reason == "finished" else reason
        flusher = getattr(self, "flusher", None)
        if flusher is not None and flusher.running:
            flusher.stop()
        try:
            await self.db.run(self.frontier.flush)
        except SQLAlchemyError as exc:
            self.database_lost(exc)
