"""Bytes for the review pages: a work's original, and the found copy of a use.

The found copy comes from the blob store when the crawl kept the file (by its digest), else from
the response record in the use's newest WARC capture. Only image and audio bytes are served,
typed by sniffing them (never by what the remote server claimed), with nosniff and a sandboxing
CSP, so a hostile "image" cannot run script in the reviewer's browser.
"""

from __future__ import annotations

import io
import logging

from fastapi import Response
from warcio.archiveiterator import ArchiveIterator

import fingerprints
from evidence.errors import NotFound, StoreError
from evidence.models import Match, Work
from evidence.store import BlobStore

log = logging.getLogger(__name__)

MEDIA_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, max-age=300",
}


def _typed(data: bytes) -> Response:
    sniffed = fingerprints.sniff(data)
    if sniffed is None:
        raise NotFound("no viewable media")
    return Response(data, media_type=sniffed.mime, headers=MEDIA_HEADERS)


def work_original(store: BlobStore, work: Work) -> Response:
    try:
        return _typed(store.get(work.sha256))
    except StoreError:
        log.warning("original of work %s missing from the store", work.id)
        raise NotFound("original not in the store") from None


def _from_warc(warc: bytes, media_url: str) -> bytes | None:
    for rec in ArchiveIterator(io.BytesIO(warc)):
        if (
            rec.rec_type == "response"
            and rec.rec_headers.get_header("WARC-Target-URI") == media_url
        ):
            return bytes(rec.content_stream().read())
    return None


def found_media(store: BlobStore, match: Match) -> Response:
    digest = match.media_sha256
    if digest and store.exists(digest):
        return _typed(store.get(digest))
    for capture in sorted(match.captures, key=lambda c: c.created_at, reverse=True):
        try:
            warc = store.get(capture.warc_sha256)
        except StoreError:
            continue
        data = _from_warc(warc, capture.media_url)
        if data:
            return _typed(data)
    raise NotFound("found copy not kept")
