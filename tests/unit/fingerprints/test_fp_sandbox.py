"""The sandbox turns crashes, hangs and memory blow-ups into Unfingerprintable, and recovers."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

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
