"""Hamming maths and the 64-bit indexes: multi-index hashing must equal brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fingerprints.hamming import hamming_many, parse_hashes, popcount64
from fingerprints.index import LinearIndex, MultiIndexHashing

u64 = st.integers(min_value=0, max_value=2**64 - 1)


@given(u64, u64)
def test_popcount_matches_binary_string(a: int, b: int) -> None:
    assert popcount64(a ^ b) == bin(a ^ b).count("1")


@given(st.lists(u64, min_size=1, max_size=50), u64)
def test_vectorised_distance_matches_scalar(hashes: list[int], q: int) -> None:
    got = hamming_many(np.asarray(hashes, dtype=np.uint64), q).tolist()
    assert got == [popcount64(h ^ q) for h in hashes]


@given(u64, u64, u64)
def test_hamming_is_a_metric(a: int, b: int, c: int) -> None:
    d = lambda x, y: popcount64(x ^ y)  # noqa: E731
    assert d(a, a) == 0
    assert d(a, b) == d(b, a)
    assert d(a, c) <= d(a, b) + d(b, c)


def _near(base: int, flips: list[int]) -> int:
    for bit in flips:
        base ^= 1 << bit
    return base


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 30), u64), min_size=0, max_size=60),
    u64,
    st.lists(st.lists(st.integers(0, 63), max_size=14), max_size=10),
    st.integers(0, 14),
    st.lists(st.integers(0, 30), max_size=5),
)
@pytest.mark.parametrize("bits", [MultiIndexHashing.FOUR, MultiIndexHashing.THREE])
def test_mih_equals_brute_force(
    bits: tuple[int, ...],
    items: list[tuple[int, int]],
    q: int,
    near: list[list[int]],
    radius: int,
    removed: list[int],
) -> None:
    mih, lin = MultiIndexHashing(bits), LinearIndex()
    entries = items + [(31 + i, _near(q, flips)) for i, flips in enumerate(near)]
    for item, h in entries:
        mih.add(item, [h])
        lin.add(item, [h])
    for item in removed:
        mih.remove(item)
        lin.remove(item)
    assert mih.search(q, radius) == lin.search(q, radius)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 20), u64), min_size=0, max_size=40),
    st.lists(u64, min_size=1, max_size=6),
    st.lists(st.tuples(st.integers(0, 5), st.lists(st.integers(0, 63), max_size=12)), max_size=12),
    st.integers(0, 12),
)
@pytest.mark.parametrize("bits", [MultiIndexHashing.FOUR, MultiIndexHashing.THREE])
def test_mih_search_many_equals_brute_force_per_hash(
    bits: tuple[int, ...],
    items: list[tuple[int, int]],
    queries: list[int],
    near: list[tuple[int, list[int]]],
    radius: int,
) -> None:
    """A query's hashes searched in one pass: each item at its smallest distance from any of
    them, exactly as brute force hash by hash."""
    mih, lin = MultiIndexHashing(bits), LinearIndex()
    entries = items + [
        (21 + i, _near(queries[k % len(queries)], flips)) for i, (k, flips) in enumerate(near)
    ]
    for item, h in entries:
        mih.add(item, [h, h ^ 0xFF])  # several hashes an item, as multi-crop views are
        lin.add(item, [h, h ^ 0xFF])
    expected: dict[int, int] = {}
    for q in queries:
        for item, dist in lin.search(q, radius).items():
            expected[item] = min(dist, expected.get(item, 65))
    assert mih.search_many(queries, radius) == expected


def test_mih_bulk_load_and_incremental_edits() -> None:
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**64 - 1, 5000, dtype=np.uint64, endpoint=True)
    mih, lin = MultiIndexHashing(), LinearIndex()
    mih.add_many(hashes, np.arange(5000, dtype=np.int32))
    lin.add_many = None  # type: ignore[attr-defined]
    for i, h in enumerate(hashes.tolist()):
        lin.add(i, [h])
    mih.add(9999, [int(hashes[0]) ^ 0b111])
    lin.add(9999, [int(hashes[0]) ^ 0b111])
    mih.remove(17)
    lin.remove(17)
    for i in (0, 17, 4999):
        q = int(hashes[i]) ^ (1 << 40)
        assert mih.search(q, 10) == lin.search(q, 10)
    assert len(mih) == 5000


@pytest.mark.parametrize("bits", [MultiIndexHashing.FOUR, MultiIndexHashing.THREE])
def test_mih_memory_per_hash(bits: tuple[int, ...]) -> None:
    mih = MultiIndexHashing(bits)
    mih.add_many(
        np.arange(100_000, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15),
        np.zeros(100_000, np.int32),
    )
    assert mih.nbytes / len(mih) <= 32


def test_three_chunks_only_where_they_probe_no_more_bits_than_four() -> None:
    assert MultiIndexHashing.for_radius(6).bits == MultiIndexHashing.FOUR  # 1 bit vs 2
    assert MultiIndexHashing.for_radius(8).bits == MultiIndexHashing.THREE  # 2 bits either way
    assert MultiIndexHashing.for_radius(10).bits == MultiIndexHashing.FOUR  # 2 bits vs 3


def test_parse_hashes() -> None:
    assert parse_hashes("00000000000000ff 8000000000000000") == [255, 1 << 63]
    assert parse_hashes("") == []
