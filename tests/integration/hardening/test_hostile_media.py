"""Hostile media (HOSTILE.md M1-M7) through the decoding sandbox: a child process with an address
space rlimit and a wall-clock kill. The corpus is generated here (small, deterministic).

Each file is refused with a one-line reason (or fingerprinted, where that is harmless), the
process survives, no Ghostscript is spawned, a tripwire server gets no connection, and no byte
of a local file shows up anywhere.
"""

from __future__ import annotations

import io
import os
import random
import socket
import stat
import struct
import subprocess
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hostile_files as hf
import pytest
from PIL import Image

from fingerprints import Unfingerprintable

sandbox = pytest.importorskip("fingerprints.sandbox")

PASSWD = Path("/etc/passwd").read_bytes()


# --- corpus -----------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(w: int = 50_000, h: int = 50_000) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1024, 9))
        + _png_chunk(b"IEND", b"")
    )


def _gif_frame(w: int, h: int) -> bytes:
    gce = b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # 0.1 s per frame
    descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0)
    return gce + descriptor + b"\x02\x02\x44\x01\x00"  # LZW: clear, index 0, end


def gif(w: int, h: int, frames: int = 1) -> bytes:
    screen = b"GIF89a" + struct.pack("<HHBBB", w, h, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    return screen + loop + _gif_frame(w, h) * frames + b"\x3b"


def bmp_bomb(w: int = 50_000, h: int = 50_000) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + 16, 0, 0, 54) + info + b"\x00" * 16


def noise_image(fmt: str, seed: int = 1, size: tuple[int, int] = (320, 240)) -> bytes:
    rnd = random.Random(seed)
    small = Image.new("RGB", (32, 24))
    small.putdata(
        [(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)) for _ in range(32 * 24)]
    )
    buf = io.BytesIO()
    small.resize(size, Image.Resampling.BICUBIC).save(buf, format=fmt)
    return buf.getvalue()


def wav(rate: int, channels: int, seconds_claimed: float, real_seconds: float = 2.0) -> bytes:
    bits = 16
    align = channels * bits // 8
    claimed = int(seconds_claimed * rate) * align
    rnd = random.Random(7)
    frames = min(int(real_seconds * rate), 200_000)
    body = bytes(rnd.randrange(256) for _ in range(frames * align))
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * align, align, bits)
    return (
        b"RIFF"
        + struct.pack("<I", min(36 + claimed, 0xFFFFFFFF))
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", min(claimed, 0xFFFFFFFF))
        + body
    )


SPOOFED = {
    "eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nnewpath 0 0 moveto showpage\n",
    "eps-binary": b"\xc5\xd0\xd3\xc6" + b"\x00" * 28 + b"%!PS-Adobe-3.0 EPSF-3.0\n",
    "psd": b"8BPS\x00\x01"
    + b"\x00" * 6
    + struct.pack(">HIIHH", 3, 50_000, 50_000, 8, 3)
    + b"\x00" * 64,
    "pdf": b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R/Prev 9>>\n%%EOF\n",
    "svg": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"'
    b' width="50000" height="50000"><image href="file:///etc/passwd"/></svg>',
    "fits": b"SIMPLE  =                    T".ljust(2880, b" "),
    "tiff-ifd-loop": b"II*\x00\x08\x00\x00\x00" + b"\x00\x00" + b"\x08\x00\x00\x00",
    "ico-bomb": b"\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x01\x00\x20\x00"
    + struct.pack("<II", 40, 22)
    + png_bomb(),
}


def corrupt_corpus() -> dict[str, bytes]:
    png, jpeg, gif1 = noise_image("PNG"), noise_image("JPEG"), noise_image("GIF")
    rnd = random.Random(42)
    corpus = {
        "png-truncated": png[: len(png) // 2],
        "jpeg-truncated": jpeg[: len(jpeg) // 2],
        "gif-truncated": gif1[: len(gif1) // 3],
        "png-bad-crc": png[:20] + bytes([png[20] ^ 0xFF]) + png[21:],
        "jpeg-header-only": jpeg[:200],
        "empty": b"",
        "one-byte": b"\xff",
    }
    magics = [
        b"\x89PNG\r\n\x1a\n",
        b"GIF89a",
        b"\xff\xd8\xff\xe0",
        b"RIFF\x00\x00\x00\x00WEBP",
        b"BM",
        b"RIFF\x00\x00\x00\x00WAVEfmt ",
        b"ID3\x03\x00",
        b"fLaC",
        b"OggS\x00\x02",
        b"\xff\xfb\x90",
    ]
    for i in range(40):
        body = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 3000)))
        corpus[f"random-{i}"] = (magics[i % len(magics)] if i % 2 else b"") + body
    return corpus


# --- fixtures ---------------------------------------------------------------------------------


class Tripwire:
    """A TCP listener on loopback that counts every connection attempt."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connects = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connects += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def tripwire() -> Iterator[Tripwire]:
    wire = Tripwire()
    yield wire
    wire.close()


@pytest.fixture(scope="module")
def gs_marker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Fake `gs`/`gsx`/`convert` first on PATH: running any of them leaves a marker file."""
    bin_dir = tmp_path_factory.mktemp("tripbin")
    marker = bin_dir / "SPAWNED"
    for name in ("gs", "gsx", "gswin32c", "convert", "magick", "inkscape", "rsvg-convert"):
        exe = bin_dir / name
        exe.write_text(f"#!/bin/sh\necho {name} >> {marker}\nexit 1\n")
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        yield marker


@pytest.fixture(scope="module")
def box(gs_marker: Path) -> Iterator[object]:
    """One sandbox for the corpus (spawned after PATH has the tripwires)."""
    with sandbox.Sandbox() as sb:
        yield sb


def outcome(box: object, data: bytes) -> str:
    try:
        prints = box.fingerprint_query(data)  # type: ignore[attr-defined]
    except Unfingerprintable as exc:
        reason = str(exc)
        assert reason, "a refusal needs a reason"
        assert "\n" not in reason
        assert b"root:" not in reason.encode()
        return reason
    assert PASSWD[:64] not in repr(prints).encode()
    return "ok"


# --- M1 pixel and frame bombs -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("png-50000x50000", png_bomb()),
        ("gif-50000x50000", gif(50_000, 50_000)),
        ("bmp-50000x50000", bmp_bomb()),
        ("png-100000x1", png_bomb(100_000_000, 1)),
    ],
)
def test_pixel_bombs_are_refused(box: object, name: str, data: bytes) -> None:
    reason = outcome(box, data)
    assert reason.startswith("too many pixels"), (name, reason)


def test_frame_bomb_is_refused(box: object) -> None:
    data = gif(1, 1, frames=10_000)
    assert len(data) < 300_000
    assert outcome(box, data) == "too many frames"


# --- M2 format spoofing -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SPOOFED))
def test_spoofed_formats_refused_before_decoding(box: object, gs_marker: Path, name: str) -> None:
    reason = outcome(box, SPOOFED[name])
    assert reason in (
        "neither an allowed image nor audio format",
        "not an allowed image format",
    ) or reason.startswith(("too many pixels", "undecodable")), (name, reason)
    assert not gs_marker.exists(), f"{name}: an external converter was spawned"


# --- M3 truncated, corrupt and random ---------------------------------------------------------


def test_corrupt_and_random_bytes(box: object) -> None:
    outcomes = {name: outcome(box, data) for name, data in corrupt_corpus().items()}
    crashed = {
        n: r
        for n, r in outcomes.items()
        if r.startswith(("decoder crashed", "memory limit", "timeout"))
    }
    assert crashed == {}
    for name in ("png-truncated", "jpeg-truncated", "jpeg-header-only", "empty", "one-byte"):
        assert outcomes[name] != "ok", f"{name} was fingerprinted from padded data"
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# --- M6 audio bombs ---------------------------------------------------------------------------


def test_audio_claiming_24_hours_decodes_only_the_window(box: object) -> None:
    reason = outcome(box, wav(8000, 1, seconds_claimed=24 * 3600, real_seconds=20))
    assert reason not in ("timeout", "memory limit")
    assert not reason.startswith("decoder crashed")


@pytest.mark.parametrize(("rate", "channels"), [(8000, 255), (1_000_000, 1), (4_000_000, 2)])
def test_audio_channel_and_rate_bombs_are_refused(box: object, rate: int, channels: int) -> None:
    reason = outcome(box, wav(rate, channels, seconds_claimed=3600, real_seconds=0.01))
    assert reason == "too many channels or too high a sample rate" or reason.startswith(
        "undecodable"
    ), reason


class CountingAv:
    """Stands in for the `av` module inside fingerprints.audio and counts the seconds of audio
    the demuxer and decoder actually produced (what was decoded, not what a header claims)."""

    def __init__(self) -> None:
        import av

        self._av, self.decoded_s, self.claimed_s = av, 0.0, 0.0

    def __getattr__(self, name: str) -> Any:  # AudioFrame, AudioResampler, ...: the real ones
        return getattr(self._av, name)

    def open(self, *args: object, **kwargs: object) -> _CountingBox:
        box = self._av.open(*args, **kwargs)
        self.claimed_s = max(self.claimed_s, (box.duration or 0) / 1e6)
        return _CountingBox(box, self)


class _CountingBox:
    def __init__(self, box: Any, counter: CountingAv) -> None:
        self._box, self._counter, self.streams = box, counter, box.streams

    def __enter__(self) -> _CountingBox:
        return self

    def __exit__(self, *exc: object) -> None:
        self._box.close()

    def demux(self, *args: object) -> Iterator[_CountingPacket]:
        for packet in self._box.demux(*args):
            yield _CountingPacket(packet, self._counter)


class _CountingPacket:
    def __init__(self, packet: Any, counter: CountingAv) -> None:
        self._packet, self._counter = packet, counter

    def decode(self) -> list[Any]:
        frames: list[Any] = self._packet.decode()
        self._counter.decoded_s += sum(f.samples / f.sample_rate for f in frames)
        return frames


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> CountingAv:
    import fingerprints.audio

    fake = CountingAv()
    monkeypatch.setattr(fingerprints.audio, "av", fake)
    return fake


WINDOW_S = 300.0  # fingerprints.audio.QUERY_SECONDS: what a found file is decoded for
# Past the window at most one resampling batch (65,536 input samples: 8.2 s at 8 kHz) and a
# frame: nowhere near the hours the files hold.
SLACK_S = 10.0


def test_tiny_file_of_hours_of_silence(box: object, tmp_path: Path, counting: CountingAv) -> None:
    from fingerprints.audio import QUERY_SECONDS, SAMPLE_RATE, decode_audio

    assert QUERY_SECONDS == WINDOW_S
    data = hf.ffmpeg(tmp_path / "silence.flac", "anullsrc=r=8000:cl=mono", 10800, "-c:a", "flac")
    assert len(data) < 3_000_000  # three hours in a few hundred KiB
    samples = decode_audio(data, QUERY_SECONDS)
    assert samples.size == int(QUERY_SECONDS * SAMPLE_RATE)
    assert WINDOW_S <= counting.decoded_s <= WINDOW_S + SLACK_S  # not 10 800 s
    assert counting.claimed_s > 10_000  # the header told the truth; it was not believed
    assert outcome(box, data) == "low information: silence"


def _tone(tmp_path: Path, name: str, codec: str, seconds: float, rate: int = 48000) -> bytes:
    args = {"opus": ("-c:a", "libopus", "-b:a", "24k"), "vorbis": ("-c:a", "libvorbis")}[codec]
    return hf.ffmpeg(tmp_path / name, f"sine=f=440:r={rate}", seconds, *args, "-f", "ogg")


@pytest.mark.parametrize(
    ("codec", "link_s", "links"),
    [("opus", 10.0, 100), ("vorbis", 10.0, 100), ("opus", 0.1, 4000)],
    ids=["opus-100x10s", "vorbis-100x10s", "opus-4000x0.1s"],
)
def test_chained_ogg_stops_at_the_window(
    box: object, tmp_path: Path, counting: CountingAv, codec: str, link_s: float, links: int
) -> None:
    """Hundreds or thousands of logical bitstreams one after another: decoding follows the
    chain (a real chained file is one recording) but stops at the window, whatever follows."""
    from fingerprints.audio import QUERY_SECONDS, SAMPLE_RATE, decode_audio

    link = _tone(tmp_path, f"link.{codec}", codec, link_s)
    chain = hf.ogg_chain([link] * links)
    assert len(list(hf.ogg_pages(chain))) >= links * 3  # every link has its own headers
    samples = decode_audio(chain, QUERY_SECONDS)
    assert samples.size == int(QUERY_SECONDS * SAMPLE_RATE)
    assert WINDOW_S <= counting.decoded_s <= WINDOW_S + SLACK_S
    reason = outcome(box, chain)
    assert reason == "ok" or reason.startswith(("low information", "too short")), reason


@pytest.mark.parametrize("codec", ["opus", "vorbis"])
def test_ogg_claiming_a_day_decodes_what_is_there(
    box: object, tmp_path: Path, counting: CountingAv, codec: str
) -> None:
    from fingerprints.audio import QUERY_SECONDS, SAMPLE_RATE, decode_audio

    real = _tone(tmp_path, f"day.{codec}", codec, 8.0)
    day = hf.ogg_link(real, 77, last_granule=48000 * 86400)
    samples = decode_audio(day, QUERY_SECONDS)
    assert counting.claimed_s >= 86400  # the container says 24 h
    assert counting.decoded_s <= 8.0 + 1.0  # all there is
    assert samples.size <= int(9.0 * SAMPLE_RATE)
    assert outcome(box, day) not in ("timeout", "memory limit")


def test_chain_that_changes_format_midway(box: object, tmp_path: Path) -> None:
    """Links alternating 44.1 kHz and 8 kHz: FFmpeg's Ogg demuxer cannot follow the change, so
    the decode ends there with the first link's audio, as a truncated file's would; never a
    crash, never the whole file lost."""
    from fingerprints.audio import QUERY_SECONDS, SAMPLE_RATE, decode_audio

    first = _tone(tmp_path, "a.ogg", "vorbis", 10.0, rate=44100)
    second = _tone(tmp_path, "b.ogg", "vorbis", 10.0, rate=8000)
    chain = hf.ogg_chain([first, second] * 20)
    assert abs(decode_audio(chain, QUERY_SECONDS).size / SAMPLE_RATE - 10.0) < 0.5
    reason = outcome(box, chain)
    assert reason == "ok" or reason.startswith("low information"), reason


# --- M7 FFmpeg protocol abuse -----------------------------------------------------------------


def test_playlists_and_protocols_are_not_followed(box: object, tripwire: Tripwire) -> None:
    url = f"http://127.0.0.1:{tripwire.port}/x.mp3"
    playlist = f"#EXTM3U\n#EXTINF:10,x\nfile:///etc/passwd\n{url}\n".encode()
    hls = f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{url}\n#EXT-X-ENDLIST\n".encode()
    corpus = {
        "m3u": playlist,
        "m3u-behind-id3": b"ID3\x03\x00\x00\x00\x00\x00\x00" + playlist,
        "m3u-behind-mpeg-frame": b"\xff\xfb\x90\x64" + b"\x00" * 413 + playlist,
        "hls": hls,
        "concat": b"ffconcat version 1.0\nfile /etc/passwd\nfile " + url.encode() + b"\n",
        "concat-protocol": b"concat:/etc/passwd|" + url.encode(),
        "subfile": b"subfile,,start,0,end,0,,:/etc/passwd",
    }
    for name, data in corpus.items():
        reason = outcome(box, data)
        assert reason != "ok", name
    assert tripwire.connects == 0


SECRET = b"M7-SECRET-" * 9000  # a "local file" whose bytes must never come back as audio


@pytest.fixture(scope="module")
def pcm_mov(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """4 s of 16-bit PCM in a QuickTime file: raw samples, so a followed reference would hand
    back the referenced file's bytes as the decoded audio."""
    out = tmp_path_factory.mktemp("mov") / "pcm.mov"
    return hf.ffmpeg(out, "sine=f=440:r=11025", 4, "-c:a", "pcm_s16le", "-f", "mov")


def _external_refs(pcm_mov: bytes, secret: Path, tripwire: Tripwire) -> dict[str, bytes]:
    url = f"http://127.0.0.1:{tripwire.port}/samples.raw".encode()
    return {
        "alias-secret": hf.external_samples(pcm_mov, [hf.alias_entry(str(secret).encode())]),
        "alias-passwd": hf.external_samples(pcm_mov, [hf.alias_entry(b"/etc/passwd")]),
        "url-tripwire": hf.external_samples(pcm_mov, [hf.url_entry(url)]),
        "url-file": hf.external_samples(pcm_mov, [hf.url_entry(b"file:///etc/passwd")]),
        "alias-then-url": hf.external_samples(
            pcm_mov, [hf.alias_entry(str(secret).encode()), hf.url_entry(url)]
        ),
        "mov-brand": hf.external_samples(
            pcm_mov, [hf.alias_entry(str(secret).encode())], brand=b"qt  "
        ),
    }


def test_external_data_reference_is_real(pcm_mov: bytes, tmp_path: Path) -> None:
    """The control: FFmpeg told to follow data references reads the secret file as audio (so the
    next test's files are truly hostile)."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(SECRET)
    path = tmp_path / "ref.mp4"
    path.write_bytes(hf.external_samples(pcm_mov, [hf.alias_entry(str(secret).encode())]))
    out = subprocess.run(
        [
            *("ffmpeg", "-nostdin", "-loglevel", "quiet", "-enable_drefs", "1"),
            *("-use_absolute_path", "1", "-i", str(path), "-f", "s16le", "-c:a", "pcm_s16le", "-"),
        ],
        capture_output=True,
        check=False,
        timeout=60,
    ).stdout
    assert SECRET[:1000] in out


def test_external_data_references_are_not_followed(
    box: object, pcm_mov: bytes, tripwire: Tripwire, tmp_path: Path
) -> None:
    from fingerprints.audio import decode_audio

    secret = tmp_path / "secret.bin"
    secret.write_bytes(SECRET)
    for name, data in _external_refs(pcm_mov, secret, tripwire).items():
        assert b"M7-SECRET" not in data  # the files carry only the paths
        assert PASSWD[:32] not in data
        try:
            raw = decode_audio(data).tobytes()
        except Unfingerprintable as exc:
            raw = str(exc).encode()
        assert b"M7-SECRET" not in raw, name
        assert PASSWD[:32] not in raw, name
        reason = outcome(box, data)
        assert reason != "ok", (name, reason)
    assert tripwire.connects == 0


# --- M8 metadata that must not hide a copy ---------------------------------------------------


@pytest.mark.parametrize("ext", ["flac", "ogg", "m4a", "wav", "mp3"])
def test_tags_with_invalid_utf8_do_not_stop_decoding(box: object, tmp_path: Path, ext: str) -> None:
    """A tag (ID3, Vorbis comment, MP4 atom, RIFF INFO) that is not UTF-8 is attacker text: it
    must neither crash nor make the file undecodable, or one bad byte would hide any copy."""
    from fingerprints.audio import decode_audio

    out = tmp_path / f"tagged.{ext}"
    subprocess.run(
        [
            *(b"ffmpeg", b"-nostdin", b"-loglevel", b"error", b"-y", b"-f", b"lavfi"),
            *(b"-i", b"sine=f=440:r=44100", b"-t", b"8"),
            *(b"-metadata", b"artist=\xff\xfe<script>window.__pwned=1</script>"),
            *(b"-metadata", b"copyright=x\xc3( '); DROP TABLE works; --"),
            os.fsencode(out),
        ],
        check=True,
        timeout=60,
    )
    data = out.read_bytes()
    assert b"\xff\xfe<script>" in data  # the bad bytes are really in the file
    assert decode_audio(data).size > 5 * 11025
    reason = outcome(box, data)
    assert not reason.startswith("undecodable"), reason


# --- M4 / M5 crash, memory blow-up, hang (test hooks in the child) ----------------------------


def hook_abort(_data: bytes) -> None:
    os.abort()


def hook_allocate(_data: bytes) -> bytes:
    return b"\x00" * (8 << 30)


def hook_hang(_data: bytes) -> None:
    while True:
        pass


def _children_zombies() -> list[int]:
    me, out = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] == "Z" and int(fields[1]) == me:
                out.append(int(entry.name))
    return out


def test_crash_memory_and_hang_are_contained(gs_marker: Path) -> None:
    with sandbox.Sandbox(timeout_s=3.0) as sb:
        with pytest.raises(Unfingerprintable, match=r"^decoder crashed \(signal 6\)$"):
            sb.run(hook_abort, b"")
        with pytest.raises(Unfingerprintable, match=r"^memory limit$"):
            sb.run(hook_allocate, b"")
        with pytest.raises(Unfingerprintable, match=r"^timeout$"):
            sb.run(hook_hang, b"")
        assert _children_zombies() == []
        # the replaced worker goes on with the next item
        assert sb.fingerprint_query(noise_image("PNG")).kind.value == "image"
