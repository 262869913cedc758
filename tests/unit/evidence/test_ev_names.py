"""Pack member names are safe whatever goes in (A6): relative, no '..', no control characters,
at most 200 characters; verify's own name check agrees."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evidence.errors import BadInput
from evidence.pack import safe_name
from evidence.verify import _name_problem


@given(st.text(min_size=1, max_size=600))
def test_safe_name_is_always_safe(raw: str) -> None:
    try:
        name = safe_name(raw)
    except BadInput:
        return
    assert _name_problem(name) is None
    assert len(name) <= 200
    assert not name.startswith("/")
    assert ".." not in name.split("/")


@pytest.mark.parametrize(
    "raw", ["../../x", "/abs/x", "C:\\x", "a\x00b", "\u202eevil.exe", "x" * 500, "./.hidden"]
)
def test_hostile_names(raw: str) -> None:
    name = safe_name(raw)
    assert _name_problem(name) is None
    assert name.isascii()
