"""API accounts: a role scoped to rightsholders, authenticated by a bearer token.

A token is 256 random bits from `secrets`, shown once; only its SHA-256 is stored, so a copy of
the database (or a log line with the hash) cannot be replayed. Looking a token up by its hash
is constant-time in the token itself: the secret is never compared character by character.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from evidence.catalogue import get_rightsholder
from evidence.errors import BadInput, NotFound
from evidence.models import Account, Role

TOKEN_BYTES = 32  # 256 bits
TOKEN_PREFIX = "rw_"  # noqa: S105  (a marker, not a secret)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")
_TOKEN = re.compile(r"rw_[A-Za-z0-9_-]{43}")


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise BadInput(f"unknown role {value[:40]!r}: use viewer, reviewer or admin") from None


@dataclass(frozen=True)
class Principal:
    """Who is calling: what the API checks scope and role against (no ORM object, no hash)."""

    account_id: int
    name: str
    role: Role
    rightsholder_ids: frozenset[int]

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def can_write(self) -> bool:
        return self.role in (Role.REVIEWER, Role.ADMIN)

    def scope(self) -> frozenset[int] | None:
        """Rightsholder ids this principal may see; None means all (admin)."""
        return None if self.is_admin else self.rightsholder_ids


def add_account(
    session: Session, name: str, *, role: str = "reviewer", rightsholders: list[str] | None = None
) -> tuple[Account, str]:
    """Create an account; returns it and its token (the only time the token exists in clear)."""
    if not _NAME.fullmatch(name):
        raise BadInput(
            f"account name {name[:60]!r}: use 1-100 letters, digits, '.', '_', '@' or '-'"
        )
    parsed_role = parse_role(role)
    if session.scalar(select(Account.id).where(Account.name == name)) is not None:
        raise BadInput(f"account {name!r} already exists")
    holders = [get_rightsholder(session, h.strip()) for h in rightsholders or [] if h.strip()]
    if parsed_role is not Role.ADMIN and not holders:
        raise BadInput("a viewer or reviewer account needs at least one --rightsholder")
    token = new_token()
    account = Account(name=name, role=parsed_role.value, token_hash=hash_token(token))
    account.rightsholders = holders
    session.add(account)
    try:
        session.flush()
    except IntegrityError:
        raise BadInput(f"account {name!r} already exists") from None
    return account, token


def list_accounts(session: Session) -> list[Account]:
    return list(session.scalars(select(Account).order_by(Account.id)))


def revoke_account(session: Session, name: str) -> Account:
    account = session.scalar(select(Account).where(Account.name == name))
    if account is None:
        raise NotFound(f"no account named {name[:60]!r}")
    if account.revoked_at is None:
        account.revoked_at = datetime.now(UTC)
    return account


def authenticate(session: Session, token: str) -> Principal | None:
    """The live account holding this token, or None (unknown, malformed or revoked)."""
    if not _TOKEN.fullmatch(token):
        return None
    account = session.scalar(select(Account).where(Account.token_hash == hash_token(token)))
    if account is None or account.revoked_at is not None:
        return None
    return Principal(
        account_id=account.id,
        name=account.name,
        role=Role(account.role),
        rightsholder_ids=frozenset(r.id for r in account.rightsholders),
    )


def account_json(account: Account) -> dict[str, Any]:
    """An account without its token hash."""
    return {
        "id": account.id,
        "name": account.name,
        "role": account.role,
        "rightsholders": sorted(r.name for r in account.rightsholders),
        "created_at": account.created_at,
        "revoked_at": account.revoked_at,
    }


__all__ = [
    "Principal",
    "account_json",
    "add_account",
    "authenticate",
    "hash_token",
    "list_accounts",
    "new_token",
    "parse_role",
    "revoke_account",
]
