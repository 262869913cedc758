"""crawler.signals.record_signals on both database backends, and the match flag helper."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from crawler.signals import page_signals, record_signals
from evidence.models import Run, Signal
from evidence.rightsmeta import rights_flags


def test_signals_are_recorded_once_per_run_and_url(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        run = Run(started_by="test")
        session.add(run)
        session.flush()
        run_id = run.id
        page = page_signals("https://Site.example/a", {"tdm-reservation": "1"}, b"")
        record_signals(
            session, run_id=run_id, url="https://Site.example/a", scope="page", data=page
        )
        record_signals(
            session,
            run_id=run_id,
            url="https://site.example:443/a#frag",  # the same URL, spelled differently
            scope="page",
            data={**page, "noai": True},
        )
        record_signals(session, run_id=None, url="https://site.example/a", scope="site", data={})
        media = {"creator": "<script>x</script>", "copyright": None, "data_mining": None}
        record_signals(session, run_id=run_id, url="https://cdn.example/i.jpg", scope="media",
                       data=media)  # fmt: skip
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Signal)) == 3
        row = session.scalar(select(Signal).where(Signal.scope == "page"))
        assert row is not None
        assert row.url == "https://site.example/a"
        assert row.data["tdm_reservation"] is True
        assert row.data["noai"] is True
        stored = session.scalar(select(Signal).where(Signal.scope == "media"))
        assert stored is not None
        assert stored.data["creator"] == "<script>x</script>"  # data, bound as a parameter


def test_unknown_scope_is_refused(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session, pytest.raises(ValueError, match="unknown signal scope"):
        record_signals(session, run_id=None, url="https://x.example/", scope="host", data={})


def test_rights_flags() -> None:
    original = {"creator": "Ann", "copyright": "© Ann", "data_mining": None}
    assert rights_flags(original, {"creator": None, "copyright": None}) == [
        "rights_metadata_removed"
    ]
    assert rights_flags(original, original) == []
    assert rights_flags(original, {"reason": "not an image or audio file"}) == []
