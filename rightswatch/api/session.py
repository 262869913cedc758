"""The review pages' login session: a signed cookie (HttpOnly, SameSite=Strict) naming the
account, a fingerprint of its token hash (so revoking or re-keying the account ends the session)
and a CSRF token that every state-changing form must echo."""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from evidence.accounts import Principal, hash_token
from evidence.models import Account, Role

COOKIE = "rw_session"
MAX_AGE_S = 12 * 3600


def load_secret(home: Path) -> bytes:
    """The cookie-signing secret shared by every `serve` on this home (created once, 0600)."""
    path = home / "web-secret"
    try:
        return bytes.fromhex(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        pass
    secret = secrets.token_bytes(32)
    try:
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret.hex())
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    except OSError:
        pass  # an unwritable home: sessions last as long as this process
    return secret


@dataclass(frozen=True)
class WebSession:
    principal: Principal
    csrf: str


def _serializer(secret: bytes) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="rightswatch-review-session")


def _fingerprint(token_hash: str) -> str:
    return token_hash[-16:]


def make_cookie(secret: bytes, account_id: int, token: str) -> str:
    payload = {
        "a": account_id,
        "f": _fingerprint(hash_token(token)),
        "c": secrets.token_urlsafe(24),
    }
    return str(_serializer(secret).dumps(payload))


def read_cookie(secret: bytes, value: str | None, session: Session) -> WebSession | None:
    if not value or len(value) > 4096:
        return None
    try:
        payload = _serializer(secret).loads(value, max_age=MAX_AGE_S)
    except BadSignature:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("a"), int):
        return None
    account = session.get(Account, payload["a"])
    if account is None or account.revoked_at is not None:
        return None
    if not hmac.compare_digest(_fingerprint(account.token_hash), str(payload.get("f", ""))):
        return None
    principal = Principal(
        account_id=account.id,
        name=account.name,
        role=Role(account.role),
        rightsholder_ids=frozenset(r.id for r in account.rightsholders),
    )
    return WebSession(principal, str(payload.get("c", "")))


def csrf_ok(web: WebSession, submitted: str | None) -> bool:
    return bool(web.csrf) and bool(submitted) and hmac.compare_digest(web.csrf, submitted or "")
