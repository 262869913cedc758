"""ORB keypoints: the geometric verification stage, and the search for pasted-in copies.

A work's value holds its ORB keypoints (position, descriptor), capped. A query's keypoints
are matched against a work's with a ratio test, and RANSAC fits a similarity transform
(rotation, scale, shift: what crops, borders, rotations and pasting do); the inlier count is
the evidence and the transform maps the work's outline into the found file: the region.
"""

from __future__ import annotations

import base64
import dataclasses
import struct
from collections.abc import Sequence
from typing import ClassVar

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from fingerprints.base import FingerprintType, MediaKind
from fingerprints.image import decode_image, require_information

WORK_FEATURES = 500
QUERY_FEATURES = 700
SPREAD_CELLS = 8  # query keypoints are spread over an 8 x 8 grid (see extract)
SPREAD_POOL = 3  # from 3x as many detected
RATIO = 0.8
RANSAC_PX = 6.0
_HEADER = struct.Struct("<HHH")

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]


@dataclasses.dataclass(frozen=True, slots=True)
class Keypoints:
    width: int  # of the image the positions refer to
    height: int
    xy: F32  # (n, 2)
    desc: U8  # (n, 32)

    def encode(self) -> str:
        xy = np.rint(self.xy * 8).clip(0, 65535).astype("<u2")
        raw = (
            _HEADER.pack(self.width, self.height, len(self.desc))
            + xy.tobytes()
            + self.desc.tobytes()
        )
        return base64.b64encode(raw).decode("ascii")

    @classmethod
    def decode(cls, value: str) -> Keypoints:
        raw = base64.b64decode(value)
        w, h, n = _HEADER.unpack_from(raw)
        xy: F32 = np.frombuffer(raw, "<u2", n * 2, _HEADER.size).reshape(n, 2).astype(np.float32)
        xy /= 8
        desc = np.frombuffer(raw, np.uint8, n * 32, _HEADER.size + n * 4).reshape(n, 32)
        return cls(w, h, xy, desc)


def extract(img: Image.Image, features: int, spread: bool = False) -> Keypoints:
    """The `features` strongest ORB keypoints, strongest first. With `spread`, the strongest
    of each cell of an 8 x 8 grid come first, then each cell's second, and so on: text or a
    logo laid over a copy has corners that outscore the picture's and would otherwise take
    the whole budget (a watermarked copy then keeps too few of the work's keypoints)."""
    g = np.asarray(img.convert("L"))
    orb = cv2.ORB.create(nfeatures=features * (SPREAD_POOL if spread else 1), fastThreshold=12)
    if spread:
        kps = orb.detect(g, None)
        kps = [kps[i] for i in _spread(kps, g.shape, features)] if kps else []
        for rank, kp in enumerate(kps):
            kp.class_id = rank  # compute regroups keypoints by pyramid level; this survives
        kps, desc = orb.compute(g, kps) if kps else ((), None)
    else:
        kps, desc = orb.detectAndCompute(g, None)
    if desc is None or not kps:
        return Keypoints(
            img.width, img.height, np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)
        )
    # Strongest first, or in the spread's round-robin order: candidate search (orbindex) reads
    # only the first SEARCH_FEATURES, which must not be the caption's corners again.
    key = [kp.class_id for kp in kps] if spread else [-kp.response for kp in kps]
    order = np.argsort(key, kind="stable")
    xy = np.asarray([kps[i].pt for i in order], dtype=np.float32).reshape(-1, 2)
    return Keypoints(img.width, img.height, xy, np.asarray(desc, np.uint8)[order])


def _spread(
    kps: Sequence[cv2.KeyPoint], shape: tuple[int, ...], features: int
) -> npt.NDArray[np.intp]:
    """Indices of `features` keypoints taken round-robin over the grid cells, best first."""
    h, w = shape[:2]
    xy = np.asarray([kp.pt for kp in kps], np.float64).reshape(-1, 2)
    strength = np.asarray([kp.response for kp in kps])
    col = np.minimum(xy[:, 0] * SPREAD_CELLS // w, SPREAD_CELLS - 1)
    row = np.minimum(xy[:, 1] * SPREAD_CELLS // h, SPREAD_CELLS - 1)
    cell = (row * SPREAD_CELLS + col).astype(np.int64)
    by_cell = np.lexsort((-strength, cell))
    sorted_cells = cell[by_cell]
    rank = np.arange(by_cell.size) - np.searchsorted(sorted_cells, sorted_cells, side="left")
    picked: npt.NDArray[np.intp] = by_cell[np.lexsort((-strength[by_cell], rank))][:features]
    return picked


@dataclasses.dataclass(frozen=True, slots=True)
class Verified:
    inliers: int
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 of the work in query pixels
    scale: float


def verify(work: Keypoints, query: Keypoints) -> Verified | None:
    """Fit work -> query by RANSAC on ratio-test matches; None without a plausible fit."""
    if len(work.desc) < 8 or len(query.desc) < 8:
        return None
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    pairs = matcher.knnMatch(work.desc, query.desc, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    if len(good) < 6:
        return None
    src = work.xy[[m.queryIdx for m in good]]
    dst = query.xy[[m.trainIdx for m in good]]
    model, mask = cv2.estimateAffinePartial2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX, maxIters=1000, confidence=0.99
    )
    if model is None or mask is None:
        return None
    scale = float(np.hypot(model[0, 0], model[1, 0]))
    if not 0.1 < scale < 10:
        return None
    corners = np.array(
        [[0, 0], [work.width, 0], [work.width, work.height], [0, work.height]], np.float32
    )
    mapped = corners @ model[:, :2].T + model[:, 2]
    x0, y0 = mapped.min(axis=0)
    x1, y1 = mapped.max(axis=0)
    return Verified(int(mask.sum()), (float(x0), float(y0), float(x1), float(y1)), scale)


class ImageORB(FingerprintType):
    """ORB keypoints and descriptors (base64): verification, regions, pasted-in copies."""

    name: ClassVar[str] = "image_orb"
    version: ClassVar[int] = 1
    media: ClassVar[MediaKind] = MediaKind.IMAGE

    @classmethod
    def from_image(cls, img: Image.Image) -> str:
        require_information(img)
        return extract(img, WORK_FEATURES).encode()

    @classmethod
    def query_from_image(cls, img: Image.Image) -> str:
        require_information(img)
        return extract(img, QUERY_FEATURES, spread=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> str:
        return cls.from_image(decode_image(data).img)

    @classmethod
    def query_from_bytes(cls, data: bytes) -> str:
        return cls.query_from_image(decode_image(data).img)

    @classmethod
    def distance(cls, a: str, b: str) -> float:
        """1 - inliers/matchable keypoints of the best similarity fit (0 for identical)."""
        ka, kb = Keypoints.decode(a), Keypoints.decode(b)
        found = verify(ka, kb)
        if found is None:
            return 1.0
        return max(0.0, 1.0 - found.inliers / max(1, min(len(ka.desc), len(kb.desc))))
