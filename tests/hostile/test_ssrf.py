"""HOSTILE.md S1-S5, S7 through a real Scrapy crawl: the tripwires must see zero connects."""

from __future__ import annotations

from typing import Any

import pytest

from hostile.server import Site


def _refusals(result: Any) -> dict[str, str]:
    return {r["url"]: r["error"] for r in result.errors()}


def test_s1_literal_targets_never_connect(site: Site, crawl: Any) -> None:
    port = site.server.port
    urls = [
        f"http://127.0.0.2:{port}/",
        f"http://127.2:{port}/",
        f"http://2130706434:{port}/",
        f"http://0x7f000002:{port}/",
        f"http://0177.0.0.2:{port}/",
        f"http://[::1]:{port}/",
        f"http://[::ffff:127.0.0.2]:{port}/",
        f"http://[::ffff:7f00:2]:{port}/",
        f"http://localhost:{port}/",
        f"http://LOCALHOST.:{port}/",
        f"http://x.localhost:{port}/",
        f"http://user@127.0.0.2:{port}@example.test/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1%25lo]/",
        f"http://0.0.0.0:{port}/",
    ]
    result = crawl(urls)
    refused = _refusals(result)
    assert len(result.results) == len(refused) == len(urls)  # Scrapy may respell the URL
    for reason in refused.values():
        assert reason.startswith("refused "), reason
    assert result.stats["netpolicy/refused"] >= len(urls)
    assert site.tripwire_connects() == 0
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("answers", "cls"),
    [
        ([["127.0.0.2"]], "loopback"),
        ([["127.0.0.1", "127.0.0.2"]], "loopback"),
        ([["::1"]], "loopback"),
    ],
    ids=["private-answer", "mixed-answers", "aaaa-only-loopback"],
)
def test_s2_fake_dns_answers_are_checked(
    site: Site, crawl: Any, answers: list[list[str]], cls: str
) -> None:
    """Only 127.0.0.1/32 is allowed; the name's other answers are tripwires."""
    url = f"http://evil.test:{site.server.port}/ok"
    result = crawl([url], fake_dns={"evil.test": answers})
    outcome = result.outcome(url)
    assert not outcome["ok"]
    assert "resolves to" in outcome["error"]
    assert cls in outcome["error"]
    assert site.tripwire_connects() == 0
    assert site.server.hits["/ok"] == 0 or result.dns_calls["evil.test"] > 0
    assert "Traceback" not in result.stderr


def test_s2_allowed_name_is_fetched(site: Site, crawl: Any) -> None:
    """The control: a name that resolves only to the allowed address works."""
    url = f"http://good.test:{site.server.port}/ok"
    result = crawl([url], fake_dns={"good.test": [["127.0.0.1"]]})
    assert result.outcome(url)["ok"]
    assert result.outcome(url)["status"] == 200


@pytest.mark.parametrize("cache_s", [0.0, 60.0])
def test_s4_dns_rebinding_never_reaches_the_blocked_address(
    site: Site, crawl: Any, cache_s: float
) -> None:
    """First answer 127.0.0.1 (allowed), every later one 127.0.0.2 (the tripwire, same port).

    robots.txt, several pages, retries and new connections (the server closes each one) all
    resolve again (cache 0) or reuse the validated answer (cache 60 s); none may connect to
    the rebound address.
    """
    origin = f"http://rebind.test:{site.server.port}"
    urls = [f"{origin}/ok?{i}" for i in range(6)] + [f"{origin}/c1/chain?n=20"]
    result = crawl(
        urls,
        fake_dns={"rebind.test": [["127.0.0.1"], ["127.0.0.2"]]},
        settings={"NETPOLICY_DNS_CACHE_S": cache_s, "CONCURRENT_REQUESTS": 1},
    )
    assert site.tripwire_connects() == 0
    assert len(result.results) == len(urls)
    assert result.dns_calls["rebind.test"] >= 1
    if cache_s == 0:
        assert result.dns_calls["rebind.test"] > 1
        assert any("resolves to 127.0.0.2" in r.get("error", "") for r in result.results)
    else:
        assert all(r["ok"] for r in result.results), result.errors()
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("via", ["", "meta-"])
@pytest.mark.parametrize("target", ["metadata", "loopback2", "v6", "mapped", "odd"])
def test_s3_redirect_hops_are_rechecked(site: Site, crawl: Any, target: str, via: str) -> None:
    url = f"{site.server.origin}/s3/{via}{target}"
    result = crawl([url])
    errors = result.errors()
    assert len(errors) == 1, result.results
    assert errors[0]["error"].startswith("refused "), errors[0]
    assert url in errors[0]["redirect_urls"], errors[0]
    assert not any(r["ok"] and r["url"] != url for r in result.results)
    assert site.tripwire_connects() == 0


def test_s5_subresources_and_schemes_refused(site: Site, crawl: Any) -> None:
    url = f"{site.server.origin}/s5/page"
    result = crawl([url], follow=True, settings={"DEPTH_LIMIT": 1})
    assert result.outcome(url)["ok"]
    refused = _refusals(result)
    assert any("file" in u for u in refused)
    assert any(u.startswith("ftp:") for u in refused)
    assert any(u.startswith("gopher:") for u in refused)
    assert any(u.startswith("s3:") for u in refused)
    assert any("169.254.169.254" in u for u in refused)
    assert any("10.0.0.1" in u for u in refused)
    assert all(e.startswith("refused ") for e in refused.values()), refused
    dropped = result.stats.get("trap/rejected", 0) + result.stats.get(
        "urllength/request_ignored_count", 0
    )
    assert dropped >= 1  # the 100 kB data: URL
    assert site.tripwire_connects() == 0
    everything = repr(result.results) + result.stderr
    assert "root:x:0:0" not in everything


def test_s7_proxy_environment_cannot_bypass_the_policy(site: Site, crawl: Any) -> None:
    """HTTP(S)_PROXY point at a listener; the crawl must connect directly, never via it."""
    proxy = site.proxy_tripwire.origin
    url = f"{site.server.origin}/ok"
    result = crawl(
        [url, "http://169.254.169.254/"],
        env={"HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy, "https_proxy": proxy},
    )
    assert result.outcome(url)["ok"]
    assert not result.outcome("http://169.254.169.254/")["ok"]
    assert site.proxy_tripwire.connects == 0
    assert site.tripwire_connects() == 0


def test_s7_allowing_one_range_does_not_allow_others(site: Site, crawl: Any) -> None:
    port = site.server.port
    ok, other = f"{site.server.origin}/ok", f"http://169.254.169.254:{port}/"
    result = crawl([ok, other], allow=("127.0.0.0/8",))
    assert result.outcome(ok)["ok"]
    assert "link-local" in result.outcome(other)["error"]
