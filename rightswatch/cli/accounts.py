"""`accounts`: not built yet (issue 6)."""

from __future__ import annotations

import click


@click.group()
def accounts() -> None:
    """Accounts for the HTTP API."""


COMMANDS = [accounts]
