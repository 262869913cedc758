"""Every fingerprint type this package can compute, by storage name."""

from __future__ import annotations

from fingerprints.audio import AudioChromaprint, AudioChromaprintBand
from fingerprints.base import FingerprintType, MediaKind, UnknownFingerprintType
from fingerprints.image import ImagePHash
from fingerprints.keypoints import ImageORB
from fingerprints.landmarks import AudioLandmarks
from fingerprints.multicrop import ImageMultiCropHash

ALL: tuple[type[FingerprintType], ...] = (
    ImagePHash,
    ImageMultiCropHash,
    ImageORB,
    AudioChromaprint,
    AudioChromaprintBand,
    AudioLandmarks,
)
_BY_NAME = {t.name: t for t in ALL}


def by_name(name: str) -> type[FingerprintType]:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownFingerprintType(name) from None


def for_media(media: MediaKind) -> tuple[type[FingerprintType], ...]:
    return tuple(t for t in ALL if t.media is media)
