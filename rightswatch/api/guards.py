"""Limits that keep one client from exhausting the service: body size, request rate, exports.

* `BodyLimit`: an ASGI middleware that refuses bodies over the cap with 413 before the
  application reads them (Content-Length checked first, a chunked body counted as it arrives).
* `RateLimiter`: a moving window per account (`limits`), in this process or in Redis shared by
  every `serve` process: `rate` requests a minute; over it, 429 with Retry-After.
* Exports run at most `max_exports` at a time per process; more answer 429.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any

from limits import RateLimitItemPerMinute
from limits.errors import ConfigurationError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class BodyLimit:
    """`uploads` maps (method, path) to a larger cap for the routes that take a file."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, uploads: dict[tuple[str, str], int] | None = None
    ) -> None:
        self.app, self.max_bytes, self.uploads = app, max_bytes, uploads or {}

    async def _refuse(self, send: Send, cap: int) -> None:
        body = json.dumps({"message": f"request body larger than {cap} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.uploads.get((scope.get("method", ""), scope.get("path", "")), self.max_bytes)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = cap + 1
                if declared > cap:
                    await self._refuse(send, cap)
                    return
        # Read the whole (capped) body first, then replay it: the app never sees a partial one.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                await self._refuse(send, cap)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class RateLimiter:
    """A moving-window budget of `rate_per_minute` requests per key, in `limits` storage.

    The `limits` library (not our own bucket) so the budget can live in Redis: every `serve`
    process on one Redis spends from the same window, and the moving window counts exactly
    what the last 60 s held (no fixed-window boundary letting 2x through). `memory://` keeps it
    in this process. When the shared storage fails, a per-process window stands in (logged), so
    a Redis outage neither lifts the limit nor takes the API down.
    """

    def __init__(
        self, rate_per_minute: int, storage_url: str = "memory://", *, key_prefix: str = "rw"
    ) -> None:
        self.rate_per_minute = rate_per_minute
        self.item = RateLimitItemPerMinute(rate_per_minute)
        self.storage_url = storage_url
        self.key_prefix = key_prefix
        self._fallback = MovingWindowRateLimiter(MemoryStorage())
        self._failing_since: float | None = None
        try:
            options: dict[str, Any] = {}
            if storage_url.startswith(("redis://", "rediss://", "redis+unix://")):
                # A Redis that hangs must not hang the API: fail fast, fall back per process.
                options = {
                    "key_prefix": key_prefix,
                    "socket_connect_timeout": 1.0,
                    "socket_timeout": 1.0,
                }
            storage = storage_from_string(storage_url, **options)
        except (ConfigurationError, ValueError) as exc:
            raise ValueError(f"RIGHTSWATCH_RATE_LIMIT_STORAGE: {exc}") from None
        self.storage = storage
        self._limiter = MovingWindowRateLimiter(storage)

    def _spend(self, limiter: MovingWindowRateLimiter, key: str) -> float | None:
        if limiter.hit(self.item, key):
            return None
        reset_at = limiter.get_window_stats(self.item, key).reset_time
        return max(0.0, reset_at - time.time())

    def check(self, key: str) -> float | None:
        """Spend one request; None when allowed, else the seconds until the next is allowed."""
        try:
            wait = self._spend(self._limiter, key)
        except Exception as exc:  # the shared storage is down: limit per process meanwhile
            now = time.monotonic()
            if self._failing_since is None or now - self._failing_since > 60:
                self._failing_since = now
                log.warning("rate-limit storage unavailable (%s); limiting per process", exc)
            return self._spend(self._fallback, key)
        self._failing_since = None
        return wait

    @staticmethod
    def retry_after(wait_s: float) -> str:
        return str(max(1, math.ceil(wait_s)))
