"""The safety components without I/O: settings merge, middlewares via get_crawler, resolver."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from scrapy import Request
from scrapy.exceptions import DownloadCancelledError, DownloadTimeoutError, IgnoreRequest
from scrapy.utils.test import get_crawler
from twisted.internet.error import DNSLookupError

from crawler.browser import CHROMIUM, launch_options
from crawler.middlewares import (
    ERROR_META,
    NetPolicyErrorMiddleware,
    NetPolicyMiddleware,
    TrapMiddleware,
    failure_reason,
)
from crawler.resolver import REFUSALS, PolicyResolver, allowed_networks
from crawler.safety import SAFETY_SETTINGS, merge_into, safety_settings


def test_merge_keeps_project_middlewares_and_adds_the_policy() -> None:
    base = {
        "DOWNLOADER_MIDDLEWARES": {"project.Mw": 543},
        "DOWNLOAD_HANDLERS": {"http": "project.Handler"},
        "BOT_NAME": "x",
    }
    out = merge_into(base, ["127.0.0.1/32"], user_agent="ua/1")
    assert out["DOWNLOADER_MIDDLEWARES"]["project.Mw"] == 543
    assert out["DOWNLOADER_MIDDLEWARES"]["crawler.middlewares.NetPolicyMiddleware"] == 10
    assert (
        out["DOWNLOADER_MIDDLEWARES"]["scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware"]
        is None
    )
    assert out["DOWNLOAD_HANDLERS"] == {
        "http": "project.Handler",
        "ftp": None,
        "s3": None,
        "file": None,
        "data": None,
    }
    assert out["NETPOLICY_ALLOW"] == ["127.0.0.1/32"]
    assert out["USER_AGENT"] == "ua/1"
    assert out["BOT_NAME"] == "x"
    assert SAFETY_SETTINGS["NETPOLICY_ALLOW"] == []  # the template is not mutated
    assert safety_settings([], user_agent="u")["REMOTE_CONTROL_ENABLED"] is False


HTTP11 = "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler"


def _crawler(allow: list[str], require_resolver: bool = False) -> Any:
    return get_crawler(
        settings_dict={"NETPOLICY_ALLOW": allow, "NETPOLICY_REQUIRE_RESOLVER": require_resolver}
    )


@pytest.mark.parametrize(
    ("handlers", "gap"),
    [
        (
            {"http": HTTP11, "https": HTTP11},  # the handler is right, the resolver is absent
            "PolicyResolver is not installed",
        ),
        (
            {"https": "scrapy.core.downloader.handlers._httpx.HttpxDownloadHandler"},
            "resolves names",
        ),
    ],
)
def test_middleware_fails_closed_without_the_policy_resolver(
    handlers: dict[str, str], gap: str
) -> None:
    crawler = get_crawler(settings_dict={"NETPOLICY_ALLOW": [], "DOWNLOAD_HANDLERS": handlers})
    crawler.stats.open_spider()
    mw = NetPolicyMiddleware.from_crawler(crawler)
    request = Request("https://example.com/")
    with pytest.raises(IgnoreRequest, match=gap):
        mw.process_request(request)
    assert gap in request.meta[ERROR_META]


def test_netpolicy_middleware_refuses_and_records() -> None:
    crawler = _crawler(["127.0.0.1/32"])
    crawler.stats.open_spider()
    mw = NetPolicyMiddleware.from_crawler(crawler)
    ok = Request("http://127.0.0.1:8000/", meta={"proxy": "http://evil:3128"})
    mw.process_request(ok)
    assert ok.meta["proxy"] is None  # proxies never apply
    bad = Request("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(IgnoreRequest, match="link-local"):
        mw.process_request(bad)
    assert bad.meta[ERROR_META] == "refused 169.254.169.254: link-local"
    assert crawler.stats.get_value("netpolicy/refused") == 1


def test_error_middleware_turns_a_resolver_refusal_into_the_reason() -> None:
    crawler = _crawler([])
    crawler.stats.open_spider()
    mw = NetPolicyErrorMiddleware.from_crawler(crawler)
    REFUSALS.add("evil.example", "refused evil.example: resolves to 10.0.0.5: private (RFC 1918)")
    request = Request("http://evil.example/x")
    with pytest.raises(IgnoreRequest, match=r"resolves to 10\.0\.0\.5"):
        mw.process_exception(request, DNSLookupError("no results for hostname lookup"))
    assert mw.process_exception(Request("http://fine.example/"), DNSLookupError("x")) is None
    robots = Request("http://fine.example/robots.txt", meta={"dont_obey_robotstxt": True})
    with pytest.raises(IgnoreRequest, match=r"robots\.txt not read"):
        mw.process_exception(robots, DownloadTimeoutError("took longer than 0.5 seconds"))


def test_trap_middleware_drops_trap_links() -> None:
    crawler = _crawler([])
    crawler.stats.open_spider()
    mw = TrapMiddleware.from_crawler(crawler)
    assert mw.get_processed_request(Request("http://a.example/a/b/"), None) is not None
    assert mw.get_processed_request(Request("http://a.example/a/a/a/"), None) is None
    assert crawler.stats.get_value("trap/rejected") == 1


@pytest.mark.parametrize(
    ("exc", "prefix"),
    [
        (DownloadTimeoutError("took longer than 30 seconds"), "timeout: "),
        (DownloadCancelledError(""), "too large: "),
        (IgnoreRequest("max redirections reached"), "redirect limit"),
        (DNSLookupError("nope"), "DNS: "),
        (ConnectionRefusedError("refused"), "connection: "),
    ],
)
def test_failure_reason_classifies(exc: BaseException, prefix: str) -> None:
    assert failure_reason(exc).startswith(prefix)


def test_failure_reason_prefers_the_recorded_refusal() -> None:
    request = Request("http://x.example/", meta={ERROR_META: "refused x: loopback"})
    assert failure_reason(IgnoreRequest("whatever"), request) == "refused x: loopback"


def test_resolver_lookup_checks_every_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {"mixed.example": ["93.184.215.14", "10.0.0.5"], "ok.example": ["93.184.215.14"]}

    def fake(host: str, port: int, *a: Any, **k: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    resolver = PolicyResolver(reactor=None, allowed=(), timeout=5, cache_s=0)
    assert resolver.lookup("ok.example") == ["93.184.215.14"]
    with pytest.raises(DNSLookupError, match=r"resolves to 10\.0\.0\.5"):
        resolver.lookup("mixed.example")
    assert REFUSALS.get("MIXED.example") is not None


def test_allowed_networks_parses_lists_and_strings() -> None:
    assert [str(n) for n in allowed_networks("127.0.0.1/32, ::1/128")] == [
        "127.0.0.1/32",
        "::1/128",
    ]
    assert allowed_networks(None) == ()


def test_launch_options_always_route_through_a_proxy() -> None:
    opts = launch_options("http://127.0.0.1:9")
    assert opts["executable_path"] == CHROMIUM
    assert "--proxy-server=http://127.0.0.1:9" in opts["args"]
    assert "--proxy-bypass-list=<-loopback>" in opts["args"]
    shared = launch_options(None, allowed=())
    proxy_args = [a for a in shared["args"] if a.startswith("--proxy-server=http://127.0.0.1:")]
    assert len(proxy_args) == 1
