"""Alembic environment: metadata from evidence.models, URL from rightswatch.config.

`rightswatch init` runs this programmatically and may hand over an open connection in
config.attributes["connection"]; the `alembic` command line builds one from the settings.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from evidence.db import make_engine
from evidence.models import Base, UTCDateTime
from rightswatch.config import get_settings

config = context.config
target_metadata = Base.metadata


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    # APScheduler's job store owns its own table; it is not part of our schema.
    return not (type_ == "table" and name == "apscheduler_jobs")


def render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    # Migrations must not import model code: our UTCDateTime is a plain timestamptz underneath.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
