"""Debian's Chromium, driven by Playwright, with all its traffic through the guarded proxy.

`launch_options(proxy_url)` is for scrapy-playwright's `PLAYWRIGHT_LAUNCH_OPTIONS` (the
runner starts a `crawler.egress.GuardedProxy` first); `screenshot()` is for evidence: it
starts its own proxy, renders one page and returns a full-page PNG with the metadata the
chain of custody needs (viewport, browser version, final URL, refused requests).

`PageScreenshots` is what a crawl uses: one screenshot per matched page and run, each taken by
a child process (`python -m crawler.browser URL`) from a worker thread, so the reactor never
waits, a hung browser is killed at a wall-clock bound, and a missing or failing browser only
means "no screenshot" (with the reason) for that capture.

No browser is downloaded: Playwright uses /usr/bin/chromium (`executable_path`).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crawler import netpolicy
from crawler.egress import GuardedProxy, shared_proxy
from crawler.netpolicy import Network

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 800}
MAX_SCREENSHOT_HEIGHT = 16_384  # pixels; taller pages are clipped and flagged "truncated"
SCREENSHOT_STEP_S = 30.0  # each browser step of an evidence screenshot (launch, load, capture)
SCREENSHOT_WALL_S = 90.0  # the whole child process; past this it is killed
MAX_SCREENSHOT_BYTES = 64 * 1024 * 1024

CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-features=DnsOverHttps,NetworkPrediction",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
)


class RenderError(Exception):
    """The page could not be rendered; the message says why in one line."""


def launch_options(
    proxy_url: str | None = None, *, allowed: Sequence[Network] | None = None
) -> dict[str, Any]:
    """Playwright `chromium.launch()` keywords: Debian's Chromium, every request via the proxy.

    With `proxy_url=None` this process's shared `GuardedProxy` is started (once) for
    `allowed` (default: `RIGHTSWATCH_ALLOW_NETWORKS`) and used: Chromium is never launched
    without the guard. `<-loopback>` removes Chromium's implicit bypass of localhost, so
    loopback goes through the proxy (and its policy) too.
    """
    if proxy_url is None:
        if allowed is None:
            from rightswatch.config import get_settings

            allowed = get_settings().allow_networks
        proxy_url = shared_proxy(allowed).url
    return {
        "executable_path": CHROMIUM,
        "headless": True,
        "args": [
            *CHROMIUM_ARGS,
            f"--proxy-server={proxy_url}",
            "--proxy-bypass-list=<-loopback>",
        ],
    }


def screenshot(
    url: str, *, allowed: Sequence[Network], timeout_s: float = 30.0, executable: str = CHROMIUM
) -> tuple[bytes, dict[str, Any]]:
    """Render `url` in Chromium behind a guarded proxy; return (full-page PNG, metadata).

    Raises netpolicy.Blocked for a refused URL and RenderError when rendering fails.
    Runs in a worker thread, so it may be called from inside a running event loop.
    """
    netpolicy.check_url(url, allowed)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="screenshot") as pool:
        return pool.submit(_render, url, tuple(allowed), timeout_s, executable).result()


def _render(
    url: str, allowed: tuple[Network, ...], timeout_s: float, executable: str = CHROMIUM
) -> tuple[bytes, dict[str, Any]]:
    from playwright.sync_api import sync_playwright

    with GuardedProxy(allowed) as proxy, sync_playwright() as pw:
        browser = _launch(pw, proxy, timeout_s, executable)
        try:
            return _shoot(browser, proxy, url, timeout_s)
        finally:
            browser.close()


def _launch(pw: Any, proxy: GuardedProxy, timeout_s: float, executable: str) -> Any:
    from playwright.sync_api import Error as PlaywrightError

    try:
        options = launch_options(proxy.url) | {"executable_path": executable}
        return pw.chromium.launch(**options, timeout=timeout_s * 1000)
    except PlaywrightError as exc:
        raise RenderError(f"chromium did not start: {_first_line(exc)}") from None


def _shoot(
    browser: Any, proxy: GuardedProxy, url: str, timeout_s: float
) -> tuple[bytes, dict[str, Any]]:
    """One page in a fresh browser context (no cookies or cache shared with other pages)."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import FloatRect, ViewportSize

    timeout_ms = timeout_s * 1000
    proxy.refused.clear()
    context = None
    try:
        context = browser.new_context(
            viewport=ViewportSize(width=VIEWPORT["width"], height=VIEWPORT["height"]),
            accept_downloads=False,
            service_workers="block",
        )
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        response = page.goto(url, wait_until="load", timeout=timeout_ms)
        height = int(page.evaluate("document.documentElement.scrollHeight") or 0)
        truncated = height > MAX_SCREENSHOT_HEIGHT
        clip = FloatRect(x=0, y=0, width=VIEWPORT["width"], height=MAX_SCREENSHOT_HEIGHT)
        png = page.screenshot(
            full_page=True, type="png", timeout=timeout_ms, clip=clip if truncated else None
        )
        meta: dict[str, Any] = {
            "url": url,
            "final_url": page.url,
            "status": response.status if response is not None else None,
            "title": page.title()[:500],
            "viewport": dict(VIEWPORT),
            "full_page": True,
            "page_height": height,
            "truncated": truncated,
            "browser": "chromium",
            "browser_version": browser.version,
            "user_agent": page.evaluate("navigator.userAgent"),
            "egress_refused": list(proxy.refused)[:100],
        }
        return png, meta
    except PlaywrightError as exc:
        raise RenderError(f"rendering {url[:200]} failed: {_first_line(exc)}") from None
    finally:
        if context is not None:
            with contextlib.suppress(PlaywrightError):
                context.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


@dataclass
class Shot:
    """A page's screenshot, or why there is none (`meta["reason"]`)."""

    png: bytes | None
    meta: dict[str, Any] = field(default_factory=dict)


def _none(reason: str) -> Shot:
    return Shot(None, {"taken": False, "reason": reason[:300]})


class PageScreenshots:
    """Full-page screenshots of the pages a crawl records evidence for, once per page URL.

    `mode` is RIGHTSWATCH_SCREENSHOTS: "auto" takes them when `chromium` exists, "off" never.
    One worker process (`python -m crawler.browser`, its own process group) keeps one browser
    for the whole crawl and renders one page at a time, each in a fresh browser context; a
    page that takes longer than `wall_s` gets the worker killed (browser and all) and the next
    page a new one.
    """

    def __init__(
        self,
        *,
        mode: str,
        allowed: Sequence[Network],
        chromium: str = CHROMIUM,
        step_s: float = SCREENSHOT_STEP_S,
        wall_s: float = SCREENSHOT_WALL_S,
    ) -> None:
        self.allowed = tuple(allowed)
        self.step_s, self.wall_s = step_s, wall_s
        self.chromium = chromium
        self.disabled: str | None = None
        if mode == "off":
            self.disabled = "screenshots are off (RIGHTSWATCH_SCREENSHOTS=off)"
        elif not os.access(chromium, os.X_OK):
            self.disabled = f"no browser: {chromium} is not installed"
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._shots: dict[str, concurrent.futures.Future[Shot]] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._buf = b""
        self._lock = threading.Lock()  # one page at a time through the worker

    async def prepare(self, urls: Iterable[str]) -> None:
        """Take the screenshots of these pages not taken yet (in this run), off the loop."""
        if self.disabled:
            return
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rw-shot")
        waits = []
        for url in dict.fromkeys(urls):
            if url not in self._shots:
                self._shots[url] = self._pool.submit(self.take, url)
            waits.append(asyncio.wrap_future(self._shots[url]))
        await asyncio.gather(*waits, return_exceptions=True)

    def get(self, url: str) -> Shot:
        if self.disabled:
            return _none(self.disabled)
        fut = self._shots.get(url)
        if fut is None or not fut.done():
            return _none("not taken")
        try:
            return fut.result()
        except Exception as exc:  # take() answers every expected failure itself
            return _none(f"screenshot failed: {type(exc).__name__}")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            self._stop(grace_s=10.0)

    def take(self, url: str) -> Shot:
        """One screenshot through the worker, within `wall_s`; never raises."""
        if self.disabled:
            return _none(self.disabled)
        try:
            netpolicy.check_url(url, self.allowed)
        except netpolicy.Blocked as exc:
            return _none(str(exc))
        with self._lock, tempfile.TemporaryDirectory(prefix="rw-shot-") as tmp:
            out = Path(tmp) / "page.png"
            answer = self._ask({"url": url, "out": str(out)})
            if isinstance(answer, str):
                return _none(answer)
            if "error" in answer:
                return _none(str(answer["error"]))
            try:
                if out.stat().st_size > MAX_SCREENSHOT_BYTES:
                    return _none(f"screenshot larger than {MAX_SCREENSHOT_BYTES} bytes")
                png = out.read_bytes()
            except OSError:
                return _none("screenshot process wrote no image")
        if not png.startswith(b"\x89PNG\r\n\x1a\n"):
            return _none("screenshot process wrote something that is not a PNG")
        answer["taken_at"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return Shot(png, {"taken": True, **answer})

    def _ask(self, request: dict[str, str]) -> dict[str, Any] | str:
        """Send one request to the worker (started if need be); its answer or why there is none."""
        if self._proc is None or self._proc.poll() is not None:
            self._stop(grace_s=0)
            self._proc = subprocess.Popen(  # noqa: S603  (argv list, no shell)
                [
                    sys.executable,
                    "-m",
                    "crawler.browser",
                    "--timeout",
                    str(self.step_s),
                    "--chromium",
                    self.chromium,
                    "--allow",
                    ",".join(str(n) for n in self.allowed),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                bufsize=0,
                start_new_session=True,  # its own process group: the browser dies with it
            )
            self._buf = b""
        proc = self._proc
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            proc.stdin.flush()
        except OSError:
            self._stop(grace_s=0)
            return "screenshot process failed (it exited)"
        deadline = time.monotonic() + self.wall_s
        while True:
            line = self._readline(proc.stdout.fileno(), deadline)
            if line is None:
                self._stop(grace_s=0)
                return f"screenshot timed out after {self.wall_s:g} s"
            if line == b"":
                code = proc.poll()
                self._stop(grace_s=0)
                return f"screenshot process failed (exit {code})"
            if line.startswith(ANSWER):
                break
        try:
            answer = json.loads(line[len(ANSWER) :])
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            self._stop(grace_s=0)
            return "screenshot process answered something unreadable"
        return answer

    def _readline(self, fd: int, deadline: float) -> bytes | None:
        """The next line from the worker; b"" at its end; None at the deadline."""
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return b""
            self._buf += chunk
            if len(self._buf) > 1024 * 1024:
                return b""
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def _stop(self, grace_s: float) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # the worker's signal to close its browser and exit
        if grace_s:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace_s)
        _kill_group(proc, grace_s=2.0 if grace_s else 0.5)
        if proc.stdout is not None:
            proc.stdout.close()


ANSWER = b"rightswatch-screenshot "


def _kill_group(proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """SIGTERM the worker's process group (it closes its browser), then SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5.0)


def _answer(data: dict[str, Any]) -> None:
    sys.stdout.buffer.write(ANSWER + json.dumps(data).encode() + b"\n")
    sys.stdout.buffer.flush()


def _main(argv: Sequence[str] | None = None) -> int:
    """The worker: one browser behind one guarded proxy; per stdin line {"url", "out"}, the PNG
    written to `out` and one answer line (the metadata, or {"error": ...}) on stdout. Ends at
    the end of stdin."""
    import ipaddress

    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(prog="python -m crawler.browser")
    parser.add_argument("--allow", default="")
    parser.add_argument("--timeout", type=float, default=SCREENSHOT_STEP_S)
    parser.add_argument("--chromium", default=CHROMIUM)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: close browser and proxy
    allowed = tuple(ipaddress.ip_network(a, strict=False) for a in args.allow.split(",") if a)
    with GuardedProxy(allowed) as proxy, sync_playwright() as pw:
        browser = None
        try:
            for line in sys.stdin:
                try:
                    request = json.loads(line)
                    url, out = str(request["url"]), Path(request["out"])
                    netpolicy.check_url(url, allowed)
                    if browser is None:
                        browser = _launch(pw, proxy, args.timeout, args.chromium)
                    png, meta = _shoot(browser, proxy, url, args.timeout)
                except (netpolicy.Blocked, RenderError) as exc:
                    _answer({"error": str(exc)[:300]})
                    continue
                except Exception as exc:  # a broken driver or browser: one line, no traceback
                    _answer(
                        {"error": f"screenshot failed: {type(exc).__name__}: {_first_line(exc)}"}
                    )
                    return 1
                out.write_bytes(png)
                _answer(meta)
        finally:
            if browser is not None:
                with contextlib.suppress(Exception):
                    browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
