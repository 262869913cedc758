"""E5 in a pack, against a real TSA on loopback (openssl ts): each bad token fails verify with its
reason, even when an insider with the signing key re-signs the manifest around it; the good one
passes and the report and the verdict name its policy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from evsynth import make_match, make_material
from loopback_tsa import TSA, loopback_tsa, reply, resign_token
from packtools import flip, members, resign, write
from sqlalchemy.orm import Session, sessionmaker

from evidence import ledger, timestamp
from evidence.capture import record_capture
from evidence.pack import export_pack
from evidence.store import LocalBlobStore
from evidence.verify import verify_pack
from rightswatch.config import get_settings

TSR, TSQ = "timestamp/response.tsr", "timestamp/request.tsq"


@pytest.fixture
def stamped(
    factory: sessionmaker[Session],
    store: LocalBlobStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Path, TSA]]:
    with factory.begin() as s:
        m = make_match(s, ref="w-tsa", seed=3)
        record_capture(s, store, match=m, material=make_material(m))
        ids = [m.id]
    with loopback_tsa() as tsa:
        monkeypatch.setenv("RIGHTSWATCH_TSA_URL", tsa.url)
        get_settings.cache_clear()
        target = tmp_path / "stamped.zip"
        out = export_pack(factory, store, get_settings(), target, match_ids=ids)
        assert out["warnings"] == []
        yield target, tsa


def _tampered(tmp_path: Path, items: dict[str, bytes], name: str) -> dict:  # type: ignore[type-arg]
    """Verify the pack as changed, once as is and once re-signed by an insider: both fail."""
    plain = verify_pack(write(tmp_path / f"{name}.zip", items))
    resigned = verify_pack(write(tmp_path / f"{name}-resigned.zip", resign(items, ledger.sign)))
    assert not plain["ok"]
    assert not resigned["ok"]
    return resigned


def test_good_token_passes_and_states_its_policy(stamped: tuple[Path, TSA]) -> None:
    pack, _tsa = stamped
    res = verify_pack(pack)
    assert res["ok"], res["problems"]
    assert res["timestamp"]["policy"] == "1.2.3.4.1"
    items = members(pack)
    assert json.loads(items["manifest.json"])["timestamp"]["policy"] == "1.2.3.4.1"
    assert "1.2.3.4.1" in items["report.html"].decode()


def test_token_under_another_tsa_policy_fails_with_the_reason(
    stamped: tuple[Path, TSA], tmp_path: Path
) -> None:
    pack, tsa = stamped
    items = members(pack)
    # The same request answered under the TSA's other policy: nonce, imprint, signature all fine.
    other = reply(tsa.base, items[TSQ], "-tspolicy", "1.2.3.4.5")
    res = _tampered(tmp_path, items | {TSR: other}, "policy")
    assert (
        f"{TSR}: timestamp policy 1.2.3.4.5 is not the stated TSA policy 1.2.3.4.1"
        in (res["problems"])
    ), res["problems"]
    assert len(res["problems"]) == 1  # nothing else is wrong with it
    # A manifest that no longer states the policy is itself a problem.
    manifest = json.loads(items["manifest.json"])
    del manifest["timestamp"]["policy"]
    raw = json.dumps(manifest, indent=1, sort_keys=True).encode()
    unstated = items | {"manifest.json": raw, "manifest.sig": ledger.sign(raw).encode()}
    res = verify_pack(write(tmp_path / "unstated.zip", unstated))
    assert res["problems"] == ["manifest.json: the TSA policy of the time-stamp is not stated"]


def test_token_over_another_message_fails_on_the_imprint(
    stamped: tuple[Path, TSA], tmp_path: Path
) -> None:
    pack, tsa = stamped
    items = members(pack)
    request = timestamp.build_request(b'{"origin":"another ledger","size":1}')
    res = _tampered(tmp_path, items | {TSR: reply(tsa.base, request), TSQ: request}, "imprint")
    assert any(
        p == f"{TSR}: timestamp imprint does not match the checkpoint" for p in res["problems"]
    ), res["problems"]


def test_request_with_another_nonce_fails_on_the_nonce(
    stamped: tuple[Path, TSA], tmp_path: Path
) -> None:
    pack, _tsa = stamped
    items = members(pack)
    cp = json.loads(items["ledger/checkpoint.json"])
    other_request = timestamp.build_request(ledger.checkpoint_message(cp))  # same message
    res = _tampered(tmp_path, items | {TSQ: other_request}, "nonce")
    assert any(
        p == f"{TSR}: timestamp nonce does not match the request" for p in res["problems"]
    ), res["problems"]


def test_flipped_token_signature_fails(stamped: tuple[Path, TSA], tmp_path: Path) -> None:
    pack, _tsa = stamped
    items = members(pack)
    # The SignerInfo's signature value is the token's last element: flip a byte inside it.
    res = _tampered(tmp_path, items | {TSR: flip(items[TSR], -8)}, "signature")
    assert any(p.startswith(f"{TSR}: timestamp signature invalid") for p in res["problems"]), res[
        "problems"
    ]


def test_tsa_certificate_without_critical_eku_fails(
    stamped: tuple[Path, TSA], tmp_path: Path
) -> None:
    pack, tsa = stamped
    items = members(pack)
    # Control: the same TSTInfo re-signed under a proper certificate verifies.
    proper = resign_token(tsa.base, items[TSR], critical_eku=True)
    ok = verify_pack(write(tmp_path / "proper.zip", resign(items | {TSR: proper}, ledger.sign)))
    assert ok["ok"], ok["problems"]
    weak = resign_token(tsa.base, items[TSR], critical_eku=False)
    res = _tampered(tmp_path, items | {TSR: weak}, "eku")
    assert (
        f"{TSR}: TSA certificate CN=rightswatch test TSA: its timeStamping extended key usage"
        " is not critical (RFC 3161 2.3)"
    ) in res["problems"], res["problems"]
