"""`watch add` and `watch list`: monitored scopes (seed URLs, limits, schedules)."""

from __future__ import annotations

from typing import Any

import click

from rightswatch.cli._common import Usage, app, emit, json_option, translate_errors


@click.group()
def watch() -> None:
    """Monitored scopes: seed URLs, limits and schedules."""


def _human(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no watches"
    lines = []
    for w in rows:
        when = w["cron"] or (f"every {w['every_s']}s" if w["every_s"] else "by hand")
        holder = w.get("rightsholder") or "-"
        lines.append(
            f"{w['id']:>4}  {w['name']:<20}  {holder:<16}  {when:<16}  {' '.join(w['urls'])}"
        )
    return "\n".join(lines)


MAX_EVERY_S = 366 * 86400  # as the API: longer is a typo (and would overflow the column)


def _holder_name(value: str) -> str:
    name = value.strip()
    if not name or len(name) > 200 or not name.isprintable():
        raise Usage("--rightsholder: give a name of 1 to 200 printable characters")
    return name


def _rows(session: Any, watches: list[Any]) -> list[dict[str, Any]]:
    """`watch_json` plus the name of the rightsholder each watch belongs to (null: default)."""
    from sqlalchemy import select

    from crawler.runner import watch_json
    from evidence.models import Rightsholder

    ids = {w.rightsholder_id for w in watches if w.rightsholder_id is not None}
    names = dict(
        session.execute(
            select(Rightsholder.id, Rightsholder.name).where(Rightsholder.id.in_(ids))
        ).all()
    )
    return [watch_json(w) | {"rightsholder": names.get(w.rightsholder_id)} for w in watches]


@watch.command("add")
@click.argument("name")
@click.option("--url", "urls", multiple=True, required=True, help="Seed URL (repeatable).")
@click.option("--max-depth", type=int, help="Links followed from a seed (default 3).")
@click.option("--max-pages", type=int, help="Pages per run (default 1000).")
@click.option(
    "--allow-domain",
    "domains",
    multiple=True,
    help="Domain to crawl, with its subdomains (repeatable; default: the seeds' hosts).",
)
@click.option("--include", multiple=True, help="Only follow URLs matching this regex (repeatable).")
@click.option(
    "--exclude", multiple=True, help="Never follow URLs matching this regex (repeatable)."
)
@click.option("--every", help="Run periodically: 30m, 6h, 1d, 1w.")
@click.option("--cron", help="Run on a crontab schedule (5 fields, UTC), e.g. '0 3 * * *'.")
@click.option("--render-js", is_flag=True, help="Render pages in headless Chromium.")
@click.option(
    "--ignore-robots", is_flag=True, help="Do not obey robots.txt (recorded with each run)."
)
@click.option(
    "--rightsholder",
    help="The rightsholder the watch works for: its API accounts see and manage it "
    "(default: none, i.e. the default rightsholder's).",
)
@json_option
@translate_errors
def watch_add(
    name: str,
    urls: tuple[str, ...],
    max_depth: int | None,
    max_pages: int | None,
    domains: tuple[str, ...],
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    every: str | None,
    cron: str | None,
    render_js: bool,
    ignore_robots: bool,
    rightsholder: str | None,
) -> None:
    """Define the monitored scope NAME."""
    from crawler.runner import create_watch, make_config, parse_every, validate_cron
    from evidence.catalogue import get_rightsholder
    from evidence.db import translate_db_errors

    if every and cron:
        raise Usage("--every and --cron are mutually exclusive")
    holder = _holder_name(rightsholder) if rightsholder is not None else None
    every_s = parse_every(every) if every else None
    if every_s is not None and every_s > MAX_EVERY_S:
        raise Usage(f"--every {every!r}: at most {MAX_EVERY_S // 86400} days")
    cron_expr = validate_cron(cron) if cron else None
    cfg = make_config(
        urls,
        allow_domains=domains,
        include=include,
        exclude=exclude,
        max_depth=max_depth,
        max_pages=max_pages,
        render_js=render_js,
        ignore_robots=ignore_robots,
    )
    with translate_db_errors(), app().factory.begin() as session:
        holder_id = get_rightsholder(session, holder).id if holder else None
        created = create_watch(
            session, name, cfg, every_s=every_s, cron=cron_expr, rightsholder_id=holder_id
        )
        result = _rows(session, [created])[0]
    emit(result, lambda w: _human([w]))


@watch.command("list")
@json_option
@translate_errors
def watch_list() -> None:
    """List the watches."""
    from sqlalchemy import select

    from evidence.db import translate_db_errors
    from evidence.models import Watch

    with translate_db_errors(), app().factory() as session:
        rows = _rows(session, list(session.scalars(select(Watch).order_by(Watch.id))))
    emit(rows, _human)


COMMANDS = [watch]
