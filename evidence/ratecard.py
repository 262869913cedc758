"""Pricing claims from a rate card, so a collecting society opens a negotiation with a number.

The rate card is a TOML file (RIGHTSWATCH_RATE_CARD); amounts are strings or numbers read as
exact decimals::

    currency = "EUR"
    minimum = "50.00"        # the least one claim row costs
    cap = "2000.00"          # the most one claim row costs (optional)
    holder_cap = "50000"     # the most one rightsholder's total comes to (optional)

    [fees.image]             # per kind of use: a fee per started month of use, per category
    default = "100.00"
    news = "150.00"
    [fees.audio]
    default = "200.00"

    [[categories]]           # domain patterns -> category; first match wins, else "default"
    pattern = "*.news.example"   # fnmatch on the host; "example.org" also matches its subdomains
    category = "news"

A claim row's fee = min(cap, max(minimum, fee[kind][category] x months)), where months counts
started 30-day periods between first_seen and last_seen (a use seen once is one month). Fees are
rounded to cents (half up). Totals split each row's fee among its rightsholders by their shares.
"""

from __future__ import annotations

import fnmatch
import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from evidence.errors import BadInput

CENT = Decimal("0.01")
MONTH_S = 30 * 24 * 3600
KINDS = ("image", "audio")


def _money(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadInput(f"rate card: {where} must be an amount, got {type(value).__name__}")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise BadInput(f"rate card: {where} {value!r} is not an amount") from None
    if not amount.is_finite() or amount < 0:
        raise BadInput(f"rate card: {where} must be a non-negative amount")
    return amount


@dataclass(frozen=True)
class RateCard:
    currency: str
    fees: Mapping[str, Mapping[str, Decimal]]  # kind -> category -> fee per month
    categories: Sequence[tuple[str, str]] = ()  # (host pattern, category)
    minimum: Decimal = Decimal(0)
    cap: Decimal | None = None
    holder_cap: Decimal | None = None
    source: str = field(default="", compare=False)

    def category(self, host: str) -> str:
        host = host.lower().rstrip(".")
        for pattern, category in self.categories:
            pat = pattern.lower().rstrip(".")
            if fnmatch.fnmatchcase(host, pat) or (
                "*" not in pat and (host == pat or host.endswith("." + pat))
            ):
                return category
        return "default"

    def fee(self, row: Mapping[str, Any]) -> Decimal:
        """The fee one claim row carries (kind, domain or page_url, first_seen, last_seen)."""
        kind = str(row.get("kind") or "")
        by_category = self.fees.get(kind)
        if by_category is None:
            raise BadInput(f"rate card has no fees for kind {kind!r}")
        category = self.category(_host(row))
        rate = by_category.get(category, by_category.get("default"))
        if rate is None:
            raise BadInput(f"rate card has no {kind} fee for category {category!r} nor a default")
        amount = max(self.minimum, rate * months(row.get("first_seen"), row.get("last_seen")))
        if self.cap is not None:
            amount = min(self.cap, amount)
        return amount.quantize(CENT, rounding=ROUND_HALF_UP)

    def totals(self, rows: Iterable[Mapping[str, Any]]) -> dict[str, Decimal]:
        """Per rightsholder: the sum of each row's fee times the holder's share (percent).

        A row names its holders as `shares` ([{"rightsholder", "share"}]) or one `rightsholder`
        (100 %). A row may carry a precomputed `fee`.
        """
        out: dict[str, Decimal] = {}
        for row in rows:
            fee = Decimal(str(row["fee"])) if row.get("fee") is not None else self.fee(row)
            for holder, share in _shares(row):
                part = (fee * share / 100).quantize(CENT, rounding=ROUND_HALF_UP)
                out[holder] = out.get(holder, Decimal(0)) + part
        if self.holder_cap is not None:
            out = {h: min(self.holder_cap, v) for h, v in out.items()}
        return dict(sorted(out.items()))


def _host(row: Mapping[str, Any]) -> str:
    host = row.get("domain")
    if not host and row.get("page_url"):
        host = urlsplit(str(row["page_url"])).hostname
    return str(host or "")


def _when(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        when = value
    else:
        try:
            when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise BadInput(f"not an ISO 8601 time: {str(value)[:40]!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def months(first_seen: Any, last_seen: Any) -> int:
    """Started 30-day periods of use; a use seen once (or undated) counts as one month."""
    first, last = _when(first_seen), _when(last_seen)
    if first is None or last is None or last <= first:
        return 1
    return max(1, math.ceil((last - first).total_seconds() / MONTH_S))


def _shares(row: Mapping[str, Any]) -> list[tuple[str, Decimal]]:
    shares = row.get("shares")
    if shares:
        return [(str(s["rightsholder"]), Decimal(str(s["share"]))) for s in shares]
    return [(str(row.get("rightsholder") or "unknown"), Decimal(100))]


def parse_rate_card(doc: Mapping[str, Any], source: str = "") -> RateCard:
    """Build and check a rate card from its parsed TOML document."""
    fees_doc = doc.get("fees")
    if not isinstance(fees_doc, dict) or not fees_doc:
        raise BadInput("rate card: a [fees.image] or [fees.audio] table is required")
    fees: dict[str, dict[str, Decimal]] = {}
    for kind, table in fees_doc.items():
        if kind not in KINDS:
            raise BadInput(f"rate card: unknown kind of use {kind!r} (image, audio)")
        if not isinstance(table, dict) or not table:
            raise BadInput(f"rate card: [fees.{kind}] must map categories to fees")
        fees[kind] = {str(c): _money(v, f"fees.{kind}.{c}") for c, v in table.items()}
    categories = []
    for i, entry in enumerate(doc.get("categories") or [], 1):
        if not isinstance(entry, dict) or not entry.get("pattern") or not entry.get("category"):
            raise BadInput(f"rate card: categories entry {i} needs a pattern and a category")
        categories.append((str(entry["pattern"]), str(entry["category"])))
    cap = _money(doc["cap"], "cap") if "cap" in doc else None
    holder_cap = _money(doc["holder_cap"], "holder_cap") if "holder_cap" in doc else None
    minimum = _money(doc.get("minimum", 0), "minimum")
    if cap is not None and cap < minimum:
        raise BadInput("rate card: cap is below the minimum fee")
    currency = str(doc.get("currency") or "EUR")[:8]
    return RateCard(currency, fees, tuple(categories), minimum, cap, holder_cap, source)


def load_rate_card(path: Path) -> RateCard:
    """Read a TOML rate card; BadInput with one line when it is missing or wrong."""
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise BadInput(f"rate card {path}: no such file") from None
    except OSError as exc:
        raise BadInput(f"rate card {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"rate card {path}: not valid TOML ({exc})") from None
    return parse_rate_card(doc, str(path))


__all__ = ["RateCard", "load_rate_card", "months", "parse_rate_card"]
