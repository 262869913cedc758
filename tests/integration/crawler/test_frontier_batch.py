"""The crawl frontier's grouped writes (crawler.frontier): one flush, every row as if written
one by one, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crawler.frontier import Frontier
from evidence.models import CrawlUrl, MediaObject, MediaUrl, Run

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _run(factory: sessionmaker[Session]) -> int:
    with factory.begin() as session:
        run = Run(config={})
        session.add(run)
        session.flush()
        return run.id


def _rows(factory: sessionmaker[Session], run_id: int) -> dict[str, Any]:
    with factory() as session:
        return {
            r.url_key: r for r in session.scalars(select(CrawlUrl).where(CrawlUrl.run_id == run_id))
        }


def test_one_flush_queues_finishes_and_records_media(
    session_factory: sessionmaker[Session],
) -> None:
    run_id = _run(session_factory)
    f = Frontier(session_factory, run_id)
    f.queue_pages([("http://a.test/1", "k1", 1), ("http://a.test/2", "k2", 1)], "http://a.test/")
    f.queue_pages([("http://a.test/1", "k1", 2)], "http://a.test/x")  # already queued: ignored
    f.finish_page("k1", state="failed", http_status=500, error="x" * 900, detail={}, depth=1)
    f.finish_page("k1", state="done", http_status=200, error=None, detail={"n": 1}, depth=1)
    f.finish_page(
        "m1",
        kind="media",
        state="done",
        http_status=200,
        error=None,
        detail={},
        url="http://a.test/i.jpg",
    )
    obj = {"sha256": "sha256:aa", "size": 3, "mime": "image/jpeg", "kind": "image"}
    url = {
        "url_key": "m1",
        "url": "http://a.test/i.jpg",
        "etag": '"e1"',
        "last_modified": None,
        "sha256": "sha256:aa",
        "checked_at": NOW,
    }
    f.media_rows(media_object={**obj, "first_seen": NOW}, media_url=url)
    assert f.pending() == 7  # 3 queued rows, 2 finished keys, 1 object, 1 URL
    assert f.flush() > 0
    assert f.flush() == 0
    rows = _rows(session_factory, run_id)
    assert set(rows) == {"k1", "k2", "m1"}
    assert (rows["k1"].state, rows["k1"].http_status, rows["k1"].error) == ("done", 200, None)
    assert rows["k1"].detail == {"n": 1}
    assert rows["k1"].done_at is not None
    assert (rows["k1"].url, rows["k1"].depth) == ("http://a.test/1", 1)  # from the queue row
    assert (rows["k2"].state, rows["k2"].detail) == ("queued", {"parent": "http://a.test/"})
    assert (rows["m1"].kind, rows["m1"].state) == ("media", "done")
    # A second run sees the same file again, unchanged (304): only checked_at moves.
    f.media_rows(
        media_object={**obj, "first_seen": NOW},
        media_url={**url, "etag": None, "sha256": None},
        revalidated=True,
    )
    f.flush()
    with session_factory() as session:
        assert len(session.scalars(select(MediaObject)).all()) == 1
        (media_url,) = session.scalars(select(MediaUrl)).all()
        assert (media_url.etag, media_url.sha256) == ('"e1"', "sha256:aa")


def test_a_failed_error_is_cut_and_a_later_finish_wins(
    session_factory: sessionmaker[Session],
) -> None:
    run_id = _run(session_factory)
    f = Frontier(session_factory, run_id)
    f.finish_page("s", state="failed", http_status=None, error="y" * 900, detail={}, url="u")
    f.flush()
    row = _rows(session_factory, run_id)["s"]
    assert row.state == "failed"
    assert len(row.error or "") == 500
    with session_factory.begin() as session:
        f.finish_in(
            session, "s", kind="page", state="done", http_status=200, error=None, detail={}, url="u"
        )
    assert _rows(session_factory, run_id)["s"].state == "done"
