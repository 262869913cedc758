"""RFC 3161 time-stamps of ledger checkpoints: proof from an outside authority that a ledger head
(and so every entry under it) existed no later than the TSA's genTime.

The stamped message is the checkpoint's signed body (`ledger.checkpoint_message`). Requests carry
a random nonce and ask for the TSA's certificates, so the token can be checked offline. Without a
TSA (or when it is unreachable) the request is prepared and kept: `evidence timestamp` sends it
later, and packs say plainly that they are not externally timestamped.

The TSA URL is the administrator's own setting, not crawled input, so it is fetched without the
crawler's network policy (loopback TSAs are common in tests and on-premises set-ups).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from cryptography import x509
from rfc3161_client import (
    HashAlgorithm,
    TimestampRequestBuilder,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)
from rfc3161_client.tsp import PKIStatus, TimeStampRequest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from evidence import ledger
from evidence.errors import EvidenceError
from evidence.models import Checkpoint

log = logging.getLogger(__name__)

TSA_TIMEOUT_S = 15.0
MAX_RESPONSE_BYTES = 1024 * 1024
SKEW_WINDOW = timedelta(minutes=10)  # capture/checkpoint times later than genTime + this: flagged


class TimestampError(EvidenceError):
    """The TSA could not be reached or answered with something that is not a valid token."""


def build_request(message: bytes) -> bytes:
    """A DER TimeStampReq over SHA-256(message), with a 64-bit nonce and certReq."""
    req = (
        TimestampRequestBuilder()
        .data(message)
        .hash_algorithm(HashAlgorithm.SHA256)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    return bytes(req.as_bytes())


def _parse_request(der: bytes) -> TimeStampRequest:
    from rfc3161_client import _rust  # the library parses requests but exports no wrapper

    return _rust.parse_timestamp_request(der)


def post_request(url: str, request: bytes, timeout: float = TSA_TIMEOUT_S) -> bytes:
    """POST the request to the TSA; the DER response, or TimestampError with one line."""
    try:
        with httpx.Client(timeout=timeout, trust_env=False, follow_redirects=False) as client:
            resp = client.post(
                url, content=request, headers={"Content-Type": "application/timestamp-query"}
            )
    except httpx.HTTPError as exc:
        raise TimestampError(f"TSA {url} unreachable: {type(exc).__name__}") from None
    if resp.status_code != 200:
        raise TimestampError(f"TSA {url} answered HTTP {resp.status_code}")
    if len(resp.content) > MAX_RESPONSE_BYTES:
        raise TimestampError(f"TSA {url} answered more than {MAX_RESPONSE_BYTES} bytes")
    return resp.content


def _self_signed(certs: list[x509.Certificate]) -> list[x509.Certificate]:
    return [c for c in certs if c.issuer == c.subject]


@dataclass
class TokenCheck:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    gen_time: datetime | None = None
    tsa: str | None = None
    policy: str | None = None  # the TSA policy OID the token was issued under


def token_policy(response: bytes) -> str | None:
    """The TSA policy OID (dotted) of a token, or None when it cannot be read."""
    try:
        return str(decode_timestamp_response(response).tst_info.policy.dotted_string)
    except (ValueError, TypeError):
        return None


def check_token(
    response: bytes,
    request: bytes,
    message: bytes,
    roots: list[x509.Certificate] | None = None,
    *,
    policy: str | None = None,
) -> TokenCheck:
    """Verify a TSA response against its request (nonce, policy) and the stamped message.

    `policy`: the TSA policy OID the token must carry (the pack's manifest states it). Trust
    anchors: `roots` when given, else the self-signed certificates the token carries (then a
    warning says the anchor comes from the token and gives its fingerprint to compare).
    """
    out = TokenCheck()
    try:
        tsr = decode_timestamp_response(response)
    except (ValueError, TypeError) as exc:
        out.problems.append(f"timestamp token unreadable: {exc}")
        return out
    if tsr.status not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        out.problems.append(f"TSA refused the request (status {tsr.status})")
        return out
    try:
        req = _parse_request(request)
    except (ValueError, TypeError) as exc:
        out.problems.append(f"timestamp request unreadable: {exc}")
        return out
    info = tsr.tst_info
    out.gen_time = (
        info.gen_time.astimezone(UTC) if info.gen_time.tzinfo else info.gen_time.replace(tzinfo=UTC)
    )
    if info.message_imprint.message != hashlib.sha256(message).digest():
        out.problems.append("timestamp imprint does not match the checkpoint")
    if req.nonce is not None and info.nonce != req.nonce:
        out.problems.append("timestamp nonce does not match the request")
    out.policy = info.policy.dotted_string
    if policy is not None and out.policy != policy:
        out.problems.append(
            f"timestamp policy {out.policy} is not the stated TSA policy {policy[:80]}"
        )
    embedded: list[x509.Certificate] = []
    try:
        for der in tsr.signed_data.certificates:
            embedded.append(x509.load_der_x509_certificate(der))
    except ValueError as exc:
        out.problems.append(f"timestamp certificates unreadable: {exc}")
        return out
    for cert in _signers(tsr, embedded):
        reason = _eku_problem(cert)
        if reason:
            name = cert.subject.rfc4514_string()[:120]
            out.problems.append(f"TSA certificate {name}: {reason} (RFC 3161 2.3)")
    anchors = list(roots or [])
    if not anchors:
        anchors = _self_signed(embedded)
        for root in anchors:
            fp = root.fingerprint(hashes_sha256()).hex()
            out.warnings.append(
                f"TSA root taken from the token ({root.subject.rfc4514_string()[:120]},"
                f" sha256 {fp}): compare it with the TSA's published root"
            )
    if not anchors:
        out.problems.append("timestamp token carries no root certificate to verify against")
        return out
    builder = VerifierBuilder.from_request(req)
    for root in anchors:
        builder = builder.add_root_certificate(root)
    for cert in embedded:
        if cert.issuer != cert.subject:
            with contextlib.suppress(ValueError):  # already listed
                builder = builder.add_intermediate_certificate(cert)
    try:
        builder.build().verify_message(tsr, message)
    except VerificationError as exc:
        out.problems.append(f"timestamp signature invalid: {exc}")
    except ValueError as exc:
        out.problems.append(f"timestamp not verifiable: {exc}")
    if embedded:
        leaf = [c for c in embedded if c.issuer != c.subject] or embedded
        out.tsa = leaf[0].subject.rfc4514_string()[:200]
    return out


def _signers(tsr: Any, certs: list[x509.Certificate]) -> list[x509.Certificate]:
    """The embedded certificates the token's SignerInfos name (issuer and serial)."""
    try:
        sids = {(si.issuer, si.serial_number) for si in tsr.signed_data.signer_infos}
    except (ValueError, TypeError):
        return []
    return [c for c in certs if (c.issuer, c.serial_number) in sids]


def _eku_problem(cert: x509.Certificate) -> str | None:
    """RFC 3161 2.3: the TSA's certificate has exactly one, critical, EKU: timeStamping."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return "no extended key usage extension"
    except ValueError:
        return "unreadable extensions"
    if not ext.critical:
        return "its timeStamping extended key usage is not critical"
    if list(ext.value) != [x509.oid.ExtendedKeyUsageOID.TIME_STAMPING]:
        return "its extended key usage is not timeStamping alone"
    return None


def hashes_sha256() -> Any:
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()


def stamp_checkpoint(session: Session, cp: Checkpoint, url: str) -> Checkpoint:
    """Send (or re-send) the checkpoint's request to the TSA and keep the verified token."""
    message = ledger.checkpoint_message(cp)
    if cp.tsa_request is None:
        cp.tsa_request = build_request(message)
        session.flush()
    response = post_request(url, cp.tsa_request)
    check = check_token(response, cp.tsa_request, message)
    if check.problems:
        raise TimestampError(f"TSA {url}: {check.problems[0]}")
    cp.tsa_token = response
    cp.tsa_url = url
    cp.timestamped_at = check.gen_time
    session.flush()
    return cp


def prepare(session: Session, cp: Checkpoint) -> bytes:
    """The checkpoint's TimeStampReq, made and stored on first use."""
    if cp.tsa_request is None:
        cp.tsa_request = build_request(ledger.checkpoint_message(cp))
        session.flush()
    return cp.tsa_request


def stamp_pending(factory: sessionmaker[Session], url: str | None) -> dict[str, Any]:
    """Stamp every checkpoint that has no token yet; each in its own transaction."""
    if not url:
        raise EvidenceError("no TSA configured: set RIGHTSWATCH_TSA_URL")
    with factory() as session:
        ids = list(
            session.scalars(
                select(Checkpoint.id).where(Checkpoint.tsa_token.is_(None)).order_by(Checkpoint.id)
            )
        )
    stamped, errors = [], []
    for cp_id in ids:
        try:
            with factory.begin() as session:
                cp = session.get_one(Checkpoint, cp_id)
                stamp_checkpoint(session, cp, url)
                stamped.append({"size": cp.size, "gen_time": cp.timestamped_at})
        except TimestampError as exc:
            errors.append(str(exc))
            break  # the TSA is down or wrong: the rest would fail the same way
    return {"stamped": stamped, "pending": len(ids) - len(stamped), "errors": errors}
