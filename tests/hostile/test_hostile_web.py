"""HOSTILE.md C1-C7, C9 through a real Scrapy crawl with the safety settings.

Caps here are the test's (tests/hostile/conftest.py TEST_SETTINGS: 0.5 s timeout, 1 MiB
size cap, depth 5) so each edge is reached quickly; the product's caps are in crawler.safety
and behave the same way at their own values.
"""

from __future__ import annotations

from typing import Any

import pytest

from crawler.safety import PAGE_MAXSIZE
from hostile.conftest import ONE_BUFFER, TEST_SETTINGS
from hostile.routes import BOMBS, C7
from hostile.server import BOMB_SIZE, Site

CAP = TEST_SETTINGS["DOWNLOAD_MAXSIZE"]


def _clean(result: Any) -> None:
    """No crash, no traceback, and the run finished normally."""
    assert "Traceback" not in result.stderr
    assert result.stats.get("finish_reason") == "finished"
    assert result.stats.get("spider_exceptions/count", 0) == 0


def test_c1_redirect_loops_and_bad_redirects(site: Site, crawl: Any) -> None:
    o = site.server.origin
    loops = [f"{o}/c1/loop-a", f"{o}/c1/self", f"{o}/c1/chain", f"{o}/c1/meta-a"]
    bad = [f"{o}/c1/nolocation", f"{o}/c1/ftp"]
    result = crawl([*loops, *bad, f"{o}/ok"])
    for url in loops:
        outcome = result.outcome(url)
        assert not outcome["ok"]
        assert outcome["error"] == "IgnoreRequest: max redirections reached"
        assert outcome["reason"] == "redirect limit: max redirections reached"
        assert len(outcome["redirect_urls"]) == 10  # REDIRECT_MAX_TIMES: the chain is kept
    for url in bad:  # not followed: the 302 itself is the (failed) outcome
        assert "non-200" in result.outcome(url)["error"]
        assert result.outcome(url)["reason"] == "HTTP 302"
    assert result.outcome(f"{o}/ok")["ok"]  # the run goes on
    assert site.server.hits["/c1/chain"] <= 11
    _clean(result)


def test_c2_calendar_and_path_repetition_end_within_caps(site: Site, crawl: Any) -> None:
    o = site.server.origin
    before_cal, before_rep = site.server.hits["/c2/cal"], site.server.hits["/c2/rep/a/a/a/"]
    result = crawl([f"{o}/c2/cal?m=0", f"{o}/c2/rep/"], follow=True)
    cal = [r for r in result.results if "/c2/cal" in r["url"]]
    assert len(cal) == TEST_SETTINGS["DEPTH_LIMIT"] + 1  # depth 0..5, then the cap
    assert site.server.hits["/c2/cal"] - before_cal == len(cal)
    fetched = {r["url"].removeprefix(o) for r in result.results if "/c2/rep" in r["url"]}
    assert fetched == {"/c2/rep/", "/c2/rep/a/", "/c2/rep/a/a/"}
    assert site.server.hits["/c2/rep/a/a/a/"] == before_rep
    assert result.stats["trap/rejected"] == 1
    _clean(result)


def test_c3_many_links_long_urls_big_page(site: Site, crawl: Any) -> None:
    """With the product's page cap (10 MiB): the 3 MB, 100 000-link page and the 10 MB page
    are captured; with the test's 1 MiB cap the 10 MB page is refused as too large."""
    o = site.server.origin
    product = {"DOWNLOAD_MAXSIZE": PAGE_MAXSIZE, "DOWNLOAD_TIMEOUT": 30}
    result = crawl([f"{o}/c3/links", f"{o}/c3/big"], settings=product)
    assert result.outcome(f"{o}/c3/links")["ok"]
    assert result.outcome(f"{o}/c3/big")["length"] > 9_000_000
    # The stated bound (README, "Crawling safely"): how far the queue runs ahead of the
    # downloads depends on the machine's load, so the bound leaves room for a busy machine.
    assert result.maxrss_kb * 1024 < 800 * 1024 * 1024
    _clean(result)
    capped = crawl([f"{o}/c3/big"], settings={"DOWNLOAD_TIMEOUT": 30})
    big = capped.outcome(f"{o}/c3/big")
    assert not big["ok"]
    assert "larger than download max size" in big["error"]
    assert capped.received.get(f"{o}/c3/big", 0) <= CAP + ONE_BUFFER
    followed = crawl([f"{o}/c3/longurl"], follow=True, settings={"DEPTH_LIMIT": 1})
    assert followed.outcome(f"{o}/c3/longurl")["ok"]
    assert followed.outcome(f"{o}/ok")["ok"]
    assert not any("/c3/long/" in r["url"] for r in followed.results)
    assert not any(path.startswith("/c3/long/") for path in site.server.hits)
    _clean(followed)


def test_c4_huge_endless_underrun_overrun(site: Site, crawl: Any) -> None:
    o = site.server.origin
    urls = [f"{o}/c4/huge-cl", f"{o}/c4/infinite", f"{o}/c4/underrun", f"{o}/c4/overrun"]
    result = crawl(urls, settings={"DOWNLOAD_FAIL_ON_DATALOSS": False})
    huge = result.outcome(f"{o}/c4/huge-cl")
    assert "Expected to receive 10737418240 bytes" in huge["error"]
    assert huge["reason"].startswith("too large: ")
    assert result.received.get(f"{o}/c4/huge-cl", 0) <= ONE_BUFFER  # refused on the header
    endless = result.outcome(f"{o}/c4/infinite")
    assert endless["kind"] == "DownloadCancelledError"
    assert endless["reason"].startswith("too large")
    assert CAP < result.received[f"{o}/c4/infinite"] <= CAP + ONE_BUFFER
    under = result.outcome(f"{o}/c4/underrun")
    assert under["ok"]
    assert "dataloss" in under["flags"]  # kept, flagged incomplete
    assert under["length"] == 50
    over = result.outcome(f"{o}/c4/overrun")
    assert over["ok"]
    assert over["length"] == 100  # the declared length, never the extra bytes
    assert over["flags"] == []
    _clean(result)


def test_c4_underrun_fails_when_dataloss_is_fatal(site: Site, crawl: Any) -> None:
    url = f"{site.server.origin}/c4/underrun"
    result = crawl([url], settings={"DOWNLOAD_FAIL_ON_DATALOSS": True, "RETRY_TIMES": 0})
    assert result.outcome(url)["reason"].startswith("data loss: ")
    _clean(result)


def test_c5_compression_bombs_stop_at_the_cap(site: Site, crawl: Any) -> None:
    o = site.server.origin
    urls = [f"{o}/c5/{name}" for name in BOMBS]
    result = crawl([*urls, f"{o}/ok"])
    for url in urls:
        outcome = result.outcome(url)
        assert not outcome["ok"]
        assert "exceeded DOWNLOAD_MAXSIZE" in outcome["error"], outcome
        assert outcome["reason"].startswith("too large: ")
        decompressed = int(outcome["error"].split(" B decompressed")[0].rsplit(" ", 1)[1])
        assert CAP < decompressed <= CAP * 1.1 + ONE_BUFFER  # Scrapy's bound: within ~10 %
    assert result.outcome(f"{o}/ok")["ok"]  # the next URL proceeds
    # Memory: one bomb decoded whole would add BOMB_SIZE (200 MB) to the peak.
    assert result.maxrss_kb * 1024 < result.stats["memusage/startup"] + BOMB_SIZE // 2
    _clean(result)


def test_c6_slow_and_hanging_servers_time_out(site: Site, crawl: Any) -> None:
    o = site.server.origin
    paths = ["/c6/drip", "/c6/silent", "/c6/noclose"]
    before = {p: site.server.client_closed[p] for p in paths}
    result = crawl([o + p for p in paths] + [f"{o}/ok"])
    for p in paths:
        outcome = result.outcome(o + p)
        assert outcome["kind"] == "DownloadTimeoutError", outcome
        assert "took longer than 0.5 seconds" in outcome["error"]
        assert outcome["reason"].startswith("timeout: ")
    assert result.outcome(f"{o}/ok")["ok"]
    assert result.stats["retry/reason_count/scrapy.exceptions.DownloadTimeoutError"] == 3
    _clean(result)
    for p in paths:  # the crawler hung up, not the server (once plus one retry)
        assert site.server.client_closed[p] - before[p] >= 1


def test_c7_malformed_http_is_a_per_url_error(site: Site, crawl: Any) -> None:
    o = site.server.origin
    urls = [f"{o}/c7/{name}" for name in [*C7, "rst", "truncgzip"]]
    result = crawl([*urls, f"{o}/ok"], settings={"RETRY_TIMES": 0})
    assert len(result.results) == len(urls) + 1
    assert result.outcome(f"{o}/ok")["ok"]
    assert not result.outcome(f"{o}/c7/rst")["ok"]
    assert not result.outcome(f"{o}/c7/empty")["ok"]
    assert not result.outcome(f"{o}/c7/truncgzip")["ok"]
    kinds = ("malformed response: ", "data loss: ", "connection: ", "timeout: ", "too large: ")
    for url in urls:
        outcome = result.outcome(url)
        assert outcome["ok"] or outcome["reason"].startswith(kinds), outcome
    assert "non-integer status code" in result.outcome(f"{o}/c7/badstatus")["reason"]
    _clean(result)


@pytest.mark.parametrize(
    ("kind", "media_fetched"),
    [
        ("garbage", True),
        ("empty", True),
        ("404", True),
        ("500", True),
        ("timeout", True),
        ("huge", True),
        ("offsite", True),
        ("disallow", False),
    ],
)
def test_c9_robots_txt_policy(site: Site, crawl: Any, kind: str, media_fetched: bool) -> None:
    """Scrapy's policy: unreadable or failed robots.txt allows all; Disallow is obeyed."""
    from hostile.routes import robots_server

    srv = robots_server(kind, site.server.port).start()
    try:
        result = crawl([f"{srv.origin}/page", f"{srv.origin}/media/x.jpg"])
        assert result.outcome(f"{srv.origin}/page")["ok"]
        assert result.outcome(f"{srv.origin}/media/x.jpg")["ok"] is media_fetched
        assert (srv.hits["/media/x.jpg"] == 1) is media_fetched
        if not media_fetched:
            assert "robots.txt" in result.outcome(f"{srv.origin}/media/x.jpg")["error"]
        assert site.tripwire_connects() == 0
        _clean(result)
    finally:
        srv.stop()
