"""`crawl`: one crawl now, in the foreground, with progress on stderr."""

from __future__ import annotations

from typing import Any

import click

from rightswatch.cli._common import Fail, Usage, app, emit, json_option, note, translate_errors


def _human(r: dict[str, Any]) -> str:
    return (
        f"run {r['run_id']}: {r['state']}; pages {r['pages']}, media {r['media']}, "
        f"matches {r['matches']}, errors {r['errors']}"
    )


@click.command("crawl")
@click.argument("name", required=False)
@click.option(
    "--url", "urls", multiple=True, help="Crawl these URLs instead of a watch (repeatable)."
)
@click.option("--max-depth", type=int, help="Links followed from a seed.")
@click.option("--max-pages", type=int, help="Pages in this run.")
@click.option("--render-js", is_flag=True, help="Render pages in headless Chromium.")
@click.option(
    "--ignore-robots", is_flag=True, help="Do not obey robots.txt (recorded with the run)."
)
@click.option("--run-id", type=int, hidden=True, help="Execute (or resume) this run row.")
@json_option
@translate_errors
def crawl_cmd(
    name: str | None,
    urls: tuple[str, ...],
    max_depth: int | None,
    max_pages: int | None,
    render_js: bool,
    ignore_robots: bool,
    run_id: int | None,
) -> None:
    """Crawl a watch NAME (or --url URL...) now, and record every match.

    Fetches the pages, discovers and downloads their images and audio, fingerprints and
    matches them. Exit 0 when the run finished (even with per-URL errors, counted in
    `errors`); 1 when every seed was refused by the network policy (one line naming each
    address class), the run failed or it was interrupted; 2 for a malformed URL. A first
    SIGTERM or Ctrl-C finishes the pages in flight, a second stops at once. Re-running an
    interrupted run with --run-id N resumes it where it stopped.
    """
    from crawler.runner import (
        config_for_watch,
        create_run,
        execute_run,
        find_watch,
        make_config,
        refused_seeds,
    )
    from evidence.db import translate_db_errors

    chosen = sum(1 for x in (name, urls, run_id) if x)
    if chosen != 1:
        raise Usage("give a watch NAME, or --url URL..., or --run-id N (exactly one)")
    a = app()
    settings = a.settings
    if run_id is None:
        with translate_db_errors(), a.factory.begin() as session:
            if name:
                watch = find_watch(session, name)
                cfg = config_for_watch(
                    watch,
                    max_depth=max_depth,
                    max_pages=max_pages,
                    render_js=render_js,
                    ignore_robots=ignore_robots,
                )
            else:
                watch = None
                cfg = make_config(
                    urls,
                    max_depth=max_depth,
                    max_pages=max_pages,
                    render_js=render_js,
                    ignore_robots=ignore_robots,
                )
            run_id = create_run(session, cfg, watch=watch).id
        refused = refused_seeds(cfg.seeds, settings.allow_networks)
    else:
        _ = a.factory  # the database must be migrated
        refused = []
    if not refused:
        note(f"rightswatch: run {run_id} started")
    result = execute_run(settings, run_id)
    if refused and result["state"] == "failed":
        # Every seed refused before any packet: one line, naming each address class (S1).
        raise Fail(f"run {run_id}: every seed was refused: " + "; ".join(refused))
    if result["state"] == "failed":
        raise Fail(f"run {run_id} failed: {result.get('error') or 'unknown error'}")
    if result["state"] == "interrupted":
        raise Fail(
            f"run {run_id} interrupted; resume it with `rightswatch crawl --run-id {run_id}`"
        )
    out = {k: result[k] for k in ("run_id", "pages", "media", "matches", "errors")}
    out["state"] = result["state"]
    emit(out, _human)


COMMANDS = [crawl_cmd]
