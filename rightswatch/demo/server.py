"""A tiny in-process web server on a loopback address: fixed routes, a request log.

Used by `rightswatch demo` and by the tests' local web (tests/site). Routes map a path to
(status, headers, body); a callable route computes its answer per request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, dict[str, str], bytes]
Route = Answer | Callable[[BaseHTTPRequestHandler], Answer]


@dataclass
class Site:
    """Routes served on (host, port); `log` lists every requested path, in order."""

    host: str = "127.0.0.1"
    routes: dict[str, Route] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def start(self) -> Site:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                site.log.append(self.path)
                route = site.routes.get(self.path.split("#", 1)[0])
                if route is None:
                    route = site.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    answer: Answer = (404, {"Content-Type": "text/html"}, b"<h1>not found</h1>")
                elif callable(route):
                    answer = route(self)
                else:
                    answer = route
                status, headers, body = answer
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if status != 304:
                    self.wfile.write(body)

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def html(body: str, status: int = 200) -> Answer:
    return status, {"Content-Type": "text/html; charset=utf-8"}, body.encode()


def blob(data: bytes, ctype: str, etag: str | None = None) -> Route:
    """A file; answers 304 to a matching If-None-Match (so re-crawls can skip it)."""
    headers = {"Content-Type": ctype}
    if etag:
        headers["ETag"] = etag

    def answer(req: BaseHTTPRequestHandler) -> Answer:
        if etag and req.headers.get("If-None-Match") == etag:
            return 304, headers, b""
        return 200, headers, data

    return answer


def redirect(location: str, status: int = 302) -> Answer:
    return status, {"Location": location, "Content-Type": "text/html"}, b""
