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
@click.option(
    "--previous",
    type=click.Path(path_type=Path),
    help="An older pack: also prove this pack's ledger extends its head (no fork, no rewrite).",
)
@json_option
@translate_errors
def verify(pack: Path, previous: Path | None) -> None:
    """Check every hash, signature, chain proof and time-stamp of PACK, offline.

    Exit 1 when anything fails; each problem names the member and the check.
    """
    from evidence.verify import compare_with_older, verify_pack

    result = verify_pack(pack)
    if previous is not None and result["ok"]:
        result["problems"].extend(compare_with_older(result, previous))
        result["ok"] = not result["problems"]
    result.pop("consistency", None)

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


@evidence.command("check")
@click.option(
    "--collect-orphans", is_flag=True, help="Delete unreferenced blobs past the grace period."
)
@click.option("--grace-hours", type=click.IntRange(min=0), default=24, show_default=True)
@json_option
@translate_errors
def check(collect_orphans: bool, grace_hours: int) -> None:
    """Re-verify the whole ledger (chain, signatures, checkpoints, time-stamps) and every blob
    the evidence points to; list orphan blobs. Exit 1 on any gap or mismatch."""
    from evidence.check import run_check
    from evidence.db import translate_db_errors

    a = app()
    with translate_db_errors(), a.factory() as session:
        report = run_check(
            session, a.store, collect_orphans=collect_orphans, grace_s=grace_hours * 3600
        ).as_json()

    def human(r: dict[str, Any]) -> str:
        head = "ok" if r["ok"] else "PROBLEMS"
        lines = [
            f"{head}: {r['entries']} ledger entries, {r['checkpoints']} checkpoints,"
            f" {r['captures']} captures, {r['blobs_checked']} blobs checked,"
            f" {len(r['orphans'])} orphan blobs"
        ]
        lines += [f"problem: {p}" for p in r["problems"]]
        return "\n".join(lines)

    emit(report, human)
    if not report["ok"]:
        raise click.exceptions.Exit(1)


@evidence.command("notice")
@click.argument("match_id", type=int)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "html"]), default="text", show_default=True
)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write the notice to FILE.")
@json_option
@translate_errors
def notice(match_id: int, fmt: str, output: Path | None) -> None:
    """Draft a takedown notice for MATCH_ID with the elements of DMCA 512(c)(3) and EU DSA
    Article 16, from the match, the work and RIGHTSWATCH_SENDER_NAME / _CONTACT."""
    from evidence.claims import write_atomic
    from evidence.db import translate_db_errors
    from evidence.notice import draft_notice

    a = app()
    with translate_db_errors(), a.factory() as session:
        result = draft_notice(session, match_id, a.settings)
    if output is not None:
        write_atomic(output, result[fmt])
        result["path"] = str(output.absolute())
    emit(result, lambda r: "" if output is not None else r[fmt].rstrip("\n"))


COMMANDS = [evidence]
