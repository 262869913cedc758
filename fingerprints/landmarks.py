"""Peak-pair landmarks: the second audio fingerprint, for what Chromaprint cannot survive.

Chromaprint summarises each frame's whole chroma into 32 bits, so speech over the music, a
telephone band or a 5-second excerpt flips too many bits at once. Landmarks (Wang 2003,
"An industrial-strength audio search algorithm"; audfprint and Panako are later variants)
keep only the strongest spectral peaks and hash pairs of them: a peak that survives the
damage still pairs with others that survive, and the pairs that agree on one time offset
are the evidence. Here:

* only 300-3,400 Hz is read (a telephone channel keeps it; the bass that dominates most
  mixes and that a telephone drops never takes a peak's place);
* a peak's frequency is kept on a log scale (half-semitone units, sub-bin precise by
  parabolic interpolation), so a pitch shift moves every peak by the same amount and a
  query can undo it by shifting, not by fingerprinting the file again;
* the stored value is the peaks themselves (frame, log-frequency), not the hashes, so the
  query side can form denser pairs and try shifted variants cheaply;
* the index is searched in two stages (``LandmarkIndex``): triplets of peaks (as in Panako,
  Six & Leman 2014), specific enough that a query meets few chance postings however large
  the catalogue, put forward the works worth counting; pairs, of which more survive damage,
  count their votes.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
from collections import OrderedDict
from typing import ClassVar, TypeVar

import numpy as np
import numpy.typing as npt
import scipy.fft
from scipy.ndimage import maximum_filter

from fingerprints.audio import I16, SAMPLE_RATE, AudioType, require_sound
from fingerprints.audiomatch import Postings, Segment
from fingerprints.base import MediaKind

N_FFT = 1024  # 93 ms windows: a semitone is 1.7 bins at 300 Hz
HOP = 256  # 23.2 ms frames, 43 a second
FRAME_S = HOP / SAMPLE_RATE
BAND_HZ = (300.0, 3400.0)
UNITS_PER_OCTAVE = 24  # half semitones
LOG_MAX = int(np.ceil(UNITS_PER_OCTAVE * np.log2(BAND_HZ[1] / BAND_HZ[0])))  # 84
PEAK_FRAMES, PEAK_BINS = 9, 11  # a peak is the maximum of its 0.2 s x ~120 Hz neighbourhood
PEAKS_PER_S = {"work": 12, "query": 48}  # queries keep more, so the work's peaks are among them
# A query's strongest peaks, marked in its value: the pitch-shifted variants' triplets are drawn
# from these alone (``LandmarkIndex._candidates``).
STRONG_PER_S = 24
FAN_OUT = {"work": 4, "query": 20}  # pairs formed from each anchor peak
DT_MAX = 48  # frames (1.1 s) between a pair's peaks; fits 6 bits
DQ_MAX = 30  # half semitones between a pair's peaks
TOP_CANDIDATES = 8
CANDIDATES = 32  # works the triplet stage puts forward to pair voting
# Pair partners an anchor's triplets are drawn from. A work's 3 give half the postings of 4
# (62 against 121 kB a bench track) and keep the true work among the candidates as often,
# within a query a row (bench/results/matching-audio-full.md).
TRIPLET_FAN = {"work": 3, "query": 16, "shifted": 8}
PAIR_CACHE = 256  # works whose pair postings are kept between queries (~75 kB each)
TOP_CELLS = 256  # best-voted (work, window, offset) cells examined per variant
BACKGROUND_FRAMES = round(1.0 / FRAME_S)  # offsets further apart are another alignment
Q_SCALE = 64  # stored log-frequency: units * 64 in a uint16
WINDOW_STEP = round(10.0 / FRAME_S)  # votes are counted per 20 s query window, every 10 s
OFF_BIAS = 1 << 15  # offsets kept: +-32,768 frames (12.7 min)
DEAD_DB = 20.0  # bins this far under the typical bin are not whitened up

F32 = npt.NDArray[np.float32]
U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]
T = TypeVar("T", np.int64, np.uint64)


def spectrogram(samples: I16) -> F32:
    """Log magnitude (dB) of the 300-3,400 Hz bins, frames x bins."""
    x = samples.astype(np.float32) / 32768.0
    frames = 1 + (x.size - N_FFT) // HOP
    if frames < 1:
        return np.zeros((0, 0), np.float32)
    view = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP][:frames]
    # scipy.fft keeps float32 single precision: ~5x numpy.fft (always float64) here.
    spec = scipy.fft.rfft(view * np.hanning(N_FFT).astype(np.float32), axis=1)
    lo, hi = (round(f * N_FFT / SAMPLE_RATE) for f in BAND_HZ)
    band = spec[:, lo : hi + 1]
    power: F32 = (band.real**2 + band.imag**2).astype(np.float32)
    db: F32 = (10.0 * np.log10(power + np.float32(1e-12))).astype(np.float32)
    return db


def peaks(samples: I16, per_s: int) -> tuple[I64, F32]:
    """(frame, log-frequency in half semitones above 300 Hz) of the strongest local maxima,
    at most `per_s` a second, in time order."""
    t, q, _rank = ranked_peaks(samples, per_s)
    return t, q


def ranked_peaks(samples: I16, per_s: int) -> tuple[I64, F32, I64]:
    """``peaks`` and each one's rank by strength within its second (0: the strongest)."""
    spec = spectrogram(samples)
    if spec.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64)
    # Whitening per bin (minus its mean over the file) keeps a loud band from taking every
    # peak; a peak must also stand 6 dB above the frame's mean. Bins a codec or a telephone
    # left empty (20 dB under the typical bin) are not whitened up into codec-noise peaks.
    level = spec.mean(axis=0, keepdims=True)
    spec -= np.maximum(level, np.median(level) - DEAD_DB)
    local = maximum_filter(spec, size=(PEAK_FRAMES, PEAK_BINS), mode="nearest")
    floor = spec.mean(axis=1, keepdims=True) + 6.0
    t, b = np.nonzero((spec == local) & (spec > floor))
    b_ok = (b > 0) & (b < spec.shape[1] - 1)
    t, b = t[b_ok], b[b_ok]
    level = spec[t, b]
    # Strongest `per_s` in each second.
    second = t // round(1.0 / FRAME_S)
    order = np.lexsort((-level, second))
    t, b, level, second = t[order], b[order], level[order], second[order]
    rank = np.arange(t.size) - np.searchsorted(second, second, side="left")
    keep = rank < per_s
    t, b, rank = t[keep], b[keep], rank[keep]
    # Sub-bin frequency by a parabola through the peak and its neighbours.
    y0, y1, y2 = spec[t, b - 1], spec[t, b], spec[t, b + 1]
    den = y0 - 2 * y1 + y2
    delta = np.where(den < 0, 0.5 * (y0 - y2) / np.where(den < 0, den, -1), 0.0)
    lo = round(BAND_HZ[0] * N_FFT / SAMPLE_RATE)
    hz = (lo + b + delta) * SAMPLE_RATE / N_FFT
    q = UNITS_PER_OCTAVE * np.log2(np.maximum(hz, 1.0) / BAND_HZ[0])
    order = np.argsort(t, kind="stable")
    return t[order].astype(np.int64), q[order].astype(np.float32), rank[order].astype(np.int64)


# The stored log-frequency needs 13 bits (LOG_MAX * Q_SCALE < 8,192): the top one marks a weak
# peak, outside its second's STRONG_PER_S strongest. Only queries have weak peaks, so a work's
# value is what it always was.
WEAK = 1 << 15


def encode_peaks(t: I64, q: F32, weak: npt.NDArray[np.bool_] | None = None) -> str:
    packed = np.empty((t.size, 2), "<u2")
    packed[:, 0] = np.minimum(t, 0xFFFF)
    packed[:, 1] = np.clip(np.rint(q * Q_SCALE), 0, WEAK - 1)
    if weak is not None:
        packed[weak, 1] |= WEAK
    return base64.b64encode(packed.tobytes()).decode("ascii")


def decode_peaks(value: str) -> tuple[I64, F32]:
    t, q, _strong = decode_ranked_peaks(value)
    return t, q


def decode_ranked_peaks(value: str) -> tuple[I64, F32, npt.NDArray[np.bool_]]:
    """(frame, log-frequency, whether among its second's strongest) of each peak."""
    packed = np.frombuffer(base64.b64decode(value), "<u2").reshape(-1, 2)
    q: F32 = (packed[:, 1] & (WEAK - 1)).astype(np.float32) / np.float32(Q_SCALE)
    return packed[:, 0].astype(np.int64), q, packed[:, 1] < WEAK


def pairs(t: I64, q: F32, fan_out: int) -> tuple[I64, I64, I64, I64]:
    """(anchor index, partner index, anchor frame, dt) of each peak paired with its next
    `fan_out` peaks that lie 1..DT_MAX frames later and within DQ_MAX half semitones, sorted
    by anchor, then partner. The frequencies stay continuous: each query variant rounds them
    after its own shift."""
    n = t.size
    partner = np.full((n, fan_out), -1, np.int64)
    taken = np.zeros(n, np.int64)
    # The k-th next peak of every anchor at once (k up to 4 x fan_out), each anchor filling
    # its slots nearest first: no sort (a query pairs the peaks of each of its candidates).
    for k in range(1, min(n, 4 * fan_out + 1)):
        dt = t[k:] - t[:-k]
        if dt.min() > DT_MAX:  # t is sorted: every later k is further away still
            break
        ok = (dt >= 1) & (dt <= DT_MAX) & (np.abs(q[k:] - q[:-k]) <= DQ_MAX)
        a = np.flatnonzero(ok & (taken[: n - k] < fan_out))
        partner[a, taken[a]] = a + k
        taken[a] += 1
    a = np.repeat(np.arange(n), taken)
    b = partner[partner >= 0]
    return a, b, t[a], t[b] - t[a]


def triplets(t: I64, q: F32, fan_out: int) -> tuple[I64, I64, I64]:
    """(anchor, first partner, second partner) indices: each anchor with every two of its
    first `fan_out` pair partners (``pairs``), the earlier one first."""
    a, b, _ta, _dt = pairs(t, q, fan_out)
    if a.size == 0:
        return a, a, a
    start = _run_starts(a)
    count = np.diff(np.append(start, a.size))
    parts = []
    for i in range(fan_out - 1):
        for j in range(i + 1, fan_out):
            s = start[count > j]
            parts.append((a[s], b[s + i], b[s + j]))
    anchor, first, second = (np.concatenate([p[k] for p in parts]) for k in range(3))
    return anchor, first, second


class _Triplets:
    """A query's triplets of one kind (its peaks, a fan, the pitch shifts tried), grouped by
    the 10 s chunk of the query their anchor lies in."""

    def __init__(self, t: I64, q: F32, fan_out: int, shifts: tuple[float, ...]) -> None:
        self.t, self.q, self.shifts = t, q, shifts
        a, b, c = triplets(t, q, fan_out)
        chunk = t[a] // WINDOW_STEP
        order = np.argsort(chunk, kind="stable")
        self.a, self.b, self.c = a[order], b[order], c[order]
        self.chunks = int(chunk.max()) + 1 if chunk.size else 0
        self.bounds = np.searchsorted(chunk[order], np.arange(self.chunks + 1))

    def of_chunk(self, k: int) -> tuple[I64, I64, I64]:
        if k >= self.chunks:
            return self.a[:0], self.b[:0], self.c[:0]
        lo, hi = self.bounds[k], self.bounds[k + 1]
        return self.a[lo:hi], self.b[lo:hi], self.c[lo:hi]


MIX = np.uint32(0x9E3779B1)  # odd: multiplying by it modulo 2^32 (or 2^20) is one-to-one (Knuth)
PAIR_MASK = (1 << 20) - 1  # pair hashes' 20 bits


def triplet_hashes(t: I64, q: F32, a: I64, b: I64, c: I64, shift: float = 0.0) -> U32:
    """31-bit hashes of three peaks: the anchor's log-frequency (7 bits, less `shift`), both
    partners' intervals to it (6 + 6) and time gaps from it (6 + 6)."""
    qa = np.clip(np.rint(q[a] - shift), 0, LOG_MAX).astype(np.uint32)
    d1 = np.clip(np.rint(q[b] - q[a]) + 31, 0, 63).astype(np.uint32)
    d2 = np.clip(np.rint(q[c] - q[a]) + 31, 0, 63).astype(np.uint32)
    t1 = np.clip(t[b] - t[a], 0, 63).astype(np.uint32)
    t2 = np.clip(t[c] - t[a], 0, 63).astype(np.uint32)
    out: U32 = (qa << np.uint32(24)) | (d1 << np.uint32(18)) | (d2 << np.uint32(12))
    out |= (t1 << np.uint32(6)) | t2
    # Scrambled (a bijection of 32-bit words): the index buckets keys by their top bits, and
    # real music crowds the few common anchor pitches and intervals kept there.
    out *= MIX
    return out


def hashes(q: F32, a: I64, b: I64, dt: I64, shift: float = 0.0) -> U32:
    """20-bit hashes: anchor log-frequency (7 bits), its difference to the partner's (7), dt (6).
    `shift` (half semitones) is subtracted from every frequency first: the pitch variant."""
    qa = np.clip(np.rint(q[a] - shift), 0, LOG_MAX).astype(np.uint32)
    dq = np.clip(np.rint(q[b] - q[a]) + 64, 0, 127).astype(np.uint32)
    out: U32 = (qa << np.uint32(13)) | (dq << np.uint32(6)) | (dt.astype(np.uint32) & np.uint32(63))
    # Scrambled as the triplets' are, but within 20 bits (still one-to-one), as ``_count``
    # packs a hash beside its cell: the shortlist's buckets are the hashes' top bits, and
    # unscrambled those are the few common anchor pitches.
    out *= MIX
    out &= np.uint32(PAIR_MASK)
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class Landmark:
    work_id: int
    offset: int  # work frame aligned with query frame 0
    votes: int  # distinct pair hashes agreeing on that offset (one 20 s query window)
    background: int = 0  # the work's best votes at any other offset (over a second away)


# Query variants: (pitch shift in half semitones, time scale of the query against the work).
# Speed changes move both (a 2 % faster copy is 0.69 half-semitones higher and 2 % shorter);
# a pitch-only shift moves frequencies alone.
VARIANTS: tuple[tuple[float, float], ...] = (
    (0.0, 1.0),
    *((UNITS_PER_OCTAVE * float(np.log2(r)), r) for r in (0.98, 0.99, 1.01, 1.02)),
    (-2.0, 1.0),
    (2.0, 1.0),
)


# Besides the query as it is, the triplet stage tries the pitch variants only: a 2 % speed
# change moves few of a triplet's gaps by a frame, and Chromaprint's own speed variants find
# those copies besides.
TRIPLET_SHIFTS = tuple(shift for shift, scale in VARIANTS if scale == 1.0 and shift != 0.0)


class LandmarkIndex(Postings):
    """Peaks of every work, searched in two stages. Peak pairs survive damage best, but a
    20-bit pair hash meets every work's chance postings: a pair search costs 1-2 ms per work.
    So an inverted index of peak triplets (``triplet_hashes``, 31 bits) first puts forward
    the CANDIDATES works whose triplets agree best on one offset, and only their pairs are
    counted, as a pair index over every work would count them (the votes the thresholds were
    measured on). The triplet stage's cost grows with the catalogue far slower (measured in
    bench/results/scale.md).

    Triplet postings take 6.3-7 bytes each (418M and 136M of real music), in main and delta
    segments with tombstones (``audiomatch.Postings``); peaks 6 bytes each; a candidate's pair
    postings are formed from its peaks, and the last PAIR_CACHE works' kept."""

    pos_bits = 15  # frames of a work indexed: 32,768 (12.7 min); 131,072 works an index

    def _reset(self) -> None:
        super()._reset()
        self._peaks: dict[int, tuple[npt.NDArray[np.uint16], F32]] = {}  # 6 bytes a peak
        self._pair_cache: OrderedDict[int, tuple[U32, U32]] = OrderedDict()  # by ordinal

    def add(self, work_id: int, t: I64, q: F32) -> None:
        self.remove(work_id)
        keep = (t >= 0) & (t < self.max_frames)
        self._peaks[work_id] = (t[keep].astype(np.uint16), q[keep].astype(np.float32))
        self._register(work_id)

    def remove(self, work_id: int) -> None:
        ordinal = self._ordinal.get(work_id)
        if ordinal is not None and self._unregister(work_id):
            del self._peaks[work_id]
            self._pair_cache.pop(ordinal, None)

    def _peaks_of(self, work_id: int) -> tuple[I64, F32]:
        t, q = self._peaks[work_id]
        return t.astype(np.int64), q

    def _postings(self, work_id: int) -> tuple[U32, U32]:
        t, q = self._peaks_of(work_id)
        a, b, c = triplets(t, q, TRIPLET_FAN["work"])
        return triplet_hashes(t, q, a, b, c), t[a].astype(np.uint32)

    def _works(self) -> list[tuple[int, object]]:
        return [(work_id, self._peaks_of(work_id)) for work_id in self._peaks]

    def _readd(self, work_id: int, kept: object) -> None:
        assert isinstance(kept, tuple)
        self.add(work_id, kept[0], kept[1])

    def search(self, t: I64, q: F32, strong: npt.NDArray[np.bool_] | None = None) -> list[Landmark]:
        """Best (work, offset) per work over all variants, most votes first. `strong` marks
        the query's strongest peaks (``decode_ranked_peaks``; every peak when not given)."""
        if len(self) == 0 or t.size < 2:
            return []
        strong = np.ones(t.size, bool) if strong is None else strong
        shortlist = Segment.build(self._pairs_of(self._candidates(t, q, strong)))
        a, b, ta, dt = pairs(t, q, FAN_OUT["query"])
        best: dict[int, Landmark] = {}
        for shift, scale in VARIANTS:
            dts = np.clip(np.rint(dt * scale), 1, 63).astype(np.int64)
            keys = hashes(q, a, b, dts, shift)
            rep, ordinal, frame = self._decode(*shortlist.matches(keys))
            if rep.size == 0:
                continue
            offset = frame - np.rint(ta[rep] * scale).astype(np.int64)
            for hit in self._count(ordinal, offset, ta[rep], keys[rep]):
                if hit.work_id not in best or hit.votes > best[hit.work_id].votes:
                    best[hit.work_id] = hit
        return sorted(best.values(), key=lambda h: (-h.votes, h.work_id))[:TOP_CANDIDATES]

    def _candidates(self, t: I64, q: F32, strong: npt.NDArray[np.bool_]) -> list[int]:
        """Ordinals of the CANDIDATES works whose query triplets agree best on one offset in
        one 20 s window of the query (every live work when there are no more than that: their
        triplet postings are then never built).

        Unshifted, triplets of all the query's peaks; shifted a semitone up or down, triplets of
        its strongest peaks alone, with a narrower fan: a pitch-shifted copy is otherwise
        clean, its strong peaks are the work's, and half as many keys meet half as many
        chance postings. (On the bench's 420 transformed queries, the true work is among the
        candidates for 396 instead of 391 at 24,970 works and 393 instead of 384 at 99,970, and
        the triplet stage takes 34 instead of 69 ms and 56 instead of 118 (medians). Damaged
        copies need every peak unshifted: the 24 strongest a second there kept 370.)

        Windows start every 10 s, as pair votes are counted (``_count``): an excerpt inside a
        long file is not outvoted by chance alignments along all of it, and a long file is
        searched one window at a time (a 2.6-minute track at 25,000 works held 2 GB at once)."""
        if len(self) <= CANDIDATES:
            return sorted(self._ordinal.values())
        dense = _Triplets(t, q, TRIPLET_FAN["query"], (0.0,))
        sparse = _Triplets(t[strong], q[strong], TRIPLET_FAN["shifted"], TRIPLET_SHIFTS)
        best = np.zeros(self._next, np.int64)  # by ordinal: its best votes in any window
        before = np.zeros(0, np.uint64)
        for chunk in range(max(dense.chunks, sparse.chunks)):
            cells = np.concatenate([self._triplet_cells(part, chunk) for part in (dense, sparse)])
            work, votes = _cell_votes(np.concatenate([before, cells]))
            best[work] = np.maximum(best[work], votes)
            before = cells
        # Most votes first; ties go to the lower work id, so the works put forward do not hang
        # on the order works were added, removed and re-added in.
        voted = np.flatnonzero(best)
        order = np.lexsort((self._ids[voted], -best[voted]))[:CANDIDATES]
        return [int(o) for o in voted[order]]

    def _triplet_cells(self, part: _Triplets, chunk: int) -> npt.NDArray[np.uint64]:
        """(work ordinal, offset bin, triplet key) of every posting that the triplets anchored
        in this 10 s chunk of the query meet, packed in a word; offsets in two-frame bins
        (``_cell_votes`` sums neighbours)."""
        t, q = part.t, part.q
        a, b, c = part.of_chunk(chunk)
        cells = [np.zeros(0, np.uint64)]
        for shift in part.shifts:
            keys = triplet_hashes(t, q, a, b, c, shift)
            rep, work, frame = self._matches(keys)
            offset = frame - t[a[rep]] + OFF_BIAS
            # The last bin stays empty: a bin's neighbour is then always the same work's.
            ok = (offset >= 0) & (offset < 2 * OFF_BIAS - 2)
            cell = work[ok].astype(np.uint64) << np.uint64(47) | keys[rep[ok]]
            cells.append(cell | (offset[ok] >> 1).astype(np.uint64) << np.uint64(32))
        return np.concatenate(cells)

    def _pairs_of(self, ordinals: list[int]) -> list[tuple[U32, U32]]:
        """Each work's pair postings (hash, ordinal and anchor frame), kept for PAIR_CACHE works.

        The works not kept are paired in one pass, their peaks laid end to end further apart
        than a pair spans: ``pairs`` makes the same ~200 numpy calls (16 passes) whatever its
        input's size (a call a work: 39 against 34 ms for a 10 s query's pair stage at 24,970
        works)."""
        missing = [o for o in ordinals if o not in self._pair_cache]
        if missing:
            gap = self.max_frames + DT_MAX  # frames are below max_frames: no pair spans a gap
            peaks = [self._peaks_of(int(self._ids[o])) for o in missing]
            t = np.concatenate([p[0] + i * gap for i, p in enumerate(peaks)])
            q = np.concatenate([p[1] for p in peaks])
            a, b, ta, dt = pairs(t, q, FAN_OUT["work"])
            keys, which = hashes(q, a, b, dt), ta // gap  # sorted: pairs come by anchor
            bounds = np.searchsorted(which, np.arange(len(missing) + 1))
            for i, (o, (lo, hi)) in enumerate(
                zip(missing, itertools.pairwise(bounds), strict=True)
            ):
                self._pair_cache[o] = keys[lo:hi], self._pack(o, ta[lo:hi] - i * gap)
        out = []
        for o in ordinals:
            self._pair_cache.move_to_end(o)
            out.append(self._pair_cache[o])
        while len(self._pair_cache) > max(PAIR_CACHE, len(ordinals)):
            self._pair_cache.popitem(last=False)
        return out

    def _count(self, ordinal: I64, offset: I64, anchor: I64, key: U32) -> list[Landmark]:
        """The best-voted (work, offset) of each work among these matched pairs.

        Votes are counted per 20 s window of the query (windows start every 10 s, so an
        excerpt of up to 10 s lies whole in one): the random votes a long query collects
        grow with its length, the evidence of an excerpt inside it does not. One vote per
        distinct hash: a sustained tone repeats one pair all along and would otherwise
        outvote a melody. Offsets within a frame either side are summed, so a match on a
        bin edge is not split.
        """
        ok = (offset > -OFF_BIAS) & (offset < OFF_BIAS)
        ordinal, offset, anchor, key = ordinal[ok], offset[ok], anchor[ok], key[ok]
        first = anchor // WINDOW_STEP
        window = np.concatenate([first, first - 1])
        inside = window >= 0
        cell = np.concatenate([ordinal, ordinal])[inside] << 22
        cell |= np.minimum(window[inside], 63) << 16
        cell |= np.concatenate([offset, offset])[inside] + OFF_BIAS
        distinct = _sorted_unique(
            (cell << 20) | np.concatenate([key, key])[inside].astype(np.int64)
        )
        cells = distinct >> 20  # still sorted
        first = _run_starts(cells)
        uniq, votes = cells[first], np.diff(np.append(first, cells.size))
        # Only the best-voted cells and the cells beside them can win: smooth those, not the
        # ~one-vote crowd. Beside them too: such a cell may smooth to as many votes, and
        # whether its own votes made the cut hangs on every other work's.
        top = _most(votes, TOP_CELLS, self._ids[uniq >> 22]) if uniq.size > TOP_CELLS else None
        examined = np.arange(uniq.size)
        if top is not None:
            side = np.concatenate([top - 1, top + 1]).clip(0, uniq.size - 1)
            examined = np.union1d(top, side[np.abs(uniq[side] - np.tile(uniq[top], 2)) == 1])
        cells = uniq[examined]
        smooth = votes[examined].copy()
        for d in (-1, 1):
            at = np.minimum(np.searchsorted(uniq, cells + d), uniq.size - 1)
            same = uniq[at] == cells + d
            smooth[same] += votes[at[same]]
        # A cell outside the best-voted ones has at most their fewest votes.
        unseen = 0 if top is None else int(smooth[np.isin(examined, top)].min())
        work_of, off_of = cells >> 22, (cells & 0xFFFF) - OFF_BIAS
        out: list[Landmark] = []
        seen: set[int] = set()
        # Ties to the lower work id, then to the lower cell (window, offset): cells are sorted.
        for i in np.lexsort((self._ids[work_of], -smooth)):
            which = int(work_of[i])
            if which in seen:
                continue
            seen.add(which)
            off = int(off_of[i])
            elsewhere = (work_of == which) & (np.abs(off_of - off) > BACKGROUND_FRAMES)
            background = max(unseen, int(smooth[elsewhere].max()) if elsewhere.any() else 0)
            work_id = int(self._ids[which])
            out.append(Landmark(work_id, off, int(smooth[i]), background))
            if len(out) >= TOP_CANDIDATES:
                break
        return out


def _cell_votes(cells: npt.NDArray[np.uint64]) -> tuple[I64, I64]:
    """(work ordinal, votes) of each work's best two neighbouring offset bins among `cells`,
    by ordinal: summed, so an alignment on a bin edge is not split (each posting once, not in
    two staggered bins: half the cells, the same works put forward), one vote per distinct
    triplet in a bin, as a held chord repeats one triplet all along."""
    by_cell = _sorted_unique(cells) >> np.uint64(32)
    if by_cell.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    first = _run_starts(by_cell)
    cell, votes = by_cell[first], np.diff(np.append(first, by_cell.size))
    paired = votes.copy()
    after = cell[1:] == cell[:-1] + np.uint64(1)  # the next bin holds votes too
    paired[:-1][after] += votes[1:][after]
    work = (cell >> np.uint64(15)).astype(np.int64)  # sorted: cells lead with it
    start = _run_starts(work)
    return work[start], np.maximum.reduceat(paired, start)


def _most(votes: I64, n: int, rank: I64) -> I64:
    """Indices of the `n` most votes, in index order; ties at the cut go to the lower `rank`,
    then the lower index. (Which tied values ``np.argpartition`` keeps hangs on numpy's sort
    kernel, so on the CPU, and a tie at the cut changed which works a query reported.)"""
    kth = np.partition(votes, -n)[-n]
    above = np.flatnonzero(votes > kth)
    tied = np.flatnonzero(votes == kth)
    tied = tied[np.argsort(rank[tied], kind="stable")[: n - above.size]]
    out: I64 = np.union1d(above, tied)
    return out


def _run_starts(x: npt.NDArray[np.generic]) -> I64:
    """Where each run of equal values starts in `x` (not empty)."""
    starts: I64 = np.flatnonzero(np.concatenate([[True], x[1:] != x[:-1]]))
    return starts


def _sorted_unique(x: npt.NDArray[T]) -> npt.NDArray[T]:
    """np.unique by sorting: numpy 2's default hash-based unique is ~10x slower here."""
    x = np.sort(x)
    keep: npt.NDArray[T] = x[np.concatenate([[True], x[1:] != x[:-1]])] if x.size else x
    return keep


class AudioLandmarks(AudioType):
    """Spectral peaks (frame, log-frequency) of 300-3,400 Hz: base64 of little-endian uint16
    pairs. Works keep PEAKS_PER_S["work"] a second, found files four times that, with the
    top bit of the frequency word marking the ones past their second's STRONG_PER_S
    strongest (``encode_peaks``); a work's value never has it set."""

    name: ClassVar[str] = "audio_landmarks"
    version: ClassVar[int] = 1
    media: ClassVar[MediaKind] = MediaKind.AUDIO

    @classmethod
    def from_samples(cls, samples: I16) -> str:
        require_sound(samples)
        return encode_peaks(*peaks(samples, PEAKS_PER_S["work"]))  # few peaks: few votes

    @classmethod
    def query_from_samples(cls, samples: I16) -> str:
        """More peaks than a work keeps, the ones past STRONG_PER_S a second marked weak."""
        require_sound(samples)
        t, q, rank = ranked_peaks(samples, PEAKS_PER_S["query"])
        return encode_peaks(t, q, rank >= STRONG_PER_S)

    @classmethod
    def distance(cls, a: str, b: str) -> float:
        """0 for the same peaks, else 1 / (1 + aligned pair votes) of `a` searched in `b`:
        1 when nothing lines up."""
        if a == b:
            return 0.0
        index = LandmarkIndex()
        index.add(0, *decode_peaks(b))
        found = index.search(*decode_ranked_peaks(a))
        return 1.0 / (1.0 + (found[0].votes if found else 0))
