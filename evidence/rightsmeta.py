"""Reading the rights notices a media file carries: who made it, who owns it, may it be mined.

These notices are copyright management information: a copy that lost what the original carried
is the basis of a removal claim (`removed`). `read_rights` is a pure function over bytes from
anywhere, so it never raises: it returns the notices it could read, or `{"reason": ...}` when the
bytes are not an image or audio file it can read. Every string is capped at `MAX_TEXT`.

Sources, first one found wins per field:

* images: XMP (dc:creator, dc:rights, photoshop:Credit, xmpRights:WebStatement, cc:license,
  xmpRights:UsageTerms, plus:DataMining), IPTC IIM (By-line, Copyright Notice, Credit), EXIF
  (Artist, Copyright), PNG text chunks (Author, Copyright);
* audio (mutagen): ID3 (TPE1, TCOP, WCOP, TXXX:LICENSE, TXXX:DATAMINING), Vorbis comments
  (ARTIST, COPYRIGHT, LICENSE, DATAMINING, CONTACT), MP4 (©ART, cprt);
* C2PA content credentials (c2pa-python, remote manifests never fetched): "valid", "invalid" or
  None when the file carries none.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

log = logging.getLogger(__name__)

MAX_TEXT = 1000  # characters kept of any one notice
MAX_XMP = 2 * 1024 * 1024  # bytes of XMP parsed at most
FIELDS = ("creator", "copyright", "data_mining", "credit", "web_statement", "licence", "c2pa")
CMI_FIELDS = ("creator", "copyright", "data_mining")  # what a copy must not lose

PLUS_DATA_MINING = "http://ns.useplus.org/ldf/vocab/DMI-"
DMI_PROHIBITED = "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED"

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "xmpRights": "http://ns.adobe.com/xap/1.0/rights/",
    "plus": "http://ns.useplus.org/ldf/xmp/1.0/",
    "cc": "http://creativecommons.org/ns#",
    "Iptc4xmpCore": "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/",
}
_RDF_RESOURCE = f"{{{NS['rdf']}}}resource"

# XMP property (namespace, local name) -> our field; ordered by preference within a field.
_XMP_PROPS: tuple[tuple[str, str, str], ...] = (
    ("creator", "dc", "creator"),
    ("copyright", "dc", "rights"),
    ("credit", "photoshop", "Credit"),
    ("web_statement", "xmpRights", "WebStatement"),
    ("licence", "cc", "license"),
    ("licence", "xmpRights", "UsageTerms"),
    ("data_mining", "plus", "DataMining"),
)
_EXIF_ARTIST, _EXIF_COPYRIGHT = 0x013B, 0x8298
_IIM = {(2, 80): "creator", (2, 116): "copyright", (2, 110): "credit"}
_IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")  # never TIFF/EPS/PSD: see HOSTILE.md M2


def clean(value: Any) -> str | None:
    """A notice as stored: text, no NULs or control characters, capped; None when empty."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value[: MAX_TEXT * 4].decode("utf-8", errors="replace")
    text = "".join(ch for ch in str(value)[: MAX_TEXT * 2] if ch >= " " or ch in "\t\n")
    text = text.strip()[:MAX_TEXT]
    return text or None


def read_rights(data: bytes) -> dict[str, Any]:
    """The rights notices in an image or audio file; `{"reason": ...}` when it cannot be read."""
    from fingerprints import MediaKind, sniff

    try:
        sniffed = sniff(data)
    except Exception as exc:  # a pure function over hostile bytes: nothing escapes
        return {"reason": f"unreadable: {type(exc).__name__}"}
    if sniffed is None:
        return {"reason": "not an image or audio file"}
    found: dict[str, Any] = dict.fromkeys(FIELDS)
    reader = _image_rights if sniffed.kind is MediaKind.IMAGE else _audio_rights
    try:
        reader(data, found)
    except Exception as exc:
        log.debug("rights metadata unreadable: %s", exc)
        return {"reason": f"metadata unreadable: {type(exc).__name__}"}
    found["c2pa"] = c2pa_status(data, sniffed.mime)
    return found


def removed(original: Mapping[str, Any], found: Mapping[str, Any]) -> bool:
    """True when the original carried a creator, copyright or data-mining notice the copy lacks.

    A copy whose metadata could not be read at all (`reason`) proves nothing, so it is False.
    """
    if not original or "reason" in original or not found or "reason" in found:
        return False
    return any(original.get(key) and not found.get(key) for key in CMI_FIELDS)


def rights_flags(original: Mapping[str, Any], found: Mapping[str, Any]) -> list[str]:
    """The match flags a found copy earns: ["rights_metadata_removed"] or []."""
    return ["rights_metadata_removed"] if removed(original, found) else []


def _set(found: dict[str, Any], key: str, value: Any) -> None:
    if found.get(key) is None:
        found[key] = clean(value)


# --- images ---------------------------------------------------------------------------------


def _image_rights(data: bytes, found: dict[str, Any]) -> None:
    from PIL import Image, IptcImagePlugin

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bomb and corrupt-EXIF warnings: the header is enough
        with Image.open(io.BytesIO(data), formats=_IMAGE_FORMATS) as img:
            xmp = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp")
            if xmp:
                _xmp_rights(xmp, found)
            if img.format == "JPEG":
                iptc = IptcImagePlugin.getiptcinfo(img) or {}
                for tag, key in _IIM.items():
                    value = iptc.get(tag)
                    _set(found, key, value[0] if isinstance(value, list) and value else value)
            exif = img.getexif()
            _set(found, "creator", exif.get(_EXIF_ARTIST))
            _set(found, "copyright", exif.get(_EXIF_COPYRIGHT))
            if img.format == "PNG":
                _set(found, "creator", img.info.get("Author"))
                _set(found, "copyright", img.info.get("Copyright"))


def _xmp_rights(packet: bytes | str, found: dict[str, Any]) -> None:
    """Parse an XMP packet with defusedxml (no entities, no DTDs): XMP is attacker-supplied."""
    from defusedxml import ElementTree as DET  # type: ignore[import-untyped]

    raw = packet.encode("utf-8") if isinstance(packet, str) else packet
    if len(raw) > MAX_XMP:
        return
    start = raw.find(b"<x:xmpmeta")
    end = raw.rfind(b"</x:xmpmeta>")
    if start >= 0 and end > start:
        raw = raw[start : end + len(b"</x:xmpmeta>")]
    try:
        root = DET.fromstring(raw)
    except Exception as exc:
        log.debug("XMP unreadable: %s", exc)
        return
    for key, prefix, local in _XMP_PROPS:
        if found.get(key) is not None:
            continue
        qname = f"{{{NS[prefix]}}}{local}"
        for desc in root.iter(f"{{{NS['rdf']}}}Description"):
            value = desc.get(qname)  # attribute form: <rdf:Description plus:DataMining="...">
            if value is None:
                elem = desc.find(qname)
                if elem is not None:
                    value = _xmp_value(elem)
            if value:
                found[key] = clean(value)
                break


def _xmp_value(elem: Any) -> str | None:
    """A simple property, a resource, or the first rdf:li of a Seq/Bag/Alt (x-default first)."""
    resource = elem.get(_RDF_RESOURCE)
    if resource:
        return str(resource)
    items = list(elem.iter(f"{{{NS['rdf']}}}li"))
    if items:
        lang = "{http://www.w3.org/XML/1998/namespace}lang"
        items.sort(key=lambda li: li.get(lang) != "x-default")
        return "; ".join(
            t for li in items if (t := (li.text or li.get(_RDF_RESOURCE) or "").strip())
        )
    text = (elem.text or "").strip()
    return text or None


# --- audio ----------------------------------------------------------------------------------

_VORBIS = {
    "creator": ("ARTIST", "COMPOSER"),
    "copyright": ("COPYRIGHT",),
    "licence": ("LICENSE",),
    "data_mining": ("DATAMINING",),
    "web_statement": ("CONTACT",),
    "credit": ("ORGANIZATION", "LABEL"),
}
_ID3_TEXT = {"creator": "TPE1", "copyright": "TCOP", "credit": "TPUB"}
_ID3_TXXX = {"licence": "LICENSE", "data_mining": "DATAMINING"}
_MP4 = {"creator": "\xa9ART", "copyright": "cprt"}


def _audio_rights(data: bytes, found: dict[str, Any]) -> None:
    import mutagen

    audio = mutagen.File(io.BytesIO(data))
    tags = getattr(audio, "tags", None) if audio is not None else None
    if tags is None:
        return
    if hasattr(tags, "getall"):  # ID3 (MP3, WAV/AIFF ID3 chunks)
        _id3_rights(tags, found)
    elif hasattr(tags, "keys") and type(tags).__name__.startswith("MP4"):
        for key, atom in _MP4.items():
            _set(found, key, _first(tags.get(atom)))
        for key in ("licence", "data_mining", "web_statement", "credit"):
            _set(found, key, _first(tags.get(f"----:org.rightswatch:{key.upper()}")))
    else:  # Vorbis comments: FLAC, Ogg Vorbis, Opus
        for key, names in _VORBIS.items():
            for name in names:
                _set(found, key, _first(tags.get(name)))


def _id3_rights(tags: Any, found: dict[str, Any]) -> None:
    for key, frame in _ID3_TEXT.items():
        _set(found, key, _first(_frame_text(tags, frame)))
    for frame in tags.getall("WCOP"):
        _set(found, "web_statement", frame.url)
    for frame in tags.getall("TXXX"):
        for key, desc in _ID3_TXXX.items():
            if str(frame.desc).upper() == desc:
                _set(found, key, _first(frame.text))


def _frame_text(tags: Any, frame_id: str) -> list[Any]:
    frames = tags.getall(frame_id)
    return list(frames[0].text) if frames else []


def _first(values: Any) -> Any:
    if isinstance(values, list | tuple):
        return values[0] if values else None
    return values


# --- C2PA -----------------------------------------------------------------------------------

_C2PA_SETTINGS = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}


def c2pa_status(data: bytes, mime: str) -> str | None:
    """ "valid" or "invalid" content credentials, or None when the file carries none.

    A manifest that validates ("Valid", or "Trusted" against a trust list) is "valid"; one whose
    hashes or signature do not check out, or that cannot be parsed, is "invalid".
    """
    if b"c2pa" not in data:  # every manifest store is a JUMBF box labelled "c2pa"
        return None
    try:
        import c2pa
    except ImportError:  # pragma: no cover - c2pa-python is a dependency
        return None
    try:
        with (
            c2pa.Context.from_dict(_C2PA_SETTINGS) as ctx,
            c2pa.Reader(mime, io.BytesIO(data), context=ctx) as reader,
        ):
            state = reader.get_validation_state()
    except c2pa.C2paError.ManifestNotFound:
        return None
    except c2pa.C2paError.NotSupported:
        return None
    except Exception as exc:  # a store that is there but broken
        log.debug("C2PA manifest unreadable: %s", exc)
        return "invalid"
    if state is None:
        return None
    return "valid" if str(state).lower() in ("valid", "trusted") else "invalid"


def summary(rights: Mapping[str, Any], keys: Iterable[str] = CMI_FIELDS) -> dict[str, Any]:
    """The subset CONTRACT.md reports for a media file: creator, copyright, data_mining."""
    return {key: rights.get(key) for key in keys}


__all__ = [
    "CMI_FIELDS",
    "DMI_PROHIBITED",
    "FIELDS",
    "MAX_TEXT",
    "c2pa_status",
    "clean",
    "read_rights",
    "removed",
    "rights_flags",
    "summary",
]
