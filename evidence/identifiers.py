"""Music identifiers and their check rules.

ISRC (ISO 3901): CC-XXX-YY-NNNNN, 12 characters: country code (2 letters), registrant
(3 alphanumerics), year (2 digits), designation (5 digits). It has no check digit.
ISWC (ISO 15707): T-DDD.DDD.DDD-C, with C = (10 - (1 + sum(i * d_i for i = 1..9)) mod 10) mod 10.
"""

from __future__ import annotations

import re

from evidence.errors import BadInput

_ISRC = re.compile(r"[A-Z]{2}[A-Z0-9]{3}[0-9]{7}")
_ISWC = re.compile(r"T([0-9]{9})([0-9])")


def normalize_isrc(value: str) -> str:
    """Return the 12-character ISRC, or raise BadInput naming what is wrong."""
    compact = re.sub(r"[\s-]", "", value).upper()
    if not _ISRC.fullmatch(compact):
        raise BadInput(f"bad ISRC {value!r}: expected CC-XXX-YY-NNNNN")
    return compact


def iswc_check_digit(digits: str) -> int:
    total = 1 + sum(i * int(d) for i, d in enumerate(digits, start=1))
    return (10 - total % 10) % 10


def normalize_iswc(value: str) -> str:
    """Return the ISWC as T-DDD.DDD.DDD-C, or raise BadInput naming what is wrong."""
    compact = re.sub(r"[\s.\-]", "", value).upper()
    m = _ISWC.fullmatch(compact)
    if not m:
        raise BadInput(f"bad ISWC {value!r}: expected T-DDD.DDD.DDD-C")
    digits, check = m.group(1), int(m.group(2))
    if iswc_check_digit(digits) != check:
        raise BadInput(f"bad ISWC {value!r}: check digit should be {iswc_check_digit(digits)}")
    return f"T-{digits[:3]}.{digits[3:6]}.{digits[6:]}-{check}"
