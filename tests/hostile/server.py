"""A hostile HTTP server on loopback (wpull's badapp, Scrapy's mockserver), plus a tripwire.

Raw asyncio sockets, not an HTTP framework: the point is to send what frameworks refuse to
(lying Content-Length, endless bodies, RSTs, 1 MB headers, bombs). Each server runs its own
event loop in a daemon thread, so a test can drive a crawl in a child process against it.
The `Tripwire` accepts connections only to count them: every SSRF test asserts it saw zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache

import brotli

Handler = Callable[["Exchange"], Awaitable[None]]

BOMB_SIZE = 200 * 1024 * 1024  # decompressed bytes of each bomb


@dataclass
class Exchange:
    """One request as the server read it, and the socket to answer on."""

    method: str
    path: str
    headers: dict[str, str]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    server: HostileServer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()
        self.server.sent[self.path.split("?")[0]] += len(data)

    async def respond(
        self,
        status: int = 200,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        reason: str = "OK",
    ) -> None:
        head = {"Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(body))}
        head.update(headers or {})
        lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in head.items() if v]
        await self.send(("\r\n".join(lines) + "\r\nConnection: close\r\n\r\n").encode() + body)

    async def hold(self) -> None:
        """Wait until the client gives up (EOF or reset); record that it did."""
        with contextlib.suppress(OSError):
            while await self.reader.read(4096):
                pass
        self.server.client_closed[self.path.split("?")[0]] += 1


class HostileServer:
    """HTTP/1.1 on 127.0.0.1 with a route table; counts connections and bytes sent per path."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self.routes: dict[str, Handler] = {}
        self.connects = 0
        self.hits: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        self.client_closed: Counter[str] = Counter()
        self.active: Counter[str] = Counter()  # requests being answered now, per route group
        self.max_active: Counter[str] = Counter()  # the most at once (C11's server-side counter)
        self.times: dict[str, list[float]] = {}  # monotonic arrival times, for routes that ask
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def route(self, path: str) -> Callable[[Handler], Handler]:
        def add(fn: Handler) -> Handler:
            self.routes[path] = fn
            return fn

        return add

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> HostileServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, self.host, self.port, limit=2**20)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connects += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            line, *rest = head.decode("latin-1").split("\r\n")
            method, target, _ = line.split(" ", 2)
            headers = {}
            for h in rest:
                if ":" in h:
                    k, v = h.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            path = target.split("?")[0]
            self.hits[path] += 1
            ex = Exchange(method, target, headers, reader, writer, self)
            handler = self.routes.get(path) or next(
                (
                    h
                    for k, h in sorted(self.routes.items(), key=lambda kv: -len(kv[0]))
                    if k.endswith("*") and path.startswith(k[:-1])
                ),
                None,
            )
            if handler is None:
                await ex.respond(404, b"not found", reason="Not Found")
            else:
                await handler(ex)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                writer.close()


class Tripwire:
    """A listener that must never be reached: counts connect attempts and closes them."""

    def __init__(self, host: str = "127.0.0.2", port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.host, self.port = host, self.sock.getsockname()[1]
        self.connects = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _run(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self._stop:
                conn.close()
                return
            self.connects += 1
            conn.close()

    def close(self) -> None:
        self._stop = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _deflate_stream(wbits: int, size: int) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, wbits)
    chunk = bytes(1024 * 1024)
    out = [comp.compress(chunk) for _ in range(size // len(chunk))]
    out.append(comp.flush())
    return b"".join(out)


@cache
def bomb(encoding: str) -> bytes:
    """BOMB_SIZE zero bytes compressed with `encoding` (gzip, deflate, br, zstd, 'gzip, gzip')."""
    if encoding == "gzip":
        return _deflate_stream(31, BOMB_SIZE)
    if encoding == "deflate":
        return _deflate_stream(15, BOMB_SIZE)
    if encoding == "br":
        return bytes(brotli.compress(bytes(BOMB_SIZE), quality=5))
    if encoding == "zstd":
        try:
            from compression import zstd  # type: ignore[import-not-found]
        except ImportError:
            from backports import zstd
        return bytes(zstd.compress(bytes(BOMB_SIZE), level=3))
    if encoding == "gzip, gzip":
        inner = bomb("gzip")
        comp = zlib.compressobj(9, zlib.DEFLATED, 31)
        return comp.compress(inner) + comp.flush()
    raise ValueError(encoding)


@dataclass
class Site:
    """A hostile server with its tripwires, as the tests use them."""

    server: HostileServer
    tripwire: Tripwire
    tripwire6: Tripwire | None
    proxy_tripwire: Tripwire
    extra: list[HostileServer] = field(default_factory=list)

    @property
    def tripwires(self) -> list[Tripwire]:
        return [t for t in (self.tripwire, self.tripwire6, self.proxy_tripwire) if t is not None]

    def tripwire_connects(self) -> int:
        return sum(t.connects for t in self.tripwires)
