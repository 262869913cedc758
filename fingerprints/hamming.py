"""Hamming maths on 64-bit hashes, scalar and vectorised."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]


def popcount64(x: int) -> int:
    return int(x).bit_count()


def hamming_many(hashes: U64, q: int) -> npt.NDArray[np.uint8]:
    """Distances from q to every hash (numpy >= 2 ``bitwise_count``)."""
    out: npt.NDArray[np.uint8] = np.bitwise_count(hashes ^ np.uint64(q))
    return out


def parse_hashes(value: str) -> list[int]:
    """A stored multi-hash value: hex words separated by spaces."""
    return [int(word, 16) for word in value.split()]
