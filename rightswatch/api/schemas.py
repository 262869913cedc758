"""Request and response bodies. Requests forbid unknown fields (no mass assignment: a body
naming `work_id` or `evidence_ids` is refused with 422, never applied)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from evidence.models import MatchStatus

MAX_EXPORT = 1000
MAX_ID = 2**31 - 1  # INTEGER primary keys on PostgreSQL
NO_NUL = r"^[^\x00]*$"
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: MatchStatus
    note: Annotated[str | None, Field(max_length=2000, pattern=NO_NUL)] = None


class ExportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    match_ids: Annotated[list[Id], Field(min_length=1, max_length=MAX_EXPORT)]


class LicenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    domain: Annotated[str, Field(min_length=1, max_length=253, pattern=NO_NUL)]
    work_id: Id | None = Field(None, description="The licensed work; omit for the whole catalogue.")
    until: date | None = Field(None, description="Last day covered; omit for open-ended.")


class ShareOut(BaseModel):
    rightsholder: str
    share: float


class WorkOut(BaseModel):
    id: int
    ref: str
    kind: Literal["image", "audio"]
    title: str
    sha256: str
    creator: str | None = None
    rightsholder: str
    isrc: str | None = None
    iswc: str | None = None
    shares: list[ShareOut] = []
    fingerprints: list[str] = []


class MatchOut(BaseModel):
    id: int
    work_id: int
    ref: str
    kind: Literal["image", "audio"]
    page_url: str
    media_url: str
    score: float
    offset_s: float | None
    first_seen: str
    last_seen: str
    status: MatchStatus
    flags: list[str]
    evidence_ids: list[str]
    region: list[int] | None = None


class StatusChangeOut(BaseModel):
    id: int
    match_id: int
    old_status: str
    new_status: str
    note: str | None
    by: str
    at: str


class WatchOut(BaseModel):
    id: int
    name: str
    rightsholder: str | None = None
    seeds: list[str]
    allow_domains: list[str]
    include: list[str] = []
    exclude: list[str] = []
    max_depth: int
    max_pages: int
    every_s: int | None
    cron: str | None
    render_js: bool
    ignore_robots: bool
    enabled: bool


class UrlErrorOut(BaseModel):
    url: str
    kind: str
    http_status: int | None
    error: str | None
    at: str | None


class RunOut(BaseModel):
    id: int
    watch_id: int | None
    watch: str | None
    state: str
    scheduled_for: str | None
    late: bool
    started_by: str
    queued_at: str | None
    started_at: str | None
    finished_at: str | None
    attempts: int
    retry_at: str | None
    pages: int
    media: int
    matches: int
    errors: int
    error: str | None
    url_errors: list[UrlErrorOut] | None = None


class LicenceOut(BaseModel):
    id: int
    work_id: int | None
    ref: str | None
    domain: str
    until: str | None
    created_by: str
    created_at: str
    licensed_matches: list[int] | None = None


class HealthOut(BaseModel):
    status: Literal["ok"]


Text = Annotated[str, Field(max_length=500, pattern=NO_NUL)]
Pattern = Annotated[str, Field(min_length=1, max_length=500, pattern=NO_NUL)]
Url = Annotated[str, Field(min_length=1, max_length=2048, pattern=NO_NUL)]
Domain = Annotated[str, Field(min_length=1, max_length=253, pattern=NO_NUL)]
Every = Annotated[
    str, Field(max_length=20, pattern=NO_NUL, description="30m, 6h, 1d, 1w (at least 1 minute).")
]
Cron = Annotated[
    str, Field(max_length=100, pattern=NO_NUL, description="5 crontab fields, UTC: '0 3 * * *'.")
]


class WatchIn(BaseModel):
    """As `watch add`; `rightsholder` defaults to the account's only one (admin: none, i.e. the
    default rightsholder). `ignore_robots: true` needs an admin."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]
    seeds: Annotated[list[Url], Field(min_length=1, max_length=100)]
    allow_domains: Annotated[list[Domain], Field(max_length=100)] = []
    include: Annotated[list[Pattern], Field(max_length=50)] = []
    exclude: Annotated[list[Pattern], Field(max_length=50)] = []
    max_depth: Annotated[int, Field(ge=0, le=10_000)] | None = None
    max_pages: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    every: Every | None = None
    cron: Cron | None = None
    render_js: bool = False
    ignore_robots: bool = False
    rightsholder: Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)] | None = None


class WatchPatch(BaseModel):
    """Only the fields given change. Setting `every` clears `cron` and the reverse; both null:
    runs only by hand. New `seeds` without `allow_domains` re-derive the domains from them."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = None
    seeds: Annotated[list[Url], Field(min_length=1, max_length=100)] | None = None
    allow_domains: Annotated[list[Domain], Field(max_length=100)] | None = None
    include: Annotated[list[Pattern], Field(max_length=50)] | None = None
    exclude: Annotated[list[Pattern], Field(max_length=50)] | None = None
    max_depth: Annotated[int, Field(ge=0, le=10_000)] | None = None
    max_pages: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    every: Every | None = None
    cron: Cron | None = None
    render_js: bool | None = None
    ignore_robots: bool | None = None
