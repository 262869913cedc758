"""`matches [--work REF] [--status S]` and `matches set-status ID STATUS [--note TEXT]`."""

from __future__ import annotations

import getpass
from typing import Any

import click

from rightswatch.cli._common import app, emit, json_option, translate_errors


def _human(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no matches"
    lines = []
    for m in rows:
        off = f" @{m['offset_s']:.1f}s" if m["offset_s"] is not None else ""
        lines.append(
            f"{m['id']:>6}  {m['status']:<9}  {m['ref']:<20}  {m['score']:.3f}{off}"
            f"  {m['page_url']}"
        )
    return "\n".join(lines)


def reviewer_name() -> str:
    """`cli:$USER`: who a decision taken on this machine's command line is recorded as."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    return f"cli:{user}"


@click.group(invoke_without_command=True)
@click.option(
    "--work", "work_ref", metavar="REF", help="Only uses of this work ('holder:ref' too)."
)
@click.option(
    "--status",
    type=click.Choice(["pending", "confirmed", "dismissed", "licensed"]),
    help="Only uses with this status.",
)
@json_option
@click.pass_context
@translate_errors
def matches(ctx: click.Context, work_ref: str | None, status: str | None) -> None:
    """Found uses of your works, newest sighting first; `set-status` records a review decision."""
    if ctx.invoked_subcommand is not None:
        return
    from evidence.db import translate_db_errors
    from evidence.uses import list_matches, match_json

    with translate_db_errors(), app().factory() as session:
        rows = [match_json(m) for m in list_matches(session, work_ref=work_ref, status=status)]
    emit(rows, _human)


@matches.command("set-status")
@click.argument("match_id", metavar="ID", type=click.IntRange(1, 2**31 - 1))
@click.argument("status", type=click.Choice(["pending", "confirmed", "dismissed", "licensed"]))
@click.option("--note", help="Why: kept with the decision in the evidence ledger.")
@json_option
@translate_errors
def set_status_cmd(match_id: int, status: str, note: str | None) -> None:
    """Record a review decision on match ID, as cli:$USER, now."""
    from evidence.db import translate_db_errors
    from evidence.reviews import set_status
    from evidence.uses import get_match, match_json

    with translate_db_errors(), app().factory.begin() as session:
        match = set_status(
            session, get_match(session, match_id), status, note=note, by=reviewer_name()
        )
        row = match_json(match)
    emit(row, lambda m: f"match {m['id']} is now {m['status']}")


COMMANDS = [matches]
