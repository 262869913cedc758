"""Synthetic uses for evidence tests: a work, a run and a match made through the models, and
capture material as the crawler would hand it over (bytes as served)."""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from PIL import Image
from sqlalchemy.orm import Session

from evidence.catalogue import get_rightsholder
from evidence.material import CaptureMaterial, Exchange
from evidence.models import Match, Run, Watch, Work, WorkShare


def png(seed: int = 1, size: int = 32) -> bytes:
    img = Image.new("RGB", (size, size), ((seed * 40) % 256, (seed * 90) % 256, 120))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def make_match(
    session: Session,
    *,
    ref: str = "work-1",
    title: str = "A work",
    holder: str = "Label A",
    page_url: str = "http://127.0.0.1:8080/gallery.html",
    media_url: str = "http://127.0.0.1:8080/media/copy.png",
    isrc: str | None = None,
    iswc: str | None = None,
    shares: list[tuple[str, str]] | None = None,
    seed: int = 1,
) -> Match:
    owner = get_rightsholder(session, holder)
    data = png(seed)
    work = Work(
        rightsholder_id=owner.id,
        ref=ref,
        kind="image",
        title=title,
        sha256="sha256:" + hashlib.sha256(data).hexdigest(),
        size=len(data),
        mime="image/png",
        width=32,
        height=32,
        isrc=isrc,
        iswc=iswc,
    )
    session.add(work)
    session.flush()
    for name, pct in shares or [(holder, "100")]:
        session.add(
            WorkShare(
                work_id=work.id,
                rightsholder_id=get_rightsholder(session, name).id,
                share=Decimal(pct),
            )
        )
    watch = Watch(name=f"watch-{uuid.uuid4().hex[:8]}", seeds=[page_url])
    session.add(watch)
    session.flush()
    run = Run(watch_id=watch.id, started_by="test", state="running")
    session.add(run)
    session.flush()
    host = media_url.split("/")[2].split(":")[0]
    match = Match(
        work_id=work.id,
        page_url=page_url,
        page_url_key=hashlib.sha256(page_url.encode()).hexdigest(),
        media_url=media_url,
        media_url_key=hashlib.sha256(media_url.encode()).hexdigest(),
        domain=host,
        media_sha256="sha256:" + hashlib.sha256(data).hexdigest(),
        score=0.97,
        method="image_phash",
        first_run_id=run.id,
        last_run_id=run.id,
    )
    session.add(match)
    session.flush()
    return match


def make_material(
    match: Match,
    *,
    run_id: int | None = None,
    flags: list[str] | None = None,
    screenshot: bool = True,
    body: bytes | None = None,
    page_html: str | None = None,
) -> CaptureMaterial:
    t0 = datetime.now(UTC) - timedelta(seconds=2)
    html = (
        page_html
        or "<html><head><title>Gallery</title></head>"
        f'<body><img src="{match.media_url}"></body></html>'
    )
    media_body = body if body is not None else png()
    page = Exchange(
        url=match.page_url,
        request_headers=[("User-Agent", "rightswatch-test/1"), ("Accept", "*/*")],
        status=200,
        reason="OK",
        response_headers=[
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(html.encode()))),
        ],
        body=html.encode(),
        redirect_chain=[match.page_url.replace("gallery", "old-gallery"), match.page_url],
        resolved_ip="127.0.0.1",
        port=8080,
        started_at=t0,
        finished_at=t0 + timedelta(milliseconds=50),
    )
    media = Exchange(
        url=match.media_url,
        request_headers=[("User-Agent", "rightswatch-test/1"), ("Referer", match.page_url)],
        status=200,
        reason="OK",
        response_headers=[("Content-Type", "image/png"), ("Content-Length", str(len(media_body)))],
        body=media_body,
        redirect_chain=[match.media_url],
        resolved_ip="127.0.0.1",
        port=8080,
        started_at=t0 + timedelta(milliseconds=60),
        finished_at=t0 + timedelta(milliseconds=90),
        flags=list(flags or []),
    )
    return CaptureMaterial(
        page=page,
        media=media,
        run_id=run_id if run_id is not None else match.last_run_id,
        started_by="test",
        user_agent="rightswatch-test/1",
        robots={
            "obeyed": True,
            "sha256": "sha256:" + "ab" * 32,
            "url": "http://127.0.0.1:8080/robots.txt",
        },
        crawler_version="0.1.0-test",
        config_sha256="sha256:" + "cd" * 32,
        match={
            "work_ref": match.work.ref,
            "algorithm": "image_phash",
            "version": 1,
            "score": 0.97,
            "offset_s": None,
            "region": None,
        },
        screenshot_png=png(7, 64) if screenshot else None,
        screenshot_meta={"viewport": [1280, 800], "browser": "Chromium 130"} if screenshot else {},
    )


def unique() -> str:
    return uuid.uuid4().hex[:8]


__all__: list[Any] = ["make_match", "make_material", "png", "unique"]
