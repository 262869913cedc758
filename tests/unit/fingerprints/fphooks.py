"""Misbehaving 'decoders' run inside the sandbox by test_fp_sandbox.py (module-level: picklable)."""

from __future__ import annotations

import os
import signal
import time


def abort(data: bytes) -> int:
    os.abort()


def segfault(data: bytes) -> int:
    os.kill(os.getpid(), signal.SIGSEGV)
    return 0


def hang(data: bytes) -> int:
    while True:
        time.sleep(0.01)


def allocate(data: bytes) -> int:
    blob = bytearray(8 << 30)  # 8 GiB: over any sane RLIMIT_AS
    return len(blob)


def echo_len(data: bytes) -> int:
    return len(data)
