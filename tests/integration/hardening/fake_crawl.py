"""Stands in for `rightswatch crawl --run-id N` in the worker tests: logs start/done, sleeps.

python fake_crawl.py crawl --run-id N      (FAKE_CRAWL_LOG: the log file; FAKE_CRAWL_S: seconds)
"""

from __future__ import annotations

import os
import sys
import time


def log(line: str) -> None:
    fd = os.open(os.environ["FAKE_CRAWL_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def main() -> None:
    assert sys.argv[1:3] == ["crawl", "--run-id"], sys.argv
    run_id = int(sys.argv[3])
    log(f"start {run_id} {os.getpid()}")
    time.sleep(float(os.environ.get("FAKE_CRAWL_S", "1")))
    log(f"done {run_id}")


if __name__ == "__main__":
    main()
