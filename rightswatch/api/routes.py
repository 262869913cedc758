"""The JSON API (CONTRACT.md's routes plus what a client needs). Every object is looked up in
the caller's scope: another rightsholder's object answers 404 exactly like a missing one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence.accounts import Principal
from evidence.catalogue import list_works, work_json
from evidence.licences import add_licence, licence_json
from evidence.models import Licence, MatchStatus, Rightsholder, Run, Watch, Work
from evidence.reviews import history, set_status, status_change_json
from evidence.runs import list_runs, run_json, url_error_json, url_errors
from evidence.uses import get_match, list_matches, match_json
from rightswatch.api import media
from rightswatch.api.deps import PrincipalDep, SessionDep, WriterDep, ctx
from rightswatch.api.errors import ApiError, responses
from rightswatch.api.schemas import (
    NO_NUL,
    ExportIn,
    HealthOut,
    Id,
    LicenceIn,
    LicenceOut,
    MatchOut,
    RunOut,
    StatusChangeOut,
    StatusIn,
    WatchOut,
    WorkOut,
)

READ = responses(401, 404, 422, 429, 503)
WRITE = responses(401, 403, 404, 413, 422, 429, 503)
Limit = Annotated[int, Query(ge=1, le=10**9, description="Page size; capped by the server.")]
Offset = Annotated[int, Query(ge=0, le=10**9)]

router = APIRouter()


@router.get("/healthz", response_model=HealthOut, tags=["service"])
def healthz() -> dict[str, str]:
    """Liveness: 200 while the process serves requests."""
    return {"status": "ok"}


def _page(request: Request, limit: int) -> int:
    return min(limit, ctx(request).max_page)


def scoped_work(session: SessionDep, principal: PrincipalDep, work_id: int) -> Work:
    work = session.get(Work, work_id)
    scope = principal.scope()
    if work is None or (scope is not None and work.rightsholder_id not in scope):
        raise ApiError(404, "not found")
    return work


@router.get("/api/works", response_model=list[WorkOut], responses=READ, tags=["works"])
def works(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    """The account's works, as `works list`."""
    scope = principal.scope()
    rows = list_works(session, sorted(scope) if scope is not None else None)
    return [work_json(w) for w in rows[offset : offset + _page(request, limit)]]


@router.get("/api/works/{work_id}", response_model=WorkOut, responses=READ, tags=["works"])
def work(work_id: Id, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    return work_json(scoped_work(session, principal, work_id))


@router.get(
    "/api/works/{work_id}/original",
    responses={**READ, 200: {"content": {"image/*": {}, "audio/*": {}}}},
    response_class=Response,
    tags=["works"],
)
def work_original(
    request: Request, work_id: Id, session: SessionDep, principal: PrincipalDep
) -> Response:
    """The work's original file, as registered."""
    return media.work_original(ctx(request).store, scoped_work(session, principal, work_id))


@router.get("/api/matches", response_model=list[MatchOut], responses=READ, tags=["matches"])
def matches(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    status: MatchStatus | None = None,
    work: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    domain: Annotated[str | None, Query(max_length=253, pattern=NO_NUL)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    """The account's matches, as `matches`, newest sighting first."""
    rows = list_matches(
        session,
        scope=principal.scope(),
        work_ref=work,
        status=status.value if status else None,
        domain=domain,
        limit=_page(request, limit),
        offset=offset,
    )
    return [match_json(m) for m in rows]


@router.get("/api/matches/{match_id}", response_model=MatchOut, responses=READ, tags=["matches"])
def match(match_id: Id, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    return match_json(get_match(session, match_id, principal.scope()))


@router.get(
    "/api/matches/{match_id}/history",
    response_model=list[StatusChangeOut],
    responses=READ,
    tags=["matches"],
)
def match_history(
    match_id: Id, session: SessionDep, principal: PrincipalDep
) -> list[dict[str, Any]]:
    """Review decisions on this match: who, when, what and why."""
    found = get_match(session, match_id, principal.scope())
    return [status_change_json(c) for c in history(session, found.id)]


@router.get(
    "/api/matches/{match_id}/media",
    responses={**READ, 200: {"content": {"image/*": {}, "audio/*": {}}}},
    response_class=Response,
    tags=["matches"],
)
def match_media(
    request: Request, match_id: Id, session: SessionDep, principal: PrincipalDep
) -> Response:
    """The found copy, from the blob store or the evidence capture."""
    return media.found_media(ctx(request).store, get_match(session, match_id, principal.scope()))


@router.post(
    "/api/matches/{match_id}/status", response_model=MatchOut, responses=WRITE, tags=["matches"]
)
def match_status(
    match_id: Id, body: StatusIn, session: SessionDep, principal: WriterDep
) -> dict[str, Any]:
    """A review decision, recorded with who and when in the evidence ledger."""
    found = get_match(session, match_id, principal.scope())
    set_status(session, found, body.status.value, note=body.note, by=f"api:{principal.name}")
    row = match_json(found)
    session.commit()
    return row


@router.post(
    "/api/exports",
    responses={**WRITE, 200: {"content": {"application/zip": {}}, "description": "the pack"}},
    response_class=Response,
    tags=["evidence"],
)
def export(
    request: Request, body: ExportIn, session: SessionDep, principal: PrincipalDep
) -> Response:
    """An evidence pack of these matches (all in the account's scope, or 404 and no pack)."""
    session.close()  # the export runs its own transactions (SQLite: one writer at a time)
    return export_response(request, body.match_ids, principal.scope(), f"api:{principal.name}")


def export_response(
    request: Request, match_ids: list[int], scope: frozenset[int] | None, by: str
) -> Response:
    context = ctx(request)
    try:
        from evidence.pack import pack_bytes
    except ImportError:
        raise ApiError(501, "evidence export is not available in this build") from None
    if not context.export_slots.acquire(blocking=False):
        raise ApiError(429, "too many exports at once: try again shortly", {"Retry-After": "10"})
    try:
        data = pack_bytes(
            context.factory,
            context.store,
            context.settings,
            sorted(set(match_ids)),
            by=by,
            scope=sorted(scope) if scope is not None else None,
        )
    finally:
        context.export_slots.release()
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="rightswatch-evidence.zip"'},
    )


@router.get("/api/watches", response_model=list[WatchOut], responses=READ, tags=["watches"])
def watches(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    """Watches of the account's rightsholders."""
    stmt = select(Watch).order_by(Watch.id)
    scope = principal.scope()
    if scope is not None:
        owned: Any = Watch.rightsholder_id.in_(scope)
        if sees_unowned(request, session, principal):
            owned = owned | Watch.rightsholder_id.is_(None)
        stmt = stmt.where(owned)
    rows = list(session.scalars(stmt.offset(offset).limit(_page(request, limit))))
    return [watch_out(session, w) for w in rows]


def watch_out(session: Session, w: Watch) -> dict[str, Any]:
    """A watch as the API shows it (`WatchOut`), with its rightsholder's name."""
    holder = session.get(Rightsholder, w.rightsholder_id) if w.rightsholder_id else None
    return {
        "id": w.id,
        "name": w.name,
        "rightsholder": holder.name if holder else None,
        "seeds": list(w.seeds),
        "allow_domains": list(w.allow_domains or []),
        "include": list(w.include or []),
        "exclude": list(w.exclude or []),
        "max_depth": w.max_depth,
        "max_pages": w.max_pages,
        "every_s": w.every_s,
        "cron": w.cron,
        "render_js": w.render_js,
        "ignore_robots": w.ignore_robots,
        "enabled": w.enabled,
    }


def sees_unowned(request: Request, session: Session, principal: Principal) -> bool:
    """Watches that name no rightsholder belong to the default one (as works without one do)."""
    name = ctx(request).settings.default_rightsholder
    holder = session.scalar(select(Rightsholder.id).where(Rightsholder.name == name))
    return holder is not None and holder in principal.rightsholder_ids


def watch_visible(
    request: Request, session: Session, principal: Principal, watch: Watch | None
) -> bool:
    scope = principal.scope()
    if scope is None:
        return True
    if watch is None:
        return False
    if watch.rightsholder_id is None:
        return sees_unowned(request, session, principal)
    return watch.rightsholder_id in scope


def scoped_run(request: Request, session: Session, principal: Principal, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None or not watch_visible(request, session, principal, run.watch):
        raise ApiError(404, "not found")
    return run


@router.get("/api/runs", response_model=list[RunOut], responses=READ, tags=["runs"])
def runs(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    """Run history, newest first."""
    rows = list_runs(
        session,
        scope=principal.scope(),
        include_unowned=sees_unowned(request, session, principal),
        limit=_page(request, limit),
        offset=offset,
    )
    return [run_json(r) for r in rows]


@router.get("/api/runs/{run_id}", response_model=RunOut, responses=READ, tags=["runs"])
def run(
    request: Request, run_id: Id, session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    """One run, with the URLs that failed and why."""
    found = scoped_run(request, session, principal, run_id)
    row = run_json(found)
    row["url_errors"] = [url_error_json(u) for u in url_errors(session, found.id)]
    return row


def licence_rows(session: SessionDep, lics: list[Licence]) -> list[dict[str, Any]]:
    refs = {
        w.id: w.ref
        for w in session.scalars(
            select(Work).where(Work.id.in_({x.work_id for x in lics if x.work_id}))
        )
    }
    out = []
    for lic in lics:
        row = licence_json(lic, refs.get(lic.work_id) if lic.work_id else None)
        row.pop("rightsholder_id", None)
        row["created_at"] = row["created_at"].isoformat().replace("+00:00", "Z")
        out.append(row)
    return out


@router.get("/api/licences", response_model=list[LicenceOut], responses=READ, tags=["licences"])
def licences(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    """Licences on the account's works."""
    stmt = select(Licence).order_by(Licence.id)
    scope = principal.scope()
    if scope is not None:
        stmt = stmt.where(Licence.rightsholder_id.in_(scope))
    return licence_rows(
        session, list(session.scalars(stmt.offset(offset).limit(_page(request, limit))))
    )


@router.post("/api/licences", response_model=list[LicenceOut], responses=WRITE, tags=["licences"])
def licence_add(body: LicenceIn, session: SessionDep, principal: WriterDep) -> list[dict[str, Any]]:
    """License a work (or all the account's works) on a domain and its subdomains, until a date;
    matches it covers become `licensed`."""
    by = f"api:{principal.name}"
    created = []
    if body.work_id is not None:
        target = scoped_work(session, principal, body.work_id)
        created.append(
            add_licence(
                session,
                domain=body.domain,
                work=target,
                rightsholder_id=None,
                until=body.until,
                created_by=by,
            )
        )
    elif principal.is_admin:
        created.append(
            add_licence(
                session,
                domain=body.domain,
                work=None,
                rightsholder_id=None,
                until=body.until,
                created_by=by,
            )
        )
    else:
        for holder in sorted(principal.rightsholder_ids):
            created.append(
                add_licence(
                    session,
                    domain=body.domain,
                    work=None,
                    rightsholder_id=holder,
                    until=body.until,
                    created_by=by,
                )
            )
    rows = licence_rows(session, [lic for lic, _ in created])
    for row, (_, changed) in zip(rows, created, strict=True):
        row["licensed_matches"] = [m.id for m in changed]
    session.commit()
    return rows
