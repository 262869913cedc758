"""HOSTILE.md C2, C5 (zstd) and C11 through the real spider (`rightswatch crawl`) and, for
the concurrency cap asked past, through a probe crawl with the safety settings.

The live crawl has one run with every trap as a seed, so each must end within its caps,
be recorded, and leave the rest of the run going.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import create_engine, text

from hostile.routes import OK_PAGE
from hostile.server import Exchange, HostileServer, Site

MAX_DEPTH = 4


def _rows(db_url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def _hits(server: HostileServer, prefix: str) -> int:
    return sum(n for path, n in server.hits.items() if path.startswith(prefix))


def test_live_crawl_traps_bombs_and_politeness(rw, db_url: str, site: Site) -> None:  # type: ignore[no-untyped-def]
    srv, o = site.server, site.server.origin
    off = HostileServer(host="127.0.0.4").start()  # allowed by the policy, outside the scope

    @off.route("/ok")
    async def ok(ex: Exchange) -> None:
        await ex.respond(200, OK_PAGE)

    before = {p: _hits(srv, p) for p in ("/c2/sess/page", "/c2/sess/other", "/c2/frame")}
    srv.times.pop("/c11/busy", None)
    srv.max_active.pop("/c11/slow", None)
    try:
        rw.ok("init")
        seeds = [
            f"{o}/c2/sess/start",
            f"{o}/c2/frame?n=0",
            f"{o}/c5/zstd",
            f"{o}/c11/busy",
            f"{o}/c11/offsite?to={off.origin}/ok",
            f"{o}/c11/gallery",
            f"{o}/ok",
        ]
        args = [a for s in seeds for a in ("--url", s)]
        env = {"RIGHTSWATCH_ALLOW_NETWORKS": "127.0.0.1/32,127.0.0.4/32"}
        out = rw.ok("crawl", *args, "--max-depth", str(MAX_DEPTH), "--max-pages", "60", env=env)
        rows = _rows(
            db_url,
            "SELECT url, kind, state, error, detail FROM crawl_urls"
            f" WHERE run_id = {out['run_id']}",
        )
    finally:
        off.stop()
    by_path = {r[0].removeprefix(o): r for r in rows}

    def detail(path: str) -> dict[str, Any]:
        d = by_path[path][4]
        return json.loads(d) if isinstance(d, str) else d

    # C2 session ids: every link carries a new id; each page is fetched once, stored once.
    assert _hits(srv, "/c2/sess/page") - before["/c2/sess/page"] == 1
    assert _hits(srv, "/c2/sess/other") - before["/c2/sess/other"] == 1
    assert not [r[0] for r in rows if "sessid" in r[0].lower() or "sid=" in r[0].lower()]
    assert by_path["/c2/sess/page"][2] == "done"
    # C2 infinite iframe: ended by the depth cap (depth 0..MAX_DEPTH), the run went on.
    assert _hits(srv, "/c2/frame") - before["/c2/frame"] == MAX_DEPTH + 1
    assert len([r for r in rows if r[0].startswith(f"{o}/c2/frame")]) == MAX_DEPTH + 1
    # C5 zstd bomb: stopped at the size cap, a per-URL error.
    zstd = by_path["/c5/zstd"]
    assert zstd[2] == "failed"
    assert "DOWNLOAD_MAXSIZE" in zstd[3], zstd
    # C11 Retry-After: the retry waited at least that long and the wait is recorded.
    first, second = srv.times["/c11/busy"]
    assert second - first >= 2 * 0.95
    assert by_path["/c11/busy"][2] == "done"
    assert detail("/c11/busy")["retry_after_s"] == [2.0]
    # C11 offsite redirect: not followed, recorded with its chain.
    offsite = next(r for r in rows if r[0].startswith(f"{o}/c11/offsite"))
    assert offsite[2] == "failed"
    assert offsite[3].startswith("offsite redirect not followed"), offsite
    assert off.hits["/ok"] == 0
    # C11 per-host cap (crawler.safety: 8), counted by the server.
    assert 2 <= srv.max_active["/c11/slow"] <= 8
    assert by_path["/ok"][2] == "done"
    assert out["errors"] >= 2
    assert out["pages"] <= 60
    assert site.tripwire_connects() == 0


def test_c11_asked_concurrency_100_keeps_the_per_host_cap(site: Site, crawl: Any) -> None:
    """A project (or watch) asking for 100 concurrent requests per host gets the safety cap;
    host spellings (`127.0.0.1.` with a trailing dot) share one slot."""
    port = site.server.port
    site.server.max_active.pop("/c11/slow", None)
    urls = [f"http://127.0.0.1:{port}/c11/slow/a{i}.jpg" for i in range(24)]
    urls += [f"http://127.0.0.1.:{port}/c11/slow/b{i}.jpg" for i in range(24)]
    result = crawl(
        urls,
        project={"CONCURRENT_REQUESTS": 100, "CONCURRENT_REQUESTS_PER_DOMAIN": 100},
        settings={"AUTOTHROTTLE_ENABLED": False, "DOWNLOAD_TIMEOUT": 30},
    )
    assert all(r["ok"] for r in result.results), result.errors()
    assert len(result.results) == len(urls)
    assert 2 <= site.server.max_active["/c11/slow"] <= 8
    assert "Traceback" not in result.stderr


def test_c11_scope_is_decided_on_the_canonical_host() -> None:
    """IDN, upper case and a trailing dot: the watch's domain, its links' hosts and the
    politeness slot are all the canonical (punycode, lower case, dotless) host."""
    from urllib.parse import urlsplit

    from crawler.middlewares import canonical_host
    from crawler.runner import make_config
    from crawler.spiders.watch import canonical, host_in

    cfg = make_config(["http://BÜCHER.Example./a"])
    assert cfg.allow_domains == ["xn--bcher-kva.example"]
    for link in [
        "http://bücher.example/x",
        "http://XN--BCHER-KVA.EXAMPLE./x",
        "http://Bücher.EXAMPLE:80/x",
        "http://shop.BÜCHER.example./x",
    ]:
        canon, _key = canonical(link)
        assert host_in(urlsplit(canon).hostname or "", cfg.allow_domains), canon
        assert canonical_host(link).endswith("xn--bcher-kva.example")
    for offsite in ["http://bücher.example.evil.test/", "http://xn--bcher-kva.example.evil/"]:
        canon, _key = canonical(offsite)
        assert not host_in(urlsplit(canon).hostname or "", cfg.allow_domains), canon
