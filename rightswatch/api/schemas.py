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
    seeds: list[str]
    allow_domains: list[str]
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
