"""Find and end the processes a test's crawls left behind, by their RIGHTSWATCH_HOME."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def kill_leftovers(home: str | Path) -> list[int]:
    """Processes whose environment has RIGHTSWATCH_HOME=home (this test's own), SIGKILLed."""
    mine = f"RIGHTSWATCH_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if mine in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return found
