"""`rightswatch demo` runs the whole loop on its own: works, loopback site, crawl, matches,
and an evidence pack that verifies offline."""

from __future__ import annotations

import zipfile
from pathlib import Path


def test_demo_finds_the_planted_copies(rw) -> None:  # type: ignore[no-untyped-def]
    summary = rw.ok("demo", timeout=600)
    assert summary["run"]["state"] == "finished"
    refs = sorted(m["ref"] for m in summary["matches"])
    assert refs == ["demo-anthem", "demo-forest", "demo-harbour", "demo-sunrise"]
    assert not any("unrelated" in m["media_url"] for m in summary["matches"])
    [song] = [m for m in summary["matches"] if m["ref"] == "demo-anthem"]
    assert song["offset_s"] is not None
    assert abs(song["offset_s"] - 6.0) < 1.5
    evidence = summary["evidence"]
    assert evidence["verified"] is True
    assert evidence["problems"] == []
    pack = Path(evidence["pack"])
    with zipfile.ZipFile(pack) as zf:
        assert "report.html" in zf.namelist()
    assert Path(evidence["report"]).read_text().startswith("<!")
    verdict = rw.ok("evidence", "verify", pack)  # the CLI agrees, offline
    assert verdict["ok"] is True
    # A second demo registers nothing new and finds the same four uses again.
    again = rw.ok("demo", timeout=600)
    assert {w["outcome"] for w in again["works"]} == {"skipped"}
    assert sorted(m["ref"] for m in again["matches"]) == refs
