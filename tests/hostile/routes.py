"""The hostile behaviours of HOSTILE.md C1-C7, C9, S3, S5, installed on a HostileServer."""

from __future__ import annotations

import asyncio
import os
import time
from urllib.parse import unquote

from hostile.server import Exchange, HostileServer, bomb, rst

OK_PAGE = b"<html><body><p>ok</p></body></html>"


def html(body: str) -> bytes:
    return f"<!doctype html><html><head></head><body>{body}</body></html>".encode()


def meta_refresh(url: str) -> bytes:
    return (
        f'<!doctype html><html><head><meta http-equiv="refresh" content="0;url={url}">'
        "</head><body>moved</body></html>"
    ).encode()


def query_int(ex: Exchange, name: str) -> int:
    for part in ex.path.partition("?")[2].split("&"):
        key, _, value = part.partition("=")
        if key == name and value.isdigit():
            return int(value)
    return 0


async def _until_closed(ex: Exchange, every_s: float, data: bytes) -> None:
    """Send `data` every `every_s` seconds until the client hangs up."""
    while True:
        try:
            await ex.send(data)
            got = await asyncio.wait_for(ex.reader.read(4096), every_s)
        except TimeoutError:
            continue
        except OSError:
            break
        if not got:
            break
    ex.server.client_closed[ex.path.split("?")[0]] += 1


def install_basic(
    srv: HostileServer, *, robots: bytes = b"User-agent: *\nDisallow: /media/\n"
) -> None:
    @srv.route("/ok")
    async def ok(ex: Exchange) -> None:
        await ex.respond(200, OK_PAGE)

    @srv.route("/robots.txt")
    async def robots_txt(ex: Exchange) -> None:
        await ex.respond(200, robots, {"Content-Type": "text/plain"})

    @srv.route("/media/*")
    async def media(ex: Exchange) -> None:
        await ex.respond(200, b"secret media", {"Content-Type": "image/jpeg"})


def install_c1(srv: HostileServer) -> None:
    async def redirect(ex: Exchange, location: str | None, status: int = 302) -> None:
        await ex.respond(status, b"", {"Location": location or ""}, reason="Found")

    @srv.route("/c1/loop-a")
    async def loop_a(ex: Exchange) -> None:
        await redirect(ex, "/c1/loop-b")

    @srv.route("/c1/loop-b")
    async def loop_b(ex: Exchange) -> None:
        await redirect(ex, "/c1/loop-a")

    @srv.route("/c1/self")
    async def self_loop(ex: Exchange) -> None:
        await redirect(ex, "/c1/self", 301)

    @srv.route("/c1/chain")
    async def chain(ex: Exchange) -> None:
        n = query_int(ex, "n")
        await redirect(ex, f"/c1/chain?n={n + 1}" if n < 25 else "/ok", 307)

    @srv.route("/c1/nolocation")
    async def nolocation(ex: Exchange) -> None:
        await redirect(ex, None)

    @srv.route("/c1/ftp")
    async def ftp(ex: Exchange) -> None:
        await redirect(ex, f"ftp://127.0.0.1:{srv.port}/x")

    @srv.route("/c1/meta-a")
    async def meta_a(ex: Exchange) -> None:
        await ex.respond(200, meta_refresh("/c1/meta-b"))

    @srv.route("/c1/meta-b")
    async def meta_b(ex: Exchange) -> None:
        await ex.respond(200, meta_refresh("/c1/meta-a"))


def install_c2_c3(srv: HostileServer) -> None:
    @srv.route("/c2/cal")
    async def calendar(ex: Exchange) -> None:
        m = query_int(ex, "m")
        await ex.respond(200, html(f'<a href="/c2/cal?m={m + 1}">next month</a>'))

    @srv.route("/c2/rep/*")
    async def repeat(ex: Exchange) -> None:
        await ex.respond(200, html('<a href="a/">deeper</a>'))

    many = html("".join(f'<a href="/c3/l/{i}">{i}</a>\n' for i in range(100_000)))
    filler = "<p>" + "lorem ipsum " * 80 + "</p>\n"
    big = html(filler * (10_000_000 // len(filler)))

    @srv.route("/c3/links")
    async def many_links(ex: Exchange) -> None:
        await ex.respond(200, many)

    @srv.route("/c3/longurl")
    async def long_url(ex: Exchange) -> None:
        await ex.respond(
            200, html(f'<a href="/c3/long/{"x" * 10_000}">long</a><a href="/ok">ok</a>')
        )

    @srv.route("/c3/big")
    async def big_html(ex: Exchange) -> None:
        await ex.respond(200, big)


def install_c2_live(srv: HostileServer) -> None:
    """C2 for the real spider: a fresh session id on every link of every answer, and an
    iframe that embeds the next iframe for ever."""

    @srv.route("/c2/sess/*")
    async def session_site(ex: Exchange) -> None:
        sid = os.urandom(8).hex()
        await ex.respond(
            200,
            html(
                f'<a href="/c2/sess/page;jsessionid={sid}">page</a>'
                f'<a href="/c2/sess/page?PHPSESSID={sid}">page again</a>'
                f'<a href="/c2/sess/other?sid={sid}&x=1">other</a>'
                f'<a href="/c2/sess/other?x=1&SID={sid.upper()}">other again</a>'
            ),
        )

    @srv.route("/c2/frame")
    async def frame(ex: Exchange) -> None:
        n = query_int(ex, "n")
        await ex.respond(200, html(f'<iframe src="/c2/frame?n={n + 1}"></iframe>'))


def install_c11(srv: HostileServer) -> None:
    """C11: a gallery of slow images counting concurrent requests on the server side; a
    host that answers 429 with Retry-After once per URL; a redirect to another host."""

    @srv.route("/c11/gallery")
    async def gallery(ex: Exchange) -> None:
        await ex.respond(200, html("".join(f'<img src="/c11/slow/{i}.jpg">' for i in range(40))))

    @srv.route("/c11/slow/*")
    async def slow(ex: Exchange) -> None:
        # Counted from arrival until just before the answer: the client cannot reuse that
        # slot before the answer, so this never over-counts (a loaded machine can delay the
        # server's bookkeeping after it answered, not before).
        srv.active["/c11/slow"] += 1
        srv.max_active["/c11/slow"] = max(srv.max_active["/c11/slow"], srv.active["/c11/slow"])
        try:
            await asyncio.sleep(0.3)
        finally:
            srv.active["/c11/slow"] -= 1
        await ex.respond(200, b"not an image", {"Content-Type": "image/jpeg"})

    @srv.route("/c11/busy")
    async def busy(ex: Exchange) -> None:
        times = srv.times.setdefault(ex.path, [])
        times.append(time.monotonic())
        if len(times) == 1:
            await ex.respond(429, b"slow down", {"Retry-After": "2"}, reason="Too Many Requests")
        else:
            await ex.respond(200, OK_PAGE)

    @srv.route("/c11/offsite")
    async def offsite(ex: Exchange) -> None:
        target = unquote(ex.path.partition("?to=")[2])
        await ex.respond(302, b"", {"Location": target}, reason="Found")


def install_c4(srv: HostileServer) -> None:
    @srv.route("/c4/huge-cl")
    async def huge(ex: Exchange) -> None:
        head = "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 10737418240\r\n\r\n"
        await ex.send(head.encode())
        await _until_closed(ex, 0.01, bytes(65536))

    @srv.route("/c4/infinite")
    async def infinite(ex: Exchange) -> None:
        await ex.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = bytes(65536)
        await _until_closed(ex, 0.01, b"%x\r\n%s\r\n" % (len(chunk), chunk))

    @srv.route("/c4/underrun")
    async def underrun(ex: Exchange) -> None:
        await ex.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n")
        await ex.send(b"u" * 50)

    @srv.route("/c4/overrun")
    async def overrun(ex: Exchange) -> None:
        await ex.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n")
        await ex.send(b"o" * 200)


BOMBS = {
    "gzip": "gzip",
    "deflate": "deflate",
    "br": "br",
    "zstd": "zstd",
    "gzipgzip": "gzip, gzip",
    "svg": "gzip",
}


def install_c5(srv: HostileServer) -> None:
    def make(name: str, encoding: str) -> None:
        ctype = "image/svg+xml" if name == "svg" else "text/html"

        @srv.route(f"/c5/{name}")
        async def serve(ex: Exchange) -> None:
            await ex.respond(
                200, bomb(encoding), {"Content-Type": ctype, "Content-Encoding": encoding}
            )

    for name, encoding in BOMBS.items():
        make(name, encoding)


def install_c6(srv: HostileServer) -> None:
    @srv.route("/c6/drip")
    async def drip(ex: Exchange) -> None:
        await ex.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\n")
        await _until_closed(ex, 5.0, b"x")

    @srv.route("/c6/silent")
    async def silent(ex: Exchange) -> None:
        await ex.hold()

    @srv.route("/c6/noclose")
    async def noclose(ex: Exchange) -> None:
        await ex.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>partial")
        await ex.hold()


C7 = {
    "badstatus": b"HTTP/1.1 abc OK\r\nContent-Length: 2\r\n\r\nok",
    "http09": b"hello, no status line\n",
    "nocolon": b"HTTP/1.1 200 OK\r\nThisIsNotAHeader\r\nContent-Length: 2\r\n\r\nok",
    "bigheader": b"HTTP/1.1 200 OK\r\nX-Big: "
    + b"a" * 1_048_576
    + b"\r\nContent-Length: 2\r\n\r\nok",
    "badchunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "twocl": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\nokokok",
    "negcl": b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nok",
    "falsegzip": (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 11\r\n\r\nnot gzipped"
    ),
    "badencoding": b"HTTP/1.1 200 OK\r\nContent-Encoding: x-weird\r\nContent-Length: 2\r\n\r\nok",
    "empty": b"",
}


def install_c7(srv: HostileServer) -> None:
    def make(name: str, raw: bytes) -> None:
        @srv.route(f"/c7/{name}")
        async def serve(ex: Exchange) -> None:
            await ex.send(raw)

    for name, raw in C7.items():
        make(name, raw)

    @srv.route("/c7/rst")
    async def reset(ex: Exchange) -> None:
        await ex.send(b"HTTP/1.1 200 OK\r\n")
        rst(ex.writer)

    @srv.route("/c7/truncgzip")
    async def truncated_gzip(ex: Exchange) -> None:
        body = bomb("gzip")[:2000]
        await ex.respond(200, body, {"Content-Encoding": "gzip"})


def install_s(srv: HostileServer, trip_port: int) -> None:
    """S3 (redirects and meta refresh to blocked addresses) and S5 (sub-resources, schemes)."""
    targets = {
        "metadata": "http://169.254.169.254/latest/meta-data/",
        "loopback2": f"http://127.0.0.2:{trip_port}/",
        "v6": f"http://[::1]:{trip_port}/",
        "mapped": f"http://[::ffff:127.0.0.2]:{trip_port}/",
        "odd": f"http://0x7f000002:{trip_port}/",
    }

    def make(name: str, target: str) -> None:
        @srv.route(f"/s3/{name}")
        async def redirect(ex: Exchange) -> None:
            await ex.respond(302, b"", {"Location": target}, reason="Found")

        @srv.route(f"/s3/meta-{name}")
        async def refresh(ex: Exchange) -> None:
            await ex.respond(200, meta_refresh(target))

    for name, target in targets.items():
        make(name, target)

    @srv.route("/s5/page")
    async def page(ex: Exchange) -> None:
        t = f"127.0.0.2:{trip_port}"
        data_url = "data:image/png;base64," + "A" * 100_000
        body = f"""
        <img src="http://{t}/img.png">
        <img srcset="http://{t}/small.png 1x, http://[::1]:{trip_port}/big.png 2x">
        <div style="background-image: url(http://169.254.169.254/bg.png)"></div>
        <meta property="og:image" content="http://[::1]:{trip_port}/og.png">
        <audio src="http://10.0.0.1/a.mp3"></audio>
        <img src="file:///etc/passwd"><a href="file:///etc/passwd">passwd</a>
        <img src="{data_url}">
        <a href="ftp://{t}/x">ftp</a><a href="gopher://{t}/x">gopher</a>
        <a href="s3://bucket/key">s3</a><a href="http://localhost:{trip_port}/">localhost</a>
        """
        await ex.respond(200, html(body))


def robots_server(kind: str, trip_port: int) -> HostileServer:
    """A server whose robots.txt misbehaves as `kind` (HOSTILE.md C9)."""
    srv = HostileServer()

    @srv.route("/page")
    async def page(ex: Exchange) -> None:
        await ex.respond(200, OK_PAGE)

    @srv.route("/media/*")
    async def media(ex: Exchange) -> None:
        await ex.respond(200, b"media", {"Content-Type": "image/jpeg"})

    @srv.route("/robots.txt")
    async def robots(ex: Exchange) -> None:
        plain = {"Content-Type": "text/plain"}
        if kind == "garbage":
            await ex.respond(200, os.urandom(4096), {"Content-Type": "application/octet-stream"})
        elif kind == "empty":
            await ex.respond(200, b"", plain)
        elif kind == "404":
            await ex.respond(404, b"no", plain, reason="Not Found")
        elif kind == "500":
            await ex.respond(500, b"oops", plain, reason="Server Error")
        elif kind == "timeout":
            await ex.hold()
        elif kind == "huge":
            line = b"User-agent: *\nDisallow: /nothing-here/\n"
            await ex.respond(200, line * (10_000_000 // len(line)), plain)
        elif kind == "offsite":
            await ex.respond(302, b"", {"Location": f"http://127.0.0.2:{trip_port}/robots.txt"})
        elif kind == "disallow":
            await ex.respond(200, b"User-agent: *\nDisallow: /media/\n", plain)
        else:  # pragma: no cover - a typo in a test
            raise ValueError(kind)

    return srv


def install_all(srv: HostileServer, trip_port: int) -> None:
    install_basic(srv)
    install_c1(srv)
    install_c2_c3(srv)
    install_c2_live(srv)
    install_c11(srv)
    install_c4(srv)
    install_c5(srv)
    install_c6(srv)
    install_c7(srv)
    install_s(srv, trip_port)
