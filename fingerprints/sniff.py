"""Decide from magic bytes, never from names or headers, what a file is.

Only an allow-list gets through: everything else (SVG, PDF, EPS, PSD, TIFF, ICO, playlists,
text) is ``None`` and is never handed to a decoder, so Ghostscript, playlist demuxers and
exotic parsers are never reached.
"""

from __future__ import annotations

import dataclasses
import functools

from PIL import Image

from fingerprints.base import MediaKind

__all__ = ["Sniffed", "sniff"]

_MP3_BITRATE_BAD = 0x0F
_BMP_DIB_SIZES = {12, 40, 52, 56, 64, 108, 124}
_MP4_AUDIO_BRANDS = {
    b"M4A ",
    b"M4B ",
    b"mp41",
    b"mp42",
    b"isom",
    b"iso2",
    b"iso5",
    b"dash",
    b"M4V ",
}
_AVIF_BRANDS = {b"avif", b"avis"}


@dataclasses.dataclass(frozen=True, slots=True)
class Sniffed:
    kind: MediaKind
    mime: str


@functools.cache
def _pillow_reads_avif() -> bool:
    Image.init()
    return "AVIF" in Image.OPEN


def _image(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if (
        data[:2] == b"BM"
        and len(data) >= 18
        and int.from_bytes(data[14:18], "little") in _BMP_DIB_SIZES
    ):
        return "image/bmp"
    if data[4:8] == b"ftyp" and data[8:12] in _AVIF_BRANDS and _pillow_reads_avif():
        return "image/avif"
    return None


def _mpeg_frame(b0: int, b1: int, b2: int) -> str | None:
    """Classify an MPEG audio frame-sync header: MP3 frame, ADTS AAC, or neither."""
    if b0 != 0xFF or (b1 & 0xE0) != 0xE0:
        return None
    layer = (b1 >> 1) & 0x03
    if layer == 0:  # ADTS: MPEG version bit free, layer 00
        return "audio/aac" if (b1 & 0xF6) == 0xF0 and (b2 >> 2) & 0x0F < 13 else None
    if (b1 >> 3) & 0x03 == 1 or b2 >> 4 == _MP3_BITRATE_BAD or (b2 >> 2) & 0x03 == 3:
        return None  # reserved version, bad bitrate or reserved sample rate
    return "audio/mpeg"


def _audio(data: bytes) -> str | None:
    if data.startswith(b"ID3") and len(data) >= 10:
        return "audio/mpeg"
    if data.startswith(b"OggS"):
        head = data[28:64]  # first page's first packet
        if head.startswith((b"\x01vorbis", b"OpusHead")):
            return "audio/ogg"
        return None
    if data.startswith(b"fLaC"):
        return "audio/flac"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data[4:8] == b"ftyp" and data[8:12] in _MP4_AUDIO_BRANDS:
        return "audio/mp4"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "audio/webm" if b"webm" in data[:64] else "audio/x-matroska"
    if len(data) >= 4:
        return _mpeg_frame(data[0], data[1], data[2])
    return None


def sniff(data: bytes) -> Sniffed | None:
    """What the bytes are, if they are an allowed image or audio format; else None."""
    if len(data) < 8:
        return None
    if mime := _image(data):
        return Sniffed(MediaKind.IMAGE, mime)
    if mime := _audio(data):
        return Sniffed(MediaKind.AUDIO, mime)
    return None
