"""WACZ (Web Archive Collection Zipped) for one capture, made with Webrecorder's `wacz` package.

Why: a WACZ replays in ReplayWeb.page, so a lawyer can browse the captured page as it was served.
It is made once, at capture time, from the capture's WARC and stored as its own blob; its hash
is part of the signed custody record, so every later export carries the same bytes.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path

from evidence.errors import EvidenceError

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
