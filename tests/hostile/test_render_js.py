"""HOSTILE.md S6: the browser of --render-js goes through the guarded egress proxy.

The proxy is tested with raw sockets first (what a browser sends), then with Debian's
Chromium rendering a page whose scripts, iframes and images aim at internal addresses.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from crawler.browser import CHROMIUM, screenshot
from crawler.egress import GuardedProxy
from hostile.server import Exchange, Site
from rightswatch.config import parse_networks

ALLOW = parse_networks("127.0.0.1/32")


@pytest.fixture
def proxy() -> Iterator[GuardedProxy]:
    with GuardedProxy(ALLOW, connect_timeout_s=5, idle_timeout_s=5) as p:
        yield p


def _ask(proxy: GuardedProxy, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
        s.sendall(raw)
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
        return b"".join(chunks)


def test_proxy_forwards_allowed_plain_http(site: Site, proxy: GuardedProxy) -> None:
    target = f"{site.server.origin}/ok"
    answer = _ask(
        proxy, f"GET {target} HTTP/1.1\r\nHost: x\r\nProxy-Connection: keep-alive\r\n\r\n".encode()
    )
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.endswith(b"<p>ok</p></body></html>")


def test_proxy_tunnels_allowed_connect(site: Site, proxy: GuardedProxy) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
        s.sendall(f"CONNECT 127.0.0.1:{site.server.port} HTTP/1.1\r\n\r\n".encode())
        assert s.recv(1024).startswith(b"HTTP/1.1 200")
        s.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while data := s.recv(65536):
            got += data
    assert got.startswith(b"HTTP/1.1 200")
    assert b"<p>ok</p>" in got


@pytest.mark.parametrize(
    "request_line",
    [
        "CONNECT 127.0.0.2:{port} HTTP/1.1",
        "CONNECT [::1]:{port} HTTP/1.1",
        "CONNECT 0x7f000002:{port} HTTP/1.1",
        "CONNECT localhost:{port} HTTP/1.1",
        "CONNECT 169.254.169.254:443 HTTP/1.1",
        "GET http://127.0.0.2:{port}/ HTTP/1.1",
        "GET http://[::ffff:127.0.0.2]:{port}/ HTTP/1.1",
        "GET http://user@127.0.0.2:{port}@example.test/ HTTP/1.1",
        "GET http://2130706434:{port}/ HTTP/1.1",
    ],
)
def test_proxy_refuses_blocked_targets(site: Site, proxy: GuardedProxy, request_line: str) -> None:
    line = request_line.format(port=site.server.port)
    answer = _ask(proxy, f"{line}\r\nHost: x\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 403")
    assert b"refused" in answer
    assert proxy.refused
    assert proxy.refused[-1].startswith("refused")
    assert site.tripwire_connects() == 0


@pytest.mark.parametrize(
    "raw",
    [
        b"NONSENSE\r\n\r\n",
        b"GET ftp://127.0.0.1/ HTTP/1.1\r\n\r\n",
        b"GET /relative HTTP/1.1\r\n\r\n",
        b"CONNECT nohostport HTTP/1.1\r\n\r\n",
        b"TRACE http://127.0.0.1/ HTTP/1.1\r\n\r\n",
        b"POST http://127.0.0.1:1/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
)
def test_proxy_refuses_malformed_requests(proxy: GuardedProxy, raw: bytes) -> None:
    answer = _ask(proxy, raw)
    assert answer.split(b" ")[1] in {b"400", b"405", b"411"}


def test_proxy_refuses_itself(proxy: GuardedProxy) -> None:
    answer = _ask(proxy, f"GET http://127.0.0.1:{proxy.port}/ HTTP/1.1\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 403")
    assert b"the proxy itself" in answer


needs_chromium = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="no /usr/bin/chromium")


@pytest.fixture(scope="module")
def s6_page(site: Site) -> str:
    t = site.tripwire.port
    body = f"""<!doctype html><html><head><title>s6</title></head><body>
    <h1>gallery</h1>
    <img src="http://127.0.0.2:{t}/img.png">
    <img src="http://localhost:{t}/local.png">
    <iframe src="http://127.0.0.2:{t}/frame"></iframe>
    <iframe src="http://169.254.169.254/latest/meta-data/"></iframe>
    <script>
      const targets = ["http://127.0.0.2:{t}/x", "http://[::1]:{t}/y", "http://0x7f000002:{t}/z"];
      for (const u of targets) {{
        fetch(u).then(r => r.text()).then(t => document.body.append("LEAK " + t)).catch(() => {{}});
      }}
      try {{ new WebSocket("ws://127.0.0.2:{t}/ws"); }} catch (e) {{}}
      document.title = "rendered";
    </script></body></html>""".encode()

    @site.server.route("/s6/page")
    async def page(ex: Exchange) -> None:
        await ex.respond(200, body)

    return f"{site.server.origin}/s6/page"


@needs_chromium
@pytest.mark.chromium
def test_s6_rendered_page_cannot_reach_internal_addresses(site: Site, s6_page: str) -> None:
    png, meta = screenshot(s6_page, allowed=ALLOW, timeout_s=60)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert meta["status"] == 200  # the allowed page itself came through the proxy
    assert meta["title"] == "rendered"
    assert meta["browser_version"]
    assert meta["viewport"] == {"width": 1280, "height": 800}
    refused = " ".join(meta["egress_refused"])
    assert "127.0.0.2" in refused
    assert "169.254.169.254" in refused
    assert site.tripwire_connects() == 0


@needs_chromium
@pytest.mark.chromium
def test_s6_render_js_crawl_goes_through_the_proxy(site: Site, s6_page: str, crawl: Any) -> None:
    """The --render-js path: scrapy-playwright with crawler.browser.launch_options(None)."""
    result = crawl([s6_page], render_js=True, settings={"DOWNLOAD_TIMEOUT": 60})
    outcome = result.outcome(s6_page)
    assert outcome["ok"], outcome
    assert result.egress_forwarded >= 1  # the page itself came through the proxy
    refused = " ".join(result.egress_refused)
    assert "127.0.0.2" in refused
    assert "169.254.169.254" in refused
    assert "LEAK" not in outcome["head"]
    assert site.tripwire_connects() == 0
    assert "Traceback" not in result.stderr


@needs_chromium
@pytest.mark.chromium
def test_s6_screenshot_of_a_blocked_url_is_refused_before_launch(site: Site) -> None:
    from crawler.netpolicy import Blocked

    with pytest.raises(Blocked, match="loopback"):
        screenshot(f"http://127.0.0.2:{site.tripwire.port}/", allowed=ALLOW, timeout_s=10)
    assert site.tripwire_connects() == 0


@needs_chromium
@pytest.mark.chromium
def test_s6_control_without_the_proxy_the_page_does_reach_the_tripwire(site: Site) -> None:
    """Proves the S6 test can fail: Chromium launched without the proxy flags connects."""
    from playwright.sync_api import sync_playwright

    from crawler.browser import CHROMIUM_ARGS
    from hostile.server import Tripwire

    own = Tripwire("127.0.0.3", 0)
    try:
        html = f'<img src="http://127.0.0.3:{own.port}/x.png"><p>control</p>'
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
            page = browser.new_page()
            page.set_content(html, wait_until="load")
            browser.close()
        assert own.connects > 0
    finally:
        own.close()
