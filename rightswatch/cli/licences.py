"""`licences`: not built yet (issue 6)."""

from __future__ import annotations

import click


@click.group()
def licences() -> None:
    """Licensed uses: matches on a licensed domain become `licensed`."""


COMMANDS = [licences]
