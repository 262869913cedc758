"""`signals`: not built yet (issue 8)."""

from __future__ import annotations

import click


@click.group()
def signals() -> None:
    """What a site and its media say about reuse and AI training."""


COMMANDS = [signals]
