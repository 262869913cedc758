"""Managing the catalogue and the monitoring over HTTP: register a work, define, change and
disable watches, queue a run now, end a licence. Each goes through the CLI's own code path
(evidence.catalogue, crawler.runner, evidence.runs, evidence.licences) behind the API's checks.

Roles: every route here needs a reviewer or an admin (`WriterDep`) and acts only inside the
caller's rightsholders; a foreign object answers 404 exactly like a missing one. An admin alone
may (a) act for a rightsholder outside its own list (only an admin spans rightsholders) and
(b) set `ignore_robots: true`: disobeying robots.txt is a decision about how the whole service
treats third-party sites, not about one catalogue.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from evidence.accounts import Principal
from evidence.catalogue import WorkInput, add_work, get_rightsholder
from evidence.errors import BadInput
from evidence.models import Licence, Rightsholder, Run, RunState, Watch
from evidence.runs import queue_run, run_json
from rightswatch.api.deps import PrincipalDep, SessionDep, WriterDep, ctx
from rightswatch.api.errors import ApiError, responses
from rightswatch.api.routes import READ, WRITE, licence_rows, watch_out, watch_visible
from rightswatch.api.schemas import (
    NO_NUL,
    Id,
    LicenceOut,
    RunOut,
    WatchIn,
    WatchOut,
    WatchPatch,
    WorkOut,
)

router = APIRouter()

MAX_EVERY_S = 366 * 86400  # a schedule longer than a year is a typo, and overflows nothing
CREATE = {**WRITE, **responses(409)}
FormText = Annotated[str | None, Form(max_length=500, pattern=NO_NUL)]
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


# -- rightsholders ---------------------------------------------------------------------------


def own_holders(session: Session, principal: Principal) -> list[str]:
    ids = sorted(principal.rightsholder_ids)
    return list(session.scalars(select(Rightsholder.name).where(Rightsholder.id.in_(ids))))


def acting_for(session: Session, principal: Principal, name: str | None) -> str | None:
    """The rightsholder a write acts for: a named one must be the caller's own (admin: any);
    none named means the caller's only one (admin: None, the caller decides the default)."""
    if principal.is_admin:
        return name
    own = own_holders(session, principal)
    if name is None:
        if len(own) != 1:
            raise ApiError(422, "this account has several rightsholders: name one")
        return own[0]
    if name not in own:
        raise ApiError(403, "an account can act only for its own rightsholders")
    return name


# -- works -----------------------------------------------------------------------------------


def _upload_name(filename: str | None) -> str:
    """The client's file name as the default ref: its last component, no control characters."""
    name = _UNSAFE.sub("", (filename or "").replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return name[:200] if name not in ("", ".", "..") else "upload"


@router.post(
    "/api/works",
    status_code=201,
    response_model=WorkOut,
    responses={**WRITE, 200: {"model": WorkOut, "description": "already registered: updated"}},
    tags=["works"],
)
def work_add(
    request: Request,
    response: Response,
    session: SessionDep,
    principal: WriterDep,
    file: Annotated[UploadFile, File(description="The original: an image or an audio file.")],
    ref: FormText = None,
    title: FormText = None,
    creator: FormText = None,
    rightsholder: Annotated[
        str | None,
        Form(
            max_length=1000,
            pattern=NO_NUL,
            description="'A', or 'A; B' with share '60; 40': the first owns the work.",
        ),
    ] = None,
    share: Annotated[str | None, Form(max_length=200, pattern=NO_NUL)] = None,
    isrc: Annotated[str | None, Form(max_length=20, pattern=NO_NUL)] = None,
    iswc: Annotated[str | None, Form(max_length=20, pattern=NO_NUL)] = None,
) -> dict[str, Any]:
    """Register one image or audio file as a work, fingerprinting it, as `works add` does
    (201). The same ref with the same file updates its metadata (200). A non-admin registers
    only for its own rightsholders; co-holders with shares may be anyone."""
    context = ctx(request)
    names = [n.strip() for n in (rightsholder or "").split(";") if n.strip()]
    owner = acting_for(session, principal, names[0] if names else None)
    default = owner or context.settings.default_rightsholder
    session.close()  # add_work runs its own transaction (SQLite: one writer at a time)
    shown_name = _upload_name(file.filename)
    with tempfile.TemporaryDirectory(prefix="rw-upload-") as tmp:
        path = Path(tmp) / "upload"
        with path.open("wb") as out:
            shutil.copyfileobj(file.file, out, 1024 * 1024)
        if path.stat().st_size > context.max_upload:
            raise ApiError(413, f"file larger than {context.max_upload} bytes")
        item = WorkInput(
            path=path,
            ref=ref if ref is not None else Path(shown_name).stem or "upload",
            title=title,
            creator=creator,
            rightsholder="; ".join(names) if names else None,
            share=share,
            isrc=isrc,
            iswc=iswc,
        )
        try:
            reg = add_work(context.factory, context.store, item, default)
        except BadInput as exc:  # never show the server's temporary path
            raise BadInput(str(exc).replace(str(path), shown_name)) from None
    if reg.outcome != "imported":
        response.status_code = 200
    return reg.json


# -- watches ---------------------------------------------------------------------------------


def _every_s(value: str) -> int:
    from crawler.runner import parse_every

    seconds = parse_every(value)
    if seconds > MAX_EVERY_S:
        raise BadInput(f"every {value!r}: at most {MAX_EVERY_S // 86400} days")
    return seconds


def scoped_watch(request: Request, session: Session, principal: Principal, watch_id: int) -> Watch:
    watch = session.get(Watch, watch_id)
    if watch is None or not watch_visible(request, session, principal, watch):
        raise ApiError(404, "not found")
    return watch


def _commit_watch(session: Session, watch: Watch) -> dict[str, Any]:
    row = watch_out(session, watch)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ApiError(409, f"a watch named {watch.name!r} already exists") from None
    return row


@router.post(
    "/api/watches", status_code=201, response_model=WatchOut, responses=CREATE, tags=["watches"]
)
def watch_add(body: WatchIn, session: SessionDep, principal: WriterDep) -> dict[str, Any]:
    """Define a monitored scope, as `watch add`, owned by the caller's rightsholder."""
    from crawler.runner import create_watch, make_config, validate_cron

    if body.every is not None and body.cron is not None:
        raise ApiError(422, "every and cron are mutually exclusive")
    if body.ignore_robots and not principal.is_admin:
        raise ApiError(403, "only an admin account can ignore robots.txt")
    holder = acting_for(session, principal, body.rightsholder)
    cfg = make_config(
        body.seeds,
        allow_domains=body.allow_domains,
        include=body.include,
        exclude=body.exclude,
        max_depth=body.max_depth,
        max_pages=body.max_pages,
        render_js=body.render_js,
        ignore_robots=body.ignore_robots,
    )
    watch = create_watch(
        session,
        body.name,
        cfg,
        every_s=_every_s(body.every) if body.every is not None else None,
        cron=validate_cron(body.cron) if body.cron is not None else None,
        rightsholder_id=get_rightsholder(session, holder).id if holder else None,
    )
    return _commit_watch(session, watch)


@router.get("/api/watches/{watch_id}", response_model=WatchOut, responses=READ, tags=["watches"])
def watch_get(
    request: Request, watch_id: Id, session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    return watch_out(session, scoped_watch(request, session, principal, watch_id))


def _cancel_queued(session: Session, watch: Watch, by: str) -> None:
    """A disabled watch's runs that have not started are given up (a running one finishes)."""
    now = datetime.now(UTC)
    for run in session.scalars(
        select(Run).where(
            Run.watch_id == watch.id,
            Run.state.in_([RunState.QUEUED, RunState.FAILED, RunState.INTERRUPTED]),
            (Run.state == RunState.QUEUED) | Run.not_before.is_not(None),
        )
    ):
        run.state = RunState.FAILED
        run.not_before = None
        run.finished_at = now
        run.error = f"cancelled: the watch was disabled by {by}"[:500]


@router.patch(
    "/api/watches/{watch_id}", response_model=WatchOut, responses=CREATE, tags=["watches"]
)
def watch_change(
    request: Request, watch_id: Id, body: WatchPatch, session: SessionDep, principal: WriterDep
) -> dict[str, Any]:
    """Change a watch's schedule, limits or scope, or enable/disable it; later runs use it."""
    from crawler.runner import make_config, validate_cron

    watch = scoped_watch(request, session, principal, watch_id)
    given = body.model_fields_set
    if body.ignore_robots and not principal.is_admin:
        raise ApiError(403, "only an admin account can ignore robots.txt")
    if body.every is not None and body.cron is not None:
        raise ApiError(422, "every and cron are mutually exclusive")
    if "every" in given:
        watch.every_s = _every_s(body.every) if body.every is not None else None
        if body.every is not None:
            watch.cron = None
    if "cron" in given:
        watch.cron = validate_cron(body.cron) if body.cron is not None else None
        if body.cron is not None:
            watch.every_s = None
    scope_fields = {"seeds", "allow_domains", "include", "exclude", "max_depth", "max_pages"}
    if given & (scope_fields | {"render_js", "ignore_robots"}):
        domains = body.allow_domains
        if domains is None:
            domains = [] if body.seeds is not None else list(watch.allow_domains or [])
        cfg = make_config(
            body.seeds if body.seeds is not None else list(watch.seeds),
            allow_domains=domains,
            include=body.include if body.include is not None else list(watch.include or []),
            exclude=body.exclude if body.exclude is not None else list(watch.exclude or []),
            max_depth=body.max_depth if body.max_depth is not None else watch.max_depth,
            max_pages=body.max_pages if body.max_pages is not None else watch.max_pages,
            render_js=body.render_js if body.render_js is not None else watch.render_js,
            ignore_robots=(
                body.ignore_robots if body.ignore_robots is not None else watch.ignore_robots
            ),
        )
        watch.seeds, watch.allow_domains = cfg.seeds, cfg.allow_domains
        watch.include, watch.exclude = cfg.include, cfg.exclude
        watch.max_depth, watch.max_pages = cfg.max_depth, cfg.max_pages
        watch.render_js, watch.ignore_robots = cfg.render_js, cfg.ignore_robots
    if body.enabled is not None:
        watch.enabled = body.enabled
        if not body.enabled:
            _cancel_queued(session, watch, f"api:{principal.name}")
    return _commit_watch(session, watch)


@router.delete(
    "/api/watches/{watch_id}", response_model=WatchOut, responses=WRITE, tags=["watches"]
)
def watch_disable(
    request: Request, watch_id: Id, session: SessionDep, principal: WriterDep
) -> dict[str, Any]:
    """Disable the watch: no more scheduled runs, queued ones given up. Nothing is destroyed:
    its runs, matches and evidence stay, and PATCH `enabled: true` brings it back."""
    watch = scoped_watch(request, session, principal, watch_id)
    watch.enabled = False
    _cancel_queued(session, watch, f"api:{principal.name}")
    return _commit_watch(session, watch)


@router.post(
    "/api/watches/{watch_id}/runs",
    status_code=201,
    response_model=RunOut,
    responses={**CREATE, 200: {"model": RunOut, "description": "a run is already queued"}},
    tags=["runs"],
)
def watch_run_now(
    request: Request,
    response: Response,
    watch_id: Id,
    session: SessionDep,
    principal: WriterDep,
) -> dict[str, Any]:
    """Queue a run of this watch now (201); the service's runners (or Celery workers) crawl it.
    While a run of the watch is queued or running, that run is answered (200): never two."""
    from crawler.runner import config_for_watch

    watch = scoped_watch(request, session, principal, watch_id)
    # Serialise "is one queued?" per watch (PostgreSQL; SQLite writers are serial anyway).
    session.execute(select(Watch.id).where(Watch.id == watch.id).with_for_update())
    if not watch.enabled:
        raise ApiError(409, "the watch is disabled: PATCH enabled=true first")
    pending = session.scalar(
        select(Run)
        .where(Run.watch_id == watch.id, Run.state.in_([RunState.QUEUED, RunState.RUNNING]))
        .order_by(Run.id)
        .limit(1)
    )
    if pending is not None:
        response.status_code = 200
        return run_json(pending)
    config = config_for_watch(watch).to_json()
    at = datetime.now(UTC).replace(microsecond=0)
    for _ in range(10):  # a finished run may hold this second's (watch, scheduled_for) key
        run = queue_run(session, watch, at, f"api:{principal.name}", config=config)
        if run.state in (RunState.QUEUED, RunState.RUNNING):
            break
        at += timedelta(seconds=1)
    else:
        raise ApiError(409, "could not queue a run now: try again in a few seconds")
    row = run_json(run)
    session.commit()
    return row


# -- licences --------------------------------------------------------------------------------


@router.delete(
    "/api/licences/{licence_id}", response_model=LicenceOut, responses=WRITE, tags=["licences"]
)
def licence_end(licence_id: Id, session: SessionDep, principal: WriterDep) -> dict[str, Any]:
    """End a licence: it covers up to yesterday (UTC) and no longer. Uses seen from now on go
    back to `pending` (as when a licence expires); the row and its history stay."""
    from evidence import ledger

    lic = session.get(Licence, licence_id)
    scope = principal.scope()
    if lic is None or (scope is not None and lic.rightsholder_id not in scope):
        raise ApiError(404, "not found")
    end = datetime.now(UTC).date() - timedelta(days=1)
    if lic.until is None or lic.until > end:
        lic.until = end
        ledger.append(
            session,
            kind="licence",
            subject=f"licence:{lic.id}",
            content={
                "licence_id": lic.id,
                "action": "ended",
                "until": end.isoformat(),
                "by": f"api:{principal.name}",
            },
        )
    row = licence_rows(session, [lic])[0]
    session.commit()
    return row
