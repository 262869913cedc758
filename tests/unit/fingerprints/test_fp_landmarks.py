"""Peak-pair landmarks: the stored format, the pair maths, the index against brute force, and
the damage they are there for (speech over the music, a 5 s excerpt, a pitch shift)."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest
from fpsynth import RATE, encode_audio, make_music
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from fingerprints import audiomatch
from fingerprints import landmarks as lm
from fingerprints.audio import SAMPLE_RATE, AudioChromaprint, AudioChromaprintBand, decode_audio
from fingerprints.base import MediaKind
from fingerprints.matcher import (
    CONTRAST,
    CONTRAST_FLOOR,
    CONTRAST_RANK,
    SHIFTED,
    Matcher,
    _background,
)
from fingerprints.prints import fingerprint_query, fingerprint_work

CHROMAPRINT_KEYS = (AudioChromaprint.name, SHIFTED, AudioChromaprintBand.name)

peak_lists = st.lists(
    st.tuples(st.integers(0, 30_000), st.floats(0, lm.LOG_MAX, allow_nan=False)),
    min_size=0,
    max_size=200,
).map(lambda ps: sorted(ps))


def _arrays(ps: list[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([p[0] for p in ps], np.int64), np.array([p[1] for p in ps], np.float32)


@given(peak_lists)
def test_peaks_round_trip_within_storage_precision(ps: list[tuple[int, float]]) -> None:
    t, q = _arrays(ps)
    t2, q2 = lm.decode_peaks(lm.encode_peaks(t, q))
    assert np.array_equal(t2, t)
    assert np.all(np.abs(q2 - q) <= 0.5 / lm.Q_SCALE + 1e-6)


@given(peak_lists, st.data())
def test_weak_marks_round_trip_and_leave_a_works_value_as_it_was(
    ps: list[tuple[int, float]], data: st.DataObject
) -> None:
    t, q = _arrays(ps)
    weak = np.array(data.draw(st.lists(st.booleans(), min_size=t.size, max_size=t.size)), bool)
    t2, q2, strong = lm.decode_ranked_peaks(lm.encode_peaks(t, q, weak))
    assert np.array_equal(t2, t)
    assert np.all(np.abs(q2 - q) <= 0.5 / lm.Q_SCALE + 1e-6)
    assert np.array_equal(strong, ~weak)
    assert lm.encode_peaks(t, q, np.zeros(t.size, bool)) == lm.encode_peaks(t, q)


def test_a_querys_strong_peaks_are_what_a_sparser_print_keeps() -> None:
    samples = decode_audio(encode_audio(make_music(12, 20.0), "mp3"))
    t, q, strong = lm.decode_ranked_peaks(lm.AudioLandmarks.query_from_samples(samples))
    t24, q24 = lm.decode_peaks(lm.encode_peaks(*lm.peaks(samples, lm.STRONG_PER_S)))
    assert 0 < strong.sum() < t.size
    assert np.array_equal(t[strong], t24)
    assert np.array_equal(q[strong], q24)


def test_shifted_variants_draw_on_the_strong_peaks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past CANDIDATES works the triplets choose whose pairs are counted: a copy a semitone up
    is put forward by its strong peaks; the same peaks marked weak are not tried shifted (the
    unshifted triplets take every peak, strong or weak)."""
    monkeypatch.setattr(lm, "CANDIDATES", 1)
    rng = np.random.default_rng(11)
    index, works = lm.LandmarkIndex(), {}
    for work_id in range(3):
        t = np.sort(rng.integers(0, 1500, 250))
        works[work_id] = t, rng.uniform(2, lm.LOG_MAX - 2, 250).astype(np.float32)
        index.add(work_id, *works[work_id])
    t, q = works[1]
    inside = (t >= 300) & (t < 700)
    qt, strong = t[inside] - 300, np.ones(inside.sum(), bool)
    assert [h.work_id for h in index.search(qt, q[inside], ~strong)][:1] == [1]
    assert [h.work_id for h in index.search(qt, q[inside] + 2.0, strong)][:1] == [1]
    assert index.search(qt, q[inside] + 2.0, ~strong) == []


@given(peak_lists, st.integers(1, 12))
def test_pairs_respect_the_target_zone_and_fan_out(ps: list[tuple[int, float]], fan: int) -> None:
    t, q = _arrays(ps)
    a, b, ta, dt = lm.pairs(t, q, fan)
    assert np.all((dt >= 1) & (dt <= lm.DT_MAX))
    assert np.all(np.abs(q[b] - q[a]) <= lm.DQ_MAX)
    assert np.array_equal(ta, t[a])
    assert np.array_equal(dt, t[b] - t[a])
    assert all(n <= fan for n in Counter(a.tolist()).values())
    # Partners are the nearest later peaks in the zone: nothing skipped between them.
    for anchor, n in Counter(a.tolist()).items():
        if n < fan:
            later = [
                j
                for j in range(anchor + 1, min(t.size, anchor + 4 * fan + 1))
                if 1 <= t[j] - t[anchor] <= lm.DT_MAX and abs(q[j] - q[anchor]) <= lm.DQ_MAX
            ]
            assert len(later) == n


@given(peak_lists, st.integers(2, 8))
def test_triplets_are_every_two_partners_of_an_anchor(
    ps: list[tuple[int, float]], fan: int
) -> None:
    t, q = _arrays(ps)
    a, b, _ta, _dt = lm.pairs(t, q, fan)
    partners: dict[int, list[int]] = {}
    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        partners.setdefault(x, []).append(y)
    expected = sorted(
        (x, ys[i], ys[j])
        for x, ys in partners.items()
        for i in range(len(ys))
        for j in range(i + 1, len(ys))
    )
    ta, tb, tc = lm.triplets(t, q, fan)
    assert sorted(zip(ta.tolist(), tb.tolist(), tc.tolist(), strict=True)) == expected


triplet_fields = st.tuples(  # anchor pitch, both intervals, both gaps (as `triplets` forms them)
    st.integers(0, lm.LOG_MAX),
    st.integers(-lm.DQ_MAX, lm.DQ_MAX),
    st.integers(-lm.DQ_MAX, lm.DQ_MAX),
    st.integers(1, lm.DT_MAX),
    st.integers(1, lm.DT_MAX),
).map(lambda f: (*f[:3], min(f[3:]), max(f[3:])))


def _one_triplet(f: tuple[int, int, int, int, int], shift: int = 0) -> int:
    qa, d1, d2, t1, t2 = f
    t = np.array([0, t1, t2], np.int64)
    q = np.array([qa, qa + d1, qa + d2], np.float32) + shift
    anchor, first, second = np.array([0]), np.array([1]), np.array([2])
    return int(lm.triplet_hashes(t, q, anchor, first, second, float(shift))[0])


@given(triplet_fields, triplet_fields)
def test_triplet_hashes_tell_every_two_triplets_apart(
    f: tuple[int, int, int, int, int], g: tuple[int, int, int, int, int]
) -> None:
    """The scrambling is one-to-one: different pitches or gaps never share a bucket key."""
    assert (_one_triplet(f) == _one_triplet(g)) == (f == g)


pair_fields = st.tuples(  # anchor pitch, interval, gap (as `pairs` forms them)
    st.integers(0, lm.LOG_MAX), st.integers(-lm.DQ_MAX, lm.DQ_MAX), st.integers(1, lm.DT_MAX)
)


def _one_pair(f: tuple[int, int, int]) -> int:
    qa, dq, dt = f
    q = np.array([qa, qa + dq], np.float32)
    return int(lm.hashes(q, np.array([0]), np.array([1]), np.array([dt]))[0])


@given(pair_fields, pair_fields)
def test_pair_hashes_tell_every_two_pairs_apart_in_20_bits(
    f: tuple[int, int, int], g: tuple[int, int, int]
) -> None:
    """Scrambled within 20 bits (a pair's votes are packed beside them) and one-to-one."""
    assert _one_pair(f) <= lm.PAIR_MASK
    assert (_one_pair(f) == _one_pair(g)) == (f == g)


@given(triplet_fields, st.integers(-6, 6))
def test_a_triplets_hash_undoes_a_pitch_shift(f: tuple[int, int, int, int, int], k: int) -> None:
    assume(0 <= f[0] + k <= lm.LOG_MAX)
    assert _one_triplet(f, k) == _one_triplet(f)


def _random_work(seed: int, seconds: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(seconds * lm.PEAKS_PER_S["work"])
    t = np.sort(rng.integers(0, int(seconds / lm.FRAME_S), n))
    return t, rng.uniform(0, lm.LOG_MAX, n).astype(np.float32)


def _excerpt(t: np.ndarray, q: np.ndarray, start: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """10 s of a work: 70 % of its peaks among as many random ones."""
    rng = np.random.default_rng(seed)
    inside = (t >= start) & (t < start + int(10 / lm.FRAME_S)) & (rng.random(t.size) < 0.7)
    et, eq = _random_work(seed + 1, 10.0)
    tt = np.concatenate([t[inside] - start, et])
    order = np.argsort(tt, kind="stable")
    return tt[order], np.concatenate([q[inside], eq])[order]


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1))
@example(108854731)  # offsets 499 and 500 tie; 499's own votes made the cut among 4 works only
def test_triplet_stage_keeps_what_pair_voting_alone_finds(seed: int) -> None:
    """Among 60 works, with 4 candidates put forward by the triplets, the planted work is
    found with the very votes and offset that pair voting over every work gives."""
    index = lm.LandmarkIndex()
    for work_id in range(60):
        index.add(work_id, *_random_work(seed + work_id))
    target = seed % 60
    query = _excerpt(*_random_work(seed + target), 500, seed)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lm, "CANDIDATES", 60)  # every work a candidate: pair voting alone
        everything = {h.work_id: h for h in index.search(*query)}
        mp.setattr(lm, "CANDIDATES", 4)
        staged = index.search(*query)
    hit, alone = staged[0], everything[target]
    assert (hit.work_id, hit.offset, hit.votes) == (target, alone.offset, alone.votes)
    assert abs(hit.offset - 500) <= 2
    # The background (the work's best other alignment, bounded by the fewest votes among the
    # best-voted cells when they leave it out) depends on the cells the other works bring.
    assert hit.background * 4 < hit.votes


def test_a_small_catalogue_skips_the_triplet_stage() -> None:
    """With no more works than CANDIDATES, every work is a candidate: each is still found,
    and no triplet posting is built (they would cost memory and a refresh for nothing)."""
    index = lm.LandmarkIndex()
    works = {w: _random_work(200 + w) for w in range(lm.CANDIDATES)}
    for w, peaks in works.items():
        index.add(w, *peaks)
    for w, (t, q) in works.items():
        hit = index.search(*_excerpt(t, q, 300, w))[0]
        assert (hit.work_id, abs(hit.offset - 300) <= 2) == (w, True)
    assert index.entries == 0
    index.add(lm.CANDIDATES, *_random_work(200 + lm.CANDIDATES))  # one more: triplets it is
    t, q = works[3]
    assert index.search(*_excerpt(t, q, 300, 3))[0].work_id == 3
    assert index.entries > 0


def test_an_excerpt_inside_a_long_file_is_put_forward_by_its_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Triplets vote per 20 s window of the query, as pairs do: a work heard faintly all along
    a 4-minute file (30 % of its peaks) lines up more triplets over the whole file than a 10 s
    excerpt of another work does, but far fewer in any one window."""
    monkeypatch.setattr(lm, "CANDIDATES", 1)
    index = lm.LandmarkIndex()
    works = {w: _random_work(300 + w, 240.0) for w in range(40)}
    for w, peaks in works.items():
        index.add(w, *peaks)
    faint_t, faint_q = works[5]
    faint = np.random.default_rng(5).random(faint_t.size) < 0.3
    excerpt_t, excerpt_q = _excerpt(*works[9], 2000, 9)  # work 9 from its frame 2000 ...
    at = 5000  # ... placed at the file's frame 5000 (116 s)
    t = np.concatenate([faint_t[faint], excerpt_t + at])
    q = np.concatenate([faint_q[faint], excerpt_q])
    order = np.argsort(t, kind="stable")
    hit = index.search(t[order], q[order])[0]
    assert (hit.work_id, abs(hit.offset - (2000 - at)) <= 2) == (9, True)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 9), st.integers(0, 5)), max_size=60),
    st.integers(0, 2**15 - 11),  # the last bin a work may use: 2^15 - 2
)
def test_triplet_votes_are_each_works_best_two_neighbouring_bins(
    postings: list[tuple[int, int, int]], base: int
) -> None:
    """A work's triplet votes: its distinct keys in an offset bin plus those in the next bin,
    at its best bin (an alignment on a bin edge is not split; a repeated key votes once)."""
    postings = [(w, base + b, k) for w, b, k in postings]
    # (work, offset bin, key) packed as _triplet_cells packs them
    cells = np.array([w << 47 | b << 32 | k for w, b, k in postings], np.uint64)
    work, votes = lm._cell_votes(cells)
    keys: dict[tuple[int, int], set[int]] = {}
    for w, b, k in postings:
        keys.setdefault((w, b), set()).add(k)
    want: dict[int, int] = {}
    for (w, b), ks in keys.items():
        pair = len(ks) + len(keys.get((w, b + 1), ()))
        want[w] = max(want.get(w, 0), pair)
    assert dict(zip(work.tolist(), votes.tolist(), strict=True)) == want


@given(
    st.lists(st.tuples(st.integers(0, 6), st.integers(0, 3)), min_size=2, max_size=400).flatmap(
        lambda v: st.tuples(st.just(v), st.integers(1, len(v) - 1))
    )
)
def test_the_best_voted_cells_keep_ties_by_work_then_cell(
    cells_n: tuple[list[tuple[int, int]], int],
) -> None:
    """The cells pair voting smooths: the `n` most voted, a tie at the cut going to the lower
    work id, then the lower cell, as a stable sort would pick them; never as numpy's partition
    kernel happens to (AVX2 and AVX-512 keep different ones: a query's reported works hung on
    the CPU), nor by ordinal (a re-added work takes a new one)."""
    cells, n = cells_n
    v = np.array([c[0] for c in cells], np.int64)
    work = np.array([c[1] for c in cells], np.int64)
    want = np.sort(np.lexsort((np.arange(v.size), work, -v))[:n])
    assert lm._most(v, n, work).tolist() == want.tolist()


def test_pair_postings_are_kept_for_the_last_works_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lm, "CANDIDATES", 1)
    monkeypatch.setattr(lm, "PAIR_CACHE", 2)
    index = lm.LandmarkIndex()
    works = {w: _random_work(100 + w) for w in range(5)}
    for w, peaks in works.items():
        index.add(w, *peaks)
    for w, (t, q) in works.items():
        assert index.search(*_excerpt(t, q, 300, w))[0].work_id == w
        assert len(index._pair_cache) <= 2
    index.remove(4)  # the last one searched: its pair postings go with it
    assert len(index._pair_cache) == 1


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(-300, 300))
@example(364046862, 0)  # its first 100 peaks spanned 19.0 s: one pair fell outside the window
def test_index_votes_equal_brute_force(seed: int, shift: int) -> None:
    """The index's best offset and vote count for a work equal a plain dictionary count of the
    same distinct hashes (variant 0: no pitch or time change). The excerpt starts `shift`
    frames into the query and lasts 800 frames: one 20 s vote window holds all of it."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 2000, 300))
    q = rng.uniform(0, lm.LOG_MAX, 300).astype(np.float32)
    index = lm.LandmarkIndex()
    index.add(7, t, q)
    start = abs(shift) % 50
    inside = (t >= t[100]) & (t < t[100] + 800)
    qt, qq = t[inside] - t[100] + start, q[inside]
    assert qt.max() < 2 * lm.WINDOW_STEP
    found = index.search(qt, qq)
    # Brute force over the same pairs.
    a, b, ta, dt = lm.pairs(t, q, lm.FAN_OUT["work"])
    ref: dict[int, list[int]] = {}
    for h, at in zip(lm.hashes(q, a, b, dt).tolist(), ta.tolist(), strict=True):
        ref.setdefault(h, []).append(at)
    qa, qb, qta, qdt = lm.pairs(qt, qq, lm.FAN_OUT["query"])
    distinct: dict[int, set[int]] = {}
    for h, at in zip(lm.hashes(qq, qa, qb, qdt).tolist(), qta.tolist(), strict=True):
        for r in ref.get(h, []):
            distinct.setdefault((r - at) >> 1, set()).add(h)
    best_bin = max(distinct, key=lambda k: len(distinct[k]))
    assert found
    assert found[0].work_id == 7
    true_offset = t[100] - start
    assert abs(found[0].offset - true_offset) <= 2
    assert found[0].votes >= len(distinct[best_bin])


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 6), st.integers(0, 2**16)), min_size=1, max_size=14),
    st.lists(st.integers(0, 6), max_size=4),
    st.sampled_from([0, 10**6]),
    st.sampled_from([lm.CANDIDATES, 2]),
)
# Three works alike, the first re-added: which two are put forward must not hang on the order
# of additions (ties went to the lower ordinal, which a re-added work loses).
@example([(0, 0), (1, 0), (2, 0), (0, 0)], [], 10**6, 2)
def test_edits_search_like_a_fresh_index(
    ops: list[tuple[int, int]], removed: list[int], min_merge: int, candidates: int
) -> None:
    """Adds, re-adds and removals through delta segments, merges and tombstones find what an
    index built once from the surviving works finds, with every work a candidate and with
    two put forward by the triplets."""

    def work(seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        return np.sort(rng.integers(0, 1500, 250)), rng.uniform(0, lm.LOG_MAX, 250).astype(
            np.float32
        )

    mp = pytest.MonkeyPatch()
    mp.setattr(audiomatch, "MIN_MERGE", min_merge)  # 0: merge on every refresh
    mp.setattr(lm, "CANDIDATES", candidates)
    try:
        index, live = lm.LandmarkIndex(), {}
        t_q, q_q = work(ops[0][1])
        for k, (work_id, seed) in enumerate(ops):
            index.add(work_id, *work(seed))
            live[work_id] = seed
            if k % 3 == 2:
                index.search(t_q[50:150], q_q[50:150])
        for work_id in removed:
            index.remove(work_id)
            live.pop(work_id, None)
        fresh = lm.LandmarkIndex()
        for work_id, seed in live.items():
            fresh.add(work_id, *work(seed))

        def found(ix: lm.LandmarkIndex) -> list[tuple[int, int, int]]:  # ties: any order
            return sorted(
                (h.work_id, h.offset, h.votes) for h in ix.search(t_q[50:150], q_q[50:150])
            )

        assert found(index) == found(fresh)
        assert len(index) == len(live)
    finally:
        mp.undo()


def test_search_of_an_empty_index_or_query_is_empty() -> None:
    index = lm.LandmarkIndex()
    assert index.search(np.arange(10), np.zeros(10, np.float32)) == []
    index.add(1, np.arange(50), np.linspace(0, 80, 50).astype(np.float32))
    assert index.search(np.zeros(0, np.int64), np.zeros(0, np.float32)) == []
    index.remove(1)
    assert index.search(np.arange(50), np.linspace(0, 80, 50).astype(np.float32)) == []
    for w in range(lm.CANDIDATES + 1):  # past CANDIDATES: the triplet stage runs
        index.add(w, *_random_work(w))
    lonely = np.array([0, 400]), np.array([10.0, 50.0], np.float32)  # two peaks, no triplet
    assert index.search(*lonely) == []


def _tones(seed: int, pitch: float = 1.0, seconds: float = 20.0) -> np.ndarray:
    """Three tones at random frequencies (not on a semitone grid), new ones every 0.25 s."""
    rng = np.random.default_rng(seed)
    step = SAMPLE_RATE // 4
    tt = np.arange(step) / SAMPLE_RATE
    parts = []
    for _ in range(int(seconds * 4)):
        freqs = rng.uniform(350, 2800, 3)
        parts.append(sum(np.sin(2 * np.pi * pitch * f * tt) for f in freqs) / 3)
    return (np.concatenate(parts) * 12000).astype(np.int16)


def test_pitch_shift_moves_every_peak_by_two_units() -> None:
    """Log-frequency peaks: a semitone up is +2 half-semitone units, whatever the frequency."""
    t0, q0 = lm.peaks(_tones(3), 24)
    t1, q1 = lm.peaks(_tones(3, 2 ** (1 / 12)), 24)

    def near(t: int, q: float) -> bool:
        close = np.abs(t0 - t) <= 1
        return bool(np.any(np.abs(q0[close] - q) <= 0.25))

    moved = sum(near(int(t), float(q) - 2) for t, q in zip(t1, q1, strict=True))
    unmoved = sum(near(int(t), float(q)) for t, q in zip(t1, q1, strict=True))
    # The rest are the clicks where tones change (broadband, no pitch to move).
    assert moved / t1.size > 0.4
    assert moved > 10 * unmoved


@pytest.fixture(scope="module")
def songs() -> list[np.ndarray]:
    return [make_music(20 + i, 40.0) for i in range(4)]


@pytest.fixture(scope="module")
def matcher(songs: list[np.ndarray]) -> Matcher:
    m = Matcher()
    for i, song in enumerate(songs):
        m.add(i, MediaKind.AUDIO, fingerprint_work(encode_audio(song, "flac")).values)
    return m


@pytest.fixture(params=["every work", "one candidate"])
def shortlist(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pair voting over every work (a small catalogue), or over the one work the triplet
    stage puts forward (as in a large one)."""
    if request.param == "one candidate":
        monkeypatch.setattr(lm, "CANDIDATES", 1)


def _landmark_hits(matcher: Matcher, data: bytes) -> list[tuple[int, float, float | None]]:
    """(work, raw, offset_s) of each work the landmarks find, by votes or by contrast."""
    hits: dict[int, tuple[int, float, float | None]] = {}
    for ev in matcher.evidence(fingerprint_query(data)):
        passes = ev.raw >= matcher.thresholds[ev.method]
        if ev.method in (lm.AudioLandmarks.name, CONTRAST) and passes:
            hits.setdefault(ev.work_id, (ev.work_id, ev.raw, ev.hit.offset_s))
    return list(hits.values())


@pytest.mark.usefixtures("shortlist")
def test_five_second_excerpt(matcher: Matcher, songs: list[np.ndarray]) -> None:
    for i, song in enumerate(songs):
        hits = _landmark_hits(matcher, encode_audio(song[17 * RATE : 22 * RATE], "ogg"))
        assert [h[0] for h in hits] == [i]
        assert hits[0][2] is not None
        assert abs(hits[0][2] - 17.0) <= 0.5


@pytest.mark.usefixtures("shortlist")
def test_speech_over_music_at_equal_loudness(matcher: Matcher, songs: list[np.ndarray]) -> None:
    """A talker (formant-filtered noise bursts with a gliding pitch) as loud as the music."""
    rng = np.random.default_rng(5)
    for i, song in enumerate(songs):
        clip = song[8 * RATE : 20 * RATE].copy()
        n = clip.size
        tt = np.arange(n) / RATE
        f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * tt)
        voice = np.sin(2 * np.pi * np.cumsum(f0) / RATE) * (rng.random(n) < 0.6)
        voice *= 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * tt) ** 2  # syllables
        voice = voice.astype(np.float32)
        voice *= np.sqrt(np.mean(clip**2) / max(np.mean(voice**2), 1e-12))
        mixed = (clip + voice) / 2
        assert [h[0] for h in _landmark_hits(matcher, encode_audio(mixed, "mp3"))] == [i]


def test_unrelated_music_does_not_match(matcher: Matcher) -> None:
    for seed in range(60, 66):
        other = make_music(seed, 12.0)
        assert _landmark_hits(matcher, encode_audio(other, "mp3")) == []


def test_query_keeps_more_peaks_than_a_work() -> None:
    samples = decode_audio(encode_audio(make_music(9, 20.0), "flac"))
    work = lm.decode_peaks(lm.AudioLandmarks.from_samples(samples))[0].size
    query = lm.decode_peaks(lm.AudioLandmarks.query_from_samples(samples))[0].size
    assert work < query <= 20 * lm.PEAKS_PER_S["query"] + lm.PEAKS_PER_S["query"]


def test_over_the_work_cap_landmarks_step_aside(
    matcher: Matcher,
    songs: list[np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Past LANDMARK_MAX_WORKS the query cost would dominate a crawl: Chromaprint alone,
    said once in the log."""
    clip = encode_audio(songs[0][5 * RATE : 15 * RATE], "mp3")
    assert _landmark_hits(matcher, clip)
    monkeypatch.setattr(matcher, "landmark_max_works", 3)
    monkeypatch.setattr(matcher, "_landmarks_warned", False)
    with caplog.at_level("WARNING", logger="fingerprints.matcher"):
        assert _landmark_hits(matcher, clip) == []
        assert [h.work_id for h in matcher.search(fingerprint_query(clip))] == [0]
    assert sum("landmark matching is off" in r.getMessage() for r in caplog.records) == 1


def test_background_is_the_works_best_other_alignment() -> None:
    """A passage heard twice in a work (a loop) leaves as many votes at its second offset;
    a passage heard once leaves only chance votes elsewhere."""
    song = make_music(31, 30.0)
    looped = np.concatenate([song[: 15 * RATE], song[: 15 * RATE]])
    index = lm.LandmarkIndex()
    for work_id, samples in ((0, song), (1, looped)):
        index.add(work_id, *lm.decode_peaks(lm.AudioLandmarks.from_samples(_pcm(samples))))
    query = lm.decode_peaks(lm.AudioLandmarks.query_from_samples(_pcm(song[3 * RATE : 11 * RATE])))
    found = {hit.work_id: hit for hit in index.search(*query)}
    assert found[0].background * 4 < found[0].votes
    assert found[1].background * 2 > found[1].votes


def _pcm(samples: np.ndarray) -> np.ndarray:
    return decode_audio(encode_audio(samples, "flac"))


@given(
    st.integers(0, 200),
    st.integers(0, 200),
    st.lists(st.integers(0, 200), max_size=8),
)
def test_contrast_stands_out_from_the_worst_of_its_backgrounds(
    votes: int, background: int, others: list[int]
) -> None:
    hit = lm.Landmark(0, 0, votes, background)
    found = [hit] + [lm.Landmark(i + 1, 0, v) for i, v in enumerate(others)]
    ranked = sorted(others, reverse=True)[CONTRAST_RANK - 1 : CONTRAST_RANK]
    assert _background(hit, found) == max([background, CONTRAST_FLOOR, *ranked])
    # A catalogue holding a track and two edits of it: the edits do not hide the track.
    edits = [lm.Landmark(i + 1, 0, votes) for i in range(CONTRAST_RANK - 1)]
    assert _background(hit, [hit, *edits]) == max(background, CONTRAST_FLOOR)


def test_contrast_alone_finds_an_excerpt(songs: list[np.ndarray]) -> None:
    """With the vote bar and every Chromaprint bar out of reach, contrast decides alone."""
    out_of_reach = {m: 1e9 for m in (*CHROMAPRINT_KEYS, lm.AudioLandmarks.name)}
    clip = fingerprint_query(encode_audio(songs[1][13 * RATE : 23 * RATE], "mp3"))
    for thresholds, expected in ((out_of_reach, [1]), ({**out_of_reach, CONTRAST: 1e9}, [])):
        m = Matcher(thresholds)
        for i, song in enumerate(songs):
            m.add(i, MediaKind.AUDIO, fingerprint_work(encode_audio(song, "flac")).values)
        hits = m.search(clip)
        assert [h.work_id for h in hits] == expected
        assert all(h.method == CONTRAST and abs((h.offset_s or 0) - 13.0) <= 0.5 for h in hits)


def test_unrelated_music_has_no_contrast(matcher: Matcher) -> None:
    for seed in range(60, 66):
        query = fingerprint_query(encode_audio(make_music(seed, 12.0), "mp3"))
        found = [e.raw for e in matcher.evidence(query) if e.method == CONTRAST]
        assert all(raw < matcher.thresholds[CONTRAST] for raw in found)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 60), min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_works_paired_together_get_each_their_own_pairs(
    seconds: list[int], rnd: random.Random
) -> None:
    """The works a shortlist pairs in one pass (peaks laid end to end) get exactly the pair
    postings each would alone: none spans two works, even with peaks at both ends of the
    indexed frames, and a work with no peak gets none."""
    index = lm.LandmarkIndex()
    works: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for w, s in enumerate(seconds):
        t, q = _random_work(rnd.randrange(2**32), s)
        if s and w % 2:  # peaks on the first and the last frame indexed
            t = np.concatenate([[0], t, [index.max_frames - 1]])
            q = np.concatenate([q[:1], q, q[-1:]])
        works[w] = t, q
        index.add(w, t, q)
    got = index._pairs_of(list(works))
    for (w, (t, q)), (keys, words) in zip(works.items(), got, strict=True):
        a, b, ta, dt = lm.pairs(t, q, lm.FAN_OUT["work"])
        assert keys.tolist() == lm.hashes(q, a, b, dt).tolist()
        assert words.tolist() == index._pack(index._ordinal[w], ta).tolist()
