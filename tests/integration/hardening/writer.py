"""A writer process for the fault tests: prints one line per *acknowledged* (committed) write.

    python writer.py heavy DB_URL TAG N     # N transactions: a rightsholder + 20 version rows each
    python writer.py uses DB_URL TAG N      # N writes through evidence.uses / evidence.reviews

The parent kills it (SIGKILL) or waits for it, then checks that every line it read is in the
database, whole. Errors are printed as one line (no traceback) and exit 1.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from sqlalchemy import select

from evidence.db import make_engine, make_session_factory, translate_db_errors
from evidence.errors import EvidenceError
from evidence.models import CatalogueVersion, Match, Rightsholder, Work

ROWS_PER_TX = 20


def heavy(url: str, tag: str, n: int) -> None:
    factory = make_session_factory(make_engine(url))
    for i in range(n):
        name = f"{tag}-{i}"
        with translate_db_errors(), factory.begin() as session:
            holder = Rightsholder(name=name)
            session.add(holder)
            session.flush()
            session.add_all(
                CatalogueVersion(work_id=holder.id, change=name[:16]) for _ in range(ROWS_PER_TX)
            )
        print(name, flush=True)  # acknowledged: the commit returned


def uses(url: str, tag: str, n: int) -> None:
    from evidence.reviews import set_status
    from evidence.uses import record_use
    from fingerprints import Hit

    factory = make_session_factory(make_engine(url))
    with factory() as session:
        work_id = session.scalars(select(Work.id).order_by(Work.id)).first()
    assert work_id is not None
    hit = Hit(work_id=work_id, score=0.9, method="image_phash")
    for i in range(n):
        with translate_db_errors(), factory.begin() as session:
            if i % 2 == 0:
                match, _ = record_use(
                    session,
                    work_id=work_id,
                    page_url=f"http://site.test/{tag}/page{i}",
                    media_url=f"http://site.test/{tag}/img{i}.jpg",
                    hit=hit,
                    run_id=None,
                    media_sha256=None,
                    flags=[],
                    seen_at=datetime.now(UTC),
                )
                print(f"use {match.id}", flush=True)
            else:
                match = session.scalars(
                    select(Match).where(Match.page_url.like(f"%/{tag}/%")).order_by(Match.id.desc())
                ).first()
                assert match is not None
                set_status(session, match, "confirmed", note=f"{tag} {i}", by=tag)
                print(f"status {match.id}", flush=True)


def main() -> None:
    mode, url, tag, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    try:
        {"heavy": heavy, "uses": uses}[mode](url, tag, n)
    except EvidenceError as exc:
        print(f"writer: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
