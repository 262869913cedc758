"""The database schema: typed SQLAlchemy 2 models. Alembic migrations create and change it.

Times are timezone-aware UTC (`UTCDateTime` makes SQLite, which stores naive text, give them back
as UTC). Digests are "sha256:<hex>". Unique keys make every pipeline step idempotent: a use is one
(work, page, media) row, a capture one (match, run) row, a ledger entry one sequence number.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_uuid() -> str:
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend; naive values are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store UTC-aware times only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class MediaKind(enum.StrEnum):
    IMAGE = "image"
    AUDIO = "audio"


class MatchStatus(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"
    LICENSED = "licensed"


class RunState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class Role(enum.StrEnum):
    VIEWER = "viewer"
    REVIEWER = "reviewer"
    ADMIN = "admin"


def _enum(cls: type[enum.StrEnum], length: int = 16) -> String:
    # Plain strings, not native enums: adding a value must not need a type migration on PostgreSQL.
    return String(length)


class Rightsholder(Base):
    __tablename__ = "rightsholders"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Work(Base):
    __tablename__ = "works"
    __table_args__ = (UniqueConstraint("rightsholder_id", "ref"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    rightsholder_id: Mapped[int] = mapped_column(ForeignKey("rightsholders.id"), index=True)
    ref: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(_enum(MediaKind))
    title: Mapped[str] = mapped_column(String(500))
    creator: Mapped[str | None] = mapped_column(String(500))
    isrc: Mapped[str | None] = mapped_column(String(12))
    iswc: Mapped[str | None] = mapped_column(String(15))
    sha256: Mapped[str] = mapped_column(String(71), index=True)  # "sha256:<hex>"
    size: Mapped[int] = mapped_column(BigInteger)
    mime: Mapped[str] = mapped_column(String(100))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    duration_s: Mapped[float | None] = mapped_column(Float)
    # Rights metadata the original carries (creator, copyright, data mining): compared with copies.
    rights: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    rightsholder: Mapped[Rightsholder] = relationship(lazy="joined")
    shares: Mapped[list[WorkShare]] = relationship(
        back_populates="work", cascade="all, delete-orphan", lazy="selectin"
    )
    fingerprints: Mapped[list[Fingerprint]] = relationship(
        back_populates="work", cascade="all, delete-orphan", lazy="selectin"
    )


class WorkShare(Base):
    """A rightsholder's share of a work, in percent; a work's shares add up to at most 100."""

    __tablename__ = "work_shares"
    __table_args__ = (UniqueConstraint("work_id", "rightsholder_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    work_id: Mapped[int] = mapped_column(ForeignKey("works.id", ondelete="CASCADE"), index=True)
    rightsholder_id: Mapped[int] = mapped_column(ForeignKey("rightsholders.id"))
    share: Mapped[Decimal] = mapped_column(Numeric(6, 3))

    work: Mapped[Work] = relationship(back_populates="shares")
    rightsholder: Mapped[Rightsholder] = relationship(lazy="joined")


class Fingerprint(Base):
    """One fingerprint of a work: (type, version, value), as the fingerprints library made it."""

    __tablename__ = "fingerprints"
    __table_args__ = (UniqueConstraint("work_id", "type"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    work_id: Mapped[int] = mapped_column(ForeignKey("works.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    work: Mapped[Work] = relationship(back_populates="fingerprints")


class CatalogueVersion(Base):
    """A counter bumped by every catalogue change, so matchers refresh their index incrementally."""

    __tablename__ = "catalogue_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    work_id: Mapped[int] = mapped_column(Integer, index=True)
    change: Mapped[str] = mapped_column(String(16))  # "upsert" | "delete"
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Watch(Base):
    __tablename__ = "watches"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    rightsholder_id: Mapped[int | None] = mapped_column(ForeignKey("rightsholders.id"))
    seeds: Mapped[list[Any]] = mapped_column()
    allow_domains: Mapped[list[Any]] = mapped_column(default=list)
    include: Mapped[list[Any]] = mapped_column(default=list)
    exclude: Mapped[list[Any]] = mapped_column(default=list)
    max_depth: Mapped[int] = mapped_column(Integer, default=3)
    max_pages: Mapped[int] = mapped_column(Integer, default=1000)
    render_js: Mapped[bool] = mapped_column(Boolean, default=False)
    ignore_robots: Mapped[bool] = mapped_column(Boolean, default=False)
    every_s: Mapped[int | None] = mapped_column(Integer)
    cron: Mapped[str | None] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Run(Base):
    """One crawl: queued by the scheduler or started by hand, claimed by a runner with a lease."""

    __tablename__ = "runs"
    __table_args__ = (UniqueConstraint("watch_id", "scheduled_for"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    watch_id: Mapped[int | None] = mapped_column(ForeignKey("watches.id"), index=True)
    scheduled_for: Mapped[datetime | None] = mapped_column()
    state: Mapped[str] = mapped_column(_enum(RunState), default=RunState.QUEUED, index=True)
    started_by: Mapped[str] = mapped_column(String(200), default="cli")
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)  # seeds, limits, robots decision
    config_sha256: Mapped[str | None] = mapped_column(String(71))
    robots: Mapped[dict[str, Any]] = mapped_column(default=dict)  # host -> {"sha256", "status"}
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    pages: Mapped[int] = mapped_column(Integer, default=0)
    media: Mapped[int] = mapped_column(Integer, default=0)
    matches: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column()
    not_before: Mapped[datetime | None] = mapped_column()  # retry backoff
    error: Mapped[str | None] = mapped_column(Text)

    watch: Mapped[Watch | None] = relationship(lazy="joined")


class CrawlUrl(Base):
    """The crawl frontier as recorded in the database, so a killed run resumes losing nothing."""

    __tablename__ = "crawl_urls"
    __table_args__ = (UniqueConstraint("run_id", "url_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    url_key: Mapped[str] = mapped_column(String(64))  # sha256 hex of the canonical URL
    url: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(8), default="page")  # page | media
    depth: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default="queued")  # queued | done | failed
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)  # redirect chain, reason
    done_at: Mapped[datetime | None] = mapped_column()


class MediaObject(Base):
    """A found file, by content: fingerprinted once however many pages use it."""

    __tablename__ = "media_objects"
    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(71), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    mime: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str | None] = mapped_column(String(16))
    stored: Mapped[bool] = mapped_column(Boolean, default=False)
    rights: Mapped[dict[str, Any]] = mapped_column(default=dict)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)


class MediaUrl(Base):
    """Validators of a media URL from its last fetch, so re-crawls skip unchanged media."""

    __tablename__ = "media_urls"
    id: Mapped[int] = mapped_column(primary_key=True)
    url_key: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    sha256: Mapped[str | None] = mapped_column(String(71))
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)


class Match(Base):
    """A use: one work found at one media URL on one page. Seen again, last_seen moves."""

    __tablename__ = "matches"
    __table_args__ = (
        UniqueConstraint("work_id", "page_url_key", "media_url_key"),
        Index("ix_matches_status_work", "status", "work_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    work_id: Mapped[int] = mapped_column(ForeignKey("works.id"), index=True)
    page_url: Mapped[str] = mapped_column(Text)
    page_url_key: Mapped[str] = mapped_column(String(64))
    media_url: Mapped[str] = mapped_column(Text)
    media_url_key: Mapped[str] = mapped_column(String(64))
    domain: Mapped[str] = mapped_column(String(255), index=True)
    media_sha256: Mapped[str | None] = mapped_column(String(71))
    score: Mapped[float] = mapped_column(Float)
    offset_s: Mapped[float | None] = mapped_column(Float)
    region: Mapped[list[Any] | None] = mapped_column(JSON)
    method: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(_enum(MatchStatus), default=MatchStatus.PENDING)
    flags: Mapped[list[Any]] = mapped_column(default=list)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    first_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    last_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))

    work: Mapped[Work] = relationship(lazy="joined")
    captures: Mapped[list[Capture]] = relationship(back_populates="match", lazy="selectin")


class StatusChange(Base):
    """A review decision: who set which status when, and why."""

    __tablename__ = "status_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("matches.id"), index=True)
    old_status: Mapped[str] = mapped_column(String(16))
    new_status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    by: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Capture(Base):
    """Evidence of one use at one time: WARC (+ WACZ, screenshot) blobs, and custody data."""

    __tablename__ = "captures"
    __table_args__ = (UniqueConstraint("match_id", "run_id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    match_id: Mapped[int] = mapped_column(ForeignKey("matches.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    warc_sha256: Mapped[str] = mapped_column(String(71))
    warc_size: Mapped[int] = mapped_column(BigInteger)
    screenshot_sha256: Mapped[str | None] = mapped_column(String(71))
    page_url: Mapped[str] = mapped_column(Text)
    media_url: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime] = mapped_column()
    complete: Mapped[bool] = mapped_column(Boolean, default=True)
    flags: Mapped[list[Any]] = mapped_column(default=list)
    custody: Mapped[dict[str, Any]] = mapped_column(default=dict)  # HOSTILE.md's custody fields
    ledger_seq: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    match: Mapped[Match] = relationship(back_populates="captures")


class LedgerEntry(Base):
    """The append-only evidence ledger: a hash chain of signed entries (Merkle leaves)."""

    __tablename__ = "ledger_entries"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32))  # capture | status | export | licence | ...
    subject: Mapped[str] = mapped_column(String(100), index=True)  # e.g. "capture:<uuid>"
    content: Mapped[dict[str, Any]] = mapped_column()
    content_sha256: Mapped[str] = mapped_column(String(71))
    prev_hash: Mapped[str] = mapped_column(String(71))
    entry_hash: Mapped[str] = mapped_column(String(71), unique=True)
    signature: Mapped[str] = mapped_column(Text)  # base64 Ed25519 over entry_hash
    key_id: Mapped[str] = mapped_column(String(71))
    created_at: Mapped[datetime] = mapped_column()


class Checkpoint(Base):
    """A signed ledger head (tree size + Merkle root), optionally RFC 3161 timestamped."""

    __tablename__ = "checkpoints"
    id: Mapped[int] = mapped_column(primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, unique=True)
    root: Mapped[str] = mapped_column(String(71))
    signature: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str] = mapped_column(String(71))
    created_at: Mapped[datetime] = mapped_column()
    tsa_request: Mapped[bytes | None] = mapped_column(LargeBinary)
    tsa_token: Mapped[bytes | None] = mapped_column(LargeBinary)
    tsa_url: Mapped[str | None] = mapped_column(Text)
    timestamped_at: Mapped[datetime | None] = mapped_column()


class Licence(Base):
    """A licensed use: one work (or the whole catalogue) on a domain and its subdomains."""

    __tablename__ = "licences"
    id: Mapped[int] = mapped_column(primary_key=True)
    work_id: Mapped[int | None] = mapped_column(ForeignKey("works.id"), index=True)
    rightsholder_id: Mapped[int | None] = mapped_column(ForeignKey("rightsholders.id"))
    domain: Mapped[str] = mapped_column(String(255), index=True)
    until: Mapped[date | None] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(200), default="cli")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Account(Base):
    """An API account: a role scoped to rightsholders; only the token's hash is stored."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(_enum(Role))
    token_hash: Mapped[str] = mapped_column(String(71), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()

    rightsholders: Mapped[list[Rightsholder]] = relationship(
        secondary="account_rightsholders", lazy="selectin"
    )


class AccountRightsholder(Base):
    __tablename__ = "account_rightsholders"
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    rightsholder_id: Mapped[int] = mapped_column(ForeignKey("rightsholders.id"), primary_key=True)


class Signal(Base):
    """What a site or a media file said about reuse and AI training, as seen by a run."""

    __tablename__ = "signals"
    __table_args__ = (UniqueConstraint("run_id", "url_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    url_key: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(String(8))  # site | page | media
    data: Mapped[dict[str, Any]] = mapped_column()
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class Lease(Base):
    """A named lease (e.g. 'scheduler'): one holder at a time, renewed before it runs out."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    until: Mapped[datetime] = mapped_column()
