"""The Hypothesis settings for this run: `fuzz` under `make fuzz`, small otherwise."""

from __future__ import annotations

import os

from hypothesis import settings


def profile(scale: float = 1.0) -> settings:
    """The active profile, with max_examples scaled for expensive targets."""
    name = "fuzz" if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz" else "rw-quick"
    base = settings.get_profile(name)
    return settings(base, max_examples=max(5, int(base.max_examples * scale)))
