"""Hostile found files through a real crawl, on SQLite and PostgreSQL (HOSTILE.md M7, M8).

A loopback site serves copies of two catalogue works whose rights metadata is hostile (markup,
quotes and SQL, NUL, invalid UTF-8, megabyte strings in EXIF, XMP, PNG text and ID3), next to
"audio" files that try to make FFmpeg read elsewhere (an `#EXTM3U` playlist and `concat:` text
named .mp3, MP4s whose data references name /etc/passwd or a tripwire URL).

Expected: the crawl ends normally and matches the copies; the tripwire gets no connection; not
one byte of /etc/passwd is anywhere in the database, the blob store (WARCs and WACZs opened up)
or the crawl's output; the notices are stored as data, without NUL, capped at MAX_TEXT; the
evidence pack verifies; its report.html and the review pages (and the found file opened on its
own) run no script in headless Chromium.
"""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hostile_files as hf
import hostile_meta as hm
import pytest
from sqlalchemy import MetaData, select
from test_hostile_media import PASSWD, Tripwire

from evidence.db import make_engine, make_session_factory
from evidence.models import Signal
from evidence.rightsmeta import MAX_TEXT
from rightswatch.demo import media
from rightswatch.demo.server import Site, blob, html

CHROMIUM = "/usr/bin/chromium"
ALLOW = {"RIGHTSWATCH_ALLOW_NETWORKS": "127.0.0.1/32"}
# Lines of the local file that must never be read: every non-trivial line of /etc/passwd.
PASSWD_LINES = [line for line in PASSWD.splitlines() if len(line) >= 16]


@pytest.fixture(scope="module")
def tripwire() -> Iterator[Tripwire]:
    wire = Tripwire()
    yield wire
    wire.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, tripwire: Tripwire) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("hostile-found")
    image = media.make_image(4711)
    work_png = root / "portrait.png"
    work_png.write_bytes(media.image_bytes(image))
    music = media.make_music(17, 30.0)
    work_flac = root / "song.flac"
    work_flac.write_bytes(media.encode_audio(music, "flac"))
    pcm_mov = hf.ffmpeg(root / "pcm.mov", "sine=f=440:r=11025", 4, "-c:a", "pcm_s16le", "-f", "mov")
    trip = f"http://127.0.0.1:{tripwire.port}/x.mp3"
    playlist = f"#EXTM3U\n#EXTINF:10,x\nfile:///etc/passwd\n{trip}\n".encode()
    return {
        "works": {"portrait": work_png, "song": work_flac},
        "copies": {  # matched copies with hostile metadata
            "/m/portrait.jpg": (hm.hostile_jpeg(image), "image/jpeg"),
            "/m/portrait.png": (hm.hostile_png(media.resized(image, 0.8)), "image/png"),
            "/m/song.mp3": (hm.hostile_mp3(media.encode_audio(music, "mp3")), "audio/mpeg"),
        },
        "traps": {  # must be refused without following anything
            "/m/playlist.mp3": (playlist, "audio/mpeg"),
            "/m/id3-playlist.mp3": (b"ID3\x03\x00\x00\x00\x00\x00\x00" + playlist, "audio/mpeg"),
            "/m/concat.mp3": (f"concat:/etc/passwd|{trip}".encode(), "audio/mpeg"),
            "/m/ffconcat.mp3": (
                f"ffconcat version 1.0\nfile /etc/passwd\nfile {trip}\n".encode(),
                "audio/mpeg",
            ),
            "/m/dref-passwd.m4a": (
                hf.external_samples(pcm_mov, [hf.alias_entry(b"/etc/passwd")]),
                "audio/mp4",
            ),
            "/m/dref-url.m4a": (
                hf.external_samples(pcm_mov, [hf.url_entry(trip.encode())]),
                "audio/mp4",
            ),
        },
    }


@pytest.fixture(scope="module")
def site(files: dict[str, Any]) -> Iterator[Site]:
    web = Site("127.0.0.1").start()
    served = {**files["copies"], **files["traps"]}
    for path, (data, ctype) in served.items():
        web.routes[path] = blob(data, ctype)
    tags = "".join(
        f'<img src="{p}">' if ctype.startswith("image/") else f'<audio src="{p}"></audio>'
        for p, (_, ctype) in served.items()
    )
    web.routes["/"] = html('<title>fan page</title><a href="/gallery.html">gallery</a>')
    web.routes["/gallery.html"] = html(f"<h1>gallery</h1>{tags}")
    yield web
    web.stop()


def expand(data: bytes, depth: int = 0) -> Iterator[bytes]:
    """The bytes, and what they hold once ungzipped/unzipped (WARC.gz, WACZ, packs)."""
    yield data
    if depth > 3:
        return
    if data[:2] == b"\x1f\x8b":
        try:
            inner = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return
        yield from expand(inner, depth + 1)
    elif data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for name in zf.namelist():
                yield from expand(zf.read(name), depth + 1)


def leaked(data: bytes) -> list[bytes]:
    return [line for line in PASSWD_LINES if line in data]


def db_dump(db_url: str) -> Iterator[tuple[str, bytes]]:
    """Every cell of every table, as bytes."""
    engine = make_engine(db_url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            for table in meta.sorted_tables:
                for row in conn.execute(select(table)):
                    for value in row:
                        raw = value if isinstance(value, bytes) else str(value).encode()
                        yield table.name, raw
    finally:
        engine.dispose()


def signals(db_url: str) -> dict[str, dict[str, Any]]:
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as s:
            return {
                sig.url.split("/", 3)[3]: sig.data
                for sig in s.scalars(select(Signal).where(Signal.scope == "media"))
            }
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_hostile_found_files(
    rw: Any,
    db_url: str,
    home: Path,
    site: Site,
    files: dict[str, Any],
    tripwire: Tripwire,
    tmp_path: Path,
) -> None:
    rw.ok("init")
    for ref, path in files["works"].items():
        rw.ok("works", "add", path, "--ref", ref, "--rightsholder", "Label A")
    crawl = rw("crawl", "--url", site.url("/"), "--json", env=ALLOW, timeout=600)
    assert crawl.code == 0, crawl.err
    out = crawl.json
    assert out["matches"] == 3, out  # the three hostile copies, nothing from the traps
    for path in files["traps"]:
        assert path in site.log  # fetched (so decoded or refused), never followed
    assert tripwire.connects == 0
    assert leaked((crawl.out + crawl.err).encode()) == []

    # M7: no byte of the local file anywhere: database cells, blobs (opened up).
    for table, cell in db_dump(db_url):
        assert leaked(cell) == [], table
    blobs = [p for p in (home / "blobs").rglob("*") if p.is_file()]
    assert blobs
    for path in blobs:
        for part in expand(path.read_bytes()):
            assert leaked(part) == [], path

    # M8: the notices are data: text without NUL, capped, markup and quotes kept verbatim.
    got = signals(db_url)
    jpeg, png, mp3 = got["m/portrait.jpg"], got["m/portrait.png"], got["m/song.mp3"]
    for data in (jpeg, png, mp3):
        for key, value in data.items():
            if isinstance(value, str):
                assert "\x00" not in value, key
                assert len(value) <= MAX_TEXT, key
    assert jpeg["creator"].startswith(hm.SCRIPT)  # EXIF Artist up to its NUL ...
    assert jpeg["creator"] != hm.SCRIPT  # ... and the (invalid UTF-8) rest, as text
    assert jpeg["copyright"].startswith(hm.QUOTES)
    assert len(jpeg["copyright"]) == MAX_TEXT  # 60 KB of XMP dc:rights, capped
    assert png["creator"].startswith(hm.SCRIPT)
    assert len(png["creator"]) == MAX_TEXT  # a megabyte of XMP dc:creator, capped
    assert png["copyright"] == hm.QUOTES
    assert mp3["creator"] == hm.SCRIPT  # ID3 TPE1 up to the NUL separator
    assert mp3["copyright"] == "C" * MAX_TEXT  # a megabyte of TCOP, capped
    assert mp3["licence"] == hm.QUOTES
    works = rw.ok("works", "list")
    assert sorted(w["ref"] for w in works) == ["portrait", "song"]  # the SQL stayed a string

    # The pack verifies, and its report runs no script.
    pack = tmp_path / "pack.zip"
    assert len(rw.ok("evidence", "export", "--all", "-o", pack)["matches"]) == 3
    assert rw.ok("evidence", "verify", pack)["ok"] is True
    unpacked = tmp_path / "pack"
    with zipfile.ZipFile(pack) as zf:
        zf.extractall(unpacked)
    if not os.path.exists(CHROMIUM):
        pytest.skip("needs Debian's chromium for the rendering half")
    with browser() as b:
        page = b.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto((unpacked / "report.html").as_uri())
        page.wait_for_load_state("load")
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert page.locator("img[src^='found/']").count() >= 1
        review_pages(rw, b, tmp_path)
        assert dialogs == []


@contextmanager
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield b
        finally:
            b.close()


def review_pages(rw: Any, b: Any, tmp_path: Path) -> None:
    """The review queue with the three hostile copies, and each found file opened on its own
    (the JPEG is also an HTML document): nothing runs."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[2] / "e2e"))
    from svc_serve import RIGHTSWATCH, free_port, wait_healthy

    token = rw.ok("accounts", "add", "rev", "--rightsholder", "Label A", "--role", "reviewer")[
        "token"
    ]
    ids = [m["id"] for m in rw.ok("matches")]
    assert len(ids) == 3
    port = free_port()
    proc = subprocess.Popen(
        [RIGHTSWATCH, "serve", "--port", str(port), "--no-scheduler"],
        env=rw.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        page = b.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(base + "/")
        page.fill("#token", token)
        page.click("button[type=submit]")
        page.wait_for_url(base + "/")
        for match_id in ids:
            page.locator(f"#match-{match_id}").wait_for()
        page.wait_for_load_state("load")
        assert page.evaluate("typeof window.__pwned") == "undefined"
        for match_id in ids:
            res = page.goto(f"{base}/review/matches/{match_id}/media")
            assert res is not None
            assert res.status == 200
            assert res.headers["x-content-type-options"] == "nosniff"
            assert not res.headers["content-type"].startswith("text/")
            assert page.evaluate("typeof window.__pwned") == "undefined"
        assert dialogs == []
    finally:
        proc.terminate()
        proc.wait(timeout=60)
