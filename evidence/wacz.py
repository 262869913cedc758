"""WACZ (Web Archive Collection Zipped) for one capture, made with Webrecorder's `wacz` package.

Why: a WACZ replays in ReplayWeb.page, so a lawyer can browse the captured page as it was served.
It is made once, at capture time, from the capture's WARC and stored as its own blob; its hash
is part of the signed custody record, so every later export carries the same bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tempfile
import threading
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from evidence.errors import EvidenceError

MAX_MEMBERS = 1000  # a capture's WACZ has six
MAX_DATAPACKAGE = 16 * 1024 * 1024
DIGEST_FILES = ("datapackage.json", "datapackage-digest.json")

_lock = threading.Lock()  # wacz prints progress on stdout: one redirected run at a time


def make_wacz(warc: bytes, *, page_url: str, captured_at: datetime, title: str) -> bytes:
    """A WACZ holding exactly this WARC, with the captured page as its one entry page."""
    from wacz.main import main as wacz_main
    from warcio.timeutils import datetime_to_iso_date

    ts = datetime_to_iso_date(captured_at.astimezone(UTC).replace(tzinfo=None))
    with tempfile.TemporaryDirectory(prefix="rw-wacz-") as tmp:
        base = Path(tmp)
        warc_path = base / "capture.warc.gz"
        warc_path.write_bytes(warc)
        pages = base / "pages.jsonl"
        pages.write_text(
            json.dumps({"format": "json-pages-1.0", "id": "pages", "title": "Pages"})
            + "\n"
            + json.dumps({"url": page_url, "ts": ts, "title": title[:200]})
            + "\n",
            encoding="utf-8",
        )
        out = base / "capture.wacz"
        args = [
            "create",
            str(warc_path),
            "-o",
            str(out),
            "-p",
            str(pages),
            "-c",
            "--title",
            title[:200],
        ]
        sink = io.StringIO()
        with _lock, contextlib.redirect_stdout(sink):
            try:
                code = wacz_main(args)
            except Exception as exc:  # the library raises bare exceptions on odd WARCs
                raise EvidenceError(
                    f"could not build the WACZ: {type(exc).__name__}: {exc}"
                ) from exc
        if code not in (0, None) or not out.is_file():
            last = sink.getvalue().strip().splitlines()[-1:] or ["no output"]
            raise EvidenceError(f"could not build the WACZ: {last[0][:200]}")
        return out.read_bytes()


def validate_wacz(path: Path) -> tuple[bool, str]:
    """Run `wacz validate` in-process: (ok, its last line)."""
    from wacz.main import main as wacz_main

    sink = io.StringIO()
    with _lock, contextlib.redirect_stdout(sink):
        try:
            code = wacz_main(["validate", "-f", str(path)])
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
    lines = sink.getvalue().strip().splitlines()
    return code == 0, lines[-1] if lines else ""


def _sha256(zf: zipfile.ZipFile, name: str) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with zf.open(name) as fh:
        while chunk := fh.read(1024 * 1024):
            size += len(chunk)
            h.update(chunk)
    return "sha256:" + h.hexdigest(), size


def _inner_name_problem(name: str) -> bool:
    return (
        not name
        or name.startswith(("/", "\\"))
        or "\\" in name
        or ":" in name.split("/", 1)[0]
        or any(part in ("..", ".") for part in name.split("/"))
        or any(ord(ch) < 32 for ch in name)
    )


def check_wacz(source: IO[bytes] | Path, *, payloads: Mapping[str, str] | None = None) -> list[str]:
    """Problems of one WACZ, read in place (nothing extracted), each a line naming what failed:
    its shape, every member against the SHA-256 and size `datapackage.json` lists (and nothing
    unlisted), `datapackage.json` against `datapackage-digest.json`, and, with `payloads`
    (record target URI -> "sha256:..."), the payload of each such record in its WARC files.

    A WACZ handed out on its own is checked for internal consistency; within a pack, the
    payloads come from the signed capture record, so the WACZ is tied to the evidence."""
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
        return [f"not a readable WACZ ({str(exc)[:100]})"]
    with zf:
        try:
            return _check(zf, payloads or {})
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
            return [f"unreadable WACZ ({type(exc).__name__}: {str(exc)[:100]})"]


def _check(zf: zipfile.ZipFile, payloads: Mapping[str, str]) -> list[str]:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        return [f"{len(infos)} members, more than {MAX_MEMBERS}"]
    names = [i.filename for i in infos]
    problems = [f"{n[:120]!r}: unsafe member name" for n in names if _inner_name_problem(n)]
    if len(set(names)) != len(names):
        problems.append("duplicate member names")
    if problems:
        return problems
    if "datapackage.json" not in names:
        return ["datapackage.json: missing"]
    if zf.getinfo("datapackage.json").file_size > MAX_DATAPACKAGE:
        return ["datapackage.json: too large"]
    raw = zf.read("datapackage.json")
    if "datapackage-digest.json" in names:
        try:
            digest = json.loads(zf.read("datapackage-digest.json")[:65536])
            want = digest.get("hash") if isinstance(digest, dict) else None
        except ValueError:
            want = None
        if want != "sha256:" + hashlib.sha256(raw).hexdigest():
            problems.append("datapackage.json: differs from datapackage-digest.json")
    try:
        package = json.loads(raw)
        resources = package["resources"]
        if not isinstance(resources, list):
            raise TypeError("resources is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        return [*problems, f"datapackage.json: unreadable ({str(exc)[:80]})"]
    listed: set[str] = set()
    for res in resources:
        path = res.get("path") if isinstance(res, dict) else None
        if not isinstance(path, str) or path in listed:
            problems.append("datapackage.json: a resource without a path, or listed twice")
            continue
        listed.add(path)
        if path not in names:
            problems.append(f"{path[:120]}: listed in datapackage.json but missing")
            continue
        got, size = _sha256(zf, path)
        if got != res.get("hash") or size != res.get("bytes"):
            problems.append(f"{path}: sha256 differs from datapackage.json")
    for name in sorted(set(names) - listed - set(DIGEST_FILES)):
        problems.append(f"{name[:120]}: not listed in datapackage.json")
    if payloads:
        problems.extend(_check_payloads(zf, sorted(listed), payloads))
    return problems


def _check_payloads(
    zf: zipfile.ZipFile, listed: list[str], payloads: Mapping[str, str]
) -> list[str]:
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    found: dict[str, set[str]] = {}
    problems: list[str] = []
    for name in (n for n in listed if n.startswith("archive/")):
        try:
            with zf.open(name) as fh:
                for rec in ArchiveIterator(fh):
                    uri = rec.rec_headers.get_header("WARC-Target-URI")
                    if rec.rec_type not in ("response", "resource") or uri not in payloads:
                        continue
                    h = hashlib.sha256()
                    stream = rec.content_stream()
                    while chunk := stream.read(1024 * 1024):
                        h.update(chunk)
                    found.setdefault(uri, set()).add("sha256:" + h.hexdigest())
        except (ArchiveLoadFailed, ValueError, OSError, EOFError) as exc:
            problems.append(f"{name}: not a readable WARC ({str(exc)[:100]})")
    for uri, want in sorted(payloads.items()):
        got = found.get(uri)
        if not got:
            problems.append(f"no record for {uri[:200]} in its WARC")
        elif got != {want}:
            problems.append(f"payload of {uri[:200]} differs from the signed record")
    return problems
