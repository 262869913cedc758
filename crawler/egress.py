"""A guarded forward proxy: the only way the headless browser reaches the network.

Chromium for `--render-js` and evidence screenshots is launched with
`--proxy-server=http://127.0.0.1:PORT --proxy-bypass-list=<-loopback>`, so every request it
makes — page, scripts, fetch/XHR, iframes, images, WebSockets, even loopback — arrives here.
Each target is checked with `crawler.netpolicy` (URL form and every resolved answer), and
the upstream connection goes to an address validated in that same lookup, so a script on a
crawled page cannot reach an internal address or rebind its way there.

* `CONNECT host:port` (https, wss): checked, then bytes are piped both ways.
* `GET http://host/…` (absolute form): checked, sent upstream in origin form with
  `Connection: close`; only the declared body is forwarded (no chunked uploads), so a
  second request cannot be smuggled to the same upstream unchecked.
* Anything else, or a target equal to the proxy itself: refused with 400/403/405.
* Each direction of a connection is cut after 60 s idle or 100 MiB.

Runs its own asyncio loop in a daemon thread so it serves a Scrapy (Twisted) process and a
synchronous caller alike. Refusals are kept (bounded) in `GuardedProxy.refused`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Sequence
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from crawler import netpolicy
from crawler.netpolicy import Blocked, Network

logger = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024
MAX_BYTES_PER_CONNECTION = 100 * 1024 * 1024  # a rendered page needs far less
HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "upgrade"}
)


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class GuardedProxy:
    """HTTP forward proxy on 127.0.0.1 that connects only where the network policy allows."""

    def __init__(
        self,
        allowed: Sequence[Network],
        *,
        connect_timeout_s: float = 10.0,
        idle_timeout_s: float = 60.0,
        max_clients: int = 64,
    ) -> None:
        self.allowed = tuple(allowed)
        self.connect_timeout_s = connect_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.refused: deque[str] = deque(maxlen=1000)
        self.forwarded = 0
        self.port = 0
        self._max_clients = max_clients
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="guarded-proxy", daemon=True)
        self._ready = threading.Event()
        self._server: asyncio.Server | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Start serving; return the proxy URL to hand to Chromium."""
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None or not self.port:
            raise RuntimeError(f"guarded proxy did not start: {self._error}")
        return self.url

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._slots = asyncio.Semaphore(self._max_clients)
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._client, "127.0.0.1", 0, limit=MAX_HEAD)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except OSError as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with self._slots:
            try:
                await self._handle(reader, writer)
            except _Refused as exc:
                self.refused.append(str(exc))
                logger.info("browser egress: %(reason)s", {"reason": str(exc)})
                body = f"{exc}\n".encode()
                head = (
                    f"HTTP/1.1 {exc.status} Refused\r\nContent-Type: text/plain\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                )
                with contextlib.suppress(OSError):
                    writer.write(head.encode() + body)
                    await writer.drain()
            except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                pass
            finally:
                with contextlib.suppress(OSError):
                    writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.idle_timeout_s)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _Refused(400, f"refused: malformed request line {lines[0][:100]!r}")
        method, target, version = parts
        headers = [h for h in lines[1:] if h]
        if method == "CONNECT":
            host, sep, port_s = target.rpartition(":")
            if not sep or not port_s.isdigit() or not 0 < int(port_s) < 65536:
                raise _Refused(400, f"refused CONNECT {target[:100]!r}: bad authority")
            upstream_r, upstream_w = await self._open(host, int(port_s), f"https://{target}/")
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await self._pipe_both(reader, writer, upstream_r, upstream_w)
            return
        if method not in {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"}:
            raise _Refused(405, f"refused {method[:20]}: method not proxied")
        parsed = urlsplit(target)
        if parsed.scheme.lower() != "http":
            raise _Refused(400, f"refused {target[:200]}: only http:// in absolute form")
        length = 0
        for h in headers:
            name, _, value = h.partition(":")
            if name.strip().lower() == "transfer-encoding":
                raise _Refused(411, f"refused {target[:200]}: chunked request body")
            if name.strip().lower() == "content-length":
                if not value.strip().isdigit():
                    raise _Refused(400, f"refused {target[:200]}: bad Content-Length")
                length = int(value.strip())
        port = parsed.port or 80
        upstream_r, upstream_w = await self._open(parsed.hostname or "", port, target)
        path = parsed.path or "/"
        if parsed.query:
            path += "?" + parsed.query
        kept = [h for h in headers if h.partition(":")[0].strip().lower() not in HOP_HEADERS]
        out = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close"])
        upstream_w.write(out.encode("latin-1") + b"\r\n\r\n")
        if length:
            upstream_w.write(await reader.readexactly(length))
        await upstream_w.drain()
        self.forwarded += 1
        await self._pipe(upstream_r, writer)
        with contextlib.suppress(OSError):
            upstream_w.close()

    async def _open(
        self, host: str, port: int, url: str
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Check the target, resolve it once, connect to a validated address."""
        try:
            netpolicy.check_url(url, self.allowed)
            loop = asyncio.get_running_loop()
            addresses = await asyncio.wait_for(
                loop.run_in_executor(None, netpolicy.resolve, host, port, self.allowed),
                self.connect_timeout_s,
            )
        except Blocked as exc:
            raise _Refused(403, str(exc)) from None
        except (OSError, TimeoutError) as exc:
            raise _Refused(502, f"refused {host}: lookup failed ({exc})") from None
        last: Exception | None = None
        for ip in addresses:
            if port == self.port and ip in {"127.0.0.1", "::ffff:127.0.0.1"}:
                raise _Refused(403, f"refused {host}:{port}: the proxy itself")
            try:
                return await asyncio.wait_for(
                    asyncio.open_connection(ip, port, limit=MAX_HEAD), self.connect_timeout_s
                )
            except (OSError, TimeoutError) as exc:
                last = exc
        raise _Refused(502, f"refused {host}:{port}: connect failed ({last})")

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        """Copy until EOF, the idle timeout, or MAX_BYTES_PER_CONNECTION (then cut)."""
        sent = 0
        with contextlib.suppress(OSError, TimeoutError):
            while data := await asyncio.wait_for(src.read(65536), self.idle_timeout_s):
                sent += len(data)
                if sent > MAX_BYTES_PER_CONNECTION:
                    self.refused.append(f"cut a connection after {MAX_BYTES_PER_CONNECTION} bytes")
                    return
                dst.write(data)
                await dst.drain()

    async def _pipe_both(
        self,
        client_r: asyncio.StreamReader,
        client_w: asyncio.StreamWriter,
        up_r: asyncio.StreamReader,
        up_w: asyncio.StreamWriter,
    ) -> None:
        self.forwarded += 1
        tasks = [
            asyncio.create_task(self._pipe(client_r, up_w)),
            asyncio.create_task(self._pipe(up_r, client_w)),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(OSError):
                up_w.close()


_shared: dict[tuple[Network, ...], GuardedProxy] = {}
_shared_lock = threading.Lock()


def shared_proxy(allowed: Sequence[Network]) -> GuardedProxy:
    """This process's proxy for `allowed`, started on first use and kept for its lifetime.

    For scrapy-playwright, whose launch options are fixed before the crawl starts; a crawl
    is a child process, so the proxy ends with it.
    """
    key = tuple(allowed)
    with _shared_lock:
        proxy = _shared.get(key)
        if proxy is None:
            proxy = GuardedProxy(key)
            proxy.start()
            _shared[key] = proxy
        return proxy
