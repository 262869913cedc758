"""The application factory: `create_app(settings)` wires the database, the blob store, the
limits, the JSON API, the review pages and the static assets (shipped here, never a CDN)."""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from evidence.blobs import open_store
from evidence.db import make_engine, make_read_session_factory, make_session_factory
from rightswatch import __version__
from rightswatch.api import errors, manage, pages, routes
from rightswatch.api.deps import Context
from rightswatch.api.guards import BodyLimit, RateLimiter
from rightswatch.api.schemas import MAX_EXPORT
from rightswatch.api.session import load_secret
from rightswatch.config import Settings

HERE = Path(__file__).parent

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
PAGE_CSP = (
    b"default-src 'self'; img-src 'self'; media-src 'self'; script-src 'self'; "
    b"style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class SecurityHeaders:
    """nosniff, no referrer, no framing; a strict CSP unless the response set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", PAGE_CSP))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    rate_per_minute: int | None = None,
    rate_storage: str | None = None,
    rate_key_prefix: str = "rightswatch:api",
    max_body_bytes: int = 1024 * 1024,
    max_upload_bytes: int | None = None,
    max_page: int = 500,
    max_exports: int = 2,
) -> FastAPI:
    """The API and review pages on this settings' database and store.

    The rate limit, its storage and the upload cap default to the settings
    (RIGHTSWATCH_RATE_LIMIT_PER_MINUTE, RIGHTSWATCH_RATE_LIMIT_STORAGE,
    RIGHTSWATCH_MAX_UPLOAD_BYTES); tests pass their own.
    """
    engine = engine or make_engine(settings.database_url)
    upload_cap = max_upload_bytes or settings.max_upload_bytes
    app = FastAPI(
        title="rightswatch",
        version=__version__,
        description=(
            "Found uses of your works, review decisions, evidence packs. Every /api/ call needs "
            "`Authorization: Bearer TOKEN`; another account's objects answer 404."
        ),
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = Context(
        settings=settings,
        engine=engine,
        factory=make_session_factory(engine),
        read_factory=make_read_session_factory(engine),
        store=open_store(settings),
        limiter=RateLimiter(
            rate_per_minute or settings.rate_limit_per_minute,
            rate_storage or settings.rate_limit_storage,
            key_prefix=rate_key_prefix,
        ),
        export_slots=threading.BoundedSemaphore(max_exports),
        max_page=max_page,
        max_export=MAX_EXPORT,
        max_upload=upload_cap,
        cookie_secret=load_secret(settings.home),
    )
    errors.install(app)
    app.include_router(routes.router)
    app.include_router(manage.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    # Multipart framing adds a little to the file itself.
    uploads = {("POST", "/api/works"): upload_cap + 64 * 1024}
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, uploads=uploads)
    app.add_middleware(SecurityHeaders)
    return app
