"""Hostile and broken files: each is one Unfingerprintable with a one-line reason."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from fpsynth import RATE, encode_audio, make_image, make_music, to_bytes
from PIL import Image

from fingerprints import FingerprintError, Unfingerprintable, fingerprint_query, fingerprint_work
from fingerprints.audio import decode_audio


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(side: int = 50_000) -> bytes:
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def many_frames_gif(frames: int = 600) -> bytes:
    rng = np.random.default_rng(2)
    imgs = [Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)) for _ in range(frames)]
    buf = io.BytesIO()
    imgs[0].save(buf, "GIF", save_all=True, append_images=imgs[1:], duration=10)
    return buf.getvalue()


def _reason(data: bytes) -> str:
    with pytest.raises(Unfingerprintable) as info:
        fingerprint_work(data)
    reason = str(info.value)
    assert reason
    assert "\n" not in reason
    assert isinstance(info.value, FingerprintError)
    return reason


def test_zero_bytes() -> None:
    assert "neither" in _reason(b"")


def test_random_bytes() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        data = rng.integers(0, 256, int(rng.integers(1, 5000)), dtype=np.uint8).tobytes()
        with pytest.raises(Unfingerprintable):
            fingerprint_query(data)


def test_random_bytes_behind_allowed_magic() -> None:
    rng = np.random.default_rng(1)
    for magic in (
        b"\xff\xd8\xff\xe0",
        b"\x89PNG\r\n\x1a\n",
        b"GIF89a",
        b"fLaC",
        b"ID3\x04\x00\x00",
    ):
        data = magic + rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()
        with pytest.raises(Unfingerprintable):
            fingerprint_work(data)


def test_corrupt_jpeg_is_undecodable() -> None:
    data = bytearray(to_bytes(make_image(2), "JPEG", quality=90))
    data[200:600] = bytes(400)
    data = data[: len(data) // 2]  # truncated as well: never padded
    assert "undecodable" in _reason(bytes(data))


def test_truncated_ogg() -> None:
    data = encode_audio(np.zeros(RATE, np.float32) + 0.1, "ogg")
    reason = _reason(data[:200])
    assert "undecodable" in reason or "too short" in reason


def test_decompression_bomb_png_refused_before_decoding() -> None:
    assert "too many pixels" in _reason(bomb_png())


def test_too_many_frames() -> None:
    assert "too many frames" in _reason(many_frames_gif())


def test_blank_image_fails_quality_gate() -> None:
    assert "low information" in _reason(
        to_bytes(Image.new("RGB", (300, 200), (250, 250, 250)), "PNG")
    )


def test_silence_is_low_information() -> None:
    assert "low information" in _reason(encode_audio(np.zeros(10 * RATE, np.float32), "flac"))


def test_audio_decode_stops_at_window() -> None:
    data = encode_audio(np.full(30 * RATE, 0.1, np.float32), "wav")
    samples = decode_audio(data, max_seconds=5.0)
    assert samples.size == 5 * 11025


def test_mp3s_of_two_sample_rates_joined_decode_whole() -> None:
    """A mix glued from files of different rates: the decoder rejects a packet at the join
    (skipped), and the second part's rate starts a new resampler (one takes one input format).
    Either alone still ends the decode there."""
    first = encode_audio(make_music(7, 10.0), "mp3")
    second = encode_audio(make_music(8, 10.0, rate=44100), "mp3", rate=44100)
    assert abs(decode_audio(first + second).size / 11025 - 20.0) < 0.5


def _adts_frame(payload: bytes) -> bytes:
    """One ADTS frame: a valid header (AAC LC, 44.1 kHz, stereo, no CRC) before `payload`."""
    size = 7 + len(payload)
    head = (0xFFF1 << 40) | (1 << 38) | (4 << 34) | (2 << 30) | (size << 13) | (0x7FF << 2)
    return head.to_bytes(7, "big") + payload


def test_aac_whose_every_packet_is_rejected_names_the_decoders_reason() -> None:
    """Valid frame headers over random payloads: the demuxer hands out every packet, the
    decoder rejects each one (skipped, as a damaged stretch is), and with nothing decoded the
    first rejection is the reason, not a bare "no audio samples"."""
    rng = np.random.default_rng(4)
    data = b"".join(_adts_frame(rng.bytes(300)) for _ in range(200))
    with pytest.raises(Unfingerprintable, match=r"undecodable: InvalidDataError: .*send_packet"):
        decode_audio(data)


def test_playlist_disguised_as_mp3_is_refused() -> None:
    reason = _reason(b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\nhttp://127.0.0.1:9/x.mp3\n")
    assert "neither" in reason


def test_svg_refused_by_allow_list() -> None:
    assert "neither" in _reason(b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>")


def test_unfingerprintable_pickles() -> None:
    import pickle

    exc = pickle.loads(pickle.dumps(Unfingerprintable("undecodable: x")))
    assert str(exc) == "undecodable: x"
