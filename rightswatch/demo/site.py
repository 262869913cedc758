"""The demo site: a small photo blog and a podcast page with transformed copies of the sample
works (resized, cropped, re-encoded, an audio excerpt) among decoys, served on loopback."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rightswatch.demo import media
from rightswatch.demo.server import Site, blob, html

JPEG = "image/jpeg"


@dataclass
class SampleWork:
    ref: str
    title: str
    creator: str
    path: Path


def make_samples(root: Path) -> list[SampleWork]:
    """Three photographs and one song, written once (the same bytes every time)."""
    root.mkdir(parents=True, exist_ok=True)
    specs = [
        ("demo-sunrise", "Sunrise over the bay", "A. Photographer", 11, "png"),
        ("demo-harbour", "Harbour at noon", "A. Photographer", 12, "png"),
        ("demo-forest", "Forest path", "B. Photographer", 13, "png"),
        ("demo-anthem", "Demo anthem", "C. Composer", 21, "flac"),
    ]
    out = []
    for ref, title, creator, seed, ext in specs:
        path = root / f"{ref}.{ext}"
        if not path.exists():
            if ext == "flac":
                data = media.encode_audio(media.make_music(seed, 30.0), "flac")
            else:
                data = media.image_bytes(media.make_image(seed))
            path.write_bytes(data)
        out.append(SampleWork(ref, title, creator, path))
    return out


def serve_site(host: str = "127.0.0.1") -> Site:
    """Start the demo site; its pages embed copies in several ways, plus decoys."""
    sunrise, harbour, forest = (media.make_image(s) for s in (11, 12, 13))
    song = media.make_music(21, 30.0)
    site = Site(host).start()
    r = site.routes
    r["/robots.txt"] = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nAllow: /\n")
    r["/"] = html(
        "<h1>A demo blog</h1><a href='/travel.html'>Travel</a> <a href='/podcast.html'>Podcast</a>"
        " <a href='/about.html'>About</a>"
    )
    r["/travel.html"] = html(
        '<meta property="og:image" content="/img/cover.jpg">'
        '<img srcset="/img/bay-small.jpg 400w, /img/bay.jpg 1000w" alt="bay">'
        "<div style=\"background-image:url('/img/harbour-crop.jpg')\">harbour</div>"
        '<img data-src="/img/unrelated-1.jpg"> <img src="/img/unrelated-2.jpg">'
    )
    r["/img/cover.jpg"] = blob(
        media.image_bytes(media.resized(forest, 0.5), "JPEG", quality=70), JPEG
    )
    r["/img/bay.jpg"] = blob(media.image_bytes(media.resized(sunrise, 0.75), "JPEG"), JPEG)
    r["/img/bay-small.jpg"] = blob(media.image_bytes(media.resized(sunrise, 0.3), "JPEG"), JPEG)
    r["/img/harbour-crop.jpg"] = blob(media.image_bytes(media.cropped(harbour, 0.8), "JPEG"), JPEG)
    for i in (1, 2):
        r[f"/img/unrelated-{i}.jpg"] = blob(
            media.image_bytes(media.make_image(900 + i), "JPEG"), JPEG
        )
    ld = {
        "@context": "https://schema.org",
        "@type": "PodcastEpisode",
        "audio": {"@type": "AudioObject", "contentUrl": "/audio/episode-1.mp3"},
    }
    r["/podcast.html"] = html(
        f'<script type="application/ld+json">{json.dumps(ld)}</script>'
        '<audio controls src="/audio/episode-1.mp3"></audio>'
    )
    r["/audio/episode-1.mp3"] = blob(
        media.encode_audio(media.excerpt(song, 6.0, 12.0), "mp3"), "audio/mpeg"
    )
    r["/about.html"] = html('<img src="/img/unrelated-2.jpg"><p>Nothing to see here.</p>')
    return site
