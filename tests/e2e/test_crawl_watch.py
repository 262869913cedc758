"""`watch add` / `watch list`: options exactly as CONTRACT.md names them, bad input -> exit 2."""

from __future__ import annotations

import pytest


def test_watch_add_and_list(rw_init) -> None:  # type: ignore[no-untyped-def]
    rw = rw_init
    w = rw.ok(
        "watch",
        "add",
        "news",
        "--url",
        "https://Example.org/a",
        "--url",
        "https://b.example/",
        "--max-depth",
        "2",
        "--max-pages",
        "50",
        "--allow-domain",
        "example.org",
        "--allow-domain",
        "B.Example.",
        "--every",
        "6h",
        "--render-js",
        "--ignore-robots",
        "--include",
        r"/photos/",
        "--exclude",
        r"\.pdf$",
    )
    assert w["name"] == "news"
    assert w["urls"] == ["https://Example.org/a", "https://b.example/"]
    assert w["allow_domains"] == ["example.org", "b.example"]
    assert (w["max_depth"], w["max_pages"], w["every_s"], w["cron"]) == (2, 50, 21600, None)
    assert w["render_js"] is True
    assert w["ignore_robots"] is True
    assert (w["include"], w["exclude"]) == (["/photos/"], [r"\.pdf$"])
    c = rw.ok("watch", "add", "nightly", "--url", "http://shop.test/", "--cron", "0 3 * * *")
    assert c["cron"] == "0 3 * * *"
    assert c["every_s"] is None
    assert c["allow_domains"] == ["shop.test"]  # default: the seeds' hosts
    assert (c["max_depth"], c["max_pages"]) == (3, 1000)
    assert [x["name"] for x in rw.ok("watch", "list")] == ["news", "nightly"]
    assert w["rightsholder"] is None  # by default: the default rightsholder's
    owned = rw.ok("watch", "add", "label", "--url", "http://l.test/", "--rightsholder", "Label")
    assert owned["rightsholder"] == "Label"
    assert [x["rightsholder"] for x in rw.ok("watch", "list")] == [None, None, "Label"]


@pytest.mark.parametrize(
    "args",
    [
        ["--url", "http://a.test/", "--every", "6h", "--cron", "0 3 * * *"],
        ["--url", "http://a.test/", "--every", "soon"],
        ["--url", "http://a.test/", "--every", "10s"],
        ["--url", "http://a.test/", "--cron", "61 * * * *"],
        ["--url", "http://a.test/", "--cron", "* * *"],
        ["--url", "not a url"],
        ["--url", "http://a.test/", "--include", "("],
        ["--url", "http://a.test/", "--max-pages", "0"],
        ["--url", "http://a.test/", "--allow-domain", "http://x.test/"],
        ["--url", "http://a.test/", "--every", "400d"],
        ["--url", "http://a.test/", "--rightsholder", ""],
        ["--url", "http://a.test/", "--rightsholder", "tab\there"],
    ],
)
def test_watch_add_refuses_bad_input(rw_init, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    res = rw_init("watch", "add", "w", *args)
    assert res.code == 2, res.err
    assert res.err.startswith("rightswatch: error:")
    assert len(res.err.strip().splitlines()) == 1
    assert rw_init.ok("watch", "list") == []


def test_duplicate_watch_name_is_refused(rw_init) -> None:  # type: ignore[no-untyped-def]
    rw_init.ok("watch", "add", "w", "--url", "http://a.test/")
    res = rw_init("watch", "add", "w", "--url", "http://b.test/")
    assert res.code == 2
    assert "already exists" in res.err


def test_crawl_usage_errors(rw_init) -> None:  # type: ignore[no-untyped-def]
    assert rw_init("crawl").code == 2
    assert rw_init("crawl", "w", "--url", "http://a.test/").code == 2
    res = rw_init("crawl", "nosuchwatch")
    assert res.code == 2
    assert "no watch named" in res.err
