"""Deterministic test media made in code: structured images and music-like audio."""

from __future__ import annotations

import io

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def make_image(seed: int, size: tuple[int, int] = (480, 360)) -> Image.Image:
    """Gradient background, random shapes and a noise texture: real structure at all scales."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        a, b, f = rng.uniform(-1, 1, 3)
        base[..., c] = 128 + 90 * np.sin(a * xx / w * 6 + b * yy / h * 6 + f * 3)
    img = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(12, 24))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(20, w // 2)), y0 + int(rng.integers(20, h // 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = int(rng.integers(0, 3))
        if shape == 0:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif shape == 1:
            draw.rectangle((x0, y0, x1, y1), fill=colour, outline=(0, 0, 0), width=3)
        else:
            pts = [(int(rng.integers(0, w)), int(rng.integers(0, h))) for _ in range(3)]
            draw.polygon(pts, fill=colour)
    noise = rng.normal(0, 18, (h // 4, w // 4, 3))
    tex = Image.fromarray((noise + 128).clip(0, 255).astype(np.uint8)).resize((w, h))
    img = Image.blend(img, tex.filter(ImageFilter.GaussianBlur(1)), 0.25)
    return img


def to_bytes(img: Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


RATE = 22050


def make_music(
    seed: int, seconds: float = 40.0, rate: int = RATE, pitch: float = 1.0
) -> np.ndarray:
    """A float32 mono 'song': random chords and a melody with note onsets and envelopes.

    ``pitch`` multiplies every frequency and keeps the timing: a clean pitch shift.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    out = np.zeros(n, np.float32)
    t = 0
    while t < n:
        dur = int(rng.choice([0.25, 0.5, 0.5, 1.0]) * rate)
        root = int(rng.integers(40, 64))
        notes = [root, root + int(rng.choice([3, 4])), root + 7, int(rng.integers(60, 84))]
        tt = np.arange(min(dur, n - t)) / rate
        env = np.exp(-tt * rng.uniform(1.5, 5.0)) * np.minimum(1, tt * 200)
        seg = np.zeros_like(tt, dtype=np.float32)
        for k, midi in enumerate(notes):
            f = pitch * 440.0 * 2 ** ((midi - 69) / 12)
            amp = 0.5 if k == 3 else 0.25
            seg += amp * (np.sin(2 * np.pi * f * tt) + 0.3 * np.sin(4 * np.pi * f * tt)).astype(
                np.float32
            )
        out[t : t + tt.size] += (seg * env).astype(np.float32)
        t += dur
    out += rng.normal(0, 0.005, n).astype(np.float32)
    return (0.3 * out / np.abs(out).max()).astype(np.float32)


# encode_audio's formats: (container, codec)
AUDIO_FORMATS = {
    "ogg": ("ogg", "libopus"),
    "mp3": ("mp3", "libmp3lame"),
    "flac": ("flac", "flac"),
    "wav": ("wav", "pcm_s16le"),
    "ulaw": ("wav", "pcm_mulaw"),
}


def encode_audio(
    samples: np.ndarray, fmt: str = "ogg", rate: int = RATE, bitrate: int = 96000
) -> bytes:
    """Encode float mono samples with PyAV: ogg (opus), mp3, flac, wav or ulaw (a WAV of
    G.711 mu-law, a telephone channel's coding)."""
    container, codec = AUDIO_FORMATS[fmt]
    out_rate = 48000 if codec == "libopus" else rate  # Opus runs at 48 kHz only
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as box:
        stream = box.add_stream(codec, rate=out_rate)
        stream.layout = "mono"
        if codec in ("libopus", "libmp3lame"):  # the lossy ones take a bit rate
            stream.bit_rate = bitrate
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=out_rate)
        pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
        step = 1024
        for i in [*range(0, pcm.size, step), None]:
            frames = [None]
            if i is not None:
                frame = av.AudioFrame.from_ndarray(
                    pcm[None, i : i + step], format="s16", layout="mono"
                )
                frame.sample_rate = rate
                frames = resampler.resample(frame)
            for f in frames:
                for pkt in stream.encode(f):
                    box.mux(pkt)
    return buf.getvalue()
