"""crawler.extract: every way a page embeds media resolves to the golden list (HOSTILE C8), and
arbitrary bytes never raise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.extract import MediaRef, extract_media, extract_page, parse_srcset

PAGE = "http://site.test/dir/page.html"

HOSTILE_HTML = """\ufeff<!doctype html><html><head>
<meta charset="iso-8859-1"><base href="http://cdn.other.test/assets/">
<meta property="og:image" content="og.jpg"><meta name="twitter:image" content="/tw.png">
<meta property="og:audio" content="theme.mp3">
<link rel="image_src" href="linked.jpg">
<style>.hero{background-image:url("hero.webp")} @font-face{src:url(font.woff2)}
@import url(more.css);</style>
<script type="application/ld+json">{"@context":"https://schema.org","@type":"MusicRecording",
"audio":{"@type":"AudioObject","contentUrl":"/audio/track.flac"},
"image":["ld1.jpg",{"@type":"ImageObject","url":"ld2.jpg"}]}</script>
<script type="application/ld+json">{not json</script>
</head><body>
<img src="a.jpg" srcset="s-small.jpg 320w, s-big.jpg 1280w, s-mid.jpg 640w">
<img srcset="d1.jpg 1x, d3.jpg 3x, d2.jpg 2x">
<picture><source type="image/avif" srcset="pic.avif"><img src="pic.jpg"></picture>
<div style="background-image: url('inline.png')">caf\xe9 unclosed <p><b>
<img data-src="lazy1.jpg" src="data:image/gif;base64,R0lGOD">
<img data-original="lazy2.jpg"><div data-bg="lazy-bg.jpg"></div>
<img data-srcset="ls1.jpg 100w, ls2.jpg 900w">
<audio src="song.ogg"></audio><audio><source src="alt.mp3" type="audio/mpeg"></audio>
<video poster="poster.jpg"><source src="clip.mp4"></video>
<a href="photo.JPEG">photo</a><a href="next.html#frag">next</a><a href="javascript:alert(1)">x</a>
<a href="file:///etc/passwd">f</a><a href="ftp://ftp.test/x.jpg">ftp</a>
<img src="  /spaced/x%20y.png  "><img src="//proto.test/rel.png"><img src="HTTPS://UP.test/u.png">
<iframe src="frame.html"></iframe>
"""

GOLDEN = [
    ("http://cdn.other.test/assets/og.jpg", "image"),
    ("http://cdn.other.test/tw.png", "image"),
    ("http://cdn.other.test/assets/theme.mp3", "audio"),
    ("http://cdn.other.test/assets/linked.jpg", "image"),
    ("http://cdn.other.test/assets/hero.webp", "image"),
    ("http://cdn.other.test/audio/track.flac", "audio"),
    ("http://cdn.other.test/assets/ld1.jpg", "image"),
    ("http://cdn.other.test/assets/ld2.jpg", "image"),
    ("http://cdn.other.test/assets/s-big.jpg", "image"),
    ("http://cdn.other.test/assets/a.jpg", "image"),
    ("http://cdn.other.test/assets/d3.jpg", "image"),
    ("http://cdn.other.test/assets/pic.avif", "image"),
    ("http://cdn.other.test/assets/pic.jpg", "image"),
    ("http://cdn.other.test/assets/inline.png", "image"),
    ("http://cdn.other.test/assets/lazy1.jpg", "image"),
    ("http://cdn.other.test/assets/lazy2.jpg", "image"),
    ("http://cdn.other.test/assets/lazy-bg.jpg", "image"),
    ("http://cdn.other.test/assets/ls2.jpg", "image"),
    ("http://cdn.other.test/assets/song.ogg", "audio"),
    ("http://cdn.other.test/assets/alt.mp3", "audio"),
    ("http://cdn.other.test/assets/poster.jpg", "image"),
    ("http://cdn.other.test/assets/clip.mp4", None),
    ("http://cdn.other.test/assets/photo.JPEG", "image"),
    ("http://cdn.other.test/spaced/x%20y.png", "image"),
    ("http://proto.test/rel.png", "image"),
    ("HTTPS://UP.test/u.png", "image"),
]


def test_golden_media_list_from_hostile_html() -> None:
    body = HOSTILE_HTML.encode("latin-1", errors="replace")
    headers = {b"Content-Type": [b"text/html; charset=utf-8"]}  # header disagrees with meta
    page = extract_page(body, PAGE, headers)
    assert [(m.url, m.kind_hint) for m in page.media] == GOLDEN
    assert page.links == [
        "http://cdn.other.test/assets/next.html",
        "http://cdn.other.test/assets/frame.html",
    ]


def test_no_dangerous_scheme_ever_comes_out() -> None:
    html = (
        '<img src="file:///etc/passwd"><img src="data:image/png;base64,AAAA">'
        '<img src="javascript:x"><a href="gopher://x/"><img src="s3://bucket/k.jpg">'
        '<div style="background:url(ftp://x/y.png)"></div><img src="http://[::1">'
        '<img src="http://h.test:99999/x.png">'
    )
    assert extract_media(html, PAGE, {}) == []


def test_srcset_picks_largest() -> None:
    assert parse_srcset("a.jpg 100w, b.jpg 900w, c.jpg 300w") == "b.jpg"
    assert parse_srcset("a.jpg, b.jpg 2x") == "b.jpg"
    assert parse_srcset("") is None
    assert parse_srcset("only.jpg") == "only.jpg"


def test_headers_charset_used_without_meta() -> None:
    body = '<img src="caf\u00e9.jpg">'.encode("cp1252")
    media = extract_media(body, PAGE, {"content-type": "text/html; charset=windows-1252"})
    assert media == [MediaRef("http://site.test/dir/caf\u00e9.jpg", "image", "img")]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    page = extract_page(data, PAGE, {"Content-Type": "text/html"})
    assert all(m.url.lower().startswith(("http://", "https://")) for m in page.media)


HTML_BITS = st.sampled_from(
    [
        "<img src=",
        "<a href=",
        "srcset=",
        "url(",
        '"',
        "'",
        ">",
        "<style>",
        "</style>",
        "<base href=",
        '<script type="application/ld+json">',
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "data-src=",
        "x.jpg",
        "javascript:",
        "//",
        "\x00",
        "\ufeff",
        "<picture><source srcset=",
        "@type",
        "contentUrl",
        " 2x",
        " 100w",
        "http://",
        "<meta property=og:image content=",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(HTML_BITS, st.text(max_size=12)), max_size=60))
def test_arbitrary_html_never_raises(parts: list[str]) -> None:
    page = extract_page("".join(parts), PAGE, {})
    assert all(m.url.lower().startswith(("http://", "https://")) for m in page.media)
