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

import logging
from typing import Any, Self

from scrapy import Request
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
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.error import DNSLookupError

from crawler.netpolicy import Blocked, Network, check_url
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
