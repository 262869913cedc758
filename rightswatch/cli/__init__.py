"""The `rightswatch` command: one group, one module per command family.

Each command is a thin layer over a function in crawler/, evidence/, fingerprints/ or
scheduler.py; see ../shared/CONTRACT.md (and the README) for the interface.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from rightswatch import __version__
from rightswatch.cli import (
    accounts,
    catalogue,
    claims,
    crawl,
    demo,
    evidence,
    licences,
    matches,
    serve,
    signals,
    watch,
    worker,
)
from rightswatch.cli._common import App, json_option, setup_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="rightswatch")
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-v info, -vv debug).")
@json_option
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """Find where your images and audio are used on the web, and prove it.

    State lives under RIGHTSWATCH_HOME (default ./rightswatch-data); RIGHTSWATCH_DATABASE_URL
    overrides the database. Every command accepts --json. Exit codes: 0 success, 1 the operation
    failed, 2 bad usage or bad input.
    """
    ctx.ensure_object(App)
    setup_logging(verbose)


for module in (catalogue, watch, crawl, matches, licences, evidence, claims, accounts, signals):
    for command in module.COMMANDS:
        cli.add_command(command)
for module in (worker, serve, demo):
    for command in module.COMMANDS:
        cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every failure ends as one line on stderr and an exit code, never a traceback."""
    try:
        # standalone_mode=False: click returns a command's Exit code instead of exiting itself.
        code = cli.main(args=argv, prog_name="rightswatch", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("rightswatch: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        message = " ".join(exc.format_message().split())
        click.echo(f"rightswatch: error: {message}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("rightswatch: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("RIGHTSWATCH_DEBUG"):
            traceback.print_exc()
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        click.echo(f"rightswatch: error: {type(exc).__name__}: {reason}", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
