"""Run records and their leases: the queue between the scheduler and whoever crawls.

A run is queued once per (watch, scheduled_for): queuing again returns the same row, so two
schedulers (or a retried job) can never create duplicates. A runner claims a run with a lease
(`lease_owner`, `lease_until`) that it renews while the crawl lives; a watch never has two runs
in progress at once. When a lease runs out (the process or its machine died) the run is marked
`failed` with the reason, and retried after a backoff (`not_before`) until MAX_ATTEMPTS.

States: queued -> running -> finished | failed | interrupted; a failed or interrupted run with
`not_before` set is waiting for its retry, one with `not_before` unset has given up.

On PostgreSQL the claim takes `SELECT ... FOR UPDATE SKIP LOCKED` on the run and on its watch,
so concurrent runners neither block on nor claim the same row; on SQLite every write
transaction is `BEGIN IMMEDIATE`, which serialises claims.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from evidence.errors import BadInput, NotFound
from evidence.models import CrawlUrl, Lease, Run, RunState, Watch

MAX_ATTEMPTS = 3
BACKOFF_BASE_S = 60
BACKOFF_MAX_S = 3600
LATE_AFTER_S = 60  # the scheduler marks a run queued this long after its time as late


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def backoff_s(attempts: int) -> int:
    """Seconds before retry number `attempts`: 60, 120, 240, ... capped at an hour."""
    return int(min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(0, attempts - 1)))


def watch_config(watch: Watch) -> dict[str, Any]:
    """What a run of this watch crawls, frozen at queue time (the watch may change later)."""
    return {
        "seeds": list(watch.seeds),
        "allow_domains": list(watch.allow_domains or []),
        "include": list(watch.include or []),
        "exclude": list(watch.exclude or []),
        "max_depth": watch.max_depth,
        "max_pages": watch.max_pages,
        "render_js": watch.render_js,
        "ignore_robots": watch.ignore_robots,
    }


def _find(session: Session, watch_id: int, scheduled_for: datetime) -> Run | None:
    run: Run | None = session.scalars(
        select(Run).where(Run.watch_id == watch_id, Run.scheduled_for == scheduled_for)
    ).one_or_none()
    return run


def queue_run(
    session: Session,
    watch: Watch,
    scheduled_for: datetime,
    started_by: str,
    *,
    late: bool = False,
    config: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Run:
    """The run of `watch` for `scheduled_for`, created once; queuing again returns the same row.

    `config` is the crawl scope as the crawler stores it (the scheduler passes the crawler's own
    rendering of the watch); by default the watch's fields, frozen now. The crawler hashes it
    into `config_sha256` when it starts the run.
    """
    if scheduled_for.tzinfo is None:
        raise BadInput("scheduled_for must be timezone-aware (UTC)")
    scheduled_for = scheduled_for.astimezone(UTC).replace(microsecond=0)
    existing = _find(session, watch.id, scheduled_for)
    if existing is not None:
        return existing
    at = _now(now)
    config = config if config is not None else watch_config(watch)
    run = Run(
        watch_id=watch.id,
        scheduled_for=scheduled_for,
        state=RunState.QUEUED,
        started_by=started_by[:200],
        late=late,
        config=config,
        queued_at=at,
    )
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:
        winner = _find(session, watch.id, scheduled_for)
        if winner is None:
            raise
        return winner
    return run


def claimable(now: datetime) -> Any:
    """The condition of a run that a runner may claim now (queued, or a retry that is due)."""
    retry = and_(
        Run.state.in_([RunState.FAILED, RunState.INTERRUPTED]),
        Run.not_before.is_not(None),
        Run.attempts < MAX_ATTEMPTS,
    )
    due = or_(Run.not_before.is_(None), Run.not_before <= now)
    return and_(or_(Run.state == RunState.QUEUED, retry), due)


def _busy(session: Session, watch_id: int) -> bool:
    """True while another run of this watch is in progress (an expired one is reaped first)."""
    return (
        session.scalar(
            select(Run.id).where(Run.watch_id == watch_id, Run.state == RunState.RUNNING).limit(1)
        )
        is not None
    )


def claim_run(
    session: Session,
    owner: str,
    lease_s: float,
    *,
    run_id: int | None = None,
    now: datetime | None = None,
) -> Run | None:
    """Claim the oldest due run (or run `run_id`) whose watch has no run in progress.

    The caller commits; the lease then belongs to `owner` until renewed or it runs out.
    """
    at = _now(now)
    pg = session.get_bind().dialect.name == "postgresql"
    stmt = select(Run).where(claimable(at))
    if run_id is not None:
        stmt = stmt.where(Run.id == run_id)
    stmt = stmt.order_by(Run.scheduled_for.is_(None), Run.scheduled_for, Run.id).limit(20)
    if pg:
        stmt = stmt.with_for_update(skip_locked=True, of=Run)
    for run in list(session.scalars(stmt)):
        if run.watch_id is not None:
            if pg:
                locked = session.scalar(
                    select(Watch.id)
                    .where(Watch.id == run.watch_id)
                    .with_for_update(skip_locked=True)
                )
                if locked is None:
                    continue  # another runner is claiming a run of this watch right now
            if _busy(session, run.watch_id):
                continue
        # Read the clock again: a run of this watch that finished while this claim looked took
        # its finished_at before committing, so after `at`; this start must not precede it.
        started = _now(now)
        run.state = RunState.RUNNING
        run.lease_owner = owner[:200]
        run.lease_until = started + timedelta(seconds=lease_s)
        run.attempts = (run.attempts or 0) + 1
        run.started_at = started
        run.finished_at = None
        run.not_before = None
        session.flush()
        return run
    return None


def renew(
    session: Session, run_id: int, owner: str, lease_s: float, *, now: datetime | None = None
) -> bool:
    """Extend the lease; False when the run is no longer ours (reaped, or finished)."""
    at = _now(now)
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.lease_owner == owner, Run.state == RunState.RUNNING)
        .values(lease_until=at + timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def fail(
    session: Session,
    run: Run,
    reason: str,
    *,
    interrupted: bool = False,
    now: datetime | None = None,
) -> Run:
    """Mark a run failed (or interrupted) with its reason, and schedule a retry if one is left."""
    at = _now(now)
    run.state = RunState.INTERRUPTED if interrupted else RunState.FAILED
    run.finished_at = at
    run.lease_owner = None
    run.lease_until = None
    attempt = run.attempts or 0
    run.error = f"attempt {attempt}: {reason}"[:2000]
    if attempt < MAX_ATTEMPTS:
        run.not_before = at + timedelta(seconds=0 if interrupted else backoff_s(attempt))
    else:
        run.not_before = None
        run.error += f" (gave up after {attempt} attempts)"
    session.flush()
    return run


def finish(
    session: Session,
    run_id: int,
    owner: str | None,
    *,
    error: str | None = None,
    stats: dict[str, int] | None = None,
    now: datetime | None = None,
) -> Run:
    """Record how a claimed run ended: finished, or failed (and retried) with `error`.

    A run the crawl itself already closed keeps its state; a run whose lease went to someone
    else is left alone (they own it now).
    """
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run with id {run_id}")
    if run.state != RunState.RUNNING or (owner is not None and run.lease_owner != owner):
        return run
    for key, value in (stats or {}).items():
        if key in ("pages", "media", "matches", "errors"):
            setattr(run, key, int(value))
    if error is not None:
        return fail(session, run, error, now=now)
    run.state = RunState.FINISHED
    run.finished_at = _now(now)
    run.lease_owner = None
    run.lease_until = None
    run.not_before = None
    session.flush()
    return run


def reap_expired(session: Session, *, now: datetime | None = None) -> list[Run]:
    """Runs whose lease ran out (their process died): failed with the reason, retried later."""
    at = _now(now)
    stmt = select(Run).where(Run.state == RunState.RUNNING, Run.lease_until < at)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=Run)
    reaped = list(session.scalars(stmt))
    for run in reaped:
        fail(session, run, f"lease of {run.lease_owner} expired: the crawl process died", now=at)
    return reaped


# -- named leases: one holder at a time (the active scheduler) -------------------------------


def acquire_lease(
    session: Session, name: str, owner: str, ttl_s: float, *, now: datetime | None = None
) -> bool:
    """Take or renew the lease `name` for `owner`; False while someone else holds it."""
    at = _now(now)
    stmt = select(Lease).where(Lease.name == name)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    lease = session.scalars(stmt).one_or_none()
    if lease is None:
        try:
            with session.begin_nested():
                session.add(Lease(name=name, owner=owner, until=at + timedelta(seconds=ttl_s)))
                session.flush()
        except IntegrityError:
            return False  # someone else created it first
        return True
    if lease.owner != owner and lease.until > at:
        return False
    lease.owner = owner
    lease.until = at + timedelta(seconds=ttl_s)
    session.flush()
    return True


def release_lease(session: Session, name: str, owner: str) -> None:
    lease = session.get(Lease, name)
    if lease is not None and lease.owner == owner:
        session.delete(lease)
        session.flush()


# -- what people see ----------------------------------------------------------------------


def list_runs(
    session: Session,
    *,
    scope: frozenset[int] | None = None,
    include_unowned: bool = False,
    watch_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Run]:
    """Run history, newest first; `scope` limits to watches of these rightsholders (and, with
    `include_unowned`, watches that name none)."""
    stmt = select(Run).order_by(Run.id.desc())
    if scope is not None:
        owned: Any = Watch.rightsholder_id.in_(scope)
        if include_unowned:
            owned = owned | Watch.rightsholder_id.is_(None)
        stmt = stmt.where(Run.watch_id.in_(select(Watch.id).where(owned)))
    if watch_id is not None:
        stmt = stmt.where(Run.watch_id == watch_id)
    return list(session.scalars(stmt.offset(offset).limit(limit)))


def url_errors(session: Session, run_id: int, limit: int = 500) -> list[CrawlUrl]:
    """The URLs of a run that failed, with their reasons."""
    return list(
        session.scalars(
            select(CrawlUrl)
            .where(CrawlUrl.run_id == run_id, CrawlUrl.error.is_not(None))
            .order_by(CrawlUrl.id)
            .limit(limit)
        )
    )


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def run_json(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "watch_id": run.watch_id,
        "watch": run.watch.name if run.watch is not None else None,
        "state": run.state,
        "scheduled_for": _iso(run.scheduled_for),
        "late": run.late,
        "started_by": run.started_by,
        "queued_at": _iso(run.queued_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "attempts": run.attempts,
        "retry_at": _iso(run.not_before) if run.state != RunState.QUEUED else None,
        "pages": run.pages,
        "media": run.media,
        "matches": run.matches,
        "errors": run.errors,
        "error": run.error,
    }


def url_error_json(row: CrawlUrl) -> dict[str, Any]:
    return {
        "url": row.url,
        "kind": row.kind,
        "http_status": row.http_status,
        "error": row.error,
        "at": _iso(row.done_at),
    }


__all__ = [
    "MAX_ATTEMPTS",
    "acquire_lease",
    "backoff_s",
    "claim_run",
    "claimable",
    "fail",
    "finish",
    "list_runs",
    "queue_run",
    "reap_expired",
    "release_lease",
    "renew",
    "run_json",
    "url_error_json",
    "url_errors",
]
