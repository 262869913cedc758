"""The Matcher: catalogue fingerprints in, hits above the zero-false-positive thresholds out.

Images: a fast pass looks the query's hashes up in multi-index hashing tables of every
work's views (plain pHash, and crop/mirror views); candidates, and the works that share the
most keypoint descriptors with the query, are verified with ORB + RANSAC, which also gives
the region. Audio: Chromaprint excerpt matching, plain and on speed/pitch-corrected variants,
decided by a z-like statistic of the aligned bit error rate that grows with evidence length;
a second Chromaprint of the telephone band (both sides band-limited) finds telephone copies;
peak-pair landmarks (fingerprints.landmarks) find what damages Chromaprint's whole-frame bits:
speech over the music, short excerpts, pitch shifts, judged by their votes and by their
contrast with the votes chance gave the same work elsewhere and the other works. The works
the landmarks line up are also candidates for the plain and band Chromaprints, verified at the
landmarks' offset (a telephone copy or speech over the music may leave no sub-fingerprint
exact for Chromaprint's own candidate search). A longer found file must clear every bar by
more: it offers chance more places to line up.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping

from fingerprints import audio, landmarks
from fingerprints.audiomatch import Alignment, SubFingerprintIndex
from fingerprints.base import MediaKind
from fingerprints.hamming import parse_hashes
from fingerprints.image import ImagePHash
from fingerprints.index import MultiIndexHashing
from fingerprints.keypoints import ImageORB, Keypoints, verify
from fingerprints.landmarks import (
    AudioLandmarks,
    LandmarkIndex,
    decode_peaks,
    decode_ranked_peaks,
)
from fingerprints.multicrop import ImageMultiCropHash
from fingerprints.orbindex import OrbIndex
from fingerprints.prints import Prints
from fingerprints.registry import by_name

logger = logging.getLogger(__name__)

SHIFTED = "audio_chromaprint_shifted"  # threshold key for speed/pitch-corrected audio variants

CONTRAST = "audio_landmarks_contrast"  # threshold key: landmark votes over their background
# Contrast: votes / the larger of the work's best votes at another offset (a work that
# collects random votes everywhere) and the CONTRAST_RANK-th best other work's votes (a query
# that collects them from every work), never under CONTRAST_FLOOR. Ranked third, so a
# catalogue holding a track and two edits of it does not hide all three. The floor keeps a
# few chance votes over a near-empty background from standing out: at 8, a distractor excerpt's
# 21 votes over 9 reached 2.33 against the 2.5 default; at 12, on the evidence of the 2,030-,
# 24,970- and 99,970-work bench runs of 2026-12-01, no distractor passes 2.0 and recall at the
# defaults is the same (bench/results/matching-audio-full.md).
CONTRAST_RANK = 3
CONTRAST_FLOOR = 12.0
# A longer found file offers chance more windows to line up in: per e-fold of length past
# 10 s, Chromaprint's z and the landmark votes must clear their bar by this much more.
# Measured (bench/results/matching-audio-full.md): without it full tracks and 30 s excerpts
# of one work set every bar against the others, and 5 s excerpts paid for it.
LONG_Z, LONG_VOTES = 0.5, 10.0
# The landmark index holds ~38-50 kB a work (triplet postings and peaks of real music: 1.25 GB
# at 25,000 works, 3.8 GB at 100,000) and its search grows with the catalogue (0.13 s of CPU
# for 10 s of audio at 25,000 works, 0.19 s at 100,000 on a 2-core Zen 4:
# bench/results/matching-audio-full.md):
# past this many audio works (a default; RIGHTSWATCH_LANDMARK_MAX_WORKS) Chromaprint alone.
LANDMARK_MAX_WORKS = 25_000
# Defaults: the zero-false-positive thresholds measured by bench/bench_matching.py
# (bench/results/matching.md), each moved one notch stricter for catalogues larger than the
# benchmark's. Settings may override them per type name.
DEFAULT_THRESHOLDS: dict[str, float] = {
    ImagePHash.name: 8,  # max Hamming distance (of 64) of the plain pHash
    ImageMultiCropHash.name: 6,  # max Hamming distance between a query view and a work view
    ImageORB.name: 24,  # min RANSAC inliers of a similarity fit
    # Audio: measured in the full-size audio run (10.9 h of distractor music, 800 distractor
    # excerpts of 10 s and 5 s, 30 works whose every copy also tries every other work).
    # Chromaprint: min (0.5 - BER) * sqrt(frames) of the best window, less the length term
    # (LONG_Z); measured 1.39 (1.16 before landmark candidates were verified too, which also
    # finds more chance alignments). Speed/pitch variants and the band print: 1.44, 1.45.
    audio.AudioChromaprint.name: 1.5,
    SHIFTED: 1.7,
    audio.AudioChromaprintBand.name: 1.5,
    # Landmarks: min distinct pair hashes agreeing on one offset in a 20 s window, less the
    # length term (LONG_VOTES). Chance votes grow with the catalogue: measured 41 at 30 works,
    # 51 with 2,000 landmark-only distractor works, 57 with 24,970 (LANDMARK_MAX_WORKS) and
    # 57 with 99,970, so the default is a notch above. Contrast (_background): measured 2.24,
    # 2.02, 2.02, 2.02 (2.10 and 1.75 when a work's triplets came from 4 pair partners, not 3).
    AudioLandmarks.name: 62,
    CONTRAST: 2.5,
}
LOOSE_RADIUS = 12  # evidence(): widest Hamming radius reported, for calibration
LOOSE_INLIERS = 6
LOOSE_Z = 0.5
LOOSE_VOTES = 4
REGION_INLIERS = 8  # fewest inliers trusted for drawing the region of a hash hit


@dataclasses.dataclass(frozen=True, slots=True)
class Hit:
    """One catalogue work found in a file.

    ``offset_s``: for audio, the time in the work that lines up with the start of the found
    file (negative when the work starts later inside a longer file). ``region``: for images,
    (x, y, w, h) in the found file's pixels that holds the work.
    """

    work_id: int
    score: float
    offset_s: float | None = None
    region: tuple[int, int, int, int] | None = None
    method: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Evidence:
    """One method's raw measurement for one work (``raw``: distance, inliers or z)."""

    work_id: int
    method: str
    raw: float
    hit: Hit


class Matcher:
    """In-memory indexes over catalogue fingerprints, one per fingerprint type."""

    def __init__(
        self, thresholds: Mapping[str, float] | None = None, landmark_max_works: int | None = None
    ) -> None:
        unknown = set(thresholds or {}) - set(DEFAULT_THRESHOLDS)
        if unknown:
            raise ValueError(f"unknown threshold types: {', '.join(sorted(unknown))}")
        self.thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
        self._hash = {
            name: MultiIndexHashing.for_radius(int(self.thresholds[name]))
            for name in (ImagePHash.name, ImageMultiCropHash.name)
        }
        self._orb = OrbIndex()
        self._audio = SubFingerprintIndex()
        self._band = SubFingerprintIndex()
        self._landmarks = LandmarkIndex()
        self._landmarks_warned = False
        self.landmark_max_works = (
            LANDMARK_MAX_WORKS if landmark_max_works is None else landmark_max_works
        )
        self._kinds: dict[int, MediaKind] = {}

    def __len__(self) -> int:
        return len(self._kinds)

    def add(self, work_id: int, kind: MediaKind, values: Mapping[str, tuple[int, str]]) -> None:
        """Index a work's stored fingerprints (replacing any); stale versions are skipped."""
        self.remove(work_id)
        self._kinds[work_id] = MediaKind(kind)
        for name, (version, value) in values.items():
            if by_name(name).version != version:
                logger.info(
                    "stale fingerprint skipped: work %s type %s v%s", work_id, name, version
                )
                continue
            if name in self._hash:
                self._hash[name].add(work_id, parse_hashes(value))
            elif name == ImageORB.name:
                self._orb.add(work_id, Keypoints.decode(value))
            elif name == audio.AudioChromaprint.name:
                self._audio.add(work_id, audio.decode_query(value)[0])
            elif name == audio.AudioChromaprintBand.name:
                self._band.add(work_id, audio.decode_raw(value))
            elif name == AudioLandmarks.name:
                self._landmarks.add(work_id, *decode_peaks(value))

    def remove(self, work_id: int) -> None:
        if self._kinds.pop(work_id, None) is None:
            return
        for index in self._hash.values():
            index.remove(work_id)
        self._orb.remove(work_id)
        self._audio.remove(work_id)
        self._band.remove(work_id)
        self._landmarks.remove(work_id)

    def search(self, prints: Prints) -> list[Hit]:
        """Hits best first, one per work, only above the thresholds."""
        best: dict[int, Hit] = {}
        for ev in self._collect(prints, loose=False):
            if self._passes(ev) and (
                ev.work_id not in best or ev.hit.score > best[ev.work_id].score
            ):
                best[ev.work_id] = ev.hit
        return sorted(best.values(), key=lambda h: (-h.score, h.work_id))

    def evidence(self, prints: Prints) -> list[Evidence]:
        """Every method's raw evidence well below the thresholds (for choosing them)."""
        return self._collect(prints, loose=True)

    def _passes(self, ev: Evidence) -> bool:
        limit = self.thresholds[ev.method]
        return ev.raw <= limit if ev.method in self._hash else ev.raw >= limit

    def _collect(self, prints: Prints, *, loose: bool) -> list[Evidence]:
        if prints.kind is MediaKind.IMAGE:
            return self._image(prints, loose)
        return self._sound(prints, loose)

    def _value(self, prints: Prints, name: str) -> str | None:
        entry = prints.values.get(name)
        return entry[1] if entry is not None and entry[0] == by_name(name).version else None

    def _image(self, prints: Prints, loose: bool) -> list[Evidence]:
        out: list[Evidence] = []
        orb_value = self._value(prints, ImageORB.name)
        query_kp = Keypoints.decode(orb_value) if orb_value else None
        scale = (prints.width or 1) / query_kp.width if query_kp and query_kp.width else 1.0
        full = (0, 0, prints.width or 0, prints.height or 0)
        hash_works: set[int] = set()
        for name, index in self._hash.items():
            value = self._value(prints, name)
            if value is None:
                continue
            radius = LOOSE_RADIUS if loose else int(self.thresholds[name])
            for work_id, dist in index.search_many(parse_hashes(value), radius).items():
                hash_works.add(work_id)
                region = self._region(work_id, query_kp, scale, REGION_INLIERS) or full
                out.append(
                    Evidence(work_id, name, dist, Hit(work_id, 1 - dist / 64, None, region, name))
                )
        if query_kp is None or len(query_kp.desc) == 0:
            return out
        floor = LOOSE_INLIERS if loose else int(self.thresholds[ImageORB.name])
        for work_id, _votes in self._orb.candidates(query_kp):
            work_kp = self._orb.get(work_id)
            found_v = verify(work_kp, query_kp) if work_kp is not None else None
            if found_v is None or found_v.inliers < floor:
                continue
            region = _box(found_v.box, scale, prints)
            score = min(1.0, 0.5 + found_v.inliers / 200)
            out.append(
                Evidence(
                    work_id,
                    ImageORB.name,
                    found_v.inliers,
                    Hit(work_id, score, None, region, ImageORB.name),
                )
            )
        return out

    def _region(
        self, work_id: int, query_kp: Keypoints | None, scale: float, floor: int
    ) -> tuple[int, int, int, int] | None:
        work_kp = self._orb.get(work_id)
        if work_kp is None or query_kp is None:
            return None
        found = verify(work_kp, query_kp)
        if found is None or found.inliers < floor:
            return None
        return _box(found.box, scale, None)

    def _landmarks_on(self) -> bool:
        if len(self._landmarks) <= self.landmark_max_works:
            return True
        if not self._landmarks_warned:
            self._landmarks_warned = True
            logger.warning(
                "%d audio works: over %d, landmark matching is off (Chromaprint only)",
                len(self._landmarks),
                self.landmark_max_works,
            )
        return False

    def _sound(self, prints: Prints, loose: bool) -> list[Evidence]:
        length = math.log(max(prints.duration_s or 0.0, 10.0) / 10.0)
        name = audio.AudioChromaprint.name
        value = self._value(prints, name)
        tries: list[tuple[str, float, audio.U32, SubFingerprintIndex]] = []
        if value is not None:
            plain, shifted = audio.decode_query(value)
            tries = [(name, 1.0, plain, self._audio)]
            tries += [(SHIFTED, s, raw, self._audio) for _f, s, raw in shifted]
        band = self._value(prints, audio.AudioChromaprintBand.name)
        if band is not None:
            tries.append((audio.AudioChromaprintBand.name, 1.0, audio.decode_raw(band), self._band))
        out: list[Evidence] = []
        for method, scale, raw, index in tries:
            floor = LOOSE_Z if loose else self.thresholds[method]
            for al in index.search(raw, scale):
                if al.z - LONG_Z * length >= floor:
                    out.append(_chroma_evidence(al, method, length))
        peaks = self._value(prints, AudioLandmarks.name)
        if peaks is not None and self._landmarks_on():
            found = self._landmarks.search(*decode_ranked_peaks(peaks))
            unshifted = [t for t in tries if t[0] != SHIFTED]  # plain and band prints
            out += self._cross_check(found, unshifted, length, loose)
            for lm in found:
                score = min(1.0, 0.5 + lm.votes / 400)
                offset_s = lm.offset * landmarks.FRAME_S
                hit = Hit(lm.work_id, score, offset_s, None, AudioLandmarks.name)
                for method, measure in (
                    (AudioLandmarks.name, lm.votes - LONG_VOTES * length),
                    (CONTRAST, lm.votes / _background(lm, found)),
                ):
                    if lm.votes >= LOOSE_VOTES if loose else measure >= self.thresholds[method]:
                        hit = dataclasses.replace(hit, method=method)
                        out.append(Evidence(lm.work_id, method, measure, hit))
        return out

    def _cross_check(
        self,
        found: list[landmarks.Landmark],
        tries: list[tuple[str, float, audio.U32, SubFingerprintIndex]],
        length: float,
        loose: bool,
    ) -> list[Evidence]:
        """The plain and band Chromaprints verified where the landmarks line a work up.

        Chromaprint proposes alignments only from sub-fingerprints that match exactly, and a
        telephone copy or speech over the music may leave none, although most bits still
        agree. The landmark hits (below their own bars too) are candidates then: the aligned
        bit error rate at their offset is the evidence, judged by the same bars as always.
        """
        out: list[Evidence] = []
        for method, _scale, raw, index in tries:
            floor = LOOSE_Z if loose else self.thresholds[method]
            for lm in found:
                if lm.work_id not in index:
                    continue
                at = round(lm.offset * landmarks.FRAME_S / audio.FRAME_S)
                al = index.verify(raw, lm.work_id, at - 1)  # tries at-3 .. at+2
                if al is not None and al.z - LONG_Z * length >= floor:
                    out.append(_chroma_evidence(al, method, length))
        return out


def _chroma_evidence(al: Alignment, method: str, length: float) -> Evidence:
    """A Chromaprint alignment as evidence: z less the length term; score 1 - 2 x BER."""
    score = max(0.0, min(1.0, 1.0 - 2.0 * al.ber))
    hit = Hit(al.work_id, score, al.offset * audio.FRAME_S, None, method)
    return Evidence(al.work_id, method, al.z - LONG_Z * length, hit)


def _background(lm: landmarks.Landmark, found: list[landmarks.Landmark]) -> float:
    """The votes a landmark hit must stand out from (see CONTRAST_RANK)."""
    others = sorted((o.votes for o in found if o.work_id != lm.work_id), reverse=True)
    ranked = others[CONTRAST_RANK - 1] if len(others) >= CONTRAST_RANK else 0
    return max(float(lm.background), float(ranked), CONTRAST_FLOOR)


def _box(
    box: tuple[float, float, float, float], scale: float, prints: Prints | None
) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (v * scale for v in box)
    if prints is not None and prints.width and prints.height:
        x0, x1 = max(0.0, x0), min(float(prints.width), x1)
        y0, y1 = max(0.0, y0), min(float(prints.height), y1)
    return round(x0), round(y0), max(0, round(x1 - x0)), max(0, round(y1 - y0))
