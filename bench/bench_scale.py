"""Matching at catalogue scale: memory and throughput of one worker's index (`make bench`).

Synthetic fingerprints through the public `fingerprints.Matcher` API (no database), in one
child process per (profile, size) so each memory figure starts from a clean interpreter:

* image-full: what `works add` stores for an image: pHash, ~40 multi-crop hashes, ~160 ORB
  keypoints (random, as many as real photographs give);
* image-hash: the same without ORB (the hash indexes alone: the 1M-works case);
* audio: 240 s of Chromaprint sub-fingerprints per work (random words).

Reported per case: load and index-build time, resident memory of the index (RSS after the
first search minus RSS before loading), bytes per work and works per GiB, single-thread query
throughput, recall of planted near-copies and hits on random queries (should be 0).
Writes bench/results/scale.md.

    .venv/bin/python bench/bench_scale.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
FULL = [
    ("image-full", 10_000),  # ORB keypoints dominate memory and query time
    ("image-hash", 10_000),
    ("image-hash", 100_000),
    ("image-hash", 1_000_000),
    ("audio", 1_000),
    ("audio", 10_000),
]
QUICK = [("image-full", 2_000), ("image-hash", 10_000), ("audio", 500)]
QUERIES = 200
MULTICROP = 40
ORB_POINTS = 160
AUDIO_S = 240


def rss_bytes(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def child(kind: str, n: int) -> dict[str, object]:
    """Build one index of n synthetic works and measure it (runs in its own process)."""
    import numpy as np

    from fingerprints import Matcher, MediaKind, Prints
    from fingerprints.audio import FRAME_S, encode_raw
    from fingerprints.keypoints import Keypoints
    from fingerprints.registry import by_name

    rng = np.random.default_rng(20261129)
    ver = {
        name: by_name(name).version
        for name in ("image_phash", "image_multicrop", "image_orb", "audio_chromaprint")
    }

    def hexes(words: np.ndarray) -> str:
        return " ".join(f"{int(w):016x}" for w in words)

    def image_values(i: int) -> dict[str, tuple[int, str]]:
        r = np.random.default_rng(i + 10)
        words = r.integers(0, 2**63, size=MULTICROP + 1, dtype=np.uint64) * np.uint64(
            2
        ) + np.uint64(1)
        values = {
            "image_phash": (ver["image_phash"], f"{int(words[0]):016x}"),
            "image_multicrop": (ver["image_multicrop"], hexes(words[1:])),
        }
        if kind == "image-full":
            xy = r.uniform(0, 640, size=(ORB_POINTS, 2)).astype(np.float32)
            desc = r.integers(0, 256, size=(ORB_POINTS, 32), dtype=np.uint8)
            values["image_orb"] = (ver["image_orb"], Keypoints(640, 480, xy, desc).encode())
        return values

    frames = int(AUDIO_S / FRAME_S)

    def audio_raw(i: int) -> np.ndarray:
        return np.random.default_rng(i).integers(0, 2**32, size=frames, dtype=np.uint32)

    media = MediaKind.AUDIO if kind == "audio" else MediaKind.IMAGE
    matcher = Matcher()
    matcher.add(
        -1,
        media,
        image_values(-1)
        if media is MediaKind.IMAGE
        else {"audio_chromaprint": (ver["audio_chromaprint"], encode_raw(audio_raw(7)))},
    )
    matcher.remove(-1)
    base = rss_bytes()
    t0 = time.perf_counter()
    for i in range(n):
        if media is MediaKind.IMAGE:
            matcher.add(i, media, image_values(i))
        else:
            matcher.add(
                i,
                media,
                {"audio_chromaprint": (ver["audio_chromaprint"], encode_raw(audio_raw(i)))},
            )
    load_s = time.perf_counter() - t0

    def planted(i: int) -> Prints:
        if media is MediaKind.AUDIO:
            raw = audio_raw(i)
            start = int(rng.integers(0, frames - int(30 / FRAME_S)))
            part = raw[start : start + int(30 / FRAME_S)].copy()
            noisy = rng.random(part.size) < 0.2
            part[noisy] ^= np.uint32(1) << rng.integers(0, 32, size=int(noisy.sum())).astype(
                np.uint32
            )
            return Prints(
                media,
                "audio/wav",
                {"audio_chromaprint": (ver["audio_chromaprint"], encode_raw(part))},
                30.0,
            )
        values = image_values(i)
        ph = (
            int(values["image_phash"][1], 16)
            ^ (1 << int(rng.integers(0, 64)))
            ^ (1 << int(rng.integers(0, 64)))
        )
        q = {
            "image_phash": (ver["image_phash"], f"{ph:016x}"),
            "image_multicrop": (ver["image_multicrop"], values["image_multicrop"][1].split()[0]),
        }
        if "image_orb" in values:
            q["image_orb"] = values["image_orb"]
        return Prints(media, "image/png", q, None, 640, 480)

    def random_query(j: int) -> Prints:
        if media is MediaKind.AUDIO:
            raw = np.random.default_rng(10**9 + j).integers(
                0, 2**32, size=int(30 / FRAME_S), dtype=np.uint32
            )
            return Prints(
                media,
                "audio/wav",
                {"audio_chromaprint": (ver["audio_chromaprint"], encode_raw(raw))},
                30.0,
            )
        v = image_values(10**9 + j)
        q = {
            "image_phash": v["image_phash"],
            "image_multicrop": (ver["image_multicrop"], v["image_multicrop"][1].split()[0]),
        }
        if "image_orb" in v:
            q["image_orb"] = v["image_orb"]
        return Prints(media, "image/png", q, None, 640, 480)

    t0 = time.perf_counter()
    matcher.search(random_query(-1))  # builds the indexes
    build_s = time.perf_counter() - t0
    index = rss_bytes() - base
    count = QUERIES
    targets = [int(x) for x in rng.integers(0, n, size=count // 2)]
    queries = [(t, planted(t)) for t in targets] + [
        (None, random_query(j)) for j in range(count // 2)
    ]
    found = false_hits = 0
    t0 = time.perf_counter()
    for target, prints in queries:
        hits = matcher.search(prints)
        if target is None:
            false_hits += len(hits)
        elif hits and hits[0].work_id == target:
            found += 1
    query_s = time.perf_counter() - t0
    return {
        "profile": kind,
        "works": n,
        "load_s": round(load_s, 2),
        "build_s": round(build_s, 2),
        "index_mib": round(index / 2**20, 1),
        "peak_mib": round(rss_bytes("VmHWM") / 2**20, 1),
        "bytes_per_work": round(index / n),
        "works_per_gib": int(2**30 / max(1, index / n)),
        "queries_per_s": round(len(queries) / query_s, 1),
        "planted_found": f"{found}/{len(targets)}",
        "random_false_hits": false_hits,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes only (a minute)")
    parser.add_argument("--child", nargs=2, metavar=("PROFILE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(child(args.child[0], int(args.child[1]))), flush=True)
        return
    rows = []
    for kind, n in QUICK if args.quick else FULL:
        print(f"{kind} x {n:,} ...", flush=True)
        proc = subprocess.run(
            [sys.executable, __file__, "--child", kind, str(n)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
            print(f"  failed: {tail}", flush=True)
            rows.append({"profile": kind, "works": n, "error": tail})
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            "  " + ", ".join(f"{k}={v}" for k, v in row.items() if k not in ("profile", "works")),
            flush=True,
        )
        rows.append(row)
    write_report(rows, quick=args.quick)


def write_report(rows: list[dict[str, object]], *, quick: bool) -> None:
    cols = ["profile", "works", "load_s", "build_s", "index_mib", "peak_mib", "bytes_per_work",
            "works_per_gib", "queries_per_s", "planted_found", "random_false_hits"]  # fmt: skip
    lines = [
        "# Matching at catalogue scale" + (" (quick)" if quick else ""),
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores,"
        f" load average {os.getloadavg()[0]:.1f} at the end (a shared machine: the times are"
        " upper bounds).",
        "",
        "`bench/bench_scale.py`: synthetic fingerprints through `fingerprints.Matcher`, one",
        "process per row; `index_mib` is resident memory after loading and the first search",
        f"minus before loading; `queries_per_s` is single-threaded over {QUERIES} queries,",
        "half planted near-copies, half random",
        "(`random_false_hits` should be 0). image-full = pHash",
        "+ multi-crop + ORB; image-hash = without ORB; audio = 240 s of Chromaprint per work,",
        "30 s noisy excerpts as queries.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['profile']} | {row['works']} | failed: {row['error']} |")
            continue
        lines.append(
            "| "
            + " | ".join(f"{row[c]:,}" if isinstance(row[c], int) else str(row[c]) for c in cols)
            + " |"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("scale-quick.md" if quick else "scale.md")
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
