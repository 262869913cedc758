"""Safe image decoding, the quality gate, and the pHash fingerprint types.

Decoding is the attack surface: the format is pinned to what ``sniff`` saw, pixel and frame
counts are capped before any pixel is decoded, a decompression-bomb warning is an error,
truncated files stay errors, and any exception at all becomes one ``Unfingerprintable``.
"""

from __future__ import annotations

import dataclasses
import io
import warnings
from typing import ClassVar

import imagehash
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFile, ImageOps

from fingerprints.base import FingerprintType, MediaKind, Unfingerprintable
from fingerprints.hamming import popcount64
from fingerprints.sniff import sniff

MAX_IMAGE_PIXELS = 40_000_000  # 8K x 5K; larger files are refused, not downscaled
MAX_FRAMES = 500  # animated GIF/WebP: only the first frame is used, but bombs are refused
WORK_SIDE = 512  # decoded images are reduced to at most this many pixels a side
MIN_GRAY_STD = 8.0  # quality gate: below this, images are near-blank or flat

Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False

_PIL_FORMAT = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/bmp": "BMP",
    "image/avif": "AVIF",
}


@dataclasses.dataclass(frozen=True, slots=True)
class DecodedImage:
    """The first frame as RGB reduced to WORK_SIDE, and the file's own pixel size."""

    img: Image.Image
    width: int
    height: int


def _open(data: bytes) -> tuple[Image.Image, int, int]:
    sniffed = sniff(data)
    if sniffed is None or sniffed.mime not in _PIL_FORMAT:
        raise Unfingerprintable("not an allowed image format")
    img = Image.open(io.BytesIO(data), formats=[_PIL_FORMAT[sniffed.mime]])
    width, height = img.size
    if width * height > MAX_IMAGE_PIXELS:
        raise Unfingerprintable(f"too many pixels ({width}x{height})")
    if getattr(img, "n_frames", 1) > MAX_FRAMES:
        raise Unfingerprintable("too many frames")
    if img.format == "JPEG":
        img.draft("RGB", (WORK_SIDE, WORK_SIDE))  # DCT scaling: decode at 1/2..1/8 size
    return img, width, height  # the size before draft() shrinks it


def _normalise(img: Image.Image) -> Image.Image:
    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(canvas, rgba)
    img = img.convert("RGB")
    img.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return img


def decode_image(data: bytes) -> DecodedImage:
    """Decode the first frame as RGB, at most WORK_SIDE a side; raise Unfingerprintable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img, width, height = _open(data)
            with img:
                img.load()
                return DecodedImage(_normalise(img), width, height)
    except Unfingerprintable:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Unfingerprintable(f"too many pixels: {exc}") from None
    except Exception as exc:
        raise Unfingerprintable(f"undecodable: {type(exc).__name__}: {exc}") from None


def gray_array(img: Image.Image, side: int = 64) -> npt.NDArray[np.float32]:
    return np.asarray(img.convert("L").resize((side, side), Image.Resampling.BOX), np.float32)


def has_information(img: Image.Image) -> bool:
    """False for near-blank or flat images: their hashes collide across unrelated works."""
    g = gray_array(img)
    if float(g.std()) < MIN_GRAY_STD:
        return False
    edges = np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean()
    return bool(edges > 1.0)


def require_information(img: Image.Image) -> None:
    if not has_information(img):
        raise Unfingerprintable("low information: near-blank or flat image")


def phash64(img: Image.Image) -> int:
    return int(str(imagehash.phash(img)), 16)


def hex64(value: int) -> str:
    return f"{value:016x}"


class ImagePHash(FingerprintType):
    """DCT perceptual hash (imagehash): survives resizing and recompression, not heavy crops."""

    name: ClassVar[str] = "image_phash"
    version: ClassVar[int] = 1
    media: ClassVar[MediaKind] = MediaKind.IMAGE

    @classmethod
    def from_image(cls, img: Image.Image) -> str:
        require_information(img)
        return hex64(phash64(img))

    @classmethod
    def query_from_image(cls, img: Image.Image) -> str:
        return cls.from_image(img)

    @classmethod
    def from_bytes(cls, data: bytes) -> str:
        return cls.from_image(decode_image(data).img)

    @classmethod
    def distance(cls, a: str, b: str) -> float:
        return float(popcount64(int(a, 16) ^ int(b, 16)))
