"""`claims export`: claims per work and use, for collecting societies."""

from __future__ import annotations

from pathlib import Path

import click

from rightswatch.cli._common import app, emit, json_option, note, translate_errors


@click.group()
def claims() -> None:
    """Claims per work and use, for collecting societies."""


@claims.command("export")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write to FILE (atomically).")
@click.option(
    "--status", "statuses", multiple=True, help="Only uses with this status (repeatable)."
)
@json_option
@translate_errors
def claims_export(fmt: str, output: Path | None, statuses: tuple[str, ...]) -> None:
    """One row per work and use: domain, page, media URL, first/last seen, captures, status,
    evidence ids, ISRC, ISWC, rightsholders and shares (and a fee with RIGHTSWATCH_RATE_CARD).

    CSV cells that a spreadsheet would evaluate (= + - @) are neutralised. With --json the rows
    are printed as JSON whatever --format says (unless -o is given).
    """
    from evidence import claims as c
    from evidence.db import translate_db_errors

    a = app()
    with translate_db_errors(), a.factory() as session:
        rows = c.claim_rows(session, statuses=statuses)
    priced = c.price(rows, a.settings)
    doc = c.to_json(rows, priced)
    if output is not None:
        c.write_atomic(output, c.to_csv(rows) if fmt == "csv" else c.dumps(doc))
        note(f"rightswatch: {len(rows)} claim rows written to {output}")
        emit({"path": str(output.absolute()), "rows": len(rows), "format": fmt}, lambda r: "")
        return
    if a.json:
        emit(doc)
    elif fmt == "json":
        click.echo(c.dumps(doc), nl=False)
    else:
        click.echo(c.to_csv(rows), nl=False)
    if priced is not None:
        note(f"rightswatch: total {priced['total']} {priced['currency']}")


COMMANDS = [claims]
