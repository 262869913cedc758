"""Evidence fixtures: a home with a signing key that `get_settings()` points at, and synthetic
matches + capture material built through the models (no crawler needed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from evsynth import make_match, make_material  # noqa: F401  (re-exported for tests)
from sqlalchemy.orm import Session, sessionmaker

from evidence.keys import ensure_key
from evidence.store import LocalBlobStore
from rightswatch.config import get_settings


@pytest.fixture
def ev_home(home: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in ("RIGHTSWATCH_TSA_URL", "RIGHTSWATCH_RATE_CARD", "RIGHTSWATCH_BLOB_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RIGHTSWATCH_HOME", str(home))
    monkeypatch.setenv("RIGHTSWATCH_DATABASE_URL", db_url)
    get_settings.cache_clear()
    ensure_key(get_settings().key_path)
    yield home
    get_settings.cache_clear()


@pytest.fixture
def store(ev_home: Path) -> LocalBlobStore:
    return LocalBlobStore(ev_home / "blobs")


@pytest.fixture
def factory(session_factory: sessionmaker[Session], ev_home: Path) -> sessionmaker[Session]:
    return session_factory
