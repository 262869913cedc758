"""The Matcher: catalogue fingerprints in, hits above the zero-false-positive thresholds out."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

from fingerprints import audio
from fingerprints.audiomatch import SubFingerprintIndex
from fingerprints.base import MediaKind
from fingerprints.hamming import parse_hashes
from fingerprints.image import ImagePHash
from fingerprints.index import LinearIndex
from fingerprints.prints import Prints
from fingerprints.registry import by_name

logger = logging.getLogger(__name__)

# Defaults chosen by bench/bench_matching.py at zero false positives (see bench/results).
DEFAULT_THRESHOLDS: dict[str, float] = {
    "image_phash": 6,  # max Hamming distance of 64
    "audio_chromaprint": 0.30,  # max aligned bit error rate
}


@dataclasses.dataclass(frozen=True, slots=True)
class Hit:
    """One catalogue work found in a file.

    ``offset_s``: for audio, the time in the work that lines up with the start of the found
    file (negative when the work starts later inside a longer file). ``region``: for images,
    (x, y, w, h) in the found file's pixels that hold the work, when known.
    """

    work_id: int
    score: float
    offset_s: float | None = None
    region: tuple[int, int, int, int] | None = None
    method: str = ""


class Matcher:
    """In-memory indexes over catalogue fingerprints, one per fingerprint type."""

    def __init__(self, thresholds: Mapping[str, float] | None = None) -> None:
        self.thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
        self._phash = LinearIndex()
        self._audio = SubFingerprintIndex()
        self._kinds: dict[int, MediaKind] = {}

    def __len__(self) -> int:
        return len(self._kinds)

    def add(self, work_id: int, kind: MediaKind, values: Mapping[str, tuple[int, str]]) -> None:
        """Index a work's stored fingerprints; values of stale versions are skipped."""
        self.remove(work_id)
        self._kinds[work_id] = MediaKind(kind)
        for name, (version, value) in values.items():
            ftype = by_name(name)
            if ftype.version != version:
                logger.info("stale fingerprint skipped", extra={"work": work_id, "type": name})
                continue
            if name == ImagePHash.name:
                self._phash.add(work_id, parse_hashes(value))
            elif name == audio.AudioChromaprint.name:
                self._audio.add(work_id, audio.decode_raw(value))

    def remove(self, work_id: int) -> None:
        if self._kinds.pop(work_id, None) is None:
            return
        self._phash.remove(work_id)
        self._audio.remove(work_id)

    def search(self, prints: Prints) -> list[Hit]:
        """Hits best first, one per work, only above the thresholds."""
        hits = (
            self._search_image(prints)
            if prints.kind is MediaKind.IMAGE
            else self._search_audio(prints)
        )
        best: dict[int, Hit] = {}
        for hit in hits:
            if hit.work_id not in best or hit.score > best[hit.work_id].score:
                best[hit.work_id] = hit
        return sorted(best.values(), key=lambda h: -h.score)

    def _search_image(self, prints: Prints) -> list[Hit]:
        hits: list[Hit] = []
        entry = prints.values.get(ImagePHash.name)
        if entry is not None and entry[0] == ImagePHash.version:
            radius = int(self.thresholds[ImagePHash.name])
            for q in parse_hashes(entry[1]):
                for work_id, dist in self._phash.search(q, radius).items():
                    hits.append(Hit(work_id, 1.0 - dist / 64.0, None, None, ImagePHash.name))
        return hits

    def _search_audio(self, prints: Prints) -> list[Hit]:
        name = audio.AudioChromaprint.name
        entry = prints.values.get(name)
        if entry is None or entry[0] != audio.AudioChromaprint.version:
            return []
        limit = self.thresholds[name]
        hits = []
        for found in self._audio.search(audio.decode_raw(entry[1])):
            if found.ber <= limit:
                score = max(0.0, min(1.0, 1.0 - 2.0 * found.ber))
                hits.append(Hit(found.work_id, score, found.offset * audio.FRAME_S, None, name))
        return hits
