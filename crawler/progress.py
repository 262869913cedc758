"""Scrapy extensions: the progress line on stderr and the robots.txt record of a run.

Progress: every PROGRESS_INTERVAL_S seconds, one line (pages, media, matches, errors, rate),
from the crawl's stats, so `rightswatch crawl --json` keeps stdout for its one document.
RobotsLog: every robots.txt response (status, sha256, bytes) per host, stored with the run and
named in each capture's custody record.
"""

from __future__ import annotations

import hashlib
import sys
import time
from typing import Any, Self
from urllib.parse import urlsplit

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.http import Response
from twisted.internet import task


class Progress:
    def __init__(self, crawler: Crawler, interval: float) -> None:
        self.crawler, self.interval = crawler, interval
        self.started = time.monotonic()
        self.loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        ext = cls(crawler, crawler.settings.getfloat("PROGRESS_INTERVAL_S", 2.0))
        crawler.signals.connect(ext.opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.closed, signal=signals.spider_closed)
        return ext

    def line(self) -> str:
        stats = self.crawler.stats
        assert stats is not None
        get = stats.get_value
        pages = int(get("rightswatch/pages", 0))
        elapsed = max(time.monotonic() - self.started, 1e-6)
        run_id = getattr(self.crawler.spider, "run_id", "?")
        return (
            f"run {run_id}: pages {pages}, media {int(get('rightswatch/media', 0))}, "
            f"matches {int(get('rightswatch/matches', 0))}, "
            f"errors {int(get('rightswatch/errors', 0))}, {pages / elapsed:.1f} pages/s"
        )

    def report(self) -> None:
        print(self.line(), file=sys.stderr, flush=True)  # noqa: T201 - progress is stderr output

    def opened(self) -> None:
        self.started = time.monotonic()
        self.loop = task.LoopingCall(self.report)
        self.loop.start(self.interval, now=False)

    def closed(self) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        self.report()


class RobotsLog:
    """robots.txt as fetched per host: {"url", "status", "sha256", "size", "obeyed"}."""

    def __init__(self, obeyed: bool) -> None:
        self.obeyed = obeyed
        self.hosts: dict[str, dict[str, Any]] = {}
        self.bodies: dict[str, bytes] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        ext = cls(crawler.settings.getbool("ROBOTSTXT_OBEY"))
        crawler.signals.connect(ext.downloaded, signal=signals.response_downloaded)
        ctx = getattr(crawler.spider, "ctx", None)
        if ctx is not None:
            ctx.robots = ext
        return ext

    def downloaded(self, response: Response, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.path != "/robots.txt" or not request.meta.get("dont_obey_robotstxt"):
            return
        netloc = parts.netloc.lower()
        digest = "sha256:" + hashlib.sha256(response.body).hexdigest()
        self.hosts[netloc] = {
            "url": request.url,
            "status": response.status,
            "sha256": digest,
            "size": len(response.body),
            "obeyed": self.obeyed,
        }
        self.bodies[digest] = response.body

    def for_url(self, url: str) -> dict[str, Any]:
        parts = urlsplit(url)
        found = self.hosts.get(parts.netloc.lower())
        robots_url = f"{parts.scheme}://{parts.netloc}/robots.txt"
        if found is None:
            return {"obeyed": self.obeyed, "sha256": None, "url": robots_url}
        return {
            "obeyed": self.obeyed,
            "sha256": found["sha256"],
            "url": robots_url,
            "status": found["status"],
        }
