"""evidence.ratecard: fees per kind, domain category and month, minimum, caps, totals by share."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from evidence.errors import BadInput
from evidence.ratecard import load_rate_card, months, parse_rate_card

SAMPLE = Path(__file__).parents[2] / "data" / "signals" / "ratecard.toml"


@pytest.fixture(scope="module")
def card():  # type: ignore[no-untyped-def]
    return load_rate_card(SAMPLE)


def row(kind: str = "image", domain: str = "blog.example", first: str = "2024-01-01T00:00:00Z",
        last: str = "2024-01-01T00:00:00Z", **extra: object) -> dict[str, object]:  # fmt: skip
    return {"kind": kind, "domain": domain, "first_seen": first, "last_seen": last, **extra}


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", 1),  # seen once
        ("2024-01-01T00:00:00Z", "2024-01-31T00:00:00Z", 1),  # exactly 30 days
        ("2024-01-01T00:00:00Z", "2024-01-31T00:00:01Z", 2),  # one second into month two
        ("2024-01-01T00:00:00Z", "2024-04-01T00:00:00Z", 4),  # 91 days
        ("2024-03-01T00:00:00+05:30", "2024-02-29T18:30:00Z", 1),  # same instant, other zone
        (None, "2024-01-01T00:00:00Z", 1),
    ],
)
def test_months(first: str | None, last: str, expected: int) -> None:
    assert months(first, last) == expected


def test_fees_by_kind_category_and_period(card) -> None:  # type: ignore[no-untyped-def]
    assert card.currency == "EUR"
    assert card.fee(row()) == Decimal("100.00")  # default category, one month
    assert card.fee(row(domain="www.news.example")) == Decimal("150.00")
    assert card.fee(row(domain="shop.example")) == Decimal("120.50")
    assert card.fee(row(domain="cdn.shop.example")) == Decimal("120.50")  # subdomain
    assert card.fee(row(domain="notshop.example")) == Decimal("100.00")
    assert card.fee(row(kind="audio", last="2024-03-15T00:00:00Z")) == Decimal("600.00")
    assert card.fee(row(kind="audio", domain="news.example")) == Decimal("200.00")  # no '*.' match
    assert card.fee({"kind": "image", "page_url": "https://a.news.example/x", "first_seen": None,
                     "last_seen": None}) == Decimal("150.00")  # fmt: skip


def test_minimum_and_cap(card) -> None:  # type: ignore[no-untyped-def]
    cheap = parse_rate_card({"minimum": "50", "fees": {"image": {"default": "10"}}})
    assert cheap.fee(row()) == Decimal("50.00")
    assert cheap.fee(row(last="2024-06-01T00:00:00Z")) == Decimal("60.00")
    # 12 months of news use: 1800 capped at 1000
    assert card.fee(row(domain="x.news.example", last="2024-12-20T00:00:00Z")) == Decimal("1000.00")


def test_totals_split_by_shares_and_capped_per_holder(card) -> None:  # type: ignore[no-untyped-def]
    rows = [
        row(
            shares=[
                {"rightsholder": "Label", "share": 60},
                {"rightsholder": "Publisher", "share": 40},
            ]
        ),
        row(kind="audio", rightsholder="Label"),
        row(domain="a.news.example", shares=[{"rightsholder": "Publisher", "share": "33.333"}]),
    ]
    assert card.totals(rows) == {"Label": Decimal("260.00"), "Publisher": Decimal("90.00")}
    big = [row(kind="audio", rightsholder="Label", last="2025-01-01T00:00:00Z")] * 3
    assert card.totals(big) == {"Label": Decimal("1500.00")}  # 3 x 1000, holder cap 1500
    assert card.totals([{**row(rightsholder="L"), "fee": "12.345"}]) == {"L": Decimal("12.35")}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "[fees.image] or [fees.audio] table is required"),
        ({"fees": {"video": {"default": 1}}}, "unknown kind of use 'video'"),
        ({"fees": {"image": {"default": "ten"}}}, "is not an amount"),
        ({"fees": {"image": {"default": "-1"}}}, "non-negative"),
        ({"fees": {"image": {"default": True}}}, "must be an amount"),
        ({"fees": {"image": {"default": "NaN"}}}, "non-negative"),
        ({"fees": {"image": {"default": 1}}, "minimum": 10, "cap": 5}, "cap is below the minimum"),
        (
            {"fees": {"image": {"default": 1}}, "categories": [{"pattern": "x"}]},
            "categories entry 1",
        ),
    ],
)
def test_bad_rate_cards_are_refused_with_one_line(doc: dict[str, object], message: str) -> None:
    with pytest.raises(BadInput, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_rate_card(doc)


def test_missing_kind_or_category_fee(card, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    only_news = parse_rate_card({"fees": {"image": {"news": 1}}})
    with pytest.raises(BadInput, match="no image fee for category 'default'"):
        only_news.fee(row())
    with pytest.raises(BadInput, match="no fees for kind 'video'"):
        card.fee(row(kind="video"))
    with pytest.raises(BadInput, match="not an ISO 8601 time"):
        card.fee(row(last="yesterday"))
    bad = tmp_path / "card.toml"
    bad.write_text("fees = [unclosed")
    with pytest.raises(BadInput, match="not valid TOML"):
        load_rate_card(bad)
    with pytest.raises(BadInput, match="no such file"):
        load_rate_card(tmp_path / "missing.toml")


def test_datetime_objects_are_accepted(card) -> None:  # type: ignore[no-untyped-def]
    first = datetime(2024, 1, 1, tzinfo=UTC)
    last = datetime(2024, 2, 15, tzinfo=UTC)
    assert card.fee({"kind": "image", "domain": "b.example", "first_seen": first,
                     "last_seen": last}) == Decimal("200.00")  # fmt: skip
