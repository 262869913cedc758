"""Per-request dependencies: the application context, one session per request, the caller.

The caller is a `Principal` from a Bearer token (compared by its SHA-256, never stored or logged)
or, for the review pages, from the signed session cookie. Every request spends one unit of the
caller's rate limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from evidence.accounts import Principal, authenticate
from evidence.store import BlobStore
from rightswatch.api.errors import ApiError
from rightswatch.api.guards import RateLimiter
from rightswatch.config import Settings


@dataclass
class Context:
    """What the application holds for its lifetime (on `app.state.ctx`)."""

    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    read_factory: sessionmaker[Session]  # GET/HEAD: readers that never block the crawl's writers
    store: BlobStore
    limiter: RateLimiter
    export_slots: Any  # threading.BoundedSemaphore
    max_page: int
    max_export: int
    max_upload: int
    cookie_secret: bytes


def ctx(request: Request) -> Context:
    context: Context = request.app.state.ctx
    return context


def db_session(request: Request) -> Iterator[Session]:
    """One session per request; the handler commits what it changes. GET and HEAD only read."""
    context = ctx(request)
    factory = context.read_factory if request.method in ("GET", "HEAD") else context.factory
    with factory() as session:
        yield session


SessionDep = Annotated[Session, Depends(db_session)]
bearer = HTTPBearer(auto_error=False, description="The token `rightswatch accounts add` printed.")


def limit_rate(request: Request, principal: Principal) -> None:
    wait = ctx(request).limiter.check(f"account:{principal.account_id}")
    if wait is not None:
        raise ApiError(
            429, "rate limit reached: slow down", {"Retry-After": RateLimiter.retry_after(wait)}
        )


def api_principal(
    request: Request,
    session: SessionDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    challenge = {"WWW-Authenticate": "Bearer"}
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        raise ApiError(401, "authentication required: Authorization: Bearer TOKEN", challenge)
    principal = authenticate(session, creds.credentials.strip())
    if principal is None:
        raise ApiError(401, "invalid or revoked token", challenge)
    limit_rate(request, principal)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(api_principal)]


def writer(principal: PrincipalDep) -> Principal:
    if not principal.can_write:
        raise ApiError(403, f"a {principal.role.value} account cannot change anything")
    return principal


WriterDep = Annotated[Principal, Depends(writer)]


def admin(principal: PrincipalDep) -> Principal:
    if not principal.is_admin:
        raise ApiError(403, "only an admin account can do this")
    return principal


AdminDep = Annotated[Principal, Depends(admin)]
