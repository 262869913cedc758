"""Fingerprint untrusted bytes in child processes with a memory cap and a wall-clock limit.

Each worker is a one-process ``ProcessPoolExecutor`` (spawned, so no state or threads are
inherited) whose initializer sets ``RLIMIT_AS``. A worker that crashes, overruns its time or
its memory is killed and replaced, and the caller gets one ``Unfingerprintable``:

* crash:   ``decoder crashed (signal N)``
* timeout: ``timeout`` (SIGTERM, then SIGKILL after a grace period)
* memory:  ``memory limit``

``SandboxPool`` hands out several such workers to concurrent callers.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import queue
import resource
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import Self, TypeVar

from fingerprints.base import Unfingerprintable
from fingerprints.prints import Prints, fingerprint_query, fingerprint_work

T = TypeVar("T")
MEMORY_BYTES = 2 << 30  # address space: the heavy imports (OpenCV, FFmpeg) reserve ~1 GiB
TIMEOUT_S = 30.0
GRACE_S = 1.0


def _limit(memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    _exit_with_parent(os.getppid())


def _exit_with_parent(parent: int, every_s: float = 0.5) -> None:
    """Die when the parent does. A spawned worker holds both ends of its own call queue, so a
    parent killed with SIGKILL would otherwise leave it (and its resource tracker) running for
    ever, holding the parent's stdout and stderr open."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _warm() -> None:
    import fingerprints.prints  # noqa: F401 - import once, before the first real item


class Sandbox:
    """One child process, replaced whenever it dies or is killed. Not for concurrent use."""

    def __init__(self, memory_bytes: int = MEMORY_BYTES, timeout_s: float = TIMEOUT_S) -> None:
        self.memory_bytes, self.timeout_s = memory_bytes, timeout_s
        self._lock = threading.Lock()
        self._pool: cf.ProcessPoolExecutor | None = None

    def _executor(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_limit,
                initargs=(self.memory_bytes,),
            )
            self._pool.submit(_warm).result(timeout=120)
        return self._pool

    def _kill(self) -> list[int]:
        """Stop the worker (TERM, then KILL after the grace), reap it; its exit codes."""
        pool, self._pool = self._pool, None
        if pool is None:
            return []
        procs = list(getattr(pool, "_processes", {}).values())
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(GRACE_S)
            if p.is_alive():
                p.kill()
                p.join()
        pool.shutdown(wait=True, cancel_futures=True)
        return [p.exitcode for p in procs if p.exitcode is not None]

    def run(self, fn: Callable[[bytes], T], data: bytes) -> T:
        """fn(data) in the child; fn must be a module-level function."""
        with self._lock:
            future = self._executor().submit(fn, data)
            try:
                return future.result(timeout=self.timeout_s)
            except cf.TimeoutError:
                self._kill()
                raise Unfingerprintable("timeout") from None
            except BrokenProcessPool:
                codes = self._kill()
                sig = next((-c for c in codes if c < 0), None)
                raise Unfingerprintable(
                    f"decoder crashed (signal {sig})" if sig else "decoder crashed"
                ) from None
            except MemoryError:
                self._kill()  # a fresh worker: the old heap may be fragmented or half-freed
                raise Unfingerprintable("memory limit") from None
            except Unfingerprintable as exc:
                if "Cannot allocate memory" in str(exc):
                    raise Unfingerprintable("memory limit") from None
                raise

    def fingerprint_query(self, data: bytes) -> Prints:
        return self.run(fingerprint_query, data)

    def fingerprint_work(self, data: bytes) -> Prints:
        return self.run(fingerprint_work, data)

    def close(self) -> None:
        with self._lock:
            self._kill()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


class SandboxPool:
    """Several sandboxes for concurrent callers (each call borrows one)."""

    def __init__(
        self, size: int = 2, memory_bytes: int = MEMORY_BYTES, timeout_s: float = TIMEOUT_S
    ) -> None:
        self._free: queue.SimpleQueue[Sandbox] = queue.SimpleQueue()
        self._all = [Sandbox(memory_bytes, timeout_s) for _ in range(size)]
        for box in self._all:
            self._free.put(box)

    def run(self, fn: Callable[[bytes], T], data: bytes) -> T:
        box = self._free.get()
        try:
            return box.run(fn, data)
        finally:
            self._free.put(box)

    def fingerprint_query(self, data: bytes) -> Prints:
        return self.run(fingerprint_query, data)

    def fingerprint_work(self, data: bytes) -> Prints:
        return self.run(fingerprint_work, data)

    def close(self) -> None:
        for box in self._all:
            with contextlib.suppress(Exception):
                box.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
