"""Rights signals: what a site and its media say about reuse and AI training.

`audit_site` samples a few pages of a site (same host, breadth first) and reports:

* robots.txt rules for the AI crawlers in `AI_AGENTS`, decided by Protego: "disallowed" when the
  agent may fetch nothing, "partial" when some paths are refused, else "allowed" (also when
  robots.txt is missing, unreadable or garbage, as Scrapy does);
* the W3C TDM Reservation Protocol: `/.well-known/tdmrep.json` (first rule whose location matches
  the page path), else the `tdm-reservation` / `tdm-policy` response headers, else the
  `<meta name="tdm-reservation|tdm-policy">` tags, in that order of priority; the start page's
  answer, or the first sampled page that declares one; None when nobody says anything;
* `noai` / `noimageai` in robots meta tags or X-Robots-Tag headers of any sampled page, or an
  `/ai.txt` (robots.txt syntax, Spawning's convention) that refuses anything to every agent;
* licence links: rel="license" (a, link, area), RDFa cc:license, and links to Creative Commons
  licence deeds;
* each image and audio file on the sampled pages (at most `MAX_MEDIA`): its rights metadata and
  C2PA status (`evidence.rightsmeta.read_rights`).

Every request goes through the network policy (crawler.netpolicy): the URL of every redirect hop
is checked, and every new connection goes to an address resolved and checked for it, so a name
that resolves to a refused address is never connected to. Proxies from the environment are
ignored. Bodies are capped (`MAX_PAGE_BYTES`, `MAX_TEXT_BYTES`, the media cap) and every request
has a timeout. `page_signals` is the pure per-page part, for the crawler to record on matches.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx
from protego import Protego

from crawler import netpolicy
from crawler.netpolicy import Blocked, Network

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from evidence.models import Signal

log = logging.getLogger(__name__)

AI_AGENTS = (
    "GPTBot",
    "ChatGPT-User",
    "OAI-SearchBot",
    "CCBot",
    "Google-Extended",
    "ClaudeBot",
    "Claude-Web",
    "anthropic-ai",
    "PerplexityBot",
    "Bytespider",
    "Applebot-Extended",
    "meta-externalagent",
    "FacebookBot",
    "Amazonbot",
    "cohere-ai",
    "Diffbot",
    "ImagesiftBot",
    "Omgilibot",
    "Timpibot",
    "YouBot",
)
MAX_PAGES = 100  # --max-pages is capped here
MAX_MEDIA = 20  # media files read per site
MAX_PAGE_BYTES = 5 * 1024 * 1024
MAX_TEXT_BYTES = 512 * 1024  # robots.txt (Google reads 500 KiB), ai.txt, tdmrep.json
MAX_AUDIT_MEDIA_BYTES = 25 * 1024 * 1024
MAX_REDIRECTS = 5
TIMEOUT_S = 10.0  # connect, and between two reads
TOTAL_S = 60.0  # one whole response
NOAI_TOKENS = frozenset({"noai", "noimageai"})
_CC_DEED = re.compile(r"^https?://(www\.)?creativecommons\.org/(licenses|publicdomain)/", re.I)


_HTTPCORE_ERRORS = (
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ConnectionNotAvailable,
    httpcore.ProxyError,
)


class AuditError(Exception):
    """A site could not be audited at all (its start page was refused or failed); one line."""


# --- fetching through the network policy ------------------------------------------------------


class PolicyBackend(httpcore.SyncBackend):
    """Connects only to addresses the policy accepts, resolved for this very connection."""

    def __init__(self, allowed: Sequence[Network]) -> None:
        self.allowed = tuple(allowed)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = netpolicy.resolve(host, port, self.allowed)  # Blocked if any answer is
        error: Exception | None = None
        for ip in addresses:
            try:
                return super().connect_tcp(ip, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"cannot connect to {host}")


class _Stream(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes], request: httpx.Request) -> None:
        self._stream, self._request = stream, request

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        except httpcore.TimeoutException as exc:
            raise httpx.ReadTimeout(str(exc), request=self._request) from exc
        except _HTTPCORE_ERRORS as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=self._request) from exc

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class PolicyTransport(httpx.BaseTransport):
    """An httpx transport that checks each request's URL and pins connections to checked IPs."""

    def __init__(self, allowed: Sequence[Network]) -> None:
        self.allowed = tuple(allowed)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=4,
            network_backend=PolicyBackend(self.allowed),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        netpolicy.check_url(str(request.url), self.allowed)
        assert isinstance(request.stream, httpx.SyncByteStream)
        req = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            resp = self._pool.handle_request(req)
        except httpcore.TimeoutException as exc:
            raise httpx.TimeoutException(str(exc) or "timed out", request=request) from exc
        except _HTTPCORE_ERRORS as exc:
            raise httpx.TransportError(str(exc) or type(exc).__name__, request=request) from exc
        assert isinstance(resp.stream, Iterable)
        return httpx.Response(
            status_code=resp.status,
            headers=resp.headers,
            stream=_Stream(resp.stream, request),
            extensions=resp.extensions,
        )

    def close(self) -> None:
        self._pool.close()


@dataclass
class Fetched:
    url: str  # after redirects
    status: int
    headers: httpx.Headers
    body: bytes
    truncated: bool = False


class Fetcher:
    """GETs with the policy transport, a redirect cap, a timeout and a body cap."""

    def __init__(
        self, allowed: Sequence[Network], user_agent: str, total_s: float = TOTAL_S
    ) -> None:
        self.total_s = total_s
        self.client = httpx.Client(
            transport=PolicyTransport(allowed),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            timeout=httpx.Timeout(TIMEOUT_S),
            trust_env=False,  # HTTP(S)_PROXY cannot route around the policy
            headers={"User-Agent": user_agent, "Accept-Encoding": "identity"},
        )

    def get(self, url: str, max_bytes: int) -> Fetched:
        """Fetch url; raise Blocked or httpx.HTTPError (with a one-line str) when it fails."""
        deadline = time.monotonic() + self.total_s
        with self.client.stream("GET", url) as resp:
            chunks, size, truncated = [], 0, False
            for chunk in resp.iter_bytes():  # decoded: the cap bounds what a gzip bomb expands to
                size += len(chunk)
                if size > max_bytes:
                    truncated = True
                    break
                if time.monotonic() > deadline:  # a server dripping bytes under the read timeout
                    raise httpx.ReadTimeout(f"no complete answer in {self.total_s:g} s")
                chunks.append(chunk)
            return Fetched(
                str(resp.url), resp.status_code, resp.headers, b"".join(chunks), truncated
            )

    def close(self) -> None:
        self.client.close()


def describe(exc: BaseException) -> str:
    """One line for a failed fetch."""
    if isinstance(exc, Blocked):
        return str(exc)
    if isinstance(exc, httpx.TooManyRedirects):
        return f"redirect limit ({MAX_REDIRECTS}) exceeded"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.HTTPError):
        return " ".join((str(exc) or type(exc).__name__).split())[:200]
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


# --- robots.txt, ai.txt ---------------------------------------------------------------------


def _rule_paths(text: str, directive: str) -> list[str]:
    """Example paths for the rules of one directive, to ask Protego about."""
    paths = []
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == directive:
            path = value.split("#", 1)[0].strip()
            if path:
                sample = path.replace("*", "x").rstrip("$")
                paths.append(sample if sample.startswith("/") else "/" + sample)
    return paths


def ai_crawler_rules(robots_txt: str | None, agents: Sequence[str] = AI_AGENTS) -> dict[str, str]:
    """Per agent: "disallowed" (nothing may be fetched), "partial" or "allowed"."""
    if not robots_txt:
        return dict.fromkeys(agents, "allowed")
    parser = Protego.parse(robots_txt)
    refused_paths = _rule_paths(robots_txt, "disallow")
    allowed_paths = _rule_paths(robots_txt, "allow")
    out = {}
    for agent in agents:
        if not parser.can_fetch("/", agent):
            some_allowed = any(parser.can_fetch(p, agent) for p in allowed_paths)
            out[agent] = "partial" if some_allowed else "disallowed"
        elif any(not parser.can_fetch(p, agent) for p in refused_paths):
            out[agent] = "partial"
        else:
            out[agent] = "allowed"
    return out


def ai_txt_refuses(ai_txt: str | None) -> bool:
    """True when an ai.txt refuses anything (a path or file type) to every AI agent."""
    if not ai_txt:
        return False
    parser = Protego.parse(ai_txt)
    samples = [*_rule_paths(ai_txt, "disallow"), "/", "/x.jpg", "/x.png", "/x.mp3"]
    return any(not parser.can_fetch(p, "rightswatch-ai-txt-check") for p in samples)


# --- TDMRep ---------------------------------------------------------------------------------


def _location_regex(location: str) -> re.Pattern[str]:
    anchored = location.endswith("$")
    body = re.escape(location.rstrip("$")).replace(r"\*", ".*")
    return re.compile(body + ("$" if anchored else ""))


def tdmrep_rule(doc: Any, path: str) -> tuple[bool, str | None] | None:
    """(reservation, policy) of the first rule in a tdmrep.json matching path; None if none."""
    if not isinstance(doc, list):
        return None
    for rule in doc[:1000]:
        if not isinstance(rule, dict) or not isinstance(rule.get("location"), str):
            continue
        location = rule["location"]
        if not location.startswith("/"):
            location = "/" + location
        if _location_regex(location[:500]).match(path):
            reservation = rule.get("tdm-reservation")
            if reservation not in (0, 1, "0", "1"):
                return None  # a protocol error: the reservation is unset
            policy = rule.get("tdm-policy")
            return str(reservation) == "1", policy[:2000] if isinstance(policy, str) else None
    return None


# --- one page -------------------------------------------------------------------------------


def _tokens(value: str) -> set[str]:
    return {t for t in re.split(r"[\s,:;]+", value.lower()) if t}


def _parse_html(body: bytes | str, headers: Mapping[str, str]) -> Any:
    import lxml.etree  # type: ignore[import-untyped]
    import lxml.html  # type: ignore[import-untyped]

    from crawler.extract import decode_html

    text, _ = decode_html(body, headers) if isinstance(body, bytes) else (body, "utf-8")
    text = text.replace("\x00", "")
    if not text.strip():
        return None
    try:
        parser = lxml.html.HTMLParser(recover=True, huge_tree=False, no_network=True)
        return lxml.html.document_fromstring(text, parser=parser)
    except (lxml.etree.ParserError, ValueError, TypeError):
        return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def page_signals(url: str, headers: Mapping[str, str], body: bytes | str) -> dict[str, Any]:
    """What one page's headers and HTML say: TDMRep header/meta, noai, licence links.

    Pure and safe on any input. `tdm_reservation` is None when the page declares nothing.
    """
    out: dict[str, Any] = {
        "tdm_reservation": None,
        "tdm_policy": None,
        "noai": False,
        "licence_urls": [],
    }
    reservation = _header(headers, "tdm-reservation")
    if reservation is not None and reservation.strip() in ("0", "1"):
        out["tdm_reservation"] = reservation.strip() == "1"
        out["tdm_policy"] = _http_url(_header(headers, "tdm-policy"), url)
    robots_header = _header(headers, "x-robots-tag") or ""
    if _tokens(robots_header) & NOAI_TOKENS:
        out["noai"] = True
    doc = _parse_html(body, headers)
    if doc is None:
        return out
    base = url
    for el in doc.iter("base"):
        base = _http_url(el.get("href"), url) or url
        break
    meta_tdm: dict[str, str] = {}
    robot_names = {"robots", *(a.lower() for a in AI_AGENTS)}
    for el in doc.iter("meta"):
        name = (el.get("name") or "").strip().lower()
        content = el.get("content") or ""
        if name in ("tdm-reservation", "tdm-policy"):
            meta_tdm.setdefault(name, content.strip())
        elif name in robot_names and _tokens(content) & NOAI_TOKENS:
            out["noai"] = True
    if out["tdm_reservation"] is None and meta_tdm.get("tdm-reservation") in ("0", "1"):
        out["tdm_reservation"] = meta_tdm["tdm-reservation"] == "1"
        out["tdm_policy"] = _http_url(meta_tdm.get("tdm-policy"), base)
    out["licence_urls"] = list(_licence_links(doc, base))
    return out


def _http_url(value: str | None, base: str) -> str | None:
    if not value or not value.strip():
        return None
    try:
        absolute = urljoin(base, value.strip())
    except ValueError:
        return None
    return absolute[:2000] if urlsplit(absolute).scheme in ("http", "https") else None


def _licence_links(doc: Any, base: str) -> Iterator[str]:
    seen: set[str] = set()
    for el in doc.iter("a", "link", "area", "meta", "span", "div", "img"):
        rel = set((el.get("rel") or "").lower().split())
        prop = set((el.get("property") or "").lower().split())
        href = el.get("href") or el.get("resource") or (el.get("content") if prop else None)
        if not href:
            continue
        licence = "license" in rel or "cc:license" in rel or "cc:license" in prop
        absolute = _http_url(href, base)
        wanted = licence or (el.tag == "a" and _CC_DEED.match(absolute or ""))
        if absolute and wanted and absolute not in seen:
            seen.add(absolute)
            yield absolute


# --- a site ---------------------------------------------------------------------------------


@dataclass
class SiteAudit:
    url: str
    ai_crawlers: dict[str, str] = field(default_factory=dict)
    tdm_reservation: bool | None = None
    tdm_policy: str | None = None
    noai: bool = False
    licence_urls: list[str] = field(default_factory=list)
    media: list[dict[str, Any]] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """CONTRACT.md's shape, exactly."""
        return {
            "url": self.url,
            "ai_crawlers": self.ai_crawlers,
            "tdm_reservation": self.tdm_reservation,
            "tdm_policy": self.tdm_policy,
            "noai": self.noai,
            "licence_urls": self.licence_urls,
            "media": self.media,
        }


def _text(fetcher: Fetcher, url: str) -> str | None:
    """A small text file's body when it answers 200, else None (missing, error, refused)."""
    try:
        got = fetcher.get(url, MAX_TEXT_BYTES)
    except (Blocked, httpx.HTTPError) as exc:
        log.info("%s: %s", url, describe(exc))
        return None
    if got.status != 200 or got.truncated:
        return None
    return got.body.decode("utf-8", errors="replace")


def _is_html(got: Fetched) -> bool:
    ctype = (got.headers.get("content-type") or "").lower()
    return "html" in ctype or (
        not ctype and got.body.lstrip()[:15].lower().startswith(b"<!doctype html")
    )


def _same_site(url: str, origin: tuple[str, str, int | None]) -> bool:
    try:
        parts = urlsplit(url)
        return (parts.scheme, (parts.hostname or "").rstrip("."), parts.port) == origin
    except ValueError:
        return False


def audit_site(
    url: str,
    allowed: Sequence[Network],
    *,
    user_agent: str,
    max_pages: int = 5,
    max_media_bytes: int = MAX_AUDIT_MEDIA_BYTES,
    fetcher: Fetcher | None = None,
) -> SiteAudit:
    """Audit one site from its start URL; AuditError when the start page cannot be fetched."""
    from crawler.extract import extract_page
    from evidence.rightsmeta import read_rights, summary

    netpolicy.check_url(url, allowed)  # Blocked / BadUrl before anything is sent
    parts = urlsplit(url)
    origin = (parts.scheme, (parts.hostname or "").rstrip("."), parts.port)
    root = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    own = fetcher is None
    fetcher = fetcher or Fetcher(allowed, user_agent)
    report = SiteAudit(url=url)
    try:
        report.ai_crawlers = ai_crawler_rules(_text(fetcher, root + "/robots.txt"))
        tdmrep: Any = None
        if raw := _text(fetcher, root + "/.well-known/tdmrep.json"):
            try:
                tdmrep = json.loads(raw)
            except ValueError:
                report.problems.append("tdmrep.json is not JSON")
        noai = ai_txt_refuses(_text(fetcher, root + "/ai.txt"))
        queue, seen, media_urls = [url], {url}, []
        declared: list[tuple[bool, str | None]] = []
        while queue and len(report.pages) < max(1, min(max_pages, MAX_PAGES)):
            page_url = queue.pop(0)
            try:
                got = fetcher.get(page_url, MAX_PAGE_BYTES)
            except (Blocked, httpx.HTTPError) as exc:
                if page_url == url:
                    raise AuditError(f"{url}: {describe(exc)}") from None
                report.problems.append(f"{page_url}: {describe(exc)}")
                continue
            if got.status >= 400 or not _is_html(got):
                if page_url == url and got.status >= 400:
                    raise AuditError(f"{url}: HTTP {got.status}")
                continue
            report.pages.append(got.url)
            signals = page_signals(got.url, dict(got.headers), got.body)
            rule = tdmrep_rule(tdmrep, urlsplit(got.url).path or "/")
            if rule is None and signals["tdm_reservation"] is not None:
                rule = (signals["tdm_reservation"], signals["tdm_policy"])
            if rule is not None:
                declared.append(rule)
            noai = noai or signals["noai"]
            for link in signals["licence_urls"]:
                if link not in report.licence_urls:
                    report.licence_urls.append(link)
            page = extract_page(got.body, got.url, dict(got.headers))
            for ref in page.media:
                if ref.url not in media_urls:
                    media_urls.append(ref.url)
            for link in page.links:
                link = link.split("#", 1)[0]
                if link not in seen and _same_site(link, origin):
                    seen.add(link)
                    queue.append(link)
        if declared:
            report.tdm_reservation = declared[0][0]
            report.tdm_policy = _http_url(declared[0][1], root + "/")
        report.noai = noai
        for media_url in media_urls[:MAX_MEDIA]:
            try:
                got = fetcher.get(media_url, max_media_bytes)
            except (Blocked, httpx.HTTPError) as exc:
                report.problems.append(f"{media_url}: {describe(exc)}")
                continue
            if got.status != 200 or got.truncated:
                why = "too large" if got.truncated else f"HTTP {got.status}"
                report.problems.append(f"{media_url}: {why}")
                continue
            rights = read_rights(got.body)
            if "reason" in rights:
                report.problems.append(f"{media_url}: {rights['reason']}")
                continue
            report.media.append(
                {"url": media_url, "rights": summary(rights), "c2pa": rights.get("c2pa")}
            )
    finally:
        if own:
            fetcher.close()
    return report


def record_signals(
    session: Session, *, run_id: int | None, url: str, scope: str, data: Mapping[str, Any]
) -> Signal:
    """Store what a site, page or media file signalled in a run; one row per (run, URL).

    The caller owns the transaction. `scope` is "site", "page" or "media"; `data` is
    `page_signals(...)` for a page, `read_rights(...)` for a media file, `SiteAudit.as_json()`
    for a site. Recording the same URL again in the same run replaces the data.
    """
    from sqlalchemy import select

    from evidence.models import Signal
    from evidence.uses import canonical_url, url_key

    if scope not in ("site", "page", "media"):
        raise ValueError(f"unknown signal scope {scope!r}")
    key = url_key(url)
    stmt = select(Signal).where(Signal.url_key == key)
    stmt = stmt.where(Signal.run_id.is_(None) if run_id is None else Signal.run_id == run_id)
    row = session.scalar(stmt)
    if row is None:
        row = Signal(run_id=run_id, url_key=key, url=canonical_url(url), scope=scope)
        session.add(row)
    row.scope, row.data = scope, dict(data)
    session.flush()
    return row


__all__ = [
    "AI_AGENTS",
    "AuditError",
    "Fetcher",
    "PolicyTransport",
    "SiteAudit",
    "ai_crawler_rules",
    "ai_txt_refuses",
    "audit_site",
    "page_signals",
    "record_signals",
    "tdmrep_rule",
]
