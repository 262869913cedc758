"""`init`, `works add|import|list` and `identify`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from evidence.errors import shown
from rightswatch.cli._common import Fail, Usage, app, emit, json_option, note, translate_errors


def file_error(path: Path, exc: Exception) -> str:
    """One stderr line for a file that could not be used, naming it once."""
    name = shown(path)
    return f"rightswatch: {exc}" if name in str(exc) else f"rightswatch: {name}: {exc}"


@click.command()
@json_option
@translate_errors
def init() -> None:
    """Create or migrate the database (Alembic head), the blob store and the signing key.

    Idempotent: running it again migrates to the newest schema and changes nothing else.
    """
    from evidence.db import translate_db_errors
    from evidence.keys import ensure_key
    from evidence.migrate import upgrade

    settings = app().settings
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
        settings.blob_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Fail(f"cannot create {settings.home}: {exc.strerror}") from None
    with translate_db_errors():
        upgrade(app().engine)
    ensure_key(settings.key_path)
    url = app().engine.url.render_as_string(hide_password=True)
    emit(
        {"database": url, "home": str(settings.home)},
        lambda r: f"database {r['database']}\nhome {r['home']}",
    )


@click.group()
def works() -> None:
    """The catalogue: register images and audio as works, import manifests, list works."""


def _human_works(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no works"
    return "\n".join(f"{w['id']:>5}  {w['kind']:<5}  {w['ref']:<24}  {w['title']}" for w in rows)


@works.command("add")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--ref", help="The work's reference (only with one FILE); default: the file name.")
@click.option("--title", help="Title; default: the ref.")
@click.option("--creator", help="Author, artist or photographer.")
@click.option("--rightsholder", help="Who holds the rights ('A; B' for several).")
@click.option("--share", help="Shares in percent, in the order of --rightsholder ('60; 40').")
@click.option("--isrc", help="ISRC of a recording (CC-XXX-YY-NNNNN).")
@click.option("--iswc", help="ISWC of a composition (T-DDD.DDD.DDD-C).")
@json_option
@translate_errors
def works_add(files: tuple[Path, ...], ref: str | None, **meta: str | None) -> None:
    """Register image or audio FILEs as works, fingerprinting each.

    Each file is its own transaction: a bad file is reported on stderr and the others are
    still registered (exit 2 when any failed).
    """
    from evidence.catalogue import WorkInput, add_work
    from evidence.errors import BadInput

    if ref is not None and len(files) > 1:
        raise Usage("--ref only with one FILE")
    a = app()
    done, failed = [], 0
    for path in files:
        try:
            reg = add_work(
                a.factory,
                a.store,
                WorkInput(path=path, ref=ref, **meta),
                a.settings.default_rightsholder,
            )
        except BadInput as exc:
            failed += 1
            note(file_error(path, exc))
            continue
        done.append(reg.json)
    emit(done, _human_works)
    if failed:
        raise click.exceptions.Exit(2)


@works.command("import")
@click.argument("manifest", type=click.Path(path_type=Path))
@json_option
@translate_errors
def works_import(manifest: Path) -> None:
    """Register works from a CSV (header row) or JSON Lines MANIFEST.

    Columns: path (relative to the manifest), ref, title, creator, rightsholder, share, isrc,
    iswc. A bad row is reported with its line number and the others still import; importing
    the same manifest again updates metadata and adds nothing.
    """
    from evidence.manifest import import_manifest

    a = app()
    report = import_manifest(a.factory, a.store, manifest, a.settings.default_rightsholder)
    for err in report.errors:
        note(f"rightswatch: {shown(manifest)}:{err['line']}: {err['error']}")

    def human(r: dict[str, Any]) -> str:
        counts = ", ".join(f"{k} {r[k]}" for k in ("imported", "updated", "skipped"))
        return f"{counts}, errors {len(r['errors'])}"

    emit(report.as_json(), human)


@works.command("list")
@json_option
@translate_errors
def works_list() -> None:
    """List the catalogue."""
    from evidence.catalogue import list_works, work_json
    from evidence.db import translate_db_errors

    with translate_db_errors(), app().factory() as session:
        rows = [work_json(w) for w in list_works(session)]
    emit(rows, _human_works)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@json_option
@translate_errors
def identify(files: tuple[Path, ...]) -> None:
    """Match local FILEs against the catalogue, best match first.

    offset_s is where in the work an audio query starts; [] when nothing matches.
    """
    import fingerprints
    from evidence.catalogue import read_original
    from evidence.db import translate_db_errors
    from evidence.errors import BadInput
    from evidence.matching import CatalogueIndex, hit_json

    a = app()
    index = CatalogueIndex(dict(a.settings.thresholds), a.settings.landmark_max_works)
    with translate_db_errors(), a.factory() as session:
        index.refresh(session)
    results, bad = [], 0
    for path in files:
        try:
            prints = fingerprints.fingerprint_query(read_original(path))
        except (BadInput, fingerprints.FingerprintError) as exc:  # one line, go on
            bad += 1
            note(file_error(path, exc))
            continue
        results.append(
            {"query": str(path), "matches": [hit_json(w, h) for w, h in index.search(prints)]}
        )

    def human(rows: list[dict[str, Any]]) -> str:
        lines = []
        for r in rows:
            if not r["matches"]:
                lines.append(f"{r['query']}: no match")
            for m in r["matches"]:
                off = f" at {m['offset_s']:.1f}s" if m["offset_s"] is not None else ""
                lines.append(
                    f"{r['query']}: {m['ref']} (work {m['work_id']}) score {m['score']:.3f}{off}"
                )
        return "\n".join(lines)

    emit(results, human)
    if bad:
        raise click.exceptions.Exit(2)


COMMANDS = [init, works, identify]


def _add_stamp() -> None:
    from rightswatch.cli.stamp import register  # issue 8: `works stamp`

    register(works)


_add_stamp()
