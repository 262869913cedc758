"""A Scrapy response as an `evidence.material.Exchange`: headers and bytes as received, the
redirect chain, the peer address and the TLS certificate, with capture times in UTC."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from scrapy.http import Request, Response

from evidence.material import Exchange


def _headers(headers: Any) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, values in headers.items():
        name = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        for value in values:
            out.append((name, value.decode("latin-1") if isinstance(value, bytes) else str(value)))
    return out


def _certificate_sha256(response: Response) -> list[str]:
    cert = getattr(response, "certificate", None)
    if cert is None:
        return []
    try:
        from OpenSSL import crypto

        der = cert.dump(crypto.FILETYPE_ASN1)
    except Exception:
        return []
    return ["sha256:" + hashlib.sha256(der).hexdigest()]


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def exchange_from(response: Response, request: Request | None = None) -> Exchange:
    request = request or response.request
    finished = datetime.now(UTC)
    latency = float(response.meta.get("download_latency") or 0.0) if request is not None else 0.0
    redirects = list(response.meta.get("redirect_urls") or []) if request is not None else []
    parts = urlsplit(response.url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    ip = getattr(response, "ip_address", None)
    flags = ["dataloss"] if "dataloss" in (response.flags or []) else []
    return Exchange(
        url=response.url,
        method=request.method if request is not None else "GET",
        request_headers=_headers(request.headers) if request is not None else [],
        status=response.status,
        reason=reason_phrase(response.status),
        http_version=(response.protocol or "HTTP/1.1"),
        response_headers=_headers(response.headers),
        body=response.body,
        redirect_chain=[*redirects, response.url] if redirects else [],
        resolved_ip=str(ip) if ip is not None else None,
        port=port,
        tls_chain_sha256=_certificate_sha256(response),
        started_at=finished - timedelta(seconds=latency),
        finished_at=finished,
        flags=flags,
    )
