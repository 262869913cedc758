"""evidence.stamp: notices embedded in copies, read back by exiftool (which we did not write),
pixels untouched, earlier notices replaced, unsupported input refused, safe output names."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from signalkit import EXIFTOOL, audio_bytes, exiftool, image_bytes

from evidence.errors import BadInput
from evidence.models import MediaKind, Rightsholder, Work
from evidence.rightsmeta import DMI_PROHIBITED, read_rights
from evidence.stamp import DATA_MINING, Notice, safe_name, stamp, stamp_works
from evidence.store import LocalBlobStore

pytestmark = pytest.mark.skipif(EXIFTOOL is None, reason="exiftool not installed")

NOTICE = Notice(
    creator='Zoë <Doe> & "Co"',
    copyright="© 2024 Zoë Doe. All rights reserved.",
    credit="Doe Pictures",
    web_statement="https://doe.example/rights",
    licence="https://creativecommons.org/licenses/by-nc-nd/4.0/",
)

IMAGE_TAGS = {
    "XMP-dc:Creator": NOTICE.creator,
    "XMP-dc:Rights": NOTICE.copyright,
    "XMP-photoshop:Credit": NOTICE.credit,
    "XMP-xmpRights:WebStatement": NOTICE.web_statement,
    "XMP-xmpRights:Marked": True,
    "XMP-cc:License": NOTICE.licence,
    "XMP-plus:DataMining": DMI_PROHIBITED,
    "IFD0:Artist": 'Zo? <Doe> & "Co"',  # EXIF is ASCII: spelled out, never mojibake
    "IFD0:Copyright": "(C) 2024 Zo? Doe. All rights reserved.",
}


def _pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


@pytest.mark.parametrize(("fmt", "suffix"), [("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp")])
def test_image_notices_round_trip_through_exiftool(tmp_path: Path, fmt: str, suffix: str) -> None:
    original = image_bytes(1, fmt)
    stamped = stamp(original, NOTICE)
    path = tmp_path / f"stamped{suffix}"
    path.write_bytes(stamped)
    tags = exiftool(path)
    assert {k: tags.get(k) for k in IMAGE_TAGS} == IMAGE_TAGS
    if fmt == "JPEG":
        assert tags["IPTC:By-line"] == NOTICE.creator
        assert tags["IPTC:CopyrightNotice"] == NOTICE.copyright
        assert tags["IPTC:Credit"] == NOTICE.credit
    if fmt == "PNG":
        assert tags["PNG:Copyright"] == NOTICE.copyright
    assert "Warning" not in tags, tags.get("Warning")
    assert np.array_equal(_pixels(stamped), _pixels(original))  # pixels untouched
    rights = read_rights(stamped)
    assert (rights["creator"], rights["copyright"], rights["data_mining"]) == (
        NOTICE.creator,
        NOTICE.copyright,
        DMI_PROHIBITED,
    )


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (
            "mp3",
            {"ID3v2_4:Artist", "ID3v2_4:Copyright", "ID3v2_4:CopyrightURL", "ID3v2_4:Publisher"},
        ),
        ("wav", {"ID3v2_4:Artist", "ID3v2_4:Copyright", "ID3v2_4:CopyrightURL"}),
        ("flac", {"Vorbis:Artist", "Vorbis:Copyright", "Vorbis:License"}),
        ("ogg", {"Vorbis:Artist", "Vorbis:Copyright", "Vorbis:License"}),
        ("m4a", {"ItemList:Artist", "ItemList:Copyright"}),
    ],
)
def test_audio_notices_round_trip_through_exiftool(
    tmp_path: Path, fmt: str, expected: set[str]
) -> None:
    stamped = stamp(audio_bytes(2, fmt, seconds=1.0), NOTICE)
    path = tmp_path / f"stamped.{fmt}"
    path.write_bytes(stamped)
    tags = exiftool(path)
    assert expected <= set(tags), sorted(tags)
    by_name = {k.split(":", 1)[1]: v for k, v in tags.items() if k in expected}
    assert by_name["Artist"] == NOTICE.creator
    assert by_name["Copyright"] == NOTICE.copyright
    rights = read_rights(stamped)
    assert rights["data_mining"] == DMI_PROHIBITED
    assert rights["licence"] == NOTICE.licence


def test_stamping_twice_replaces_the_notice(tmp_path: Path) -> None:
    once = stamp(image_bytes(3), NOTICE)
    twice = stamp(once, Notice(creator="New Owner", copyright="© New Owner",
                               data_mining=DATA_MINING["allowed"]))  # fmt: skip
    path = tmp_path / "twice.jpg"
    path.write_bytes(twice)
    tags = exiftool(path)
    assert tags["XMP-dc:Creator"] == "New Owner"
    assert tags["XMP-plus:DataMining"] == DATA_MINING["allowed"]
    assert tags["IPTC:By-line"] == "New Owner"
    assert twice.count(b"http://ns.adobe.com/xap/1.0/\x00") == 1


def test_other_exif_is_kept() -> None:
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"  # Make
    buf = io.BytesIO()
    Image.open(io.BytesIO(image_bytes(4))).save(buf, "JPEG", exif=exif)
    with Image.open(io.BytesIO(stamp(buf.getvalue(), NOTICE))) as img:
        assert img.getexif()[0x010F] == "CameraMaker"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (image_bytes(5, "GIF"), "cannot embed notices in image/gif"),
        (b"not media at all", "cannot embed notices in unknown"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 4, "corrupt JPEG"),
        (image_bytes(5, "PNG")[:60], "cannot stamp this image/png file"),
    ],
)
def test_unstampable_input_is_refused_with_one_line(data: bytes, message: str) -> None:
    with pytest.raises(BadInput, match=message) as info:
        stamp(data, NOTICE)
    assert "\n" not in str(info.value)


def test_overlong_notice_is_refused() -> None:
    with pytest.raises(BadInput, match="longer than"):
        stamp(image_bytes(6), Notice(creator="x" * 10_000))


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("../../etc/passwd", "etc_passwd.jpg"),
        ("/abs/path", "abs_path.jpg"),
        ("C:\\x", "C_x.jpg"),
        ("\x00nul", "nul.jpg"),
        ("‮gpj.exe", "gpj.exe.jpg"),
        ("..", "work.jpg"),
        ("a" * 500, "a" * 100 + ".jpg"),
    ],
)
def test_safe_names_stay_inside_the_directory(ref: str, expected: str) -> None:
    assert safe_name(ref, "image/jpeg", set()) == expected


def test_safe_names_are_unique_case_insensitively() -> None:
    taken: set[str] = set()
    names = [safe_name(r, "image/png", taken) for r in ("a", "A", "a", "a/")]
    assert names == ["a.png", "A-2.png", "a-3.png", "a-4.png"]


def test_stamp_works_writes_only_inside_the_directory(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    digest = store.put(image_bytes(7))
    holder = Rightsholder(name="Doe Pictures")
    work = Work(ref="../escape", kind=MediaKind.IMAGE, mime="image/jpeg", sha256=digest,
                creator=None, rightsholder=holder, title="t", size=1)  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.jpg"
    victim.write_bytes(b"keep")
    os.symlink(victim, out / "escape.jpg")  # a planted link must be replaced, not followed
    rows = stamp_works(store, [work], out, web_statement="https://doe.example/rights")
    assert rows[0]["path"] == str(out / "escape.jpg")
    assert victim.read_bytes() == b"keep"
    assert not (out / "escape.jpg").is_symlink()
    assert sorted(p.name for p in out.iterdir()) == ["escape.jpg"]  # no temp file left
    assert rows[0]["rights"] == {
        "creator": "Doe Pictures",
        "copyright": "© Doe Pictures. All rights reserved.",
        "data_mining": DMI_PROHIBITED,
    }
    with pytest.raises(BadInput, match="not a directory"):
        stamp_works(store, [work], victim)
