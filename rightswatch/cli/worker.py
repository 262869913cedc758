"""`worker`: run queued crawl runs from the broker on this machine (Celery, rightswatch.tasks)."""

from __future__ import annotations

import click

from rightswatch.cli._common import Usage, app, json_option, translate_errors


@click.command("worker")
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Crawls run at once by this worker (each in its own process).",
)
@click.option(
    "--lease",
    "lease_s",
    type=click.FloatRange(3, 3600),
    default=60.0,
    show_default=True,
    help="Seconds a claimed run stays this worker's without renewal (renewed every third).",
)
@click.option(
    "--visibility-timeout",
    "visibility_s",
    type=click.IntRange(10, 7 * 24 * 3600),
    default=3600,
    show_default=True,
    envvar="RIGHTSWATCH_VISIBILITY_TIMEOUT",
    help="Seconds before Redis hands an unacknowledged run (its worker died) to another worker;"
    " keep it above the longest crawl.",
)
@json_option
@translate_errors
def worker_cmd(concurrency: int, lease_s: float, visibility_s: int) -> None:
    """Run queued crawl runs from the broker on this machine (Celery).

    Needs RIGHTSWATCH_BROKER_URL (redis://HOST:PORT/DB) and a database every worker shares
    (PostgreSQL). Start it on as many machines as you like; SIGTERM lets running crawls finish.
    """
    from rightswatch.tasks import WorkerOptions, run_worker

    settings = app().settings
    if not settings.broker_url:
        raise Usage("RIGHTSWATCH_BROKER_URL is not set: `worker` takes runs from a Celery broker")
    if not settings.broker_url.startswith(("redis://", "rediss://")):
        raise Usage("RIGHTSWATCH_BROKER_URL must be a redis:// URL")
    app().factory  # noqa: B018 (fail now, with one line, if the database is not initialised)
    run_worker(
        settings,
        concurrency=concurrency,
        options=WorkerOptions(lease_s=lease_s),
        visibility_timeout_s=visibility_s,
    )


COMMANDS = [worker_cmd]
