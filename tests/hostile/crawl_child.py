"""Run one real Scrapy crawl with the safety settings and a minimal probe spider; report JSON.

Usage: python crawl_child.py CONFIG.json RESULT.json

Runs in its own process (a fresh reactor per crawl, like `rightswatch crawl`). CONFIG holds
`urls`, `settings` (merged over crawler.safety), `follow` (follow every href/src/url() found),
and `fake_dns` ({name: [[answers of lookup 1], [answers of lookup 2], ...]}; the last list
repeats): `socket.getaddrinfo` is replaced in this process for those names only, which is
how the tests fake DNS answers (S2, S4) without a DNS server.
"""

from __future__ import annotations

import json
import re
import resource
import socket
import sys
import threading
from collections import defaultdict
from typing import Any
from urllib.parse import urljoin

import scrapy
from scrapy import signals
from scrapy.crawler import CrawlerProcess
from scrapy.http import Request, Response, TextResponse
from twisted.python.failure import Failure

from crawler.middlewares import failure_reason, refusal
from crawler.safety import merge_into

LINK = re.compile(rb"""(?:href|src|content)\s*=\s*["']([^"']+)["']|url\(([^)]+)\)""", re.I)
SRCSET = re.compile(rb"""srcset\s*=\s*["']([^"']+)["']""", re.I)


def install_fake_dns(table: dict[str, list[list[str]]]) -> dict[str, int]:
    real = socket.getaddrinfo
    calls: dict[str, int] = defaultdict(int)
    lock = threading.Lock()

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in table:
            return real(host, port, *args, **kwargs)
        with lock:
            answers = table[name][min(calls[name], len(table[name]) - 1)]
            calls[name] += 1
        out = []
        for ip in answers:
            if ":" in ip:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port or 0, 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port or 0)))
        return out

    socket.getaddrinfo = getaddrinfo
    return calls


def links(response: Response) -> list[str]:
    out: list[str] = []
    for m in LINK.finditer(response.body):
        raw = (m.group(1) or m.group(2) or b"").strip(b"'\" ")
        out.append(raw.decode("utf-8", "replace"))
    for m in SRCSET.finditer(response.body):
        out += [
            c.strip().split(b" ")[0].decode("utf-8", "replace")
            for c in m.group(1).split(b",")
            if c.strip()
        ]
    return out


class ProbeSpider(scrapy.Spider):
    """Fetch the start URLs (optionally following every link) and record each outcome."""

    name = "probe"

    def __init__(
        self, urls: list[str], follow: bool, results: list[dict[str, Any]], render: bool
    ) -> None:
        super().__init__()
        self.urls, self.follow, self.results, self.render = urls, follow, results, render

    async def start(self) -> Any:
        meta = {"playwright": True} if self.render else {}
        for url in self.urls:
            yield Request(
                url, callback=self.parse, errback=self.failed, dont_filter=True, meta=meta
            )

    def parse(self, response: Response) -> Any:
        self.results.append(
            {
                "url": response.request.url if response.request else response.url,
                "ok": True,
                "status": response.status,
                "length": len(response.body),
                "flags": list(response.flags),
                "redirect_urls": response.meta.get("redirect_urls", []),
                "head": response.body[:200].decode("latin-1"),
            }
        )
        if not self.follow or not isinstance(response, TextResponse):
            return
        for link in links(response):
            url = urljoin(response.url, link)
            try:
                yield Request(url, callback=self.parse, errback=self.failed)
            except ValueError as exc:
                self.results.append({"url": url[:200], "ok": False, "error": f"bad URL: {exc}"})

    def failed(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        reason = refusal(request) or f"{type(failure.value).__name__}: {failure.getErrorMessage()}"
        self.results.append(
            {
                "url": request.url if request is not None else "?",
                "ok": False,
                "error": reason[:500],
                "kind": type(failure.value).__name__,
                "reason": failure_reason(failure.value, request),
                "redirect_urls": request.meta.get("redirect_urls", []) if request else [],
            }
        )


def main() -> None:
    with open(sys.argv[1]) as f:
        config = json.load(f)
    calls = install_fake_dns(config.get("fake_dns", {}))
    base = {
        "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "INFO",
        "DUPEFILTER_CLASS": "scrapy.dupefilters.BaseDupeFilter",
        "AUTOTHROTTLE_ENABLED": False,
        "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
    }
    base.update(config.get("project", {}))  # what a project or watch asks for: safety wins
    settings = merge_into(base, config.get("allow", []), user_agent="rightswatch-test/1")
    settings.update(config.get("settings", {}))
    render = bool(config.get("render_js"))
    if render:  # as crawler.runner does for --render-js
        from crawler.browser import launch_options
        from crawler.resolver import allowed_networks

        handler = "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"
        settings["DOWNLOAD_HANDLERS"] = {**settings["DOWNLOAD_HANDLERS"], "http": handler}
        settings["PLAYWRIGHT_LAUNCH_OPTIONS"] = launch_options(
            None, allowed=allowed_networks(config.get("allow", []))
        )
    results: list[dict[str, Any]] = []
    received: dict[str, int] = defaultdict(int)

    def on_bytes(data: bytes, request: Request, spider: Any) -> None:
        received[request.url] += len(data)

    process = CrawlerProcess(settings)
    crawler = process.create_crawler(ProbeSpider)
    crawler.signals.connect(on_bytes, signal=signals.bytes_received)
    process.crawl(
        crawler,
        urls=config["urls"],
        follow=config.get("follow", False),
        results=results,
        render=render,
    )
    process.start()
    stats = {k: v for k, v in (crawler.stats.get_stats() if crawler.stats else {}).items()}
    out = {
        "results": results,
        "received": dict(received),
        "stats": {k: v for k, v in stats.items() if isinstance(v, int | float | str)},
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "dns_calls": dict(calls),
        "egress_refused": [],
        "egress_forwarded": 0,
    }
    if render:
        from crawler.egress import _shared

        for proxy in _shared.values():
            out["egress_refused"] += list(proxy.refused)
            out["egress_forwarded"] += proxy.forwarded
    with open(sys.argv[2], "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
