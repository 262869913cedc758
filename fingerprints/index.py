"""Indexes of 64-bit hashes: brute force (the reference) and multi-index hashing."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt

from fingerprints.hamming import U64, hamming_many

I64 = np.ndarray[tuple[int], np.dtype[np.int64]]


class LinearIndex:
    """Brute force over every stored hash: exact, O(n) a query, the reference for tests."""

    def __init__(self) -> None:
        self._hashes: list[int] = []
        self._ids: list[int] = []
        self._arr: U64 | None = None
        self._id_arr: I64 | None = None

    def __len__(self) -> int:
        return len(self._hashes)

    def add(self, item_id: int, hashes: list[int]) -> None:
        self._hashes.extend(hashes)
        self._ids.extend([item_id] * len(hashes))
        self._arr = None

    def remove(self, item_id: int) -> None:
        keep = [i for i, x in enumerate(self._ids) if x != item_id]
        self._hashes = [self._hashes[i] for i in keep]
        self._ids = [self._ids[i] for i in keep]
        self._arr = None

    def search(self, q: int, radius: int) -> dict[int, int]:
        """item id -> smallest distance, for every item with a hash within radius of q."""
        if self._arr is None or self._id_arr is None:
            self._arr = np.asarray(self._hashes, dtype=np.uint64)
            self._id_arr = np.asarray(self._ids, dtype=np.int64)
        if not self._hashes:
            return {}
        d = hamming_many(self._arr, q)
        near = np.flatnonzero(d <= radius)
        out: dict[int, int] = {}
        for i in near:
            item, dist = int(self._id_arr[i]), int(d[i])
            if dist < out.get(item, 65):
                out[item] = dist
        return out


def _probes(bits: int, radius: int) -> npt.NDArray[np.uint64]:
    """Every value within `radius` bits of 0 in a `bits`-bit word (XOR masks)."""
    masks = [0]
    for r in range(1, radius + 1):
        masks.extend(sum(1 << b for b in combo) for combo in itertools.combinations(range(bits), r))
    return np.asarray(masks, dtype=np.uint64)


class MultiIndexHashing:
    """Exact Hamming-radius search over 64-bit hashes (Norouzi et al., multi-index hashing).

    Each hash is cut into four 16-bit chunks; two hashes within radius r agree within
    r // 4 bits on at least one chunk (pigeonhole), so probing each chunk table with the
    values within r // 4 bits finds every candidate, then full distances are checked.

    Memory per stored hash: 8 (hash) + 4 (item id) + 3 x (2 chunk + 4 position) = 30 bytes;
    the first table is the hash array itself, sorted by value. Edits go to a small brute-force
    buffer merged on the next search, so adds and removes stay cheap.
    """

    CHUNKS = 4

    def __init__(self) -> None:
        self._hashes: U64 = np.zeros(0, np.uint64)
        self._ids: npt.NDArray[np.int32] = np.zeros(0, np.int32)
        self._tables: list[tuple[npt.NDArray[np.uint16], npt.NDArray[np.int32]]] = []
        self._pending: list[tuple[int, int]] = []
        self._removed: set[int] = set()
        self._probe_cache: dict[int, npt.NDArray[np.uint64]] = {}

    def __len__(self) -> int:
        self._merge()
        return int(self._hashes.size)

    @property
    def nbytes(self) -> int:
        self._merge()
        return int(
            self._hashes.nbytes
            + self._ids.nbytes
            + sum(c.nbytes + p.nbytes for c, p in self._tables)
        )

    def add(self, item_id: int, hashes: list[int]) -> None:
        self._pending.extend((h, item_id) for h in hashes)
        self._removed.discard(item_id)

    def add_many(self, hashes: U64, ids: npt.NDArray[np.int32]) -> None:
        """Bulk load (benchmarks, start-up from the database)."""
        self._merge()
        self._build(np.concatenate([self._hashes, hashes]), np.concatenate([self._ids, ids]))

    def remove(self, item_id: int) -> None:
        self._pending = [(h, i) for h, i in self._pending if i != item_id]
        self._removed.add(item_id)

    def _merge(self) -> None:
        if not self._pending and not self._removed:
            return
        hashes, ids = self._hashes, self._ids
        if self._removed:
            keep = ~np.isin(ids, np.fromiter(self._removed, np.int32))
            hashes, ids = hashes[keep], ids[keep]
        if self._pending:
            new_h = np.fromiter((h for h, _ in self._pending), np.uint64, len(self._pending))
            new_i = np.fromiter((i for _, i in self._pending), np.int32, len(self._pending))
            hashes, ids = np.concatenate([hashes, new_h]), np.concatenate([ids, new_i])
        self._pending, self._removed = [], set()
        self._build(hashes, ids)

    def _build(self, hashes: U64, ids: npt.NDArray[np.int32]) -> None:
        order = np.argsort(hashes, kind="stable")
        self._hashes, self._ids = hashes[order], ids[order]
        self._tables = []
        for c in range(1, self.CHUNKS):
            chunk = ((self._hashes >> np.uint64(48 - 16 * c)) & np.uint64(0xFFFF)).astype(np.uint16)
            pos = np.argsort(chunk, kind="stable").astype(np.int32)
            self._tables.append((chunk[pos], pos))

    def _probe(self, radius: int) -> npt.NDArray[np.uint64]:
        if radius not in self._probe_cache:
            self._probe_cache[radius] = _probes(16, radius)
        return self._probe_cache[radius]

    def candidates(self, q: int, radius: int) -> npt.NDArray[np.int64]:
        """Positions of stored hashes within radius of q."""
        self._merge()
        if self._hashes.size == 0:
            return np.zeros(0, np.int64)
        probes = self._probe(radius // self.CHUNKS)
        found = []
        qq = np.uint64(q)
        keys0 = ((qq >> np.uint64(48)) ^ probes) << np.uint64(48)
        lo = np.searchsorted(self._hashes, keys0, side="left")
        hi = np.searchsorted(self._hashes, keys0 | np.uint64((1 << 48) - 1), side="right")
        found.append(_ranges(lo, hi))
        for c, (chunk, pos) in enumerate(self._tables, start=1):
            keys = (((qq >> np.uint64(48 - 16 * c)) & np.uint64(0xFFFF)) ^ probes).astype(np.uint16)
            lo = np.searchsorted(chunk, keys, side="left")
            hi = np.searchsorted(chunk, keys, side="right")
            found.append(pos[_ranges(lo, hi)].astype(np.int64))
        cand = np.concatenate(found)  # may repeat: cheaper than np.unique at this size
        near = hamming_many(self._hashes[cand], q) <= radius
        return cand[near]

    def search(self, q: int, radius: int) -> dict[int, int]:
        """item id -> smallest distance, for every item with a hash within radius of q."""
        cand = self.candidates(q, radius)
        out: dict[int, int] = {}
        if cand.size:
            dists = hamming_many(self._hashes[cand], q)
            for item, dist in zip(self._ids[cand].tolist(), dists.tolist(), strict=True):
                if dist < out.get(item, 65):
                    out[item] = dist
        return out


def _ranges(lo: npt.NDArray[np.intp], hi: npt.NDArray[np.intp]) -> npt.NDArray[np.int64]:
    """Concatenation of range(lo[i], hi[i]) for all i, vectorised."""
    counts = (hi - lo).astype(np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    starts = np.repeat(lo.astype(np.int64) - np.cumsum(counts) + counts, counts)
    return starts + np.arange(total, dtype=np.int64)
