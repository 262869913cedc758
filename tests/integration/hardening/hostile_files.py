"""Builders for hostile audio containers (HOSTILE.md M6, M7): chained Ogg, Ogg pages that claim
hours, and MP4/MOV files whose samples live in another file (an external data reference).

Everything is made from a small real file that ffmpeg encodes, then rewritten byte by byte.
"""

from __future__ import annotations

import functools
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

# --- ffmpeg ------------------------------------------------------------------------------------


def ffmpeg(out: Path, source: str, seconds: float, *codec: str) -> bytes:
    """Encode `seconds` of the lavfi `source` with the given codec arguments into `out`."""
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            source,
            "-t",
            str(seconds),
            *codec,
            str(out),
        ],
        check=True,
        timeout=300,
    )
    return out.read_bytes()


# --- Ogg ---------------------------------------------------------------------------------------


@functools.cache
def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return tuple(table)


def ogg_crc(data: bytes) -> int:
    """Ogg's page checksum: CRC-32, polynomial 0x04C11DB7, not reflected, init 0."""
    table, r = _crc_table(), 0
    for b in data:
        r = ((r << 8) & 0xFFFFFFFF) ^ table[((r >> 24) & 0xFF) ^ b]
    return r


def ogg_pages(data: bytes) -> Iterator[bytearray]:
    off = 0
    while off < len(data):
        if data[off : off + 4] != b"OggS":
            raise ValueError(f"no Ogg page at {off}")
        n = data[off + 26]
        size = 27 + n + sum(data[off + 27 : off + 27 + n])
        yield bytearray(data[off : off + size])
        off += size


def ogg_link(data: bytes, serial: int, last_granule: int | None = None) -> bytes:
    """One Ogg file as a chain link with its own serial number; optionally make its last page
    claim `last_granule` samples (what a demuxer reads the duration from)."""
    pages = list(ogg_pages(data))
    out = []
    for i, page in enumerate(pages):
        page[14:18] = struct.pack("<I", serial)
        if last_granule is not None and i == len(pages) - 1:
            page[6:14] = struct.pack("<q", last_granule)
        page[22:26] = b"\x00\x00\x00\x00"
        page[22:26] = struct.pack("<I", ogg_crc(bytes(page)))
        out.append(bytes(page))
    return b"".join(out)


def ogg_chain(links: list[bytes], first_serial: int = 1000) -> bytes:
    """Logical bitstreams one after another (RFC 3533 chaining), each with a new serial."""
    return b"".join(ogg_link(link, first_serial + i) for i, link in enumerate(links))


# --- ISO BMFF (MP4/MOV) ------------------------------------------------------------------------

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"dinf", b"stbl"}
Box = list  # [type, bytes | list[Box]]


def parse_boxes(data: bytes) -> list[Box]:
    out: list[Box] = []
    off = 0
    while off + 8 <= len(data):
        size = int.from_bytes(data[off : off + 4], "big")
        kind, body = data[off + 4 : off + 8], data[off + 8 : off + size]
        out.append([kind, parse_boxes(body) if kind in _CONTAINERS else body])
        off += size
    return out


def write_boxes(boxes: list[Box]) -> bytes:
    out = b""
    for kind, body in boxes:
        payload = write_boxes(body) if isinstance(body, list) else body
        out += struct.pack(">I", 8 + len(payload)) + kind + payload
    return out


def find_boxes(boxes: list[Box], kind: bytes) -> Iterator[Box]:
    for box in boxes:
        if box[0] == kind:
            yield box
        if isinstance(box[1], list):
            yield from find_boxes(box[1], kind)


def alias_entry(path: bytes) -> bytes:
    """A QuickTime `alis` data reference naming an absolute path (the layout FFmpeg's
    mov_read_dref parses: volume, file name, nlvl from/to, then typed fields, 2 = path)."""
    record = (
        b"\x00" * 10
        + b"\x00"
        + b"\x00" * 27  # volume name
        + b"\x00" * 12
        + b"\x00"
        + b"\x00" * 63  # file name
        + b"\x00" * 16
        + struct.pack(">HH", 1, 1)  # nlvl_from, nlvl_to
        + b"\x00" * 16
    )
    padded = path + (b"\x00" if len(path) % 2 else b"")
    record += struct.pack(">hH", 2, len(path)) + padded + struct.pack(">hH", -1, 0)
    body = b"alis" + b"\x00\x00\x00\x00" + record
    return struct.pack(">I", 4 + len(body)) + body


def url_entry(url: bytes) -> bytes:
    """An ISO `url ` data reference that is not self-contained (flags 0): samples at `url`."""
    body = b"url " + b"\x00\x00\x00\x00" + url + b"\x00"
    return struct.pack(">I", 4 + len(body)) + body


def external_samples(mov: bytes, entries: list[bytes], brand: bytes = b"isom") -> bytes:
    """`mov` with its media data removed and its sample table pointing, through `entries` (the
    first one is used), at offset 0 of another file; the ftyp brand set to `brand`."""
    boxes = [b for b in parse_boxes(mov) if b[0] not in (b"mdat", b"wide", b"free")]
    for ftyp in find_boxes(boxes, b"ftyp"):
        assert isinstance(ftyp[1], bytes)
        ftyp[1] = brand + ftyp[1][4:]
    for dref in find_boxes(boxes, b"dref"):
        dref[1] = b"\x00\x00\x00\x00" + struct.pack(">I", len(entries)) + b"".join(entries)
    for stco in find_boxes(boxes, b"stco"):
        assert isinstance(stco[1], bytes)
        count = int.from_bytes(stco[1][4:8], "big")
        stco[1] = stco[1][:8] + b"\x00\x00\x00\x00" * count
    return write_boxes(boxes)
