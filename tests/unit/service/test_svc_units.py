"""No I/O: the rate limiter, the body cap, crawl exit descriptions, schedules, session cookies."""

from __future__ import annotations

import signal
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

import scheduler
from evidence.accounts import Principal, hash_token, new_token, parse_role
from evidence.errors import BadInput
from evidence.models import Role, Watch
from evidence.runs import backoff_s
from rightswatch.api.guards import BodyLimit, RateLimiter
from rightswatch.api.session import WebSession, _serializer, csrf_ok


def test_rate_limiter_moving_window() -> None:
    limiter = RateLimiter(rate_per_minute=3)
    assert [limiter.check("a") for _ in range(3)] == [None, None, None]
    wait = limiter.check("a")
    assert wait is not None
    assert 0 < wait <= 60  # until the oldest of the three leaves the minute
    assert RateLimiter.retry_after(wait) in {str(n) for n in range(1, 61)}
    assert limiter.check("b") is None
    assert RateLimiter.retry_after(0.0) == "1"


@pytest.mark.parametrize("url", ["ftp://x/", "redis", "memcached://127.0.0.1:11211", ""])
def test_rate_limit_storage_setting(url: str) -> None:
    from rightswatch.config import ConfigError, from_env

    env = {"RIGHTSWATCH_HOME": "/nonexistent", "RIGHTSWATCH_RATE_LIMIT_STORAGE": url}
    if url:
        with pytest.raises(ConfigError, match="RIGHTSWATCH_RATE_LIMIT_STORAGE"):
            from_env(env)
    else:
        assert from_env(env).rate_limit_storage == "memory://"
    good = from_env({**env, "RIGHTSWATCH_RATE_LIMIT_STORAGE": "redis://127.0.0.1:6379/3"})
    assert good.rate_limit_storage == "redis://127.0.0.1:6379/3"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("image_phassh=4", "unknown type 'image_phassh'"),  # a typo must not leave 8 in force
        ("image_phash=nan", "not a finite number"),
        ("image_phash", "expected type=value"),
        ("image_orb=many", "could not convert"),
    ],
)
def test_thresholds_setting_refuses_what_it_cannot_apply(value: str, message: str) -> None:
    from rightswatch.config import ConfigError, from_env

    env = {"RIGHTSWATCH_HOME": "/nonexistent", "RIGHTSWATCH_THRESHOLDS": value}
    with pytest.raises(ConfigError, match=f"RIGHTSWATCH_THRESHOLDS: .*{message}"):
        from_env(env)
    good = from_env({**env, "RIGHTSWATCH_THRESHOLDS": " image_phash=4 , audio_landmarks=60 "})
    assert good.thresholds == {"image_phash": 4.0, "audio_landmarks": 60.0}


def test_matcher_refuses_unknown_threshold_types() -> None:
    from fingerprints import Matcher

    with pytest.raises(ValueError, match="unknown threshold types: image_phassh"):
        Matcher({"image_phassh": 4})
    assert Matcher({"image_phash": 4}).thresholds["image_phash"] == 4


@pytest.mark.parametrize("value", ["0", "-5", "many", "1e5"])
def test_landmark_cap_setting_refuses_what_is_not_a_positive_whole_number(value: str) -> None:
    from rightswatch.config import ConfigError, from_env

    env = {"RIGHTSWATCH_HOME": "/nonexistent", "RIGHTSWATCH_LANDMARK_MAX_WORKS": value}
    with pytest.raises(ConfigError, match="RIGHTSWATCH_LANDMARK_MAX_WORKS"):
        from_env(env)


def test_landmark_cap_setting_reaches_the_matcher() -> None:
    """RIGHTSWATCH_LANDMARK_MAX_WORKS reaches the matcher; unset, its own default applies."""
    from evidence.matching import CatalogueIndex
    from fingerprints.matcher import LANDMARK_MAX_WORKS
    from rightswatch.config import from_env

    env = {"RIGHTSWATCH_HOME": "/nonexistent", "RIGHTSWATCH_LANDMARK_MAX_WORKS": "100000"}
    unset = from_env({"RIGHTSWATCH_HOME": "/nonexistent"})
    raised = from_env(env)
    assert (unset.landmark_max_works, raised.landmark_max_works) == (None, 100_000)
    index = CatalogueIndex(None, unset.landmark_max_works)
    assert index.matcher.landmark_max_works == LANDMARK_MAX_WORKS
    assert CatalogueIndex(None, raised.landmark_max_works).matcher.landmark_max_works == 100_000


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("photo.png", "photo.png"),
        ("../../etc/passwd", "passwd"),
        ("C:\\x\\evil.png", "evil.png"),
        ("..", "upload"),
        ("a\x00b\x1b.png", "ab.png"),
        (None, "upload"),
        ("x" * 500, "x" * 200),
    ],
)
def test_upload_names(name: str | None, shown: str) -> None:
    from rightswatch.api.manage import _upload_name

    assert _upload_name(name) == shown


def test_body_limit_counts_chunked_bodies() -> None:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    client = TestClient(BodyLimit(app, max_bytes=100))
    assert client.post("/echo", content=b"x" * 100).json() == {"size": 100}
    assert client.post("/echo", content=b"x" * 101).status_code == 413
    chunked = client.post("/echo", content=iter([b"x" * 60, b"x" * 60]))
    assert chunked.status_code == 413
    assert chunked.json()["message"].startswith("request body larger")
    assert client.post("/echo", content=iter([b"x" * 40, b"x" * 40])).json() == {"size": 80}
    # A route that takes a file has its own, larger cap; every other route keeps the small one.
    uploads = TestClient(BodyLimit(app, max_bytes=100, uploads={("POST", "/echo"): 1000}))
    assert uploads.post("/echo", content=b"x" * 900).json() == {"size": 900}
    assert uploads.post("/echo", content=iter([b"x" * 600, b"x" * 600])).status_code == 413
    assert uploads.put("/echo", content=b"x" * 101).status_code == 413


def test_describe_exit() -> None:
    assert scheduler.describe_exit(-signal.SIGKILL) == "crawl process killed by SIGKILL"
    assert scheduler.describe_exit(3) == "crawl process exited with status 3"


def test_backoff_grows_and_caps() -> None:
    assert [backoff_s(n) for n in (1, 2, 3)] == [60, 120, 240]
    assert backoff_s(50) == 3600


def test_triggers() -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    every = Watch(id=1, name="w", seeds=[], every_s=600, created_at=created)
    fire = scheduler.trigger_for(every).get_next_fire_time(
        None, datetime(2026, 1, 1, 0, 7, tzinfo=UTC)
    )
    assert fire == datetime(2026, 1, 1, 0, 10, tzinfo=UTC)  # anchored at creation
    cron = Watch(id=2, name="c", seeds=[], cron="30 2 * * *", created_at=created)
    assert scheduler.trigger_for(cron).get_next_fire_time(None, created) == datetime(
        2026, 1, 1, 2, 30, tzinfo=UTC
    )
    with pytest.raises(BadInput, match="bad cron"):
        scheduler.trigger_for(Watch(id=3, name="b", seeds=[], cron="every day", created_at=created))
    with pytest.raises(BadInput, match="no schedule"):
        scheduler.trigger_for(Watch(id=4, name="n", seeds=[], created_at=created))


def test_tokens_and_roles() -> None:
    a, b = new_token(), new_token()
    assert a != b
    assert len(a) == 3 + 43
    assert hash_token(a).startswith("sha256:")
    assert a not in hash_token(a)
    assert parse_role("Admin") is Role.ADMIN
    with pytest.raises(BadInput):
        parse_role("root")


def test_cookie_signature_and_csrf() -> None:
    secret = b"s" * 32
    value = _serializer(secret).dumps({"a": 1, "f": "x", "c": "tok"})
    assert _serializer(secret).loads(value)["c"] == "tok"
    with pytest.raises(Exception, match="Signature"):
        _serializer(b"t" * 32).loads(value)
    web = WebSession(Principal(1, "n", Role.REVIEWER, frozenset()), "tok")
    assert csrf_ok(web, "tok")
    assert not csrf_ok(web, "")
    assert not csrf_ok(web, None)
    assert not csrf_ok(web, "tok2")
