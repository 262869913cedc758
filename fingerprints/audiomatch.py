"""Excerpt matching on Chromaprint sub-fingerprints: inverted index, offset voting, aligned
bit-error verification.

A query's 32-bit sub-fingerprints are looked up exactly in an inverted index; each hit votes
for (work, offset); the best-voted alignments are verified by the bit error rate (BER) of the
whole aligned overlap, counted only over query frames that change (quiet or sustained
passages give near-constant sub-fingerprints that match any quiet music).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]

MIN_ACTIVE = 12  # query frames that must change before anything is reported
ACTIVE_BITS = 2  # a frame is active when it differs from its predecessor in more bits
STOP_POSTINGS = 5000  # keys more common than this carry no evidence: skipped at query time
TOP_CANDIDATES = 12
_OFF_BITS = 24


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


class SubFingerprintIndex:
    """Inverted index from sub-fingerprint value to (work, frame); rebuilt lazily after edits."""

    def __init__(self) -> None:
        self._refs: dict[int, U32] = {}
        self._dirty = True
        self._keys: U32 = np.zeros(0, np.uint32)
        self._works: I64 = np.zeros(0, np.int64)
        self._pos: I64 = np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self._refs)

    def add(self, work_id: int, raw: U32) -> None:
        self._refs[work_id] = raw
        self._dirty = True

    def remove(self, work_id: int) -> None:
        if self._refs.pop(work_id, None) is not None:
            self._dirty = True

    def ref(self, work_id: int) -> U32:
        return self._refs[work_id]

    def _build(self) -> None:
        keys, works, pos = [], [], []
        for work_id, raw in self._refs.items():
            keep = np.flatnonzero(active_mask(raw) | (np.arange(raw.size) == 0))
            keys.append(raw[keep])
            pos.append(keep.astype(np.int64))
            works.append(np.full(keep.size, work_id, np.int64))
        if keys:
            k = np.concatenate(keys)
            order = np.argsort(k, kind="stable")
            self._keys = k[order]
            self._works = np.concatenate(works)[order]
            self._pos = np.concatenate(pos)[order]
        else:
            self._keys = np.zeros(0, np.uint32)
            self._works = self._pos = np.zeros(0, np.int64)
        self._dirty = False

    def candidates(self, query: U32, scale: float = 1.0) -> list[tuple[int, int, int]]:
        """(work_id, offset, votes) of the best-voted alignments, most votes first."""
        if self._dirty:
            self._build()
        mask = active_mask(query)
        qi = np.flatnonzero(mask)
        if qi.size == 0 or self._keys.size == 0:
            return []
        lo = np.searchsorted(self._keys, query[qi], side="left")
        hi = np.searchsorted(self._keys, query[qi], side="right")
        counts = hi - lo
        counts[counts > STOP_POSTINGS] = 0
        total = int(counts.sum())
        if total == 0:
            return []
        rep_q = np.repeat(qi, counts)
        starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
        flat = starts + np.arange(total)
        offsets = self._pos[flat] - np.rint(rep_q * scale).astype(np.int64)
        # Votes in bins of two frames so a half-frame misalignment does not split them.
        key = (self._works[flat] << _OFF_BITS) + ((offsets >> 1) + (1 << (_OFF_BITS - 1)))
        uniq, votes = np.unique(key, return_counts=True)
        top = np.argsort(votes)[::-1][: TOP_CANDIDATES * 3]
        out: list[tuple[int, int, int]] = []
        seen: set[int] = set()
        for t in top:
            work = int(uniq[t] >> _OFF_BITS)
            if work in seen:
                continue
            seen.add(work)
            off = (int(uniq[t] & ((1 << _OFF_BITS) - 1)) - (1 << (_OFF_BITS - 1))) * 2
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
