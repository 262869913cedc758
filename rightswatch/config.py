"""Settings from the environment: one frozen object, read once per process.

Imports nothing of ours at load time, so every package may read it. Every variable is
documented in the README; the defaults are the embedded ones (SQLite and a local blob store
under the home).
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from rightswatch import __version__

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    allow_networks: tuple[Network, ...] = ()
    broker_url: str | None = None
    blob_url: str | None = None  # s3://bucket/prefix; None: the local store under home
    user_agent: str = f"rightswatch/{__version__} (+https://rightswatch.invalid/bot)"
    contact_url: str = "https://rightswatch.invalid/bot"
    sender_name: str = "rightswatch user"
    sender_contact: str = "rights@example.invalid"
    tsa_url: str | None = None
    default_rightsholder: str = "default"
    max_media_bytes: int = 50 * 1024 * 1024
    thresholds: Mapping[str, float] = field(default_factory=dict)
    rate_card: Path | None = None
    # The API's per-account request budget, shared by every `serve` process on one Redis.
    rate_limit_per_minute: int = 600
    rate_limit_storage: str = "memory://"  # or redis://host:port/N
    max_upload_bytes: int = 64 * 1024 * 1024  # POST /api/works: one original per request
    screenshots: str = "auto"  # "auto": with /usr/bin/chromium; "off": never
    # Audio works up to which the matcher also searches peak landmarks (None: its default).
    landmark_max_works: int | None = None

    @property
    def blob_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def key_path(self) -> Path:
        return self.home / "signing-key.pem"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def parse_networks(value: str) -> tuple[Network, ...]:
    """Parse RIGHTSWATCH_ALLOW_NETWORKS: comma-separated CIDRs, refusing 'allow everything'."""
    nets: list[Network] = []
    for raw in (part.strip() for part in value.split(",")):
        if not raw:
            continue
        try:
            net = ipaddress.ip_network(raw, strict=False)
        except ValueError as exc:
            raise ConfigError(
                f"RIGHTSWATCH_ALLOW_NETWORKS: {raw!r} is not a CIDR ({exc})"
            ) from None
        if net.prefixlen == 0:
            raise ConfigError(
                f"RIGHTSWATCH_ALLOW_NETWORKS: {raw!r} would allow every address; name the ranges"
            )
        nets.append(net)
    return tuple(nets)


def parse_thresholds(value: str) -> dict[str, float]:
    """RIGHTSWATCH_THRESHOLDS: 'type=value,type=value' overrides of the matcher's defaults."""
    out: dict[str, float] = {}
    for raw in (part.strip() for part in value.split(",")):
        if not raw:
            continue
        name, sep, number = raw.partition("=")
        try:
            if not sep:
                raise ValueError("expected type=value")
            threshold = float(number)
            if not math.isfinite(threshold):
                raise ValueError("not a finite number")
        except ValueError as exc:
            raise ConfigError(f"RIGHTSWATCH_THRESHOLDS: {raw!r}: {exc}") from None
        out[name.strip()] = threshold
    if out:
        # Imported only here: the matcher pulls in numpy and OpenCV, which a setting left
        # empty should not cost. A misspelt type would otherwise leave its default in force.
        from fingerprints.matcher import DEFAULT_THRESHOLDS

        unknown = sorted(set(out) - set(DEFAULT_THRESHOLDS))
        if unknown:
            raise ConfigError(
                f"RIGHTSWATCH_THRESHOLDS: unknown type {unknown[0]!r} "
                f"(known: {', '.join(DEFAULT_THRESHOLDS)})"
            )
    return out


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not a whole number") from None
    if value <= 0:
        raise ConfigError(f"{name}: must be positive, got {value}")
    return value


SCREENSHOT_MODES = ("auto", "off")


RATE_LIMIT_SCHEMES = ("memory://", "redis://", "rediss://", "redis+unix://")


def parse_rate_storage(value: str) -> str:
    """RIGHTSWATCH_RATE_LIMIT_STORAGE: memory:// (this process) or a Redis URL (shared)."""
    value = value.strip() or Settings.rate_limit_storage
    if not value.startswith(RATE_LIMIT_SCHEMES):
        raise ConfigError(
            f"RIGHTSWATCH_RATE_LIMIT_STORAGE: {value.split('://')[0][:40]!r}: use memory:// or "
            "redis://host:port/db"
        )
    return value


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from an environment mapping (os.environ by default)."""
    env = os.environ if env is None else env
    home = Path(env.get("RIGHTSWATCH_HOME") or "./rightswatch-data").expanduser().absolute()
    url = env.get("RIGHTSWATCH_DATABASE_URL") or f"sqlite:///{home / 'rightswatch.db'}"
    rate_card = env.get("RIGHTSWATCH_RATE_CARD")
    ua = env.get("RIGHTSWATCH_USER_AGENT")
    contact = env.get("RIGHTSWATCH_CONTACT_URL") or Settings.contact_url
    shots = (env.get("RIGHTSWATCH_SCREENSHOTS") or "auto").strip().lower()
    if shots not in SCREENSHOT_MODES:
        raise ConfigError(f"RIGHTSWATCH_SCREENSHOTS: {shots[:40]!r} is not one of auto, off")
    return Settings(
        home=home,
        database_url=url,
        allow_networks=parse_networks(env.get("RIGHTSWATCH_ALLOW_NETWORKS", "")),
        broker_url=env.get("RIGHTSWATCH_BROKER_URL") or None,
        blob_url=env.get("RIGHTSWATCH_BLOB_URL") or None,
        user_agent=ua or f"rightswatch/{__version__} (+{contact})",
        contact_url=contact,
        sender_name=env.get("RIGHTSWATCH_SENDER_NAME") or Settings.sender_name,
        sender_contact=env.get("RIGHTSWATCH_SENDER_CONTACT") or Settings.sender_contact,
        tsa_url=env.get("RIGHTSWATCH_TSA_URL") or None,
        default_rightsholder=env.get("RIGHTSWATCH_DEFAULT_RIGHTSHOLDER") or "default",
        max_media_bytes=_int(env, "RIGHTSWATCH_MAX_MEDIA_BYTES", Settings.max_media_bytes),
        thresholds=parse_thresholds(env.get("RIGHTSWATCH_THRESHOLDS", "")),
        rate_card=Path(rate_card) if rate_card else None,
        rate_limit_per_minute=_int(
            env, "RIGHTSWATCH_RATE_LIMIT_PER_MINUTE", Settings.rate_limit_per_minute
        ),
        rate_limit_storage=parse_rate_storage(env.get("RIGHTSWATCH_RATE_LIMIT_STORAGE", "")),
        max_upload_bytes=_int(env, "RIGHTSWATCH_MAX_UPLOAD_BYTES", Settings.max_upload_bytes),
        screenshots=shots,
        landmark_max_works=_int(env, "RIGHTSWATCH_LANDMARK_MAX_WORKS", 0) or None,
    )


@cache
def get_settings() -> Settings:
    """The process's settings; tests build their own with from_env({...})."""
    return from_env()
