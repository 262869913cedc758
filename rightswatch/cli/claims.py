"""`claims`: not built yet (issue 5)."""

from __future__ import annotations

import click


@click.group()
def claims() -> None:
    """Claims per work and use, for collecting societies."""


COMMANDS = [claims]
