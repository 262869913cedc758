"""Every error leaves the API as JSON `{"message": ...}` with the right status, never a traceback.

Translated once, here: the packages' errors (BadInput 422, NotFound 404, DatabaseUnavailable
503 + Retry-After), HTTP errors, validation errors and anything unexpected (500, logged).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from evidence.errors import BadInput, DatabaseUnavailable, EvidenceError, NotFound, StoreError

log = logging.getLogger(__name__)

RETRY_DB_S = 5


class ErrorOut(BaseModel):
    message: str


class ApiError(Exception):
    """An error with its HTTP status and one-line message (and optional headers)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status, headers=headers)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def install(app: FastAPI) -> None:
    async def api_error(_r: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.message, exc.headers)

    async def http_error(_r: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        return error_response(exc.status_code, message, dict(exc.headers or {}))

    async def validation_error(_r: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(422, _describe_validation(exc))

    async def evidence_error(_r: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, NotFound):
            return error_response(404, "not found")
        if isinstance(exc, BadInput):
            return error_response(422, str(exc)[:300])
        if isinstance(exc, DatabaseUnavailable):
            return error_response(503, "database unavailable", {"Retry-After": str(RETRY_DB_S)})
        if isinstance(exc, StoreError):
            log.warning("blob store: %s", exc)
            return error_response(503, "evidence store unavailable", {"Retry-After": "30"})
        log.warning("operation failed: %s", exc)
        return error_response(500, str(exc)[:300])

    async def db_error(_r: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DBAPIError)
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            log.warning("database unavailable: %s", str(getattr(exc, "orig", exc)).splitlines()[:1])
            return error_response(503, "database unavailable", {"Retry-After": str(RETRY_DB_S)})
        log.error("database error: %s", type(exc).__name__)
        return error_response(500, "internal error")

    async def unexpected(_r: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled %s: %s", type(exc).__name__, str(exc)[:200])
        return error_response(500, "internal error")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(EvidenceError, evidence_error)
    app.add_exception_handler(DBAPIError, db_error)
    app.add_exception_handler(Exception, unexpected)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer, all `ErrorOut`."""
    text = {
        401: "missing, malformed or revoked token",
        403: "the account's role may not do this",
        404: "no such object in the account's scope",
        413: "request body too large",
        422: "invalid request",
        429: "rate limit or concurrency limit reached; see Retry-After",
        503: "database or store unavailable; see Retry-After",
    }
    return {c: {"model": ErrorOut, "description": text.get(c, "error")} for c in codes}
