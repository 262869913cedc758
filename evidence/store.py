"""Content-addressed blob store: originals, WARC captures, screenshots and packs, by SHA-256.

A blob is written to a temporary file in the store, fsynced, then renamed into place, so a crash
or a full disk never leaves a partial blob under a digest name. Writing the same bytes twice is a
no-op. The S3-compatible store (issue 7) implements the same `BlobStore` protocol.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from evidence.errors import StoreError

CHUNK = 1024 * 1024


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hex(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        raise StoreError(f"not a sha256 digest: {digest[:80]!r}")
    return hexpart


def _describe_os_error(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left in the blob store"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "blob store is not writable"
    if exc.errno == errno.EFBIG:
        return "file too large for the blob store"
    return f"blob store error: {exc.strerror or exc}"


class BlobStore(Protocol):
    def put(self, data: bytes) -> str: ...
    def put_stream(self, stream: BinaryIO, max_bytes: int | None = None) -> tuple[str, int]: ...
    def get(self, digest: str) -> bytes: ...
    def exists(self, digest: str) -> bool: ...
    def delete(self, digest: str) -> None: ...
    def digests(self) -> Iterator[str]: ...


class LocalBlobStore:
    """Blobs under `root/sha256/ab/cd/<hex>`; temporary files under `root/tmp`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        hexpart = _hex(digest)
        return self.root / "sha256" / hexpart[:2] / hexpart[2:4] / hexpart

    def put(self, data: bytes) -> str:
        digest = sha256_digest(data)
        if not self.exists(digest):
            self._write(digest, [data])
        return digest

    def put_stream(self, stream: BinaryIO, max_bytes: int | None = None) -> tuple[str, int]:
        """Store a stream without holding it in memory; refuse it past max_bytes."""
        tmpdir = self._tmpdir()
        try:
            fd, tmp = tempfile.mkstemp(dir=tmpdir, prefix="in-")
        except OSError as exc:
            raise StoreError(_describe_os_error(exc)) from exc
        hasher, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise StoreError(f"too large: more than {max_bytes} bytes")
                    hasher.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = "sha256:" + hasher.hexdigest()
            self._place(tmp, digest)
            return digest, size
        except OSError as exc:
            raise StoreError(_describe_os_error(exc)) from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def get(self, digest: str) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"missing blob {digest}") from None

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(digest).unlink()

    def digests(self) -> Iterator[str]:
        base = self.root / "sha256"
        if base.is_dir():
            for p in sorted(base.glob("*/*/*")):
                yield "sha256:" + p.name

    def _tmpdir(self) -> Path:
        tmpdir = self.root / "tmp"
        try:
            tmpdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(_describe_os_error(exc)) from exc
        return tmpdir

    def _write(self, digest: str, chunks: list[bytes]) -> None:
        try:
            fd, tmp = tempfile.mkstemp(dir=self._tmpdir(), prefix="in-")
        except OSError as exc:
            raise StoreError(_describe_os_error(exc)) from exc
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            self._place(tmp, digest)
        except OSError as exc:
            raise StoreError(_describe_os_error(exc)) from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _place(self, tmp: str, digest: str) -> None:
        final = self.path(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        dir_fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself must survive a crash
        finally:
            os.close(dir_fd)
