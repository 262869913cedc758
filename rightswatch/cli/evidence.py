"""`evidence`: not built yet (issue 5)."""

from __future__ import annotations

import click


@click.group()
def evidence() -> None:
    """Evidence packs: export, verify offline, timestamp, check."""


COMMANDS = [evidence]
