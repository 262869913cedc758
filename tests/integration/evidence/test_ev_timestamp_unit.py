"""RFC 3161 against a real TSA on loopback (openssl ts): good token, and each bad one (E5)."""

from __future__ import annotations

import pytest
from loopback_tsa import loopback_tsa, reply

from evidence import timestamp

MESSAGE = b'{"origin":"rightswatch-ledger/v1","size":3}'


def test_good_token_verifies_and_each_fault_is_named() -> None:
    with loopback_tsa() as tsa:
        req = timestamp.build_request(MESSAGE)
        resp = timestamp.post_request(tsa.url, req)
        assert tsa.requests == 1
        good = timestamp.check_token(resp, req, MESSAGE, [tsa.ca])
        assert good.problems == [], good.problems
        assert good.gen_time is not None
        assert good.tsa
        assert "TSA" in good.tsa
        # Anchored on the token's own root: ok, with a warning naming it.
        own = timestamp.check_token(resp, req, MESSAGE)
        assert own.problems == []
        assert "TSA root taken from the token" in own.warnings[0]

        wrong_imprint = timestamp.check_token(resp, req, MESSAGE + b" ", [tsa.ca])
        assert any("imprint" in p for p in wrong_imprint.problems)

        other_req = timestamp.build_request(MESSAGE)  # another nonce
        wrong_nonce = timestamp.check_token(resp, other_req, MESSAGE, [tsa.ca])
        assert any("nonce" in p for p in wrong_nonce.problems)

        flipped = bytearray(resp)
        flipped[-10] ^= 0x01
        bad_sig = timestamp.check_token(bytes(flipped), req, MESSAGE, [tsa.ca])
        assert bad_sig.problems

        other_msg = reply(tsa.base, timestamp.build_request(b"another checkpoint"))
        swapped = timestamp.check_token(other_msg, req, MESSAGE, [tsa.ca])
        assert any("imprint" in p for p in swapped.problems)
        assert any("nonce" in p for p in swapped.problems)

        assert timestamp.check_token(b"garbage", req, MESSAGE).problems


def test_token_from_another_root_is_refused() -> None:
    with loopback_tsa() as tsa, loopback_tsa() as other:
        req = timestamp.build_request(MESSAGE)
        resp = timestamp.post_request(tsa.url, req)
        check = timestamp.check_token(resp, req, MESSAGE, [other.ca])
        assert any("signature invalid" in p or "not verifiable" in p for p in check.problems), (
            check.problems
        )


def test_tsa_certificate_without_critical_eku_gives_no_token() -> None:
    """openssl (like rfc3161-client) insists on a critical timeStamping EKU: no token, one line."""
    with (
        loopback_tsa(critical_eku=False) as tsa,
        pytest.raises(timestamp.TimestampError, match="HTTP 400"),
    ):
        timestamp.post_request(tsa.url, timestamp.build_request(MESSAGE))


def test_unreachable_tsa_is_one_line() -> None:
    with pytest.raises(timestamp.TimestampError, match="unreachable"):
        timestamp.post_request(
            "http://127.0.0.1:9/tsa", timestamp.build_request(MESSAGE), timeout=2
        )
