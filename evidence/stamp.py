"""Writing the rightsholder's notices into copies of the originals, so published files carry them.

Images get an XMP packet (dc:creator, dc:rights, photoshop:Credit, xmpRights:WebStatement and
Marked, cc:license, plus:DataMining as the IPTC/PLUS vocabulary URI) and EXIF Artist/Copyright;
JPEG also an IPTC IIM block (By-line, Copyright Notice, Credit). JPEG and PNG are edited at the
segment/chunk level, so the pixels stay byte for byte what they were; WebP is re-encoded
losslessly by Pillow. Audio gets ID3 frames (MP3, WAV), Vorbis comments (FLAC, Ogg) or MP4
atoms via mutagen. Earlier notices of the same kinds are replaced, other metadata is kept
(except other XMP properties, which a fresh packet replaces).
"""

from __future__ import annotations

import io
import os
import re
import struct
import tempfile
import warnings
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from evidence.errors import BadInput
from evidence.models import Work
from evidence.rightsmeta import DMI_PROHIBITED, NS, read_rights
from evidence.store import BlobStore, sha256_digest

MAX_NOTICE = 500
DATA_MINING = {
    "prohibited": DMI_PROHIBITED,
    "prohibited-ai-training": "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING",
    "prohibited-genai-training": "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-GENAIMLTRAINING",
    "prohibited-except-search": (
        "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING"
    ),
    "allowed": "http://ns.useplus.org/ldf/vocab/DMI-ALLOWED",
    "unspecified": "http://ns.useplus.org/ldf/vocab/DMI-UNSPECIFIED",
}
_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "audio/mpeg": ".mp3",
    "audio/flac": ".flac",
    "audio/ogg": ".ogg",
    "audio/wav": ".wav",
    "audio/mp4": ".m4a",
}


@dataclass(frozen=True)
class Notice:
    """What a stamped copy says about its rights; None leaves a field out."""

    creator: str | None = None
    copyright: str | None = None
    credit: str | None = None
    web_statement: str | None = None
    licence: str | None = None
    data_mining: str | None = DMI_PROHIBITED

    def fields(self) -> Iterator[tuple[str, str]]:
        for key in ("creator", "copyright", "credit", "web_statement", "licence", "data_mining"):
            value = getattr(self, key)
            if value:
                text = "".join(ch for ch in str(value) if ch >= " ").strip()
                if len(text) > MAX_NOTICE:
                    raise BadInput(f"{key} notice longer than {MAX_NOTICE} characters")
                yield key, text


def stamp(data: bytes, notice: Notice) -> bytes:
    """A copy of the media bytes carrying the notice; BadInput for a format we cannot stamp."""
    from fingerprints import sniff

    sniffed = sniff(data)
    mime = sniffed.mime if sniffed else "unknown"
    fields = dict(notice.fields())
    try:
        if mime == "image/jpeg":
            return _stamp_jpeg(data, fields)
        if mime == "image/png":
            return _stamp_png(data, fields)
        if mime == "image/webp":
            return _stamp_webp(data, fields)
        if mime.startswith("audio/") and mime in _EXTENSIONS:
            return _stamp_audio(data, fields)
    except BadInput:
        raise
    except Exception as exc:  # corrupt originals: one line, not a traceback
        raise BadInput(f"cannot stamp this {mime} file: {type(exc).__name__}: {exc}") from None
    raise BadInput(
        f"cannot embed notices in {mime} files (JPEG, PNG, WebP, MP3, FLAC, Ogg, WAV, M4A)"
    )


# --- XMP, EXIF, IIM payloads ----------------------------------------------------------------


def xmp_packet(fields: dict[str, str]) -> bytes:
    """An XMP packet with the IPTC Photo Metadata rights properties."""
    props = []
    if "creator" in fields:
        props.append(
            f"<dc:creator><rdf:Seq><rdf:li>{escape(fields['creator'])}</rdf:li></rdf:Seq></dc:creator>"
        )
    if "copyright" in fields:
        props.append(
            '<dc:rights><rdf:Alt><rdf:li xml:lang="x-default">'
            f"{escape(fields['copyright'])}</rdf:li></rdf:Alt></dc:rights>"
        )
        props.append("<xmpRights:Marked>True</xmpRights:Marked>")
    if "credit" in fields:
        props.append(f"<photoshop:Credit>{escape(fields['credit'])}</photoshop:Credit>")
    if "web_statement" in fields:
        props.append(
            f"<xmpRights:WebStatement>{escape(fields['web_statement'])}</xmpRights:WebStatement>"
        )
    if "licence" in fields:
        props.append(f"<cc:license rdf:resource={quoteattr(fields['licence'])}/>")
    if "data_mining" in fields:
        props.append(f"<plus:DataMining>{escape(fields['data_mining'])}</plus:DataMining>")
    xmlns = " ".join(
        f"xmlns:{p}={quoteattr(NS[p])}" for p in ("dc", "photoshop", "xmpRights", "plus", "cc")
    )
    body = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="rightswatch">'
        f'<rdf:RDF xmlns:rdf="{NS["rdf"]}"><rdf:Description rdf:about="" {xmlns}>'
        + "".join(props)
        + "</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    )
    return body.encode("utf-8")


def _exif_bytes(data: bytes, fields: dict[str, str]) -> bytes:
    """The file's EXIF (if any) with Artist and Copyright set; starts with b'Exif\\0\\0'."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(io.BytesIO(data)) as img:
            exif = img.getexif()
    _set_exif(exif, fields)
    raw = exif.tobytes()
    return raw if raw.startswith(b"Exif\x00\x00") else b"Exif\x00\x00" + raw


def _ascii(text: str) -> str:
    """EXIF Artist and Copyright are ASCII: spell the copyright sign out, replace the rest."""
    return text.replace("©", "(C)").encode("ascii", "replace").decode("ascii")


def _set_exif(exif: Any, fields: dict[str, str]) -> None:
    if "creator" in fields:
        exif[0x013B] = _ascii(fields["creator"])
    if "copyright" in fields:
        exif[0x8298] = _ascii(fields["copyright"])


def _iim_block(fields: dict[str, str]) -> bytes:
    """A Photoshop APP13 payload holding IPTC IIM datasets, declared UTF-8 (1:90 ESC % G)."""
    datasets = [(1, 90, b"\x1b%G")]
    for key, number in (("creator", 80), ("copyright", 116), ("credit", 110)):
        if key in fields:
            datasets.append((2, number, fields[key].encode("utf-8")[:2000]))
    iim = b"".join(struct.pack(">BBBH", 0x1C, rec, num, len(v)) + v for rec, num, v in datasets)
    if len(iim) % 2:
        iim += b"\x00"
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(iim)) + iim
    return b"Photoshop 3.0\x00" + resource


# --- JPEG -----------------------------------------------------------------------------------

_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"


def _jpeg_segments(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """(marker, payload) for each segment before the scan, and the rest of the file (SOS on)."""
    if not data.startswith(b"\xff\xd8"):
        raise BadInput("not a JPEG file")
    pos, segments = 2, list[tuple[int, bytes]]()
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise BadInput("corrupt JPEG: marker expected")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:  # start of scan: the rest is image data
            return segments, data[pos:]
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2 or pos + 2 + length > len(data):
            raise BadInput("corrupt JPEG: segment runs past the end")
        segments.append((marker, data[pos + 4 : pos + 2 + length]))
        pos += 2 + length
    raise BadInput("corrupt JPEG: no image data")


def _segment(marker: int, payload: bytes) -> bytes:
    if len(payload) + 2 > 0xFFFF:
        raise BadInput("notice too large for a JPEG segment")
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _stamp_jpeg(data: bytes, fields: dict[str, str]) -> bytes:
    segments, rest = _jpeg_segments(data)
    exif = _exif_bytes(data, fields)

    def ours(marker: int, payload: bytes) -> bool:
        return (marker == 0xE1 and payload.startswith((b"Exif\x00", _XMP_HEADER))) or (
            marker == 0xED and payload.startswith(b"Photoshop 3.0\x00")
        )

    kept = [(m, p) for m, p in segments if not ours(m, p)]
    lead = [s for s in kept[:1] if s[0] == 0xE0]  # keep JFIF APP0 first, as the standard asks
    new = [(0xE1, exif), (0xE1, _XMP_HEADER + xmp_packet(fields)), (0xED, _iim_block(fields))]
    out = [b"\xff\xd8"] + [_segment(m, p) for m, p in lead + new + kept[len(lead) :]]
    return b"".join(out) + rest


# --- PNG ------------------------------------------------------------------------------------

_PNG_SIG = b"\x89PNG\r\n\x1a\n"


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    pos = len(_PNG_SIG)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        if pos + 12 + length > len(data):
            raise BadInput("corrupt PNG: chunk runs past the end")
        yield ctype, data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if ctype == b"IEND":
            return
    raise BadInput("corrupt PNG: no IEND chunk")


def _chunk(ctype: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(ctype + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + ctype + payload + struct.pack(">I", crc)


def _itxt(keyword: str, text: bytes) -> bytes:
    return _chunk(b"iTXt", keyword.encode("latin-1") + b"\x00\x00\x00\x00\x00" + text)


def _stamp_png(data: bytes, fields: dict[str, str]) -> bytes:
    replaced = {b"XML:com.adobe.xmp", b"Author", b"Copyright"}
    exif = _exif_bytes(data, fields).removeprefix(b"Exif\x00\x00")
    out = [_PNG_SIG]
    for ctype, payload in _png_chunks(data):
        if ctype == b"eXIf" or (
            ctype in (b"iTXt", b"tEXt", b"zTXt") and payload.split(b"\x00", 1)[0] in replaced
        ):
            continue
        out.append(_chunk(ctype, payload))
        if ctype == b"IHDR":  # metadata before the image data, where readers look first
            out.append(_chunk(b"eXIf", exif))
            out.append(_itxt("XML:com.adobe.xmp", xmp_packet(fields)))
            if "creator" in fields:
                out.append(_itxt("Author", fields["creator"].encode("utf-8")))
            if "copyright" in fields:
                out.append(_itxt("Copyright", fields["copyright"].encode("utf-8")))
    return b"".join(out)


# --- WebP -----------------------------------------------------------------------------------


def _stamp_webp(data: bytes, fields: dict[str, str]) -> bytes:
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(io.BytesIO(data), formats=["WEBP"]) as img:
            if getattr(img, "n_frames", 1) > 1:
                raise BadInput("cannot stamp animated WebP files")
            exif = img.getexif()
            _set_exif(exif, fields)
            out = io.BytesIO()
            img.save(out, "WEBP", lossless=True, exact=True, exif=exif, xmp=xmp_packet(fields))
    return out.getvalue()


# --- audio ----------------------------------------------------------------------------------


def _stamp_audio(data: bytes, fields: dict[str, str]) -> bytes:
    import mutagen
    from mutagen import id3

    buf = io.BytesIO(data)
    audio = mutagen.File(buf)
    if audio is None:
        raise BadInput("cannot read this audio file's tags")
    if audio.tags is None:
        audio.add_tags()
    tags: Any = audio.tags
    if isinstance(tags, id3.ID3):
        _id3_frames(tags, fields)
    elif type(tags).__name__.startswith("MP4"):
        for key, atom in (("creator", "\xa9ART"), ("copyright", "cprt")):
            if key in fields:
                tags[atom] = [fields[key]]
        for key in ("licence", "data_mining", "web_statement", "credit"):
            if key in fields:
                tags[f"----:org.rightswatch:{key.upper()}"] = [fields[key].encode("utf-8")]
    else:  # Vorbis comments
        names = {
            "creator": "ARTIST",
            "copyright": "COPYRIGHT",
            "licence": "LICENSE",
            "data_mining": "DATAMINING",
            "web_statement": "CONTACT",
            "credit": "ORGANIZATION",
        }
        for key, name in names.items():
            if key in fields:
                tags[name] = [fields[key]]
    buf.seek(0)
    audio.save(buf)
    return buf.getvalue()


def _id3_frames(tags: Any, fields: dict[str, str]) -> None:
    import mutagen.id3

    id3: Any = mutagen.id3

    frames: dict[str, Any] = {
        "creator": lambda v: id3.TPE1(encoding=3, text=[v]),
        "copyright": lambda v: id3.TCOP(encoding=3, text=[v]),
        "credit": lambda v: id3.TPUB(encoding=3, text=[v]),
        "web_statement": lambda v: id3.WCOP(url=v),
        "licence": lambda v: id3.TXXX(encoding=3, desc="LICENSE", text=[v]),
        "data_mining": lambda v: id3.TXXX(encoding=3, desc="DATAMINING", text=[v]),
    }
    for key, make in frames.items():
        if key in fields:
            frame = make(fields[key])
            tags.delall(frame.HashKey)
            tags.add(frame)


# --- works ----------------------------------------------------------------------------------


def notice_for(
    work: Work, *, web_statement: str | None, licence: str | None, data_mining: str | None
) -> Notice:
    """The notice a work's copies carry: its creator, its rightsholder's copyright and credit."""
    holder = work.rightsholder.name
    return Notice(
        creator=work.creator or holder,
        copyright=f"© {holder}. All rights reserved.",
        credit=holder,
        web_statement=web_statement,
        licence=licence,
        data_mining=data_mining,
    )


def safe_name(ref: str, mime: str, taken: set[str]) -> str:
    """A file name from a ref that cannot leave the output directory, unique among `taken`."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", ref).strip("._-")[:100] or "work"
    ext = _EXTENSIONS.get(mime, ".bin")
    name, n = stem + ext, 1
    while name.lower() in taken:
        n += 1
        name = f"{stem}-{n}{ext}"
    taken.add(name.lower())
    return name


def _write_inside(outdir: Path, name: str, data: bytes) -> Path:
    """Write atomically to outdir/name; os.replace replaces a symlink, never follows it."""
    fd, tmp = tempfile.mkstemp(dir=outdir, prefix=".stamp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)  # a file to publish, not mkstemp's private 0600
        os.replace(tmp, outdir / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return outdir / name


def stamp_works(
    store: BlobStore,
    works: Sequence[Work],
    outdir: Path,
    *,
    web_statement: str | None = None,
    licence: str | None = None,
    data_mining: str | None = DMI_PROHIBITED,
) -> list[dict[str, Any]]:
    """Write a stamped copy of each work's original into outdir; check each reads back."""
    if outdir.exists() and not outdir.is_dir():
        raise BadInput(f"{outdir}: not a directory")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"{outdir}: {exc.strerror}") from None
    taken: set[str] = set()  # names given in this call; files from earlier calls are replaced
    results = []
    for work in works:
        original = store.get(work.sha256)
        notice = notice_for(
            work, web_statement=web_statement, licence=licence, data_mining=data_mining
        )
        stamped = stamp(original, notice)
        back = read_rights(stamped)
        for key, value in notice.fields():
            if key in ("creator", "copyright", "data_mining") and back.get(key) != value:
                raise BadInput(f"work {work.ref!r}: the {key} notice did not read back")
        path = _write_inside(outdir, safe_name(work.ref, work.mime, taken), stamped)
        results.append(
            {
                "work_id": work.id,
                "ref": work.ref,
                "path": str(path),
                "sha256": sha256_digest(stamped).removeprefix("sha256:"),
                "rights": {k: back.get(k) for k in ("creator", "copyright", "data_mining")},
            }
        )
    return results
