"""`serve [--host H] [--port P]`: the HTTP API, the review pages and the scheduler in one process;
and `scheduler tick`, one scheduling and crawling pass in the foreground."""

from __future__ import annotations

import logging
import os
import shlex
import signal
from typing import TYPE_CHECKING

import click

from rightswatch.cli._common import Fail, app, emit, json_option, note, translate_errors

if TYPE_CHECKING:
    from scheduler import ServiceScheduler

CRAWL_COMMAND_ENV = "RIGHTSWATCH_CRAWL_COMMAND"  # tests: a stand-in for `rightswatch`


def _service(schedule: bool = True) -> ServiceScheduler:
    from scheduler import ServiceScheduler, default_crawl_command

    a = app()
    custom = os.environ.get(CRAWL_COMMAND_ENV)
    return ServiceScheduler(
        settings=a.settings,
        engine=a.engine,
        factory=a.factory,  # refuses an uninitialised database with one line
        schedule=schedule,
        crawl_command=shlex.split(custom) if custom else default_crawl_command(),
    )


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--no-scheduler", is_flag=True, help="Serve only: run neither schedules nor crawls.")
@click.option(
    "--grace",
    default=30.0,
    show_default=True,
    type=float,
    help="Seconds running crawls get at shutdown.",
)
@json_option
@translate_errors
def serve_cmd(host: str, port: int, no_scheduler: bool, grace: float) -> None:
    """The HTTP API, the review pages and the scheduler, in one process.

    Stops gracefully on SIGINT/SIGTERM: running crawls get --grace seconds to finish, the rest
    are marked interrupted and re-queued.
    """
    import uvicorn

    from rightswatch.api import create_app

    a = app()
    service = None if no_scheduler else _service()
    web = create_app(a.settings, engine=a.engine)
    if service is not None:
        service.start()
    level = logging.getLogger().getEffectiveLevel()
    config = uvicorn.Config(
        web, host=host, port=port, log_level=logging.getLevelName(level).lower(), access_log=False
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal that stopped it once it is done; a no-op handler lets that
    # return here, so the crawls get their grace period and the process exits 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
    note(f"rightswatch: serving on http://{host}:{port}/")
    try:
        server.run()
    finally:
        if service is not None:
            service.stop(grace_s=grace)
    if not server.started:
        raise Fail(f"could not serve on {host}:{port}")


@click.group("scheduler", hidden=True)
def scheduler_group() -> None:
    """The scheduler's jobs, run once."""


@scheduler_group.command("tick")
@click.option("--no-crawl", is_flag=True, help="Only queue due runs; crawl none of them.")
@json_option
@translate_errors
def tick_cmd(no_crawl: bool) -> None:
    """Queue the runs that are due and crawl the due runs, in the foreground."""
    service = _service()
    scheduled = service.queue_due_once()
    if not scheduled:
        note("rightswatch: another scheduler is active; it queues runs itself")
    started: list[int] = []
    if not no_crawl:
        while True:
            batch = service.run_pass()
            started += batch
            if not batch and not service.children:
                break
            service.wait_children()
    emit({"scheduled": scheduled, "runs": started}, lambda r: f"ran {len(r['runs'])} run(s)")


COMMANDS = [serve_cmd, scheduler_group]
