"""The Scrapy settings that make a crawl safe; the runner merges them over crawler.settings.

Every cap, and what happens at it (HOSTILE.md rows in brackets):

- `NETPOLICY_ALLOW` = `RIGHTSWATCH_ALLOW_NETWORKS` (default: none). Loopback, private,
  link-local, CGNAT, multicast, reserved, documentation and benchmarking addresses are
  refused before any connect: `IgnoreRequest`, stat `netpolicy/refused` (S1-S5, S7).
- `TWISTED_DNS_RESOLVER` = `crawler.resolver.PolicyResolver`: every resolved answer is
  checked; one blocked answer refuses the name (S2, S4).
- `NETPOLICY_DNS_CACHE_S` = 60 s: a validated answer is reused (pinned) for 60 s, never an
  unchecked one (S4). `DNSCACHE_ENABLED` = False (Scrapy's unchecked cache). `DNS_TIMEOUT`
  = 10 s.
- `TWISTED_REACTOR_ENABLED` = True and http/https handled by Scrapy's HTTP/1.1 handler (or
  scrapy-playwright, which falls back to it): other handlers resolve names themselves, so
  `NetPolicyMiddleware` refuses every request if it finds one, or finds the policy resolver
  not installed (fail closed; stat `netpolicy/refused`, error logged once per request).
- `HTTPPROXY_ENABLED` = False, `HttpProxyMiddleware` off, `meta["proxy"] = None` on every
  request: `HTTP_PROXY`/`HTTPS_PROXY` are ignored (S7).
- `DOWNLOAD_HANDLERS` ftp, s3, file, data = disabled: only http/https are fetched (S5).
- `DOWNLOAD_MAXSIZE` = 10 MiB per page (media requests set `meta["download_maxsize"]` to
  `RIGHTSWATCH_MAX_MEDIA_BYTES`, 50 MiB): the transfer is cancelled when the declared
  Content-Length or the bytes received pass it, and decompression stops at it (C3-C5).
  `DOWNLOAD_WARNSIZE` = 0 (off).
- `DOWNLOAD_TIMEOUT` = 30 s for the whole request: "timeout" (C6).
- `REDIRECT_MAX_TIMES` = 10, shared by HTTP redirects and meta refresh: "max redirections
  reached" (C1). `METAREFRESH_MAXDELAY` = 10 s: slower refreshes are not followed.
- `URLLENGTH_LIMIT` = `crawler.urls.MAX_URL_LENGTH` = 2,048 characters; more than 32 path
  segments, a segment more than twice, more than 32 query parameters: the link is dropped,
  stat `trap/rejected` (C2, C3).
- `ROBOTSTXT_OBEY` = True (per watch `--ignore-robots`) (C9).
- `CONCURRENT_REQUESTS_PER_DOMAIN` = 8 whatever the project asks for (merged last),
  one slot per canonical host (`meta["download_slot"]`: lower case, IDNA, no trailing dot),
  `DOWNLOADER` = `crawler.middlewares.CappedDownloader` (Scrapy's let bursts past the cap),
  AutoThrottle on (start 0 s, target 8, max delay 10 s) (C11). The cap is per crawl
  process: two processes crawling one host at once each keep to it (README). 429/503 with
  `Retry-After` delay the host's next request by that much (`RETRY_AFTER_MAX_S` = 60 s;
  more: no retry), stat `retry_after/honoured`. `RETRY_TIMES` = 2; policy refusals are
  never retried.
- `REMOTE_CONTROL_ENABLED` = `TELNETCONSOLE_ENABLED` = False: Scrapy 2.19 otherwise opens a
  loopback listener that runs posted Python code; a crawler of hostile pages has none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PAGE_MAXSIZE = 10 * 1024 * 1024

SAFETY_SETTINGS: dict[str, Any] = {
    # The network policy: a resolver for names, a middleware for URLs and IP literals.
    "TWISTED_DNS_RESOLVER": "crawler.resolver.PolicyResolver",
    # Scrapy's reactorless mode swaps in aiohttp, which resolves names itself.
    "TWISTED_REACTOR_ENABLED": True,
    "NETPOLICY_ALLOW": [],
    "NETPOLICY_DNS_CACHE_S": 60.0,
    "NETPOLICY_REQUIRE_RESOLVER": True,
    "DNSCACHE_ENABLED": False,
    "DNS_TIMEOUT": 10,
    "DOWNLOADER_MIDDLEWARES": {
        "crawler.middlewares.NetPolicyMiddleware": 10,
        "crawler.middlewares.NetPolicyErrorMiddleware": 990,
        # Back on the way out, before RetryMiddleware (550) decides to retry.
        "crawler.middlewares.RetryAfterMiddleware": 560,
        "scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware": None,
    },
    "SPIDER_MIDDLEWARES": {"crawler.middlewares.TrapMiddleware": 550},
    "HTTPPROXY_ENABLED": False,
    "DOWNLOAD_HANDLERS": {"ftp": None, "s3": None, "file": None, "data": None},
    # Scrapy 2.19 starts an HTTP server that runs posted Python code (token in a job file):
    # no listening sockets in a crawler that fetches hostile pages.
    "REMOTE_CONTROL_ENABLED": False,
    "TELNETCONSOLE_ENABLED": False,
    # Hostile servers: Scrapy's own caps (HttpCompressionMiddleware honours DOWNLOAD_MAXSIZE).
    "DOWNLOAD_MAXSIZE": PAGE_MAXSIZE,
    "DOWNLOAD_WARNSIZE": 0,
    "DOWNLOAD_TIMEOUT": 30,
    "REDIRECT_MAX_TIMES": 10,
    "METAREFRESH_ENABLED": True,
    "METAREFRESH_MAXDELAY": 10,
    "URLLENGTH_LIMIT": 2048,
    "RETRY_TIMES": 2,
    # Politeness.
    "ROBOTSTXT_OBEY": True,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
    "DOWNLOADER": "crawler.middlewares.CappedDownloader",  # the per-host cap holds in bursts
    "RETRY_AFTER_MAX_S": 60.0,
    "AUTOTHROTTLE_ENABLED": True,
    "AUTOTHROTTLE_START_DELAY": 0.0,
    "AUTOTHROTTLE_TARGET_CONCURRENCY": 8.0,
    "AUTOTHROTTLE_MAX_DELAY": 10.0,
}

# Dict-valued settings: merge these key by key into the project's, never replace them.
MERGED_KEYS = ("DOWNLOADER_MIDDLEWARES", "SPIDER_MIDDLEWARES", "DOWNLOAD_HANDLERS")


def safety_settings(allow: Sequence[str], *, user_agent: str | None = None) -> dict[str, Any]:
    """SAFETY_SETTINGS with the allowed networks (CIDR strings) and the user agent filled in."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in SAFETY_SETTINGS.items()}
    out["NETPOLICY_ALLOW"] = [str(a) for a in allow]
    if user_agent is None:
        from rightswatch.config import get_settings

        user_agent = get_settings().user_agent
    out["USER_AGENT"] = user_agent
    return out


def merge_into(base: dict[str, Any], allow: Sequence[str], **kwargs: Any) -> dict[str, Any]:
    """`base` with the safety settings on top; dict-valued settings merged key by key."""
    safe = safety_settings(allow, **kwargs)
    out = dict(base)
    for key, value in safe.items():
        if key in MERGED_KEYS:
            out[key] = {**dict(base.get(key) or {}), **value}
        else:
            out[key] = value
    return out
