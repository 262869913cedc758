"""`rightswatch works stamp`: stamped copies carry the notices (read back by exiftool), still
match their works, and the catalogue keeps each original's notices to compare copies against."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "signals"))

from signalkit import EXIFTOOL, audio_bytes, exiftool, image_bytes

from evidence.db import make_engine, make_session_factory
from evidence.models import Work
from evidence.rightsmeta import DMI_PROHIBITED, read_rights, removed

pytestmark = pytest.mark.skipif(EXIFTOOL is None, reason="exiftool not installed")


def _rights_in_db(db_url: str) -> dict[str, dict[str, object]]:
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as session:
            return {w.ref: dict(w.rights) for w in session.scalars(select(Work))}
    finally:
        engine.dispose()


def test_stamp_round_trip_and_match(rw_init, db_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    photo, song = tmp_path / "photo.jpg", tmp_path / "song.flac"
    photo.write_bytes(image_bytes(40))
    song.write_bytes(audio_bytes(41, "flac", seconds=12.0))
    rw_init.ok("works", "add", photo, "--creator", "Ann Example", "--rightsholder", "Ann Pics")
    rw_init.ok("works", "add", song, "--rightsholder", "Bob Records")
    out = tmp_path / "stamped"
    rows = rw_init.ok(
        "works", "stamp", "photo", "song", "-o", out,
        "--web-statement", "https://ann.example/rights",
    )  # fmt: skip
    assert [r["ref"] for r in rows] == ["photo", "song"]
    assert sorted(p.name for p in out.iterdir()) == ["photo.jpg", "song.flac"]

    tags = exiftool(out / "photo.jpg")
    assert tags["XMP-dc:Creator"] == "Ann Example"
    assert tags["XMP-dc:Rights"] == "© Ann Pics. All rights reserved."
    assert tags["XMP-plus:DataMining"] == DMI_PROHIBITED
    assert tags["XMP-xmpRights:WebStatement"] == "https://ann.example/rights"
    assert tags["IFD0:Artist"] == "Ann Example"
    audio_tags = exiftool(out / "song.flac")
    assert audio_tags["Vorbis:Artist"] == "Bob Records"  # no creator given: the rightsholder
    assert audio_tags["Vorbis:Copyright"] == "© Bob Records. All rights reserved."

    matches = rw_init.ok("identify", out / "photo.jpg", out / "song.flac")
    assert [m["matches"][0]["ref"] for m in matches] == ["photo", "song"]

    # the plain originals carried no notices; stamped copies registered as works keep theirs
    rights = _rights_in_db(db_url)
    assert rights["photo"]["creator"] is None
    marked = tmp_path / "marked.jpg"
    marked.write_bytes((out / "photo.jpg").read_bytes())
    rw_init.ok("works", "add", marked, "--rightsholder", "Ann Pics", "--ref", "marked-photo")
    kept = _rights_in_db(db_url)["marked-photo"]
    assert kept["creator"] == "Ann Example"
    assert kept["data_mining"] == DMI_PROHIBITED

    # a site that re-encodes the file strips the notices: the basis of the removal flag
    copy = io.BytesIO()
    Image.open(out / "photo.jpg").resize((150, 150)).save(copy, "JPEG", quality=80)
    assert removed(kept, read_rights(copy.getvalue()))
    assert not removed(kept, read_rights((out / "photo.jpg").read_bytes()))


def test_stamp_refuses_unknown_refs_and_bad_output(rw_init, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    photo = tmp_path / "p.png"
    photo.write_bytes(image_bytes(42, "PNG"))
    rw_init.ok("works", "add", photo)
    res = rw_init("works", "stamp", "nope", "-o", tmp_path / "o", "--json")
    assert res.code == 2
    assert res.err.strip() == "rightswatch: error: no work with ref 'nope'"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = rw_init("works", "stamp", "p", "-o", blocker, "--json")
    assert res.code == 2
    assert "not a directory" in res.err
    assert len(res.err.strip().splitlines()) == 1
