"""D5 on a PostgreSQL cluster this test owns (initdb + pg_ctl on a free port; the shared server
on 5432 is never touched): the database stops in the middle of an import, the command ends with
one line and exit 1, nothing already committed is lost, and after a restart the same import
completes, skipping what was done."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import create_engine, func, select

from evidence.models import Work

sys.path.insert(0, str(Path(__file__).parent))
from leftovers import kill_leftovers

RIGHTSWATCH = str(Path(sys.executable).with_name("rightswatch"))
PG_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass
class Cluster:
    data: Path
    port: int
    as_user: list[str]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str) -> None:
        cmd = [*self.as_user, str(_bin("pg_ctl")), "-D", str(self.data), "-w", "-t", "60", *args]
        subprocess.run(cmd, check=True, capture_output=True)

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.ctl("-o", opts, "-l", str(self.data.parent / "log"), "start")

    def stop(self) -> None:
        self.ctl("-m", "immediate", "stop")  # as a crash or a pulled cable would


def _bin(name: str) -> Path:
    found = shutil.which(name)
    return Path(found) if found else PG_BIN / name


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    if not _bin("initdb").exists():
        pytest.skip("initdb not installed")
    as_user: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="rw-pg-", dir="/tmp"))
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: use its own account
        as_user = ["runuser", "-u", "postgres", "--"]
        base.chmod(0o755)
        shutil.chown(base, "postgres", "postgres")
    data = base / "data"
    subprocess.run(
        [
            *as_user,
            str(_bin("initdb")),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    c = Cluster(data, _free_port(), as_user)
    c.start()
    yield c
    subprocess.run(
        [*as_user, str(_bin("pg_ctl")), "-D", str(data), "-m", "immediate", "stop"],
        capture_output=True,
        check=False,
    )
    shutil.rmtree(base, ignore_errors=True)


def _env(home: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIGHTSWATCH_")}
    env.update(RIGHTSWATCH_HOME=str(home), RIGHTSWATCH_DATABASE_URL=url)
    return env


def _works(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(Work)) or 0)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgresql_stopped_mid_import(cluster: Cluster, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = _env(home, cluster.url)
    init = subprocess.run(
        [RIGHTSWATCH, "init", "--json"], env=env, capture_output=True, text=True, check=False
    )
    assert init.returncode == 0, init.stderr
    media = tmp_path / "media"
    media.mkdir()
    rnd = random.Random(5)
    for i in range(40):
        img = Image.new("L", (48, 48))
        img.putdata([rnd.randrange(256) for _ in range(48 * 48)])
        img.resize((384, 384)).save(media / f"w{i}.png")
    manifest = media / "works.csv"
    manifest.write_text("path,ref\n" + "".join(f"w{i}.png,W{i}\n" for i in range(40)))

    proc = subprocess.Popen(
        [RIGHTSWATCH, "works", "import", str(manifest), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while _works(cluster.url) < 3:  # some rows committed ...
        assert proc.poll() is None, "the import ended before the database could be stopped"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGSTOP)  # ... hold it still, pull the database away, let it go on
    before = _works(cluster.url)
    cluster.stop()
    proc.send_signal(signal.SIGCONT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("rightswatch: error: ")]
    assert len(errors) == 1, err
    assert errors[0] == lines[-1]
    assert errors[0].startswith("rightswatch: error: database unavailable: "), err
    logged = lines[:-1]  # at most log records (e.g. the blob left for `evidence check`)
    assert all(" WARNING " in line or " ERROR " in line for line in logged), err
    assert "Traceback" not in err
    assert out == ""  # nothing reported as imported

    cluster.start()
    after_crash = _works(cluster.url)
    assert after_crash >= before  # every committed row survived (a row in flight may have too)
    again = subprocess.run(
        [RIGHTSWATCH, "works", "import", str(manifest), "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["skipped"] == after_crash
    assert report["imported"] == 40 - after_crash
    assert report["errors"] == []
    assert _works(cluster.url) == 40


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_postgresql_stopped_mid_crawl_then_resumed(cluster: Cluster, tmp_path: Path) -> None:
    """D5 for a crawl: the run ends (no hang) as failed with one line and exit 1, reports
    nothing, and after the restart `crawl --run-id N` completes it without duplicates.

    It used to hang: a pipeline awaited Scrapy's close from inside an item, and the close
    waits for the items in progress."""
    sys.path.insert(0, str(Path(__file__).parents[2] / "site"))
    import localweb

    web = localweb.build(tmp_path / "web", chain_pages=20, chain_delay_s=0.3)
    env = {**_env(tmp_path / "home", cluster.url), "RIGHTSWATCH_ALLOW_NETWORKS": "127.0.0.1/32"}
    try:

        def rw(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [RIGHTSWATCH, *args, "--json"], env=env, capture_output=True, text=True, check=False
            )

        assert rw("init").returncode == 0
        for ref, path in web.works.files.items():
            assert rw("works", "add", str(path), "--ref", ref).returncode == 0
        # Files, not pipes: a leaked grandchild holding a pipe must not hang the test.
        out_f = open(tmp_path / "crawl.out", "w+")  # noqa: SIM115
        err_f = open(tmp_path / "crawl.err", "w+")  # noqa: SIM115
        cmd = [RIGHTSWATCH, "crawl", "--url", web.chain.url("/p0.html"), "--max-depth", "100"]
        proc = subprocess.Popen([*cmd, "--json"], env=env, stdout=out_f, stderr=err_f)
        engine = create_engine(cluster.url)

        def pages_done() -> int:
            with engine.connect() as conn:
                return int(
                    conn.exec_driver_sql(
                        "SELECT count(*) FROM crawl_urls WHERE kind = 'page' AND state = 'done'"
                    ).scalar()
                    or 0
                )

        web.chain.log.clear()
        deadline = time.monotonic() + 300
        while "/p3.html" not in web.chain.log:  # the crawl is on its fourth page of twenty
            assert proc.poll() is None, (tmp_path / "crawl.err").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGSTOP)
        done_before = pages_done()
        engine.dispose()
        cluster.stop()
        proc.send_signal(signal.SIGCONT)
        try:
            proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail("the crawl hung after the database went away")
        out_f.close()
        err_f.close()
        out, err = (tmp_path / "crawl.out").read_text(), (tmp_path / "crawl.err").read_text()
        assert proc.returncode == 1, (out, err)
        assert "Traceback" not in err
        errors = [line for line in err.splitlines() if line.startswith("rightswatch: error: ")]
        assert len(errors) == 1, err
        assert errors[0].startswith("rightswatch: error: database unavailable: "), err
        assert errors[0] == err.strip().splitlines()[-1]
        assert out == ""  # no result document: nothing reported as crawled

        cluster.start()
        engine = create_engine(cluster.url)
        with engine.connect() as conn:
            [(run_id, state)] = conn.exec_driver_sql("SELECT id, state FROM runs").all()
        engine.dispose()
        assert state != "finished", (done_before, out, err)  # nothing reported done that is not
        assert pages_done_after(cluster.url) >= done_before
        again = rw("crawl", "--run-id", str(run_id))
        assert again.returncode == 0, again.stderr
        matches = json.loads(rw("matches").stdout)
        uses = sorted((m["page_url"], m["media_url"]) for m in matches)
        assert len(uses) == len(set(uses)) == web.chain_pages
    finally:
        web.stop()
        kill_leftovers(tmp_path / "home")


def pages_done_after(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.exec_driver_sql(
                    "SELECT count(*) FROM crawl_urls WHERE kind = 'page' AND state = 'done'"
                ).scalar()
                or 0
            )
    finally:
        engine.dispose()
