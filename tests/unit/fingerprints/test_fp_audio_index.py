"""The compact audio inverted index: its votes must equal brute-force key matching, through
additions, removals, re-additions, delta segments and merges."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fingerprints import audiomatch
from fingerprints.audiomatch import SubFingerprintIndex, active_mask

# A small alphabet so that keys repeat: many postings per key, many works per key.
word = st.sampled_from([0, 1, 7, 0xFFFF, 0xF0F0F0F0, 2**32 - 1, 0x12345678, 0x0F0F0F0F])
track = st.lists(word, min_size=1, max_size=40)


def brute_votes(
    refs: dict[int, list[int]], query: list[int], scale: float
) -> dict[tuple[int, int], int]:
    q = np.asarray(query, np.uint32)
    votes: Counter[tuple[int, int]] = Counter()
    for i in np.flatnonzero(active_mask(q)):
        for work, raw in refs.items():
            r = np.asarray(raw, np.uint32)
            indexed = active_mask(r) | (np.arange(r.size) == 0)
            for j in range(min(r.size, audiomatch.MAX_FRAMES)):
                if indexed[j] and r[j] == q[i]:
                    votes[(work, (j - int(np.rint(i * scale))) >> 1)] += 1
    return dict(votes)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 12), track), max_size=25),
    st.lists(st.integers(0, 12), max_size=6),
    track,
    st.sampled_from([1.0, 0.98, 1.02, 2 ** (1 / 12)]),
    st.sampled_from([0, 8, 10**6]),
    st.sampled_from([0, 2, 24]),
)
def test_index_votes_equal_brute_force(
    ops: list[tuple[int, list[int]]],
    removed: list[int],
    query: list[int],
    scale: float,
    min_merge: int,
    bucket_bits: int,
) -> None:
    mp = pytest.MonkeyPatch()
    mp.setattr(audiomatch, "MIN_MERGE", min_merge)  # 0: merge on every refresh
    mp.setattr(audiomatch, "BUCKET_BITS", bucket_bits)  # 0: one bucket; 2: crowded buckets
    try:
        index = SubFingerprintIndex()
        refs: dict[int, list[int]] = {}
        for k, (work, raw) in enumerate(ops):
            index.add(work, np.asarray(raw, np.uint32))
            refs[work] = raw
            if k % 4 == 3:  # refresh mid-way so later edits hit a built index
                index.votes(np.asarray(query, np.uint32), scale)
        for work in removed:
            index.remove(work)
            refs.pop(work, None)
        got = index.votes(np.asarray(query, np.uint32), scale)
        assert got == brute_votes(refs, query, scale)
        assert len(index) == len(refs)
    finally:
        mp.undo()


def test_renumbering_keeps_the_live_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SubFingerprintIndex, "max_works", property(lambda self: 4))
    index = SubFingerprintIndex()
    raw = np.arange(1, 40, dtype=np.uint32) * np.uint32(0x01010101)
    for _k in range(10):  # re-adding the same work burns an ordinal each time
        index.add(1, raw)
    index.add(2, raw[::-1].copy())
    assert len(index) == 2
    assert index._next <= 4  # renumbered, not grown past the ordinals there are
    assert [al.work_id for al in index.search(raw[5:30])][:1] == [1]


def test_an_entry_keeps_only_the_bits_its_bucket_does_not_say() -> None:
    """A posting is its 4-byte word and its key's remainder under the bucket's bits, with a
    table slot per 2-4 postings: 200,000 32-bit keys keep 2 bytes each (7.3 an entry), and
    20-bit keys (peak pairs) 1 byte; from ~34M 32-bit keys on, 1 byte too."""
    index = SubFingerprintIndex()
    rng = np.random.default_rng(3)
    for w in range(40):
        index.add(w, rng.integers(0, 2**32, 5000, dtype=np.uint32))
    assert index.search(index.ref(7)[100:200])[0].work_id == 7
    assert index.entries == 200_000
    assert 6 * index.entries < index.nbytes <= 8 * index.entries
    narrow = np.sort(rng.integers(0, 1 << 20, 400_000, dtype=np.uint32))
    seg = audiomatch.Segment(narrow, np.zeros(narrow.size, np.uint32))
    assert seg.rem.itemsize == 1
    assert seg.nbytes <= 7 * narrow.size


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 2**32 - 1) | word, max_size=300),
    st.lists(st.integers(0, 2**32 - 1) | word, min_size=1, max_size=30),
    st.sampled_from([0, 1, 3, 24]),
    st.sampled_from([32, 20, 2]),
)
def test_bucket_lookup_equals_binary_search(
    keys: list[int], q: list[int], bucket_bits: int, width: int
) -> None:
    """Whatever the bucket table's size and the keys' width (the queries keep all 32 bits, so
    some lie past every key)."""
    mp = pytest.MonkeyPatch()
    mp.setattr(audiomatch, "BUCKET_BITS", bucket_bits)  # 0: one bucket; 1: two crowded buckets
    try:
        k = np.sort(np.asarray(keys, np.uint32) & np.uint32((1 << width) - 1))
        seg = audiomatch.Segment(k, np.zeros(k.size, np.uint32))
        query = np.asarray(q, np.uint32)
        lo, hi = seg.lookup(query)
        assert lo.tolist() == np.searchsorted(k, query, side="left").tolist()
        assert hi.tolist() == np.searchsorted(k, query, side="right").tolist()
        assert seg.keys.tolist() == k.tolist()  # what a merge rebuilds from
    finally:
        mp.undo()


def test_narrow_keys_fill_every_bucket() -> None:
    """20-bit keys (peak-pair hashes) are bucketed by their own top bits: buckets of a few
    keys, not all of them in the buckets of a 32-bit key's first 12 bits."""
    keys = np.sort(np.random.default_rng(5).integers(0, 1 << 20, 400_000, dtype=np.uint32))
    seg = audiomatch.Segment(keys, np.zeros(keys.size, np.uint32))
    assert seg.starts is not None
    assert int(np.diff(seg.starts).max()) < 40  # ~6 a bucket on average


def test_alike_works_are_put_forward_by_work_id_whatever_the_order_of_edits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two works with one print tie on every vote: the lower work id is put forward, whether
    it was added first or re-added last (a re-added work takes a new ordinal), so an edited
    index verifies what a fresh one would."""
    monkeypatch.setattr(audiomatch, "TOP_CANDIDATES", 1)
    raw = np.random.default_rng(5).integers(0, 2**32, 300, dtype=np.uint32)
    for order in ([1, 2], [2, 1], [1, 2, 1]):
        index = SubFingerprintIndex()
        for work in order:
            index.add(work, raw)
        assert [(w, off) for w, off, _ in index.candidates(raw[20:120])] == [(1, 20)], order
