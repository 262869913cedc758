"""Run the Alembic migrations programmatically (`rightswatch init`, the tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

# The migrations live at the top of the checkout; rightswatch is installed editable into .venv.
ALEMBIC_DIR = Path(__file__).resolve().parent.parent / "alembic"


def alembic_config() -> Config:
    """Alembic's config; callers hand env.py an open connection in cfg.attributes."""
    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate to `revision`; each migration runs in its own transaction, so a failure leaves
    the previous revision in place."""
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
