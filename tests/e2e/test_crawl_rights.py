"""A found copy that lost the rights notices its original carries is flagged
`rights_metadata_removed` (the basis of a claim for removal of copyright management
information); a copy that kept them is not; what the page signalled is kept with the run."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from evidence.db import make_engine, make_session_factory
from evidence.models import Signal
from rightswatch.demo import media
from rightswatch.demo.server import Site, blob, html

ARTIST, COPYRIGHT = 0x013B, 0x8298  # EXIF tags


def _jpeg(img: Image.Image, *, notices: bool) -> bytes:
    out = io.BytesIO()
    exif = Image.Exif()
    if notices:
        exif[ARTIST] = "Ann Example"
        exif[COPYRIGHT] = "(C) 2026 Label A. All rights reserved."
    img.save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, Path]]:
    original = media.make_image(4242)
    work = tmp_path_factory.mktemp("rights") / "portrait.jpg"
    work.write_bytes(_jpeg(original, notices=True))
    web = Site("127.0.0.1").start()
    web.routes["/"] = html('<a href="/kept.html">k</a> <a href="/stripped.html">s</a>')
    web.routes["/kept.html"] = html('<img src="/kept.jpg">')
    web.routes["/kept.jpg"] = blob(work.read_bytes(), "image/jpeg")
    web.routes["/stripped.html"] = html(
        '<meta name="tdm-reservation" content="1"><img src="/stripped.jpg">'
    )
    web.routes["/stripped.jpg"] = blob(
        _jpeg(media.resized(original, 0.7), notices=False), "image/jpeg"
    )
    yield web, work
    web.stop()


def test_stripped_copy_is_flagged_and_signals_are_kept(rw, db_url: str, site) -> None:  # type: ignore[no-untyped-def]
    web, work = site
    rw.ok("init")
    rw.ok("works", "add", work, "--ref", "portrait", "--rightsholder", "Label A")
    out = rw.ok("crawl", "--url", web.url("/"), env={"RIGHTSWATCH_ALLOW_NETWORKS": "127.0.0.1/32"})
    assert out["matches"] == 2
    flags = {m["media_url"].rsplit("/", 1)[1]: m["flags"] for m in rw.ok("matches")}
    assert flags == {"kept.jpg": [], "stripped.jpg": ["rights_metadata_removed"]}

    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as session:
            rows = {
                (s.scope, s.url.rsplit("/", 1)[1]): s.data for s in session.scalars(select(Signal))
            }
    finally:
        engine.dispose()
    assert rows[("page", "stripped.html")]["tdm_reservation"] is True
    assert rows[("media", "kept.jpg")]["creator"] == "Ann Example"
    assert not rows[("media", "stripped.jpg")].get("creator")
