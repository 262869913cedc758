"""WACZ members opened inside the pack: each WACZ's own datapackage.json hashes, and its WARC
payloads against the signed capture record. A WACZ handed out on its own checks out by itself;
an inconsistent one is named, even inside a pack an insider re-signed around it."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from evsynth import make_match, make_material, png
from packtools import flip, members, resign, write
from sqlalchemy.orm import Session, sessionmaker

from evidence import ledger
from evidence.capture import build_warc, record_capture
from evidence.pack import export_pack
from evidence.store import LocalBlobStore
from evidence.verify import verify_pack
from evidence.wacz import check_wacz, make_wacz, validate_wacz
from rightswatch.config import get_settings


@pytest.fixture
def pack(factory: sessionmaker[Session], store: LocalBlobStore, tmp_path: Path) -> Path:
    with factory.begin() as s:
        a = make_match(s, ref="w-1", seed=1)
        record_capture(s, store, match=a, material=make_material(a))
        b = make_match(
            s,
            ref="w-2",
            page_url="http://127.0.0.1:8080/other.html",
            media_url="http://127.0.0.1:8080/other.png",
            seed=2,
        )
        record_capture(s, store, match=b, material=make_material(b, screenshot=False))
        ids = [a.id, b.id]
    target = tmp_path / "pack.zip"
    export_pack(factory, store, get_settings(), target, match_ids=ids)
    return target


def _rezip(wacz: bytes, changes: dict[str, bytes | None]) -> bytes:
    """The WACZ with members replaced (None: removed) or added, everything else as it was."""
    src = zipfile.ZipFile(io.BytesIO(wacz))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename in changes:
                continue
            dst.writestr(info, src.read(info))
        for name, data in changes.items():
            if data is not None:
                dst.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data)
    return out.getvalue()


def _first(pack: Path) -> tuple[dict[str, bytes], dict, str]:  # type: ignore[type-arg]
    items = members(pack)
    manifest = json.loads(items["manifest.json"])
    cap = next(c for c in manifest["captures"] if c["custody"]["screenshot"].get("taken"))
    return items, cap, cap["wacz"]


def _resigned(tmp_path: Path, items: dict[str, bytes], name: str) -> list[str]:
    res = verify_pack(write(tmp_path / f"{name}.zip", resign(items, ledger.sign)))
    assert not res["ok"]
    return list(res["problems"])


def test_each_wacz_checks_out_inside_and_outside_the_pack(pack: Path, tmp_path: Path) -> None:
    assert verify_pack(pack)["ok"]
    items, _cap, _name = _first(pack)
    for name in (n for n in items if n.endswith(".wacz")):
        alone = tmp_path / Path(name).name
        alone.write_bytes(items[name])
        assert check_wacz(alone) == []
        ok, line = validate_wacz(alone)
        assert ok, line


def test_a_wacz_member_that_differs_from_its_datapackage_is_named(
    pack: Path, tmp_path: Path
) -> None:
    items, _cap, name = _first(pack)
    wacz = items[name]
    pages = zipfile.ZipFile(io.BytesIO(wacz)).read("pages/pages.jsonl")
    bad = _rezip(wacz, {"pages/pages.jsonl": flip(pages, 10)})
    want = f"{name}: pages/pages.jsonl: sha256 differs from datapackage.json"
    assert want in _resigned(tmp_path, items | {name: bad}, "pages")
    # The same WACZ handed out on its own: its own check names it too.
    alone = tmp_path / "alone.wacz"
    alone.write_bytes(bad)
    assert check_wacz(alone) == ["pages/pages.jsonl: sha256 differs from datapackage.json"]


def test_datapackage_digest_extra_and_missing_members_are_named(pack: Path, tmp_path: Path) -> None:
    items, _cap, name = _first(pack)
    wacz = items[name]
    package = json.loads(zipfile.ZipFile(io.BytesIO(wacz)).read("datapackage.json"))
    package["title"] = "changed"
    cases = {
        "digest": (
            {"datapackage.json": json.dumps(package).encode()},
            "datapackage.json: differs from datapackage-digest.json",
        ),
        "extra": ({"archive/extra.warc.gz": b"x"}, "archive/extra.warc.gz: not listed"),
        "missing": (
            {"indexes/index.idx": None},
            "indexes/index.idx: listed in datapackage.json but missing",
        ),
    }
    for case, (change, want) in cases.items():
        problems = _resigned(tmp_path, items | {name: _rezip(wacz, change)}, case)
        assert any(p.startswith(f"{name}: {want}") for p in problems), (case, problems)


def test_a_self_consistent_wacz_with_other_payloads_is_named(
    pack: Path, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """A WACZ rebuilt (valid, its datapackage right) around a WARC whose media payload is not
    the one the capture record signed."""
    items, cap, name = _first(pack)
    media_url = cap["custody"]["media"]["final_url"]
    with factory() as s:
        from evidence.models import Match

        match = s.get_one(Match, cap["match_id"])
        forged = build_warc("forged", make_material(match, body=png(99)), {"forged": True})
    wacz = make_wacz(forged, page_url=match.page_url, captured_at=match.first_seen, title="x")
    alone = tmp_path / "forged.wacz"
    alone.write_bytes(wacz)
    assert check_wacz(alone) == []  # consistent in itself
    assert validate_wacz(alone)[0]
    problems = _resigned(tmp_path, items | {name: wacz}, "forged")
    assert f"{name}: payload of {media_url} differs from the signed record" in problems
    # Another capture's WACZ in its place: the records it should hold are not there.
    other = next(c for c in json.loads(items["manifest.json"])["captures"] if c["id"] != cap["id"])
    problems = _resigned(tmp_path, items | {name: items[other["wacz"]]}, "swapped")
    assert f"{name}: no record for {media_url} in its WARC" in problems


def test_hostile_or_broken_wacz_is_a_problem_not_a_crash(pack: Path, tmp_path: Path) -> None:
    items, _cap, name = _first(pack)
    for case, data in {
        "garbage": b"not a zip at all",
        "traversal": _rezip(items[name], {"../evil": b"x"}),
    }.items():
        problems = _resigned(tmp_path, items | {name: data}, case)
        assert any(p.startswith(f"{name}: ") for p in problems), (case, problems)
    flipped = verify_pack(write(tmp_path / "flipped.zip", items | {name: flip(items[name])}))
    assert f"{name}: sha256 mismatch" in flipped["problems"]
