"""HOSTILE.md C11, global per-host cap across accounts: two crawl processes at once on one
host, sharing one home, stay within the per-host cap together (crawler.middlewares
`HostTokens`, flock tokens under `$RIGHTSWATCH_HOME/hostslots`); with separate homes they do
not (the control: the counter can catch a breach). A token held by a SIGKILLed process is
free again."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hostile.conftest import CHILD, REPO, TEST_SETTINGS
from hostile.server import Exchange, Site

CAP = 8  # crawler.safety: CONCURRENT_REQUESTS_PER_DOMAIN
HOLD_S = 3.0  # a request is held until more than CAP are in at once, or this long


def _gate(site: Site, group: str) -> None:
    """A route counting concurrent requests; each is held until the count has gone past the
    cap (then all are answered at once) or HOLD_S, so two crawls running side by side
    without a shared cap are caught overlapping however slowly each one starts."""
    srv = site.server
    srv.active.pop(group, None)
    srv.max_active.pop(group, None)
    over = asyncio.Event()

    @srv.route(f"/{group}/*")
    async def held(ex: Exchange) -> None:
        srv.active[group] += 1
        srv.max_active[group] = max(srv.max_active[group], srv.active[group])
        if srv.active[group] > CAP:
            over.set()
        try:
            await asyncio.wait_for(over.wait(), HOLD_S)
        except TimeoutError:
            pass
        finally:
            srv.active[group] -= 1
        await ex.respond(200, b"not an image", {"Content-Type": "image/jpeg"})


def _two_crawls(
    tmp_path: Path, site: Site, group: str, homes: tuple[Path, Path]
) -> list[dict[str, Any]]:
    """Two crawl processes at once, each asking for 100 per host, 16 URLs each."""
    procs = []
    for n, home in enumerate(homes):
        urls = [f"{site.server.origin}/{group}/p{n}-{i}.jpg" for i in range(16)]
        config = {
            "urls": urls,
            "settings": {
                **TEST_SETTINGS,
                "AUTOTHROTTLE_ENABLED": False,
                "DOWNLOAD_TIMEOUT": 30,
                "HOSTSLOTS_DIR": str(home / "hostslots"),  # as crawler.runner sets it
            },
            "follow": False,
            "fake_dns": {},
            "allow": ["127.0.0.1/32"],
            "project": {"CONCURRENT_REQUESTS": 100, "CONCURRENT_REQUESTS_PER_DOMAIN": 100},
        }
        cfg, out = tmp_path / f"config{n}.json", tmp_path / f"result{n}.json"
        cfg.write_text(json.dumps(config))
        env = {k: v for k, v in os.environ.items() if not k.endswith("_PROXY")}
        env["PYTHONPATH"] = str(REPO)
        procs.append(
            (
                subprocess.Popen(
                    [sys.executable, str(CHILD), str(cfg), str(out)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                ),
                out,
            )
        )
    results = []
    for proc, out in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-3000:]
        assert "Traceback" not in err, err[-3000:]
        results.append(json.loads(out.read_text()))
    return results


def test_c11_two_crawls_sharing_a_home_keep_one_per_host_cap(tmp_path: Path, site: Site) -> None:
    _gate(site, "gcap-shared")
    home = tmp_path / "home"
    results = _two_crawls(tmp_path, site, "gcap-shared", (home, home))
    for r in results:
        assert len(r["results"]) == 16
        assert all(x["ok"] for x in r["results"]), r["results"]
    assert 2 <= site.server.max_active["gcap-shared"] <= CAP


def test_c11_control_two_homes_go_past_the_cap(tmp_path: Path, site: Site) -> None:
    """Without a shared home each crawl has its own 8: the server counts more than 8, so
    the test above can fail."""
    _gate(site, "gcap-apart")
    results = _two_crawls(tmp_path, site, "gcap-apart", (tmp_path / "a", tmp_path / "b"))
    assert all(x["ok"] for r in results for x in r["results"])
    assert site.server.max_active["gcap-apart"] > CAP


def test_c11_an_unusable_token_directory_falls_back_to_the_per_process_cap(
    tmp_path: Path, site: Site
) -> None:
    """A home where the token directory cannot be made (here: a file) costs the machine-wide
    cap, logged, never the crawl: every URL is still fetched, each crawl within its own 8."""
    _gate(site, "gcap-broken")
    home = tmp_path / "not-a-dir"
    home.write_text("a file where the home should be")
    results = _two_crawls(tmp_path, site, "gcap-broken", (home, home))
    for r in results:
        assert len(r["results"]) == 16
        assert all(x["ok"] for x in r["results"]), r["results"]
    assert site.server.max_active["gcap-broken"] <= 2 * CAP


HOLDER = """
import sys, time
from pathlib import Path
from crawler.middlewares import HostTokens
fd = HostTokens(Path(sys.argv[1]), 1).acquire("example.org")
print("held" if fd is not None else "none", flush=True)
time.sleep(600)
"""


def test_c11_a_killed_crawls_token_is_free_again(tmp_path: Path) -> None:
    from crawler.middlewares import HostTokens

    where = tmp_path / "hostslots"
    tokens = HostTokens(where, 1)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(where)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"
        assert tokens.acquire("example.org") is None  # held by the child
        other = tokens.acquire("other.example")  # another host has its own tokens
        assert other is not None
        tokens.release(other)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    fd = None
    for _ in range(100):  # the kernel drops the lock when the process is reaped
        fd = tokens.acquire("example.org")
        if fd is not None:
            break
        time.sleep(0.05)
    assert fd is not None
    tokens.release(fd)


def test_c11_tokens_are_counted_and_released_in_one_process(tmp_path: Path) -> None:
    from crawler.middlewares import HostTokens

    tokens = HostTokens(tmp_path / "hostslots", 2)
    a, b = tokens.acquire("h.example"), tokens.acquire("h.example")
    assert a is not None
    assert b is not None
    assert tokens.acquire("h.example") is None
    tokens.release(a)
    c = tokens.acquire("h.example")
    assert c is not None
    for fd in (b, c):
        tokens.release(fd)
    # Only held tokens keep a file open: none are left here.
    assert not [p for p in Path("/proc/self/fd").iterdir() if "hostslots" in _target(p)]


def _target(p: Path) -> str:
    try:
        return os.readlink(p)
    except OSError:
        return ""


def test_c11_the_runner_puts_the_token_dir_under_the_home(tmp_path: Path) -> None:
    from crawler.runner import make_config, scrapy_settings
    from rightswatch.config import from_env

    settings = from_env({"RIGHTSWATCH_HOME": str(tmp_path)})
    out = scrapy_settings(settings, make_config(["http://example.org/"]))
    assert out["HOSTSLOTS_DIR"] == str(tmp_path / "hostslots")
    assert out["DOWNLOADER"] == "crawler.middlewares.CappedDownloader"
