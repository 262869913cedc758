"""catalogue -> crawl the local test web -> matches, through the real CLI, on both databases."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).parents[1] / "site"))
import localweb

ALLOW = "127.0.0.1/32,127.0.0.2/32"  # 127.0.0.3 (the tripwire) stays refused


@pytest.fixture(scope="session")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[localweb.LocalWeb]:
    site = localweb.build(tmp_path_factory.mktemp("web"))
    yield site
    site.stop()


def _register(rw, web: localweb.LocalWeb) -> None:  # type: ignore[no-untyped-def]
    rw.ok("init")
    for ref, path in web.works.files.items():
        rw.ok("works", "add", path, "--ref", ref)


def _uses(rw) -> set[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    out = set()
    for m in rw.ok("matches"):
        page, media = urlsplit(m["page_url"]), urlsplit(m["media_url"])
        media_path = media.path + (f"?{media.query}" if media.query else "")
        out.add((m["ref"], page.path, media_path))
    return out


def test_crawl_finds_every_planted_copy(rw, db_url: str, web: localweb.LocalWeb) -> None:  # type: ignore[no-untyped-def]
    _register(rw, web)
    web.main.log.clear()
    web.tripwire.log.clear()
    env = {"RIGHTSWATCH_ALLOW_NETWORKS": ALLOW}
    res = rw("crawl", "--url", web.main.url("/"), "--max-depth", "2", "--json", env=env)
    assert res.code == 0, res.err
    out = res.json
    assert set(out) >= {"run_id", "pages", "media", "matches", "errors"}
    assert f"run {out['run_id']}" in res.err  # progress on stderr
    assert _uses(rw) == web.expected
    assert out["matches"] == len(web.expected)
    assert out["errors"] >= 2  # the 404 page and the refused internal link at least
    log = set(web.main.log)
    assert "/robots.txt" in log
    assert not any(p.startswith("/private/") for p in log)  # robots.txt obeyed
    assert "/media/secret.jpg" not in log
    assert "/media/b-300.jpg" not in log  # srcset: only the largest candidate
    assert "/media/js.jpg" not in log  # no JS without --render-js
    assert web.tripwire.log == []  # refused by the network policy: no packet
    assert [p for p in web.main.log if p.startswith("/media/")].count("/media/a.jpg") == 1
    assert all(m["evidence_ids"] for m in rw.ok("matches"))  # a capture per use
    errors = dict(
        _db_rows(
            db_url,
            f"SELECT url, error FROM crawl_urls WHERE run_id = {out['run_id']}"
            " AND state = 'failed'",
        )
    )
    assert errors[web.main.url("/private/secret.html")] == "forbidden by robots.txt"
    assert errors[web.main.url("/missing.html")] == "HTTP 404"
    assert errors[web.main.url("/loop-a")].startswith("redirect limit")
    assert errors[web.tripwire.url("/pixel.png")].startswith("blocked by network policy")
    [(robots,)] = _db_rows(db_url, f"SELECT robots FROM runs WHERE id = {out['run_id']}")
    robots = json.loads(robots) if isinstance(robots, str) else robots
    entry = robots[f"127.0.0.1:{web.main.port}"]
    assert entry["status"] == 200
    assert entry["obeyed"] is True
    assert entry["sha256"].startswith("sha256:")


def test_recrawl_moves_last_seen_without_duplicates(rw, web: localweb.LocalWeb) -> None:  # type: ignore[no-untyped-def]
    _register(rw, web)
    env = {"RIGHTSWATCH_ALLOW_NETWORKS": ALLOW}
    rw.ok("watch", "add", "gallery", "--url", web.main.url("/gallery.html"), "--max-depth", "0")
    first = rw.ok("crawl", "gallery", env=env)
    before = {m["id"]: m for m in rw.ok("matches")}
    second = rw.ok("crawl", "gallery", env=env)
    after = {m["id"]: m for m in rw.ok("matches")}
    assert first["matches"] == second["matches"] == 2
    assert set(before) == set(after)
    assert len(after) == 2
    for mid, m in after.items():
        assert m["first_seen"] == before[mid]["first_seen"]
        assert m["last_seen"] > before[mid]["last_seen"]


def test_licensed_domain_gives_licensed_status(rw, web: localweb.LocalWeb) -> None:  # type: ignore[no-untyped-def]
    _register(rw, web)
    rw.ok("licences", "add", "--work", "sunrise", "--domain", "127.0.0.2")
    env = {"RIGHTSWATCH_ALLOW_NETWORKS": ALLOW}
    rw.ok("crawl", "--url", web.licensed.url("/"), env=env)
    [match] = rw.ok("matches")
    assert match["ref"] == "sunrise"
    assert match["status"] == "licensed"


def test_every_seed_refused_exits_1_and_sends_nothing(rw, web: localweb.LocalWeb) -> None:  # type: ignore[no-untyped-def]
    rw.ok("init")
    web.tripwire.log.clear()
    res = rw(
        "crawl", "--url", web.tripwire.url("/"), "--json", env={"RIGHTSWATCH_ALLOW_NETWORKS": ALLOW}
    )
    assert res.code == 1
    assert "refused" in res.err
    assert len(res.err.strip().splitlines()) <= 2
    res = rw("crawl", "--url", "http://169.254.169.254/latest/meta-data/")
    assert res.code == 1
    assert web.tripwire.log == []
    res = rw("crawl", "--url", "not a url")
    assert res.code == 2
    res = rw("crawl", "--url", "http://[::1/x")
    assert res.code == 2


def _db_rows(db_url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def test_kill_9_mid_crawl_then_resume_loses_nothing(
    rw, rw_env, db_url: str, web: localweb.LocalWeb
) -> None:  # type: ignore[no-untyped-def]
    proc = _start_chain_crawl(rw, rw_env, db_url, web, web.chain_pages // 4)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    done_before = _done_pages(db_url)
    assert web.chain_pages // 4 <= len(done_before) < web.chain_pages, "killed too late to test"
    seen_before = len(web.chain.log)
    run_id = _resume_completes_without_duplicates(rw, db_url, web, state_before="running")
    after_kill = web.chain.log[seen_before:]
    assert not done_before & set(after_kill), "a page finished before the kill was fetched again"
    [(state,)] = _db_rows(db_url, f"SELECT state FROM runs WHERE id = {run_id}")
    assert state == "finished"


@pytest.mark.chromium
def test_render_js_finds_script_inserted_media_and_stays_inside_policy(
    rw, web: localweb.LocalWeb
) -> None:  # type: ignore[no-untyped-def]
    _register(rw, web)
    web.tripwire.log.clear()
    env = {"RIGHTSWATCH_ALLOW_NETWORKS": ALLOW}
    out = rw.ok(
        "crawl",
        "--url",
        web.main.url("/js-gallery.html"),
        "--render-js",
        "--max-depth",
        "0",
        env=env,
        timeout=400,
    )
    assert out["matches"] == 1
    assert _uses(rw) == {("forest", "/js-gallery.html", "/media/js.jpg")}
    assert web.tripwire.log == []  # the page's fetch() and iframe went nowhere


def test_recrawl_skips_unchanged_media(rw, db_url: str, web: localweb.LocalWeb) -> None:  # type: ignore[no-untyped-def]
    _register(rw, web)
    env = {"RIGHTSWATCH_ALLOW_NETWORKS": ALLOW}
    url = web.main.url("/decoys.html")
    first = rw.ok("crawl", "--url", url, "--max-depth", "0", env=env)
    second = rw.ok("crawl", "--url", url, "--max-depth", "0", env=env)
    assert first["matches"] == second["matches"] == 0

    def statuses(run_id: int) -> list[object]:
        return sorted(
            s
            for (s,) in _db_rows(
                db_url,
                f"SELECT http_status FROM crawl_urls WHERE run_id = {run_id} AND kind = 'media'",
            )
        )

    assert statuses(first["run_id"]) == [200] * 4
    assert statuses(second["run_id"]) == [304] * 4  # If-None-Match with the stored ETag


def _wait(proc: subprocess.Popen[str]) -> str:
    """The child's stderr once it exits (killed, with what it printed, if it hangs)."""
    try:
        return proc.communicate(timeout=180)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"the crawl did not stop: {proc.communicate()[1][-3000:]}")


def _start_chain_crawl(rw, rw_env, db_url: str, web: localweb.LocalWeb, pages: int):  # type: ignore[no-untyped-def]
    """`crawl` of the slow chain site in a child process, once `pages` pages are done."""
    _register(rw, web)
    web.chain.log.clear()
    env = {**rw_env, "RIGHTSWATCH_ALLOW_NETWORKS": ALLOW}
    cmd = [
        str(Path(sys.executable).with_name("rightswatch")),
        "crawl",
        "--url",
        web.chain.url("/p0.html"),
        "--max-depth",
        "100",
    ]
    proc = subprocess.Popen(
        cmd, env=env, cwd=rw.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            n = len(
                _db_rows(db_url, "SELECT url FROM crawl_urls WHERE kind='page' AND state='done'")
            )
        except Exception:
            n = 0
        if n >= pages:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    return proc


def _done_pages(db_url: str) -> set[str]:
    rows = _db_rows(db_url, "SELECT url FROM crawl_urls WHERE kind='page' AND state='done'")
    return {urlsplit(str(u)).path for (u,) in rows}


def _resume_completes_without_duplicates(  # type: ignore[no-untyped-def]
    rw, db_url: str, web: localweb.LocalWeb, state_before: str = "interrupted"
) -> int:
    """Re-run the one run: it completes, with no page, match or capture twice; its id."""
    [(run_id, state)] = _db_rows(db_url, "SELECT id, state FROM runs")
    assert state == state_before
    out = rw.ok("crawl", "--run-id", str(run_id), env={"RIGHTSWATCH_ALLOW_NETWORKS": ALLOW})
    assert out["run_id"] == run_id
    assert out["pages"] == web.chain_pages
    assert _done_pages(db_url) == {f"/p{i}.html" for i in range(web.chain_pages)}
    matches = rw.ok("matches")
    assert len(matches) == web.chain_pages
    assert len({(m["page_url"], m["media_url"], m["work_id"]) for m in matches}) == len(matches)
    for table, key in [
        ("matches", "work_id, page_url_key, media_url_key"),
        ("captures", "match_id"),
        ("crawl_urls", "run_id, url_key"),
    ]:
        dup = f"SELECT {key} FROM {table} GROUP BY {key} HAVING count(*) > 1"
        assert _db_rows(db_url, dup) == [], table
    [(captures,)] = _db_rows(db_url, "SELECT count(*) FROM captures")
    assert captures == web.chain_pages
    check = rw.ok("evidence", "check")  # ledger chain, signatures and blobs intact
    assert check["ok"], check
    assert check["captures"] == web.chain_pages
    return int(str(run_id))


def test_sigterm_stops_gracefully_as_interrupted_then_resumes(
    rw, rw_env, db_url: str, web: localweb.LocalWeb
) -> None:  # type: ignore[no-untyped-def]
    """C10, one SIGTERM: the pages in flight are finished (every page the site served
    before the stop is recorded done, none is fetched again), state `interrupted`, exit 1
    with the resume hint; the re-run completes with no duplicate row."""
    proc = _start_chain_crawl(rw, rw_env, db_url, web, 3)
    proc.send_signal(signal.SIGTERM)
    err = _wait(proc)
    assert proc.returncode == 1, err
    assert "interrupted" in err
    assert "Traceback" not in err
    served = {p for p in web.chain.log if p.endswith(".html")}
    assert served == _done_pages(db_url)  # in-flight pages finished, none half done
    assert len(served) < web.chain_pages
    [(error,)] = _db_rows(db_url, "SELECT error FROM runs")
    assert "pages in flight were finished" in str(error)
    seen = len(web.chain.log)
    _resume_completes_without_duplicates(rw, db_url, web)
    assert not served & set(web.chain.log[seen:])  # nothing finished was fetched again


def test_double_sigterm_stops_at_once_then_resumes(
    rw, rw_env, db_url: str, web: localweb.LocalWeb
) -> None:  # type: ignore[no-untyped-def]
    """C10, SIGTERM twice: the second stops without draining; committed rows are whole
    (each write is one transaction), state `interrupted`, and the re-run completes with no
    duplicate page, match or capture row."""
    proc = _start_chain_crawl(rw, rw_env, db_url, web, 3)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    err = _wait(proc)
    assert proc.returncode == 1, err
    assert "interrupted" in err
    assert "stopping at once" in err
    assert "Traceback" not in err
    [(error,)] = _db_rows(db_url, "SELECT error FROM runs")
    assert "second signal" in str(error)
    done = _done_pages(db_url)
    assert 3 <= len(done) < web.chain_pages
    # Every page recorded done has its use recorded (no page done without its media).
    matched = {urlsplit(m["page_url"]).path for m in rw.ok("matches")}
    assert done <= matched
    seen = len(web.chain.log)
    _resume_completes_without_duplicates(rw, db_url, web)
    assert not done & set(web.chain.log[seen:])


def test_media_over_the_size_cap_is_refused_with_a_reason(
    rw, db_url: str, web: localweb.LocalWeb
) -> None:  # type: ignore[no-untyped-def]
    _register(rw, web)
    env = {"RIGHTSWATCH_ALLOW_NETWORKS": ALLOW, "RIGHTSWATCH_MAX_MEDIA_BYTES": "2000"}
    out = rw.ok("crawl", "--url", web.main.url("/gallery.html"), "--max-depth", "0", env=env)
    assert out["matches"] == 0
    assert out["errors"] == 2
    rows = _db_rows(
        db_url,
        f"SELECT state, error FROM crawl_urls WHERE run_id = {out['run_id']} AND kind = 'media'",
    )
    assert [state for state, _ in rows] == ["failed", "failed"]
    assert all("2000" in str(error) for _, error in rows), rows


S1_LITERALS = {
    "http://127.0.0.1/": "loopback",
    "http://127.1/": "loopback",
    "http://2130706433/": "loopback",
    "http://0x7f000001/": "loopback",
    "http://0177.0.0.1/": "loopback",
    "http://0.0.0.0/": "this-network",
    "http://[::1]/": "loopback",
    "http://[::ffff:127.0.0.1]/": "IPv4-mapped loopback",
    "http://[::ffff:7f00:1]/": "IPv4-mapped loopback",
    "http://169.254.169.254/latest/meta-data/": "link-local",
    "http://[fe80::1%25eth0]/": "link-local",
    "http://[fd00::1]/": "unique local",
    "http://100.64.0.1/": "shared address space",
    "http://10.0.0.1/": "private",
    "http://172.16.0.1/": "private",
    "http://192.168.1.1/": "private",
    "http://224.0.0.1/": "multicast",
    "http://[64:ff9b::a9fe:a9fe]/": "NAT64 link-local",
    "http://[2002:a9fe:a9fe::]/": "6to4 link-local",
    "http://localhost/": "loopback name",
    "http://LOCALHOST./": "loopback name",
    "http://x.localhost/": "loopback name",
    "http://user@127.0.0.1:80@example.test/": "userinfo hides 127.0.0.1: loopback",
}


def test_s1_each_literal_seed_is_one_line_exit_1(rw, db_url: str) -> None:  # type: ignore[no-untyped-def]
    """HOSTILE.md S1 through the real CLI: exactly one line on stderr naming the address
    class, exit 1, nothing on stdout, the run recorded as failed; no packet (no allow list)."""
    rw.ok("init")
    # One command per literal on SQLite; on PostgreSQL (the same code path, slower to start)
    # one command with all of them as seeds.
    each = db_url.startswith("sqlite")
    batches = [[u] for u in S1_LITERALS] if each else [list(S1_LITERALS)]
    for batch in batches:
        res = rw("crawl", *[a for u in batch for a in ("--url", u)], "--json")
        assert res.code == 1, (batch, res.err)
        lines = [line for line in res.err.splitlines() if line.strip()]
        assert len(lines) == 1, (batch, res.err)
        assert lines[0].startswith("rightswatch: error: run "), (batch, lines)
        assert "every seed was refused" in lines[0]
        for url in batch:
            assert S1_LITERALS[url] in lines[0], (url, lines)
        assert res.out.strip() == ""
    states = _db_rows(db_url, "SELECT state, error FROM runs ORDER BY id")
    assert len(states) == len(batches)
    assert all(state == "failed" and "refused" in str(error) for state, error in states)
    assert _db_rows(db_url, "SELECT count(*) FROM crawl_urls WHERE state != 'failed'") == [(0,)]


@pytest.mark.parametrize(
    "url",
    ["not a url", "http://[::1/x", "http://256.1.1.1/", "http://exa mple.test/", "http://a..b/"],
)
def test_s1_malformed_seed_is_one_line_exit_2(rw, url: str) -> None:  # type: ignore[no-untyped-def]
    rw.ok("init")
    res = rw("crawl", "--url", url)
    assert res.code == 2, res.err
    lines = [line for line in res.err.splitlines() if line.strip()]
    assert len(lines) == 1, res.err
    assert lines[0].startswith("rightswatch: error: malformed URL"), res.err
    assert "Traceback" not in res.err
