"""Fixtures for the hostile-web tests: one hostile server, its tripwires, a crawl runner."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hostile.routes import BOMBS, install_all
from hostile.server import HostileServer, Site, Tripwire, bomb

CHILD = Path(__file__).with_name("crawl_child.py")
REPO = Path(__file__).resolve().parents[2]

# Test caps: small so every edge is reached quickly. The product's caps are in crawler.safety.
TEST_SETTINGS: dict[str, Any] = {
    "DOWNLOAD_TIMEOUT": 0.5,
    "DOWNLOAD_MAXSIZE": 1024 * 1024,
    "RETRY_TIMES": 1,
    "DEPTH_LIMIT": 5,
    "CONCURRENT_REQUESTS": 16,
}
# Slack for one read from the socket past the cap (Twisted reads at most 64 KiB at a time).
ONE_BUFFER = 64 * 1024


def _ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def _tripwire_at(host: str, port: int) -> Tripwire | None:
    try:
        return Tripwire(host, port)
    except OSError:
        return None


@pytest.fixture(scope="session")
def site() -> Iterator[Site]:
    for _ in range(20):
        server = HostileServer().start()
        trip = _tripwire_at("127.0.0.2", server.port)
        trip6 = _tripwire_at("::1", server.port) if _ipv6() else None
        if trip is not None:
            break
        server.stop()
    else:  # pragma: no cover - the port space is exhausted
        pytest.fail("could not bind a tripwire beside the hostile server")
    install_all(server, server.port)
    for encoding in set(BOMBS.values()):
        bomb(encoding)  # built once here, not inside a request's timeout
    proxy_trip = Tripwire("127.0.0.1", 0)
    s = Site(server, trip, trip6, proxy_trip)
    yield s
    server.stop()
    for t in s.tripwires:
        t.close()


@dataclass
class CrawlResult:
    results: list[dict[str, Any]]
    received: dict[str, int]
    stats: dict[str, Any]
    maxrss_kb: int
    dns_calls: dict[str, int]
    egress_refused: list[str]
    egress_forwarded: int
    stderr: str
    returncode: int

    def outcome(self, url: str) -> dict[str, Any]:
        """The one result for `url`, also when it failed at a later redirect hop."""
        found = [r for r in self.results if (r.get("redirect_urls") or [r["url"]])[0] == url]
        assert len(found) == 1, (url, self.results)
        return found[0]

    def errors(self) -> list[dict[str, Any]]:
        return [r for r in self.results if not r["ok"]]


@pytest.fixture
def crawl(tmp_path: Path) -> Any:
    def run(
        urls: list[str],
        *,
        settings: dict[str, Any] | None = None,
        follow: bool = False,
        fake_dns: dict[str, list[list[str]]] | None = None,
        allow: tuple[str, ...] = ("127.0.0.1/32",),
        env: dict[str, str] | None = None,
        render_js: bool = False,
        project: dict[str, Any] | None = None,
    ) -> CrawlResult:
        config = {
            "urls": urls,
            "settings": {**TEST_SETTINGS, **(settings or {})},
            "follow": follow,
            "fake_dns": fake_dns or {},
            "allow": list(allow),
            "render_js": render_js,
            "project": project or {},
        }
        cfg, out = tmp_path / "config.json", tmp_path / "result.json"
        cfg.write_text(json.dumps(config))
        child_env = {k: v for k, v in os.environ.items() if not k.endswith("_PROXY")}
        child_env.update(env or {})
        child_env["PYTHONPATH"] = str(REPO)
        proc = subprocess.run(
            [sys.executable, str(CHILD), str(cfg), str(out)],
            capture_output=True,
            text=True,
            env=child_env,
            timeout=240,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        data = json.loads(out.read_text())
        return CrawlResult(stderr=proc.stderr, returncode=proc.returncode, **data)

    return run
