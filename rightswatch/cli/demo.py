"""`demo`: the whole loop, self-contained, on the embedded defaults."""

from __future__ import annotations

from typing import Any

import click

from rightswatch.cli._common import Fail, app, emit, json_option, note, translate_errors


def _human(s: dict[str, Any]) -> str:
    run = s["run"]
    lines = [
        f"demo site {s['site']} (served on loopback, now stopped)",
        f"works registered: {', '.join(w['ref'] for w in s['works'])}",
        f"crawl run {run['run_id']}: {run['state']}; pages {run['pages']}, media {run['media']},"
        f" matches {run['matches']}, errors {run['errors']}",
    ]
    for m in s["matches"]:
        off = f" at {m['offset_s']:.1f}s" if m["offset_s"] is not None else ""
        lines.append(
            f"  match {m['id']}: {m['ref']} score {m['score']:.2f}{off}"
            f"  {m['media_url']}  on {m['page_url']}"
        )
    ev = s.get("evidence")
    if ev:
        verdict = (
            "verified offline" if ev["verified"] else "NOT intact: " + "; ".join(ev["problems"])
        )
        lines.append(f"evidence pack {ev['pack']} ({verdict})")
        lines.append(f"  report {ev['report']}")
        lines.extend(f"  note: {w}" for w in ev.get("warnings", []))
    lines.append("next: `rightswatch matches`, `rightswatch serve` to review them")
    return "\n".join(lines)


@click.command("demo")
@json_option
@translate_errors
def demo_cmd() -> None:
    """A self-contained end-to-end run on the embedded defaults.

    Generates sample works (images and a song, made in code), registers them, serves a demo
    site with transformed copies and decoys on 127.0.0.1, crawls it (the network policy opened
    to that address only), lists the matches found, exports them as an evidence pack and
    verifies it offline. State goes to RIGHTSWATCH_HOME.
    """
    from rightswatch.demo.run import run_demo

    note("rightswatch: demo: generating sample works and serving the demo site on 127.0.0.1")
    summary = run_demo(app().settings)
    emit(summary, _human)
    if summary["run"]["state"] == "failed" or not summary["matches"]:
        raise Fail("demo crawl found no match")
    if summary.get("evidence") and not summary["evidence"]["verified"]:
        raise Fail("demo evidence pack did not verify")


COMMANDS = [demo_cmd]
