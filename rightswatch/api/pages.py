"""The review pages: server-rendered (Jinja2, autoescaped), no script from anywhere but /static.

Log in with a token (a signed session cookie follows); the queue shows each pending use with the
work and the found copy side by side (audio with the matched passage), filters by work, domain
and status, and confirm / dismiss / licensed on buttons or the keys c / d / l. Every form that
changes something carries the session's CSRF token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from sqlalchemy import select

from evidence.accounts import authenticate
from evidence.errors import BadInput, NotFound
from evidence.models import Work
from evidence.reviews import set_status
from evidence.runs import list_runs, run_json, url_error_json, url_errors
from evidence.uses import get_match, list_matches, match_json
from rightswatch import __version__
from rightswatch.api import media
from rightswatch.api.deps import SessionDep, ctx, limit_rate
from rightswatch.api.errors import ApiError
from rightswatch.api.routes import export_response, sees_unowned
from rightswatch.api.schemas import MAX_ID, NO_NUL
from rightswatch.api.session import COOKIE, MAX_AGE_S, WebSession, csrf_ok, make_cookie, read_cookie

HERE = Path(__file__).parent
templates = Jinja2Templates(
    env=Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
)
templates.env.globals["version"] = __version__


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    response: Response = templates.TemplateResponse(request, name, context, status_code=status_code)
    return response


PAGE = 50
STATUSES = ("pending", "confirmed", "dismissed", "licensed")

router = APIRouter(include_in_schema=False)


def web_session(request: Request, session: SessionDep) -> WebSession | None:
    web = read_cookie(ctx(request).cookie_secret, request.cookies.get(COOKIE), session)
    if web is None:
        # An API client may read the pages with its Bearer token (no CSRF token: no forms).
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            principal = authenticate(session, token.strip())
            web = WebSession(principal, "") if principal is not None else None
    if web is not None:
        limit_rate(request, web.principal)
    return web


def _require(
    request: Request, session: SessionDep, csrf: str | None = None, write: bool = False
) -> WebSession:
    web = web_session(request, session)
    if web is None:
        raise ApiError(401, "log in first")
    if csrf is not None and not csrf_ok(web, csrf):
        raise ApiError(403, "the form is stale or forged (CSRF check failed): reload the page")
    if write and not web.principal.can_write:
        raise ApiError(403, f"a {web.principal.role.value} account cannot change anything")
    return web


def _safe_next(value: str | None) -> str:
    """Only a local path: never an open redirect to another site."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _http_url(url: str) -> str | None:
    return url if url.startswith(("http://", "https://")) else None


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, session: SessionDep) -> Response:
    if web_session(request, session) is not None:
        return RedirectResponse("/", status_code=303)
    return render(request, "login.html", {"error": None})


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request, session: SessionDep, token: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    principal = authenticate(session, token.strip())
    if principal is None:
        return render(
            request,
            "login.html",
            {"error": "That token is not valid (or was revoked)."},
            status_code=401,
        )
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        COOKIE,
        make_cookie(ctx(request).cookie_secret, principal.account_id, token.strip()),
        max_age=MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep, csrf: Annotated[str, Form()] = "") -> Response:
    _require(request, session, csrf)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/", response_class=HTMLResponse)
def queue(
    request: Request,
    session: SessionDep,
    status: Annotated[str, Query(max_length=20)] = "pending",
    work: Annotated[str, Query(max_length=200, pattern=NO_NUL)] = "",
    domain: Annotated[str, Query(max_length=253, pattern=NO_NUL)] = "",
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
) -> Response:
    web = web_session(request, session)
    if web is None:  # the review pages start with the login form
        return render(request, "login.html", {"error": None})
    scope = web.principal.scope()
    status = status if status in STATUSES or status == "all" else "pending"
    try:
        rows = list_matches(
            session,
            scope=scope,
            work_ref=work.strip() or None,
            status=None if status == "all" else status,
            domain=domain.strip() or None,
            limit=PAGE + 1,
            offset=(page - 1) * PAGE,
        )
    except BadInput:
        rows = []
    more = len(rows) > PAGE
    items: list[dict[str, Any]] = []
    for m in rows[:PAGE]:
        row = match_json(m)
        row["domain"] = m.domain
        row["title"] = m.work.title
        row["page_href"] = _http_url(m.page_url)
        row["media_href"] = _http_url(m.media_url)
        items.append(row)
    works = session.scalars(
        select(Work).order_by(Work.ref).where(Work.rightsholder_id.in_(scope))
        if scope is not None
        else select(Work).order_by(Work.ref)
    ).all()
    filters = {"status": status, "work": work, "domain": domain}
    here = "/?" + urlencode({**filters, "page": page})
    return render(
        request,
        "queue.html",
        {
            "web": web,
            "items": items,
            "filters": filters,
            "statuses": STATUSES,
            "works": [w.ref for w in works[:500]],
            "page": page,
            "prev_href": "/?" + urlencode({**filters, "page": page - 1}) if page > 1 else None,
            "next_href": "/?" + urlencode({**filters, "page": page + 1}) if more else None,
            "here": here,
        },
    )


@router.post("/review/matches/{match_id}/status")
def review(
    request: Request,
    session: SessionDep,
    match_id: int,
    status: Annotated[str, Form(max_length=20)],
    csrf: Annotated[str, Form(max_length=100)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    web = _require(request, session, csrf, write=True)
    if not 1 <= match_id <= MAX_ID:
        raise ApiError(404, "not found")
    found = get_match(session, match_id, web.principal.scope())
    set_status(session, found, status, note=note or None, by=f"web:{web.principal.name}")
    session.commit()
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/review/export")
def export(
    request: Request,
    session: SessionDep,
    match_ids: Annotated[list[int], Form()],
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    web = _require(request, session, csrf)
    if not match_ids or len(match_ids) > ctx(request).max_export:
        raise ApiError(422, f"export between 1 and {ctx(request).max_export} matches")
    if any(not 1 <= i <= MAX_ID for i in match_ids):
        raise ApiError(404, "not found")
    session.close()  # the export opens its own transactions
    return export_response(request, match_ids, web.principal.scope(), f"web:{web.principal.name}")


@router.get("/review/works/{work_id}/original")
def work_original(request: Request, session: SessionDep, work_id: int) -> Response:
    web = _require(request, session)
    work = session.get(Work, work_id) if 1 <= work_id <= MAX_ID else None
    scope = web.principal.scope()
    if work is None or (scope is not None and work.rightsholder_id not in scope):
        raise NotFound("not found")
    return media.work_original(ctx(request).store, work)


@router.get("/review/matches/{match_id}/media")
def match_media(request: Request, session: SessionDep, match_id: int) -> Response:
    web = _require(request, session)
    if not 1 <= match_id <= MAX_ID:
        raise NotFound("not found")
    return media.found_media(
        ctx(request).store, get_match(session, match_id, web.principal.scope())
    )


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, session: SessionDep) -> Response:
    web = web_session(request, session)
    if web is None:
        return RedirectResponse("/login", status_code=303)
    rows = []
    unowned = sees_unowned(request, session, web.principal)
    for run in list_runs(session, scope=web.principal.scope(), include_unowned=unowned, limit=100):
        row = run_json(run)
        row["url_errors"] = [url_error_json(u) for u in url_errors(session, run.id, limit=100)]
        rows.append(row)
    return render(request, "runs.html", {"web": web, "runs": rows})
