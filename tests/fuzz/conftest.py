"""Fuzzing with Hypothesis: bounded in `make test`, long in `make fuzz` (HYPOTHESIS_PROFILE=fuzz).

Profiles are registered here and applied per test (`profile()`), never loaded globally, so
other rooms' Hypothesis tests keep their own settings. Every module here sets
`pytestmark = pytest.mark.fuzz`, which `make fuzz` selects.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,  # no timed assertions: a slow example is not a failure
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    "print_blob": True,
}
settings.register_profile("rw-quick", max_examples=40, **_COMMON)
settings.register_profile("fuzz", max_examples=3000, **_COMMON)
