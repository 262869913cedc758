"""Fingerprint a file once per media kind with every registered type for that kind."""

from __future__ import annotations

import dataclasses

from fingerprints import audio, image
from fingerprints.base import MediaKind, Unfingerprintable
from fingerprints.registry import for_media
from fingerprints.sniff import sniff


@dataclasses.dataclass(frozen=True, slots=True)
class Prints:
    """All fingerprints of one file: ``values`` maps type name to (version, value)."""

    kind: MediaKind
    mime: str
    values: dict[str, tuple[int, str]]
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None


def _fingerprint(data: bytes, *, query: bool) -> Prints:
    sniffed = sniff(data)
    if sniffed is None:
        raise Unfingerprintable("neither an allowed image nor audio format")
    values: dict[str, tuple[int, str]] = {}
    if sniffed.kind is MediaKind.IMAGE:
        decoded = image.decode_image(data)
        for t in for_media(MediaKind.IMAGE):
            make = getattr(t, "query_from_image" if query else "from_image")
            values[t.name] = (t.version, make(decoded.img))
        return Prints(sniffed.kind, sniffed.mime, values, None, decoded.width, decoded.height)
    seconds = audio.QUERY_SECONDS if query else audio.WORK_SECONDS
    samples = audio.decode_audio(data, seconds)
    for t in for_media(MediaKind.AUDIO):
        make = getattr(t, "query_from_samples" if query else "from_samples")
        values[t.name] = (t.version, make(samples))
    return Prints(sniffed.kind, sniffed.mime, values, samples.size / audio.SAMPLE_RATE)


def fingerprint_work(data: bytes) -> Prints:
    """Fingerprints of a catalogue original; raises Unfingerprintable with a one-line reason."""
    return _fingerprint(data, query=False)


def fingerprint_query(data: bytes) -> Prints:
    """Fingerprints of a found file (query-side variants); raises Unfingerprintable."""
    return _fingerprint(data, query=True)
