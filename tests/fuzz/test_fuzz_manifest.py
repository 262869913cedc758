"""Fuzz the manifest importer: arbitrary text and bytes, and CSV/JSONL built from hostile cells.
Only ever a row error (one line) or a work; never an exception out of the importer."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from fuzzprofile import profile
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from sqlalchemy import select

from evidence.catalogue import WorkInput, validate
from evidence.errors import BadInput
from evidence.manifest import COLUMNS, decode, import_manifest, rows, to_input
from evidence.models import Work
from evidence.store import LocalBlobStore, sha256_digest

pytestmark = pytest.mark.fuzz

HOSTILE_PATHS = [
    "ok.png",
    "../../../etc/passwd",
    "/etc/passwd",
    "escape",  # a symlink out of the manifest dir
    "sub/../ok.png",
    "",
    " ",
    "missing.png",
    "dir",
    "C:\\x.png",
    "é.png",
    "x" * 255,
]
cells = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        ['=HYPERLINK("http://x")', "60; 40", "-1", "1e999", "NaN", "100;", "\ufeff", "\r\n"]
    ),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
)
row_dicts = st.fixed_dictionaries(
    {"path": st.one_of(st.sampled_from(HOSTILE_PATHS), st.text(max_size=40))},
    optional={k: cells for k in COLUMNS if k != "path"},
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def is_one_line(exc: BaseException) -> bool:
    text = str(exc)
    return bool(text) and "\n" not in text and len(text) < 2000


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("manifest")
    Image.effect_noise((64, 64), 80).convert("RGB").save(base / "ok.png")
    (base / "dir").mkdir()
    outside = tmp_path_factory.mktemp("outside") / "secret.png"
    Image.effect_noise((64, 64), 90).convert("RGB").save(outside, format="PNG")
    os.symlink(outside, base / "escape")
    return base


@profile()
@given(
    text=st.text(max_size=2000).map(lambda t: t.replace("\x00", "")),
    suffix=st.sampled_from([".csv", ".jsonl", ".txt", ".json"]),
)
def test_rows_never_raise(text: str, suffix: str, media_dir: Path) -> None:
    for lineno, row in rows(Path("m" + suffix), text):
        assert isinstance(lineno, int)
        if isinstance(row, BadInput):
            assert is_one_line(row)
            continue
        assert isinstance(row, dict)
        try:
            item = to_input(media_dir, row)
            validate(item, "default")
        except BadInput as exc:
            assert is_one_line(exc)  # noqa: PT017 (outcome either way)
        else:
            assert isinstance(item, WorkInput)


@profile()
@given(row=st.one_of(row_dicts, st.dictionaries(st.sampled_from(COLUMNS), json_values, max_size=8)))
def test_to_input_refuses_escapes(row: dict[str, Any], media_dir: Path) -> None:
    try:
        item = to_input(media_dir, row)
        validate(item, "default")
    except BadInput as exc:
        assert is_one_line(exc)  # noqa: PT017 (outcome either way)
        return
    real = os.path.realpath(item.path)
    assert real.startswith(os.path.realpath(media_dir) + os.sep), f"{row!r} escaped to {real}"


def _csv(rows_: list[dict[str, str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS))
    writer.writeheader()
    for r in rows_:
        writer.writerow({k: r.get(k, "") for k in COLUMNS})
    return buf.getvalue().encode("utf-8", "surrogatepass")


@profile(scale=0.25)
@given(
    rows_=st.lists(row_dicts, max_size=6),
    as_jsonl=st.booleans(),
    garbage=st.one_of(st.just(b""), st.binary(max_size=200)).map(lambda b: b.replace(b"\0", b"")),
)
def test_import_manifest_end_to_end(
    rows_: list[dict[str, str]],
    as_jsonl: bool,
    garbage: bytes,
    media_dir: Path,
    session_factory: Any,
) -> None:
    """Through the database (SQLite and PostgreSQL): counts add up, errors are one line each."""
    if as_jsonl:
        body = b"".join(json.dumps(r).encode() + b"\n" for r in rows_)
        name = "works.jsonl"
    else:
        try:
            body = _csv(rows_)
        except UnicodeEncodeError:
            return
        name = "works.csv"
    manifest = media_dir / name
    manifest.write_bytes(body + garbage)
    store = LocalBlobStore(media_dir.parent / "blobs")
    try:
        report = import_manifest(session_factory, store, manifest, "default")
    except BadInput as exc:  # the whole manifest refused (not text at all)
        assert is_one_line(exc)  # noqa: PT017 (outcome either way)
        return
    for err in report.errors:
        assert isinstance(err["line"], int)
        assert "\n" not in err["error"]
    lines = len(decode(body + garbage)[0].splitlines()) + 1
    assert report.imported + report.updated + report.skipped + len(report.errors) <= lines
    ok = sha256_digest((media_dir / "ok.png").read_bytes())
    with session_factory() as session:  # nothing from outside the manifest dir got in
        assert set(session.scalars(select(Work.sha256))) <= {ok}


@pytest.mark.parametrize("path", ["nul\x00.png", "sub/a\x00b.png", "x" * 300])
def test_nul_or_long_name_is_a_row_error(path: str, media_dir: Path) -> None:
    with pytest.raises(BadInput):
        to_input(media_dir, {"path": path})


def test_line_break_in_path_keeps_the_error_one_line(media_dir: Path) -> None:
    from evidence.catalogue import read_original

    with pytest.raises(BadInput) as row:  # the manifest row is refused as such
        to_input(media_dir, {"path": "a\nb.png"})
    assert is_one_line(row.value)
    with pytest.raises(BadInput) as direct:  # and a file named so on the command line
        read_original(media_dir / "a\nb.png")
    assert is_one_line(direct.value)
