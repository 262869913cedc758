"""The review pages end to end in headless Chromium (Debian's /usr/bin/chromium) against a real
`rightswatch serve`: log in with a token, see the work and the found copy side by side, review a
match with the keyboard, watch it leave the queue, export its pack and verify it; a hostile page
URL runs no script."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import select
from svc_serve import RIGHTSWATCH, free_port, wait_healthy

from evidence.db import make_engine, make_session_factory
from evidence.models import Match, Work
from evidence.store import LocalBlobStore
from evidence.uses import record_use
from fingerprints import Hit

GOLDEN = Path(__file__).parents[1] / "data" / "golden"
CHROMIUM = "/usr/bin/chromium"
HOSTILE = (
    'https://evil.example/"><script>window.pwned=1</script><img src=x onerror="window.pwned=2">'
)

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium")


@pytest.fixture
def served(
    rw_init: Any, rw_env: dict[str, str], home: Path, db_url: str, tmp_path: Path
) -> Iterator[dict[str, Any]]:
    rw = rw_init
    work = rw.ok(
        "works", "add", GOLDEN / "golden_image_1.png", "--ref", "sunset", "--rightsholder", "X"
    )[0]
    token = rw.ok("accounts", "add", "rev", "--rightsholder", "X", "--role", "reviewer")["token"]
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    found = LocalBlobStore(home / "blobs").put((GOLDEN / "golden_image_1.png").read_bytes())
    with factory.begin() as s:
        w = s.scalars(select(Work).where(Work.id == work["id"])).one()
        ids = []
        for page in ("https://copy.example/gallery", HOSTILE):
            m, _ = record_use(
                s,
                work_id=w.id,
                page_url=page,
                media_url="https://copy.example/sunset.png",
                hit=Hit(w.id, 0.97, method="image_phash"),
                run_id=None,
                media_sha256=found,
                flags=["rights_metadata_removed"],
                seen_at=w.created_at,
            )
            ids.append(m.id)
    port = free_port()
    proc = subprocess.Popen(
        [RIGHTSWATCH, "serve", "--port", str(port), "--no-scheduler"],
        env=rw_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        yield {
            "base": base,
            "token": token,
            "ids": ids,
            "factory": factory,
            "rw": rw,
            "tmp": tmp_path,
        }
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        engine.dispose()


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


def login(page: Page, base: str, token: str) -> None:
    page.goto(base + "/")
    page.fill("#token", token)  # the front page is the login form until logged in
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def test_review_a_match_and_export_its_pack(served: dict[str, Any], browser: Browser) -> None:
    base, (good, hostile) = served["base"], served["ids"]
    page = browser.new_page(accept_downloads=True)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    login(page, base, served["token"])
    card = page.locator(f"#match-{good}")
    card.wait_for()
    # Work and found copy side by side, both loaded through the authenticated routes.
    assert card.locator("img").count() == 2
    page.wait_for_function(
        "id => [...document.querySelectorAll(`#match-${id} img`)]"
        ".every(i => i.complete && i.naturalWidth > 0)",
        arg=good,
    )
    # The hostile URL is text, and nothing ran.
    assert (
        page.locator(f"#match-{hostile} .where dd")
        .first.inner_text()
        .startswith('https://evil.example/">')
    )
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert dialogs == []
    # Keyboard review: focus the card, press c (confirm); the page reloads without it.
    card.focus()
    with page.expect_navigation():
        page.keyboard.press("c")
    assert page.locator(f"#match-{good}").count() == 0
    assert page.locator(f"#match-{hostile}").count() == 1
    with served["factory"]() as s:
        assert s.get(Match, good).status == "confirmed"
    # One-click export of the confirmed match, then verify the pack offline.
    page.goto(base + "/?status=confirmed")
    with page.expect_download() as info:
        page.locator(f"#match-{good} form.export button").click()
    target = served["tmp"] / "pack.zip"
    info.value.save_as(target)
    verdict = served["rw"].ok("evidence", "verify", target)
    assert verdict["ok"] is True, verdict


def test_logged_out_pages_and_api(served: dict[str, Any]) -> None:
    base = served["base"]
    with httpx.Client(base_url=base, follow_redirects=False) as client:
        assert 'name="token"' in client.get("/").text
        assert client.get("/api/matches").status_code == 401
        assert client.get(f"/review/matches/{served['ids'][0]}/media").status_code == 401
        ok = client.get("/api/matches", headers={"Authorization": f"Bearer {served['token']}"})
        assert {m["id"] for m in ok.json()} == set(served["ids"])
        assert client.get("/static/style.css").status_code == 200
        assert client.get("/openapi.json").json()["paths"]["/api/matches"]
