"""Finding what a person would see on a page: media URLs and followable links, from raw HTML.

Pure functions (no network, no database): the spider calls `extract_page` once per HTML page.
Decoding follows the browser order (BOM, then the Content-Type charset, then <meta charset>),
as Scrapy's `TextResponse` does, via w3lib. Every URL is resolved against `<base href>` (itself
resolved against the page URL) and only http(s) URLs come out: data:, javascript:, file:, ftp:
and the like are dropped here, before anything could fetch them. Arbitrary bytes never raise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import lxml.etree  # type: ignore[import-untyped]
import lxml.html  # type: ignore[import-untyped]
from w3lib.encoding import html_to_unicode

KindHint = Literal["image", "audio"] | None

MAX_URL_CHARS = 4096
MAX_LINKS_PER_PAGE = 2000
MAX_MEDIA_PER_PAGE = 500
MAX_JSONLD_CHARS = 1_000_000

IMAGE_EXTENSIONS = frozenset(
    {"jpg", "jpeg", "jpe", "png", "gif", "webp", "avif", "bmp", "tif", "tiff", "heic", "heif"}
)
AUDIO_EXTENSIONS = frozenset(
    {"mp3", "wav", "flac", "ogg", "oga", "opus", "m4a", "aac", "weba", "aif", "aiff"}
)
LAZY_SRC_ATTRS = (
    "data-src",
    "data-original",
    "data-lazy-src",
    "data-lazy",
    "data-url",
    "data-full-src",
    "data-hi-res-src",
    "data-large-file",
    "data-orig-file",
    "data-echo",
    "data-bg",
    "data-bg-src",
    "data-background",
    "data-background-image",
)
LAZY_SRCSET_ATTRS = ("data-srcset", "data-lazy-srcset", "data-original-set")
META_IMAGE = frozenset(
    {"og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src"}
)
META_AUDIO = frozenset({"og:audio", "og:audio:url", "og:audio:secure_url", "twitter:player:stream"})
JSONLD_IMAGE_KEYS = frozenset({"image", "thumbnailUrl", "thumbnail", "photo", "primaryImageOfPage"})
JSONLD_AUDIO_KEYS = frozenset({"audio"})
JSONLD_AUDIO_TYPES = frozenset({"AudioObject", "MusicRecording", "PodcastEpisode"})

_CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)\s'"]*))\s*\)""", re.IGNORECASE)
_CSS_FONT_FACE = re.compile(r"@font-face\s*{[^}]*}", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"@import[^;]*;", re.IGNORECASE)
_SRCSET_CANDIDATE = re.compile(r"\s*([^\s,][^\s]*?)(?:\s+([\d.]+)([wxh]))?\s*(?:,|$)")


@dataclass(frozen=True)
class MediaRef:
    """A media URL found on a page: how it was found and what kind it probably is."""

    url: str
    kind_hint: KindHint
    source: str  # "img", "srcset", "picture", "css", "og:image", "json-ld", "link", ...


@dataclass
class Page:
    """What `extract_page` found: followable links and media, in document order, deduplicated."""

    links: list[str] = field(default_factory=list)
    media: list[MediaRef] = field(default_factory=list)
    base_url: str = ""
    text_encoding: str = "utf-8"


def kind_from_extension(url: str) -> KindHint:
    """The media kind an URL's path extension suggests (a hint only: content is sniffed)."""
    path = urlsplit(url).path.lower()
    ext = path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else ""
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in AUDIO_EXTENSIONS:
        return "audio"
    return None


def _header(headers: Mapping[Any, Any], name: str) -> str | None:
    for key, value in headers.items():
        k = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        if k.lower() == name:
            if isinstance(value, list | tuple):
                value = value[0] if value else b""
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return None


def decode_html(html: bytes | str, headers: Mapping[Any, Any]) -> tuple[str, str]:
    """(text, encoding): BOM first, then the header charset, then <meta>, then a guess."""
    if isinstance(html, str):
        return html, "utf-8"
    encoding, text = html_to_unicode(_header(headers, "content-type"), html)
    return text, encoding


def parse_srcset(value: str) -> str | None:
    """The largest candidate of a srcset (by width, else density); the last one on a tie."""
    best: tuple[float, int, str] | None = None
    for index, m in enumerate(_SRCSET_CANDIDATE.finditer(value or "")):
        url = m.group(1).rstrip(",")
        if not url:
            continue
        try:
            size = float(m.group(2)) if m.group(2) else 1.0
        except ValueError:
            size = 1.0
        # A 'w' descriptor outranks any density: widths are pixels, densities ~1-4.
        score = size * (1_000_000 if m.group(3) == "w" else 1)
        if best is None or (score, index) >= best[:2]:
            best = (score, index, url)
    return best[2] if best else None


def css_urls(css: str) -> Iterator[str]:
    """url(...) references of a stylesheet or style attribute, minus fonts and imports."""
    css = _CSS_IMPORT.sub("", _CSS_FONT_FACE.sub("", css))
    for m in _CSS_URL.finditer(css):
        url = next((g for g in m.groups() if g is not None), "").strip()
        if url:
            yield url


def _jsonld_urls(
    node: Any, key: str | None = None, depth: int = 0
) -> Iterator[tuple[str, KindHint]]:
    if depth > 20:
        return
    if isinstance(node, str):
        if key in JSONLD_IMAGE_KEYS:
            yield node, "image"
        elif key in JSONLD_AUDIO_KEYS:
            yield node, "audio"
        return
    if isinstance(node, list):
        for item in node[:200]:
            yield from _jsonld_urls(item, key, depth + 1)
        return
    if not isinstance(node, dict):
        return
    types = node.get("@type")
    type_set = (
        {types} if isinstance(types, str) else set(types) if isinstance(types, list) else set()
    )
    type_set = {t for t in type_set if isinstance(t, str)}
    hint: KindHint = None
    if type_set & JSONLD_AUDIO_TYPES or key in JSONLD_AUDIO_KEYS:
        hint = "audio"
    elif "ImageObject" in type_set or key in JSONLD_IMAGE_KEYS:
        hint = "image"
    if hint is not None:
        for attr in ("contentUrl", "url", "embedUrl"):
            value = node.get(attr)
            if isinstance(value, str):
                yield value, hint
                break
    for k, v in list(node.items())[:500]:
        if isinstance(k, str) and k not in ("contentUrl", "url", "embedUrl", "@id", "@context"):
            yield from _jsonld_urls(v, k, depth + 1)


def _jsonld(text: str) -> Iterator[tuple[str, KindHint]]:
    if len(text) > MAX_JSONLD_CHARS:
        return
    try:
        data = json.loads(text.strip().removeprefix("<!--").removesuffix("-->"))
    except (ValueError, RecursionError):
        return
    try:
        yield from _jsonld_urls(data)
    except RecursionError:
        return


class _Collector:
    def __init__(self, base: str) -> None:
        self.base = base
        self.links: dict[str, None] = {}
        self.media: dict[str, MediaRef] = {}

    def resolve(self, raw: str | None) -> str | None:
        if raw is None:
            return None
        raw = raw.strip().replace("\n", "").replace("\r", "").replace("\t", "")
        if not raw or len(raw) > MAX_URL_CHARS or raw.startswith("#"):
            return None
        scheme = raw.split(":", 1)[0].lower() if ":" in raw.split("/", 1)[0] else ""
        if scheme and scheme not in ("http", "https"):
            return None
        try:
            url = urljoin(self.base, raw)
            parts = urlsplit(url)
            _ = parts.port  # raises ValueError on a bad port
        except ValueError:
            return None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        return url.split("#", 1)[0]

    def add_media(self, raw: str | None, hint: KindHint, source: str) -> None:
        url = self.resolve(raw)
        if url is None or url in self.media or len(self.media) >= MAX_MEDIA_PER_PAGE:
            return
        self.media[url] = MediaRef(url, hint or kind_from_extension(url), source)

    def add_link(self, raw: str | None, source: str = "a") -> None:
        url = self.resolve(raw)
        if url is None:
            return
        hint = kind_from_extension(url)
        if hint is not None:
            self.add_media(url, hint, "link")
        elif len(self.links) < MAX_LINKS_PER_PAGE:
            self.links.setdefault(url, None)


def _elements(doc: Any) -> Iterable[Any]:
    for el in doc.iter():
        if isinstance(el.tag, str):
            yield el


def _scan(doc: Any, c: _Collector) -> None:
    for el in _elements(doc):
        tag = el.tag.lower().rsplit("}", 1)[-1]
        attrs = el.attrib
        style = attrs.get("style")
        if style and "url(" in style.lower():
            for u in css_urls(style):
                c.add_media(u, "image", "css-inline")
        for name in LAZY_SRC_ATTRS:
            if name in attrs:
                c.add_media(
                    attrs[name], "image" if tag not in ("audio", "source") else None, "lazy"
                )
        for name in LAZY_SRCSET_ATTRS:
            if name in attrs:
                c.add_media(parse_srcset(attrs[name]), "image", "lazy-srcset")
        if tag == "img":
            if "srcset" in attrs:
                c.add_media(parse_srcset(attrs["srcset"]), "image", "srcset")
            c.add_media(attrs.get("src"), "image", "img")
        elif tag == "source":
            parent = el.getparent()
            ptag = parent.tag.lower() if parent is not None and isinstance(parent.tag, str) else ""
            hint: KindHint = "audio" if ptag == "audio" else "image" if ptag == "picture" else None
            if "srcset" in attrs:
                c.add_media(parse_srcset(attrs["srcset"]), hint or "image", "picture")
            if "src" in attrs:
                c.add_media(attrs.get("src"), hint, ptag or "source")
        elif tag == "audio":
            c.add_media(attrs.get("src"), "audio", "audio")
        elif tag == "video":
            c.add_media(attrs.get("poster"), "image", "video-poster")
            c.add_media(attrs.get("src"), None, "video")
        elif tag == "input" and attrs.get("type", "").lower() == "image":
            c.add_media(attrs.get("src"), "image", "img")
        elif tag == "meta":
            prop = (attrs.get("property") or attrs.get("name") or "").strip().lower()
            if prop in META_IMAGE:
                c.add_media(attrs.get("content"), "image", prop)
            elif prop in META_AUDIO:
                c.add_media(attrs.get("content"), "audio", prop)
        elif tag == "link":
            rel = (attrs.get("rel") or "").lower().split()
            if "image_src" in rel or (
                "preload" in rel and (attrs.get("as") or "").lower() == "image"
            ):
                c.add_media(attrs.get("href"), "image", "link-rel")
        elif tag == "style":
            for u in css_urls(el.text or ""):
                c.add_media(u, "image", "css")
        elif tag == "script" and (attrs.get("type") or "").lower().strip() == "application/ld+json":
            for u, h in _jsonld(el.text or ""):
                c.add_media(u, h, "json-ld")
        elif tag in ("a", "area"):
            c.add_link(attrs.get("href"))
        elif tag in ("iframe", "frame"):
            c.add_link(attrs.get("src"), "frame")
        elif tag == "body" and "background" in attrs:
            c.add_media(attrs.get("background"), "image", "background")


def _parse(text: str) -> Any:
    text = text.replace("\x00", "")
    if not text.strip():
        return None
    try:
        parser = lxml.html.HTMLParser(recover=True, huge_tree=False, no_network=True)
        return lxml.html.document_fromstring(text, parser=parser)
    except (lxml.etree.ParserError, ValueError, TypeError):
        return None


def extract_page(
    html: bytes | str, base_url: str, headers: Mapping[Any, Any] | None = None
) -> Page:
    """Links to follow and media to fetch on one page; never raises on arbitrary HTML."""
    text, encoding = decode_html(html, headers or {})
    page = Page(base_url=base_url, text_encoding=encoding)
    doc = _parse(text)
    if doc is None:
        return page
    base = base_url
    for el in doc.iter("base"):
        href = el.get("href")
        if href:
            resolved = _Collector(base_url).resolve(href)
            if resolved:
                base = resolved
        break
    collector = _Collector(base)
    _scan(doc, collector)
    page.base_url = base
    page.links = list(collector.links)
    page.media = list(collector.media.values())
    return page


def extract_media(
    html: bytes | str, base_url: str, headers: Mapping[Any, Any] | None = None
) -> list[MediaRef]:
    """Every media URL a person would see on the page (see the module docstring)."""
    return extract_page(html, base_url, headers).media
