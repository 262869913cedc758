"""Excerpt matching on Chromaprint sub-fingerprints: inverted index, offset voting, aligned
bit-error verification.

A query's 32-bit sub-fingerprints are looked up exactly in an inverted index; each hit votes
for (work, offset); the best-voted alignments are verified by the bit error rate (BER) of the
whole aligned overlap, counted only over query frames that change (quiet or sustained
passages give near-constant sub-fingerprints that match any quiet music).
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import numpy.typing as npt

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]

MIN_ACTIVE = 12  # query frames that must change before anything is reported
ACTIVE_BITS = 2  # a frame is active when it differs from its predecessor in more bits
STOP_POSTINGS = 5000  # keys more common than this carry no evidence: skipped at query time
TOP_CANDIDATES = 12
POS_BITS = 13  # an entry packs (ordinal << POS_BITS | frame) into 32 bits
MAX_FRAMES = 1 << POS_BITS  # frames of a work indexed: 16.9 min (works keep 10 min)
MAX_WORKS = 1 << (32 - POS_BITS)  # ordinals per index (524,288) before a renumbering
MIN_MERGE = 1 << 20  # delta frames worth merging into the main segment at the least
BUCKET_BITS = 28  # largest bucket table: 2^28 slots (1 GiB, from ~540M entries on)
_OFF_BITS = 24
_OFF_ZERO = 1 << (_OFF_BITS - 1)
_OFF_MASK = (1 << _OFF_BITS) - 1


def popcount32(x: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint8]:
    return np.bitwise_count(x)


def active_mask(raw: U32) -> npt.NDArray[np.bool_]:
    """Frames that differ from the previous one: the evidence-bearing part of a fingerprint."""
    mask = np.zeros(raw.size, dtype=bool)
    if raw.size > 1:
        mask[1:] = popcount32(raw[1:] ^ raw[:-1]) > ACTIVE_BITS
    return mask


@dataclasses.dataclass(frozen=True, slots=True)
class Alignment:
    work_id: int
    offset: int  # reference frame aligned with query frame 0
    ber: float  # bit error rate over the best aligned window of active frames
    frames: int  # active frames in that window
    votes: int
    z: float  # (0.5 - ber) * sqrt(frames): grows with the length of the evidence


class Segment:
    """Sorted postings: keys (sub-fingerprint values) and vals (ordinal << POS_BITS | frame),
    with a table of where each bucket of keys (2-4 entries a bucket) starts, so a lookup reads
    one table slot and one short run instead of ~28 binary-search probes.

    A bucket is the keys' top bits within their own width, not within 32 bits: 20-bit peak-pair
    hashes would otherwise share the first 16 buckets of 65,536, runs of ~25,000 keys to
    binary-search (with the pair hashes scrambled too, a 10 s query's pair stage: 62 -> 40 ms).
    Only a key's bits below its bucket's are stored (its remainder: 2 bytes from ~130k
    entries on, 1 from ~34M), so the larger table costs no memory: at 136M postings of real
    peak triplets (24,970 works) 7.0 bytes an entry against 8.5 with ~8 entries a bucket and
    whole keys, and a 10 s query's triplet stage 20-22 % less CPU at 24,970 and 99,970 works
    (fewer probes, more keys a cache line; bench/results/matching-audio-full.md)."""

    __slots__ = ("last", "rem", "shift", "starts", "vals")

    def __init__(self, keys: U32, vals: U32) -> None:
        self.vals = vals
        width = int(keys[-1]).bit_length() if keys.size else 0
        bits = min(BUCKET_BITS, width, max(0, int(np.ceil(np.log2(max(1, keys.size) / 4)))))
        self.shift = width - bits
        self.last = (1 << bits) - 1  # a query key past the last bucket is past every key
        mask = (1 << self.shift) - 1
        self.rem = np.empty(keys.size, np.min_scalar_type(mask))
        np.bitwise_and(keys, np.uint32(mask), out=self.rem, casting="unsafe")  # no 4-byte copy
        # The table by sorted edges a chunk at a time: at 2^27 buckets one pass would hold
        # 2.5 GB of edges and positions at once.
        starts = np.empty((1 << bits) + 1, np.uint32)
        for lo in range(0, 1 << bits, 1 << 20):
            edges = np.arange(lo, min(lo + (1 << 20), 1 << bits), dtype=np.uint64)
            edges <<= np.uint64(self.shift)  # below 2^width: uint32, as keys (else a copy)
            starts[lo : lo + edges.size] = np.searchsorted(keys, edges.astype(np.uint32))
        starts[-1] = keys.size
        self.starts = starts

    @classmethod
    def build(cls, parts: list[tuple[U32, U32]]) -> Segment:
        if not parts:
            return cls(np.zeros(0, np.uint32), np.zeros(0, np.uint32))
        packed = np.empty(sum(k.size for k, _ in parts), np.uint64)
        at = 0
        for k, v in parts:
            part = packed[at : at + k.size]
            np.left_shift(k, np.uint64(32), out=part, dtype=np.uint64)
            part |= v
            at += k.size
        del part
        packed.sort()
        # Split by viewing the words' halves, not by shifting: a shift would make one more
        # array the size of `packed` (4.5 GB at 100,000 tracks of landmarks).
        halves = packed.view(np.uint32).reshape(-1, 2)
        high = 1 if sys.byteorder == "little" else 0
        keys, vals = halves[:, high].copy(), halves[:, 1 - high].copy()
        del packed, halves  # before the remainders and table are made
        return cls(keys, vals)

    def __len__(self) -> int:
        return int(self.vals.size)

    @property
    def keys(self) -> U32:
        """The whole keys again (for a merge): each bucket's number above its remainders."""
        keys: U32 = self.rem.astype(np.uint32)
        if self.last:  # else one bucket, and the remainders are the keys
            bucket = np.arange(self.last + 1, dtype=np.uint32) << np.uint32(self.shift)
            keys |= np.repeat(bucket, np.diff(self.starts))
        return keys

    @property
    def nbytes(self) -> int:
        return int(self.rem.nbytes + self.vals.nbytes + self.starts.nbytes)

    def lookup(self, q: U32) -> tuple[I64, I64]:
        """[lo, hi) of each query key's postings: exactly np.searchsorted left and right, each
        key's remainder binary-searched inside its own bucket only (a few probes; scanning the
        bucket took 15 % more CPU at 25,000 works of landmarks)."""
        b = (q.astype(np.uint64) >> np.uint64(self.shift)).astype(np.int64)
        past = b > self.last
        b[past] = self.last
        lo = self.starts[b].astype(np.int64)
        hi = self.starts[b + 1].astype(np.int64)
        lo[past] = hi[past]  # = len(self): the last bucket ends the segment
        r = (q & np.uint32((1 << self.shift) - 1)).astype(self.rem.dtype)
        left = _bisect(self.rem, r, lo, hi, np.less)
        return left, _bisect(self.rem, r, left, hi, np.less_equal)

    def matches(self, keys: U32, stop: int | None = None) -> tuple[I64, U32]:
        """(index into `keys`, posting word) of every posting of every key; keys with more
        than `stop` postings are skipped (they carry no evidence)."""
        if len(self) == 0 or keys.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.uint32)
        lo, hi = self.lookup(keys)
        counts = hi - lo
        if stop is not None:
            counts[counts > stop] = 0
        total = int(counts.sum())
        rep = np.repeat(np.arange(keys.size), counts)
        flat = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(total)
        return rep, self.vals[flat]


def _bisect(keys: U32, q: U32, lo: I64, hi: I64, before: np.ufunc) -> I64:
    """For each query, the first index in its [lo, hi) whose key is not `before` it
    (np.less: the left edge of its run; np.less_equal: the right): every open range halves
    at each step, so a batch takes as many steps as its largest bucket has bits."""
    lo, hi = lo.copy(), hi.copy()
    open_ = np.flatnonzero(lo < hi)
    while open_.size:
        mid = (lo[open_] + hi[open_]) >> 1
        go = before(keys[mid], q[open_])
        lo[open_[go]] = mid[go] + 1
        hi[open_[~go]] = mid[~go]
        open_ = open_[lo[open_] < hi[open_]]
    return lo


class Postings:
    """Sorted postings (32-bit key -> one word packing a work's ordinal and a frame) in a large
    main segment and a small delta segment of recent additions; removals are tombstones (a
    dead ordinal) until the next merge, so edits cost the size of the delta, not of the index.
    Subclasses say what a work's entries are (``_postings``) and how many bits of the word the
    frame takes (``pos_bits``)."""

    pos_bits: int = POS_BITS

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._ordinal: dict[int, int] = {}  # work id -> ordinal of its live entries
        self._next = 0  # ordinals given out
        self._ids: I64 = np.zeros(0, np.int64)  # ordinal -> work id
        self._alive: npt.NDArray[np.bool_] = np.zeros(0, bool)  # ordinal -> still live
        self._main = Segment.build([])
        self._delta = Segment.build([])
        self._pending: list[int] = []  # ordinals added since the delta was last built
        self._in_delta: list[int] = []
        self._dead = 0  # entries of removed works still in the segments

    @property
    def max_frames(self) -> int:
        return 1 << self.pos_bits

    @property
    def max_works(self) -> int:
        return 1 << (32 - self.pos_bits)

    def __len__(self) -> int:
        return len(self._ordinal)

    def __contains__(self, work_id: object) -> bool:
        return work_id in self._ordinal

    @property
    def entries(self) -> int:
        return len(self._main) + len(self._delta)

    @property
    def nbytes(self) -> int:
        """Bytes of the postings (what a subclass keeps per work comes on top)."""
        return sum(s.nbytes for s in (self._main, self._delta))

    def _postings(self, work_id: int) -> tuple[U32, U32]:
        """(keys, frames) of one work's entries; frames below ``max_frames``."""
        raise NotImplementedError

    def _works(self) -> list[tuple[int, object]]:
        """Every live work and what a subclass keeps for it, for a renumbering."""
        raise NotImplementedError

    def _readd(self, work_id: int, kept: object) -> None:
        raise NotImplementedError

    def _register(self, work_id: int) -> None:
        """A new ordinal for `work_id` (after ``_unregister`` of any old one)."""
        if self._next >= self.max_works:
            self._renumber()
        ordinal = self._next
        self._next += 1
        if ordinal >= self._alive.size:
            size = max(1024, 2 * self._alive.size)
            alive, ids = np.zeros(size, bool), np.zeros(size, np.int64)
            alive[: self._alive.size], ids[: self._ids.size] = self._alive, self._ids
            self._alive, self._ids = alive, ids
        self._alive[ordinal] = True
        self._ids[ordinal] = work_id
        self._ordinal[work_id] = ordinal
        self._pending.append(ordinal)

    def _unregister(self, work_id: int) -> bool:
        ordinal = self._ordinal.pop(work_id, None)
        if ordinal is None:
            return False
        self._alive[ordinal] = False
        if ordinal in self._pending:
            self._pending.remove(ordinal)
        else:
            self._dead += 1
        return True

    def _packed(self, ordinal: int) -> tuple[U32, U32]:
        keys, frames = self._postings(int(self._ids[ordinal]))
        return keys, self._pack(ordinal, frames)

    def _pack(self, ordinal: int, frames: npt.NDArray[np.integer]) -> U32:
        """Posting words: the work's ordinal above ``pos_bits`` bits of frame."""
        word: U32 = (np.uint32(ordinal) << np.uint32(self.pos_bits)) | frames.astype(np.uint32)
        return word

    def _renumber(self) -> None:
        """Ordinals exhausted: give the live works fresh ones and rebuild everything."""
        works = self._works()
        self._reset()
        for work_id, kept in works:
            self._readd(work_id, kept)

    def _refresh(self) -> None:
        if not self._pending:
            return
        live = [o for o in self._in_delta + self._pending if self._alive[o]]
        parts = [self._packed(o) for o in live]
        if sum(k.size for k, _ in parts) > max(MIN_MERGE, len(self._main) // 8):
            self._merge(parts)
        else:
            self._delta = Segment.build(parts)
            self._in_delta = live
        self._pending = []

    def _merge(self, delta: list[tuple[U32, U32]]) -> None:
        # `keys` rebuilds whole keys from the buckets: read it once
        keys, vals = self._main.keys, self._main.vals
        if self._dead:  # drop the entries of removed works
            keep = self._alive[vals >> np.uint32(self.pos_bits)]
            keys, vals = keys[keep], vals[keep]
        self._main = Segment.build([(keys, vals), *delta])
        self._delta = Segment.build([])
        self._in_delta = []
        self._dead = 0

    def _matches(self, keys: U32, stop: int | None = None) -> tuple[I64, I64, I64]:
        """(index into `keys`, work ordinal, frame) of every live posting of every key;
        keys with more than `stop` postings are skipped (they carry no evidence)."""
        self._refresh()
        parts = [self._decode(*seg.matches(keys, stop)) for seg in (self._main, self._delta)]
        return (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
        )

    def _decode(self, rep: I64, vals: U32) -> tuple[I64, I64, I64]:
        """(index into the keys, work ordinal, frame) of the live postings among `vals`."""
        ordinal = (vals >> np.uint32(self.pos_bits)).astype(np.int64)
        frame = (vals & np.uint32(self.max_frames - 1)).astype(np.int64)
        if not self._dead:  # no removed work's entries left: every posting is live
            return rep, ordinal, frame
        ok = self._alive[ordinal]
        return rep[ok], ordinal[ok], frame[ok]


class SubFingerprintIndex(Postings):
    """Inverted index from sub-fingerprint value to (work, frame), 6.5 bytes an entry at
    174M entries (100,000 tracks: the word, the key's remainder, the bucket table).

    Each entry is a 32-bit key (its remainder under its bucket) and a word packing the work's
    ordinal and the frame (the first ``MAX_FRAMES`` frames of a work are indexed;
    verification reads all of it).
    A query reads a bucket-table slot and a short run of keys per active frame.
    """

    def _reset(self) -> None:
        super()._reset()
        self._refs: dict[int, U32] = {}

    def add(self, work_id: int, raw: U32) -> None:
        self.remove(work_id)
        self._refs[work_id] = np.ascontiguousarray(raw, dtype=np.uint32)
        self._register(work_id)

    def remove(self, work_id: int) -> None:
        if self._unregister(work_id):
            del self._refs[work_id]

    def ref(self, work_id: int) -> U32:
        return self._refs[work_id]

    def _postings(self, work_id: int) -> tuple[U32, U32]:
        raw = self._refs[work_id][:MAX_FRAMES]
        keep = np.flatnonzero(active_mask(raw) | (np.arange(raw.size) == 0))
        return raw[keep], keep.astype(np.uint32)

    def _works(self) -> list[tuple[int, object]]:
        return list(self._refs.items())

    def _readd(self, work_id: int, kept: object) -> None:
        assert isinstance(kept, np.ndarray)
        self.add(work_id, kept)

    def votes(self, query: U32, scale: float = 1.0) -> dict[tuple[int, int], int]:
        """(work_id, offset bin) -> votes: every exact key match of an active query frame."""
        packed, votes = self._vote(query, scale)
        return {
            (int(self._ids[p >> _OFF_BITS]), int(p & _OFF_MASK) - _OFF_ZERO): int(v)
            for p, v in zip(packed, votes, strict=True)
        }

    def _vote(self, query: U32, scale: float) -> tuple[I64, I64]:
        qi = np.flatnonzero(active_mask(query))
        rep, ordinal, pos = self._matches(query[qi], STOP_POSTINGS)
        if rep.size == 0:
            return rep, rep
        offsets = pos - np.rint(qi[rep] * scale).astype(np.int64)
        # Votes in bins of two frames so a half-frame misalignment does not split them.
        uniq, votes = np.unique(
            (ordinal << _OFF_BITS) + ((offsets >> 1) + _OFF_ZERO), return_counts=True
        )
        return uniq, votes

    def candidates(self, query: U32, scale: float = 1.0) -> list[tuple[int, int, int]]:
        """(work_id, offset, votes) of the best-voted alignments, most votes first."""
        uniq, votes = self._vote(query, scale)
        if uniq.size == 0:
            return []
        # Most votes first; ties to the lower work id, then the earlier offset: a re-added work
        # takes a new ordinal, and what is put forward must not hang on the order of edits.
        works = self._ids[uniq >> _OFF_BITS]
        top = np.lexsort((uniq, works, -votes))[: TOP_CANDIDATES * 3]
        out: list[tuple[int, int, int]] = []
        seen: set[int] = set()
        for t in top:
            work = int(works[t])
            if work in seen:
                continue
            seen.add(work)
            off = (int(uniq[t] & _OFF_MASK) - _OFF_ZERO) * 2
            out.append((work, off, int(votes[t])))
            if len(out) >= TOP_CANDIDATES:
                break
        return out

    def verify(self, query: U32, work_id: int, offset: int, scale: float = 1.0) -> Alignment | None:
        """Best aligned segment within a few frames of a voted offset, or None.

        The evidence is the best-scoring window of the alignment (lengths from MIN_ACTIVE
        frames up to the whole overlap), so a work inside a longer mix is judged on the part
        where it plays, not diluted by the rest.
        """
        ref = self._refs[work_id]
        mask = active_mask(query)
        best: Alignment | None = None
        for off in range(offset - 2, offset + 4):
            errors = aligned_errors(query, ref, off, scale, mask)
            if errors.size < MIN_ACTIVE:
                continue
            z, ber, n = best_window(errors)
            if best is None or z > best.z:
                best = Alignment(work_id, off, ber, n, 0, z)
        return best

    def search(self, query: U32, scale: float = 1.0) -> list[Alignment]:
        found = []
        for work, off, votes in self.candidates(query, scale):
            al = self.verify(query, work, off, scale)
            if al is not None:
                found.append(dataclasses.replace(al, votes=votes))
        found.sort(key=lambda a: -a.z)
        return found


def aligned_errors(
    query: U32, ref: U32, offset: int, scale: float, mask: npt.NDArray[np.bool_]
) -> npt.NDArray[np.int64]:
    """Bit errors (0..32) of each active query frame against its aligned reference frame."""
    idx = offset + np.rint(np.arange(query.size) * scale).astype(np.int64)
    ok = (idx >= 0) & (idx < ref.size) & mask
    return popcount32(query[ok] ^ ref[idx[ok]]).astype(np.int64)


def best_window(errors: npt.NDArray[np.int64]) -> tuple[float, float, int]:
    """(z, BER, frames) of the window maximising z = (0.5 - BER) * sqrt(frames)."""
    n = errors.size
    csum = np.concatenate([[0], np.cumsum(errors)])
    best = (-1.0, 0.5, 0)
    width = MIN_ACTIVE
    while True:
        w = min(width, n)
        sums = csum[w:] - csum[:-w]
        ber = float(sums.min()) / (32.0 * w)
        z = (0.5 - ber) * float(np.sqrt(w))
        if z > best[0]:
            best = (z, ber, w)
        if w == n:
            return best
        width *= 2


def best_alignment(a: U32, b: U32) -> tuple[float, int]:
    """(BER, offset of a in b) of the best alignment found by voting; 0.5 if none."""
    index = SubFingerprintIndex()
    index.add(0, b)
    hits = sorted(index.search(a), key=lambda al: al.ber)
    if not hits:
        if a.size == b.size and np.array_equal(a, b):
            return 0.0, 0
        return 0.5, 0
    return hits[0].ber, hits[0].offset
