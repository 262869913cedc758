"""The tests' local web: several sites on 127.0.0.x loopback addresses, built in code.

* main (127.0.0.1): planted copies of the catalogue works embedded every way a page can
  (img, srcset, picture, CSS background, og:image, JSON-LD, lazy attribute, audio tag, a link
  that turns out to be an image), decoys, a 404, a redirect, a robots-disallowed /private/,
  a JS-built gallery, links to the licensed site and to the internal tripwire.
* licensed (127.0.0.2): a copy on a domain a licence covers.
* tripwire (127.0.0.3): an "internal" server that must receive zero requests.
* chain (127.0.0.1, another port): N pages in a chain, each with its own copy, slow enough to
  kill a crawl in the middle.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from rightswatch.demo import media
from rightswatch.demo.server import Answer, Site, blob, html, redirect

JPEG, PNG, WEBP = "image/jpeg", "image/png", "image/webp"


@dataclass
class Works:
    """Originals on disk (register them with `works add`) and their transformed copies."""

    dir: Path
    files: dict[str, Path] = field(default_factory=dict)


def make_works(root: Path) -> Works:
    root.mkdir(parents=True, exist_ok=True)
    works = Works(root)
    for i, ref in enumerate(("sunrise", "harbour", "forest"), start=1):
        path = root / f"{ref}.png"
        path.write_bytes(media.image_bytes(media.make_image(100 + i)))
        works.files[ref] = path
    path = root / "anthem.flac"
    path.write_bytes(media.encode_audio(media.make_music(7, 30.0), "flac"))
    works.files["anthem"] = path
    return works


def _img(seed: int) -> media.Image.Image:
    return media.make_image(100 + seed)


@dataclass
class LocalWeb:
    works: Works
    main: Site
    licensed: Site
    tripwire: Site
    chain: Site
    chain_pages: int
    # (work ref, page path, media path) the crawl of `main` must record
    expected: set[tuple[str, str, str]] = field(default_factory=set)

    def stop(self) -> None:
        for site in (self.main, self.licensed, self.tripwire, self.chain):
            site.stop()


def build(root: Path, chain_pages: int = 40, chain_delay_s: float = 0.5) -> LocalWeb:
    works = make_works(root / "works")
    sunrise, harbour, forest = _img(1), _img(2), _img(3)
    song = media.make_music(7, 30.0)
    tripwire = Site("127.0.0.3").start()
    tripwire.routes["/"] = html("<h1>internal</h1>")
    licensed = Site("127.0.0.2").start()
    licensed.routes["/"] = html('<img src="/lic.jpg">')
    licensed.routes["/lic.jpg"] = blob(media.image_bytes(media.resized(sunrise, 0.6), "JPEG"), JPEG)
    main = Site("127.0.0.1").start()
    r = main.routes
    r["/robots.txt"] = (
        200,
        {"Content-Type": "text/plain"},
        b"User-agent: *\nDisallow: /private/\n",
    )
    r["/"] = html(
        '<a href="/gallery.html">g</a> <a href="/embeds.html">e</a> <a href="/audio.html">a</a>'
        ' <a href="/old">old</a> <a href="/missing.html">404</a> <a href="/decoys.html">d</a>'
        ' <a href="/private/secret.html">p</a> <a href="/js-gallery.html">js</a>'
        ' <a href="/download?id=7">download</a> <a href="/loop-a">loop</a>'
        f' <a href="{licensed.url("/")}">licensed</a> <a href="{tripwire.url("/")}">internal</a>'
        f' <img src="{tripwire.url("/pixel.png")}">'
    )
    r["/old"] = redirect("/gallery.html")
    r["/loop-a"] = redirect("/loop-b")  # HOSTILE C1: a redirect loop
    r["/loop-b"] = redirect("/loop-a")
    r["/gallery.html"] = html(
        '<img src="/media/a.jpg"><img srcset="/media/b-300.jpg 300w, /media/b-1200.jpg 1200w">'
    )
    r["/media/a.jpg"] = blob(
        media.image_bytes(media.resized(sunrise, 0.5), "JPEG", quality=80), JPEG, '"a1"'
    )
    r["/media/b-1200.jpg"] = blob(media.image_bytes(media.cropped(harbour, 0.85), "JPEG"), JPEG)
    r["/media/b-300.jpg"] = blob(media.image_bytes(media.make_image(999), "JPEG"), JPEG)
    ld = {"@context": "https://schema.org", "@type": "Photograph", "image": "/media/ld.jpg"}
    r["/embeds.html"] = html(
        '<html><head><meta property="og:image" content="/media/og.png">'
        "<style>.hero{background-image:url('/media/bg.webp')}</style>"
        f'<script type="application/ld+json">{json.dumps(ld)}</script></head><body>'
        '<div class="hero"></div><img data-src="/media/lazy.jpg" src="data:image/gif;base64,R0lG">'
        '<picture><source srcset="/media/pic.jpg"><img src="/media/pic-fallback.gif"></picture>'
        "</body></html>"
    )
    # The "og.png" is a JPEG: the bytes decide, never the extension.
    r["/media/og.png"] = blob(media.image_bytes(media.resized(forest, 0.7), "JPEG"), PNG)
    r["/media/bg.webp"] = blob(media.image_bytes(media.resized(sunrise, 0.8), "WEBP"), WEBP)
    r["/media/ld.jpg"] = blob(media.image_bytes(media.resized(harbour, 0.4), "JPEG"), JPEG)
    r["/media/lazy.jpg"] = blob(
        media.image_bytes(media.resized(forest, 0.5), "JPEG", quality=60), JPEG
    )
    r["/media/pic.jpg"] = blob(media.image_bytes(sunrise, "JPEG", quality=50), JPEG)
    r["/audio.html"] = html('<audio controls src="/media/excerpt.mp3"></audio>')
    r["/media/excerpt.mp3"] = blob(
        media.encode_audio(media.excerpt(song, 8, 12), "mp3"), "audio/mpeg"
    )
    r["/download"] = blob(media.image_bytes(media.resized(harbour, 0.3), "JPEG"), JPEG)
    r["/decoys.html"] = html("".join(f'<img src="/media/decoy{i}.jpg">' for i in range(4)))
    for i in range(4):
        r[f"/media/decoy{i}.jpg"] = blob(
            media.image_bytes(media.make_image(500 + i), "JPEG"), JPEG, etag=f'"decoy{i}"'
        )
    r["/private/secret.html"] = html('<img src="/media/secret.jpg">')
    r["/media/secret.jpg"] = blob(media.image_bytes(forest, "JPEG"), JPEG)
    r["/js-gallery.html"] = html(
        '<div id="g"></div><script>var i=document.createElement("img");'
        'i.src="/media/js.jpg";document.getElementById("g").appendChild(i);'
        f'fetch("{tripwire.url("/from-script")}").catch(function(){{}});</script>'
        f'<iframe src="{tripwire.url("/iframe")}"></iframe>'
    )
    r["/media/js.jpg"] = blob(media.image_bytes(media.resized(forest, 0.9), "JPEG"), JPEG)

    chain = Site("127.0.0.1").start()

    def slow(body: str) -> object:
        def answer(_req: BaseHTTPRequestHandler) -> Answer:
            time.sleep(chain_delay_s)
            return html(body)

        return answer

    for i in range(chain_pages):
        nxt = f'<a href="/p{i + 1}.html">next</a>' if i + 1 < chain_pages else ""
        chain.routes[f"/p{i}.html"] = slow(f'<img src="/m/{i}.jpg">{nxt}')  # type: ignore[assignment]
        chain.routes[f"/m/{i}.jpg"] = blob(
            media.image_bytes(media.resized(_img(1 + i % 3), 0.5), "JPEG", quality=70 + i % 20),
            JPEG,
        )
    chain.routes["/robots.txt"] = (
        200,
        {"Content-Type": "text/plain"},
        b"User-agent: *\nAllow: /\n",
    )

    web = LocalWeb(works, main, licensed, tripwire, chain, chain_pages)
    web.expected = {
        ("sunrise", "/gallery.html", "/media/a.jpg"),
        ("harbour", "/gallery.html", "/media/b-1200.jpg"),
        ("forest", "/embeds.html", "/media/og.png"),
        ("sunrise", "/embeds.html", "/media/bg.webp"),
        ("harbour", "/embeds.html", "/media/ld.jpg"),
        ("forest", "/embeds.html", "/media/lazy.jpg"),
        ("sunrise", "/embeds.html", "/media/pic.jpg"),
        ("anthem", "/audio.html", "/media/excerpt.mp3"),
        ("harbour", "/", "/download?id=7"),
    }
    return web
