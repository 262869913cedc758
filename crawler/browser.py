"""Debian's Chromium, driven by Playwright, with all its traffic through the guarded proxy.

`launch_options(proxy_url)` is for scrapy-playwright's `PLAYWRIGHT_LAUNCH_OPTIONS` (the
runner starts a `crawler.egress.GuardedProxy` first); `screenshot()` is for evidence: it
starts its own proxy, renders one page and returns a full-page PNG with the metadata the
chain of custody needs (viewport, browser version, final URL, refused requests).

No browser is downloaded: Playwright uses /usr/bin/chromium (`executable_path`).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Sequence
from typing import Any

from crawler import netpolicy
from crawler.egress import GuardedProxy, shared_proxy
from crawler.netpolicy import Network

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 800}
MAX_SCREENSHOT_HEIGHT = 16_384  # pixels; taller pages are clipped and flagged "truncated"

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
    url: str, *, allowed: Sequence[Network], timeout_s: float = 30.0
) -> tuple[bytes, dict[str, Any]]:
    """Render `url` in Chromium behind a guarded proxy; return (full-page PNG, metadata).

    Raises netpolicy.Blocked for a refused URL and RenderError when rendering fails.
    Runs in a worker thread, so it may be called from inside a running event loop.
    """
    netpolicy.check_url(url, allowed)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="screenshot") as pool:
        return pool.submit(_render, url, tuple(allowed), timeout_s).result()


def _render(
    url: str, allowed: tuple[Network, ...], timeout_s: float
) -> tuple[bytes, dict[str, Any]]:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import FloatRect, ViewportSize, sync_playwright

    timeout_ms = timeout_s * 1000
    with GuardedProxy(allowed) as proxy, sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(**launch_options(proxy.url), timeout=timeout_ms)
        except PlaywrightError as exc:
            raise RenderError(f"chromium did not start: {_first_line(exc)}") from None
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
            browser.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
