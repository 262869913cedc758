"""Matching at catalogue scale: memory and throughput of one worker's index (`make bench`).

Synthetic fingerprints through the public `fingerprints.Matcher` API (no database), in one
child process per (profile, size) so each memory figure starts from a clean interpreter:

* image-full: what `works add` stores for an image: pHash, ~40 multi-crop hashes, ~160 ORB
  keypoints (random, as many as real photographs give);
* image-hash: the same without ORB (the hash indexes alone: the 1M-works case);
* audio: 240 s of Chromaprint sub-fingerprints per work (random words);
* audio-landmarks: 240 s of spectral peaks per work (12 a second, random times and pitches),
  queried with 10 s excerpts that keep 70 % of the peaks, jittered, among random ones.

Reported per case: load and index-build time, resident memory of the index (RSS after the
first search minus RSS before loading), bytes per work and works per GiB, single-thread query
throughput, recall of planted near-copies and hits on random queries (should be 0).
Writes bench/results/scale.md.

Crawl throughput with 1 and 2 workers (`--part workers`): a generated site (bench_crawl's
generator, served by nginx on loopback), N queued runs of a watch each, run by `rightswatch
worker --concurrency 1` processes on Celery/Redis sharing one PostgreSQL schema the bench
creates and drops. Reported per worker count: wall time from the first run's start to the last
run's end, pages/s and runs/min over all runs, matches, and the peak resident memory of one
worker's process tree (Celery, its crawl child, the crawl's decoder sandbox). Needs
PostgreSQL and Redis on 127.0.0.1 (skipped, with a line, without them); uses Redis DB 9.
Writes bench/results/scale-workers.md.

    .venv/bin/python bench/bench_scale.py [--quick] [--part matching|workers|all]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
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
    ("audio", 100_000),  # the 100,000 tracks (~6,700 h): 8-byte index entries
    ("audio-landmarks", 1_000),
    ("audio-landmarks", 10_000),
    ("audio-landmarks", 25_000),  # LANDMARK_MAX_WORKS
]
QUICK = [("image-full", 2_000), ("image-hash", 10_000), ("audio", 500), ("audio-landmarks", 500)]
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
    from fingerprints.landmarks import FRAME_S as LM_FRAME_S
    from fingerprints.landmarks import LOG_MAX, PEAKS_PER_S, encode_peaks
    from fingerprints.registry import by_name

    rng = np.random.default_rng(20261129)
    ver = {
        name: by_name(name).version
        for name in (
            "image_phash",
            "image_multicrop",
            "image_orb",
            "audio_chromaprint",
            "audio_landmarks",
        )
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

    def peaks(i: int, seconds: float, per_s: int) -> tuple[np.ndarray, np.ndarray]:
        r = np.random.default_rng(i)
        n = int(seconds * per_s)
        t = np.sort(r.integers(0, int(seconds / LM_FRAME_S), n))
        return t, r.uniform(0, LOG_MAX, n).astype(np.float32)

    def audio_values(i: int) -> dict[str, tuple[int, str]]:
        if kind == "audio-landmarks":
            value = encode_peaks(*peaks(i, AUDIO_S, PEAKS_PER_S["work"]))
            return {"audio_landmarks": (ver["audio_landmarks"], value)}
        return {"audio_chromaprint": (ver["audio_chromaprint"], encode_raw(audio_raw(i)))}

    media = MediaKind.AUDIO if kind.startswith("audio") else MediaKind.IMAGE
    if kind == "audio-landmarks":  # measure the index itself, past the matcher's default cap
        import fingerprints.matcher

        fingerprints.matcher.LANDMARK_MAX_WORKS = max(n, fingerprints.matcher.LANDMARK_MAX_WORKS)
    matcher = Matcher()
    matcher.add(-1, media, image_values(-1) if media is MediaKind.IMAGE else audio_values(7))
    matcher.remove(-1)
    base = rss_bytes()
    t0 = time.perf_counter()
    for i in range(n):
        matcher.add(i, media, image_values(i) if media is MediaKind.IMAGE else audio_values(i))
    load_s = time.perf_counter() - t0

    def landmark_query(t: np.ndarray, q: np.ndarray) -> Prints:
        value = encode_peaks(t, q)
        return Prints(media, "audio/wav", {"audio_landmarks": (ver["audio_landmarks"], value)}, 10)

    def planted(i: int) -> Prints:
        if kind == "audio-landmarks":  # 10 s: 70 % of the work's peaks, moved a little
            t, q = peaks(i, AUDIO_S, PEAKS_PER_S["work"])
            start = int(rng.integers(0, int((AUDIO_S - 10) / LM_FRAME_S)))
            inside = (t >= start) & (t < start + int(10 / LM_FRAME_S)) & (rng.random(t.size) < 0.7)
            t = t[inside] - start
            q = q[inside] + rng.normal(0, 0.1, t.size).astype(np.float32)
            et, eq = peaks(10**8 + i, 10, PEAKS_PER_S["query"] - PEAKS_PER_S["work"] // 2)
            order = np.argsort(np.concatenate([t, et]), kind="stable")
            return landmark_query(
                np.maximum(np.concatenate([t, et])[order], 0), np.concatenate([q, eq])[order]
            )
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
        if kind == "audio-landmarks":
            return landmark_query(*peaks(10**9 + j, 10, PEAKS_PER_S["query"]))
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
    count = QUERIES // 2 if kind == "audio-landmarks" else QUERIES  # ~0.1 s a query
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


# -- crawl throughput with 1 and 2 workers ---------------------------------------------------

WORKER_SHAPE = {  # runs x pages per run over a site of `site_pages`
    "full": {"runs": 6, "pages": 150, "site_pages": 1200, "images": 120, "audios": 6},
    "quick": {"runs": 4, "pages": 100, "site_pages": 400, "images": 60, "audios": 4},
}
WORKER_REDIS = os.environ.get("RIGHTSWATCH_BENCH_REDIS", "redis://127.0.0.1:6379/9")
WORKER_PG = os.environ.get(
    "RIGHTSWATCH_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            statm = (entry / "statm").read_text().split()
        except OSError:
            continue
        children.setdefault(int(stat[1]), []).append(int(entry.name))
        rss[int(entry.name)] = int(statm[1]) * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total


def _services_up() -> str | None:
    """None when PostgreSQL and Redis answer on loopback, else why not."""
    import redis
    from sqlalchemy import create_engine

    try:
        redis.Redis.from_url(WORKER_REDIS, socket_connect_timeout=3).ping()
    except Exception as exc:
        return f"Redis at {WORKER_REDIS}: {type(exc).__name__}"
    try:
        engine = create_engine(WORKER_PG, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:
        return f"PostgreSQL at {WORKER_PG}: {type(exc).__name__}"
    return None


def one_worker_count(workers: int, shape: dict[str, int], site_url: str, works: Path,
                     tmp: Path) -> dict[str, object]:  # fmt: skip
    """Queue shape['runs'] runs, let `workers` workers run them; measure."""
    import uuid
    from datetime import UTC, datetime

    import redis
    from sqlalchemy import create_engine, func, select, text

    sys.path.insert(0, str(ROOT))
    from evidence import runs
    from evidence.db import make_engine, make_session_factory
    from evidence.models import Run, RunState, Watch
    from rightswatch import tasks
    from rightswatch.config import from_env

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(WORKER_PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    db_url = f"{WORKER_PG}?options=-csearch_path%3D{schema}"
    broker = redis.Redis.from_url(WORKER_REDIS)
    broker.flushdb()
    home = tmp / f"home{workers}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RIGHTSWATCH_")},
        "RIGHTSWATCH_HOME": str(home),
        "RIGHTSWATCH_DATABASE_URL": db_url,
        "RIGHTSWATCH_BROKER_URL": WORKER_REDIS,
        "RIGHTSWATCH_ALLOW_NETWORKS": "127.0.0.1/32",
    }
    rw = str(Path(sys.executable).with_name("rightswatch"))

    def cli(*args: str) -> None:
        proc = subprocess.run([rw, *args, "--json"], env=env, capture_output=True, text=True,
                              check=False, cwd=tmp)  # fmt: skip
        if proc.returncode != 0:
            raise SystemExit(f"rightswatch {args[0]} failed: {proc.stderr.strip()[-300:]}")

    procs: list[subprocess.Popen[bytes]] = []
    engine = make_engine(db_url)
    try:
        cli("init")
        cli("works", "add", *sorted(str(p) for p in works.glob("*.png")))
        factory = make_session_factory(engine)
        run_ids = []
        with factory.begin() as session:
            for k in range(shape["runs"]):
                seed = f"{site_url}/p/{k * shape['site_pages'] // shape['runs']}.html"
                watch = Watch(name=f"bench{k}", seeds=[seed], allow_domains=["127.0.0.1"],
                              max_depth=50, max_pages=shape["pages"])  # fmt: skip
                session.add(watch)
                session.flush()
                run_ids.append(runs.queue_run(session, watch, datetime.now(UTC), "bench").id)
        settings = from_env(env)
        for run_id in run_ids:
            tasks.dispatch(settings, run_id)
        for i in range(workers):
            log = open(tmp / f"worker{workers}-{i}.log", "wb")  # noqa: SIM115
            procs.append(subprocess.Popen([rw, "worker", "--concurrency", "1"], env=env,
                                          stdout=log, stderr=subprocess.STDOUT))  # fmt: skip
        peak = 0
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            peak = max([peak, *(tree_rss(p.pid) for p in procs)])
            with factory() as session:
                open_runs = session.scalar(select(func.count()).select_from(Run).where(
                    Run.id.in_(run_ids), Run.state.not_in([RunState.FINISHED, RunState.FAILED])
                ))  # fmt: skip
            if not open_runs:
                break
            if any(p.poll() is not None for p in procs):
                raise SystemExit("a worker exited early; see its log in " + str(tmp))
            time.sleep(0.5)
        else:
            raise SystemExit("the runs did not finish within 30 minutes")
        with factory() as session:
            done = session.scalars(select(Run).where(Run.id.in_(run_ids))).all()
        start = min(r.started_at for r in done if r.started_at)
        end = max(r.finished_at for r in done if r.finished_at)
        wall = (end - start).total_seconds()
        pages = sum(r.pages for r in done)
        busy = sum((r.finished_at - r.started_at).total_seconds() for r in done
                   if r.started_at and r.finished_at)  # fmt: skip
        return {
            "workers": workers,
            "runs": len(done),
            "failed": sum(r.state != RunState.FINISHED for r in done),
            "pages": pages,
            "media": sum(r.media for r in done),
            "matches": sum(r.matches for r in done),
            "wall_s": round(wall, 1),
            "pages_per_s": round(pages / wall, 1),
            "runs_per_min": round(len(done) * 60 / wall, 1),
            "run_s_mean": round(busy / max(len(done), 1), 1),
            "in_flight": round(busy / wall, 2),
            "peak_worker_mib": round(peak / 2**20),
        }
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        engine.dispose()
        broker.flushdb()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def crawl_with_workers(*, quick: bool) -> None:
    import shutil
    import tempfile

    from bench_crawl import generate_site, start_nginx

    why = _services_up()
    if why is not None:
        print(f"crawl with workers: skipped ({why} not reachable)", flush=True)
        return
    shape = WORKER_SHAPE["quick" if quick else "full"]
    tmp = Path(tempfile.mkdtemp(prefix="rw-bench-workers-"))
    tmp.chmod(0o755)  # nginx's workers run as an unprivileged user
    nginx = None
    rows = []
    try:
        site = tmp / "site"
        generate_site(site, shape["site_pages"], shape["images"], shape["audios"])
        nginx, port = start_nginx(site, tmp)
        for workers in (1, 2):
            print(f"crawl: {shape['runs']} runs x {shape['pages']} pages, {workers} worker(s) ...",
                  flush=True)  # fmt: skip
            row = one_worker_count(workers, shape, f"http://127.0.0.1:{port}", tmp / "works", tmp)
            print("  " + ", ".join(f"{k}={v}" for k, v in row.items()), flush=True)
            rows.append(row)
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    write_workers_report(rows, shape, quick=quick)


def write_workers_report(rows: list[dict[str, object]], shape: dict[str, int], *,
                         quick: bool) -> None:  # fmt: skip
    cols = ["workers", "runs", "failed", "pages", "media", "matches", "wall_s", "pages_per_s",
            "runs_per_min", "run_s_mean", "in_flight", "peak_worker_mib"]  # fmt: skip
    speedup = ""
    if len(rows) == 2:
        ratio = float(rows[1]["pages_per_s"]) / max(float(rows[0]["pages_per_s"]), 1e-9)
        speedup = f"Two workers: {ratio:.2f}x the pages/s of one."
    lines = [
        "# Crawl throughput with 1 and 2 workers" + (" (quick)" if quick else ""),
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores,"
        f" load average {os.getloadavg()[0]:.1f} at the end (a shared machine: the times are"
        " upper bounds).",
        "",
        "`bench/bench_scale.py --part workers`: a generated site of"
        f" {shape['site_pages']:,} pages ({shape['images']} images, {shape['audios']} audio"
        " files, 10 planted copies of 10 catalogue works) served by nginx on loopback;"
        f" {shape['runs']} queued runs, each a watch of {shape['pages']} pages from its own seed,"
        " run by `rightswatch worker --concurrency 1` processes (Celery on Redis) sharing one"
        " PostgreSQL database. `wall_s` is from the first run's start to the last run's end"
        " (worker start-up excluded); `run_s_mean` is one run's start-to-end time (its crawl"
        " process start-up, catalogue load and crawl); `in_flight` is the average number of runs"
        " running at once (sum of run times / wall); `peak_worker_mib` is the largest resident"
        " memory of one worker's process tree (Celery, its crawl child, the decoder sandbox).",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
        *(
            "| "
            + " | ".join(f"{r[c]:,}" if isinstance(r[c], int) else str(r[c]) for c in cols)
            + " |"
            for r in rows
        ),
        "",
        speedup,
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("scale-workers-quick.md" if quick else "scale-workers.md")
    out.write_text("\n".join(lines).rstrip() + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes only (a minute)")
    parser.add_argument("--child", nargs=2, metavar=("PROFILE", "N"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--part",
        choices=("matching", "workers", "all"),
        default="all",
        help="matching: index memory and speed; workers: crawl throughput with 1 and 2 workers",
    )
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(child(args.child[0], int(args.child[1]))), flush=True)
        return
    if args.part in ("workers", "all"):
        crawl_with_workers(quick=args.quick)
    if args.part == "workers":
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
        f"minus before loading; `queries_per_s` is single-threaded over {QUERIES} queries"
        f" ({QUERIES // 2} for audio-landmarks),",
        "half planted near-copies, half random",
        "(`random_false_hits` should be 0). image-full = pHash",
        "+ multi-crop + ORB; image-hash = without ORB; audio = 240 s of Chromaprint per work,",
        "30 s noisy excerpts as queries; audio-landmarks = 240 s of spectral peaks per work,",
        "10 s excerpts (70 % of the peaks kept and jittered, among random ones) as queries.",
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
