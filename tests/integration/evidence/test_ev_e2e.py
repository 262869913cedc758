"""E1 end to end: the demo crawls its loopback site (the real crawler records the captures),
then export -> verify offline; every WARC read back with warcio against the manifest, every
WACZ through `wacz validate`, the claims rows against `matches`."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

WACZ = str(Path(sys.executable).with_name("wacz"))


@pytest.mark.slow
def test_demo_crawl_export_verify(rw, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    demo = rw.ok("demo", timeout=600)
    assert demo["matches"]
    pack = tmp_path / "pack.zip"
    out = rw.ok("evidence", "export", "--all", "-o", pack)
    assert sorted(out["matches"]) == sorted(m["id"] for m in demo["matches"])
    res = rw.ok("evidence", "verify", pack)
    assert res["ok"] is True
    assert res["captures"] >= len(demo["matches"])
    with zipfile.ZipFile(pack) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        for cap in manifest["captures"]:
            warc = zf.read(cap["warc"])
            payloads = {}
            for rec in ArchiveIterator(io.BytesIO(warc)):
                if rec.rec_type == "response":
                    uri = rec.rec_headers.get_header("WARC-Target-URI")
                    payloads[uri] = (
                        "sha256:" + hashlib.sha256(rec.content_stream().read()).hexdigest()
                    )
            media = cap["custody"]["media"]
            assert payloads[media["final_url"]] == media["sha256"]
            wacz = tmp_path / "c.wacz"
            wacz.write_bytes(zf.read(cap["wacz"]))
            proc = subprocess.run(
                [WACZ, "validate", "-f", str(wacz)],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert proc.returncode == 0, proc.stdout + proc.stderr
    matches = {m["id"]: m for m in rw.ok("matches")}
    claims = rw.ok("claims", "export", "--format", "json")
    assert {r["match_id"] for r in claims} == set(matches)
    for row in claims:
        m = matches[row["match_id"]]
        assert row["evidence_ids"] == m["evidence_ids"]
        assert row["media_url"] == m["media_url"]
    assert rw.ok("evidence", "check")["ok"] is True
