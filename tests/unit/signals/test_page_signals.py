"""crawler.signals, the pure parts: AI crawler rules from robots.txt (Protego), ai.txt, TDMRep
rules, and what one page's headers and HTML say."""

from __future__ import annotations

import pytest

from crawler.signals import AI_AGENTS, ai_crawler_rules, ai_txt_refuses, page_signals, tdmrep_rule

ROBOTS = """\
User-agent: GPTBot
Disallow: /

User-agent: CCBot
Disallow: /private/

User-agent: Google-Extended
Disallow: /*.jpg$

User-agent: ClaudeBot
Disallow: /
Allow: /public/

User-agent: *
Disallow: /admin
"""


def test_ai_crawler_rules() -> None:
    rules = ai_crawler_rules(ROBOTS)
    assert set(rules) == set(AI_AGENTS)
    assert rules["GPTBot"] == "disallowed"
    assert rules["CCBot"] == "partial"
    assert rules["Google-Extended"] == "partial"
    assert rules["ClaudeBot"] == "partial"  # refused at the root, allowed under /public/
    assert rules["PerplexityBot"] == "partial"  # the * group's /admin applies to it
    assert ai_crawler_rules("User-agent: *\nDisallow: /\n")["Bytespider"] == "disallowed"


@pytest.mark.parametrize(
    "robots",
    [
        None,
        "",
        "garbage \x00 not robots",
        "User-agent: *\nAllow: /\n",
        "<html>404</html>",
        "\ufeff",
    ],
)
def test_missing_or_garbage_robots_allows_all(robots: str | None) -> None:
    assert set(ai_crawler_rules(robots).values()) == {"allowed"}


def test_agent_specific_group_overrides_star() -> None:
    rules = ai_crawler_rules("User-agent: *\nDisallow: /\n\nUser-agent: CCBot\nAllow: /\n")
    assert rules["CCBot"] == "allowed"
    assert rules["GPTBot"] == "disallowed"


@pytest.mark.parametrize(
    ("ai_txt", "expected"),
    [
        (None, False),
        ("", False),
        ("User-Agent: *\nAllow: /\n", False),
        ("User-Agent: *\nDisallow: /\n", True),
        ("User-Agent: *\nDisallow: *.jpg\nDisallow: *.png\n", True),
        ("# comments only\n", False),
    ],
)
def test_ai_txt(ai_txt: str | None, expected: bool) -> None:
    assert ai_txt_refuses(ai_txt) is expected


TDMREP = [
    {"location": "/open/*", "tdm-reservation": 0},
    {"location": "/gallery/*.jpg$", "tdm-reservation": 1, "tdm-policy": "https://x.example/p.json"},
    {"location": "/broken", "tdm-reservation": 7},
    {"location": "/*", "tdm-reservation": 1},
]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/open/page", (False, None)),
        ("/gallery/a.jpg", (True, "https://x.example/p.json")),
        ("/gallery/a.jpg.html", (True, None)),  # $ anchors: falls through to /*
        ("/broken", None),  # a protocol error leaves the reservation unset
        ("/", (True, None)),
    ],
)
def test_tdmrep_rules(path: str, expected: tuple[bool, str | None] | None) -> None:
    assert tdmrep_rule(TDMREP, path) == expected


@pytest.mark.parametrize("doc", [None, {}, "x", [1, "a", {"location": 5}], [{"no": "location"}]])
def test_tdmrep_garbage(doc: object) -> None:
    assert tdmrep_rule(doc, "/") is None


def test_page_with_every_signal() -> None:
    html = b"""<html><head>
      <meta name="tdm-reservation" content="1">
      <meta name="tdm-policy" content="/policy.json">
      <meta name="robots" content="index, noimageai">
      <link rel="license" href="/licence.html">
    </head><body>
      <a rel="nofollow license" href="https://creativecommons.org/licenses/by-nc/4.0/">CC</a>
      <a href="https://creativecommons.org/publicdomain/zero/1.0/">CC0 deed</a>
      <span property="cc:license" resource="https://example.org/rdfa-licence"></span>
      <a href="https://creativecommons.org/about/">not a licence</a>
      <a rel="license" href="javascript:alert(1)">bad</a>
      <a rel="license" href="/licence.html">duplicate</a>
    </body></html>"""
    got = page_signals("https://site.example/a/page.html", {"Content-Type": "text/html"}, html)
    assert got == {
        "tdm_reservation": True,
        "tdm_policy": "https://site.example/policy.json",
        "noai": True,
        "licence_urls": [
            "https://site.example/licence.html",
            "https://creativecommons.org/licenses/by-nc/4.0/",
            "https://creativecommons.org/publicdomain/zero/1.0/",
            "https://example.org/rdfa-licence",
        ],
    }


def test_headers_win_over_meta() -> None:
    html = b'<meta name="tdm-reservation" content="1"><meta name="tdm-policy" content="/m">'
    headers = {"TDM-Reservation": "0", "X-Robots-Tag": "GPTBot: noai"}
    got = page_signals("http://s.example/", headers, html)
    assert (got["tdm_reservation"], got["tdm_policy"], got["noai"]) == (False, None, True)
    headers = {"tdm-reservation": "1", "tdm-policy": "https://s.example/p"}
    assert page_signals("http://s.example/", headers, b"")["tdm_policy"] == "https://s.example/p"


def test_page_without_signals() -> None:
    got = page_signals("http://s.example/", {}, b"<html><body><a href='/x'>x</a></body></html>")
    assert got == {"tdm_reservation": None, "tdm_policy": None, "noai": False, "licence_urls": []}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x00\x00\x00",
        b"\xff\xfe\xfa invalid utf-8 <meta name=robots content=noai",
        b"<html>" + b"<div>" * 50_000,
        b'<meta name="tdm-reservation" content="maybe">',
        "<meta name='robots' content='noai'>".encode("utf-16"),
    ],
)
def test_hostile_html_never_raises(body: bytes) -> None:
    got = page_signals("http://s.example/", {"content-type": "text/html; charset=gb18030"}, body)
    assert got["tdm_reservation"] is None
    assert isinstance(got["noai"], bool)
