"""`licences add (--work REF | --all) --domain D [--until YYYY-MM-DD]` and `licences list`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import click

from rightswatch.cli._common import Usage, app, emit, json_option, note, translate_errors


def _human(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no licences"
    return "\n".join(
        f"{r['id']:>5}  {r['ref'] or '(all works)':<24}  {r['domain']:<30}"
        f"  until {r['until'] or 'open-ended'}"
        for r in rows
    )


def _parse_until(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise Usage(f"--until {value!r}: expected YYYY-MM-DD") from None


@click.group()
def licences() -> None:
    """Licensed uses: matches on a licensed domain (and its subdomains) become `licensed`."""


@licences.command("add")
@click.option("--work", "work_ref", metavar="REF", help="The licensed work ('holder:ref' too).")
@click.option("--all", "all_works", is_flag=True, help="The whole catalogue (of --rightsholder).")
@click.option(
    "--domain", required=True, help="The licensed domain; its subdomains are covered too."
)
@click.option(
    "--until", metavar="YYYY-MM-DD", help="Last day the licence covers; default: open-ended."
)
@click.option("--rightsholder", help="With --all: only this rightsholder's works.")
@json_option
@translate_errors
def licences_add(
    work_ref: str | None, all_works: bool, domain: str, until: str | None, rightsholder: str | None
) -> None:
    """Record a licence; matches it covers now become `licensed`."""
    from sqlalchemy import select

    from evidence.catalogue import find_works
    from evidence.db import translate_db_errors
    from evidence.licences import add_licence, licence_json
    from evidence.models import Rightsholder

    if (work_ref is None) == (not all_works):
        raise Usage("give exactly one of --work REF or --all")
    if rightsholder is not None and work_ref is not None:
        raise Usage("--rightsholder goes with --all (a work already has its rightsholder)")
    until_date = _parse_until(until)
    with translate_db_errors(), app().factory.begin() as session:
        work, holder_id = None, None
        if work_ref is not None:
            found = find_works(session, work_ref)
            if not found:
                raise Usage(f"no work with ref {work_ref!r}")
            if len(found) > 1:
                raise Usage(f"ref {work_ref!r} is ambiguous: write it as 'rightsholder:ref'")
            work = found[0]
        elif rightsholder is not None:
            holder_id = session.scalar(
                select(Rightsholder.id).where(Rightsholder.name == rightsholder)
            )
            if holder_id is None:
                raise Usage(f"no rightsholder named {rightsholder!r}")
        lic, changed = add_licence(
            session,
            domain=domain,
            work=work,
            rightsholder_id=holder_id,
            until=until_date,
            created_by="cli",
        )
        row = licence_json(lic, work.ref if work else None)
    if changed:
        note(f"rightswatch: {len(changed)} match(es) now licensed")
    row["licensed_matches"] = [m.id for m in changed]
    emit(row, lambda r: _human([r]))


@licences.command("list")
@json_option
@translate_errors
def licences_list() -> None:
    """List licences."""
    from sqlalchemy import select

    from evidence.db import translate_db_errors
    from evidence.licences import licence_json
    from evidence.models import Licence, Work

    with translate_db_errors(), app().factory() as session:
        rows = [
            licence_json(lic, ref)
            for lic, ref in session.execute(
                select(Licence, Work.ref)
                .outerjoin(Work, Licence.work_id == Work.id)
                .order_by(Licence.id)
            )
        ]
    emit(rows, _human)


COMMANDS = [licences]
