"""`rightswatch signals audit` against a local test web: sites carrying each signal and none,
media with and without notices and C2PA credentials, and the network policy on every hop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "signals"))

from signalkit import (
    Route,
    Site,
    audio_bytes,
    c2pa_sign,
    c2pa_signer,
    html,
    image_bytes,
    serve,
    tamper_pixels,
)

from crawler.signals import AI_AGENTS
from evidence.rightsmeta import DMI_PROHIBITED
from evidence.stamp import Notice, stamp

RIGHTSWATCH = str(Path(sys.executable).with_name("rightswatch"))
NOTICE = Notice(creator="Ann Example", copyright="© 2024 Ann Example")
IMG = {"Content-Type": "image/jpeg"}


def audit(
    *args: str, allow: str | None = "127.0.0.1/32", home: Path
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIGHTSWATCH_")}
    env["RIGHTSWATCH_HOME"] = str(home)
    if allow:
        env["RIGHTSWATCH_ALLOW_NETWORKS"] = allow
    proc = subprocess.run(
        [RIGHTSWATCH, "signals", "audit", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture(scope="module")
def media() -> dict[str, bytes]:
    signer = c2pa_signer()
    signed = c2pa_sign(image_bytes(21), signer)
    return {
        "stamped": stamp(image_bytes(20), NOTICE),
        "c2pa": signed,
        "tampered": tamper_pixels(signed),
        "plain": image_bytes(22, "PNG"),
        "song": stamp(audio_bytes(3, "mp3", seconds=2.0), NOTICE),
    }


@pytest.fixture
def marked(media: dict[str, bytes]) -> Iterator[Site]:
    """A rightsholder's site saying everything: robots rules, TDMRep file, noai, licences."""
    site = Site(
        {
            "/robots.txt": Route(
                b"User-agent: GPTBot\nDisallow: /\n\nUser-agent: CCBot\n"
                b"Disallow: /private/\n\nUser-agent: *\nAllow: /\n"
            ),
            "/.well-known/tdmrep.json": Route(
                json.dumps(
                    [
                        {
                            "location": "/*",
                            "tdm-reservation": 1,
                            "tdm-policy": "https://marked.example/tdm-policy.json",
                        }
                    ]
                ).encode(),
                headers={"Content-Type": "application/json"},
            ),
            "/": html(
                '<img src="/media/stamped.jpg"><img src="/media/c2pa.jpg">'
                '<img src="/media/tampered.jpg"><a href="/page2">more</a>'
                '<a href="http://elsewhere.example/">off-site</a>',
                head='<meta name="robots" content="noai, noimageai">'
                '<link rel="license" href="/licence">',
            ),
            "/page2": html(
                '<audio src="/media/song.mp3"></audio><a href="/page3">next</a>'
                '<a rel="license" href="https://creativecommons.org/licenses/by-nc-nd/4.0/">CC</a>'
            ),
            "/page3": html('<img src="/media/plain.png">'),
            "/media/stamped.jpg": Route(media["stamped"], headers=IMG),
            "/media/c2pa.jpg": Route(media["c2pa"], headers=IMG),
            "/media/tampered.jpg": Route(media["tampered"], headers=IMG),
            "/media/plain.png": Route(media["plain"], headers={"Content-Type": "image/png"}),
            "/media/song.mp3": Route(media["song"], headers={"Content-Type": "audio/mpeg"}),
        }
    )
    with serve(site) as running:
        yield running


NO_RIGHTS = {"creator": None, "copyright": None, "data_mining": None}
STAMPED_RIGHTS = {"creator": "Ann Example", "copyright": "© 2024 Ann Example",
                  "data_mining": DMI_PROHIBITED}  # fmt: skip


def test_site_with_every_signal(marked: Site, tmp_path: Path) -> None:
    proc = audit(marked.url + "/", "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    u = marked.url
    expected_crawlers = dict.fromkeys(AI_AGENTS, "allowed")
    expected_crawlers.update(GPTBot="disallowed", CCBot="partial")
    assert json.loads(proc.stdout) == [
        {
            "url": u + "/",
            "ai_crawlers": expected_crawlers,
            "tdm_reservation": True,
            "tdm_policy": "https://marked.example/tdm-policy.json",
            "noai": True,
            "licence_urls": [u + "/licence", "https://creativecommons.org/licenses/by-nc-nd/4.0/"],
            "media": [
                {"url": u + "/media/stamped.jpg", "rights": STAMPED_RIGHTS, "c2pa": None},
                {"url": u + "/media/c2pa.jpg", "rights": NO_RIGHTS, "c2pa": "valid"},
                {"url": u + "/media/tampered.jpg", "rights": NO_RIGHTS, "c2pa": "invalid"},
                {"url": u + "/media/song.mp3", "rights": STAMPED_RIGHTS, "c2pa": None},
                {"url": u + "/media/plain.png", "rights": NO_RIGHTS, "c2pa": None},
            ],
        }
    ]
    assert not any(h.startswith("/private") for h in marked.hits)


def test_max_pages_limits_the_sample(marked: Site, tmp_path: Path) -> None:
    proc = audit(marked.url + "/", "--max-pages", "1", "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    site = json.loads(proc.stdout)[0]
    assert [m["url"].rsplit("/", 1)[1] for m in site["media"]] == [
        "stamped.jpg", "c2pa.jpg", "tampered.jpg"
    ]  # fmt: skip
    assert "/page2" not in marked.hits
    assert "/page3" not in marked.hits
    assert site["licence_urls"] == [marked.url + "/licence"]


def test_human_table(marked: Site, tmp_path: Path) -> None:
    proc = audit(marked.url + "/", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "robots.txt disallowed  GPTBot" in out
    assert "robots.txt partial     CCBot" in out
    assert "TDM rights            reserved (policy https://marked.example/tdm-policy.json)" in out
    assert "noai / noimageai      yes" in out
    assert "C2PA invalid" in out
    assert "C2PA valid" in out
    assert "creator Ann Example | copyright © 2024 Ann Example" in out


def test_site_without_signals(tmp_path: Path) -> None:
    plain = image_bytes(30)
    site = Site({"/": html('<img src="/a.jpg">'), "/a.jpg": Route(plain, headers=IMG)})
    with serve(site):
        proc = audit(site.url + "/", "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [
        {
            "url": site.url + "/",
            "ai_crawlers": dict.fromkeys(AI_AGENTS, "allowed"),
            "tdm_reservation": None,
            "tdm_policy": None,
            "noai": False,
            "licence_urls": [],
            "media": [{"url": site.url + "/a.jpg", "rights": NO_RIGHTS, "c2pa": None}],
        }
    ]
    assert {"/robots.txt", "/.well-known/tdmrep.json", "/ai.txt"} <= set(site.hits)


def test_header_meta_and_ai_txt_sites(tmp_path: Path) -> None:
    by_header = Site(
        {
            "/": Route(
                b"<html><head><meta name='tdm-reservation' content='1'></head></html>",
                headers={
                    "Content-Type": "text/html",
                    "TDM-Reservation": "0",
                    "X-Robots-Tag": "noimageai",
                },
            ),
            "/robots.txt": Route(b"User-agent: *\nDisallow: /\n"),
        }
    )
    by_meta = Site(
        {
            "/": html(
                "",
                head='<meta name="tdm-reservation" content="1">'
                '<meta name="tdm-policy" content="/policy.json">',
            ),
            "/ai.txt": Route(b"User-Agent: *\nDisallow: *.jpg\n"),
            "/robots.txt": Route(b"\x00\xff garbage"),
            "/.well-known/tdmrep.json": Route(b"{not json"),
        }
    )
    with serve(by_header), serve(by_meta):
        proc = audit(by_header.url + "/", by_meta.url + "/", "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    header_site, meta_site = json.loads(proc.stdout)
    assert (header_site["tdm_reservation"], header_site["tdm_policy"]) == (False, None)
    assert header_site["noai"] is True
    assert set(header_site["ai_crawlers"].values()) == {"disallowed"}
    assert (meta_site["tdm_reservation"], meta_site["tdm_policy"]) == (
        True,
        by_meta.url + "/policy.json",
    )
    assert meta_site["noai"] is True  # ai.txt refuses JPEGs to every agent
    assert set(meta_site["ai_crawlers"].values()) == {"allowed"}
    assert "tdmrep.json is not JSON" in proc.stderr


def test_loopback_refused_unless_allowed(marked: Site, tmp_path: Path) -> None:
    proc = audit(marked.url + "/", "--json", allow=None, home=tmp_path)
    assert proc.returncode == 1
    assert marked.hits == []  # not one request reached the server
    assert proc.stderr.strip() == f"rightswatch: error: refused {marked.url}/: loopback" or (
        proc.stderr.strip() == "rightswatch: error: refused 127.0.0.1: loopback"
    ), proc.stderr
    other = audit(marked.url + "/", "--json", allow="10.0.0.0/8", home=tmp_path)
    assert other.returncode == 1
    assert marked.hits == []


def test_redirects_to_refused_addresses_are_not_followed(tmp_path: Path) -> None:
    tripwire = Site({"/": html("secret")})
    with serve(tripwire):
        site = Site(
            {
                "/": html('<img src="/m.jpg"><img src="/ok.jpg"><a href="/hop">x</a>'),
                "/m.jpg": Route(b"", 302, {"Location": "http://169.254.169.254/latest/meta-data/"}),
                "/ok.jpg": Route(image_bytes(31), headers=IMG),
                "/hop": Route(b"", 302, {"Location": f"http://localhost:{tripwire.port}/"}),
            }
        )
        start = Site({"/": Route(b"", 302, {"Location": f"http://[::1]:{tripwire.port}/"})})
        with serve(site), serve(start):
            proc = audit(site.url + "/", "--max-pages", "3", "--json", home=tmp_path)
            refused = audit(start.url + "/", "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)[0]
    assert [m["url"] for m in result["media"]] == [site.url + "/ok.jpg"]
    assert "169.254.169.254" in proc.stderr
    assert "link-local" in proc.stderr
    assert refused.returncode == 1
    assert "::1" in refused.stderr
    assert tripwire.hits == []  # nothing reached the refused address


@pytest.mark.parametrize(
    ("url", "code"),
    [("ftp://example.org/", 2), ("not a url", 2), ("http://exa mple.org/", 2)],
)
def test_bad_urls_are_usage_errors(url: str, code: int, tmp_path: Path) -> None:
    proc = audit(url, "--json", home=tmp_path)
    assert proc.returncode == code
    assert len(proc.stderr.strip().splitlines()) == 1


def test_one_failing_site_does_not_hide_the_others(marked: Site, tmp_path: Path) -> None:
    dead = Site({"/": Route(b"gone", 500)})
    with serve(dead):
        proc = audit(dead.url + "/", marked.url + "/", "--max-pages", "1", "--json", home=tmp_path)
    assert proc.returncode == 1
    sites: list[dict[str, Any]] = json.loads(proc.stdout)
    assert [s["url"] for s in sites] == [marked.url + "/"]
    assert "HTTP 500" in proc.stderr
