"""`serve`: not built yet (issue 6)."""

from __future__ import annotations

import click

from rightswatch.cli._common import Fail, json_option


@click.command('serve')
@json_option
def serve_cmd() -> None:
    """The HTTP API, the review pages and the scheduler, in one process."""
    raise Fail("`serve` is not built yet (issue 6)")


COMMANDS = [serve_cmd]
