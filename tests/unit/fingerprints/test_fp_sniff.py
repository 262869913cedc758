from __future__ import annotations

import pytest
from fpsynth import encode_audio, make_image, to_bytes

from fingerprints import MediaKind, Sniffed, sniff


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [
        ("PNG", "image/png"),
        ("JPEG", "image/jpeg"),
        ("GIF", "image/gif"),
        ("WEBP", "image/webp"),
        ("BMP", "image/bmp"),
    ],
)
def test_images_are_sniffed(fmt: str, mime: str) -> None:
    data = to_bytes(make_image(3, (64, 48)), fmt)
    assert sniff(data) == Sniffed(MediaKind.IMAGE, mime)


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("ogg", "audio/ogg"), ("mp3", "audio/mpeg"), ("flac", "audio/flac"), ("wav", "audio/wav")],
)
def test_audio_is_sniffed(fmt: str, mime: str) -> None:
    import numpy as np

    data = encode_audio(np.zeros(2205, np.float32), fmt)
    assert sniff(data) == Sniffed(MediaKind.AUDIO, mime)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xd8",
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>',
        b"<svg><script>alert(1)</script></svg>",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj",
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10",
        b"\xc5\xd0\xd3\xc6" + bytes(40),  # DOS EPS binary header
        b"8BPS\x00\x01" + bytes(40),  # PSD
        b"II*\x00\x08\x00\x00\x00" + bytes(40),  # TIFF little-endian
        b"MM\x00*\x00\x00\x00\x08" + bytes(40),  # TIFF big-endian
        b"SIMPLE  =                    T" + bytes(50),  # FITS
        b"#EXTM3U\nfile:///etc/passwd\nhttp://127.0.0.1:9/\n",
        b"ffconcat version 1.0\nfile '/etc/passwd'\n",
        b"[playlist]\nFile1=http://127.0.0.1/\n",
        b"OggS" + bytes(24) + b"\x80theora" + bytes(30),
        b"\x00\x00\x01\x00\x01\x00\x10\x10" + bytes(40),  # ICO
        b"hello, world, this is plain text",
    ],
)
def test_everything_else_is_none(data: bytes) -> None:
    assert sniff(data) is None


def test_qt_mov_is_not_audio() -> None:
    assert sniff(b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ") is None
