"""`worker`: not built yet (issue 7)."""

from __future__ import annotations

import click

from rightswatch.cli._common import Fail, json_option


@click.command('worker')
@json_option
def worker_cmd() -> None:
    """Run queued crawl runs from the broker on this machine (Celery)."""
    raise Fail("`worker` is not built yet (issue 7)")


COMMANDS = [worker_cmd]
