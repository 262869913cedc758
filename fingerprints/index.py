"""Indexes of 64-bit hashes: brute force (the reference) and multi-index hashing."""

from __future__ import annotations

import numpy as np

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
