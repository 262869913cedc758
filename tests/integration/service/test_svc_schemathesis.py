"""A8: Schemathesis against /openapi.json, in process (ASGI), with a valid token: no 5xx, and
responses conform to the documented schemas and status codes. Bounded examples per operation."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session, sessionmaker
from svc_world import auth, build_world, make_client

MAX_EXAMPLES = 15
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_openapi_fuzz(session_factory: sessionmaker[Session]) -> None:
    world = build_world(session_factory)
    app, _ = make_client(session_factory, rate_per_minute=100_000)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = auth(world.a.tokens["reviewer"])
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) >= 19
    seen: dict[str, set[int]] = {}
    for operation in operations:

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            seen.setdefault(case.operation.label, set()).add(response.status_code)

        fuzz()
    assert len(seen) == len(operations)
    assert all(code < 500 for codes in seen.values() for code in codes)
    assert 200 in seen["GET /api/works"]  # the token was accepted
    for label in [
        "POST /api/works",
        "POST /api/watches",
        "GET /api/watches/{watch_id}",
        "PATCH /api/watches/{watch_id}",
        "DELETE /api/watches/{watch_id}",
        "POST /api/watches/{watch_id}/runs",
        "DELETE /api/licences/{licence_id}",
    ]:
        assert seen[label], label  # the management routes were fuzzed too
    assert (
        422 in seen["POST /api/matches/{match_id}/status"]
        or 404 in seen["POST /api/matches/{match_id}/status"]
    )
