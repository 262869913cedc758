"""The installation's Ed25519 signing key: made once by `init`, kept with 0600 permissions."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from evidence.errors import EvidenceError


def ensure_key(path: Path) -> bool:
    """Create the key if missing (atomically, never readable by others); True when created."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
        out.flush()
        os.fsync(out.fileno())
    try:
        os.link(tmp, path)  # fails if another init won the race: keep theirs
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    return True


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise EvidenceError(f"no signing key at {path}: run `rightswatch init`") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise EvidenceError(f"{path} is not an Ed25519 key")
    return key


def public_key_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """'sha256:<hex>' of the raw public key: names the key in ledger entries and packs."""
    return "sha256:" + hashlib.sha256(public_key_raw(key)).hexdigest()


def public_key_b64(key: Ed25519PublicKey) -> str:
    return base64.b64encode(public_key_raw(key)).decode()
