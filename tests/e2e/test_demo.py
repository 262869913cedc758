"""`rightswatch demo` runs the whole loop on its own: works, loopback site, crawl, matches,
and an evidence pack that verifies offline."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

from crawler.browser import CHROMIUM


def test_demo_finds_the_planted_copies(rw) -> None:  # type: ignore[no-untyped-def]
    summary = rw.ok("demo", timeout=600, env={"RIGHTSWATCH_SCREENSHOTS": "auto"})
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
        names = zf.namelist()
        manifest = json.loads(zf.read("manifest.json"))
    assert "report.html" in names
    shots = [c["custody"]["screenshot"] for c in manifest["captures"]]
    if Path(CHROMIUM).exists():  # each matched page rendered and captured
        assert all(s["taken"] for s in shots), shots
        assert len([n for n in names if n.startswith("screenshots/")]) == len(shots)
    else:
        assert all(s["reason"] for s in shots)
    # The report the user is pointed at, beside the pack, shows its images on its own.
    report = Path(evidence["report"]).read_text()
    assert report.startswith("<!")
    assert not re.search(r'src="(works|found|screenshots)/', report)
    assert "data:image/" in report
    verdict = rw.ok("evidence", "verify", pack)  # the CLI agrees, offline
    assert verdict["ok"] is True
    # A second demo registers nothing new and finds the same four uses again.
    again = rw.ok("demo", timeout=600)
    assert {w["outcome"] for w in again["works"]} == {"skipped"}
    assert sorted(m["ref"] for m in again["matches"]) == refs
