"""Helpers to take packs apart and put them back together, for tamper tests."""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path


def members(pack: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(pack) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def write(
    path: Path, items: list[tuple[str, bytes]] | dict[str, bytes], *, symlink: str | None = None
) -> Path:
    pairs = list(items.items()) if isinstance(items, dict) else items
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as zf:
        warnings.simplefilter("ignore")  # duplicate names are what some tests want
        for name, data in pairs:
            info = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o120777 if name == symlink else 0o100644) << 16
            zf.writestr(info, data)
    return path


def flip(data: bytes, at: int | None = None) -> bytes:
    pos = len(data) // 2 if at is None else at
    out = bytearray(data)
    out[pos] ^= 0x01
    return bytes(out)


def resign(items: dict[str, bytes], sign: Callable[[bytes], str]) -> dict[str, bytes]:
    """Recompute the manifest's member hashes and sign it again (an insider with the key)."""
    manifest = json.loads(items["manifest.json"])
    for name, meta in manifest["members"].items():
        if name in items:
            meta["sha256"] = "sha256:" + hashlib.sha256(items[name]).hexdigest()
            meta["size"] = len(items[name])
    raw = json.dumps(manifest, indent=1, sort_keys=True).encode()
    return items | {"manifest.json": raw, "manifest.sig": sign(raw).encode()}
