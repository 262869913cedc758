"""What the spider hands to the pipelines: one downloaded (or remembered) media file and the
pages that use it, with the raw exchanges the evidence recorder needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evidence.material import Exchange


@dataclass
class PageRef:
    """A page whose media is being processed; the page is done when `pending` reaches zero."""

    url: str
    key: str
    depth: int
    exchange: Exchange
    pending: int = 0
    parsed: bool = False
    matches: int = 0


@dataclass
class MediaItem:
    """One media URL of a run: fetched once, recorded for every page that embeds it."""

    url: str
    key: str
    exchange: Exchange | None  # None: remembered from earlier in the run
    kind_hint: str | None = None
    source: str = ""
    sha256: str | None = None
    mime: str | None = None
    kind: str | None = None
    prints: Any = None  # fingerprints.Prints
    hits: list[Any] = field(default_factory=list)  # [(WorkRef, Hit)]
    rights: dict[str, Any] | None = None  # rights notices of a matched file (evidence.rightsmeta)
    skip_reason: str | None = None  # not media, unchanged, too large, undecodable...
    error: str | None = None
    unchanged: bool = False
    pages: list[PageRef] = field(default_factory=list)


@dataclass
class CrawlConfig:
    """A run's scope and limits, as stored in `runs.config` (and hashed into config_sha256)."""

    seeds: list[str]
    allow_domains: list[str]
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    max_depth: int = 3
    max_pages: int = 1000
    render_js: bool = False
    ignore_robots: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CrawlConfig:
        return cls(
            seeds=list(data["seeds"]),
            allow_domains=list(data.get("allow_domains") or []),
            include=list(data.get("include") or []),
            exclude=list(data.get("exclude") or []),
            max_depth=int(data.get("max_depth", 3)),
            max_pages=int(data.get("max_pages", 1000)),
            render_js=bool(data.get("render_js")),
            ignore_robots=bool(data.get("ignore_robots")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "seeds": self.seeds,
            "allow_domains": self.allow_domains,
            "include": self.include,
            "exclude": self.exclude,
            "max_depth": self.max_depth,
            "max_pages": self.max_pages,
            "render_js": self.render_js,
            "ignore_robots": self.ignore_robots,
        }


@dataclass
class RunContext:
    """What one run's spider and pipelines share (passed to the spider, never deep-copied)."""

    run_id: int
    config: CrawlConfig
    factory: Any  # sessionmaker[Session]
    db: Any  # crawler.frontier.DbThread
    store: Any  # evidence.store.BlobStore
    index: Any  # evidence.matching.CatalogueIndex
    max_media_bytes: int
    conditional: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    previous_sha: dict[str, str] = field(default_factory=dict)
    capture: dict[str, Any] = field(default_factory=dict)  # user agent, versions, config hash
    robots: Any = None  # crawler.progress.RobotsLog
    # sha256 -> (prints, reason) of the files fingerprinted in this run; (None, None) once a
    # file matched nothing: its prints are dropped, so memory stays flat with distinct files.
    fingerprinted: dict[str, tuple[Any, str | None]] = field(default_factory=dict)
