"""The sandbox turns crashes, hangs and memory blow-ups into Unfingerprintable, and recovers."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import fphooks
import pytest

from fingerprints import MediaKind, Unfingerprintable
from fingerprints.sandbox import Sandbox, SandboxPool


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(timeout_s=3.0) as sandbox:
        yield sandbox


def test_abort_is_a_crash_with_signal(box: Sandbox) -> None:
    with pytest.raises(Unfingerprintable, match=re.escape("decoder crashed (signal 6)")):
        box.run(fphooks.abort, b"")
    assert box.run(fphooks.echo_len, b"abc") == 3  # replaced, and the next item is processed


def test_segfault_is_a_crash_with_signal(box: Sandbox) -> None:
    with pytest.raises(Unfingerprintable, match=re.escape("decoder crashed (signal 11)")):
        box.run(fphooks.segfault, b"")
    assert box.run(fphooks.echo_len, b"ab") == 2


def test_hang_is_killed_at_the_wall_clock_limit(box: Sandbox) -> None:
    t = time.monotonic()
    with pytest.raises(Unfingerprintable, match=r"^timeout$"):
        box.run(fphooks.hang, b"")
    assert time.monotonic() - t < 3.0 + 5.0
    assert box.run(fphooks.echo_len, b"a") == 1


def test_memory_blowup_hits_the_limit(box: Sandbox) -> None:
    with pytest.raises(Unfingerprintable, match=r"^memory limit$"):
        box.run(fphooks.allocate, b"")
    assert box.run(fphooks.echo_len, b"") == 0


def test_fingerprints_in_the_child(box: Sandbox, png_bytes: bytes) -> None:
    prints = box.fingerprint_query(png_bytes)
    assert prints.kind is MediaKind.IMAGE
    with pytest.raises(Unfingerprintable, match="neither"):
        box.fingerprint_work(b"not media at all")


def test_pool_serves_callers(png_bytes: bytes) -> None:
    with SandboxPool(size=1, timeout_s=10.0) as pool:
        assert pool.fingerprint_work(png_bytes).values
        assert pool.run(fphooks.echo_len, b"xyz") == 3


def test_workers_die_with_a_killed_parent() -> None:
    """A crawl killed with SIGKILL must not leave decoder workers holding its pipes."""
    script = (
        "import os, sys\n"
        "from fingerprints.sandbox import SandboxPool\n"
        "pool = SandboxPool(size=2)\n"
        "for _ in range(2): pool.run(len, b'x')\n"
        "pids = [p.pid for s in pool._all if s._pool for p in s._pool._processes.values()]\n"
        "print(*pids, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == -9, proc.stderr
    workers = [int(p) for p in proc.stdout.split()]
    assert workers
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too: it only waits to be reaped by init
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):
            return False
    return True
