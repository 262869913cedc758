"""`evidence export|verify|timestamp|check|notice`: packs, offline verification, the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from rightswatch.cli._common import app, emit, json_option, note, translate_errors


@click.group()
def evidence() -> None:
    """Evidence packs: export, verify offline, timestamp, check."""


@evidence.command("export")
@click.option("--match", "match_ids", type=int, multiple=True, help="A match id (repeatable).")
@click.option("--work", "work_ref", help="Every match of this work (REF or HOLDER:REF).")
@click.option("--all", "all_matches", is_flag=True, help="Every match.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="PACK.zip")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@json_option
@translate_errors
def export(
    match_ids: tuple[int, ...], work_ref: str | None, all_matches: bool, output: Path, force: bool
) -> None:
    """Write an evidence pack (ZIP) of the chosen matches, verifiable offline.

    The pack holds the WARC and WACZ captures, screenshots, the works' references and
    fingerprints, the signed ledger entries with their proofs, the public key, the RFC 3161
    token (or the prepared request) and report.html. It is written to a temporary file and
    renamed, and never overwrites a file unless --force.
    """
    from evidence.db import translate_db_errors
    from evidence.pack import export_pack

    a = app()
    with translate_db_errors():
        result = export_pack(
            a.factory,
            a.store,
            a.settings,
            output,
            match_ids=match_ids,
            work_ref=work_ref,
            all_matches=all_matches,
            force=force,
            by="cli",
        )
    for warning in result.pop("warnings"):
        note(f"rightswatch: warning: {warning}")
    emit(
        {k: result[k] for k in ("path", "matches", "sha256")},
        lambda r: (
            f"pack {r['path']} ({len(r['matches'])} matches)\n"
            f"report: open report.html inside the pack\nsha256 {r['sha256']}"
        ),
    )


@evidence.command("verify")
@click.argument("pack", type=click.Path(path_type=Path))
@json_option
@translate_errors
def verify(pack: Path) -> None:
    """Check every hash, signature, chain proof and time-stamp of PACK, offline.

    Exit 1 when anything fails; each problem names the member and the check.
    """
    from evidence.verify import verify_pack

    result = verify_pack(pack)

    def human(r: dict[str, Any]) -> str:
        lines = ["ok" if r["ok"] else "NOT OK"]
        lines += [f"problem: {p}" for p in r["problems"]]
        lines += [f"warning: {w}" for w in r["warnings"]]
        return "\n".join(lines)

    emit(result, human)
    if not result["ok"]:
        raise click.exceptions.Exit(1)


@evidence.command("timestamp")
@json_option
@translate_errors
def timestamp_cmd() -> None:
    """Send pending ledger checkpoints to the RFC 3161 TSA (RIGHTSWATCH_TSA_URL).

    A checkpoint of the current ledger head is made first, so everything recorded so far is
    covered. Exit 1 when the TSA could not stamp them.
    """
    from evidence import ledger
    from evidence.db import translate_db_errors
    from evidence.errors import EvidenceError
    from evidence.timestamp import stamp_pending

    a = app()
    if not a.settings.tsa_url:
        raise EvidenceError("no TSA configured: set RIGHTSWATCH_TSA_URL")
    with translate_db_errors():
        with a.factory.begin() as session:
            ledger.make_checkpoint(session)
        result = stamp_pending(a.factory, a.settings.tsa_url)
    emit(
        result,
        lambda r: (
            f"stamped {len(r['stamped'])}, pending {r['pending']}"
            + "".join(f"\nerror: {e}" for e in r["errors"])
        ),
    )
    if result["errors"]:
        raise click.exceptions.Exit(1)


COMMANDS = [evidence]
