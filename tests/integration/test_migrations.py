"""The schema is owned by Alembic: migrations build it from nothing, agree with the models,
downgrade cleanly, and `init` is idempotent."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from evidence.db import make_engine
from evidence.migrate import current_revision, downgrade, head_revision, upgrade
from evidence.models import Base


def _diffs(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return [
            d
            for d in compare_metadata(ctx, Base.metadata)
            if not (
                isinstance(d, tuple) and d[0] == "remove_table" and d[1].name == "apscheduler_jobs"
            )
        ]


def test_models_and_migrations_agree(migrated: Engine) -> None:
    assert current_revision(migrated) == head_revision()
    assert _diffs(migrated) == []


def test_downgrade_to_base_and_up_again(migrated: Engine) -> None:
    downgrade(migrated, "base")
    assert set(inspect(migrated).get_table_names()) <= {"alembic_version"}
    upgrade(migrated)
    assert "works" in inspect(migrated).get_table_names()
    assert _diffs(migrated) == []


def test_upgrade_twice_is_a_no_op(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()


@pytest.mark.parametrize(
    ("pragma", "expected"),
    [
        ("journal_mode", "wal"),
        ("foreign_keys", 1),
        ("synchronous", 2),
    ],
)
def test_sqlite_connections_are_configured(tmp_path, pragma: str, expected: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql(f"PRAGMA {pragma}").scalar() == expected
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    engine.dispose()
