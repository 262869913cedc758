"""evidence.rightsmeta: rights notices read from files written by other tools, hostile input,
C2PA valid / invalid / absent, and the removal test."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from signalkit import (
    EXIFTOOL,
    audio_bytes,
    c2pa_sign,
    c2pa_signer,
    image_bytes,
    tamper_pixels,
)

from evidence.rightsmeta import CMI_FIELDS, FIELDS, MAX_TEXT, clean, read_rights, removed

needs_exiftool = pytest.mark.skipif(EXIFTOOL is None, reason="exiftool not installed")


def exiftool_write(tmp_path: Path, data: bytes, suffix: str, *tags: str) -> bytes:
    path = tmp_path / f"f{suffix}"
    path.write_bytes(data)
    subprocess.run(
        [str(EXIFTOOL), "-q", "-overwrite_original", "-charset", "utf8", *tags, str(path)],
        check=True,
    )
    return path.read_bytes()


def test_plain_image_has_every_field_and_none_set() -> None:
    rights = read_rights(image_bytes(1))
    assert set(rights) == set(FIELDS)
    assert all(value is None for value in rights.values())


@needs_exiftool
@pytest.mark.parametrize(("fmt", "suffix"), [("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp")])
def test_xmp_written_by_exiftool_is_read(tmp_path: Path, fmt: str, suffix: str) -> None:
    data = exiftool_write(
        tmp_path,
        image_bytes(2, fmt),
        suffix,
        "-XMP-dc:Creator=Jane Doe",
        "-XMP-dc:Rights=© 2024 Jane Doe",
        "-XMP-photoshop:Credit=Doe Pictures",
        "-XMP-xmpRights:WebStatement=https://doe.example/rights",
        "-XMP-xmpRights:UsageTerms=No AI training",
    )
    rights = read_rights(data)
    assert rights["creator"] == "Jane Doe"
    assert rights["copyright"] == "© 2024 Jane Doe"
    assert rights["credit"] == "Doe Pictures"
    assert rights["web_statement"] == "https://doe.example/rights"
    assert rights["licence"] == "No AI training"
    assert rights["data_mining"] is None


@needs_exiftool
def test_exif_and_iptc_iim_written_by_exiftool_are_read(tmp_path: Path) -> None:
    exif_only = exiftool_write(
        tmp_path, image_bytes(3), ".jpg", "-EXIF:Artist=Exif Artist", "-EXIF:Copyright=Exif (c)"
    )
    assert (read_rights(exif_only)["creator"], read_rights(exif_only)["copyright"]) == (
        "Exif Artist",
        "Exif (c)",
    )
    iim = exiftool_write(
        tmp_path,
        image_bytes(4),
        ".jpg",
        "-IPTC:By-line=Iim Author",
        "-IPTC:CopyrightNotice=Iim (c)",
        "-IPTC:Credit=Iim Credit",
    )
    rights = read_rights(iim)
    assert (rights["creator"], rights["copyright"], rights["credit"]) == (
        "Iim Author",
        "Iim (c)",
        "Iim Credit",
    )


def _xmp_jpeg(packet: bytes) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(image_bytes(5))).save(buf, "JPEG", xmp=packet)
    return buf.getvalue()


def test_data_mining_in_attribute_and_resource_forms() -> None:
    attr = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:plus="http://ns.useplus.org/ldf/xmp/1.0/" '
        b'plus:DataMining="http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING"/>'
        b"</rdf:RDF></x:xmpmeta>"
    )
    assert read_rights(_xmp_jpeg(attr))["data_mining"].endswith("DMI-PROHIBITED-AIMLTRAINING")
    resource = attr.replace(
        b'plus:DataMining="http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING"/>',
        b'><plus:DataMining rdf:resource="http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED"/>'
        b"</rdf:Description>",
    )
    assert read_rights(_xmp_jpeg(resource))["data_mining"] == (
        "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED"
    )


def test_xml_bomb_in_xmp_is_not_expanded() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>&c;</dc:creator>'
        b"</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    # the DOCTYPE is cut off before parsing; an entity reference then is an error, not text
    rights = read_rights(_xmp_jpeg(bomb))
    assert rights["creator"] is None


def test_hostile_strings_are_capped_and_cleaned() -> None:
    exif = Image.Exif()
    exif[0x013B] = "A" * 1_000_000
    exif[0x8298] = "<script>alert(1)</script>\x00\x01 (c)"
    buf = io.BytesIO()
    Image.open(io.BytesIO(image_bytes(6))).save(buf, "PNG", exif=exif)  # PNG: no 64 KB limit
    rights = read_rights(buf.getvalue())
    assert len(rights["creator"]) == MAX_TEXT
    assert rights["copyright"] == "<script>alert(1)</script> (c)"  # stored as data, no NUL
    assert clean(b"\xff\xfebad utf-8\x00") == "\ufffd\ufffdbad utf-8"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 64,
        os.urandom(4096),
        b"\xff\xd8\xff" + os.urandom(2000),  # JPEG magic, garbage after
        b"\x89PNG\r\n\x1a\n" + os.urandom(500),
        b"RIFF\x00\x00\x00\x00WEBPVP8 " + os.urandom(100),
        b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + os.urandom(300),  # ID3 claiming a huge tag
        b"fLaC" + os.urandom(300),
        b"OggS" + b"\x00" * 24 + b"\x01vorbis" + os.urandom(200),
        b"c2pa" * 100,
    ],
)
def test_garbage_never_raises(data: bytes) -> None:
    rights = read_rights(data)
    assert isinstance(rights, dict)
    if "reason" in rights:
        assert set(rights) == {"reason"}
        assert rights["reason"]
    else:
        assert set(rights) == set(FIELDS)


def test_truncated_copy_gives_a_reason() -> None:
    assert read_rights(image_bytes(7)[:300]) == {"reason": "metadata unreadable: OSError"}
    assert read_rights(b"plain text, not media")["reason"] == "not an image or audio file"


@pytest.mark.parametrize("fmt", ["mp3", "flac", "ogg", "wav"])
def test_audio_tags_written_by_ffmpeg_are_read(fmt: str) -> None:
    data = audio_bytes(1, fmt, seconds=1.0)
    plain = read_rights(data)
    assert set(plain) == set(FIELDS)
    assert plain["creator"] is None


def test_audio_tags_from_ffmpeg_metadata() -> None:
    cmd = [
        "ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "anoisesrc=d=1:c=pink:r=22050",
        "-metadata", "artist=Tape Artist", "-metadata", "copyright=℗ 2024 Tape Label",
        "-f", "flac", "pipe:1",
    ]  # fmt: skip
    data = subprocess.run(cmd, capture_output=True, check=True).stdout
    rights = read_rights(data)
    assert (rights["creator"], rights["copyright"]) == ("Tape Artist", "℗ 2024 Tape Label")


# --- C2PA -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signer() -> object:
    return c2pa_signer()


def test_c2pa_valid_invalid_and_absent(signer: object) -> None:
    original = image_bytes(8)
    signed = c2pa_sign(original, signer)
    assert read_rights(original)["c2pa"] is None
    assert read_rights(signed)["c2pa"] == "valid"
    assert read_rights(tamper_pixels(signed))["c2pa"] == "invalid"


def test_c2pa_stripped_by_reencoding_is_absent(signer: object) -> None:
    signed = c2pa_sign(image_bytes(9), signer)
    buf = io.BytesIO()
    Image.open(io.BytesIO(signed)).save(buf, "JPEG")
    assert read_rights(buf.getvalue())["c2pa"] is None


# --- removal --------------------------------------------------------------------------------

FULL = {"creator": "Ann", "copyright": "© Ann", "data_mining": "DMI-PROHIBITED", "c2pa": None}


@pytest.mark.parametrize(
    ("original", "found", "expected"),
    [
        (FULL, dict.fromkeys(FIELDS), True),  # everything stripped
        (FULL, {**FULL, "data_mining": None}, True),  # only the data-mining notice lost
        (FULL, FULL, False),
        (FULL, {**FULL, "copyright": "other text"}, False),  # altered, not removed
        (dict.fromkeys(FIELDS), dict.fromkeys(FIELDS), False),  # the original carried nothing
        (FULL, {"reason": "not an image or audio file"}, False),  # unreadable proves nothing
        ({}, dict.fromkeys(FIELDS), False),
        ({"reason": "x"}, dict.fromkeys(FIELDS), False),
    ],
)
def test_removed(original: dict[str, object], found: dict[str, object], expected: bool) -> None:
    assert removed(original, found) is expected


def test_reencoded_copy_of_a_marked_original_has_lost_its_notices() -> None:
    exif = Image.Exif()
    exif[0x013B], exif[0x8298] = "Ann", "(c) Ann"
    buf = io.BytesIO()
    Image.open(io.BytesIO(image_bytes(10))).save(buf, "JPEG", exif=exif)
    original = read_rights(buf.getvalue())
    copy = io.BytesIO()
    Image.open(io.BytesIO(buf.getvalue())).resize((96, 96)).save(copy, "WEBP")
    assert removed(original, read_rights(copy.getvalue()))
    assert set(CMI_FIELDS) <= set(FIELDS)
