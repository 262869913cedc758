"""Canonical JSON (RFC 8785) properties and the RFC 8032 Ed25519 vectors (E3)."""

from __future__ import annotations

import base64
import json
import re

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence import ledger

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_canonical_is_stable_and_round_trips(value: object) -> None:
    raw = ledger.canonical(value)
    # Stored in a JSON column (json.dumps) and read back, content hashes to the same bytes.
    assert ledger.canonical(json.loads(json.dumps(value))) == raw
    assert ledger.canonical(json.loads(json.dumps(value, indent=1, sort_keys=True))) == raw
    # No whitespace between tokens: only inside string literals.
    assert not re.search(rb"\s", re.sub(rb'"(?:[^"\\]|\\.)*"', b"", raw)), raw
    # Same value back (numbers compared as doubles: ES6 writes 2.4e16 as 24000000000000000).
    assert json.loads(raw, parse_int=float) == json.loads(json.dumps(value), parse_int=float)


@given(
    st.dictionaries(
        st.text(max_size=6), st.integers(-(2**53) + 1, 2**53 - 1), min_size=2, max_size=8
    )
)
def test_key_order_does_not_matter(d: dict[str, int]) -> None:
    reordered = dict(reversed(list(d.items())))
    assert ledger.canonical(d) == ledger.canonical(reordered)


def test_rfc8785_examples() -> None:
    assert (
        ledger.canonical({"b": 1.0, "a": [1e-7, "é", 1e21, 0.000001]})
        == '{"a":[1e-7,"é",1e+21,0.000001],"b":1}'.encode()
    )
    # Keys sort by UTF-16 code units: U+1F600 (surrogates D83D...) before U+FB33.
    assert (
        ledger.canonical({"\ufb33": 1, "\U0001f600": 2}) == '{"\U0001f600":2,"\ufb33":1}'.encode()
    )


RFC8032 = [  # (secret, public, message, signature): RFC 8032 section 7.1, tests 1-3
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]


def test_rfc8032_vectors() -> None:
    for secret, public, message, signature in RFC8032:
        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret))
        pub = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public))
        msg, sig = bytes.fromhex(message), bytes.fromhex(signature)
        assert key.sign(msg) == sig
        b64 = base64.b64encode(sig).decode()
        assert ledger.verify_signature(pub, b64, msg)
        bad = bytearray(sig)
        bad[10] ^= 1
        assert not ledger.verify_signature(pub, base64.b64encode(bytes(bad)).decode(), msg)
        assert not ledger.verify_signature(pub, b64, msg + b"x")
        assert not ledger.verify_signature(pub, b64[:40], msg)
        assert not ledger.verify_signature(pub, "", msg)
