"""Found files whose rights metadata is hostile (HOSTILE.md M8): markup, quotes and SQL, NUL,
invalid UTF-8 and megabyte strings in EXIF, XMP, PNG text chunks and ID3 frames."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

SCRIPT = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
QUOTES = "O'Brien \"the quoted\" '); DROP TABLE works; --"
BAD_UTF8 = b"\xff\xfe\xc3(\xed\xa0\x80"
MEGA = 1 << 20
ARTIST, COPYRIGHT = 0x013B, 0x8298  # EXIF tags
# What a browser would run if the bytes were ever taken for HTML (a JPEG/HTML polyglot).
POLYGLOT = b"<html><body><script>window.__pwned=3</script></body></html>"


def xmp_packet(creator: str | None, rights: str | None) -> bytes:
    creator_xml = (
        ""
        if creator is None
        else f"<dc:creator><rdf:Seq><rdf:li>{creator}</rdf:li></rdf:Seq></dc:creator>"
    )
    rights_xml = (
        ""
        if rights is None
        else '<dc:rights><rdf:Alt><rdf:li xml:lang="x-default">'
        f"{rights}</rdf:li></rdf:Alt></dc:rights>"
    )
    return (
        '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
        ' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"{creator_xml}"
        f"{rights_xml}"
        '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def hostile_jpeg(img: Image.Image) -> bytes:
    """EXIF Artist with markup, NUL and invalid UTF-8; XMP (which wins over EXIF) with a 60 KB
    dc:rights that starts with quotes and SQL; an HTML document in a comment segment."""
    exif = Image.Exif()
    exif[ARTIST] = SCRIPT.encode() + b"\x00" + BAD_UTF8
    out = io.BytesIO()
    img.convert("RGB").save(out, "JPEG", quality=92, exif=exif.tobytes())
    data = out.getvalue()
    xmp = xmp_packet(None, _escape(QUOTES) + "R" * 60_000)
    app1 = _segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + xmp)
    com = _segment(0xFE, POLYGLOT)
    return data[:2] + com + app1 + data[2:]


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def hostile_png(img: Image.Image) -> bytes:
    """An iTXt XMP packet whose dc:creator is a megabyte (markup first); a tEXt Copyright with
    quotes and SQL; an iTXt Author (declared UTF-8) that is not UTF-8."""
    out = io.BytesIO()
    img.save(out, "PNG")
    data = out.getvalue()
    creator = (_escape(SCRIPT) + "A" * MEGA).encode()
    xmp = xmp_packet("CREATOR", None).replace(b"CREATOR", creator)
    itxt = _png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp)
    text = _png_chunk(b"tEXt", b"Copyright\x00" + QUOTES.encode("latin-1"))
    author = _png_chunk(b"iTXt", b"Author\x00\x00\x00\x00\x00" + BAD_UTF8 + b"\x00 after NUL")
    ihdr_end = 8 + 25
    return data[:ihdr_end] + itxt + text + author + data[ihdr_end:]


def _syncsafe(n: int) -> bytes:
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])


def _id3_frame(frame_id: bytes, body: bytes) -> bytes:
    return frame_id + _syncsafe(len(body)) + b"\x00\x00" + body


def id3_tag() -> bytes:
    """ID3v2.4: TPE1 with markup, then NUL; TPUB (declared UTF-8) not UTF-8; TCOP a megabyte;
    TXXX LICENSE with quotes and SQL."""
    frames = (
        _id3_frame(b"TPE1", b"\x03" + SCRIPT.encode() + b"\x00second value")
        + _id3_frame(b"TPUB", b"\x03" + BAD_UTF8 + b" label")
        + _id3_frame(b"TCOP", b"\x03" + b"C" * MEGA)
        + _id3_frame(b"TXXX", b"\x03LICENSE\x00" + QUOTES.encode())
    )
    return b"ID3\x04\x00\x00" + _syncsafe(len(frames)) + frames


def strip_id3(mp3: bytes) -> bytes:
    while mp3.startswith(b"ID3") and len(mp3) >= 10:
        size = sum(b << (7 * (3 - i)) for i, b in enumerate(mp3[6:10]))
        mp3 = mp3[10 + size + (10 if mp3[5] & 0x10 else 0) :]
    return mp3


def hostile_mp3(mp3: bytes) -> bytes:
    return id3_tag() + strip_id3(mp3)
