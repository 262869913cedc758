"""`watch`: not built yet (issue 4)."""

from __future__ import annotations

import click


@click.group()
def watch() -> None:
    """Monitored scopes: seed URLs, limits and schedules."""


COMMANDS = [watch]
