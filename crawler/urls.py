"""URL identity and trap detection: one page is fetched once, however its links spell it.

`canonicalize` is w3lib's `canonicalize_url` (sorted query, percent-encoding, no fragment)
plus what crawl traps need: lower-case punycode host without trailing dot, no default port,
no session parameters (`?PHPSESSID=…`, `;jsessionid=…`). `trap_reason` refuses URLs that only
a trap produces; endless calendars (`?m=N+1`) are bounded by the depth and page caps instead.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, unquote_plus, urlsplit, urlunsplit

import idna
from w3lib.url import canonicalize_url

MAX_URL_LENGTH = 2048
MAX_QUERY_PARAMS = 32
MAX_PATH_SEGMENTS = 32
MAX_SEGMENT_REPEATS = 2

SESSION_PARAMS = frozenset(
    {
        "jsessionid",
        "phpsessid",
        "sid",
        "sessionid",
        "session_id",
        "sessid",
        "cfid",
        "cftoken",
        "zenid",
        "oscsid",
        "aspsessionid",
    }
)
_PATH_SESSION = re.compile(
    r";(?:jsessionid|phpsessid|sid|sessionid|session_id|sessid)=[^/;?#]*", re.IGNORECASE
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_session_param(name: str) -> bool:
    low = name.lower()
    return low in SESSION_PARAMS or low.startswith("aspsessionid")


def _host(host: str) -> str:
    host = host.rstrip(".").lower()
    if host.isascii():
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        return host


def canonical_host(host: str) -> str:
    """Lower case, IDNA (punycode), no trailing dot: how scope and politeness see a host."""
    return _host(host)


def canonicalize(url: str) -> str:
    """The canonical spelling of `url`; equal for URLs that name the same resource."""
    url = _PATH_SESSION.sub("", url)
    parts = urlsplit(canonicalize_url(url, keep_fragments=False))
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else _host(host)
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    if parts.username is not None or parts.password is not None:
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@{netloc}"
    query = "&".join(
        piece
        for piece in parts.query.split("&")
        if piece and not _is_session_param(unquote_plus(piece.partition("=")[0]))
    )
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


def url_key(url: str) -> str:
    """SHA-256 hex of the canonical URL: a fixed-size key for seen-page tables."""
    return hashlib.sha256(canonicalize(url).encode("utf-8")).hexdigest()


def trap_reason(url: str) -> str | None:
    """Why `url` looks like a crawl trap, or None. Caps are the module constants."""
    if len(url) > MAX_URL_LENGTH:
        return f"URL longer than {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "malformed URL"
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) > MAX_PATH_SEGMENTS:
        return f"more than {MAX_PATH_SEGMENTS} path segments"
    counts: dict[str, int] = {}
    for seg in segments:
        counts[seg] = counts.get(seg, 0) + 1
        if counts[seg] > MAX_SEGMENT_REPEATS:
            return f"path segment {seg[:40]!r} repeated more than {MAX_SEGMENT_REPEATS} times"
    if parts.query and len(parse_qsl(parts.query, keep_blank_values=True)) > MAX_QUERY_PARAMS:
        return f"more than {MAX_QUERY_PARAMS} query parameters"
    return None
