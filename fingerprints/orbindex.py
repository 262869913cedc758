"""Find works by their keypoints alone: for copies the hash pass cannot see (pasted, rotated).

Query descriptors are matched to their nearest stored descriptor over the whole catalogue
with FLANN's multi-probe LSH (8 tables of 20-bit keys: about 25x cheaper per query than
16-bit keys at 1.6M descriptors, where 16-bit buckets hold ~25 descriptors each; rebuilt
lazily after edits); works collecting the most close matches are then verified
geometrically, one by one, with ``keypoints.verify``.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from fingerprints.keypoints import Keypoints

MAX_DESC_DISTANCE = 48  # of 256 bits: a descriptor match worth a vote
MIN_VOTES = 5
SEARCH_FEATURES = 300  # strongest query keypoints used to find candidates
_LSH: dict[str, bool | int | float | str] = {
    "algorithm": 6,
    "table_number": 8,
    "key_size": 20,
    "multi_probe_level": 1,
}


class OrbIndex:
    def __init__(self) -> None:
        self._works: dict[int, Keypoints] = {}
        self._desc: npt.NDArray[np.uint8] | None = None
        self._owner: npt.NDArray[np.int64] = np.zeros(0, np.int64)
        self._flann: cv2.flann.Index | None = None

    def __len__(self) -> int:
        return len(self._works)

    def get(self, work_id: int) -> Keypoints | None:
        return self._works.get(work_id)

    def add(self, work_id: int, kps: Keypoints) -> None:
        self._works[work_id] = kps
        self._desc = None

    def remove(self, work_id: int) -> None:
        if self._works.pop(work_id, None) is not None:
            self._desc = None

    def _build(self) -> npt.NDArray[np.uint8]:
        if self._desc is None:
            parts = [(w, k.desc) for w, k in self._works.items() if len(k.desc)]
            if parts:
                self._desc = np.ascontiguousarray(np.concatenate([d for _, d in parts]))
                self._owner = np.concatenate([np.full(len(d), w, np.int64) for w, d in parts])
                self._flann = cv2.flann.Index(self._desc, _LSH)
            else:
                self._desc = np.zeros((0, 32), np.uint8)
                self._flann = None
        return self._desc

    def candidates(self, query: Keypoints, top: int = 3) -> list[tuple[int, int]]:
        """(work_id, votes) of the works sharing the most close descriptors with the query."""
        desc = self._build()
        if len(desc) == 0 or len(query.desc) == 0 or self._flann is None:
            return []
        nn, dist = self._flann.knnSearch(query.desc[:SEARCH_FEATURES], 1, params={"checks": 32})
        idx = nn[:, 0][(dist[:, 0] <= MAX_DESC_DISTANCE) & (nn[:, 0] >= 0)].astype(np.int64)
        if idx.size == 0:
            return []
        works, votes = np.unique(self._owner[idx], return_counts=True)
        order = np.argsort(-votes, kind="stable")[:top]  # ties to the lower work id, on any CPU
        return [(int(works[i]), int(votes[i])) for i in order if votes[i] >= MIN_VOTES]
