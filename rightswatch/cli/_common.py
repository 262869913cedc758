"""What every command shares: the application context, `--json`, output, and error lines.

The CLI is a thin layer over the packages below it (sqlite-utils style): commands parse
arguments, call one function, and print its result. Errors are translated here, once:
bad usage or input -> exit 2, an operation that failed -> exit 1, always one line on stderr.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from rightswatch.config import Settings, get_settings

P = ParamSpec("P")
R = TypeVar("R")


class Fail(click.ClickException):
    """The operation failed (exit 1)."""

    exit_code = 1


class Usage(click.ClickException):
    """Bad usage or bad input (exit 2)."""

    exit_code = 2


@dataclass
class App:
    """Lazily built shared objects; one per CLI invocation."""

    json: bool = False
    _settings: Settings | None = None
    _engine: Engine | None = None
    _factory: sessionmaker[Session] | None = None
    _store: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = get_settings()
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from evidence.db import make_engine

            self._engine = make_engine(self.settings.database_url)
        return self._engine

    @property
    def factory(self) -> sessionmaker[Session]:
        """Sessions on a database that `init` has migrated to head (checked once)."""
        if self._factory is None:
            from evidence.db import make_session_factory, translate_db_errors
            from evidence.migrate import current_revision, head_revision

            with translate_db_errors():
                current = current_revision(self.engine)
            if current != head_revision():
                raise Fail(
                    "database is not initialised or not migrated: run `rightswatch init`"
                    f" (at {current or 'no revision'}, head is {head_revision()})"
                )
            self._factory = make_session_factory(self.engine)
        return self._factory

    @property
    def store(self) -> Any:
        if self._store is None:
            from evidence.blobs import open_store

            self._store = open_store(self.settings)
        return self._store


def app() -> App:
    ctx = click.get_current_context()
    obj = ctx.find_object(App)
    if obj is None:
        obj = ctx.ensure_object(App)
    return obj


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return value.hex()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def iso(value: datetime) -> str:
    """UTC ISO 8601 with a Z, whatever the process's TZ."""
    from datetime import UTC

    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def emit(result: Any, human: Callable[[Any], str] | None = None) -> None:
    """Print the result: one JSON document with --json, else the human rendering."""
    if app().json or human is None:
        click.echo(
            json.dumps(
                result, default=_json_default, ensure_ascii=False, indent=None if app().json else 2
            )
        )
    else:
        text = human(result)
        if text:
            click.echo(text)


def note(message: str) -> None:
    """Progress or a remark: always stderr, so --json stdout stays one document."""
    click.echo(message, err=True)


def json_option(func: Callable[P, R]) -> Callable[P, R]:
    """Every command accepts --json (also accepted before the command name)."""

    def set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            ctx.ensure_object(App).json = True

    return click.option(
        "--json",
        "json_",
        is_flag=True,
        expose_value=False,
        callback=set_json,
        is_eager=True,
        help="Print exactly one JSON document on stdout; logs go to stderr.",
    )(func)


def translate_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Map the packages' error trees to exit codes and one line."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from evidence.errors import BadInput, EvidenceError
        from rightswatch.config import ConfigError

        try:
            return func(*args, **kwargs)
        except (BadInput, ConfigError) as exc:
            raise Usage(str(exc)) from exc
        except EvidenceError as exc:
            raise Fail(str(exc)) from exc

    return wrapper


def setup_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        stream=sys.stderr,
        level=max(level, logging.DEBUG),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
