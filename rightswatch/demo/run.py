"""`rightswatch demo`: the whole loop on the embedded defaults, nothing downloaded.

Generates sample works, registers them, serves the demo site on 127.0.0.1 in this process,
crawls it with the network policy opened to that one address only, and summarises the matches.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

from rightswatch.config import Settings

DEMO_HOST = "127.0.0.1"


def evidence_step(settings: Settings, run_id: int, match_ids: list[int]) -> dict[str, Any] | None:
    """Export the demo's matches to an evidence pack, verify it offline, and say where both the
    pack and its report are (the summary's "evidence")."""
    if not match_ids:
        return None
    from evidence.pack import export_and_verify

    return export_and_verify(settings, match_ids, settings.home / "demo-evidence.zip")


def run_demo(settings: Settings) -> dict[str, Any]:
    from sqlalchemy import select

    from crawler.runner import create_run, execute_run, make_config
    from evidence.blobs import open_store
    from evidence.catalogue import WorkInput, add_work
    from evidence.db import make_engine, make_session_factory, translate_db_errors
    from evidence.keys import ensure_key
    from evidence.migrate import upgrade
    from evidence.models import Match
    from evidence.uses import match_json
    from rightswatch.demo.site import make_samples, serve_site

    settings.home.mkdir(parents=True, exist_ok=True)
    settings.blob_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    try:
        with translate_db_errors():
            upgrade(engine)
        ensure_key(settings.key_path)
        factory = make_session_factory(engine)
        store = open_store(settings)
        works = []
        for sample in make_samples(settings.home / "demo-works"):
            item = WorkInput(
                path=sample.path, ref=sample.ref, title=sample.title, creator=sample.creator
            )
            reg = add_work(factory, store, item, settings.default_rightsholder)
            works.append({"id": reg.work.id, "ref": reg.work.ref, "outcome": reg.outcome})
        site = serve_site(DEMO_HOST)
        try:
            cfg = make_config([site.url("/")], max_depth=2, max_pages=50)
            with factory.begin() as session:
                run_id = create_run(session, cfg, started_by="demo").id
            crawl_settings = dataclasses.replace(
                settings, allow_networks=(ipaddress.ip_network(f"{DEMO_HOST}/32"),)
            )
            result = execute_run(crawl_settings, run_id)
        finally:
            site.stop()
        with factory() as session:
            rows = session.scalars(
                select(Match).where(Match.last_run_id == run_id).order_by(Match.id)
            ).all()
            matches = [match_json(m) for m in rows]
        summary: dict[str, Any] = {
            "site": site.base,
            "works": works,
            "run": {
                k: result[k] for k in ("run_id", "state", "pages", "media", "matches", "errors")
            },
            "matches": matches,
            "evidence": evidence_step(settings, run_id, [m["id"] for m in matches]),
        }
        return summary
    finally:
        engine.dispose()
