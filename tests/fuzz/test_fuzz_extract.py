"""Fuzz the HTML media extractor: arbitrary bytes, and pages built from hostile tags, attributes,
URLs, encodings and CSS. It never raises, and only bounded http(s) URLs come out (S5, C8)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from fuzzprofile import profile
from hypothesis import given
from hypothesis import strategies as st

from crawler.extract import MAX_MEDIA_PER_PAGE, MAX_URL_CHARS, MediaRef, extract_media, extract_page

pytestmark = pytest.mark.fuzz

BASE = "http://site.test/dir/page.html"
URLS = st.one_of(
    st.sampled_from(
        [
            "file:///etc/passwd",
            "data:image/png;base64,iVBORw0KGgo=",
            "javascript:alert(1)",
            "ftp://site.test/a.jpg",
            "gopher://x/",
            "s3://bucket/key.jpg",
            "//other.test/a.png",
            "../../../a.jpg",
            "http://[::1]/a.png",
            "http://user@127.0.0.1:80@example.test/a.jpg",
            "http://xn--nxasmq6b.test/a.jpg",
            "HTTP://SITE.TEST/UP.JPG",
            "http://site.test/" + "a" * 10_000 + ".jpg",
            "http://[zz::1]/x.jpg",
            "http://site.test:99999/a.jpg",
            " \t\nhttp://site.test/ws.png\x00",
            "a.mp3 1x, b.mp3 2x, , ,",
        ]
    ),
    st.text(max_size=80),
    st.builds(lambda p: "http://site.test/" + p, st.text(max_size=40)),
)
ATTRS = st.sampled_from(
    [
        "src",
        "srcset",
        "data-src",
        "data-srcset",
        "href",
        "content",
        "style",
        "poster",
        "data-bg",
        "property",
    ]
)
TAGS = st.sampled_from(
    [
        "img",
        "source",
        "picture",
        "audio",
        "video",
        "a",
        "link",
        "meta",
        "div",
        "base",
        "iframe",
        "script",
        "style",
    ]
)


def _attr(name: str, value: str) -> str:
    if name == "style":
        value = f"background-image: url({value})"
    return f'{name}="{value.replace(chr(34), "&quot;")}"'


@st.composite
def pages(draw: st.DrawFn) -> bytes:
    parts = []
    for _ in range(draw(st.integers(0, 12))):
        tag = draw(TAGS)
        attrs = " ".join(_attr(a, draw(URLS)) for a in draw(st.lists(ATTRS, max_size=3)))
        inner = draw(
            st.sampled_from(["", "x", "<b>", "@import url(x.css); a{background:url(y.png)}"])
        )
        close = draw(st.booleans())
        parts.append(f"<{tag} {attrs}>{inner}" + (f"</{tag}>" if close else ""))
    if draw(st.booleans()):
        parts.append(
            '<script type="application/ld+json">' + draw(st.text(max_size=200)) + "</script>"
        )
    html = "<html><head>" + "".join(parts) + "</head></html>"
    encoding = draw(st.sampled_from(["utf-8", "utf-16", "gb18030", "latin-1", "cp1252"]))
    data = html.encode(encoding, "replace")
    if draw(st.booleans()):
        data = draw(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b""])) + data
    return data


def check(found: list[MediaRef]) -> None:
    assert len(found) <= MAX_MEDIA_PER_PAGE
    for ref in found:
        assert isinstance(ref, MediaRef)
        parts = urlsplit(ref.url)
        assert parts.scheme in ("http", "https"), ref
        assert parts.hostname, ref
        assert len(ref.url) <= MAX_URL_CHARS
        assert "\x00" not in ref.url


@profile()
@given(
    data=st.binary(max_size=4096),
    charset=st.sampled_from([None, "utf-8", "bogus", "utf-16", "x" * 300]),
)
def test_arbitrary_bytes(data: bytes, charset: str | None) -> None:
    headers = {"Content-Type": f"text/html; charset={charset}"} if charset else {}
    check(extract_media(data, BASE, headers))


@profile()
@given(html=pages(), base=st.sampled_from([BASE, "https://site.test/", "http://site.test"]))
def test_hostile_pages(html: bytes, base: str) -> None:
    check(extract_media(html, base))
    page = extract_page(html, base)
    for link in page.links:
        assert urlsplit(link).scheme in ("http", "https")


@profile(scale=0.5)
@given(text=st.text(max_size=3000))
def test_arbitrary_text(text: str) -> None:
    check(extract_media(text, BASE))
