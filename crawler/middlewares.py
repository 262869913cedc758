"""Downloader and spider middlewares that keep a crawl inside the network policy and out of traps.

* `NetPolicyMiddleware` (downloader, order 10, before robots.txt): every request — seeds,
  links, sub-resources, each redirect and meta-refresh hop, robots.txt — must be http(s) with
  a host the policy allows; IP literals in any spelling are judged here, names by
  `crawler.resolver.PolicyResolver` at connect time.
* `NetPolicyErrorMiddleware` (downloader, order 990): a name the resolver refused reaches
  Scrapy as a DNS failure; this turns it into the same refusal, before RetryMiddleware.
* Proxies are switched off per request (`meta["proxy"] = None`) so `HTTP_PROXY` and
  `HTTPS_PROXY` cannot route around the check.
* `TrapMiddleware` (spider): drops links that only traps produce (`crawler.urls.trap_reason`).

A refusal raises `IgnoreRequest(reason)` and leaves the one-line reason in
`request.meta["rightswatch_error"]` (with the chain in `meta["redirect_urls"]` when it was a
redirect hop) for the runner to record as the URL's error; stats: `netpolicy/refused`,
`trap/rejected`.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from time import monotonic
from typing import Any, Self
from urllib.parse import urljoin, urlsplit

from scrapy import Request
from scrapy.core.downloader import Downloader, Slot
from scrapy.crawler import Crawler
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.http import Response
from scrapy.spidermiddlewares.base import BaseSpiderMiddleware
from scrapy.utils.asyncio import call_later
from scrapy.utils.defer import _schedule_coro
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred
from twisted.internet.error import DNSLookupError

from crawler.netpolicy import Blocked, Network, check_host, check_url
from crawler.resolver import REFUSALS, allowed_networks
from crawler.urls import trap_reason

logger = logging.getLogger(__name__)

ERROR_META = "rightswatch_error"
DRAINED = "rightswatch_drained"
DNS_ERRORS = (DNSLookupError, CannotResolveHostError)


# Download handlers known to connect through the reactor's resolver (scrapy-playwright
# falls back to HTTP11 for non-browser requests; its browser goes through crawler.egress).
RESOLVER_HANDLERS = frozenset(
    {
        "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler",
        "scrapy.core.downloader.handlers.http.HTTPDownloadHandler",
        "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler",
    }
)


def policy_gap(settings: Any) -> str | None:
    """Why these settings would let host names past the policy resolver, or None."""
    handlers = {
        **settings.getdict("DOWNLOAD_HANDLERS_BASE"),
        **settings.getdict("DOWNLOAD_HANDLERS"),
    }
    for scheme in ("http", "https"):
        handler = handlers.get(scheme)
        path = handler if isinstance(handler, str) else getattr(handler, "__module__", "")
        if handler is not None and isinstance(handler, str) and path not in RESOLVER_HANDLERS:
            return f"DOWNLOAD_HANDLERS[{scheme!r}] = {path} resolves names itself"
    from twisted.internet import reactor

    from crawler.resolver import PolicyResolver

    if not isinstance(getattr(reactor, "nameResolver", None), PolicyResolver):
        return "crawler.resolver.PolicyResolver is not installed (TWISTED_DNS_RESOLVER)"
    return None


class NetPolicyMiddleware:
    """Refuse requests the network policy does not allow, before any packet is sent.

    Fails closed: if the policy resolver is not the reactor's (a CrawlerRunner, another
    TWISTED_DNS_RESOLVER) or a download handler resolves names itself, every request is
    refused with that reason. `NETPOLICY_REQUIRE_RESOLVER = False` is for unit tests only.
    """

    def __init__(self, crawler: Crawler, allowed: tuple[Network, ...]) -> None:
        self.crawler, self.allowed = crawler, allowed
        self._verified = not crawler.settings.getbool("NETPOLICY_REQUIRE_RESOLVER", True)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler, allowed_networks(crawler.settings.getlist("NETPOLICY_ALLOW")))

    def _refuse(self, request: Request, reason: str) -> IgnoreRequest:
        request.meta[ERROR_META] = reason
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value("netpolicy/refused")
        logger.info("network policy: %(reason)s", {"reason": reason, "url": request.url})
        return IgnoreRequest(reason)

    def process_request(self, request: Request) -> None:
        request.meta["proxy"] = None
        if not self._verified:
            gap = policy_gap(self.crawler.settings)
            if gap is not None:
                logger.error("network policy misconfigured: %(gap)s", {"gap": gap})
                raise self._refuse(request, f"refused {request.url[:200]}: {gap}")
            self._verified = True
        try:
            check_url(request.url, self.allowed)
        except Blocked as exc:
            raise self._refuse(request, str(exc)) from None
        if "download_slot" not in request.meta:
            # One politeness slot per canonical host (C11): `EXAMPLE.org.`, `example.org`
            # and `xn--…` spellings share the per-host concurrency cap and delay.
            request.meta["download_slot"] = canonical_host(request.url)


class NetPolicyErrorMiddleware(NetPolicyMiddleware):
    """Turn a resolver refusal (a DNS failure to Scrapy) into the policy's IgnoreRequest.

    Ordered next to the downloader (990) so it sees the failure before RetryMiddleware,
    which would otherwise retry a refused name as if DNS had hiccupped. It also ends a
    failed robots.txt fetch (timeout, too large, malformed) as IgnoreRequest with the
    reason: Scrapy's policy is the same (allow all), but its RobotsTxtMiddleware logs any
    other exception with a traceback.
    """

    def process_request(self, request: Request) -> None:
        return None

    def process_exception(self, request: Request, exception: Exception) -> None:
        if isinstance(exception, DNS_ERRORS):
            reason = REFUSALS.get(urlparse_cached(request).hostname or "")
            if reason is not None:
                raise self._refuse(request, reason) from None
        if request.meta.get("dont_obey_robotstxt") and request.url.endswith("/robots.txt"):
            if isinstance(exception, IgnoreRequest):
                return
            reason = f"robots.txt not read ({failure_reason(exception)}): allowing all"
            request.meta[ERROR_META] = reason
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value("netpolicy/robots_error")
            logger.info("%(reason)s", {"reason": reason, "url": request.url})
            raise IgnoreRequest(reason) from None


class HostTokens:
    """Cross-process tokens for one machine: `per_host` lock files per canonical host in
    `directory` (`<sha256(host)[:16]>.<i>`), each held with `flock(LOCK_EX | LOCK_NB)` by
    the process whose download it covers. The OS drops a dead process's locks, so a
    SIGKILLed crawl never leaks a token. A file is open only while its token is held."""

    def __init__(self, directory: Path, per_host: int) -> None:
        self.directory, self.per_host = directory, max(1, per_host)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def acquire(self, host: str) -> int | None:
        """A held token (an open fd) for `host`, or None when all are taken."""
        digest = hashlib.sha256(host.encode("utf-8", "replace")).hexdigest()[:16]
        for i in random.sample(range(self.per_host), self.per_host):
            fd = os.open(self.directory / f"{digest}.{i}", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return fd
        return None

    @staticmethod
    def release(fd: int) -> None:
        os.close(fd)  # closing the only descriptor of the open file drops its flock


TOKEN_RETRY_S = (0.1, 0.25)


class CappedDownloader(Downloader):
    """Scrapy's downloader with the per-host cap made to hold (C11).

    Scrapy 2.19 marks a request as transferring only when its download task starts, after
    `_process_queue` has already compared the slot's transferring count with its cap: a
    burst of queued requests (say, released together once robots.txt is read) all leave
    the queue at once, and a server saw 16 at a time against a cap of 8. Here a request
    counts as transferring from the moment it leaves the queue (`_download` adds it again,
    a set, and removes it when it ends).

    With `HOSTSLOTS_DIR` set (the runner sets `$RIGHTSWATCH_HOME/hostslots`), the cap also
    holds across every crawl process on the machine sharing that home: a request leaves
    the queue only holding a `HostTokens` token for its slot's host (one of
    `CONCURRENT_REQUESTS_PER_DOMAIN`), released when its download ends (success, failure
    or cancel). No token free: the slot retries in 0.1-0.25 s, the reactor never waits."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        where = self.settings.get("HOSTSLOTS_DIR")
        self.tokens: HostTokens | None = None
        if where:
            try:
                self.tokens = HostTokens(Path(where), self.domain_concurrency)
            except OSError as exc:
                self._machine_cap_off(exc)
        self._token_waits: set[int] = set()  # id() of slots whose latercall awaits a token
        self._not_before: dict[int, float] = {}  # id() of a slot -> monotonic time it may send

    def hold(self, slot: Slot, seconds: float) -> None:
        """No request leaves `slot` for `seconds` (Retry-After). Unlike `slot.delay`, this
        is neither randomised (0.5-1.5x) nor lowered by AutoThrottle meanwhile."""
        until = monotonic() + seconds
        self._not_before[id(slot)] = max(self._not_before.get(id(slot), 0.0), until)

    def _process_queue(self, slot: Slot) -> None:
        if slot.latercall:
            return
        self._token_waits.discard(id(slot))
        now = monotonic()
        held = self._not_before.get(id(slot), 0.0) - now
        if held > 0:
            slot.latercall = call_later(held, self._latercall, slot)
            return
        self._not_before.pop(id(slot), None)
        delay = slot.download_delay()
        if delay:
            penalty = delay - now + slot.lastseen
            if penalty > 0:
                slot.latercall = call_later(penalty, self._latercall, slot)
                return
        while slot.queue and slot.free_transfer_slots() > 0:
            request, queue_dfd = slot.queue[0]
            host = request.meta.get("download_slot") or canonical_host(request.url)
            token = None
            if self.tokens is not None:
                try:
                    token = self.tokens.acquire(host)
                except OSError as exc:  # out of descriptors, directory gone: keep crawling
                    self._machine_cap_off(exc)
                    continue
                if token is None:
                    self._token_waits.add(id(slot))
                    wait = random.uniform(*TOKEN_RETRY_S)  # noqa: S311 - jitter, not a secret
                    slot.latercall = call_later(wait, self._latercall, slot)
                    return
            slot.queue.popleft()
            slot.lastseen = now
            slot.transferring.add(request)  # counted now, not when the task starts
            _schedule_coro(self._download_holding(slot, request, queue_dfd, token))
            if delay:
                self._process_queue(slot)
                break

    def _machine_cap_off(self, exc: OSError) -> None:
        """The token directory failed: the cap then holds per process, as without one."""
        logger.warning("per-host cap is per process from now on: host tokens failed: %s", exc)
        self.tokens = None

    async def _download_holding(
        self,
        slot: Slot,
        request: Request,
        queue_dfd: Deferred[Response],
        token: int | None,
    ) -> None:
        try:
            await self._wait_for_download(slot, request, queue_dfd)
        finally:
            if token is not None:
                HostTokens.release(token)
                # `_download` already looked at the queue while this token was held; a
                # wait it scheduled for a token is cut short now that one is free.
                if id(slot) in self._token_waits and slot.latercall is not None:
                    slot.latercall.cancel()
                    slot.latercall = None
                    self._process_queue(slot)


class RetryAfterMiddleware:
    """429/503 with `Retry-After` (seconds or an HTTP date): the host's slot sends nothing
    for that long (`CappedDownloader.hold`; capped at `RETRY_AFTER_MAX_S`, 60 s: more than
    the cap and the URL fails as "HTTP 429" without a retry). RetryMiddleware (550, after
    this one on the way back) then retries as usual, within RETRY_TIMES. Each wait is kept
    in `request.meta["rw_retry_after"]` (recorded with the URL) and counted in
    `retry_after/honoured`."""

    def __init__(self, crawler: Crawler, cap_s: float) -> None:
        self.crawler, self.cap_s = crawler, cap_s

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler, crawler.settings.getfloat("RETRY_AFTER_MAX_S", 60.0))

    def process_response(self, request: Request, response: Response) -> Response:
        if response.status not in (429, 503):
            return response
        wait = retry_after_s(response.headers.get(b"Retry-After"))
        if wait is None:
            return response
        assert self.crawler.stats is not None
        waits = [*request.meta.get("rw_retry_after", []), round(wait, 3)]
        request.meta["rw_retry_after"] = waits
        if wait > self.cap_s:
            self.crawler.stats.inc_value("retry_after/over_cap")
            request.meta["dont_retry"] = True
            return response
        downloader = getattr(self.crawler.engine, "downloader", None)
        key = request.meta.get("download_slot")
        slot = downloader.slots.get(key) if downloader is not None and key else None
        if isinstance(downloader, CappedDownloader) and slot is not None:
            downloader.hold(slot, wait)
        elif slot is not None:  # Scrapy's own downloader: a delay, randomised around `wait`
            slot.delay = max(slot.delay, wait)
        self.crawler.stats.inc_value("retry_after/honoured")
        logger.info(
            "HTTP %(status)s with Retry-After: %(wait).1f s before the next request to %(host)s",
            {"status": response.status, "wait": wait, "host": key},
        )
        return response


def retry_after_s(value: bytes | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    text = value.decode("latin-1").strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def canonical_host(url: str) -> str:
    """The host a politeness slot is keyed on: lower case, IDNA, no trailing dot."""
    host = urlsplit(url).hostname or ""
    try:
        return check_host(host, ())
    except Blocked:
        return host.rstrip(".").lower()


class OffsiteRedirectMiddleware:
    """A redirect out of the spider's allowed domains is not followed (C11): the 3xx fails
    the URL with "offsite redirect not followed: to HOST" (its chain in
    `meta["redirect_urls"]`), before RedirectMiddleware (600) would build the hop that
    Scrapy's OffsiteMiddleware then drops without a word. Hosts compare canonical (lower
    case, IDNA, no trailing dot). Requests with `allow_offsite` (media) may leave."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Response:
        location = response.headers.get(b"Location")
        domains = getattr(self.crawler.spider, "allowed_domains", None)
        if (
            not location
            or response.status not in (301, 302, 303, 307, 308)
            or not domains
            or request.dont_filter
            or request.meta.get("allow_offsite")
        ):
            return response
        target = urljoin(request.url, location.decode("latin-1").strip())
        host = canonical_host(target)
        if any(host == d or host.endswith("." + d) for d in domains):
            return response
        request.meta["redirect_urls"] = [*request.meta.get("redirect_urls", []), target]
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value("offsite/redirect_refused")
        raise IgnoreRequest(f"offsite redirect not followed: to {host} ({target[:200]})")


class DrainMiddleware:
    """While the spider drains after a first SIGTERM/SIGINT, page requests are not sent
    (`IgnoreRequest`, `meta[DRAINED]`: the errback leaves them queued for the re-run); media
    requests of pages already fetched go on, so those pages finish."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        spider = self.crawler.spider
        if getattr(spider, "draining", False) and "rw_key" in request.meta:
            request.meta[DRAINED] = True
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value("rightswatch/drained")
            raise IgnoreRequest("stopping: page left queued for the re-run")


class TrapMiddleware(BaseSpiderMiddleware):
    """Drop links whose URL only a crawl trap would produce; count them."""

    def get_processed_request(self, request: Request, response: Response | None) -> Request | None:
        reason = trap_reason(request.url)
        if reason is None:
            return request
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value("trap/rejected")
        logger.info("trap: %(reason)s", {"reason": reason, "url": request.url[:200]})
        return None


def refusal(request: Any) -> str | None:
    """The policy or trap reason recorded on a request, for the runner's errback."""
    meta = getattr(request, "meta", None) or {}
    value = meta.get(ERROR_META)
    return value if isinstance(value, str) else None


def _innermost(exc: BaseException) -> BaseException:
    """The root error inside Scrapy's and Twisted's wrappers (ResponseFailed.reasons, causes)."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        reasons = getattr(exc, "reasons", None)
        if reasons:
            inner = getattr(reasons[0], "value", reasons[0])
            if isinstance(inner, BaseException):
                exc = inner
                continue
        if exc.__cause__ is None:
            break
        exc = exc.__cause__
    return exc


def failure_reason(exc: BaseException, request: Any = None) -> str:
    """One line naming why a URL failed: the policy or trap reason, else the error's class.

    For the runner's errback: "refused …", "timeout: …", "too large: …", "redirect limit",
    "data loss: …", "HTTP 404", "DNS: …", "connection: …", "malformed response: …".
    """
    recorded = refusal(request)
    if recorded is not None:
        return recorded
    msg = " ".join(str(exc).split())[:300]
    name = type(exc).__name__
    if isinstance(exc, DownloadTimeoutError | TimeoutError):
        return f"timeout: {msg or name}"
    if isinstance(exc, DownloadCancelledError) or "DOWNLOAD_MAXSIZE" in msg:
        return f"too large: {msg or 'transfer cancelled at the size cap'}"
    if "max redirections" in msg:
        return "redirect limit: max redirections reached"
    if isinstance(exc, ResponseDataLossError) or "DataLoss" in msg:
        return f"data loss: {msg or 'body shorter than declared'}"
    response = getattr(exc, "response", None)
    if response is not None and hasattr(response, "status"):
        return f"HTTP {response.status}"
    if isinstance(exc, DNS_ERRORS):
        return f"DNS: {msg or name}"
    if isinstance(exc, DownloadConnectionRefusedError | ConnectionError):
        return f"connection: {msg or name}"
    if isinstance(exc, DownloadFailedError | OSError | ValueError | EOFError):
        inner = _innermost(exc)
        detail = " ".join(str(inner).split())[:300]
        return f"malformed response: {type(inner).__name__}: {detail}".rstrip(": ")
    return f"{name}: {msg}" if msg else name
