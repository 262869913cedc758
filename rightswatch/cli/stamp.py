"""`works stamp`: copies of originals carrying the rightsholder's notices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from rightswatch.cli._common import Usage, app, emit, json_option, translate_errors


def _human(rows: list[dict[str, Any]]) -> str:
    return "\n".join(f"{r['ref']:<24}  {r['path']}" for r in rows) or "nothing stamped"


@click.command("stamp")
@click.argument("refs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    "outdir",
    required=True,
    type=click.Path(path_type=Path),
    help="Directory for the stamped copies (created if missing).",
)
@click.option(
    "--data-mining",
    type=click.Choice(
        [
            "prohibited",
            "prohibited-ai-training",
            "prohibited-genai-training",
            "prohibited-except-search",
            "allowed",
            "unspecified",
        ]
    ),
    default="prohibited",
    show_default=True,
    help="IPTC Data Mining value (PLUS vocabulary) to embed.",
)
@click.option(
    "--web-statement", help="URL of a web page stating the rights (xmpRights:WebStatement)."
)
@click.option("--licence", help="URL of the licence the work is offered under (cc:license).")
@json_option
@translate_errors
def stamp_cmd(
    refs: tuple[str, ...],
    outdir: Path,
    data_mining: str,
    web_statement: str | None,
    licence: str | None,
) -> None:
    """Write copies of works REF… with their notices embedded: creator, copyright, credit,
    data mining (IPTC/XMP and EXIF for images, ID3 / Vorbis / MP4 tags for audio).

    The copies still match their works (`rightswatch identify`).
    """
    from evidence.catalogue import find_works
    from evidence.db import translate_db_errors
    from evidence.stamp import DATA_MINING, stamp_works

    a = app()
    with translate_db_errors(), a.factory() as session:
        works: list[Any] = []
        for ref in refs:
            found = find_works(session, ref)
            if not found:
                raise Usage(f"no work with ref {ref!r}")
            works.extend(w for w in found if w not in works)
    rows = stamp_works(
        a.store,
        works,
        outdir,
        web_statement=web_statement,
        licence=licence,
        data_mining=DATA_MINING[data_mining],
    )
    emit(rows, _human)


def register(group: click.Group) -> None:
    group.add_command(stamp_cmd)
