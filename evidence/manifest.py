"""Catalogue manifests: CSV with a header row, or JSON Lines; one bad row never stops the rest.

Columns/keys: path (relative to the manifest), ref, title, creator, rightsholder, share (percent),
isrc, iswc. Several rightsholders: 'A; B' with share '60; 40'. A CSV that is not UTF-8 is decoded
with the encoding charset-normalizer detects, and the choice is reported.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charset_normalizer import from_bytes
from sqlalchemy.orm import Session, sessionmaker

from evidence.catalogue import MAX_WORK_BYTES, WorkInput, add_work, inside
from evidence.errors import BadInput, DatabaseUnavailable, shown
from evidence.store import BlobStore

log = logging.getLogger(__name__)

COLUMNS = ("path", "ref", "title", "creator", "rightsholder", "share", "isrc", "iswc")
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_NAME_BYTES = 255  # NAME_MAX on Linux file systems


@dataclass
class ImportReport:
    imported: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    encoding: str = "utf-8"

    def as_json(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "updated": self.updated,
            "skipped": self.skipped,
            "errors": self.errors,
        }


def decode(raw: bytes) -> tuple[str, str]:
    """The manifest's text and the encoding used."""
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(raw).best()
    if best is None or best.encoding is None:
        raise BadInput("manifest is not text in any encoding we recognise")
    return str(best), best.encoding


def _is_jsonl(path: Path, text: str) -> bool:
    if path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
        return True
    return text.lstrip().startswith("{")


def rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any] | BadInput]]:
    """(line number, row or the reason it cannot be read)."""
    if _is_jsonl(path, text):
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield lineno, BadInput(f"not valid JSON: {exc.msg}")
                continue
            if not isinstance(obj, dict):
                yield lineno, BadInput("a JSON Lines row must be an object")
                continue
            yield lineno, obj
        return
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "path" not in header:
        yield 1, BadInput("the CSV header has no 'path' column")
        return
    reader.fieldnames = header
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, BadInput(f"malformed CSV: {exc}")
            continue
        if None in row:
            yield reader.line_num, BadInput("more cells than header columns")
            continue
        yield reader.line_num, row


def _text(row: dict[str, Any], key: str) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise BadInput(f"{key} must be text")
    return value


def to_input(base: Path, row: dict[str, Any]) -> WorkInput:
    raw_path = _text(row, "path")
    if not raw_path or not raw_path.strip():
        raise BadInput("missing path")
    if not raw_path.isprintable():
        raise BadInput(f"path has control characters: {shown(raw_path)}")
    rel = Path(raw_path.strip())
    if rel.is_absolute() or ".." in rel.parts:
        raise BadInput(f"path outside manifest dir: {raw_path!r}")
    if any(len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for part in rel.parts):
        raise BadInput(f"file name longer than {MAX_NAME_BYTES} bytes: {shown(raw_path, 80)}…")
    full = base / rel
    try:
        if not inside(base, full):
            raise BadInput(f"path outside manifest dir: {raw_path!r}")
        size = full.stat().st_size if full.is_file() else 0
    except OSError as exc:
        raise BadInput(f"{shown(raw_path)}: {exc.strerror or exc}") from None
    if size > MAX_WORK_BYTES:
        raise BadInput(f"{shown(raw_path)}: too large (limit {MAX_WORK_BYTES} bytes)")
    return WorkInput(path=full, **{k: _text(row, k) for k in COLUMNS if k != "path"})


def import_manifest(
    factory: sessionmaker[Session], store: BlobStore, manifest: Path, default_rightsholder: str
) -> ImportReport:
    """Import every row in its own transaction; report per-line errors."""
    try:
        size = manifest.stat().st_size
    except OSError as exc:
        raise BadInput(f"{manifest}: {exc.strerror}") from None
    if size > MAX_MANIFEST_BYTES:
        raise BadInput(f"{manifest}: manifest larger than {MAX_MANIFEST_BYTES} bytes")
    text, encoding = decode(manifest.read_bytes())
    report = ImportReport(encoding=encoding)
    if encoding != "utf-8":
        log.warning("%s: not UTF-8; decoded as %s", manifest, encoding)
    base = manifest.parent
    seen: dict[tuple[str, str], int] = {}
    for lineno, row in rows(manifest, text):
        try:
            if isinstance(row, BadInput):
                raise row
            item = to_input(base, row)
            key = ((item.rightsholder or "").strip(), (item.ref or item.path.stem).strip())
            if key in seen:
                raise BadInput(f"duplicate ref {key[1]!r} (first on line {seen[key]})")
            seen[key] = lineno
            outcome = add_work(factory, store, item, default_rightsholder).outcome
        except DatabaseUnavailable:
            raise  # every later row would fail the same way: stop with one clear line
        except BadInput as exc:
            report.errors.append({"line": lineno, "error": str(exc)})
            continue
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report
