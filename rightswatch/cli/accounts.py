"""`accounts add NAME [--rightsholder H…] [--role R]`, `accounts list`, `accounts revoke NAME`."""

from __future__ import annotations

from typing import Any

import click

from rightswatch.cli._common import app, emit, json_option, note, translate_errors


def _human(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no accounts"
    return "\n".join(
        f"{a['name']:<24}  {a['role']:<8}  {', '.join(a['rightsholders']) or '(all)'}"
        + ("  revoked" if a["revoked_at"] else "")
        for a in rows
    )


@click.group()
def accounts() -> None:
    """Accounts for the HTTP API: a role scoped to rightsholders, with a bearer token."""


@accounts.command("add")
@click.argument("name")
@click.option(
    "--rightsholder", "rightsholders", multiple=True, help="Whose works it sees (repeatable)."
)
@click.option(
    "--role",
    type=click.Choice(["viewer", "reviewer", "admin"]),
    default="reviewer",
    show_default=True,
    help="viewer reads; reviewer also decides; admin sees every rightsholder.",
)
@json_option
@translate_errors
def accounts_add(name: str, rightsholders: tuple[str, ...], role: str) -> None:
    """Create an account and print its token: shown this once, stored only as a hash."""
    from evidence.accounts import add_account
    from evidence.db import translate_db_errors

    holders = list(rightsholders)
    if not holders and role != "admin":
        holders = [app().settings.default_rightsholder]
        note(f"rightswatch: no --rightsholder: scoped to {holders[0]!r}, the default rightsholder")
    with translate_db_errors(), app().factory.begin() as session:
        account, token = add_account(session, name, role=role, rightsholders=holders)
        row = {"name": account.name, "role": account.role, "token": token}
    if not app().json:
        note("rightswatch: store this token now: it is not shown again")
    emit(row, lambda r: r["token"])


@accounts.command("list")
@json_option
@translate_errors
def accounts_list() -> None:
    """List accounts (never their tokens)."""
    from evidence.accounts import account_json, list_accounts
    from evidence.db import translate_db_errors

    with translate_db_errors(), app().factory() as session:
        rows = [account_json(a) for a in list_accounts(session)]
    emit(rows, _human)


@accounts.command("revoke")
@click.argument("name")
@json_option
@translate_errors
def accounts_revoke(name: str) -> None:
    """Revoke an account: its token stops working at once."""
    from evidence.accounts import account_json, revoke_account
    from evidence.db import translate_db_errors

    with translate_db_errors(), app().factory.begin() as session:
        row = account_json(revoke_account(session, name))
    emit(row, lambda r: f"revoked {r['name']}")


COMMANDS = [accounts]
