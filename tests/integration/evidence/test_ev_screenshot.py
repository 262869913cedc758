"""Screenshots in real crawls: the crawl of a loopback page with a planted copy takes a full-page
screenshot through the guarded proxy (a script on the page reaches no blocked address), the WARC
holds it as a resource record, the pack carries it and verify names it when a byte flips. Without
a browser, off, timed out or refused: the capture says why it has none, and so does the report."""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import socket
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from packtools import flip, members, write
from warcio.archiveiterator import ArchiveIterator

from crawler.browser import CHROMIUM, PageScreenshots
from evidence.pack import export_and_verify, standalone_report
from evidence.verify import verify_pack
from rightswatch.config import ConfigError, from_env
from rightswatch.demo import media
from rightswatch.demo.server import Site, blob, html

ALLOW = "127.0.0.1/32"
HAS_CHROMIUM = Path(CHROMIUM).exists()
needs_chromium = pytest.mark.skipif(not HAS_CHROMIUM, reason=f"{CHROMIUM} is not installed")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Web:
    def __init__(self, tmp: Path) -> None:
        original = media.make_image(321)
        self.work = tmp / "sunrise.png"
        self.work.write_bytes(media.image_bytes(original))
        self.tripwire = Site("127.0.0.3").start()
        self.main = Site("127.0.0.1").start()
        trip = self.tripwire.url("/from-script")
        self.main.routes["/"] = html(
            "<html><head><title>copy <script>alert(1)</script></title></head><body>"
            '<h1>A page with a copy</h1><img src="/media/copy.jpg">'
            f'<script>fetch("{trip}").catch(function(){{}});'
            f'var i=new Image();i.src="{self.tripwire.url("/pixel")}";</script>'
            "</body></html>"
        )
        self.main.routes["/media/copy.jpg"] = blob(
            media.image_bytes(media.resized(original, 0.6), "JPEG", quality=85), "image/jpeg"
        )

    def stop(self) -> None:
        self.main.stop()
        self.tripwire.stop()


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    site = Web(tmp_path)
    yield site
    site.stop()


def _crawl(rw, web: Web, **env: str) -> dict:  # type: ignore[no-untyped-def]
    rw.ok("init")
    rw.ok("works", "add", web.work, "--ref", "sunrise", "--title", "Sunrise <script>x()</script>")
    res = rw(
        "crawl",
        "--url",
        web.main.url("/"),
        "--json",
        env={"RIGHTSWATCH_ALLOW_NETWORKS": ALLOW, **env},
    )
    assert res.code == 0, res.err
    [match] = rw.ok("matches")
    assert match["evidence_ids"]
    return match  # type: ignore[no-any-return]


@needs_chromium
@pytest.mark.slow
def test_crawl_takes_a_screenshot_that_the_pack_carries_and_verify_guards(  # type: ignore[no-untyped-def]
    rw, web: Web, tmp_path: Path
) -> None:
    match = _crawl(rw, web, RIGHTSWATCH_SCREENSHOTS="auto")
    # The browser rendered the page (a second request for it), and the page's script reached
    # nothing on the refused address: the guarded proxy said no before any packet.
    assert web.main.log.count("/") == 2
    assert web.tripwire.log == []
    pack = tmp_path / "pack.zip"
    rw.ok("evidence", "export", "--match", str(match["id"]), "-o", pack)
    assert rw.ok("evidence", "verify", pack)["ok"] is True
    items = members(pack)
    manifest = json.loads(items["manifest.json"])
    [cap] = manifest["captures"]
    shot_name = cap["screenshot"]
    assert shot_name == f"screenshots/{cap['id']}.png"
    shot = items[shot_name]
    assert shot.startswith(PNG_MAGIC)
    custody = cap["custody"]["screenshot"]
    assert custody["taken"] is True
    assert custody["browser"] == "chromium"
    assert custody["browser_version"]
    assert custody["viewport"] == {"width": 1280, "height": 800}
    assert custody["sha256"] == "sha256:" + hashlib.sha256(shot).hexdigest()
    assert any("127.0.0.3" in r for r in custody["egress_refused"])
    # The WARC holds it as a resource record, byte for byte.
    resources = [
        rec.content_stream().read()
        for rec in ArchiveIterator(io.BytesIO(items[cap["warc"]]))
        if rec.rec_type == "resource" and rec.rec_headers.get_header("Content-Type") == "image/png"
    ]
    assert resources == [shot]
    # The report shows it; its standalone copy inlines it and keeps page data escaped.
    report = items["report.html"].decode()
    assert f'src="{shot_name}"' in report
    standalone = standalone_report(pack).decode()
    assert 'src="screenshots/' not in standalone
    assert 'src="data:image/png;base64,' in standalone
    assert "<script>x()" not in standalone
    assert "&lt;script&gt;x()" in standalone
    # One flipped byte in the screenshot: verify names the member.
    flipped = write(tmp_path / "flipped.zip", items | {shot_name: flip(shot)})
    res = rw("evidence", "verify", flipped, "--json")
    assert res.code == 1
    problems = res.json["problems"]
    assert any(p.startswith(shot_name) and "sha256" in p for p in problems), problems


@pytest.mark.slow
def test_screenshots_off_the_capture_and_report_say_so(  # type: ignore[no-untyped-def]
    rw, web: Web, tmp_path: Path
) -> None:
    match = _crawl(rw, web, RIGHTSWATCH_SCREENSHOTS="off")
    assert web.main.log.count("/") == 1  # no browser went to the page
    pack = tmp_path / "pack.zip"
    rw.ok("evidence", "export", "--match", str(match["id"]), "-o", pack)
    assert rw.ok("evidence", "verify", pack)["ok"] is True
    items = members(pack)
    assert not [n for n in items if n.startswith("screenshots/")]
    [cap] = json.loads(items["manifest.json"])["captures"]
    assert "screenshot" not in cap
    assert cap["custody"]["screenshot"] == {
        "taken": False,
        "reason": "screenshots are off (RIGHTSWATCH_SCREENSHOTS=off)",
    }
    assert "RIGHTSWATCH_SCREENSHOTS=off" in items["report.html"].decode()


def test_screenshot_setting_is_checked() -> None:
    assert from_env({}).screenshots == "auto"
    assert from_env({"RIGHTSWATCH_SCREENSHOTS": "OFF"}).screenshots == "off"
    with pytest.raises(ConfigError, match="RIGHTSWATCH_SCREENSHOTS"):
        from_env({"RIGHTSWATCH_SCREENSHOTS": "always"})


LOOPBACK = [ipaddress.ip_network("127.0.0.1/32")]


def test_no_browser_or_a_refused_page_means_no_screenshot_with_the_reason() -> None:
    missing = PageScreenshots(mode="auto", allowed=LOOPBACK, chromium="/nonexistent/chromium")
    assert missing.take("http://127.0.0.1:9/").meta == {
        "taken": False,
        "reason": "no browser: /nonexistent/chromium is not installed",
    }
    assert missing.get("http://127.0.0.1:9/").png is None
    shots = PageScreenshots(mode="auto", allowed=LOOPBACK)
    refused = shots.take("http://127.0.0.3/")  # refused before any process starts
    assert refused.png is None
    assert "127.0.0.3" in refused.meta["reason"]
    assert shots.get("http://127.0.0.1:9/never-prepared").meta["reason"] == "not taken"


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}/hangs"
    stop.set()
    thread.join()
    for c in held:
        c.close()
    srv.close()


@needs_chromium
def test_a_page_that_never_loads_is_cut_at_the_bound(silent_server: str, web: Web) -> None:
    # The browser's own step timeout, and the wall-clock bound that kills the child process.
    steps = PageScreenshots(mode="auto", allowed=LOOPBACK, step_s=2, wall_s=120)
    try:
        step = steps.take(silent_server)
        assert step.png is None
        assert "Timeout" in step.meta["reason"], step.meta
    finally:
        steps.close()
    shots = PageScreenshots(mode="auto", allowed=LOOPBACK, step_s=60, wall_s=4)
    try:
        wall = shots.take(silent_server)
        assert wall.meta == {"taken": False, "reason": "screenshot timed out after 4 s"}
        # The killed worker is replaced for the next page.
        shots.wall_s = 120
        good = shots.take(web.main.url("/"))
        assert good.png is not None, good.meta
        assert good.png.startswith(PNG_MAGIC)
    finally:
        shots.close()


def test_standalone_report_inlines_only_the_packs_own_images(tmp_path: Path) -> None:
    img = media.image_bytes(media.make_image(5))
    report = (
        b'<img src="found/a.png"><img src="screenshots/missing.png">'
        b'<img src="https://example.invalid/x.png"><img src="works/1.exe">'
    )
    pack = write(
        tmp_path / "p.zip", {"report.html": report, "found/a.png": img, "works/1.exe": b"MZ"}
    )
    out = standalone_report(pack)
    assert out.count(b"data:image/png;base64,") == 1
    assert b'src="screenshots/missing.png"' in out
    assert b'src="https://example.invalid/x.png"' in out
    assert b'src="works/1.exe"' in out


def test_demo_export_writes_a_self_contained_report(  # type: ignore[no-untyped-def]
    factory, store, tmp_path: Path
) -> None:
    from evsynth import make_match, make_material

    from evidence.capture import record_capture
    from rightswatch.config import get_settings

    with factory.begin() as s:
        m = make_match(s, ref="w-shot", title="<script>alert(2)</script>", seed=4)
        record_capture(s, store, match=m, material=make_material(m))
        mid = m.id
    out = export_and_verify(get_settings(), [mid], tmp_path / "demo-pack.zip")
    assert out["verified"] is True
    side = Path(out["report"]).read_text()
    assert 'src="works/' not in side
    assert 'src="screenshots/' not in side
    assert side.count("data:image/") >= 2
    assert "<script>alert(2)" not in side
    assert verify_pack(tmp_path / "demo-pack.zip")["ok"] is True
    with zipfile.ZipFile(tmp_path / "demo-pack.zip") as zf:
        assert 'src="screenshots/' in zf.read("report.html").decode()  # the pack's own copy
