"""`claims export` with RIGHTSWATCH_RATE_CARD: each claim row's fee and the totals per
rightsholder, computed from the sample rate card in tests/data/signals/."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "signals"))

from signalkit import image_bytes

from evidence.db import make_engine, make_session_factory
from evidence.uses import record_use
from fingerprints import Hit

CARD = Path(__file__).parents[1] / "data" / "signals" / "ratecard.toml"


def _use(db_url: str, work_id: int, page: str, first: datetime, last: datetime) -> None:
    engine = make_engine(db_url)
    try:
        factory = make_session_factory(engine)
        for seen in (first, last):
            with factory.begin() as session:
                record_use(
                    session, work_id=work_id, page_url=page, media_url=page + "/i.jpg",
                    hit=Hit(work_id=work_id, score=0.99), run_id=None, media_sha256=None,
                    flags=[], seen_at=seen,
                )  # fmt: skip
    finally:
        engine.dispose()


def test_claim_rows_carry_fees_and_totals(rw_init, db_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shared, solo = tmp_path / "shared.jpg", tmp_path / "solo.png"
    shared.write_bytes(image_bytes(50))
    solo.write_bytes(image_bytes(51, "PNG"))
    works = rw_init.ok("works", "add", shared, "--rightsholder", "Label; Publisher",
                       "--share", "60; 40")  # fmt: skip
    works += rw_init.ok("works", "add", solo, "--rightsholder", "Label")
    jan = datetime(2024, 1, 1, tzinfo=UTC)
    _use(
        db_url,
        works[0]["id"],
        "https://www.news.example/story",
        jan,
        datetime(2024, 3, 1, tzinfo=UTC),
    )
    _use(db_url, works[1]["id"], "https://blog.example/post", jan, jan)
    doc = rw_init.ok("claims", "export", env={"RIGHTSWATCH_RATE_CARD": str(CARD)})
    assert doc["currency"] == "EUR"
    fees = {(r["work_ref"], r["domain"]): str(r["fee"]) for r in doc["rows"]}
    # news image, 60 days = 2 months x 150; blog image, seen once = 1 month x 100
    assert {k: float(v) for k, v in fees.items()} == {
        ("shared", "www.news.example"): 300.0,
        ("solo", "blog.example"): 100.0,
    }
    # Label: 60 % of 300 + 100; Publisher: 40 % of 300
    assert {k: float(v) for k, v in doc["totals"].items()} == {"Label": 280.0, "Publisher": 120.0}
    assert float(doc["total"]) == 400.0
    plain = rw_init.ok("claims", "export")
    assert isinstance(plain, list)
    assert "fee" not in plain[0]


def test_a_bad_rate_card_is_one_line(rw_init, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    card = tmp_path / "card.toml"
    card.write_text('[fees.video]\ndefault = "1"\n')
    res = rw_init("claims", "export", "--json", env={"RIGHTSWATCH_RATE_CARD": str(card)})
    assert res.code == 2
    assert (
        res.err.strip()
        == "rightswatch: error: rate card: unknown kind of use 'video' (image, audio)"
    )
