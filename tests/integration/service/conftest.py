"""Service tests sign ledger entries: give the process settings a home with a signing key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from evidence.keys import ensure_key
from rightswatch.config import get_settings


@pytest.fixture(autouse=True)
def signing_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "signing-home"
    monkeypatch.setenv("RIGHTSWATCH_HOME", str(home))
    get_settings.cache_clear()
    ensure_key(get_settings().key_path)
    yield home
    get_settings.cache_clear()
