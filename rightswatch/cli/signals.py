"""`signals audit`: what a site and its media say about reuse and AI training."""

from __future__ import annotations

from typing import Any

import click

from rightswatch.cli._common import Fail, Usage, app, emit, json_option, note, translate_errors


@click.group()
def signals() -> None:
    """What a site and its media say about reuse and AI training."""


def _human(sites: list[dict[str, Any]]) -> str:
    lines = []
    for site in sites:
        lines.append(site["url"])
        crawlers = site["ai_crawlers"]
        for state in ("disallowed", "partial", "allowed"):
            agents = [a for a, s in crawlers.items() if s == state]
            if agents:
                lines.append(f"  robots.txt {state:<10}  {', '.join(agents)}")
        tdm = {True: "reserved", False: "not reserved", None: "not declared"}[
            site["tdm_reservation"]
        ]
        policy = f" (policy {site['tdm_policy']})" if site["tdm_policy"] else ""
        lines.append(f"  TDM rights            {tdm}{policy}")
        lines.append(f"  noai / noimageai      {'yes' if site['noai'] else 'no'}")
        lines.append(f"  licences              {', '.join(site['licence_urls']) or 'none'}")
        if not site["media"]:
            lines.append("  media                 none read")
        for m in site["media"]:
            r = m["rights"]
            lines.append(f"  media {m['url']}")
            lines.append(
                f"    creator {r['creator'] or '-'} | copyright {r['copyright'] or '-'}"
                f" | data mining {r['data_mining'] or '-'} | C2PA {m['c2pa'] or 'none'}"
            )
    return "\n".join(lines)


@signals.command("audit")
@click.argument("urls", nargs=-1, required=True)
@click.option(
    "--max-pages",
    type=click.IntRange(1, 100),
    default=5,
    show_default=True,
    help="Pages sampled per site (same host, breadth first).",
)
@json_option
@translate_errors
def audit(urls: tuple[str, ...], max_pages: int) -> None:
    """Report what each site's robots.txt, TDMRep, noai, ai.txt, licence links and media say.

    Media: the rights metadata (creator, copyright, IPTC data mining) and C2PA content
    credentials of each image and audio file on the sampled pages (at most 20 per site).
    Exit 1 when a site could not be audited (the others are still reported).
    """
    from crawler.netpolicy import BadUrl, Blocked
    from crawler.signals import MAX_AUDIT_MEDIA_BYTES, AuditError, audit_site

    settings = app().settings
    for url in urls:
        if not url.lower().startswith(("http://", "https://")):
            raise Usage(f"not an http(s) URL: {url[:200]!r}")
    results, failures = [], []
    for url in urls:
        try:
            site = audit_site(
                url,
                settings.allow_networks,
                user_agent=settings.user_agent,
                max_pages=max_pages,
                max_media_bytes=min(settings.max_media_bytes, MAX_AUDIT_MEDIA_BYTES),
            )
        except BadUrl as exc:
            raise Usage(str(exc)) from None
        except (Blocked, AuditError) as exc:
            failures.append(str(exc))
            continue
        for problem in site.problems:
            note(f"rightswatch: {problem}")
        results.append(site.as_json())
    if failures and not results:
        raise Fail("; ".join(failures))
    for failure in failures:
        note(f"rightswatch: {failure}")
    emit(results, _human)
    if failures:
        raise click.exceptions.Exit(1)


COMMANDS = [signals]
