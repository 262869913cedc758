"""`crawl`: not built yet (issue 4)."""

from __future__ import annotations

import click

from rightswatch.cli._common import Fail, json_option


@click.command('crawl')
@json_option
def crawl_cmd() -> None:
    """Crawl now, in the foreground, and record every match."""
    raise Fail("`crawl` is not built yet (issue 4)")


COMMANDS = [crawl_cmd]
