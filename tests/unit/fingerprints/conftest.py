"""Generated media shared by the fingerprints tests (made once per session, in memory)."""

from __future__ import annotations

import numpy as np
import pytest
from fpsynth import RATE, encode_audio, make_image, make_music, to_bytes
from PIL import Image


@pytest.fixture(scope="session")
def images() -> list[Image.Image]:
    return [make_image(seed) for seed in range(1, 7)]


@pytest.fixture(scope="session")
def distractor_images() -> list[Image.Image]:
    return [make_image(seed) for seed in range(100, 120)]


@pytest.fixture(scope="session")
def songs() -> list[np.ndarray]:
    return [make_music(seed, 40.0) for seed in range(1, 5)]


@pytest.fixture(scope="session")
def song_bytes(songs: list[np.ndarray]) -> list[bytes]:
    return [encode_audio(s, "flac") for s in songs]


@pytest.fixture(scope="session")
def png_bytes(images: list[Image.Image]) -> bytes:
    return to_bytes(images[0], "PNG")


@pytest.fixture(scope="session")
def ogg_bytes(songs: list[np.ndarray]) -> bytes:
    return encode_audio(songs[0][: 8 * RATE], "ogg")
