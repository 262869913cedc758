"""`matches`: not built yet (issue 6)."""

from __future__ import annotations

import click


@click.group()
def matches() -> None:
    """Found uses of your works, and review decisions."""


COMMANDS = [matches]
