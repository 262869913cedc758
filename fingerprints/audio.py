"""Safe audio decoding with PyAV and the Chromaprint fingerprint type.

The demuxer is forced from what ``sniff`` saw (no probing, no playlist or concat demuxers),
no protocol may be opened from inside the file, and only the first ``max_seconds`` of
decoded samples are kept whatever the header claims, so hour-long bombs cost seconds.
"""

from __future__ import annotations

import base64
import io
import itertools
from collections.abc import Iterator
from typing import ClassVar

import av
import chromaprint
import numpy as np
import numpy.typing as npt
from av.audio.fifo import AudioFifo

from fingerprints.base import FingerprintType, MediaKind, Unfingerprintable
from fingerprints.sniff import sniff

SAMPLE_RATE = 11025  # Chromaprint's internal rate: resampling once here saves it the work
WORK_SECONDS = 600.0  # catalogue originals: first 10 minutes
QUERY_SECONDS = 300.0  # found files: first 5 minutes
MAX_CHANNELS = 32
MAX_RATE = 384_000
FRAME_S = 4096 / 3 / SAMPLE_RATE  # Chromaprint's hop: one sub-fingerprint per 0.1238 s

_DEMUXER = {
    "audio/mpeg": "mp3",
    "audio/ogg": "ogg",
    "audio/flac": "flac",
    "audio/wav": "wav",
    "audio/mp4": "mp4",
    "audio/aac": "aac",
    "audio/webm": "matroska",
    "audio/x-matroska": "matroska",
}
# "data" is inert; listing one protocol means every other (file, http, concat...) is refused.
_OPTIONS = {"protocol_whitelist": "data", "enable_drefs": "0", "use_absolute_path": "0"}

I16 = npt.NDArray[np.int16]
U32 = npt.NDArray[np.uint32]


class _Batcher:
    """Resample decoded frames to mono s16 at SAMPLE_RATE in batches of ~BATCH samples.

    Codecs hand out small frames (Vorbis 128-1,024 samples, MP3 1,152): resampling each one
    costs more in per-call overhead than the resampling itself, so frames of one format are
    queued in an FFmpeg audio FIFO and resampled as one large frame. The FIFO copies samples
    in C: turning every frame into a numpy array and joining them cost about 30 % of
    decoding's CPU. A format, layout or rate change (MP3s of two rates joined end to end)
    drains the queue and the resampler and starts new ones: a resampler takes one input
    format only.
    """

    BATCH = 1 << 16

    def __init__(self) -> None:
        self._key: tuple[str, str, int] | None = None  # of the frames queued: none yet
        self._start()

    def _start(self) -> None:
        self._fifo = AudioFifo()
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)

    def add(self, frame: av.AudioFrame) -> list[I16]:
        key = (frame.format.name, frame.layout.name, int(frame.sample_rate or 0))
        out: list[I16] = []
        if key != self._key:
            out = self.flush()
            self._key = key
            self._start()
        frame.pts = None  # the FIFO checks timestamps are continuous: a damaged file's are not
        self._fifo.write(frame)
        if self._fifo.samples >= self.BATCH:
            out += self._emit()
        return out

    def _emit(self) -> list[I16]:
        big = self._fifo.read()
        return [] if big is None else self._resample(big)

    def _resample(self, frame: av.AudioFrame | None) -> list[I16]:
        return [_mono16(o) for o in self._resampler.resample(frame)]

    def flush(self) -> list[I16]:
        """What is queued and what the resampler holds back."""
        return (self._emit() + self._resample(None)) if self._key is not None else []


def _mono16(frame: av.AudioFrame) -> I16:
    return np.asarray(frame.to_ndarray(), np.int16).reshape(-1)


def decode_audio(data: bytes, max_seconds: float = WORK_SECONDS) -> I16:
    """Mono s16 samples at SAMPLE_RATE of the first max_seconds; raise Unfingerprintable."""
    sniffed = sniff(data)
    if sniffed is None or sniffed.mime not in _DEMUXER:
        raise Unfingerprintable("not an allowed audio format")
    limit = int(max_seconds * SAMPLE_RATE)
    chunks: list[I16] = []
    have = 0
    try:
        with av.open(
            io.BytesIO(data),
            "r",
            format=_DEMUXER[sniffed.mime],
            options=_OPTIONS,
            metadata_errors="replace",  # tags are attacker text: invalid UTF-8 must not hide a copy
        ) as box:
            if not box.streams.audio:
                raise Unfingerprintable("no audio stream")
            stream = box.streams.audio[0]
            ctx = stream.codec_context
            if (ctx.channels or 0) > MAX_CHANNELS or (ctx.sample_rate or 0) > MAX_RATE:
                raise Unfingerprintable("too many channels or too high a sample rate")
            resampler = _Batcher()
            for frame in _frames(box, stream):
                for chunk in resampler.add(frame):
                    chunks.append(chunk)
                    have += chunk.size
                if have >= limit:
                    break
            else:
                chunks.extend(resampler.flush())
    except Unfingerprintable:
        raise
    except Exception as exc:
        raise Unfingerprintable(f"undecodable: {type(exc).__name__}: {exc}") from None
    if not chunks:
        raise Unfingerprintable("undecodable: no audio samples")
    return np.concatenate(chunks)[:limit].astype(np.int16, copy=False)


def _frames(box: av.container.InputContainer, stream: av.AudioStream) -> Iterator[av.AudioFrame]:
    """The stream's decoded frames. A packet its decoder rejects is skipped, as ffmpeg skips
    it: one damaged frame, or MP3s of two sample rates joined end to end, must not hide the
    rest of a copy. A container that breaks after audio has decoded ends there, as a truncated
    file does (an Ogg chain whose next link changes format). When nothing decodes, the first
    error is the error."""
    first: Exception | None = None
    decoded = False
    packets = box.demux(stream)
    while True:
        try:
            packet = next(packets, None)
        except av.error.FFmpegError:
            if decoded:
                return
            raise
        if packet is None:
            break
        try:
            frames = packet.decode()
        except av.error.InvalidDataError as exc:  # this packet only: the file goes on
            first = first or exc
            continue
        decoded = decoded or bool(frames)
        yield from frames
    if first is not None and not decoded:
        raise first


def chromaprint_raw(samples: I16, rate: int = SAMPLE_RATE) -> U32:
    """Raw 32-bit sub-fingerprints, one per FRAME_S seconds."""
    fp = chromaprint.Fingerprinter()
    fp.start(rate, 1)
    fp.feed(np.ascontiguousarray(samples, dtype="<i2").tobytes())
    raw, _algorithm = chromaprint.decode_fingerprint(fp.finish())
    return np.asarray(raw, dtype=np.int64).astype(np.uint32)


def encode_raw(raw: U32) -> str:
    return base64.b64encode(raw.astype("<u4").tobytes()).decode("ascii")


def decode_raw(value: str) -> U32:
    return np.frombuffer(base64.b64decode(value), dtype="<u4").astype(np.uint32)


SILENCE = 4.0  # mean |sample| (of 32,768) under which a file is silence: -78 dBFS


def require_sound(samples: I16) -> None:
    if samples.size < 3 * SAMPLE_RATE:
        raise Unfingerprintable("too short: under 3 seconds of audio")
    # Digital silence and dither (a few LSB), not a quiet passage: music turned down 42 dB
    # (mean 10, -70 dBFS) still fingerprints and matches.
    if float(np.abs(samples.astype(np.float32)).mean()) < SILENCE:
        raise Unfingerprintable("low information: silence")


VARIANT_SECONDS = 15.0  # query variants are made from this much of the start of the file
SPEED_GRID = tuple(1 + k * 0.002 for k in range(-10, 11) if k)  # +-2 % in 0.2 % steps
SEMITONE = 2 ** (1 / 12)


def variants() -> list[tuple[float, float]]:
    """(resample factor, time scale) pairs tried on the query besides the file as found.

    Resampling by f undoes a speed change of 1/f (tempo and pitch, like a faster turntable):
    time scale 1. It also undoes a pitch-only shift, leaving the tempo off by f: the query's
    frame i then lines up with the work's frame i * f.
    """
    return [(f, 1.0) for f in SPEED_GRID] + [(1 / SEMITONE, 1 / SEMITONE), (SEMITONE, SEMITONE)]


def resample(samples: I16, factor: float) -> I16:
    """y(t) = x(factor * t) by linear interpolation (Chromaprint only reads < 3.5 kHz)."""
    n = int((samples.size - 1) / factor)
    pos = np.arange(n, dtype=np.float64) * factor
    return np.interp(pos, np.arange(samples.size), samples).astype(np.int16)


def encode_query(plain: U32, shifted: list[tuple[float, float, U32]]) -> str:
    """Plain value, then ';factor/scale=value' segments for the query variants."""
    parts = [encode_raw(plain)] + [f"{f:.6f}/{s:.6f}={encode_raw(r)}" for f, s, r in shifted]
    return ";".join(parts)


def decode_query(value: str) -> tuple[U32, list[tuple[float, float, U32]]]:
    head, *rest = value.split(";")
    shifted = []
    for part in rest:
        fs, raw = part.split("=", 1)
        f, s = fs.split("/")
        shifted.append((float(f), float(s), decode_raw(raw)))
    return decode_raw(head), shifted


class AudioType(FingerprintType):
    """An audio fingerprint made from decoded samples: works read the first WORK_SECONDS,
    found files the first QUERY_SECONDS through ``query_from_samples`` (as prints.py does)."""

    @classmethod
    def from_samples(cls, samples: I16) -> str:
        raise NotImplementedError

    @classmethod
    def query_from_samples(cls, samples: I16) -> str:
        return cls.from_samples(samples)

    @classmethod
    def from_bytes(cls, data: bytes) -> str:
        return cls.from_samples(decode_audio(data, WORK_SECONDS))

    @classmethod
    def query_from_bytes(cls, data: bytes) -> str:
        return cls.query_from_samples(decode_audio(data, QUERY_SECONDS))


class AudioChromaprint(AudioType):
    """Chromaprint sub-fingerprints of the first minutes: base64 of little-endian uint32.

    Query values add speed- and pitch-corrected variants of the first VARIANT_SECONDS
    (``encode_query``); ``distance`` and storage use the plain part only.
    """

    name: ClassVar[str] = "audio_chromaprint"
    version: ClassVar[int] = 1
    media: ClassVar[MediaKind] = MediaKind.AUDIO

    @classmethod
    def from_samples(cls, samples: I16) -> str:
        require_sound(samples)
        raw = chromaprint_raw(samples)
        if raw.size < 16:
            raise Unfingerprintable("too short for a fingerprint")
        return encode_raw(raw)

    @classmethod
    def query_from_samples(cls, samples: I16) -> str:
        plain = cls.from_samples(samples)
        head = samples[: int(VARIANT_SECONDS * SAMPLE_RATE)]
        shifted = []
        for factor, scale in variants():
            raw = chromaprint_raw(resample(head, factor))
            if raw.size >= 16:
                shifted.append((factor, scale, raw))
        return encode_query(decode_raw(plain), shifted)

    @classmethod
    def distance(cls, a: str, b: str) -> float:
        """Bit error rate of the best alignment (0 identical, ~0.5 unrelated)."""
        from fingerprints.audiomatch import best_alignment

        ber, _offset = best_alignment(decode_query(a)[0], decode_query(b)[0])
        return ber


BAND_HZ = (300.0, 3400.0)  # a telephone channel, Hz


def band_limit(samples: I16) -> I16:
    """The samples through a telephone channel: ffmpeg's own highpass and lowpass biquads (as
    a telephone copy is usually made), run over the decoded samples in large frames."""
    graph = av.filter.Graph()
    src = graph.add_abuffer(format="s16", layout="mono", sample_rate=SAMPLE_RATE)
    chain = [
        src,
        graph.add("highpass", f"f={BAND_HZ[0]:g}"),
        graph.add("lowpass", f"f={BAND_HZ[1]:g}"),
        graph.add("abuffersink"),
    ]
    for a, b in itertools.pairwise(chain):
        a.link_to(b)
    graph.configure()
    out: list[I16] = []

    def drain() -> None:
        while True:
            try:
                frame = graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return
            out.append(np.asarray(frame.to_ndarray(), np.int16).reshape(-1))

    step = 1 << 16
    for at in range(0, samples.size, step):
        chunk = np.ascontiguousarray(samples[at : at + step], dtype=np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = at
        graph.push(frame)
        drain()
    graph.push(None)
    drain()
    return np.concatenate(out) if out else samples[:0].copy()


class AudioChromaprintBand(AudioChromaprint):
    """Chromaprint of the audio band-limited to a telephone channel (300-3,400 Hz), the same
    format as ``audio_chromaprint``: the bass a telephone drops changes the chroma, so copies
    played through one match the band-limited print of the work, not its plain print. Decoding
    and ``distance`` are the plain type's; only the samples differ."""

    name: ClassVar[str] = "audio_chromaprint_band"
    version: ClassVar[int] = 1
    media: ClassVar[MediaKind] = MediaKind.AUDIO

    @classmethod
    def from_samples(cls, samples: I16) -> str:
        require_sound(samples)
        return super().from_samples(band_limit(samples))

    @classmethod
    def query_from_samples(cls, samples: I16) -> str:
        return cls.from_samples(samples)  # no speed/pitch variants: the band print is one try
