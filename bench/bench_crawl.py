"""Crawl throughput: rightswatch against bare Scrapy on the same generated site (issue 4).

A site of N pages (default 5,000; --quick 600) with images and audio embedded every way the
crawler discovers (img, srcset, picture, CSS background, og:image, lazy attribute, audio) is
generated into a temp directory and served by nginx on loopback. Three crawls, each in its own
process, in the same run:

  links     bare Scrapy following links only
  baseline  bare Scrapy following links and downloading every media URL once
  full      `rightswatch crawl`: discovery, fingerprinting, matching and recording (SQLite)

Each reports pages/s, media/s, CPU seconds (the process and its children, so the fingerprint
pool counts), and peak RSS (the largest single process). Results go to bench/results/crawl.md.
`--screenshots` adds a fourth crawl with page screenshots of matched pages on (Chromium).

`--memory` is the memory run instead: rightswatch alone on a 50,000-page site (`--pages`), its
crawl process's RSS sampled every second against the pages done, bounded by `--max-seconds`
(SIGTERM, then the partial figures, flagged). Results go to bench/results/crawl-memory.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
RIGHTSWATCH = str(Path(PY).with_name("rightswatch"))

POLITE = {
    "ROBOTSTXT_OBEY": True,
    "CONCURRENT_REQUESTS": 32,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
    "AUTOTHROTTLE_ENABLED": True,
    "AUTOTHROTTLE_START_DELAY": 0.0,
    "AUTOTHROTTLE_TARGET_CONCURRENCY": 8.0,
    "COOKIES_ENABLED": False,
    "TELNETCONSOLE_ENABLED": False,
    "LOG_LEVEL": "WARNING",
    "DUPEFILTER_CLASS": "scrapy.dupefilters.RFPDupeFilter",
}


# -- the site ---------------------------------------------------------------------------------


def generate_site(
    root: Path, pages: int, images: int, audios: int, seed: int = 1
) -> dict[str, int]:
    from rightswatch.demo import media

    rng = random.Random(seed)
    (root / "p").mkdir(parents=True)
    (root / "m").mkdir()
    for i in range(images):
        img = media.make_image(1000 + i, (320, 240))
        (root / "m" / f"i{i}.jpg").write_bytes(media.image_bytes(img, "JPEG", quality=80))
    for i in range(audios):
        song = media.make_music(2000 + i, 6.0)
        (root / "m" / f"a{i}.mp3").write_bytes(media.encode_audio(song, "mp3"))
    (root / "robots.txt").write_text("User-agent: *\nAllow: /\n")
    # Ten catalogue works, each planted (resized, re-encoded) on one page in every pages/10.
    (root.parent / "works").mkdir()
    planted: dict[int, str] = {}
    for k in range(10):
        original = media.make_image(3000 + k, (640, 480))
        (root.parent / "works" / f"w{k}.png").write_bytes(media.image_bytes(original))
        copy = media.image_bytes(media.resized(original, 0.5), "JPEG", quality=75)
        (root / "m" / f"w{k}.jpg").write_bytes(copy)
        planted[k * max(1, pages // 10) + 5] = f"/m/w{k}.jpg"

    def img() -> str:
        return f"/m/i{rng.randrange(images)}.jpg"

    for n in range(pages):
        links = {(n + 1) % pages, (n * 7 + 3) % pages, rng.randrange(pages), rng.randrange(pages)}
        parts = [
            "<!doctype html><html><head>",
            f'<meta property="og:image" content="{img()}">',
            f"<style>.hero{{background-image:url('{img()}')}}</style></head><body>",
            f"<h1>Page {n}</h1><div class='hero'></div>",
            f'<img src="{img()}" alt="a">',
            f'<img srcset="{img()} 320w, {img()} 640w" alt="b">',
            f'<picture><source srcset="{img()}"><img src="{img()}"></picture>',
            f'<img data-src="{img()}" src="data:image/gif;base64,R0lGODlh">',
        ]
        if n % 10 == 0:
            parts.append(f'<audio src="/m/a{rng.randrange(audios)}.mp3"></audio>')
        if n in planted:
            parts.append(f'<img src="{planted[n]}" alt="planted">')
        parts += [f'<a href="/p/{k}.html">page {k}</a>' for k in sorted(links)]
        parts.append("<p>" + "lorem ipsum " * 40 + "</p></body></html>")
        (root / "p" / f"{n}.html").write_text("".join(parts))
    (root / "index.html").write_text('<a href="/p/0.html">start</a>')
    return {"pages": pages + 1, "images": images + len(planted), "audio": audios}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_nginx(root: Path, work: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = work / "nginx.conf"
    for d in ("client", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / d).mkdir(exist_ok=True)
    conf.write_text(f"""
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    access_log off;
    client_body_temp_path {work}/client; proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi; uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;
    server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
""")
    proc = subprocess.Popen(["/usr/sbin/nginx", "-c", str(conf), "-g", "daemon off;"])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("nginx did not start")


# -- bare Scrapy (run as a child: python bench_crawl.py --bare MODE URL) ----------------------


def bare(mode: str, url: str, out: Path) -> None:
    import scrapy
    from scrapy.crawler import CrawlerProcess

    media_xpath = (
        "//img/@src | //img/@srcset | //source/@srcset | //source/@src | //audio/@src"
        " | //*/@data-src | //meta[@property='og:image']/@content"
    )

    class Bare(scrapy.Spider):
        name = "bare"
        start_urls = (url,)
        pages = 0
        media = 0

        def parse(self, response):  # type: ignore[no-untyped-def]
            Bare.pages += 1
            for href in response.xpath("//a/@href").getall():
                yield response.follow(href, callback=self.parse)
            if mode != "baseline":
                return
            found = set()
            for value in response.xpath(media_xpath).getall():
                cands = [c.strip().split(" ")[0] for c in value.split(",")]
                found.add(cands[-1])
            for css in response.xpath("//style/text()").getall():
                for part in css.split("url(")[1:]:
                    found.add(part.split(")")[0].strip("'\""))
            for m in found:
                if m and not m.startswith("data:"):
                    yield response.follow(m, callback=self.got_media)

        def got_media(self, response):  # type: ignore[no-untyped-def]
            Bare.media += 1

    proc = CrawlerProcess({**POLITE, "DEPTH_LIMIT": 0})
    proc.crawl(Bare)
    proc.start()
    out.write_text(json.dumps({"pages": Bare.pages, "media": Bare.media}))


def measure(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"{cmd[:3]} failed with exit {proc.returncode}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "rss_mb": after.ru_maxrss / 1024, "stdout": proc.stdout}  # type: ignore[dict-item]


def rightswatch_env(home: Path, screenshots: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIGHTSWATCH_")}
    env.update(RIGHTSWATCH_HOME=str(home), RIGHTSWATCH_ALLOW_NETWORKS="127.0.0.1/32")
    env["RIGHTSWATCH_SCREENSHOTS"] = "auto" if screenshots else "off"
    return env


def prepare_home(work: Path, home: Path, env: dict[str, str]) -> None:
    subprocess.run([RIGHTSWATCH, "init"], env=env, check=True, capture_output=True)
    originals = sorted((work / "works").glob("w*.png"))
    subprocess.run(
        [RIGHTSWATCH, "works", "add", *map(str, originals), "--json"],
        env=env,
        check=True,
        capture_output=True,
    )


def crawl_cmd(start: str, pages: int) -> list[str]:
    return [
        RIGHTSWATCH,
        "crawl",
        "--url",
        start,
        "--max-depth",
        "10000",
        "--max-pages",
        str(pages + 10),
        "--json",
    ]


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def memory_run(start: str, work: Path, pages: int, max_seconds: float) -> dict[str, object]:
    """rightswatch's crawl alone; RSS of its process sampled every second against pages done."""
    home = work / "home-memory"
    env = rightswatch_env(home)
    prepare_home(work, home, env)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        crawl_cmd(start, pages), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    done = [0]

    def read_progress() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if ": pages " in line:
                with contextlib.suppress(ValueError, IndexError):
                    done[0] = int(line.split(": pages ", 1)[1].split(",", 1)[0])

    reader = threading.Thread(target=read_progress, daemon=True)
    reader.start()
    samples: list[tuple[float, int, float]] = []
    stopped = False
    while proc.poll() is None:
        elapsed = time.monotonic() - t0
        samples.append((elapsed, done[0], _rss_mb(proc.pid)))
        if elapsed > max_seconds and not stopped:
            proc.send_signal(signal.SIGTERM)  # drains in-flight pages, records, exits
            stopped = True
        time.sleep(1.0)
    out = proc.stdout.read() if proc.stdout else ""
    reader.join(timeout=5)
    wall = time.monotonic() - t0
    try:
        result = json.loads(out)
    except ValueError:
        result = {"pages": done[0]}
    return {
        "wall_s": wall,
        "samples": samples,
        "result": result,
        "stopped": stopped,
        "peak_mb": max((s[2] for s in samples), default=0.0),
    }


def write_memory_report(run: dict[str, object], shape: dict[str, int]) -> None:
    samples: list[tuple[float, int, float]] = run["samples"]  # type: ignore[assignment]
    result: dict[str, object] = run["result"]  # type: ignore[assignment]
    pages = int(result.get("pages", 0) or 0)  # type: ignore[call-overload]
    rows = []
    shown = -1
    for elapsed, done, rss in samples:
        step = done * 10 // max(shape["pages"], 1)
        if step > shown and done:
            shown = step
            rows.append(f"| {elapsed:.0f} | {done} | {rss:.0f} |")
    if samples:
        elapsed, done, rss = samples[-1]
        rows.append(f"| {elapsed:.0f} | {done} (last sample) | {rss:.0f} |")
    wall = float(run["wall_s"])  # type: ignore[arg-type]
    stopped = bool(run["stopped"])
    text = "\n".join(
        [
            "# Crawl memory (bench/bench_crawl.py --memory)",
            "",
            f"Site: {shape['pages']} pages, {shape['images']} images, {shape['audio']} audio"
            " files, served by nginx on loopback. rightswatch alone (discovery, fingerprinting,"
            " matching, recording on SQLite; screenshots off), same politeness settings as the"
            " throughput bench.",
            f"Machine: {os.cpu_count()} cores (shared). Crawled {pages} pages in {wall:.0f} s"
            f" ({pages / max(wall, 1e-6):.1f} pages/s)"
            + (", stopped by SIGTERM at the time bound (partial)." if stopped else "."),
            "",
            f"**Peak RSS of the crawl process: {float(run['peak_mb']):.0f} MB** (target: under"  # type: ignore[arg-type]
            " 500 MB for 50,000 pages). The fingerprint workers are separate processes with"
            " their own cap (fingerprints.sandbox).",
            "",
            "RSS of the crawl process (sampled every second; first sample past each tenth of the"
            " site):",
            "",
            "| elapsed s | pages done | RSS MB |",
            "|---|---|---|",
            *rows,
            "",
        ]
    )
    path = HERE / "results" / "crawl-memory.md"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    print(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="600 pages instead of 5,000")
    ap.add_argument("--pages", type=int)
    ap.add_argument("--modes", default="links,baseline,full", help="which crawls to run")
    ap.add_argument(
        "--screenshots",
        action="store_true",
        help="also crawl with page screenshots of matched pages on (Chromium)",
    )
    ap.add_argument(
        "--memory",
        action="store_true",
        help="the memory run: rightswatch alone on 50,000 pages (or --pages), RSS sampled",
    )
    ap.add_argument(
        "--max-seconds",
        type=float,
        default=1800.0,
        help="time bound of the memory run (SIGTERM, partial figures)",
    )
    ap.add_argument("--out", help="result file name in bench/results (default by mode)")
    ap.add_argument("--keep-home", type=Path, help="copy rightswatch's home here afterwards")
    ap.add_argument("--bare", nargs=3, metavar=("MODE", "URL", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bare:
        bare(args.bare[0], args.bare[1], Path(args.bare[2]))
        return
    pages = args.pages or (50_000 if args.memory else 600 if args.quick else 5000)
    images, audios = (120, 6) if args.quick else (600, 20)
    work = Path(tempfile.mkdtemp(prefix="rw-bench-"))
    work.chmod(0o755)  # nginx's workers run as an unprivileged user
    nginx = None
    try:
        site = work / "site"
        t0 = time.monotonic()
        shape = generate_site(site, pages, images, audios)
        print(f"site: {shape} generated in {time.monotonic() - t0:.0f}s", file=sys.stderr)
        nginx, port = start_nginx(site, work)
        start = f"http://127.0.0.1:{port}/"
        if args.memory:
            write_memory_report(memory_run(start, work, pages, args.max_seconds), shape)
            return
        results: dict[str, dict[str, float]] = {}
        modes = args.modes.split(",")
        for mode in [m for m in ("links", "baseline") if m in modes]:
            out = work / f"{mode}.json"
            m = measure([PY, __file__, "--bare", mode, start, str(out)])
            counts = json.loads(out.read_text())
            results[mode] = {**m, **counts}
            print(f"{mode}: {results[mode]['pages']} pages in {m['wall_s']:.1f}s", file=sys.stderr)
        full_modes = [
            m for m in ("full", "shots") if m in modes or (m == "shots" and args.screenshots)
        ]
        for mode in full_modes:
            home = work / f"home-{mode}"
            env = rightswatch_env(home, screenshots=mode == "shots")
            prepare_home(work, home, env)
            m = measure(crawl_cmd(start, pages), env=env)
            out = json.loads(str(m["stdout"]))
            results[mode] = {
                **m,
                "pages": out["pages"],
                "media": out["media"],
                "matches": out["matches"],
                "errors": out["errors"],
            }
            print(f"{mode}: {out['pages']} pages in {m['wall_s']:.1f}s", file=sys.stderr)
            if args.keep_home:
                shutil.copytree(home, args.keep_home / mode, dirs_exist_ok=True)
        if {"links", "baseline", "full"} <= set(results):
            name = args.out or ("crawl-quick.md" if args.quick else "crawl.md")
            write_report(results, shape, args.quick, name)
        else:
            shown = {
                k: {kk: vv for kk, vv in v.items() if kk != "stdout"} for k, v in results.items()
            }
            print(json.dumps(shown, indent=1))
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait()
        shutil.rmtree(work, ignore_errors=True)


def write_report(
    results: dict[str, dict[str, float]], shape: dict[str, int], quick: bool, name: str
) -> None:
    base = results["baseline"]
    rows = []
    for mode, label in (
        ("links", "bare Scrapy, links only"),
        ("baseline", "bare Scrapy, links + every media URL once (baseline)"),
        ("full", "rightswatch crawl (discover, fingerprint, match, record)"),
        ("shots", "rightswatch crawl + screenshots of matched pages (Chromium)"),
    ):
        if mode not in results:
            continue
        r = results[mode]
        pps = r["pages"] / r["wall_s"]
        mps = r["media"] / r["wall_s"]
        ratio = pps / (base["pages"] / base["wall_s"])
        rows.append(
            f"| {label} | {int(r['pages'])} | {int(r['media'])} | {r['wall_s']:.1f} | {pps:.1f} |"
            f" {mps:.1f} | {r['cpu_s']:.1f} | {r['rss_mb']:.0f} | {ratio:.2f} |"
        )
    full = results["full"]
    text = "\n".join(
        [
            "# Crawl throughput (bench/bench_crawl.py)",
            "",
            f"Site: {shape['pages']} pages, {shape['images']} images, {shape['audio']} audio files,"
            " served by nginx on loopback; same politeness settings for all three (8 per host,"
            " AutoThrottle, robots.txt). " + ("`--quick` run." if quick else "Full run."),
            f"Machine: {os.cpu_count()} cores (shared). rightswatch recorded"
            f" {int(full.get('matches', 0))} matches,"
            f" {int(full.get('errors', 0))} errors, on SQLite; page screenshots off"
            + (" (and on in the last row)." if "shots" in results else "."),
            "",
            "| crawl | pages | media | wall s | pages/s | media/s | CPU s | peak RSS MB"
            " | pages/s vs baseline |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            "CPU s counts the process and its children (the fingerprint pool); peak RSS is the",
            "largest single process. Target (issue 4): rightswatch at least 0.75 of the"
            " baseline's pages/s.",
            "",
        ]
    )
    path = HERE / "results" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
