"""The catalogue through the real command line, on SQLite and PostgreSQL: happy paths and every
bad input of issue 2, each with a one-line reason and nothing half-written."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import pytest
from conftest import RW
from fpsynth import encode_audio, make_image, make_music, to_bytes
from PIL import Image


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sample works and transformed copies, generated once per test process."""
    d = tmp_path_factory.mktemp("media")
    sunset, harbour = make_image(11), make_image(12)
    (d / "sunset.jpg").write_bytes(to_bytes(sunset, "JPEG", quality=92))
    (d / "harbour.png").write_bytes(to_bytes(harbour))
    (d / "sunset-small.webp").write_bytes(to_bytes(sunset.resize((240, 180)), "WEBP"))
    (d / "stranger.png").write_bytes(to_bytes(make_image(99)))
    song = make_music(13, seconds=40.0)
    (d / "song.ogg").write_bytes(encode_audio(song))
    rate = 22050
    (d / "excerpt.ogg").write_bytes(encode_audio(song[15 * rate : 25 * rate]))
    (d / "notes.txt").write_text("not media\n")
    (d / "empty.png").write_bytes(b"")
    jpeg = (d / "sunset.jpg").read_bytes()
    (d / "corrupt.jpg").write_bytes(jpeg[:200] + bytes(range(256)) * 4)
    ogg = (d / "song.ogg").read_bytes()
    (d / "truncated.ogg").write_bytes(ogg[:600])
    (d / "bomb.png").write_bytes(_bomb_png(50_000))
    return d


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _bomb_png(side: int) -> bytes:
    """A small PNG declaring side x side pixels: a decompression bomb."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (side + 1) * 4, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def _one_line(err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "expected a reason on stderr"
    assert all(line.startswith("rightswatch: ") for line in lines), err


def test_add_list_and_identify(rw_init: RW, media: Path) -> None:
    added = rw_init.ok(
        "works",
        "add",
        media / "sunset.jpg",
        media / "harbour.png",
        media / "song.ogg",
        "--rightsholder",
        "Label A",
        "--creator",
        "Ann",
    )
    assert [(w["ref"], w["kind"]) for w in added] == [
        ("sunset", "image"),
        ("harbour", "image"),
        ("song", "audio"),
    ]
    for w in added:
        assert set(w) >= {"id", "ref", "kind", "title", "sha256"}
        assert len(w["sha256"]) == 64
    assert rw_init.ok("works", "list") == added

    found = rw_init.ok(
        "identify", media / "sunset-small.webp", media / "excerpt.ogg", media / "stranger.png"
    )
    by_query = {Path(r["query"]).name: r["matches"] for r in found}
    assert [m["ref"] for m in by_query["sunset-small.webp"]] == ["sunset"]
    assert 0 < by_query["sunset-small.webp"][0]["score"] <= 1
    assert by_query["sunset-small.webp"][0]["offset_s"] is None
    song = by_query["excerpt.ogg"]
    assert [m["ref"] for m in song] == ["song"]
    assert song[0]["offset_s"] == pytest.approx(15.0, abs=0.5)
    assert by_query["stranger.png"] == []


def test_add_with_ref_and_identifiers(rw_init: RW, media: Path) -> None:
    [work] = rw_init.ok(
        "works",
        "add",
        media / "song.ogg",
        "--ref",
        "TRK-1",
        "--title",
        "Night Song",
        "--isrc",
        "us-s1z-99-00001",
        "--iswc",
        "T-034.524.680-1",
    )
    assert (work["ref"], work["title"], work["isrc"], work["iswc"]) == (
        "TRK-1",
        "Night Song",
        "USS1Z9900001",
        "T-034.524.680-1",
    )


def test_adding_the_same_file_again_changes_nothing(rw_init: RW, media: Path) -> None:
    first = rw_init.ok("works", "add", media / "sunset.jpg")
    again = rw_init.ok("works", "add", media / "sunset.jpg")
    assert again == first
    assert len(rw_init.ok("works", "list")) == 1


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("missing.png", "no such file"),
        ("notes.txt", "neither"),
        ("empty.png", "empty"),
        ("corrupt.jpg", "undecodable"),
        ("truncated.ogg", ""),
        ("bomb.png", "pixels"),
    ],
)
def test_bad_files_get_one_line_and_the_rest_still_registers(
    rw_init: RW, media: Path, name: str, reason: str
) -> None:
    res = rw_init("works", "add", media / name, media / "harbour.png", "--json")
    assert res.code == 2
    _one_line(res.err)
    assert name in res.err
    assert reason in res.err.lower()
    assert [w["ref"] for w in res.json] == ["harbour"]
    assert [w["ref"] for w in rw_init.ok("works", "list")] == ["harbour"]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--isrc", "US-S1Z-99-0001"], "bad ISRC"),
        (["--iswc", "T-034.524.680-2"], "check digit"),
        (["--rightsholder", "A; B", "--share", "60; 50"], "more than 100%"),
        (["--share", "101"], "outside 0-100"),
    ],
)
def test_bad_metadata_is_refused_and_nothing_is_stored(
    rw_init: RW, media: Path, home: Path, args: list[str], reason: str
) -> None:
    res = rw_init("works", "add", media / "sunset.jpg", *args)
    assert res.code == 2
    _one_line(res.err)
    assert reason in res.err
    assert rw_init.ok("works", "list") == []
    assert not list((home / "blobs").glob("sha256/*/*/*")), "no blob may be left behind"


def test_duplicate_ref_with_another_file_is_refused(rw_init: RW, media: Path) -> None:
    rw_init.ok("works", "add", media / "sunset.jpg", "--ref", "W1")
    res = rw_init("works", "add", media / "harbour.png", "--ref", "W1")
    assert res.code == 2
    assert "already registered with a different file" in res.err


def test_ref_with_several_files_is_bad_usage(rw_init: RW, media: Path) -> None:
    res = rw_init("works", "add", media / "sunset.jpg", media / "harbour.png", "--ref", "X")
    assert res.code == 2
    _one_line(res.err)


def _manifest(
    media: Path, rows: list[dict[str, str]], name: str = "manifest.csv", encoding: str = "utf-8"
) -> Path:
    cols = ["path", "ref", "title", "creator", "rightsholder", "share", "isrc", "iswc"]
    buf = io.StringIO()
    buf.write(",".join(cols) + "\n")
    for row in rows:
        buf.write(",".join(row.get(c, "") for c in cols) + "\n")
    path = media / name
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def test_import_reports_bad_rows_and_imports_the_rest_idempotently(
    rw_init: RW, media: Path
) -> None:
    manifest = _manifest(
        media,
        [
            {
                "path": "sunset.jpg",
                "ref": "S1",
                "title": "Sunset",
                "rightsholder": "Label A",
                "share": "100",
            },
            {"path": "corrupt.jpg", "ref": "C1"},
            {
                "path": "song.ogg",
                "ref": "T1",
                "isrc": "USS1Z9900001",
                "rightsholder": "Label A; Pub B",
                "share": "50; 50",
            },
            {"path": "harbour.png", "ref": "H1", "isrc": "nonsense"},
            {"path": "../../../etc/passwd", "ref": "P1"},
            {"path": "harbour.png", "ref": "S1", "rightsholder": "Label A"},
            {"path": "harbour.png", "ref": "H2", "share": "120"},
        ],
        name="m1.csv",
    )
    res = rw_init("works", "import", manifest, "--json")
    assert res.code == 0, res.err
    report = res.json
    assert report["imported"] == 2
    assert report["skipped"] == 0
    errors = {e["line"]: e["error"] for e in report["errors"]}
    assert set(errors) == {3, 5, 6, 7, 8}
    assert "undecodable" in errors[3]
    assert "ISRC" in errors[5]
    assert "outside manifest dir" in errors[6]
    assert "duplicate ref" in errors[7]
    assert "0-100" in errors[8]
    works = {w["ref"]: w for w in rw_init.ok("works", "list")}
    assert set(works) == {"S1", "T1"}
    assert works["T1"]["shares"] == [
        {"rightsholder": "Label A", "share": 50.0},
        {"rightsholder": "Pub B", "share": 50.0},
    ]

    again = rw_init.ok("works", "import", manifest)
    assert (again["imported"], again["skipped"]) == (0, 2)
    assert len(rw_init.ok("works", "list")) == 2


def test_import_updates_metadata_without_adding(rw_init: RW, media: Path) -> None:
    rw_init.ok(
        "works",
        "import",
        _manifest(media, [{"path": "sunset.jpg", "ref": "S1", "title": "Old"}], name="m2.csv"),
    )
    report = rw_init.ok(
        "works",
        "import",
        _manifest(media, [{"path": "sunset.jpg", "ref": "S1", "title": "New"}], name="m3.csv"),
    )
    assert (report["imported"], report["updated"]) == (0, 1)
    [work] = rw_init.ok("works", "list")
    assert work["title"] == "New"


def test_import_jsonl_and_cp1252_csv(rw_init: RW, media: Path) -> None:
    jsonl = media / "m.jsonl"
    jsonl.write_text(
        json.dumps({"path": "sunset.jpg", "ref": "J1", "creator": "Zoë"})
        + "\n"
        + "{broken\n"
        + json.dumps(["not", "an", "object"])
        + "\n"
    )
    report = rw_init.ok("works", "import", jsonl)
    assert report["imported"] == 1
    assert [e["line"] for e in report["errors"]] == [2, 3]

    latin = _manifest(
        media,
        [{"path": "harbour.png", "ref": "L1", "title": "Café du Port"}],
        name="m4.csv",
        encoding="cp1252",
    )
    res = rw_init("works", "import", latin, "--json")
    assert res.code == 0
    assert res.json["imported"] == 1
    assert "not UTF-8" in res.err
    titles = {w["ref"]: w["title"] for w in rw_init.ok("works", "list")}
    assert titles["L1"] == "Café du Port"


def test_import_refuses_symlink_leaving_the_manifest_dir(
    rw_init: RW, media: Path, tmp_path: Path
) -> None:
    inner = tmp_path / "catalogue"
    inner.mkdir()
    (inner / "escape.png").symlink_to(media / "harbour.png")
    manifest = _manifest(inner, [{"path": "escape.png", "ref": "E1"}])
    report = rw_init.ok("works", "import", manifest)
    assert report["imported"] == 0
    assert "outside manifest dir" in report["errors"][0]["error"]


def test_uninitialised_database_is_one_clear_line(rw: RW, media: Path) -> None:
    res = rw("works", "list")
    assert res.code == 1
    _one_line(res.err)
    assert "rightswatch init" in res.err


def test_unreachable_database_is_one_clear_line(rw: RW) -> None:
    res = rw(
        "init", env={"RIGHTSWATCH_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    )
    assert res.code == 1
    _one_line(res.err)
    assert "database unavailable" in res.err


def test_init_is_idempotent_and_keeps_the_key(rw: RW, home: Path) -> None:
    first = rw.ok("init")
    key = (home / "signing-key.pem").read_bytes()
    assert rw.ok("init") == first
    assert (home / "signing-key.pem").read_bytes() == key
    assert (home / "signing-key.pem").stat().st_mode & 0o777 == 0o600


def test_works_add_sees_an_image_by_content_not_extension(
    rw_init: RW, media: Path, tmp_path: Path
) -> None:
    disguised = tmp_path / "photo.mp3"
    img = Image.open(media / "harbour.png")
    disguised.write_bytes(to_bytes(img, "JPEG"))
    [work] = rw_init.ok("works", "add", disguised)
    assert work["kind"] == "image"
