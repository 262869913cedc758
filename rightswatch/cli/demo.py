"""`demo`: not built yet (issue 4)."""

from __future__ import annotations

import click

from rightswatch.cli._common import Fail, json_option


@click.command('demo')
@json_option
def demo_cmd() -> None:
    """A self-contained end-to-end run on the embedded defaults."""
    raise Fail("`demo` is not built yet (issue 4)")


COMMANDS = [demo_cmd]
