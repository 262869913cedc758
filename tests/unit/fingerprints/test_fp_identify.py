"""End to end through the public API: fingerprint works, then find transformed copies."""

from __future__ import annotations

import numpy as np
import pytest
from fpsynth import RATE, encode_audio, to_bytes
from PIL import Image

from fingerprints import Matcher, MediaKind, fingerprint_query, fingerprint_work


@pytest.fixture(scope="module")
def image_matcher(images: list[Image.Image]) -> Matcher:
    m = Matcher()
    for i, img in enumerate(images):
        m.add(i, MediaKind.IMAGE, fingerprint_work(to_bytes(img, "PNG")).values)
    return m


@pytest.fixture(scope="module")
def audio_matcher(song_bytes: list[bytes]) -> Matcher:
    m = Matcher()
    for i, data in enumerate(song_bytes):
        m.add(100 + i, MediaKind.AUDIO, fingerprint_work(data).values)
    return m


def test_resized_reencoded_image_matches(image_matcher: Matcher, images: list[Image.Image]) -> None:
    for i, img in enumerate(images):
        copy = img.resize((img.width * 2 // 3, img.height * 2 // 3), Image.Resampling.LANCZOS)
        prints = fingerprint_query(to_bytes(copy, "JPEG", quality=40))
        hits = image_matcher.search(prints)
        assert hits
        assert hits[0].work_id == i
        assert 0 < hits[0].score <= 1


def test_unrelated_images_do_not_match(
    image_matcher: Matcher, distractor_images: list[Image.Image]
) -> None:
    for img in distractor_images:
        assert image_matcher.search(fingerprint_query(to_bytes(img, "WEBP"))) == []


@pytest.mark.parametrize("start_s", [0.0, 13.7, 27.0])
def test_audio_excerpt_matches_with_offset(
    audio_matcher: Matcher, songs: list[np.ndarray], start_s: float
) -> None:
    for i, song in enumerate(songs):
        clip = song[int(start_s * RATE) : int((start_s + 10) * RATE)]
        prints = fingerprint_query(encode_audio(clip, "mp3", bitrate=64000))
        hits = audio_matcher.search(prints)
        assert hits, f"song {i} at {start_s}"
        assert hits[0].work_id == 100 + i
        assert hits[0].offset_s is not None
        assert abs(hits[0].offset_s - start_s) <= 0.5


def test_unrelated_audio_does_not_match(audio_matcher: Matcher) -> None:
    from fpsynth import make_music

    for seed in range(200, 206):
        prints = fingerprint_query(encode_audio(make_music(seed, 12.0), "ogg"))
        assert audio_matcher.search(prints) == []


def test_remove_forgets_work(song_bytes: list[bytes]) -> None:
    m = Matcher()
    m.add(7, MediaKind.AUDIO, fingerprint_work(song_bytes[0]).values)
    query = fingerprint_query(song_bytes[0])
    assert [h.work_id for h in m.search(query)] == [7]
    m.remove(7)
    assert m.search(query) == []
    assert len(m) == 0


def test_prints_pickle(png_bytes: bytes) -> None:
    import pickle

    prints = fingerprint_work(png_bytes)
    assert pickle.loads(pickle.dumps(prints)) == prints
    assert prints.kind is MediaKind.IMAGE
    assert (prints.width, prints.height) == (480, 360)
