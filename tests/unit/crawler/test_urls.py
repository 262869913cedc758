"""URL canonicalization and trap detection (HOSTILE.md C2, C3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.provisional import urls

from crawler.urls import MAX_URL_LENGTH, canonicalize, trap_reason, url_key

SAME = [
    ("HTTP://Example.COM:80/a/../b?b=2&a=1#frag", "http://example.com/b?a=1&b=2"),
    ("http://example.com./x", "http://example.com/x"),
    ("https://example.com:443", "https://example.com/"),
    ("http://bücher.de/ä", "http://xn--bcher-kva.de/%C3%A4"),
    ("http://example.com/p;jsessionid=0AB12?x=1", "http://example.com/p?x=1"),
    ("http://example.com/p;JSESSIONID=0AB12", "http://example.com/p"),
    ("http://example.com/?PHPSESSID=abc&page=2", "http://example.com/?page=2"),
    ("http://example.com/?sid=1&sessionid=2&ASPSESSIONIDQQ=3&q=x", "http://example.com/?q=x"),
    ("http://[::1]:80/", "http://[::1]/"),
    ("http://example.com:8080/", "http://example.com:8080/"),
]


@pytest.mark.parametrize(("url", "expected"), SAME)
def test_canonical_spelling(url: str, expected: str) -> None:
    assert canonicalize(url) == expected


def test_session_links_name_one_page() -> None:
    """C2: a per-request session id on every link must not make pages look new."""
    keys = {url_key(f"http://example.com/page;jsessionid={n}?sid={n}") for n in range(50)}
    assert keys == {url_key("http://example.com/page")}
    assert len(url_key("http://example.com/")) == 64


@given(urls())
def test_canonicalize_is_idempotent(url: str) -> None:
    once = canonicalize(url)
    assert canonicalize(once) == once


@given(urls(), st.sampled_from(["jsessionid", "PHPSESSID", "sid", "sessionid"]), st.text("0123abc"))
def test_session_parameter_never_changes_the_key(url: str, name: str, value: str) -> None:
    sep = "&" if "?" in url.split("#")[0] else "?"
    base = url.split("#")[0]
    assert url_key(f"{base}{sep}{name}={value}") == url_key(base)


@given(urls())
def test_canonical_has_no_fragment_and_lower_host(url: str) -> None:
    out = canonicalize(url)
    assert "#" not in out
    host = out.split("://", 1)[1].split("/", 1)[0].rpartition("@")[2]
    assert host == host.lower()
    assert not host.split(":")[0].endswith(".")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://example.com/" + "x" * MAX_URL_LENGTH, "longer than"),
        ("http://example.com/a/a/a/", "repeated"),
        ("http://example.com/a/b/a/b/a/b/", "repeated"),
        ("http://example.com/" + "/".join(str(i) for i in range(40)), "path segments"),
        ("http://example.com/?" + "&".join(f"p{i}=1" for i in range(40)), "query parameters"),
    ],
)
def test_traps_are_named(url: str, why: str) -> None:
    reason = trap_reason(url)
    assert reason is not None
    assert why in reason


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/",
        "http://example.com/a/b/a/",
        "http://example.com/2024/01/02/photo.jpg?size=large&crop=1",
        "http://example.com/" + "x" * (MAX_URL_LENGTH - 30),
    ],
)
def test_ordinary_urls_are_not_traps(url: str) -> None:
    assert trap_reason(url) is None
