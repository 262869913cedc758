"""Crop-, mirror- and border-tolerant image hashing: many views per work, few per query.

The catalogue side hashes the whole work, a grid of 80 % and 70 % windows and a 60 % centre,
each also mirrored, so a crop or a flip of the work lands near one stored view. The query
side hashes the file as found, the file with borders, letterbox or caption bars trimmed, the
file turned back by +-5 and +-10 degrees, cut to its 60 % centre (rotated copies), and the
file with thin overlaid strokes (watermark text) painted over. Views without enough detail are
skipped (blank corners collide).
"""

from __future__ import annotations

from typing import ClassVar

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from fingerprints.base import FingerprintType, MediaKind
from fingerprints.hamming import parse_hashes
from fingerprints.image import MIN_GRAY_STD, decode_image, hex64, require_information

F32 = npt.NDArray[np.float32]
_GRID = (0.0, 0.5, 1.0)  # window positions: start, middle, end of the free margin
_WINDOWS = [(1.0, 0.5, 0.5)] + [(s, x, y) for s in (0.8, 0.7) for x in _GRID for y in _GRID]
_WINDOWS += [(0.6, 0.5, 0.5)]
_BITS = 1 << np.arange(63, -1, -1, dtype=np.uint64)


def gray(img: Image.Image) -> F32:
    return np.asarray(img.convert("L"), dtype=np.float32)


def dct_hash(g: F32) -> int | None:
    """pHash (32x32 DCT, 8x8 low band against its median) of a gray array; None if flat."""
    if g.shape[0] < 16 or g.shape[1] < 16:
        return None
    small = cv2.resize(g, (32, 32), interpolation=cv2.INTER_AREA)
    if float(small.std()) < MIN_GRAY_STD / 2:
        return None
    low = cv2.dct(small)[:8, :8].reshape(-1)
    bits = low > np.median(low)
    return int(_BITS[bits].sum())


def window(shape: tuple[int, ...], size: float, fx: float, fy: float) -> tuple[int, int, int, int]:
    """(x0, y0, width, height) of a window `size` of each side, placed at (fx, fy) of the
    free margin."""
    h, w = shape[:2]
    ch, cw = round(h * size), round(w * size)
    return round((w - cw) * fx), round((h - ch) * fy), cw, ch


def view(g: F32, size: float, fx: float, fy: float) -> F32:
    x0, y0, cw, ch = window(g.shape, size, fx, fy)
    return g[y0 : y0 + ch, x0 : x0 + cw]


def trim_box(g: F32) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) inside uniform borders, letterbox and caption bars (text allowed)."""
    h, w = g.shape

    def extent(lines: F32) -> int:  # lines: outermost first, each a row of pixels
        edge = float(np.median(lines[0]))
        frac = (np.abs(lines - edge) < 16).mean(axis=1)
        if frac[0] < 0.9:
            return 0
        limit = int(lines.shape[0] * 0.4)
        mean = np.cumsum(frac[:limit]) / np.arange(1, limit + 1)
        ok = np.flatnonzero((mean >= 0.7) & (frac[:limit] >= 0.9))
        return int(ok[-1]) + 1 if ok.size else 0

    top, bottom = extent(g), extent(g[::-1])
    left, right = extent(g.T), extent(g.T[::-1])
    if (w - left - right) < w * 0.3 or (h - top - bottom) < h * 0.3:
        return 0, 0, w, h
    return left, top, w - right, h - bottom


def work_hashes(g: F32) -> list[int]:
    out: list[int] = []
    for size, fx, fy in _WINDOWS:
        v = view(g, size, fx, fy)
        for arr in (v, v[:, ::-1]):
            hv = dct_hash(np.ascontiguousarray(arr))
            if hv is not None and hv not in out:
                out.append(hv)
    return out


ROTATIONS = (-10.0, -5.0, 5.0, 10.0)  # degrees a query is turned back by, for rotated copies


def unrotated_centres(g: F32) -> list[F32]:
    """The query turned back by each of ROTATIONS, cut to the 60 % centre that the turn keeps
    whole: a copy rotated by about that angle lands near the work's 60 % centre view. Only the
    centre is rendered (the turn's translation moved by the window's corner): a third of the
    pixels, the same values to float rounding."""
    h, w = g.shape
    x0, y0, cw, ch = window(g.shape, 0.6, 0.5, 0.5)
    out = []
    for deg in ROTATIONS:
        turn = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
        turn[:, 2] -= (x0, y0)
        out.append(
            np.asarray(cv2.warpAffine(g, turn, (cw, ch), flags=cv2.INTER_LINEAR), np.float32)
        )
    return out


OVERLAY_DIV = 40  # strokes up to ~1/40 of the short side are taken for overlays: 7 px at 288
OVERLAY_RISE = 20.0  # grey levels a stroke stands above (or below) the opened (closed) picture


def without_overlays(g: F32) -> list[F32]:
    """Two views of the query: thin bright strokes (watermark text) painted over by their
    surroundings, and thin dark ones. A stroke narrower than the kernel is where the grey
    opening drops (the closing rises) by more than OVERLAY_RISE; only those pixels change.
    Opening the whole frame also wiped a striped or textured picture's own fine lines, and
    one view for both kinds would take a picture's dark outlines with a bright caption."""
    side = max(3, round(min(g.shape) / OVERLAY_DIV) | 1)
    kernel = np.ones((side, side), np.uint8)
    opened = cv2.morphologyEx(g, cv2.MORPH_OPEN, kernel)
    closed = cv2.morphologyEx(g, cv2.MORPH_CLOSE, kernel)
    return [
        np.where(g - opened > OVERLAY_RISE, opened, g),
        np.where(closed - g > OVERLAY_RISE, closed, g),
    ]


def query_hashes(g: F32) -> list[int]:
    out: list[int] = []
    x0, y0, x1, y1 = trim_box(g)
    for arr in [g, g[y0:y1, x0:x1], *unrotated_centres(g), *without_overlays(g)]:
        hv = dct_hash(np.ascontiguousarray(arr))
        if hv is not None and hv not in out:
            out.append(hv)
    return out


class ImageMultiCropHash(FingerprintType):
    """Space-separated 64-bit DCT hashes: work views (crops, mirrors) or query views (trimmed)."""

    name: ClassVar[str] = "image_multicrop"
    version: ClassVar[int] = 1
    media: ClassVar[MediaKind] = MediaKind.IMAGE

    @classmethod
    def from_image(cls, img: Image.Image) -> str:
        require_information(img)
        return " ".join(hex64(h) for h in work_hashes(gray(img)))

    @classmethod
    def query_from_image(cls, img: Image.Image) -> str:
        require_information(img)
        return " ".join(hex64(h) for h in query_hashes(gray(img)))

    @classmethod
    def from_bytes(cls, data: bytes) -> str:
        return cls.from_image(decode_image(data).img)

    @classmethod
    def query_from_bytes(cls, data: bytes) -> str:
        return cls.query_from_image(decode_image(data).img)

    @classmethod
    def distance(cls, a: str, b: str) -> float:
        """Smallest Hamming distance between any view of a and any view of b."""
        ha, hb = parse_hashes(a), parse_hashes(b)
        return float(min((x ^ y).bit_count() for x in ha for y in hb)) if ha and hb else 64.0
