"""What the crawler hands to the evidence recorder for one use: the raw exchanges, as served.

Plain picklable dataclasses, so a crawl (or a worker on another machine) can pass them across
process boundaries; nothing here touches the database or the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Exchange:
    """One HTTP request and its response, bytes exactly as received (before decoding)."""

    url: str  # the final URL, after redirects
    method: str = "GET"
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    status: int = 0
    reason: str = ""
    http_version: str = "HTTP/1.1"
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    redirect_chain: list[str] = field(default_factory=list)  # requested URL first
    resolved_ip: str | None = None
    port: int | None = None
    tls_chain_sha256: list[str] = field(default_factory=list)  # DER certs, leaf first (https)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # completeness: "dataloss", "partial", "truncated", "size-capped", "time-capped"
    flags: list[str] = field(default_factory=list)


@dataclass
class CaptureMaterial:
    """Everything needed to write the WARC and the custody record of one use."""

    page: Exchange
    media: Exchange
    run_id: int | None
    started_by: str
    user_agent: str
    robots: dict[str, Any]  # {"obeyed": bool, "sha256": str | None, "url": str}
    crawler_version: str
    config_sha256: str | None
    match: dict[str, Any]  # work ref, algorithm + version, score, offset_s, region
    screenshot_png: bytes | None = None
    screenshot_meta: dict[str, Any] = field(default_factory=dict)  # viewport, browser version
    signals: dict[str, Any] = field(default_factory=dict)  # what the page/media said (issue 8)
