"""crawler.signals.Fetcher on loopback: body caps, redirect caps, refused hops, proxies ignored."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "signals"))

from signalkit import Route, Site, serve

from crawler.netpolicy import Blocked
from crawler.signals import MAX_REDIRECTS, Fetcher, describe

LOOPBACK = [ipaddress.ip_network("127.0.0.1/32")]


@pytest.fixture
def site() -> Site:
    return Site(
        {
            "/big": Route(b"x" * 1_000_000),
            "/small": Route(b"hello"),
            "/loop": Route(b"", 302, {"Location": "/loop"}),
            "/chain0": Route(b"", 302, {"Location": "/chain1"}),
            **{f"/chain{i}": Route(b"", 302, {"Location": f"/chain{i + 1}"}) for i in range(1, 30)},
            "/to-meta": Route(b"", 302, {"Location": "http://169.254.169.254/"}),
            "/to-file": Route(b"", 302, {"Location": "file:///etc/passwd"}),
        }
    )


def test_caps_and_redirect_limits(site: Site) -> None:
    fetcher = Fetcher(LOOPBACK, "rightswatch-test")
    with serve(site):
        try:
            big = fetcher.get(site.url + "/big", 1000)
            assert big.truncated
            assert len(big.body) <= 1000
            small = fetcher.get(site.url + "/small", 1000)
            assert (small.body, small.truncated, small.status) == (b"hello", False, 200)
            for path in ("/loop", "/chain0"):
                with pytest.raises(httpx.TooManyRedirects) as info:
                    fetcher.get(site.url + path, 1000)
                assert describe(info.value) == f"redirect limit ({MAX_REDIRECTS}) exceeded"
            for path, reason in (("/to-meta", "link-local"), ("/to-file", "not http or https")):
                with pytest.raises((Blocked, httpx.UnsupportedProtocol)) as info:
                    fetcher.get(site.url + path, 1000)
                assert reason in describe(info.value) or isinstance(
                    info.value, httpx.UnsupportedProtocol
                )
        finally:
            fetcher.close()
    assert site.hits.count("/loop") == MAX_REDIRECTS + 1
    assert "/chain7" not in site.hits


def test_names_resolving_to_refused_addresses_get_no_connection(site: Site) -> None:
    fetcher = Fetcher([], "rightswatch-test")  # nothing allowed
    with serve(site):
        try:
            for url in (site.url + "/small", f"http://localhost:{site.port}/small"):
                with pytest.raises(Blocked, match="loopback"):
                    fetcher.get(url, 1000)
        finally:
            fetcher.close()
    assert site.hits == []


def test_proxy_environment_is_ignored(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9/")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9/")
    fetcher = Fetcher(LOOPBACK, "rightswatch-test")
    with serve(site):
        try:
            assert fetcher.get(site.url + "/small", 100).body == b"hello"
        finally:
            fetcher.close()


def test_a_dripping_server_hits_the_total_deadline(site: Site) -> None:
    site.routes["/drip"] = Route(b"x" * 10_000, drip_s=0.05)  # would take over 8 minutes
    fetcher = Fetcher(LOOPBACK, "rightswatch-test", total_s=0.5)
    with serve(site):
        try:
            with pytest.raises(httpx.ReadTimeout, match=r"no complete answer in 0\.5 s"):
                fetcher.get(site.url + "/drip", 1_000_000)
        finally:
            fetcher.close()
